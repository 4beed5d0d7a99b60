"The whole pipeline: resume after SIGKILL, config changes, --force, CLI errors, papermill batch, disk errors."
import json, os, random, signal, subprocess, sys, time
from pathlib import Path
import numpy as np
import pytest

from conftest import ROOT, STORIES, run_cli
from vgot.core import RunStore, VgotError
from vgot.media import read_video, load_tensors
from vgot.pipeline import VGoT
from vgot.run_config import RunConfig

STORY = STORIES / "fox_and_crow.txt"

def vgot_cmd(*argv):
    return [sys.executable, "-m", "vgot.cli", *map(str, argv)]

def check_no_truncated(run: Path):
    "Every artifact under its final name is whole: JSON parses, PNGs open, safetensors load, videos decode."
    from PIL import Image
    for p in run.rglob("*"):
        if not p.is_file() or p.name.startswith("."): continue          # hidden temporaries are never final names
        if p.suffix == ".json": json.loads(p.read_text())
        elif p.suffix == ".png": Image.open(p).verify()
        elif p.suffix == ".safetensors": load_tensors(p, check_finite=False)
        elif p.suffix == ".mp4": assert len(read_video(p)[0]) > 0, p

@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    "An uninterrupted run of the story (same seed as the killed runs)."
    run = tmp_path_factory.mktemp("ref") / "run"
    r = subprocess.run(vgot_cmd("run", STORY, "--run-dir", run, "--seed", 5, "--quiet"), capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    return run

def test_sigkill_at_random_moments_then_resume_is_frame_identical(reference_run, tmp_path):
    "Kill `vgot run` at random moments of its work (separate process, SIGKILL), resume each time: same final video, no torn file."
    run, rng, kills, stages_killed = tmp_path / "run", random.Random(1234), 0, set()
    ref = json.loads((reference_run / "run.json").read_text())
    work = sum(v["seconds"] for v in ref["stages"].values() if "seconds" in v)   # seconds of work after start-up
    for attempt in range(4):
        t_launch = time.time()
        proc = subprocess.Popen(vgot_cmd("run", STORY, "--run-dir", run, "--seed", 5, "--quiet"), cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        manifest = run / "run.json"
        while proc.poll() is None and not (manifest.exists() and manifest.stat().st_mtime >= t_launch):
            time.sleep(0.02)                                                     # until the run has started its work
        time.sleep(rng.uniform(0.05, 0.4) * work)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL); kills += 1
            stages_killed |= {k for k, v in json.loads(manifest.read_text())["stages"].items() if v["status"] == "running"}
        proc.wait()
        check_no_truncated(run)
    assert kills >= 2, "the run finished before it could be killed: the test did not test resume"
    r = subprocess.run(vgot_cmd("run", STORY, "--run-dir", run, "--seed", 5, "--quiet"), capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    check_no_truncated(run)
    assert not [p for p in run.rglob(".*.tmp*")], "the resume left a killed run's temporaries behind"
    a, _ = read_video(reference_run / "final.mp4"); b, _ = read_video(run / "final.mp4")
    assert a.shape == b.shape and np.array_equal(a, b), f"resumed video differs (killed in {sorted(stages_killed)})"

def _written(run: Path) -> dict:
    return {k: v["written"] + str(os.path.getmtime(run / v["files"][0])) for k, v in json.loads((run / "run.json").read_text())["artifacts"].items()}

def test_config_change_redoes_that_stage_and_later_only(tmp_path):
    run = tmp_path / "run"
    vg = VGoT(RunConfig(seed=2))
    r1 = vg.generate(STORY, run, quiet=True); assert r1.complete
    before = _written(run)
    time.sleep(1.1)
    vg2 = VGoT(RunConfig(seed=2).set("shots.camera=none"))
    r2 = vg2.generate(STORY, run, quiet=True); assert r2.complete
    after = _written(run)
    same = {k for k in before if before[k] == after.get(k)}
    assert "script" in same and all(k in same for k in before if k.startswith("keyframe/"))
    assert not any(k in same for k in before if k.startswith("shot/")), "shots should have been redone"
    assert "final" not in same
    # nothing changed: nothing redone
    vg2.generate(STORY, run, quiet=True); assert _written(run) == after
    # --force keyframes: keyframes redone
    time.sleep(1.1)
    vg2.generate(STORY, run, quiet=True, force=("keyframes",))
    again = _written(run)
    assert again["script"] == after["script"] and all(again[k] != after[k] for k in after if k.startswith("keyframe/"))

def test_cli_run_user_errors_are_one_line(tmp_path):
    r = run_cli("run", tmp_path / "missing.txt", "--run-dir", tmp_path / "r")
    assert r.returncode == 2 and r.stderr.startswith("vgot: error:") and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run_cli("run", STORY, "--preset", "nope", "--run-dir", tmp_path / "r")
    assert r.returncode == 2 and "unknown preset 'nope'" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("run", STORY, "--set", "shots", "--run-dir", tmp_path / "r")
    assert r.returncode == 2 and "expected key=value" in r.stderr
    r = run_cli("resume", tmp_path / "nothing")
    assert r.returncode == 2 and "not a run folder" in r.stderr
    r = run_cli("--debug", "run", tmp_path / "missing.txt", "--run-dir", tmp_path / "r")
    assert r.returncode == 2 and "Traceback" in r.stderr

def test_cli_run_then_resume(tmp_path):
    run = tmp_path / "run"
    r = run_cli("run", STORY, "--run-dir", run, "--quiet", "--stop-after", "keyframes")
    assert r.returncode == 0, r.stderr
    assert not (run / "final.mp4").exists() and (run / "keyframes" / "000.png").exists()
    r = run_cli("resume", run, "--quiet")
    assert r.returncode == 0, r.stderr
    assert f"final video: {run / 'final.mp4'}" in r.stdout and (run / "report.html").exists() and (run / "run.log").exists()

def test_disk_full_leaves_manifest_intact(tmp_path, monkeypatch):
    import errno, vgot.core as core
    st = RunStore(tmp_path / "run"); st.record("a", "h1", [])
    good = (tmp_path / "run" / "run.json").read_text()
    def full(*a, **k): raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(core.os, "replace", full)
    with pytest.raises(VgotError, match="cannot write .*run.json: No space left on device"): st.record("b", "h2", [])
    assert (tmp_path / "run" / "run.json").read_text() == good
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["run.json"]       # no temporary left behind

def test_batch_one_failure_does_not_stop_the_others(tmp_path):
    stories = tmp_path / "stories"; stories.mkdir()
    (stories / "fox.txt").write_text(STORY.read_text())
    (stories / "empty.txt").write_text("   \n")
    (stories / "empty.md").write_text("")                    # same stem as empty.txt: each gets its own run folder
    r = run_cli("batch", stories, "--out", tmp_path / "runs", "--quiet")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "1 ok, 2 failed" in r.stdout
    lines = {l.split()[0]: l for l in r.stdout.splitlines() if l.startswith(("fox.txt", "empty.txt", "empty.md"))}
    assert " ok " in lines["fox.txt"] and "failed" in lines["empty.txt"] and "failed" in lines["empty.md"]
    assert (tmp_path / "runs" / "empty_txt").is_dir() and (tmp_path / "runs" / "empty_md").is_dir()
    nb = json.loads((tmp_path / "runs" / "fox" / "generate.ipynb").read_text())
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in nb["cells"])
    assert (tmp_path / "runs" / "fox" / "final.mp4").exists()

def test_evaluate_stage_and_eval_command_update_the_report(tmp_path):
    run = tmp_path / "run"
    r = VGoT(RunConfig(seed=3, evaluate=True)).generate(STORY, run, quiet=True)
    assert r.complete
    m = json.loads((run / "metrics.json").read_text())
    assert len(m["shots"]) == len(r.script.shots) and len(m["joints"]) == len(r.script.shots) - 1
    page = (run / "report.html").read_text()
    assert "<h2>Metrics</h2>" in page and "temporal_flickering" in page
    (run / "report.html").unlink(); (run / "metrics.json").unlink()
    c = run_cli("eval", run, "--quiet")
    assert c.returncode == 0, c.stderr
    assert (run / "metrics.json").exists() and "<h2>Metrics</h2>" in (run / "report.html").read_text()

def test_permission_denied_on_run_folder_is_one_clear_line(tmp_path, monkeypatch):
    "The OS refusing the run folder (simulated: root ignores file modes) gives one clear error, no traceback, exit 2."
    import vgot.cli as cli, io, contextlib
    real_mkdir = Path.mkdir
    def deny(self, *a, **k):
        if "denied" in str(self): raise PermissionError(13, "Permission denied", str(self))
        return real_mkdir(self, *a, **k)
    monkeypatch.setattr(Path, "mkdir", deny)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = cli.main(["run", str(STORY), "--run-dir", str(tmp_path / "denied" / "run"), "--quiet"])
    assert rc == 2 and err.getvalue().startswith("vgot: error: cannot create run folder") and "Permission denied" in err.getvalue()
    assert "Traceback" not in err.getvalue()

@pytest.mark.parametrize("setting,message", [("shots.cam=warp", "shots config: no setting 'cam'"),
                                             ("transitions.mode=wipe", "transitions config: mode = 'wipe' is not one of"),
                                             ("keyframes.steps=-1", "keyframes config: steps = -1")])
def test_bad_stage_setting_fails_before_any_work(tmp_path, setting, message):
    r = run_cli("run", STORY, "--run-dir", tmp_path / "run", "--quiet", "--set", setting)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "run").exists(), "a bad setting must fail before the run folder is written"

def test_stage_command_settings_stick_through_resume_and_batch(tmp_path):
    "Stage commands with options, then `vgot resume` and `vgot batch`: nothing is regenerated and the options hold."
    import shutil
    stories, out = tmp_path / "stories", tmp_path / "runs"
    stories.mkdir(); src = Path(shutil.copy(STORY, stories / STORY.name))
    run = out / src.stem                                                     # where the batch puts this story's run
    for argv in (("script", src, "--run-dir", run, "--max-shots", "2", "--planner", "rules"),
                 ("keyframes", run, "--steps", "3"), ("shots", run, "--camera", "none")):
        r = run_cli(*argv, "--quiet"); assert r.returncode == 0, r.stderr
    r = run_cli("transitions", run, "--mode", "crossfade")
    assert r.returncode == 0, r.stderr
    assert "settings remembered in run.json: transitions.mode: '(default)' -> 'crossfade'" in r.stderr  # said when it changes
    made = _written(run)
    def held():
        cfg = json.loads((run / "run.json").read_text())["config"]
        assert (cfg["planner"], cfg["script"], cfg["keyframes"], cfg["shots"], cfg["transitions"]) == (
            "rules", {"max_shots": 2}, {"steps": 3}, {"camera": "none"}, {"mode": "crossfade"}), cfg
        assert json.loads((run / "shots" / "000.json").read_text())["camera"] == "none"
        assert json.loads((run / "transitions" / "000-001.json").read_text())["mode"] == "crossfade"
    held()
    time.sleep(1.1)                                                          # a redone file would get a new mtime
    r = run_cli("resume", run, "--quiet"); assert r.returncode == 0, r.stderr
    assert (run / "final.mp4").exists()
    after = _written(run)
    assert {k: after[k] for k in made} == made, "resume regenerated what the stage commands made"
    held()
    r = run_cli("batch", stories, "--out", out, "--quiet", "-p", "evaluate=false")
    assert r.returncode == 0, r.stdout + r.stderr
    assert _written(run) == after, "batch regenerated a run made stage by stage"
    held()

def test_edit_then_resume_redoes_what_depends_on_the_shot_only(tmp_path, capsys):
    "`vgot edit` and a hand edit of script.json: kept by the next run, which redoes that shot's dependants only and says so."
    from vgot.cli import main
    run, cfg = tmp_path / "run", RunConfig(seed=1).set("script.max_shots=3")
    VGoT(cfg).generate(STORY, run, quiet=True)
    before = _written(run)
    time.sleep(1.1)
    assert main(["edit", str(run), "1", "--set", "motion.pan=-0.3", "--set", "background=a harbour at dusk"]) == 0
    assert "shot 1: motion.pan = -0.3; background = 'a harbour at dusk'" in capsys.readouterr().out
    res = VGoT(RunConfig.from_dict(json.loads((run / "run.json").read_text())["config"])).generate(STORY, run, quiet=True)
    assert (res.script.shots[1].motion.pan, res.script.shots[1].background) == (-0.3, "a harbour at dusk")
    after = _written(run)
    kept = {k for k in before if before[k] == after[k]}
    portraits = {k for k in before if k.startswith("portrait/")}            # the cast's, no shot's: kept
    assert kept == {"keyframe/000", "shot/000"} | portraits, sorted(kept)   # shot 0 and what it alone feeds: untouched
    log = (run / "run.log").read_text()
    assert "script.json was edited: shot(s) 1 changed" in log
    assert "keyframes: done" in log and "redone: keyframe/001, keyframe/002" in log and "redone: shot/001" in log
    # by hand: shot 2's light; shots 0 and 1 stay as they are
    doc = json.loads((run / "script.json").read_text()); doc["shots"][2]["hdr"] = "moonlight"
    (run / "script.json").write_text(json.dumps(doc))
    time.sleep(1.1)
    res = VGoT(cfg).generate(STORY, run, quiet=True)
    assert res.script.shots[2].hdr == "moonlight" and res.script.shots[1].background == "a harbour at dusk"
    again = _written(run)
    assert {k for k in after if after[k] == again[k]} >= {"keyframe/000", "keyframe/001", "shot/000", "shot/001"}
    assert again["keyframe/002"] != after["keyframe/002"] and "shot(s) 2 changed" in (run / "run.log").read_text()

def test_warnings_users_need_reach_run_log_report_and_quiet_terminal(tmp_path, capsys):
    "A prompt too long for the text encoder: one line in run.log, in the report's summary and on stderr under quiet."
    from vgot.core import Script, Shot, Story
    long = "Mara, a keeper with " + ", ".join(f"a {c} scarf number {k}" for k, c in enumerate(["red", "blue", "green"] * 8))
    shots = [Shot(0, "Mara climbs.", 2.0, long, "a lighthouse", "Mara climbs the stairs", "wide shot"),
             Shot(1, "The lamp flares.", 2.0, "no people", "the lamp room", "the lamp flares", "close-up")]
    story = Story("Mara climbs.\n\nThe lamp flares.", "Storm", [], Script("Storm", shots))
    res = VGoT(RunConfig(seed=0)).generate(story, tmp_path / "run", quiet=True)
    assert res.complete
    err = [l for l in capsys.readouterr().err.splitlines() if "prompt(s) were longer" in l]
    assert len(err) == 1 and err[0].startswith("vgot: warning: keyframes: 1 prompt(s) were longer than the text encoder's")
    log = (tmp_path / "run" / "run.log").read_text()
    assert sum("warning: keyframes: 1 prompt(s) were longer" in l for l in log.splitlines()) == 1
    page = (tmp_path / "run" / "report.html").read_text()
    assert "<h2>Warnings</h2><ul><li>keyframes: 1 prompt(s) were longer" in page and "scarf number" in page
