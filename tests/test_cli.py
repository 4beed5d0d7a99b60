"The vgot entry point: help, version, info, and user errors as one line with a non-zero exit."
from conftest import run_cli
import vgot

def test_help_version_info():
    r = run_cli("--help"); assert r.returncode == 0 and "version" in r.stdout and "info" in r.stdout
    r = run_cli("version"); assert r.returncode == 0 and r.stdout.strip() == f"vgot {vgot.__version__}"
    r = run_cli("info"); assert r.returncode == 0 and "presets (video:" in r.stdout and "ltx*=Lightricks/LTX-Video-0.9.5" in r.stdout and "wan*=Wan-AI/Wan2.2-TI2V-5B-Diffusers" in r.stdout and "tiny" in r.stdout and "cache:" in r.stdout

def test_unknown_command_fails():
    r = run_cli("fly"); assert r.returncode != 0

def test_run_story_or_example():
    r = run_cli("run", "--example", "moby_dick"); assert r.returncode == 2 and "the examples are" in r.stderr
    r = run_cli("run"); assert r.returncode == 2 and "no story" in r.stderr and "lighthouse" in r.stderr
    r = run_cli("run", "data/stories/lighthouse.md", "--example", "lighthouse")
    assert r.returncode == 2 and "not both" in r.stderr
    r = run_cli("demo", "--list"); assert r.returncode == 0 and "night_market" in r.stdout

def test_own_models_preset_file_and_offline_fail_fast(tmp_path):
    "--set models.SLOT and --preset FILE are checked up front; offline, a hub model not in the cache is one line, at once."
    import time
    from conftest import STORIES
    story = STORIES / "fox_and_crow.txt"
    r = run_cli("run", story, "--run-dir", tmp_path / "r", "--set", "models.t2i=/no/such/folder")
    assert r.returncode == 2 and r.stderr.strip() == "vgot: error: models.t2i = /no/such/folder: no such folder (a local model is a folder as save_pretrained writes it)"
    assert not (tmp_path / "r").exists()
    (tmp_path / "mine.yaml").write_text(f"base: sd15\nt2i: {tmp_path}\ni2v: {{ltx: me/my-ltx}}\n")
    r = run_cli("info", tmp_path / "mine.yaml")
    assert r.returncode == 0 and f"t2i                {tmp_path.resolve()}" in r.stdout and "i2v.ltx            me/my-ltx" in r.stdout
    (tmp_path / "bad.yaml").write_text("base: sd15\nunet: a/b\n")
    r = run_cli("run", story, "--run-dir", tmp_path / "b", "--preset", tmp_path / "bad.yaml")
    assert r.returncode == 2 and "bad.yaml: unknown key(s) unet" in r.stderr
    t0 = time.time()                                          # HF_HUB_OFFLINE=1 (conftest): sd15's models are not here
    r = run_cli("run", story, "--run-dir", tmp_path / "s", "--preset", "sd15", "--quiet", "--stop-after", "keyframes")
    took = time.time() - t0
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "is not in the model cache and the hub is offline" in lines[0], r.stderr
    assert "huggingface-cli download" in lines[0] and "Traceback" not in r.stderr
    print(f"offline failure after {took:.1f} s")

def test_rough_edges_debug_after_command_and_broken_pipe(tmp_path):
    "`--debug` after the subcommand works; `vgot info | true` (the reader gone before the first line) ends quietly (no 'Broken pipe', no traceback)."
    import subprocess, sys, os
    from conftest import ROOT
    r = run_cli("run", tmp_path / "missing.txt", "--run-dir", tmp_path / "r", "--debug")
    assert r.returncode == 2 and "Traceback" in r.stderr
    p = subprocess.run(f"{sys.executable} -m vgot.cli info | true", shell=True, capture_output=True, text=True, cwd=ROOT, env=os.environ.copy())
    assert "Broken pipe" not in p.stderr and "BrokenPipe" not in p.stderr and "Traceback" not in p.stderr, p.stderr
