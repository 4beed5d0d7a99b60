"Docs and notebook hygiene: index.ipynb says what README.md says; every exported cell is followed by a cell that uses it."
import json, re
from pathlib import Path
from conftest import ROOT

NBS = ROOT / "nbs"

def library_notebooks():
    return sorted(p for p in NBS.glob("*.ipynb") if not p.name.startswith("_") and p.name != "index.ipynb")

def test_index_matches_readme():
    nb = json.loads((NBS / "index.ipynb").read_text())
    md = "\n\n".join("".join(c["source"]).strip() for c in nb["cells"] if c["cell_type"] == "markdown")
    assert md.strip() == (ROOT / "README.md").read_text().strip(), "nbs/index.ipynb and README.md differ: run `make readme`"

def test_readme_lists_every_module_notebook():
    readme = (ROOT / "README.md").read_text()
    missing = [p.stem for p in library_notebooks() if f"`{p.stem}`" not in readme]
    assert not missing, f"README's notebook table lacks {missing}"

def test_each_exported_definition_is_followed_by_an_example_or_test():
    problems = []
    for p in library_notebooks():
        cells = [c for c in json.loads(p.read_text())["cells"] if c["cell_type"] == "code"]
        for i, c in enumerate(cells):
            src = "".join(c["source"])
            if not re.search(r"^#\|\s*export", src, re.M) or not re.search(r"^(def|class|async def) ", src, re.M): continue
            nxt = next((d for d in cells[i + 1:]), None)
            nsrc = "".join(nxt["source"]) if nxt else ""
            if nxt is None or re.search(r"^#\|\s*export", nsrc, re.M) or not nsrc.strip():
                first = re.search(r"^(?:def|class|async def) (\w+)", src, re.M).group(1)
                problems.append(f"{p.name}: the exported cell defining {first} is not followed by a test or example cell")
    assert not problems, "\n".join(problems)

def test_every_notebook_is_exported_into_the_package():
    for p in library_notebooks():
        src = p.read_text()
        m = re.search(r"default_exp\s+([\w.]+)", src)
        assert m, f"{p.name} has no #| default_exp"
        assert (ROOT / "vgot" / (m.group(1).replace(".", "/") + ".py")).exists(), f"{p.name}: vgot/{m.group(1)}.py missing: run make export"
