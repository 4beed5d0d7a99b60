"""The procedural world (vgot.world): its renderer, captions and oracles, and resumable training."""
import random

import numpy as np
import pytest
import torch

from vgot.world import (
    COLOURS, LIGHTS, PLACES, SHAPES, HDR_PHRASES, Figure, Scene, View, caption, held_out, layout_agreement,
    random_scene, read_characters, read_place, read_portrait, render, render_portrait, world_tokenizer,
)  # fmt: skip


def _scenes(n, seed):
    r = random.Random(seed)
    return [random_scene(r) for _ in range(n)]


def test_props_never_take_a_character_colour():
    for spec in PLACES.values():
        for pc in spec["props"]:
            assert min(np.linalg.norm(np.subtract(pc, c)) for c in COLOURS.values()) >= 60


def test_oracles_read_renders_back_nearly_perfectly():
    scenes = _scenes(300, 7)
    place = colour = shape = 0
    for s in scenes:
        im = render(s)
        place += read_place(im) == (s.place, s.light)
        got = read_characters(im)[: len(s.figures)]
        want = sorted((f.colour, f.shape) for f in s.figures)
        colour += sorted(c["colour"] for c in got) == sorted(c for c, _ in want)
        shape += sorted((c["colour"], c["shape"]) for c in got) == want
    assert place / len(scenes) == 1.0
    assert colour / len(scenes) >= 0.97 and shape / len(scenes) >= 0.97, (colour, shape)


def test_oracles_read_noise_at_chance():
    g = np.random.default_rng(0)
    scenes = _scenes(200, 8)
    place = colour = 0
    for s in scenes:
        noise = g.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        place += read_place(noise) == (s.place, s.light)
        cs = read_characters(noise, s.place, s.light)
        colour += bool(cs) and cs[0]["colour"] == s.figures[0].colour
    assert place / len(scenes) < 0.15  # 24 (place, light) pairs: chance is 1/24
    assert colour / len(scenes) < 0.3  # 8 colours: chance is 1/8


def test_character_position_and_portraits():
    s = Scene("forest", "noon", 1, [Figure("yellow", "triangle", x=0.3)])
    (c,) = read_characters(render(s))
    assert abs(c["x"] - 0.3) < 0.03 and abs(c["y"] - 0.74) < 0.05
    for col in COLOURS:
        for sh in SHAPES:
            assert read_portrait(render_portrait(col, sh)) == dict(colour=col, shape=sh)


def test_camera_moves_the_view_and_the_light_keeps_the_layout():
    s = Scene("city", "noon", 3, [Figure("red", "circle", x=0.5)])
    (c0,) = read_characters(render(s))
    (c1,) = read_characters(render(s, View(pan=0.2)))
    assert c1["x"] == pytest.approx(c0["x"] - 0.2, abs=0.03)  # the camera pans right: the character moves left
    (c2,) = read_characters(render(s, View(zoom=1.5)))
    assert c2["area"] > 1.8 * c0["area"]
    for place in PLACES:  # the same layout under another light and character agrees; another layout does not
        same = [layout_agreement(render(Scene(place, "noon", i, [Figure("red", "circle")])),
                                 render(Scene(place, "night", i, [Figure("blue", "star", 0.3)])), place, "noon", "night")
                for i in range(10)]  # fmt: skip
        other = [layout_agreement(render(Scene(place, "noon", i)), render(Scene(place, "noon", i + 100)), place)
                 for i in range(10)]  # fmt: skip
        assert min(same) > 0.9 and np.mean(other) < 0.3, (place, same, other)


def test_bad_descriptions_are_refused():
    from vgot.core import VgotError

    with pytest.raises(VgotError, match="colour 'teal'"):
        Figure("teal", "circle")
    with pytest.raises(VgotError, match="place 'moon'"):
        Scene("moon")


def test_light_phrases_are_what_the_rules_planner_writes():
    from vgot.planners import HDR_RULES, _first_rule

    for light, phrase in HDR_PHRASES.items():
        assert _first_rule(HDR_RULES, f"Pip waits on the beach at {light}.")[1] == phrase


def test_captions_and_tokenizer():
    r = random.Random(0)
    s = Scene("desert", "dawn", 0, [Figure("purple", "star")])
    texts = [caption(s, r) for _ in range(20)]
    assert all("purple" in t and "star" in t and "desert" in t for t in texts)
    hidden = [caption(s, r, hide_look=True) for _ in range(20)]
    assert not any("purple" in t or "star" in t for t in hidden)
    tok = world_tokenizer()
    ids = tok("Zork, a purple star in the desert at dawn").input_ids
    words = tok.convert_ids_to_tokens(ids)
    assert words[0] == "<|startoftext|>" and words[-1] == "<|endoftext|>"
    assert words[1] == "<unk>" and {"purple", "star", "desert", "dawn"} <= set(words)


def test_held_out_combinations_never_reach_training():
    ho = set(held_out())
    assert len(ho) == 30
    r = random.Random(3)
    for _ in range(500):
        s = random_scene(r, frozenset(ho))
        assert not any((f.colour, f.shape, s.place, s.light) in ho for f in s.figures)


def test_training_resumes_to_the_same_weights(tmp_path):
    from safetensors.torch import load_file
    from vgot.world import train_vae

    torch.set_num_threads(1)
    train_vae(tmp_path / "a", steps=4, n=64, every=2)
    train_vae(tmp_path / "b", steps=2, n=64, every=2)  # a run stopped after 2 steps ...
    (tmp_path / "b" / "ckpt" / "vae" / "done.json").unlink()
    train_vae(tmp_path / "b", steps=4, n=64, every=2)  # ... continued to 4
    wa = load_file(str(tmp_path / "a" / "ckpt" / "vae" / "weights.safetensors"))
    wb = load_file(str(tmp_path / "b" / "ckpt" / "vae" / "weights.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=0)
    assert (tmp_path / "a" / "ckpt" / "vae" / "model" / "config.json").exists()
