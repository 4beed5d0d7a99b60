"""Build the docs: nbdev's notebook processing over every notebook, then an offline HTML preview of the processed notebooks.

`make docs` runs `nbdev_docs` where Quarto is on PATH (the site users publish). Where it is not, it runs this script,
which uses the same first step as `nbdev_docs` (nbdev's processors: `show_doc` signatures and docments tables, hidden
cells dropped, directives applied) and renders the processed notebooks itself: one HTML page per notebook, named as
nbdev names them (`00_core.ipynb` -> `core.html`), each with the sidebar nbdev writes for Quarto, MathJax copied from
Debian's libjs-mathjax, figures written beside the pages. Nothing is fetched and nothing is installed.

    python tools/build_docs.py                    # -> _preview/ ; exit 1 when nbdev's processing fails or warns
    python tools/build_docs.py --check            # only the processing, with its report
    python tools/build_docs.py --json report.json # also write the problems as JSON (the tests read it)
"""
from __future__ import annotations

import argparse, base64, contextlib, html, io, json, os, re, shutil, sys, warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MATHJAX_SRC = Path("/usr/share/javascript/mathjax")       # Debian's libjs-mathjax (MathJax 2.7)
MATHJAX_PARTS = ["MathJax.js", "config/TeX-AMS_CHTML.js", "config/local", "extensions", "jax/element", "jax/input/TeX",
                 "jax/output/CommonHTML", "fonts/HTML-CSS/TeX/woff", "localization/en"]
MIXED = "nbdev runs only the import cells when it builds the docs: put these imports in a cell of their own"
OUTPUT_ORDER = ["image/png", "image/jpeg", "image/svg+xml", "text/html", "text/markdown", "text/latex", "text/plain"]


# --- nbdev's processing ---------------------------------------------------------------------------------------------
def _first_line(src: str) -> str:
    lines = [l for l in src.splitlines() if l.strip() and not l.lstrip().startswith("#|")]
    return lines[0].strip() if lines else ""

def _procs_without_exec():
    "nbdev's default processors minus the one that executes cells (for a page whose processing failed)."
    from nbdev.processors import FilterDefaults
    class NoExec(FilterDefaults):
        def base_procs(self): return [p for p in super().base_procs() if p.__name__ != "exec_show_docs"]
    return NoExec()

def process_notebook(path: Path):
    """Run nbdev's processing (`FilterDefaults`, as `nbdev_docs` does) on one notebook.
    Returns (processed notebook, problems); each problem is a dict with notebook, cell, first_line, kind, message."""
    from execnb.nbio import read_nb
    from nbdev.processors import FilterDefaults, _do_eval
    name = path.relative_to(ROOT / "nbs").as_posix() if path.is_relative_to(ROOT / "nbs") else path.name
    problems, seen = [], set()
    def add(cell_idx, src, kind, message):
        key = (cell_idx, kind)
        if key in seen: return
        seen.add(key)
        problems.append(dict(notebook=name, cell=cell_idx, first_line=_first_line(src), kind=kind, message=message))
    nb = read_nb(path)
    for i, c in enumerate(nb.cells): c.orig_idx_ = i      # nbdev renumbers cells as it drops some; keep the notebook's index
    raw_src = {i: c.source for i, c in enumerate(nb.cells)}
    def orig(cell): return getattr(cell, "orig_idx_", -1)
    os.environ["IN_TEST"] = "1"                           # as nbdev's worker does
    failed = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try: FilterDefaults()(nb)
        except Exception as e:
            failed = True
            m = re.search(r"in cell (\d+)", str(e))
            cell = next((c for c in nb.cells if m and getattr(c, "idx_", None) == int(m.group(1))), None)
            idx = orig(cell) if cell is not None else -1
            cause = e.__cause__ or e
            add(idx, raw_src.get(idx, ""), "error", f"{type(cause).__name__}: {str(cause).splitlines()[0][:300] if str(cause) else ''}")
        finally: os.environ.pop("IN_TEST", None)
    for w in caught:
        msg = str(w.message)
        if "cells containing imports" in msg:
            src = msg.split("---\n")[1].rsplit("\n---", 1)[0] if "---\n" in msg else ""
            cell = next((c for c in nb.cells if (c.get("source") or "").strip() == src.strip()), None)
            idx = orig(cell) if cell is not None else \
                  next((i for i, r in raw_src.items() if _directives(r)[1].strip() == src.strip()), -1)
            add(idx, raw_src.get(idx, src), "imports mixed with code", MIXED)
        elif "cell" in msg.lower():
            add(-1, "", "warning", msg.splitlines()[0][:300])
    if getattr(nb, "has_docs_", False):                  # cells the processing did not reach (after an error): the same check
        from nbdev.process import NBProcessor
        raw = NBProcessor(path, procs=[]).nb              # sets each cell's directives, as the processing does
        for i, c in enumerate(raw.cells):
            if c.cell_type != "code": continue
            with warnings.catch_warnings(record=True) as ws:
                warnings.simplefilter("always")
                try: _do_eval(c)
                except Exception as e: add(i, raw_src.get(i, ""), "error", f"nbdev could not parse the cell: {e}")
            if any("cells containing imports" in str(w.message) for w in ws): add(i, raw_src.get(i, ""), "imports mixed with code", MIXED)
    if failed:                                            # still render the page, without the executed show_doc output
        nb = read_nb(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _procs_without_exec()(nb)
    problems.sort(key=lambda p: (p["cell"], p["kind"]))
    return nb, problems

def notebooks(nbs: Path) -> list[Path]:
    "The notebooks nbdev documents, in its order (nbglob: recursive, skipping _ and . names)."
    from nbdev.doclinks import nbglob
    return [Path(p) for p in nbglob(nbs, func=Path, skip_folder_re=r"(?:^[_.]|^www\$)")]

def sidebar(nbs: Path) -> list:
    "The sidebar nbdev writes into sidebar.yml for Quarto: a list of pages (notebook paths) and {section, contents}."
    import yaml
    from nbdev.quarto import nbdev_sidebar
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf): nbdev_sidebar.__wrapped__(path=nbs, printit=True, force=True)
    return yaml.safe_load(buf.getvalue())["website"]["sidebar"]["contents"]


# --- rendering ------------------------------------------------------------------------------------------------------
def page_name(rel: str) -> str:
    "nbdev's doc page for a notebook path relative to nbs/: 00_core.ipynb -> core.html, runs/generate.ipynb -> runs/generate.html."
    from nbdev.doclinks import _nbpath2html
    return _nbpath2html(Path(rel)).as_posix()

def _slug(text: str) -> str:
    "pandoc's identifier for a heading (what Quarto and nbdev's doc links use)."
    t = re.sub(r"<[^>]+>", "", html.unescape(text)).strip().lower()
    t = re.sub(r"[^\w\s.\-]", "", t)
    return re.sub(r"\s+", "-", t).lstrip("0123456789.-_") or "section"

_PANDOC_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)\{([^}]*)\}")
_PANDOC_ATTR = re.compile(r'(\w[\w-]*)="([^"]*)"')

def markdown(md: str) -> str:
    "Markdown (with math left for MathJax) to HTML; pandoc link attributes and ::: divs as Quarto reads them."
    from nbconvert.filters.markdown_mistune import markdown2html_mistune
    md = _PANDOC_LINK.sub(lambda m: '<a href="{}" {}>{}</a>'.format(html.escape(m.group(2)), " ".join(f'{k}="{html.escape(v)}"' for k, v in _PANDOC_ATTR.findall(m.group(3))), m.group(1)), md)
    out, depth = [], 0
    for line in md.split("\n"):
        m = re.match(r"^:::+\s*(\{[^}]*\}|[\w-]+)?\s*$", line)
        if m and m.group(1):
            classes = " ".join(c.lstrip(".") for c in re.findall(r"\.[\w-]+", m.group(1))) or m.group(1).strip("{}")
            out.append(f'\n<div class="{html.escape(classes)}">\n'); depth += 1
        elif m and depth: out.append("\n</div>\n"); depth -= 1
        else: out.append(line)
    h = markdown2html_mistune("\n".join(out) + "\n</div>" * depth)
    return re.sub(r'<h([1-6]) id="[^"]*">(.*?)<a class="anchor-link" href="#[^"]*">&#182;</a></h\1>',
                  lambda m: f'<h{m.group(1)} id="{_slug(m.group(2))}" class="anchored">{m.group(2)}<a class="anchor-link" href="#{_slug(m.group(2))}">#</a></h{m.group(1)}>', h)

def _directives(src: str) -> tuple[dict, str]:
    "Quarto cell options (#| key: value) and the source without them."
    d, lines = {}, src.splitlines()
    i = 0
    while i < len(lines) and lines[i].lstrip().startswith("#|"):
        k, _, v = lines[i].lstrip()[2:].partition(":")
        d[k.strip()] = v.strip().lower() or "true"; i += 1
    return d, "\n".join(lines[i:]).strip("\n")

def _highlight(src: str) -> str:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer
    return highlight(src, PythonLexer(), HtmlFormatter(cssclass="sourceCode"))

def _text(x) -> str: return "".join(x) if isinstance(x, list) else str(x)

class Page:
    "One notebook rendered as an HTML page; figures are written into `<page>_files/`."
    def __init__(self, nb, rel: str, out: Path, site_url: str):
        self.nb, self.rel, self.out, self.site_url = nb, rel, out, site_url.rstrip("/") + "/"
        self.html_rel = page_name(rel)
        self.files_rel = self.html_rel[:-len(".html")] + "_files"
        self.n_fig, self.title, self.description = 0, Path(rel).stem, ""

    def _figure(self, data: str, ext: str) -> str:
        self.n_fig += 1
        rel = f"{self.files_rel}/figure-{self.n_fig}.{ext}"
        p = self.out / rel; p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(base64.b64decode(data) if ext != "svg" else data.encode())
        return Path(rel).relative_to(Path(self.html_rel).parent).as_posix()

    def _output(self, o: dict, asis: bool) -> str:
        t = o.get("output_type")
        if t == "stream":
            cls = "stderr" if o.get("name") == "stderr" else "stdout"
            return f'<pre class="cell-output-{cls}">{html.escape(_text(o.get("text", "")))}</pre>'
        if t == "error":
            return f'<pre class="cell-output-error">{html.escape(o.get("ename", ""))}: {html.escape(o.get("evalue", ""))}</pre>'
        data = o.get("data", {})
        if "application/vnd.jupyter.widget-view+json" in data and not any(k.startswith("image/") for k in data):
            return ('<div class="cell-output-widget">An interactive widget: run the notebook in JupyterLab to use it '
                    '(its static rendering is shown above).</div>')
        for mime in OUTPUT_ORDER:
            if mime not in data: continue
            v = _text(data[mime])
            if mime in ("image/png", "image/jpeg"):
                return f'<div class="cell-output-display"><img src="{self._figure(v, mime.split("/")[1])}" alt="figure"></div>'
            if mime == "image/svg+xml": return f'<div class="cell-output-display"><img src="{self._figure(v, "svg")}" alt="figure"></div>'
            if mime == "text/html": return f'<div class="cell-output-display">{v}</div>'
            if mime == "text/markdown": return markdown(v) if asis else f'<div class="cell-output-display">{markdown(v)}</div>'
            if mime == "text/latex": return f'<div class="cell-output-display">{html.escape(v)}</div>'
            return f'<pre class="cell-output-stdout">{html.escape(v)}</pre>'
        return ""

    def body(self) -> str:
        parts = []
        for c in self.nb["cells"]:
            src = _text(c.get("source", ""))
            if c["cell_type"] == "raw":
                m = re.match(r"^---\n(.*?)\n---", src.strip() + "\n", re.S)
                if m:
                    import yaml
                    fm = yaml.safe_load(m.group(1)) or {}
                    self.title, self.description = str(fm.get("title", self.title)), str(fm.get("description", ""))
                continue
            if c["cell_type"] == "markdown":
                parts.append(f'<div class="cell markdown">{markdown(src)}</div>'); continue
            d, code = _directives(src)
            if d.get("include") == "false": continue
            block = []
            if d.get("echo") != "false" and code.strip(): block.append(_highlight(code))
            if d.get("output") != "false":
                block += [self._output(o, d.get("output") == "asis") for o in c.get("outputs", [])]
            if any(block): parts.append('<div class="cell code">' + "".join(block) + "</div>")
        return "\n".join(parts)

    def links_local(self, h: str, pages: set) -> str:
        "Links into the published site (nbdev's doc links) made relative, so the preview needs no network."
        depth = self.html_rel.count("/")
        def fix(m):
            url = m.group(2)
            if url.startswith(self.site_url):
                path, _, frag = url[len(self.site_url):].partition("#")
                if path in pages: url = "../" * depth + path + (f"#{frag}" if frag else "")
            elif not re.match(r"^[a-z]+:|^#|^/", url):
                path, _, frag = url.partition("#")
                if path.endswith(".ipynb"):
                    target = (Path(self.rel).parent / path).as_posix()
                    url = Path(os.path.relpath(page_name(os.path.normpath(target)), Path(self.html_rel).parent or ".")).as_posix() + (f"#{frag}" if frag else "")
            return f'{m.group(1)}="{url}"'
        return re.sub(r'\b(href)="([^"]*)"', fix, h)


def _nav(contents: list, current: str, depth: int, titles: dict) -> str:
    items = []
    for e in contents:
        if isinstance(e, dict):
            items.append(f'<li class="section"><span>{html.escape(e["section"])}</span>{_nav(e.get("contents", []), current, depth, titles)}</li>')
        else:
            p = page_name(e)
            cls = ' class="active"' if p == current else ""
            items.append(f'<li><a{cls} href="{"../" * depth}{p}">{html.escape(titles.get(e, Path(e).stem))}</a></li>')
    return "<ul>" + "".join(items) + "</ul>"

CSS = """
body { margin: 0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #212529; line-height: 1.5; }
header { background: #2780e3; color: white; padding: .6rem 1.2rem; font-size: 1.2rem; }
header a { color: white; text-decoration: none; }
.layout { display: flex; align-items: flex-start; }
nav#sidebar { width: 240px; flex: none; padding: 1rem; position: sticky; top: 0; max-height: 100vh; overflow-y: auto; font-size: .92rem; }
nav#sidebar ul { list-style: none; padding-left: .6rem; margin: 0; }
nav#sidebar li { margin: .2rem 0; }
nav#sidebar li.section > span { font-weight: 600; }
nav#sidebar a { color: #343a40; text-decoration: none; } nav#sidebar a.active { color: #2780e3; font-weight: 600; }
main { flex: 1; min-width: 0; max-width: 980px; padding: 1rem 2rem 4rem; }
main h1.title { margin-bottom: .2rem; } p.description { font-style: italic; opacity: .7; font-size: 1.2rem; margin-top: 0; }
pre, .sourceCode pre { background: #f8f9fa; padding: .6rem .8rem; overflow-x: auto; border-radius: 4px; font-size: .85rem; }
.cell { margin-bottom: 1rem; }
pre.cell-output-stdout, pre.cell-output-stderr { background: none; border-left: 2px solid lightsalmon; margin-left: .8rem; }
pre.cell-output-stderr { border-left-color: #d9534f; } pre.cell-output-error { color: #a94442; }
.cell-output-display img { max-width: 100%; }
.cell-output-widget { font-style: italic; opacity: .7; margin-left: .8rem; }
table { border-collapse: collapse; margin: .6rem 0; font-size: .9rem; } th, td { border-bottom: 1px solid #dee2e6; padding: .25rem .6rem; text-align: left; vertical-align: top; }
a.anchor-link { visibility: hidden; margin-left: .3rem; text-decoration: none; } h1:hover a.anchor-link, h2:hover a.anchor-link, h3:hover a.anchor-link, h4:hover a.anchor-link { visibility: visible; }
hr { border: none; border-top: 1px solid #dee2e6; margin: 1.5rem 0 .5rem; }
footer { font-size: .8rem; opacity: .6; padding: 1rem 2rem; }
"""

TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} – {site}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{up}site.css">
<script type="text/x-mathjax-config">
MathJax.Hub.Config({{tex2jax: {{inlineMath: [['$','$'], ['\\\\(','\\\\)']], displayMath: [['$$','$$'], ['\\\\[','\\\\]']], processEscapes: true}},
  CommonHTML: {{linebreaks: {{automatic: true}}}}, messageStyle: "none"}});
</script>
<script src="{up}mathjax/MathJax.js?config=TeX-AMS_CHTML"></script>
</head><body>
<header><a href="{up}index.html">{site}</a></header>
<div class="layout">
<nav id="sidebar">{nav}</nav>
<main>
<h1 class="title">{title}</h1>
{description}
{body}
</main></div>
<footer>Offline preview built by tools/build_docs.py from nbdev's processed notebooks (the published site is built by Quarto).</footer>
</body></html>
"""

def copy_mathjax(out: Path, src: Path = MATHJAX_SRC):
    "The parts of Debian's MathJax 2.7 that TeX input with CommonHTML output needs."
    if not (src / "MathJax.js").exists():
        raise SystemExit(f"{src}/MathJax.js not found: install Debian's libjs-mathjax (make docs-deps)")
    dst = out / "mathjax"
    for part in MATHJAX_PARTS:
        s, d = src / part, dst / part
        if s.is_dir(): shutil.copytree(s, d, dirs_exist_ok=True)
        elif s.exists(): d.parent.mkdir(parents=True, exist_ok=True); shutil.copy2(s, d)

def _unlink_missing_anchors(h: str, here: str, anchors: dict) -> str:
    "nbdev links every backticked name it indexes; a private helper or a method without its own show_doc has no anchor on"
    " its page: such a link is shown as the plain name instead of a link that goes nowhere."
    def fix(m):
        path, frag, inner = m.group(1), m.group(2), m.group(3)
        target = os.path.normpath((Path(here).parent / path).as_posix()) if path else here
        if target in anchors and frag not in anchors[target]: return inner
        return m.group(0)
    return re.sub(r'<a href="([^"#:]*)#([^"]+)"[^>]*>(.*?)</a>', fix, h)

def build(out: Path, nbs: Path = ROOT / "nbs", check_only: bool = False, log=print) -> list:
    "Process every notebook with nbdev and (unless check_only) render the preview into `out`; returns the problems."
    from nbdev.config import get_config
    cfg = get_config()
    site = f"{cfg.doc_host.rstrip('/')}{cfg.doc_baseurl}"
    processed, problems = {}, []
    for p in notebooks(nbs):
        rel = p.relative_to(nbs).as_posix()
        nb, probs = process_notebook(p)
        processed[rel] = nb; problems += probs
        log(f"{'ok  ' if not probs else 'FAIL'} {rel}" + "".join(f"\n       cell {q['cell']} ({q['kind']}): {q['first_line']}  -- {q['message']}" for q in probs))
    if check_only: return problems
    if out.exists(): shutil.rmtree(out)
    out.mkdir(parents=True)
    copy_mathjax(out)
    (out / "site.css").write_text(CSS + _pygments_css())
    pages = {rel: Page(nb, rel, out, site) for rel, nb in processed.items()}
    bodies = {rel: pg.body() for rel, pg in pages.items()}
    titles = {rel: pg.title for rel, pg in pages.items()}
    contents = sidebar(nbs)
    names = {pg.html_rel for pg in pages.values()}
    anchors = {pg.html_rel: set(re.findall(r'\bid="([^"]+)"', bodies[rel])) for rel, pg in pages.items()}
    for rel, pg in pages.items():
        depth = pg.html_rel.count("/")
        desc = f'<p class="description">{html.escape(pg.description)}</p>' if pg.description else ""
        doc = TEMPLATE.format(title=html.escape(pg.title), site=html.escape(cfg.title), up="../" * depth,
                              nav=_nav(contents, pg.html_rel, depth, titles), description=desc, body=bodies[rel])
        doc = _unlink_missing_anchors(pg.links_local(doc, names), pg.html_rel, anchors)
        (out / pg.html_rel).parent.mkdir(parents=True, exist_ok=True)
        (out / pg.html_rel).write_text(doc, encoding="utf-8")
    log(f"preview: {len(pages)} pages in {out}/ (open {out}/index.html, or: python -m http.server -d {out})")
    return problems

def _pygments_css() -> str:
    from pygments.formatters import HtmlFormatter
    return HtmlFormatter(cssclass="sourceCode").get_style_defs(".sourceCode") + "\n" + HtmlFormatter(cssclass="highlight").get_style_defs(".highlight")

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="_preview", help="folder of the preview (default _preview)")
    ap.add_argument("--check", action="store_true", help="run nbdev's processing and report; render nothing")
    ap.add_argument("--json", help="write the problems found by nbdev's processing to this JSON file")
    a = ap.parse_args(argv)
    os.chdir(ROOT)                                         # nbdev reads settings.ini from here, as nbdev_docs does
    out = Path(a.out) if Path(a.out).is_absolute() else ROOT / a.out
    problems = build(out, check_only=a.check)
    if a.json: Path(a.json).write_text(json.dumps(problems, indent=1))
    if problems:
        print(f"nbdev's processing reported {len(problems)} problem(s) in "
              f"{len({p['notebook'] for p in problems})} notebook(s) (listed above); nbdev_docs would fail or warn on them.", file=sys.stderr)
        return 1
    return 0

if __name__ == "__main__":
    sys.exit(main())
