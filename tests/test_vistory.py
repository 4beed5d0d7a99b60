"ViStoryBench's story folders: read as a given script, run end to end on the tiny preset, hostile folders refused."
import json, os
from pathlib import Path

import pytest
from PIL import Image

from conftest import run_cli
from vgot.core import Script, Story, VgotError
from vgot.script import read_story
from vgot.vistory import import_vistory_story, is_vistory_story

CHARACTERS = {
    "Lily": {"name_en": "Lily", "name_ch": "莉莉", "prompt_en": "a girl with a red coat", "prompt_ch": "穿红外套的女孩",
             "tag": "realistic_human", "num_of_appearances": 2},
    "Old Fox": {"name_en": "Old Fox", "name_ch": "老狐狸", "prompt_en": "an orange fox", "prompt_ch": "一只橙色的狐狸",
                "tag": "non_human", "num_of_appearances": 1},
}


def _t(en, ch):
    return {"en": en, "ch": ch}


SHOTS = [
    {"index": 2, "Setting Description": _t("a clearing", "一片空地"), "Plot Correspondence": _t("She meets the fox.", "她遇见了狐狸。"),
     "Characters Appearing": _t(["Lily", "Old Fox"], ["莉莉", "老狐狸"]),
     "Static Shot Description": _t("Lily kneels before the fox", "莉莉跪在狐狸面前"),
     "Shot Perspective Design": _t("Medium shot, the camera pans right", "中景，右摇")},
    {"index": 1, "Setting Description": _t("a snowy forest at dawn", "黎明时分的雪林"),
     "Plot Correspondence": _t("Lily walks into the forest.", "莉莉走进森林。"), "Characters Appearing": _t(["Lily"], ["莉莉"]),
     "Static Shot Description": _t("Lily stands among the trees", "莉莉站在树间"),
     "Shot Perspective Design": _t("Long shot, eye level", "远景，平视")},
    {"index": 3, "Setting Description": _t("the clearing at dusk", "黄昏的空地"), "Plot Correspondence": _t("Night falls.", "夜幕降临。"),
     "Characters Appearing": _t([], []), "Static Shot Description": _t("empty snow under a purple sky", "紫色天空下空旷的雪地"),
     "Shot Perspective Design": _t("Wide shot, high angle", "全景，俯视")},
]


def vistory_story(root: Path, story_id="01", shots=SHOTS, characters=CHARACTERS, images=None) -> Path:
    "A story folder in ViStoryBench's layout: root/ViStory/<id>/story.json and image/<character>/NN.jpg (small, generated)."
    d = root / "ViStory" / story_id
    d.mkdir(parents=True, exist_ok=True)
    story = {"Story_type": _t("Fairy tale", "童话"), "Characters": characters, "Shots": shots}
    (d / "story.json").write_text(json.dumps(story, ensure_ascii=False), encoding="utf-8-sig")  # their loader allows a BOM
    images = images if images is not None else {"Lily": [(200, 40, 40), (190, 50, 50)], "Old Fox": [(230, 130, 20)]}
    for name, colours in images.items():
        (d / "image" / name).mkdir(parents=True, exist_ok=True)
        for k, c in enumerate(colours):
            Image.new("RGB", (48, 64), c).save(d / "image" / name / f"{k:02d}.jpg")
    return d


def test_read_as_the_benchmark_defines_shots(tmp_path):
    d = vistory_story(tmp_path)
    assert is_vistory_story(d) and is_vistory_story(d / "story.json") and not is_vistory_story(tmp_path)
    story, images = read_story(d)                      # the dispatch `vgot run` uses
    sc = story.script
    assert sc.planner == "import:vistorybench story=01 lang=en" and sc.title == "ViStory 01: Fairy tale"
    assert [s.segment for s in sc.shots] == ["Lily walks into the forest.", "She meets the fox.", "Night falls."]  # by index
    assert [s.characters for s in sc.shots] == [["Lily"], ["Lily", "Old Fox"], []]
    assert sc.shots[1].motion.pan > 0 and sc.shots[0].motion.is_static
    assert {k: v.read_bytes() for k, v in images.items()} == {
        "Lily/00.jpg": (d / "image/Lily/00.jpg").read_bytes(), "Lily/01.jpg": (d / "image/Lily/01.jpg").read_bytes(),
        "Old_Fox/00.jpg": (d / "image/Old Fox/00.jpg").read_bytes()}
    ch = import_vistory_story(d, "ch")[0].script
    assert ch.shots[0].background == "黎明时分的雪林" and ch.shots[2].relation == "紫色天空下空旷的雪地"
    assert ch.planner.endswith("lang=ch") and [c.description for c in ch.cast] == ["穿红外套的女孩", "一只橙色的狐狸"]


@pytest.mark.parametrize("case, msg", [
    ("link_image", "image/Lily/00.jpg is a symbolic link"),
    ("link_folder", "image/Lily resolves outside"),
    ("link_image_dir", "image/Lily resolves outside"),
    ("link_inside", "image/Lily is reached through a symbolic link"),
    ("no_images", "no reference image"),
    ("not_image", "reference image"),
    ("gap", "shot indexes are 1, 2, 4"),
    ("missing_field", "shot 1: 'Static Shot Description' missing"),
    ("bad_key", "is not a folder name"),
])
def test_hostile_folders(tmp_path, case, msg):
    "Symlinks and paths out of the story folder, missing images, gaps: refused with one line, on the CLI too, nothing written."
    secret = tmp_path / "secret"; secret.mkdir()
    Image.new("RGB", (8, 8)).save(secret / "00.jpg")
    shots, chars = json.loads(json.dumps(SHOTS)), json.loads(json.dumps(CHARACTERS))
    if case == "gap":
        shots[2]["index"] = 4
    if case == "missing_field":
        shots[1].pop("Static Shot Description")
    if case == "bad_key":
        chars["../secret"] = {"prompt_en": "x"}
    d = vistory_story(tmp_path, shots=shots, characters=chars)
    lily = d / "image" / "Lily"
    if case == "link_image":
        (lily / "00.jpg").unlink(); os.symlink(secret / "00.jpg", lily / "00.jpg")
    if case == "link_folder":
        for f in lily.iterdir(): f.unlink()
        lily.rmdir(); os.symlink(secret, lily)
    if case == "link_image_dir":
        (d / "image" / "Old Fox").rename(tmp_path / "fox"); (d / "image").rename(tmp_path / "image")
        os.symlink(tmp_path / "image", d / "image")
    if case == "link_inside":   # a link that stays in the story folder is refused too
        lily.rename(d / "lily_real"); os.symlink(d / "lily_real", lily)
    if case == "no_images":
        for f in lily.iterdir(): f.unlink()
    if case == "not_image":
        (lily / "00.jpg").write_text("not a jpeg")
    with pytest.raises(VgotError, match=msg.replace(".", r"\.")):
        import_vistory_story(d)
    run = tmp_path / "run"
    r = run_cli("run", d, "--run-dir", run, "--quiet")
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (run / "assets").exists() and not (run / "script.json").exists()


def test_run_end_to_end_on_tiny(tmp_path):
    d = vistory_story(tmp_path)
    run = tmp_path / "runs" / "01"
    r = run_cli("run", d, "--preset", "tiny", "--run-dir", run, "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    assert (run / "final.mp4").is_file() and len(list((run / "keyframes").glob("*.png"))) == 3
    sc = Script.load(run / "script.json")
    assert sc.planner == "import:vistorybench story=01 lang=en" and sc.shots[1].identity_refs == {"Lily": "Lily/00.jpg", "Old Fox": "Old_Fox/00.jpg"}
    assert (run / "assets/characters/Old_Fox/00.jpg").read_bytes() == (d / "image/Old Fox/00.jpg").read_bytes()
    assert (run / "assets/characters/Lily/01.jpg").is_file()   # every reference is copied, the first is the identity
    # --lang ch reads the Chinese text into its own run; --lang on a story that is not ViStoryBench's is refused
    r = run_cli("run", d, "--lang", "ch", "--run-dir", tmp_path / "runs" / "01ch", "--quiet", "--stop-after", "script")
    assert r.returncode == 0, r.stderr[-2000:]
    assert Script.load(tmp_path / "runs/01ch/script.json").shots[0].background == "黎明时分的雪林"
    assert Story.load(tmp_path / "runs/01ch/story.json").script.planner.endswith("lang=ch")
    r = run_cli("run", "data/stories/lighthouse.md", "--lang", "ch", "--run-dir", tmp_path / "x", "--quiet")
    assert r.returncode == 2 and "not a ViStoryBench story folder" in r.stderr and not (tmp_path / "x").exists()
    r = run_cli("run", d, "--lang", "zh", "--run-dir", tmp_path / "y", "--quiet")
    assert r.returncode == 2 and "invalid choice" in r.stderr


# --- export: ViStoryBench's output-reading rules, written from their code as a fixture ----------------------------------
# (vistorybench/dataset_loader/read_outputs.py and bench_run.py at 514cc31; see shared/formats/vistorybench.md (b))
RUN_NAME = __import__("re").compile(r"^\d{8}[_-]\d{6}$")
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".gif", ".bmp"}


def _dirs(p: Path):
    return sorted(d for d in p.iterdir() if d.is_dir())


def read_method_outputs(outputs: Path, method: str) -> dict:
    "{(mode, lang, run): {story id: {shot number: file}}} as their runner and reader find them; ValueError where theirs fails."
    m = outputs / method
    if (m / "en").is_dir() or (m / "ch").is_dir():          # language-first wins when <method>/en or /ch exists
        combos = [(mo.name, l, mo) for l in ("en", "ch") if (m / l).is_dir() for mo in _dirs(m / l)]
    else:                                                     # <method>/<mode>/<lang>/
        combos = [(mo.name, l, mo / l) for mo in _dirs(m) for l in ("en", "ch") if (mo / l).is_dir()]
    found = {}
    for mode, lang, base in combos:
        for run in _dirs(base):                               # every subfolder is a run
            stories = {}
            for sd in sorted(_dirs(run), key=lambda p: int(p.name)):   # int() of every folder name
                nested = [d for d in _dirs(sd) if RUN_NAME.match(d.name)] or [sd]
                shots = {}
                for f in nested:
                    sub = [d for d in _dirs(f) if d.name in ("shots", "shot") or d.name.endswith(("shot", "shots"))]
                    for p in sorted((sub[0] if sub else f).iterdir()):
                        if p.is_file() and p.suffix.lower() in IMAGE_EXTS:
                            shots[int(p.name.rsplit("_", 1)[-1].split(".")[0])] = p   # between the last _ and the first .
                stories[sd.name] = shots
            found[(mode, lang, run.name)] = stories
    return found


def test_layout_fixture_follows_their_rules(tmp_path):
    "The fixture reads what their reader reads and fails where theirs fails (a stray folder, an unparsable shot name)."
    s = tmp_path / "o" / "m" / "base" / "en" / "20260101_120000" / "07" / "shots"; s.mkdir(parents=True)
    for n in ("shot_01.png", "2.jpg", "shot_3.JPEG", "notes.success"): (s / n).write_bytes(b"x")
    assert {k: sorted(v["07"]) for k, v in read_method_outputs(tmp_path / "o", "m").items()} == {("base", "en", "20260101_120000"): [1, 2, 3]}
    (s / "shot-04.png").write_bytes(b"x")
    with pytest.raises(ValueError): read_method_outputs(tmp_path / "o", "m")
    (s / "shot-04.png").unlink(); (s.parent.parent / "logs").mkdir()
    with pytest.raises(ValueError): read_method_outputs(tmp_path / "o", "m")


def _hand_made_run(tmp_path: Path, story_dir: Path, lang="en") -> Path:
    "A run folder with the imported script and one keyframe per shot (colours known), without running the models."
    from vgot.core import RunStore
    st = RunStore(tmp_path / f"run_{story_dir.name}_{lang}")
    sc = import_vistory_story(story_dir, lang)[0].script
    st.write_artifact("script.json", sc)
    (st.root / "keyframes").mkdir()
    for s in sc.shots:
        Image.new("RGB", (32, 32), (40 * s.index, 90, 200)).save(st.root / f"keyframes/{s.index:03d}.png")
    return st.root


def test_export_is_read_by_their_rules(tmp_path):
    d1 = vistory_story(tmp_path / "data", "01")
    d2 = vistory_story(tmp_path / "data", "12", shots=SHOTS[:2])
    out = tmp_path / "outputs"
    for d, lang in ((d1, "en"), (d2, "en"), (d1, "ch")):
        r = run_cli("export", _hand_made_run(tmp_path, d, lang), "--format", "vistorybench", "--out", out, "--timestamp", "20261207_101500")
        assert r.returncode == 0, r.stderr
    found = read_method_outputs(out, "vgot")
    assert set(found) == {("base", "en", "20261207_101500"), ("base", "ch", "20261207_101500")}
    en = found[("base", "en", "20261207_101500")]
    assert sorted(en) == ["01", "12"] and sorted(en["12"]) == [1, 2]
    story = json.loads((d1 / "story.json").read_text(encoding="utf-8-sig"))
    assert sorted(en["01"]) == sorted(s["index"] for s in story["Shots"])     # shot numbers are the story's indexes
    run = tmp_path / "run_01_en"
    for j in range(3):
        assert en["01"][j + 1].read_bytes() == (run / f"keyframes/{j:03d}.png").read_bytes()
    # a run of a story that was not read from ViStoryBench needs --story-id; bad names are refused, nothing written
    r = run_cli("export", run, "--format", "vistorybench", "--out", tmp_path / "o2", "--method", "../x")
    assert r.returncode == 2 and "method '../x' is not a plain folder name" in r.stderr and not (tmp_path / "o2").exists()
    r = run_cli("export", run, "--format", "vistorybench", "--out", tmp_path / "o2", "--story-id", "1a")
    assert r.returncode == 2 and "story id '1a'" in r.stderr and not (tmp_path / "o2").exists()
