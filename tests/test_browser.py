"""The docs and the explorers in a real browser: headless Chromium (Debian's, driven by playwright; `make browser-deps`
installs both). (a) Every page of the offline preview opens with no page error, no broken image or link, no request
leaving 127.0.0.1, and its math typeset by the local MathJax. (b) JupyterLab, started here on 127.0.0.1, runs 07_viz;
the attention explorer's token slider is moved with the keyboard and the map it shows changes. Screenshots go to
test-artifacts/."""
import functools, html.parser, re, http.server, os, secrets, shutil, signal, socket, subprocess, sys, threading, time
from pathlib import Path
from urllib.parse import urlparse, unquote
import pytest
from conftest import ROOT
from test_nbdev_proc import build_docs_once

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
ARTIFACTS = ROOT / "test-artifacts"

@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists(): pytest.fail(f"{CHROMIUM} is missing: run `make browser-deps` (Debian's chromium and libjs-mathjax, pip's playwright)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()

def _local_only(page, host: str, blocked: list):
    "Abort (and remember) every request that would leave `host`."
    def route(r):
        u = urlparse(r.request.url)
        if u.scheme in ("data", "blob") or u.hostname == host: r.continue_()
        else: blocked.append(r.request.url); r.abort()
    page.route("**/*", route)

class _Ids(html.parser.HTMLParser):
    def __init__(self): super().__init__(); self.ids = set()
    def handle_starttag(self, tag, attrs): self.ids |= {v for k, v in attrs if k == "id" and v}

@pytest.fixture(scope="module")
def preview(tmp_path_factory):
    report, out = build_docs_once(tmp_path_factory)
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a): pass
    handler = functools.partial(Quiet, directory=str(out))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    import build_docs
    failed = {build_docs.page_name(q["notebook"]) for q in report if q["kind"] == "error"}
    yield out, f"http://127.0.0.1:{srv.server_address[1]}/", failed
    srv.shutdown()

def test_preview_pages_open_clean_with_math_typeset(browser, preview):
    out, base, unprocessed = preview          # pages whose notebook nbdev's processing failed on lack their show_doc sections
    pages = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html") if "mathjax" not in p.parts)
    assert "index.html" in pages and len(pages) >= 14, pages
    ids = {}
    for p in pages:
        parser = _Ids(); parser.feed((out / p).read_text(encoding="utf-8")); ids[p] = parser.ids
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems, blocked, failed, degraded = [], [], [], []
    page.on("pageerror", lambda e: problems.append(f"{page.url}: page error {e}"))
    page.on("console", lambda m: problems.append(f"{page.url}: console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("requestfailed", lambda r: failed.append(f"{r.url} ({r.failure})"))
    page.on("response", lambda r: failed.append(f"{r.url} (HTTP {r.status})") if r.status >= 400 else None)
    _local_only(page, "127.0.0.1", blocked)
    typeset = 0
    for p in pages:
        page.goto(base + p, wait_until="load")
        page.wait_for_function("window.MathJax && MathJax.isReady && MathJax.Hub.queue.pending === 0 && MathJax.Hub.queue.running === 0", timeout=60_000)
        page.evaluate("new Promise(r => MathJax.Hub.Queue(r))")
        info = page.evaluate("""() => ({
            imgs: [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src')),
            links: [...document.querySelectorAll('a[href]')].map(a => a.href),
            math: document.querySelectorAll('.MathJax_CHTML').length,
            errors: document.querySelectorAll('.MathJax_CHTML .mjx-merror, .MathJax_Error').length,
            raw: (() => { const m = document.querySelector('main').cloneNode(true);
                          m.querySelectorAll('pre, code, script').forEach(e => e.remove()); return m.innerText; })(),
            sidebar: [...document.querySelectorAll('nav#sidebar a')].length})""")
        problems += [f"{p}: broken image {s}" for s in info["imgs"]]
        src = re.sub(r"(?s)<(pre|code|script)\b.*?</\1>", "", (out / p).read_text(encoding="utf-8"))
        if re.search(r"\$\$|\\\(|\$[^$\s<][^$<]*\$", src):
            if info["math"] == 0: problems.append(f"{p}: math in the page, none typeset")
        typeset += info["math"]
        if info["errors"]: problems.append(f"{p}: {info['errors']} MathJax errors")
        if "$$" in info["raw"]: problems.append(f"{p}: untypeset $$ left in the text")
        if info["sidebar"] != len(pages): problems.append(f"{p}: sidebar has {info['sidebar']} links for {len(pages)} pages")
        for href in info["links"]:
            u = urlparse(href)
            if u.hostname != "127.0.0.1": continue                        # links out (GitHub, the published site) are not followed
            target = unquote(u.path).lstrip("/") or "index.html"
            if not (out / target).is_file(): problems.append(f"{p}: broken link {href}"); continue
            if u.fragment and target.endswith(".html") and u.fragment not in ids[target]:
                (degraded if target in unprocessed else problems).append(f"{p}: link to a missing anchor {href}")
        if p in ("index.html", "viz.html", "smoothing.html"):
            page.screenshot(path=str(ARTIFACTS / f"preview-{p[:-5]}.png"), full_page=p != "index.html")
    page.close()
    assert typeset > 50, f"only {typeset} formulas typeset over the whole site"
    assert not blocked, f"pages tried to reach the network: {sorted(set(blocked))[:10]}"
    assert not failed, f"failed requests: {failed[:10]}"
    if degraded: print(f"{len(degraded)} links into pages nbdev's processing failed on ({', '.join(sorted(unprocessed))}), e.g. {degraded[0]}")
    assert not problems, "\n".join(problems[:40])

def _free_port() -> int:
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    "JupyterLab on 127.0.0.1 (random free port, a token, no browser) over a copy of 07_viz; stopped by its PID."
    d = tmp_path_factory.mktemp("lab")
    work = d / "nbs"; work.mkdir()
    shutil.copy(ROOT / "nbs" / "07_viz.ipynb", work / "07_viz.ipynb")       # a copy: the lab's autosave never touches nbs/
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "JUPYTER_CONFIG_DIR": str(d / "config"), "JUPYTER_RUNTIME_DIR": str(d / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(d / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(d / "workspaces"),
           "IPYTHONDIR": str(d / "ipython")}
    log = open(d / "lab.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
                             "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
                             "--LabApp.expose_app_in_browser=True", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                             "--LabApp.extension_manager=readonly", "--LabApp.news_url=None"] + (["--allow-root"] if os.geteuid() == 0 else []),
                            cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            if proc.poll() is not None: pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{(d / 'lab.log').read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1): break
            except OSError: time.sleep(0.5)
        else: pytest.fail(f"JupyterLab did not listen on port {port} within 60 s:\n{(d / 'lab.log').read_text()[-3000:]}")
        yield f"http://127.0.0.1:{port}", token, proc
    finally:
        if proc.poll() is None: os.kill(proc.pid, signal.SIGTERM)               # stop the server by its PID (it shuts its kernels down)
        try: proc.wait(30)
        except subprocess.TimeoutExpired: os.kill(proc.pid, signal.SIGKILL); proc.wait(10)
        log.close()

def test_jupyterlab_runs_07_viz_and_the_attention_slider_changes_the_map(browser, lab):
    url, token, proc = lab
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors, blocked = [], []
    page.on("pageerror", lambda e: errors.append(str(e)))
    _local_only(page, "127.0.0.1", blocked)
    page.goto(f"{url}/lab/tree/07_viz.ipynb?token={token}")
    page.wait_for_function("window.jupyterapp && window.jupyterapp.shell.currentWidget && window.jupyterapp.shell.currentWidget.sessionContext"
                           " && window.jupyterapp.shell.currentWidget.sessionContext.session && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
                           " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.connectionStatus === 'connected'", timeout=90_000)
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    explorer = page.locator(".vgot-attention-explorer").first
    explorer.wait_for(state="visible", timeout=240_000)
    img = explorer.locator("img").last
    page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=img.element_handle(), timeout=60_000)
    def pixels():
        return img.evaluate("""el => { const c = document.createElement('canvas'); c.width = el.naturalWidth; c.height = el.naturalHeight;
                                       c.getContext('2d').drawImage(el, 0, 0); return c.toDataURL(); }""")
    slider = explorer.locator(".widget-slider", has=page.locator("label", has_text="token")).first
    readout = slider.locator(".widget-readout")
    explorer.scroll_into_view_if_needed()
    before_value, before = readout.text_content().strip(), pixels()
    slider.locator(".noUi-handle").first.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function("([el, v]) => el.textContent.trim() !== v", arg=[readout.element_handle(), before_value], timeout=30_000)
    deadline = time.time() + 60
    while time.time() < deadline and pixels() == before: time.sleep(0.25)
    after_value, after = readout.text_content().strip(), pixels()
    explorer.screenshot(path=str(ARTIFACTS / "lab-attention-explorer.png"))
    page.screenshot(path=str(ARTIFACTS / "lab-07_viz.png"))
    page.close()
    assert (before_value, after_value) == ("0", "1"), (before_value, after_value)
    assert after != before, "moving the token slider did not change the displayed map"
    assert not errors, errors[:5]
    assert not blocked, f"JupyterLab tried to reach the network: {sorted(set(blocked))[:10]}"
    assert proc.poll() is None, "the JupyterLab server died during the test"
