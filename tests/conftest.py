"Shared fixtures: offline, a per-checkout model cache, and the tiny models loaded once per session."
import os, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("VGOT_HOME", str(ROOT / ".vgot_home"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One thread per process: tests and the processes they start share 2 cores, and oversubscribed OpenMP
# threads spin (a tiny UNet call measured 100x slower with 2 threads under load than with 1).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    "torch reads OMP_NUM_THREADS at import; set it here too in case torch was imported before this file."
    import torch
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

STORIES = ROOT / "data" / "stories"

@pytest.fixture(scope="session")
def tiny_models():
    "The tiny preset's models, loaded once per test session."
    from vgot.models import Models
    return Models("tiny")

@pytest.fixture
def store(tmp_path):
    "An empty run store in a temporary folder."
    from vgot.core import RunStore
    return RunStore(tmp_path / "run")

@pytest.fixture(scope="session")
def stories():
    "Paths of the bundled stories."
    return sorted(p for p in STORIES.iterdir() if p.suffix != ".png")  # the portraits beside a story are no stories

def run_cli(*argv):
    "Run `vgot ARGV...` in a separate process; returns the CompletedProcess."
    import subprocess
    return subprocess.run([sys.executable, "-m", "vgot.cli", *map(str, argv)], capture_output=True, text=True, env=os.environ.copy(), cwd=ROOT)

def pytest_configure(config):
    config.addinivalue_line("markers", "real_size: real architectures at their published widths (minutes, GBs); `make test-fast` skips them")
    config.addinivalue_line("markers", "slow: whole runs, killed processes, Ray, the browser, the world's measurements (`make test-slow`; CI runs them after `make test`)")

# The suites that run whole generations in subprocesses, kill them, start Ray clusters or a browser, or measure the world
# preset: together about two thirds of the suite's time (measured 2026-12-07: 1,900 of 3,050 s on 2 busy cores). They
# run in `make test-slow`, which CI runs after `make test`; `make test` stays the inner loop's size.
SLOW_FILES = {"test_real_size.py", "test_pipeline.py", "test_trust.py", "test_ray.py", "test_protocol.py",
              "test_world_keyframes.py", "test_browser.py"}
SLOW_TESTS = {"test_camera.py::test_trained_adapter_uses_the_camera", "test_faces.py::test_tiny_run_reports_no_faces"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        name = Path(str(item.fspath)).name
        if name in SLOW_FILES or f"{name}::{item.originalname}" in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
