"Story memory (issue 31): place ids in the script, the memory bank per run, keyframes conditioned on a place's first visit, pins."
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vgot.keyframes as kf_mod
from conftest import run_cli
from vgot.core import CameraMotion, RunStore, Script, Shot
from vgot.keyframes import KeyframeConfig, generate_keyframes
from vgot.memory import MemoryBank, memory_plan, pin_entry, read_bank
from vgot.planners import RulePlanner
from vgot.script import generate_script
from vgot.planners import ScriptConfig

PLACES = ("the beach", "the forest", "the city", "the beach")  # leaves the beach and comes back


def trip():
    return Script("trip", [Shot(index=i, segment=f"Pip at {b}.", duration=2.0, character="Pip, a small red fox", background=b,
                                relation="Pip walks", camera="static shot", motion=CameraMotion(), characters=["Pip"])
                           for i, b in enumerate(PLACES)])  # fmt: skip


def spy_memory(monkeypatch):
    seen = {}
    real = kf_mod.make_keyframe

    def spy(shot, prompt, id_paths, prev_png, *a, **kw):
        seen[shot.index] = None if prev_png is None else Path(prev_png).name
        return real(shot, prompt, id_paths, prev_png, *a, **kw)

    monkeypatch.setattr(kf_mod, "make_keyframe", spy)
    return seen


@pytest.mark.parametrize("mode,expected", [
    ("previous", {0: None, 1: "000.png", 2: "001.png", 3: "002.png"}),  # the method: the city's picture for the beach
    ("bank", {0: None, 1: None, 2: None, 3: "000.png"}),  # the beach's own first picture; no old place for a new one
    ("none", {0: None, 1: None, 2: None, 3: None}),
])  # fmt: skip
def test_the_memory_branch_sees_what_the_mode_says(tiny_models, tmp_path, monkeypatch, mode, expected):
    seen = spy_memory(monkeypatch)
    st = RunStore(tmp_path / "run")
    generate_keyframes(trip(), tiny_models, KeyframeConfig(memory=mode), st)
    assert seen == expected
    bank = read_bank(st)
    assert bank.mode == mode
    assert [(e.id, e.image, e.shots) for e in bank.entries if e.kind == "location"] == [
        ("beach", "keyframes/000.png", [0, 3]), ("forest", "keyframes/001.png", [1]), ("city", "keyframes/002.png", [2])]
    assert [(e.id, e.shots) for e in bank.entries if e.kind == "character"] == [("Pip", [0, 1, 2, 3])]


def test_a_pinned_place_redoes_the_keyframes_at_that_place_only(tiny_models, tmp_path, monkeypatch):
    st = RunStore(tmp_path / "run")
    cfg = KeyframeConfig(memory="bank")
    generate_keyframes(trip(), tiny_models, cfg, st)
    before = {k: v["inputs"] for k, v in st.manifest["artifacts"].items() if k.startswith("keyframe/")}
    Image.new("RGB", (64, 64), (230, 200, 120)).save(tmp_path / "my_beach.png")
    pin_entry(st, "beach", tmp_path / "my_beach.png")
    seen = spy_memory(monkeypatch)
    generate_keyframes(trip(), tiny_models, cfg, st)
    after = {k: v["inputs"] for k, v in st.manifest["artifacts"].items() if k.startswith("keyframe/")}
    assert sorted(k for k in after if after[k] != before[k]) == ["keyframe/000", "keyframe/003"]
    assert seen == {0: "beach.png", 3: "beach.png"}  # both beach shots see the pinned picture, the others are kept
    assert read_bank(st).entry("location", "beach").pinned


def test_the_rules_planner_gives_a_returning_place_its_id(tmp_path):
    story = tmp_path / "trip.txt"
    story.write_text("Pip plays on the beach in the morning sun.\n\nPip runs into the forest between tall trees.\n\n"
                     "Pip crosses the city, past the shops and the station.\n\nAt dusk Pip comes back to the beach.\n")
    script = generate_script(story, RulePlanner(), ScriptConfig(), RunStore(tmp_path / "run"))
    assert [s.location for s in script.shots] == ["beach", "forest", "city", "beach"]
    assert memory_plan(script, "bank")[3] == ("keyframe", 0)


def test_cli_memory_shows_and_pins(tiny_models, tmp_path):
    st = RunStore(tmp_path / "run")
    st.write_artifact("script.json", trip())
    generate_keyframes(trip(), tiny_models, KeyframeConfig(memory="bank"), st)
    r = run_cli("memory", st.root)
    assert r.returncode == 0, r.stderr
    assert "location   beach" in r.stdout and "shots 0, 3" in r.stdout
    Image.new("RGB", (64, 64), (230, 200, 120)).save(tmp_path / "my_beach.png")
    r = run_cli("memory", st.root, "--pin", f"beach={tmp_path / 'my_beach.png'}")
    assert r.returncode == 0 and "beach: pinned assets/memory/beach.png" in r.stdout, r.stderr
    r = run_cli("memory", st.root, "--pin", "moon=x.png")
    assert r.returncode != 0 and "'moon': not a location of this run's bank" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run_cli("memory", tmp_path / "nowhere")
    assert r.returncode != 0
