"vgot.metrics on a hand-built run folder: known answers per shot and per joint, metrics.json, plots, `vgot eval` and `--compare`."
import json, math
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from vgot.core import CameraMotion, RunStore, Script, Shot, ShotClip, Transition, VgotError
from vgot.media import write_video
from vgot.metrics import (Extractors, Face, MetricsConfig, SHOT_METRICS, JOINT_METRICS, evaluate_run, evaluate_videos,
                          motion_smoothness, temporal_flickering)
from vgot.metric_tables import load_metrics, write_metrics

RED, YELLOW, BLUE = (255, 0, 0), (255, 255, 0), (0, 0, 255)
CFG = MetricsConfig(progress=False, n_boundary=2)
N = 6     # frames per shot


@pytest.fixture(scope="module")
def ex():
    return Extractors.from_preset("tiny", device="cpu")


def colour_faces(frame):
    "A fake face detector: one 'face' per frame whose descriptor is the mean colour; frames darker than 10 have none."
    m = frame.reshape(-1, 3).astype(np.float64).mean(0)
    return [Face((0, 0, frame.shape[1], frame.shape[0]), m)] if m.max() > 10 else []
colour_faces.threshold = 1.0


def make_run(root: Path, colours=(RED, YELLOW, BLUE), transitions=("crossfade", "cut"), motions=None, preset="tiny"):
    "A run folder with constant-colour shots, a 3-frame crossfade 0->1 and a cut 1->2 (by default)."
    store = RunStore(root); store.set_config({}, preset=preset)
    motions = motions or [CameraMotion()] * len(colours)
    shots = [Shot(index=i, segment=f"Sentence {i}.", duration=2.0, character="a keeper", background=f"a {i} room",
                  relation="the keeper waits", camera="static", motion=motions[i]) for i in range(len(colours))]
    store.write_artifact("script.json", Script(title="Colours", shots=shots))
    for i, c in enumerate(colours):
        video, lat = store.shot_rel(i)
        frames = np.full((N, 16, 16, 3), c, np.uint8) if len(c) == 3 else np.concatenate([np.full((N // 2, 16, 16, 3), x, np.uint8) for x in c])
        write_video(root / video, frames, fps=4)
        store.write_artifact(f"shots/{i:03d}.json", ShotClip(shot=i, video=video, latents=lat, n_frames=N, fps=4.0, seed=0))
    for k, mode in enumerate(transitions):
        if mode is None: continue
        video, lat = store.transition_rel(k)
        if mode == "cut":
            store.write_artifact(f"transitions/{k:03d}-{k+1:03d}.json", Transition(src=k, dst=k + 1, mode="cut", n_frames=0)); continue
        a, b = np.array(colours[k], float).reshape(-1, 3)[-1], np.array(colours[k + 1], float).reshape(-1, 3)[0]
        fade = np.stack([np.full((16, 16, 3), a + (b - a) * i / 4) for i in (1, 2, 3)]).round().astype(np.uint8)
        write_video(root / video, fade, fps=4)
        store.write_artifact(f"transitions/{k:03d}-{k+1:03d}.json", Transition(src=k, dst=k + 1, mode=mode, n_frames=3, video=video, latents=lat))
    return root


def delta(a, b): return np.abs(np.subtract(a, b)).mean()


def test_run_known_answers(tmp_path, ex):
    run = make_run(tmp_path / "run", motions=[CameraMotion(), CameraMotion(pan=0.25), CameraMotion(zoom=1.2)])
    r = evaluate_run(run, ex, CFG, faces=colour_faces)
    assert r["source"]["kind"] == "run" and r["source"]["title"] == "Colours" and r["extractors"]["clip"] == "tiny:clip"
    assert [s["index"] for s in r["shots"]] == [0, 1, 2]
    for s in r["shots"]:                                   # constant shots: perfect temporal scores
        for k in ("temporal_flickering", "motion_smoothness", "face_within", "frame_similarity_within", "style_within", "subject_consistency", "background_consistency"):
            assert s[k] == pytest.approx(1.0, abs=1e-5), (s["index"], k)
        assert 0 <= s["clip_score"] <= 100 and 0 <= s["clip_score_story"] <= 100
    j01, j12 = r["joints"]
    assert (j01["src"], j01["dst"], j01["mode"], j01["n_frames"]) == (0, 1, "crossfade", 3)
    assert (j12["src"], j12["dst"], j12["mode"], j12["n_frames"]) == (1, 2, "cut", 0)
    # cross-shot pairs are shot k with shot k+1: cos(red, yellow) = 1/sqrt(2), cos(yellow, blue) = 0
    assert j01["face_cross"] == pytest.approx(1 / math.sqrt(2), abs=0.02)
    assert j12["face_cross"] == pytest.approx(0.0, abs=0.02)
    assert j01["face_cross_same"] == 0.0 and r["shots"][0]["face_within_same"] == 1.0
    # joint closed forms (m = 2): crossfade of r = 3 frames vs a hard cut
    d01, d12 = delta(RED, YELLOW), delta(YELLOW, BLUE)
    assert j01["joint_smoothness"] == pytest.approx(1 - d01 / (255 * 4 * 5), abs=0.01)
    assert j01["joint_continuity"] == pytest.approx(1 - d01 / (255 * 4), abs=0.01)
    assert j12["joint_smoothness"] == pytest.approx(1 - d12 / 510, abs=0.01)
    assert j12["joint_continuity"] == pytest.approx(1 - d12 / 255, abs=0.01)
    # camera following reads the script's motion: constant frames show no motion, so the error is the request
    cams = [s["camera_following"] for s in r["shots"]]
    assert cams[1]["requested"]["pan"] == 0.25 and cams[1]["estimated"]["pan"] == pytest.approx(0.0, abs=1e-6)
    assert cams[1]["pan_error"] == pytest.approx(0.25) and cams[2]["zoom_error"] == pytest.approx(0.2)
    assert r["summary"]["shots"]["camera_following"]["pan_error"]["mean"] == pytest.approx(0.25 / 3)


def test_cross_shot_pairs_tail_of_k_with_head_of_k_plus_1(tmp_path, ex):
    "Two-colour shots: only (end of shot k, start of shot k+1) gives the expected cosines; any other pairing differs."
    run = make_run(tmp_path / "run", colours=((BLUE, RED), (YELLOW, BLUE), (BLUE, YELLOW)), transitions=("cut", "cut"))
    r = evaluate_run(run, ex, CFG, faces=colour_faces)
    assert [j["face_cross"] for j in r["joints"]] == [pytest.approx(1 / math.sqrt(2), abs=0.02), pytest.approx(1.0, abs=0.02)]
    assert [s["face_within_pairs"] for s in r["shots"]] == [N - 1] * 3
    assert [j["face_cross_pairs"] for j in r["joints"]] == [CFG.n_boundary ** 2] * 2


def test_every_missing_value_has_a_reason(tmp_path, ex):
    "No metric is made up: each None comes with its reason; videos have no prompt or requested motion."
    write_video(tmp_path / "a.mp4", np.full((2, 16, 16, 3), 0, np.uint8), fps=4)      # dark: no 'face'; 2 frames: no smoothness
    write_video(tmp_path / "b.mp4", np.full((1, 16, 16, 3), 200, np.uint8), fps=4)    # one frame
    r = evaluate_videos(tmp_path, ex, CFG, faces=colour_faces)
    nones = 0
    for item, keys in [(s, SHOT_METRICS) for s in r["shots"]] + [(j, JOINT_METRICS) for j in r["joints"]]:
        for k in keys:
            if item[k] is None: nones += 1; assert k in item["reasons"] and item["reasons"][k], (item.get("index"), k)
    assert nones >= 10
    a, b = r["shots"]
    assert a["face_frames"] == 0 and a["face_frames_checked"] == 2 and a["reasons"]["face_within"] == "no face found in 2 frame(s)"
    assert a["reasons"]["motion_smoothness"].startswith("2 frame(s)") and b["reasons"]["temporal_flickering"] == "one frame"
    assert r["joints"][0]["face_cross"] is None and r["joints"][0]["style_cross"] is not None
    json.dumps(r, allow_nan=False)                        # plain JSON, no NaN


def test_random_and_shuffled_videos(tmp_path, ex):
    rng = np.random.default_rng(1)
    x = np.linspace(0, 4 * np.pi, 48)
    smooth = np.stack([np.tile(((np.sin(x + 0.3 * t) + 1) * 127.5)[None, :, None], (32, 1, 3)) for t in range(12)]).astype(np.uint8)
    write_video(tmp_path / "1.mp4", smooth, fps=8)
    write_video(tmp_path / "2.mp4", smooth[rng.permutation(12)], fps=8)
    write_video(tmp_path / "3.mp4", rng.integers(0, 256, (12, 32, 48, 3), dtype=np.uint8), fps=8)
    s, sh, rnd = evaluate_videos(tmp_path, ex, CFG)["shots"]
    assert sh["motion_smoothness"] < s["motion_smoothness"] - 0.02
    assert rnd["temporal_flickering"] < 0.8 and rnd["temporal_flickering"] < s["temporal_flickering"]
    assert rnd["motion_smoothness"] < s["motion_smoothness"]


def test_partial_run(tmp_path, ex):
    "A missing transition artifact is a cut (said so); a missing shot drops its joints and is listed."
    run = make_run(tmp_path / "run", colours=(RED, YELLOW, BLUE, RED), transitions=(None, "cut", "cut"))
    (run / "shots" / "003.json").unlink()
    r = evaluate_run(run, ex, CFG)
    assert r["source"]["missing_shots"] == [3] and len(r["shots"]) == 3
    assert [(j["src"], j["dst"]) for j in r["joints"]] == [(0, 1), (1, 2)]
    assert r["joints"][0]["mode"] == "cut" and "no transition artifact" in r["joints"][0]["note"]


def test_unreadable_videos_are_reported(tmp_path, ex):
    "A shot or transition video that cannot be decoded is named in the output; its joints say why they are empty."
    run = make_run(tmp_path / "run")
    (run / "shots" / "002.mp4").write_bytes(b"not a video")
    (run / "transitions" / "000-001.mp4").write_bytes(b"")
    r = evaluate_run(run, ex, CFG)
    assert "shots/002.mp4: not a readable video" in r["shots"][2]["error"].replace("\\", "/")
    j01, j12 = r["joints"]
    assert j01["joint_smoothness"] is None and "000-001.mp4" in j01["reasons"]["joint_smoothness"]
    assert j01["frame_similarity_cross"] is not None              # the shots themselves were read
    assert j12["face_cross"] is None and j12["reasons"]["face_cross"] == "shot 2 could not be evaluated"
    tf = r["summary"]["shots"]["temporal_flickering"]
    assert (tf["n"], tf["of"]) == (2, 3) and tf["mean"] == pytest.approx(1.0, abs=1e-5)


def test_bad_run_folders(tmp_path, ex):
    with pytest.raises(VgotError, match="not a vgot run folder"): evaluate_run(tmp_path, ex, CFG)
    run = make_run(tmp_path / "run")
    d = json.loads((run / "shots" / "001.json").read_text()); d["video"] = "../../escape.mp4"
    (run / "shots" / "001.json").write_text(json.dumps(d))
    with pytest.raises(VgotError, match=r"001\.json.*video"): evaluate_run(run, ex, CFG)
    with pytest.raises(VgotError, match="give one per video"): evaluate_videos(run / "shots", ex, CFG, prompts=["only one"])


def test_write_metrics_and_plots(tmp_path, ex):
    run = make_run(tmp_path / "run")
    out = write_metrics(evaluate_run(run, ex, CFG), run / "metrics.json")
    d = load_metrics(run)
    assert out == run / "metrics.json" and d["plots"] == ["metrics_shots.png", "metrics_joints.png"]
    for p in d["plots"]: assert (run / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(d) >= {"vgot_metrics", "source", "extractors", "config", "shots", "joints", "summary", "plots"}
    assert not [p for p in run.iterdir() if p.name.startswith(".")]


def test_cli_eval_and_compare(tmp_path):
    a = make_run(tmp_path / "a")
    b = make_run(tmp_path / "b", transitions=("cut", "cut"))
    r = run_cli("eval", a, "--quiet")                    # the preset comes from run.json (tiny)
    assert r.returncode == 0, r.stderr
    assert (a / "metrics.json").is_file() and (a / "metrics_joints.png").is_file()
    assert load_metrics(a)["extractors"]["dino"] == "tiny:dino"
    r = run_cli("eval", "--compare", a, b, "--quiet")      # b has no metrics.json yet: evaluated first
    assert r.returncode == 0, r.stderr
    assert (b / "metrics.json").is_file()
    row = next(l for l in r.stdout.splitlines() if l.startswith("joints.joint_smoothness"))
    va, vb, dv = row.split()[1:4]
    assert float(vb) < float(va) and dv.startswith("-")   # cuts are less smooth than a crossfade
    r = run_cli("eval", tmp_path / "nothing-here")
    assert r.returncode == 2 and "nothing-here: not found" in r.stderr and "Traceback" not in r.stderr
