"""Face consistency measured on faces: dlib's detector and descriptor on real photographs with known answers.

Grace Hopper (matplotlib's sample data) and Eileen Collins (scikit-image's astronaut, cropped to her head) are two
different people; shots are short videos made from their photographs."""
import io, json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from vgot.media import write_video
from vgot.metrics import FACE_DISTANCE, DlibFaces, Extractors, MetricsConfig, evaluate_videos
from vgot.metric_tables import face_counts, format_summary, compare_metrics

CFG = MetricsConfig(progress=False, n_boundary=2, plots=False)
SIZE = 176


def _square(img: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(img).resize((SIZE, SIZE), Image.BICUBIC))


@pytest.fixture(scope="module")
def photos():
    import matplotlib.cbook as cbook
    from skimage import data
    hopper = np.asarray(Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("RGB"))[44:556]   # 512 x 512
    collins = np.ascontiguousarray(data.astronaut()[:300, 60:360])                                     # 300 x 300
    return dict(hopper=hopper, collins=collins, hopper_s=_square(hopper), collins_s=_square(collins))


@pytest.fixture(scope="module")
def faces():
    return DlibFaces()


@pytest.fixture(scope="module")
def ex():
    return Extractors.from_preset("tiny", device="cpu")


def _jpeg(x, q=35):
    b = io.BytesIO(); Image.fromarray(x).save(b, "JPEG", quality=q); return np.asarray(Image.open(b).convert("RGB"))


def _clip(img: np.ndarray, n: int = 6) -> np.ndarray:
    "n frames of one photograph with a small drift and brightness change, as a shot would have."
    out = []
    for t in range(n):
        f = np.roll(img, (t, 2 * t), axis=(0, 1)).astype(np.float64) * (1 + 0.03 * t)
        out.append(np.clip(f, 0, 255).astype(np.uint8))
    return np.stack(out)


@pytest.mark.parametrize("change", ["flip", "shift", "crop", "bright", "dark", "jpeg"])
def test_same_person_under_changes(photos, faces, change):
    h = photos["hopper"]
    x = dict(flip=h[:, ::-1], shift=np.roll(h, (12, -20), (0, 1)), crop=h[30:480, 20:490],
             bright=np.clip(h * 1.35, 0, 255).astype(np.uint8), dark=(h * 0.6).astype(np.uint8), jpeg=_jpeg(h))[change]
    ref, got = faces(h), faces(np.ascontiguousarray(x))
    assert len(ref) == 1 and len(got) == 1
    assert np.linalg.norm(got[0].descriptor - ref[0].descriptor) < FACE_DISTANCE


def test_different_people_and_no_face(photos, faces):
    a, b = faces(photos["hopper"])[0], faces(photos["collins"])[0]
    assert np.linalg.norm(a.descriptor - b.descriptor) > FACE_DISTANCE
    from skimage import data
    assert faces(np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)) == []
    assert faces(np.ascontiguousarray(data.coffee())) == []                         # a cup of coffee: no face
    assert len(faces(photos["hopper_s"])) == 1 and len(faces(photos["collins_s"])) == 1   # faces of about 60 px


def _write(tmp, name, frames):
    p = tmp / f"{name}.mp4"; write_video(p, frames, fps=4); return p


def test_face_consistency_within_a_shot(tmp_path, photos, ex):
    h, c = photos["hopper_s"], photos["collins_s"]
    one = _write(tmp_path, "a_one", _clip(h))
    alt = _write(tmp_path, "b_alt", np.stack([h, c, h, c, h, c]))
    r = evaluate_videos([one, alt], ex, CFG)
    s1, s2 = r["shots"]
    assert s1["face_frames"] == 6 and s2["face_frames"] == 6
    assert s1["face_within_same"] == 1.0 and s2["face_within_same"] == 0.0
    assert s1["face_within"] > 0.95 and s2["face_within"] < s1["face_within"] - 0.05
    assert r["extractors"]["faces"].startswith("dlib") and r["summary"]["faces"]["frames_with_face"] == 12


def test_face_swap_across_a_cut_scores_lower(tmp_path, photos, ex):
    h, c = photos["hopper_s"], photos["collins_s"]
    a, same, swap = _write(tmp_path, "a", _clip(h)), _write(tmp_path, "b", _clip(h[:, ::-1])), _write(tmp_path, "c", _clip(c))
    keep = evaluate_videos([a, same], ex, CFG)["joints"][0]
    swapped = evaluate_videos([a, swap], ex, CFG)["joints"][0]
    assert keep["face_cross_pairs"] == swapped["face_cross_pairs"] == CFG.n_boundary ** 2
    assert keep["face_cross_same"] == 1.0 and swapped["face_cross_same"] == 0.0
    assert swapped["face_cross"] < keep["face_cross"] - 0.05


def test_no_face_is_not_scored(tmp_path, ex):
    noise = _write(tmp_path, "noise", np.random.default_rng(1).integers(0, 256, (5, 96, 96, 3), dtype=np.uint8))
    r = evaluate_videos([noise, noise], ex, CFG)
    s, j = r["shots"][0], r["joints"][0]
    assert s["face_frames"] == 0 and s["face_within"] is None and s["face_fidelity"] is None
    assert s["reasons"]["face_within"] == "no face found in 5 frame(s)"
    assert j["face_cross"] is None and "no tracked face" in j["reasons"]["face_cross"]
    assert r["summary"]["shots"]["face_within"] == dict(mean=None, min=None, n=0, of=2)
    assert s["frame_similarity_within"] is not None                 # the whole-frame metric has its own name
    assert face_counts(r) == "faces: none found in 10 frames of 2 shots: no face metrics"


def test_identity_fidelity_and_characters(tmp_path, photos, ex):
    h, c = photos["hopper_s"], photos["collins_s"]
    vids = [_write(tmp_path, "0", _clip(h)), _write(tmp_path, "1", _clip(c)), _write(tmp_path, "2", _clip(h[:, ::-1]))]
    refs = dict(grace=photos["hopper"])
    r = evaluate_videos(vids, ex, CFG, references=refs, characters=["grace", "grace", "grace"])
    f = [s["face_fidelity"] for s in r["shots"]]
    assert f[0] > f[1] + 0.05 and f[2] > f[1] + 0.05                 # made from the reference scores higher
    assert [s["face_fidelity_same"] for s in r["shots"]] == [1.0, 0.0, 1.0]
    (ch,) = r["characters"]
    assert ch["character"] == "grace" and ch["shots"] == [0, 1, 2] and len(ch["pairs"]) == 3
    by = {tuple(p["shots"]): p for p in ch["pairs"]}
    assert by[(0, 2)]["face_cross_same"] == 1.0 and by[(0, 1)]["face_cross_same"] == 0.0
    # two references: each shot tracks the character matched most often; several faces in a frame are matched
    both = np.concatenate([h, c], axis=1)                           # one frame, two people
    v = _write(tmp_path, "both", np.stack([both] * 4))
    r2 = evaluate_videos([v, v], ex, CFG, references=dict(grace=photos["hopper"], eileen=photos["collins"]),
                         characters=["eileen", "grace"])
    s0, s1 = r2["shots"]
    assert s0["faces_per_frame"] == [2] * 4 and s0["face_character"] == "eileen" and s1["face_character"] == "grace"
    assert s0["face_fidelity_same"] == 1.0 and s1["face_fidelity_same"] == 1.0
    assert r2["joints"][0]["face_cross_same"] == 0.0                # eileen's face at the end of 0, grace's at the start of 1


def test_faces_off_and_summary(tmp_path, photos, ex):
    v = _write(tmp_path, "g", _clip(photos["hopper_s"]))
    r = evaluate_videos([v], ex, MetricsConfig(progress=False, faces="off", plots=False))
    assert r["shots"][0]["face_within"] is None and r["shots"][0]["reasons"]["face_within"].startswith("face metrics turned off")
    on = evaluate_videos([v], ex, CFG)
    text = format_summary(on)
    assert "face consistency within shots" in text and "faces: 6 found in 6 of 6 frames checked" in text
    table = compare_metrics([on, r], ["faces", "off"])
    assert "shots.face_within" in table and "faces.frames_with_face" in table


def test_cli_eval_faces(tmp_path, photos):
    h = photos["hopper_s"]
    _write(tmp_path, "0", _clip(h)); _write(tmp_path, "1", _clip(h[:, ::-1]))
    ref = tmp_path / "grace.png"; Image.fromarray(photos["hopper"]).save(ref)
    r = run_cli("eval", tmp_path, "--preset", "tiny", "--reference", f"grace={ref}", "--no-plots")
    assert r.returncode == 0, r.stderr
    assert "face consistency within shots" in r.stdout and "identity fidelity" in r.stdout
    assert "faces: 12 found in 12 of 12 frames checked (2 of 2 shots)" in r.stdout
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["summary"]["shots"]["face_fidelity_same"]["mean"] == 1.0 and m["extractors"]["face_references"] == {"grace": "found"}
    r = run_cli("eval", tmp_path, "--preset", "tiny", "--faces", "off", "--no-plots", "--out", tmp_path / "off.json")
    assert r.returncode == 0 and "face metrics: none (face metrics turned off" in r.stdout
    r = run_cli("eval", tmp_path, "--preset", "tiny", "--reference", "grace")
    assert r.returncode == 2 and "expected NAME=IMAGE" in r.stderr


def test_tiny_run_reports_no_faces(tmp_path):
    "A tiny-preset run (noise): the report and `vgot eval` say no faces were found, and give no face number."
    run = tmp_path / "run"
    r = run_cli("run", "--example", "fox_and_crow", "--run-dir", run, "--eval", "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads((run / "metrics.json").read_text())
    assert m["summary"]["faces"]["frames_with_face"] == 0
    assert all(s["face_within"] is None and s["face_fidelity"] is None for s in m["shots"])
    page = (run / "report.html").read_text()
    assert "faces: none found in" in page and "Random weights" in page
    r = run_cli("eval", run, "--no-plots")
    assert r.returncode == 0 and "faces: none found in" in r.stdout
    line = next(l for l in r.stdout.splitlines() if l.startswith("face consistency within shots"))
    assert "—" in line and "(0/" in line
