"The Ray executor on a local cluster started here (loopback, 2 CPUs): same video as the local executor, a killed worker, a batch."

import json, os, re, shutil, signal, tempfile, threading, time
from pathlib import Path
import numpy as np
import pytest

from vgot.core import RunStore, VgotError
from vgot.media import read_video
from vgot.pipeline import VGoT, run_batch
from vgot.run_config import RunConfig

ray = pytest.importorskip("ray", reason="the Ray executor is an optional extra: pip install 'vgot[ray]'")

STORY = "Ada walks to door 1. Ada walks to door 2. Ada walks to door 3. Ada walks to door 4."
SEED = 7


@pytest.fixture(scope="module")
def cluster():
    "A Ray instance on this machine (loopback, 2 CPUs, its own temp folder), stopped after the module."
    tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit in 107 characters
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
        object_store_memory=200 * 2**20,
        _temp_dir=tmp,
    )
    yield ray
    ray.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_models):
    "The story run by the local executor (same seed)."
    run = tmp_path_factory.mktemp("local") / "run"
    r = VGoT(RunConfig(seed=SEED), models=tiny_models).generate(STORY, run, quiet=True)
    assert r.complete
    return run


def artifacts(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())["artifacts"]


def same_video(a: Path, b: Path) -> bool:
    x, y = read_video(a)[0], read_video(b)[0]
    return x.shape == y.shape and np.array_equal(x, y)


def task_pids(run: Path, kind: str) -> list[int]:
    "Worker PIDs of the tasks of `kind` that the driver logged as finished (run.log)."
    text = (run / "run.log").read_text() if (run / "run.log").exists() else ""
    return [int(p) for p in re.findall(rf"ray: {kind}/\S+ made in .* pid (\d+)", text)]


def test_ray_run_is_the_local_run_frame_by_frame(cluster, reference, tmp_path):
    run = tmp_path / "run"
    r = VGoT(RunConfig(seed=SEED, executor="ray")).generate(STORY, run, quiet=True)
    assert r.complete and same_video(reference / "final.mp4", r.final)
    ref, got = artifacts(reference), artifacts(run)
    assert sorted(got) == sorted(ref)
    for name in ref:  # every file of every artifact, byte for byte (the same seeds, the same hashes)
        assert got[name]["sha256"] == ref[name]["sha256"], name
        assert got[name]["inputs"] == ref[name]["inputs"], name
    assert len(set(task_pids(run, "keyframe")) | set(task_pids(run, "shot"))) >= 2, "ran in worker processes"
    assert os.getpid() not in task_pids(run, "shot")
    # the executor is no artifact's input: the local executor finds everything done and remakes nothing
    before = {k: v["written"] for k, v in artifacts(run).items()}
    mtime = (run / "final.mp4").stat().st_mtime_ns
    VGoT(RunConfig(seed=SEED)).generate(STORY, run, quiet=True)
    assert {k: v["written"] for k, v in artifacts(run).items()} == before
    assert (run / "final.mp4").stat().st_mtime_ns == mtime
    assert "executor settings changed" in (run / "run.log").read_text()


def kill_video_worker_after_two_shots(run, t: threading.Thread):
    "SIGKILL the worker that made the run's shots once two are recorded, while `t` runs; its PID (None: too late)."
    deadline, victim = time.time() + 120, None
    while t.is_alive() and time.time() < deadline:
        pids = task_pids(run, "shot")
        if len(pids) >= 2:
            victim = pids[-1]
            os.kill(victim, signal.SIGKILL)
            break
        time.sleep(0.02)
    t.join(120)
    return victim


def test_killed_worker_loses_no_finished_artifact_and_resume_completes(cluster, reference, tmp_path):
    run, out = tmp_path / "run", {}

    def go():
        try:
            out["result"] = VGoT(RunConfig(seed=SEED, executor="ray", ray_retries=0)).generate(STORY, run, quiet=True)
        except Exception as e:
            out["error"] = e

    t = threading.Thread(target=go)
    t.start()
    victim = kill_video_worker_after_two_shots(run, t)
    assert victim is not None, "the run finished before a worker could be killed"
    assert isinstance(out.get("error"), VgotError), out
    assert "vgot resume" in str(out["error"])
    # what finished before the kill is recorded and whole: the same files as the local run's
    rec, ref = artifacts(run), artifacts(reference)
    assert {"shot/000", "shot/001"} <= set(rec) and "final" not in rec
    store = RunStore(run, create=False)
    for name, r in rec.items():
        if name != "script":
            assert store.status(name) == "done" and r["sha256"] == ref[name]["sha256"], name
    written = {k: v["written"] for k, v in rec.items()}
    # resumed: completes, remakes nothing that was recorded, and gives the local run's video
    r = VGoT(RunConfig(seed=SEED, executor="ray")).generate(STORY, run, quiet=True)
    assert r.complete and same_video(reference / "final.mp4", r.final)
    after = artifacts(run)
    assert all(after[k]["written"] == w for k, w in written.items() if k != "script")


def test_killed_worker_is_restarted_and_the_run_completes(cluster, reference, tmp_path):
    "With ray_retries (default 1) Ray restarts a dead worker and retries its task: the run completes by itself."
    run, out = tmp_path / "run", {}
    t = threading.Thread(
        target=lambda: out.update(r=VGoT(RunConfig(seed=SEED, executor="ray")).generate(STORY, run, quiet=True))
    )
    t.start()
    victim = kill_video_worker_after_two_shots(run, t)
    assert victim is not None, "the run finished before a worker could be killed"
    assert out["r"].complete and same_video(reference / "final.mp4", out["r"].final)
    later = set(task_pids(run, "shot")[2:]) | set(
        re.findall(r"ray: transition/\S+ made .* pid (\d+)", (run / "run.log").read_text())
    )
    assert later and str(victim) not in {str(p) for p in later}, "the work after the kill ran in a new worker"


def test_batch_on_ray_reports_a_failed_story_and_finishes_the_others(cluster, tmp_path, capsys):
    from vgot.cli import main

    stories = tmp_path / "stories"
    stories.mkdir()
    (stories / "ada.txt").write_text("Ada walks to the door. Ada opens the door.")
    (stories / "bob.txt").write_text("Bob climbs the stairs. Bob lights the lamp.")
    (stories / "empty.txt").write_text("   \n")  # fails: no story
    rc = main(["batch", str(stories), "--out", str(tmp_path / "runs"), "--executor", "ray", "--quiet"])
    out = capsys.readouterr().out
    assert rc == 1 and "2 ok, 1 failed" in out, out
    rows = {l.split()[0]: l for l in out.splitlines() if l.startswith(("ada.txt", "bob.txt", "empty.txt"))}
    assert " ok " in rows["ada.txt"] and " ok " in rows["bob.txt"] and "failed" in rows["empty.txt"]
    for s in ("ada", "bob"):
        assert (tmp_path / "runs" / s / "final.mp4").exists() and (tmp_path / "runs" / s / "generate.ipynb").exists()
    assert not (tmp_path / "runs" / "empty" / "final.mp4").exists()
    assert ray.is_initialized(), "batch left the test's cluster running (it did not start it)"
