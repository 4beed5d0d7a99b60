"""Trustworthy in users' hands: symlinks, locks, settings that stick, shareable files, clear one-line errors."""
import http.server, json, os, socket, stat, subprocess, sys, threading, time
from pathlib import Path

import pytest

from conftest import ROOT, run_cli
from vgot.core import RunStore, VgotError

STORY = ROOT / "data" / "stories" / "fox_and_crow.txt"
OTHER = ROOT / "data" / "stories" / "lighthouse.md"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    "A finished tiny run of the fox story (script only onwards as the tests need)."
    d = tmp_path_factory.mktemp("trust") / "run"
    r = run_cli("run", STORY, "--run-dir", d, "--quiet", "--set", "shots.camera=none")
    assert r.returncode == 0, r.stderr
    return d


def _one_line_error(r, *words):
    assert r.returncode == 2, (r.returncode, r.stdout[-500:], r.stderr[-1500:])
    assert "Traceback" not in r.stderr
    lines = [l for l in r.stderr.strip().splitlines() if l.startswith("vgot: error:")]
    assert len(lines) == 1, r.stderr
    for w in words: assert w in lines[0], (w, lines[0])
    return lines[0]


def test_symlinked_final_is_not_embedded_in_the_report(run, tmp_path):
    secret = tmp_path / "secret.txt"; secret.write_text("TOP-SECRET-CONTENT")
    import shutil
    copy = tmp_path / "copy"; shutil.copytree(run, copy, symlinks=True)
    (copy / "final.mp4").unlink(); os.symlink(secret, copy / "final.mp4")
    (copy / "keyframes" / "001.png").unlink(); os.symlink(secret, copy / "keyframes" / "001.png")
    r = run_cli("resume", copy, "--quiet")
    _one_line_error(r, "is a symbolic link")
    assert "TOP-SECRET" not in (copy / "report.html").read_text(errors="replace")
    import base64
    assert base64.b64encode(b"TOP-SECRET-CONTENT").decode()[:16] not in (copy / "report.html").read_text(errors="replace")


def test_files_get_the_umask_mode(run, tmp_path):
    "Files are written with the mode the user's umask gives (atomic writes start from a private temporary file)."
    mask = os.umask(0); os.umask(mask)
    for rel in ("final.mp4", "report.html", "script.json", "run.json", "shots/000.mp4", "keyframes/000.png"):
        assert stat.S_IMODE((run / rel).stat().st_mode) == 0o666 & ~mask, rel
    old = os.umask(0o027)                                                     # another umask: another mode
    try:
        r = run_cli("script", STORY, "--run-dir", tmp_path / "run027", "--planner", "rules")
    finally:
        os.umask(old)
    assert r.returncode == 0, r.stderr
    for rel in ("script.json", "run.json"):
        assert stat.S_IMODE((tmp_path / "run027" / rel).stat().st_mode) == 0o640, rel


def test_settings_stick_and_changes_are_named(run):
    m = json.loads((run / "run.json").read_text())
    assert m["config"]["shots"] == {"camera": "none"}
    r = run_cli("run", STORY, "--run-dir", run, "--force", "keyframes")      # no --set: the run's settings are kept
    assert r.returncode == 0, r.stderr
    assert "the run's settings are kept" in r.stderr
    assert json.loads((run / "run.json").read_text())["config"]["shots"] == {"camera": "none"}
    r = run_cli("run", STORY, "--run-dir", run, "--set", "transitions.mode=cut", "--stop-after", "script")
    assert r.returncode == 0 and "transitions.mode: '(default)' -> 'cut'" in r.stderr, r.stderr
    r = run_cli("run", STORY, "--run-dir", run, "--reset-settings", "--stop-after", "script", "--quiet")
    assert r.returncode == 0 and json.loads((run / "run.json").read_text())["config"]["shots"] == {}


def test_another_story_is_refused_unless_overwrite(tmp_path):
    d = tmp_path / "run"
    assert run_cli("run", STORY, "--run-dir", d, "--quiet", "--stop-after", "keyframes").returncode == 0
    portraits = sorted(p.name for p in (d / "assets" / "characters" / "portraits").glob("*.png"))
    r = run_cli("run", OTHER, "--run-dir", d, "--quiet", "--stop-after", "script")
    _one_line_error(r, "holds a run of another story", "--overwrite")
    assert json.loads((d / "story.json").read_text())["title"] != "The Lighthouse Keeper"
    r = run_cli("run", OTHER, "--run-dir", d, "--quiet", "--stop-after", "keyframes", "--overwrite")
    assert r.returncode == 0, r.stderr
    now = sorted(p.name for p in (d / "assets" / "characters" / "portraits").glob("*.png"))
    assert portraits and now and set(portraits).isdisjoint(now), (portraits, now)    # the fox's portraits are gone
    assert all(json.loads((d / "keyframes" / f"{i:03d}.json").read_text()) for i in range(2))


def test_one_run_per_folder(tmp_path):
    d = tmp_path / "run"
    store = RunStore(d)
    with store.lock():
        r = run_cli("run", STORY, "--run-dir", d, "--quiet")
        _one_line_error(r, f"in use by PID {os.getpid()}")
    assert not (d / "script.json").exists()


def test_stage_by_stage_folder_is_finished_by_resume(tmp_path):
    d = tmp_path / "run"
    assert run_cli("script", STORY, "--run-dir", d).returncode == 0
    assert run_cli("keyframes", d, "--quiet").returncode == 0
    r = run_cli("resume", d, "--quiet")
    assert r.returncode == 0, r.stderr
    assert (d / "final.mp4").is_file()


def test_truncated_shot_is_found_and_redone(run, tmp_path):
    import shutil
    copy = tmp_path / "copy"; shutil.copytree(run, copy)
    assert run_cli("resume", copy, "--quiet").returncode == 0          # settle the copy under its own settings
    shot = copy / "shots" / "001.mp4"
    good = shot.read_bytes(); shot.write_bytes(good[: len(good) // 3])
    r = run_cli("resume", copy, "--quiet")
    assert r.returncode == 0, r.stderr
    assert shot.read_bytes() == good                                   # redone, bit for bit (same seed)


@pytest.mark.parametrize("argv, words", [
    (["run", STORY, "--set", "fps=NaN"], ["fps = nan"]),
    (["run", STORY, "--fps", "-1"], ["fps = -1"]),
    (["run", STORY, "--device", "gpu"], ["device 'gpu' is not one of"]),
    (["run", STORY, "--device", "cuda"], ["sees no CUDA GPU"]),
    (["run", STORY, "--set", "device=foo"], ["device 'foo'"]),
    (["run", STORY, "--seed", "-3"], ["seed = -3"]),
    (["info", "--device", "foo"], ["device 'foo'"]),
    (["script", STORY, "--run-dir", "RUN", "--timeout", "nan"], ["timeout = nan"]),
    (["script", STORY, "--run-dir", "RUN", "--timeout", "inf"], ["timeout = inf"]),
    (["script", STORY, "--run-dir", "RUN", "--retries", "-1"], ["retries = -1"]),
])
def test_bad_settings_are_one_line_before_any_work(tmp_path, argv, words):
    d = tmp_path / "run"
    argv = [str(d) if a == "RUN" else a for a in argv]
    if argv[0] == "run": argv += ["--run-dir", str(d)]
    r = run_cli(*argv)
    _one_line_error(r, *words)
    assert not (d / "script.json").exists()


@pytest.mark.parametrize("name, data", [("story.docx", b"PK\x03\x04 plain words"), ("story.pdf", b"%PDF-1.4"), ("story.rtf", b"{\\rtf1 hi}")])
def test_unsupported_story_formats_are_listed(tmp_path, name, data):
    p = tmp_path / name; p.write_bytes(data)
    line = _one_line_error(run_cli("run", p, "--run-dir", tmp_path / "run"), "is not a story format vgot reads")
    assert ".txt" in line and ".md" in line and "image_prompt_pairs.json" in line


def test_llm_deadline_bounds_the_whole_request(tmp_path):
    "A server that drips one byte every 0.5 s is cut off at --timeout, not held forever."
    class Drip(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200); self.send_header("Content-Type", "application/json"); self.end_headers()
            try:
                for _ in range(200): self.wfile.write(b" "); self.wfile.flush(); time.sleep(0.5)
            except (BrokenPipeError, ConnectionResetError): pass
        def log_message(self, *a): pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Drip)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        t0 = time.time()
        r = run_cli("script", STORY, "--run-dir", tmp_path / "run", "--planner", "openai", "--retries", "0", "--timeout", "3",
                    "--base-url", f"http://127.0.0.1:{srv.server_address[1]}/v1")
        took = time.time() - t0
        _one_line_error(r, "timed out")
        assert took < 15, took
    finally: srv.shutdown()


def test_offline_eval_suggests_the_tiny_preset(tmp_path, run):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-m", "vgot", "eval", str(run / "shots" / "000.mp4"), "--out", str(tmp_path / "m.json"),
                        "--quiet"], capture_output=True, text=True, env=env)
    _one_line_error(r, "--preset tiny")


def test_deeply_nested_llm_answer_is_a_plan_error():
    "An LLM answer of deeply nested JSON is refused with a clear planner error, not a RecursionError."
    from vgot.repair import PlanError, extract_json
    with pytest.raises(PlanError, match="nested too deeply"): extract_json("{" + '"a": {' * 100000 + "}" * 100001)


def test_logs_off_a_terminal_carry_no_progress_bars(tmp_path):
    "stderr redirected to a file (not a terminal): log lines only, no carriage returns or escape codes."
    r = run_cli("run", STORY, "--run-dir", tmp_path / "run", "--stop-after", "keyframes")
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr and "\x1b[" not in r.stderr and "vgot: keyframes: done" in r.stderr


def test_a_symlinked_story_json_is_named_as_such_not_as_another_story(tmp_path):
    d = tmp_path / "run"
    r = run_cli("script", STORY, "--run-dir", d, "--quiet", "--max-shots", "2")
    assert r.returncode == 0, r.stderr
    elsewhere = tmp_path / "story_copy.json"
    elsewhere.write_bytes((d / "story.json").read_bytes())
    (d / "story.json").unlink(); os.symlink(elsewhere, d / "story.json")
    line = _one_line_error(run_cli("run", STORY, "--run-dir", d, "--quiet"), "story.json", "is a symbolic link")
    assert "another story" not in line
    assert (d / "story.json").is_symlink() and elsewhere.read_bytes()  # neither the link nor its target was touched
