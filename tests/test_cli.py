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
