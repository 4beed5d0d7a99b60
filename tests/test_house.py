"The docs page 'How vgot is built' (nbs/10_house.ipynb, vgot.house): its graph is the package's imports, read here independently, with no circle and no arrow pointing up; the page is computed when the docs are built."
import re, sys
from pathlib import Path
import pytest
from conftest import ROOT

PKG = ROOT / "vgot"
IMPORT = re.compile(r"^\s*(?:from\s+(\.|vgot\.)(\w*)\s+import\s+([^#\n]+)|import\s+vgot\.(\w+))", re.M)

def imports_by_text(pkg: Path = PKG) -> dict:
    "Every sibling import, read line by line with a regular expression (no ast): top-level and lazy alike."
    mods = {p.stem for p in pkg.glob("*.py") if not p.stem.startswith("_")}
    g = {m: set() for m in mods}
    for m in mods:
        text = (pkg / f"{m}.py").read_text(encoding="utf-8")
        text = re.sub(r"\(\s*([^)]*?)\s*\)", lambda x: x.group(1).replace("\n", " "), text)   # parenthesised names on one line
        for rel, mod, names, plain in IMPORT.findall(text):
            if plain: targets = [plain]
            elif mod: targets = [mod]
            else: targets = [n.strip().split(" as ")[0] for n in names.split(",")]   # from . import x
            g[m] |= {t for t in targets if t in mods and t != m}
    return g

def test_the_graph_is_the_packages_imports():
    from vgot.house import module_graph
    assert module_graph(PKG) == imports_by_text()

def test_no_circle_and_no_arrow_pointing_up():
    from vgot.house import check_floors, cycles, module_graph
    g = module_graph(PKG)
    assert cycles(g) == [], f"import circles: {cycles(g)}"
    assert check_floors(g) == [], "\n".join(check_floors(g))

def test_a_circle_and_an_upward_arrow_are_found(tmp_path):
    "The checks can fail: a package where core imports cli and cli imports core."
    from vgot.house import check_floors, cycles, module_graph
    pkg = tmp_path / "vgot"; pkg.mkdir()
    (pkg / "core.py").write_text("def f():\n    from .cli import main  # lazy, still an arrow\n")
    (pkg / "cli.py").write_text("from vgot.core import f\n")
    g = module_graph(pkg)
    assert g == imports_by_text(pkg) == {"core": {"cli"}, "cli": {"core"}}
    assert cycles(g) == [["cli", "core"]]
    assert check_floors(g) == ["core (floor 0) imports cli (floor 6): an arrow pointing up"]

def test_the_page_is_drawn_from_the_code_when_the_docs_are_built(monkeypatch):
    "nbdev's processing (what `make docs` runs) executes the page's drawing cells: the listing it prints is the graph read here."
    sys.path.insert(0, str(ROOT / "tools"))
    import build_docs
    monkeypatch.chdir(ROOT)
    nb, problems = build_docs.process_notebook(ROOT / "nbs" / "10_house.ipynb")
    assert problems == []
    outs = [o for c in nb.cells for o in c.get("outputs", [])]
    text = "".join("".join(o.get("text", "")) for o in outs if o.get("output_type") == "stream")
    listed = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+)\s+imports (.*)$", line)
        if m: listed[m.group(1)] = set() if m.group(2) == "nothing of vgot" else set(m.group(2).split(", "))
    assert listed == imports_by_text()
    assert "circles: none; arrows pointing up: none" in text and "shots.generate_shot  [stages]" in text
    assert sum("image/png" in o.get("data", {}) for o in outs) == 2           # the house, and the shot's path through it
