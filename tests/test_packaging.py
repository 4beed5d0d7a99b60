"""The package as users install it: the wheel and the sdist carry what the CLI needs, and an installed wheel runs
`vgot info`, `vgot demo` and `vgot batch` from a folder outside the checkout."""
import os, subprocess, sys, sysconfig, tarfile, zipfile
from pathlib import Path

import pytest

from conftest import ROOT

SOURCES = {"vgot/resources/generate.ipynb": ROOT / "nbs" / "runs" / "generate.ipynb",
           **{f"vgot/resources/stories/{p.name}": p for p in sorted((ROOT / "data" / "stories").iterdir())}}


def test_resources_are_the_sources():
    "The shipped run notebook and stories are byte-identical to nbs/runs/generate.ipynb and data/stories/."
    for rel, src in SOURCES.items():
        assert (ROOT / rel).read_bytes() == src.read_bytes(), f"{rel} differs from {src}: run `make export`"
    world = ROOT / "vgot" / "resources" / "world"  # the world preset's trained weights: `make world` writes them
    shipped = {str(p.relative_to(ROOT)) for p in (ROOT / "vgot" / "resources").rglob("*") if p.is_file() and world not in p.parents}
    assert (world / "sd" / "model_index.json").is_file() and (world / "training.json").is_file()
    assert shipped == set(SOURCES), f"vgot/resources/ holds files with no source: {shipped - set(SOURCES)}"


def test_python_dash_m_vgot():
    r = subprocess.run([sys.executable, "-m", "vgot", "version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("vgot "), r.stderr


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    "The sdist, and the wheel built from that sdist (so the sdist must be complete), as python -m build makes them."
    out = tmp_path_factory.mktemp("dist")
    r = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
                       capture_output=True, text=True, cwd=out)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (wheel,), (sdist,) = out.glob("vgot-*.whl"), out.glob("vgot-*.tar.gz")
    return wheel, sdist


def _modules():
    return sorted(p.name for p in (ROOT / "vgot").glob("*.py"))


def test_wheel_contents(dists):
    wheel, _ = dists
    names = set(zipfile.ZipFile(wheel).namelist())
    for m in _modules(): assert f"vgot/{m}" in names, f"wheel lacks vgot/{m}"
    for rel in SOURCES: assert rel in names, f"wheel lacks {rel}"
    for rel in ("sd/model_index.json", "sd/unet/diffusion_pytorch_model.safetensors", "ip_adapter/ip_adapter.safetensors"):
        assert f"vgot/resources/world/{rel}" in names, f"wheel lacks the world preset's {rel}"  # `vgot demo` runs on it
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), "wheel lacks the license"
    meta = next(zipfile.ZipFile(wheel).read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    for extra in ("faces", "embeddings", "video", "all"): assert f"Provides-Extra: {extra}" in meta
    ep = next(zipfile.ZipFile(wheel).read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "vgot = vgot.cli:main" in ep


def test_sdist_contents(dists):
    _, sdist = dists
    names = {n.split("/", 1)[1] for n in tarfile.open(sdist).getnames() if "/" in n}
    for need in ("setup.py", "settings.ini", "README.md", "LICENSE", *SOURCES, *(f"vgot/{m}" for m in _modules())):
        assert need in names, f"sdist lacks {need}"


@pytest.fixture(scope="module")
def installed(dists, tmp_path_factory):
    """A fresh virtual environment with only the wheel installed, reusing this environment's dependencies
    (a .pth line to its site-packages: the editable checkout's finder is not run from there)."""
    wheel, _ = dists
    env = tmp_path_factory.mktemp("env") / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(env)], check=True)
    site = Path(subprocess.run([str(env / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    r = subprocess.run([str(env / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return env


def _vgot(env, cwd, *argv, timeout=300):
    e = {**os.environ, "PYTHONPATH": ""}
    return subprocess.run([str(env / "bin" / "vgot"), *map(str, argv)], capture_output=True, text=True, cwd=cwd, env=e,
                          timeout=timeout)


def test_installed_wheel_runs_outside_the_checkout(installed, tmp_path):
    env = installed
    r = subprocess.run([str(env / "bin" / "python"), "-c", "import vgot, vgot.pipeline as p; print(vgot.__file__); "
                        "print(p.default_run_notebook())"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    where, nb = r.stdout.split()
    assert Path(where).is_relative_to(env) and not Path(where).is_relative_to(ROOT / "vgot"), where
    assert Path(nb).is_file() and Path(nb).is_relative_to(env), nb

    r = _vgot(env, tmp_path, "info")
    assert r.returncode == 0 and "presets (video:" in r.stdout, r.stderr
    r = _vgot(env, tmp_path, "demo", "--list")
    assert r.returncode == 0 and "lighthouse" in r.stdout, r.stderr

    r = _vgot(env, tmp_path, "demo", "--quiet")                          # the main job, from any folder
    assert r.returncode == 0, r.stderr[-2000:]
    final = tmp_path / "runs" / "demo" / "final.mp4"
    assert final.is_file() and f"final video: {Path('runs/demo/final.mp4')}" in r.stdout

    stories = tmp_path / "my_stories"; stories.mkdir()
    (stories / "fox.txt").write_bytes((ROOT / "data" / "stories" / "fox_and_crow.txt").read_bytes())
    r = _vgot(env, tmp_path, "batch", stories, "--out", "batch_runs", "--quiet")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "1 ok, 0 failed" in r.stdout and (tmp_path / "batch_runs" / "fox" / "final.mp4").is_file()
    assert (tmp_path / "batch_runs" / "fox" / "generate.ipynb").is_file()
