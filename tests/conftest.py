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
