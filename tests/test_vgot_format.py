"""VGoT's own shot scripts (image_prompt_pairs.json beside avatar images): import, export, and hostile input."""
import json, math, os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from vgot.core import Script, VgotError
from vgot.script import read_story
from vgot.shotcards import (VGOT_FILE, camera_motion_from_text, export_vgot_script, import_vgot_script, is_vgot_script,
                            parse_vgot_prompt)


def _avatar(path: Path, colour=(200, 150, 120)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 48), colour).save(path)


def _story(folder: Path, entries, avatars=("avatar_Marco_young.jpg",)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for a in avatars: _avatar(folder / a)
    (folder / VGOT_FILE).write_text(json.dumps(entries), encoding="utf-8")
    return folder


CHEF = [   # as the paper's files write them: lowercase labels, an extra 'age:', repository-relative avatar paths
    {"ip_img_path": "data/data_chef/avatar_Marco_young.jpg",
     "prompt": "character: Marco, age: 7, background: Young Marco, cooking with his grandmother. Relation: Close bond with his "
               "grandmother. Camera pose: Close-up of Marco's hands as he carefully stirs a pot. HDR description: Warm, soft light."},
    {"ip_img_path": "data/data_chef/avatar_Marco_young.jpg",
     "prompt": "Character: Marco, age: 8. Background: a spice market. Relation: he reaches for the jars. "
               "Camera Pose: Tracking shot, the camera pans right along the stalls. HDR Description: bright sunlight."},
    {"ip_img_path": "data/data_chef/avatar_Marco_teen.jpg",
     "prompt": "HDR Description: cool kitchen light. Camera Pose: the camera slowly pushes in on his face. Relation: he plates a dish. "
               "Character: Marco, age: 16. Background: a culinary school kitchen."},
]
SEA = [    # other labels missing or reordered, no avatars, a non-Latin name
    {"prompt": "Background: the open sea at dusk. Camera Pose: Wide shot from the bow, slowly panning left. Relation: waves roll in."},
    {"prompt": "Character: Мария, a sailor. Camera Pose: static shot of the mast. Relation: she ties a knot."},
    {"prompt": "Character: Мария. Relation: she looks up at the gulls. Camera Pose: the camera tilts up to the sky."},
    {"prompt": "Relation: the harbour appears. Camera Pose: the camera pulls back to reveal the town."},
]


def test_import_several_stories(tmp_path):
    chef = _story(tmp_path / "data_chef", CHEF, ("avatar_Marco_young.jpg", "avatar_Marco_teen.jpg"))
    story, images = import_vgot_script(chef)
    sc = story.script
    assert sc.planner == "import:vgot" and sc.title == "data chef" and [c.name for c in sc.cast] == ["Marco"]
    s0, s1, s2 = sc.shots
    assert (s0.character, s0.background) == ("Marco, age: 7", "Young Marco, cooking with his grandmother")
    assert s0.camera == "Close-up of Marco's hands as he carefully stirs a pot" and s0.motion.is_static
    assert s1.motion.pan == pytest.approx(0.22) and s2.motion.zoom == pytest.approx(1.22)
    assert (s2.relation, s2.hdr, s2.background) == ("he plates a dish", "cool kitchen light", "a culinary school kitchen")
    assert [s.duration for s in sc.shots] == [2.0] * 3
    assert s0.identity_refs == {"Marco": "avatar_Marco_young.jpg"} and s2.identity_refs == {"Marco": "avatar_Marco_teen.jpg"}
    assert set(images) == {"avatar_Marco_young.jpg", "avatar_Marco_teen.jpg"}

    sea = _story(tmp_path / "sea", SEA, ())
    sc = import_vgot_script(sea / VGOT_FILE)[0].script
    a, b, c, d = sc.shots
    assert a.characters == [] and a.character == "no people, the scene itself" and a.motion.pan == pytest.approx(-0.22)
    assert b.characters == ["Мария"] and b.background == "the open sea at dusk" and b.motion.is_static
    assert c.motion.tilt == pytest.approx(0.22) and d.motion.zoom == pytest.approx(0.82)
    assert [x.name for x in sc.cast] == ["Мария"] and sc.cast[0].identity_image is None


@pytest.mark.parametrize("prose, move", [
    ("Wide shot from the bow, slowly panning left", "pan"), ("tracking shot of the runner", "pan"),
    ("the camera tilts up to the lamp", "tilt_up"), ("crane down onto the square", "tilt_down"),
    ("Slow push in on her eyes", "zoom_in"), ("zooms in on the letter", "zoom_in"), ("dolly in", "zoom_in"),
    ("the camera pulls back", "zoom_out"), ("zoom out over the valley", "zoom_out"),
    ("locked-off static shot", "static"), ("Close-up", "static"), ("Over-the-shoulder", "static"), ("", "static")])
def test_camera_phrases(prose, move):
    "Known answers for a 3 s shot: a move of 0.28 of the frame, zoom 1.28 in and 1/1.28 out; longer shots move more."
    m, kind = camera_motion_from_text(prose, 3.0)
    assert kind == move
    want = dict(pan=(None, 0.0, 1.0), tilt_up=(0.0, 0.28, 1.0), tilt_down=(0.0, -0.28, 1.0), zoom_in=(0.0, 0.0, 1.28),
                zoom_out=(0.0, 0.0, 0.78), static=(0.0, 0.0, 1.0))[move]
    got = (m.pan, m.tilt, m.zoom)
    if move == "pan": assert abs(got[0]) == pytest.approx(0.28) and got[1:] == want[1:]
    else: assert got == pytest.approx(want)
    if move != "static":  # moves grow with the shot's length; a static shot stays static
        short, _ = camera_motion_from_text(prose, 1.0)
        size = lambda c: abs(c.pan) + abs(c.tilt) + abs(math.log(c.zoom))
        assert 0 < size(short) < size(m)
    else:
        assert camera_motion_from_text(prose, 8.0)[0].is_static


@pytest.mark.parametrize("entries, msg", [
    ({"prompt": "x"}, "expected a JSON list"),
    ([], "expected a JSON list"),
    (["Character: a"], "entry 0: expected an object"),
    ([{"ip_img_path": "avatar_Marco_young.jpg"}], "entry 0: 'prompt' is missing"),
    ([{"prompt": "Character: A. Background: b."}, {"prompt": "no labels at all"}], "entry 1: the prompt has none of the labels"),
    ([{"prompt": "Character: A.", "ip_img_path": 7}], "entry 0: ip_img_path is not a text"),
    ([{"prompt": "Character: A.", "camera_motion": {"zoom": 9}}], "entry 0: camera_motion.zoom = 9"),
])
def test_bad_structure(tmp_path, entries, msg):
    d = _story(tmp_path / "s", entries)
    with pytest.raises(VgotError, match=msg): import_vgot_script(d)


def test_bad_json(tmp_path):
    d = tmp_path / "s"; d.mkdir()
    (d / VGOT_FILE).write_text("[{\"prompt\": ")
    with pytest.raises(VgotError, match="not valid JSON"): import_vgot_script(d)
    (d / VGOT_FILE).write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(VgotError, match="nested too deeply|not valid JSON"): import_vgot_script(d)


HOSTILE = ["/etc/passwd", "../outside.jpg", "data/../../outside.jpg", "C:\\avatars\\a.jpg", "a\x00.jpg", "", "missing.jpg",
           "notes.txt", "link.jpg", "linkdir/avatar.jpg"]


@pytest.mark.parametrize("bad", HOSTILE)
def test_hostile_ip_img_path(tmp_path, bad):
    "Paths out of the story folder, through symlinks, to nothing or to a non-image: refused, naming the entry, via the CLI too."
    secret = tmp_path / "outside.jpg"; _avatar(secret)
    d = tmp_path / "story"; d.mkdir()
    (d / "notes.txt").write_text("not an image")
    os.symlink(secret, d / "link.jpg"); os.symlink(tmp_path, d / "linkdir")
    _avatar(tmp_path / "avatar.jpg")
    entries = [{"prompt": "Character: Ada. Background: a lighthouse. Relation: she waits. Camera Pose: static."},
               {"ip_img_path": bad, "prompt": "Character: Ada. Relation: she climbs. Camera Pose: tilts up."}]
    (d / VGOT_FILE).write_text(json.dumps(entries))
    if bad == "":   # an empty path is no path: the shot has no identity image
        assert import_vgot_script(d)[0].script.shots[1].identity_refs == {}
        return
    with pytest.raises(VgotError, match="entry 1: ip_img_path"): import_vgot_script(d)
    run = tmp_path / "run"
    r = run_cli("run", d, "--run-dir", run, "--quiet")
    assert r.returncode == 2 and "entry 1: ip_img_path" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2
    assert not (run / "assets").exists() and not (run / "script.json").exists()


def test_run_export_and_round_trip(tmp_path):
    "A folder in VGoT's layout runs to a final video; --to vgot writes it back; importing that gives the same script."
    chef = _story(tmp_path / "chef", CHEF, ("avatar_Marco_young.jpg", "avatar_Marco_teen.jpg"))
    r = run_cli("run", chef, "--run-dir", tmp_path / "runs" / "chef", "--quiet", "--stop-after", "script")
    assert r.returncode == 0, r.stderr
    run = tmp_path / "runs" / "chef"
    sc = Script.load(run / "script.json")
    assert len(sc.shots) == 3 and sc.planner == "import:vgot"
    assert (run / "assets" / "characters" / "avatar_Marco_teen.jpg").read_bytes() == (chef / "avatar_Marco_teen.jpg").read_bytes()
    r = run_cli("script", run, "--to", "vgot", "--out", tmp_path / "exported")
    assert r.returncode == 0, r.stderr
    back = import_vgot_script(tmp_path / "exported", title=sc.title)[0].script
    assert back.shots == sc.shots and back.cast == sc.cast
    entries = json.loads((tmp_path / "exported" / VGOT_FILE).read_text())
    assert [e["ip_img_path"] for e in entries] == ["avatar_Marco_young.jpg", "avatar_Marco_young.jpg", "avatar_Marco_teen.jpg"]
    assert parse_vgot_prompt(entries[1]["prompt"])["camera"] == "Tracking shot, the camera pans right along the stalls"
    # `vgot script FILE --from vgot` is the same import, one stage at a time
    r = run_cli("script", chef / VGOT_FILE, "--from", "vgot", "--run-dir", tmp_path / "one")
    assert r.returncode == 0 and Script.load(tmp_path / "one" / "script.json").shots == sc.shots, r.stderr
    r = run_cli("script", "data/stories/lighthouse.md", "--from", "vgot", "--run-dir", tmp_path / "two")
    assert r.returncode == 2 and "not VGoT's format" in r.stderr


def test_full_run_on_tiny(tmp_path):
    sea = _story(tmp_path / "sea", SEA, ())
    r = run_cli("run", sea / VGOT_FILE, "--preset", "tiny", "--run-dir", tmp_path / "run", "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "run" / "final.mp4").is_file() and len(list((tmp_path / "run" / "shots").glob("*.mp4"))) == 4
    assert is_vgot_script(sea) and read_story(sea)[0].script is not None
    r = run_cli("resume", tmp_path / "run", "--quiet")               # story.json carries the script: resume needs no source
    assert r.returncode == 0, r.stderr[-2000:]
