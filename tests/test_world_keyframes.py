"""The world preset's trained keyframe models (committed weights), through vgot's keyframe stage, read by the oracles.

Each test measures one effect of the method and the same measurement where the effect is absent (the random tiny
preset, or the branch at λ = 0), so it fails when the effect is gone.
"""
import numpy as np
import pytest
import torch

from vgot.models import Models
from vgot.tiny import world_weights
from vgot.world import Figure, Scene
from vgot.world_effects import identity_following, place_keeping, text_following, token_attention


@pytest.fixture(scope="module")
def world():
    torch.set_num_threads(1)
    assert (world_weights() / "sd" / "model_index.json").is_file(), "the world preset's weights are missing: make world"
    return Models("world", dtype="float32")


def test_text_following_on_held_out_combinations(world, tmp_path):
    r = text_following(world, tmp_path / "world")
    print({k: r[k] for k in ("place", "light", "colour", "shape")})
    assert r["place"] >= 0.9 and r["colour"] >= 0.85 and r["shape"] >= 0.7, {k: r[k] for k in ("place", "colour", "shape")}
    tiny = text_following(Models("tiny", dtype="float32"), tmp_path / "tiny", combos=None)
    print("tiny", {k: tiny[k] for k in ("place", "light", "colour", "shape")})
    assert tiny["place"] <= 0.4 and tiny["colour"] <= 0.4  # random weights: chance (1/6 places, 1/8 colours)


def test_identity_comes_from_the_portrait(world, tmp_path):
    on = identity_following(world, tmp_path / "on")
    off = identity_following(world, tmp_path / "off", identity_scale=0.0)
    print("λ_id > 0:", on["colour"], on["shape"], " λ_id = 0:", off["colour"], off["shape"])
    assert on["colour"] >= 0.85
    assert off["colour"] <= 0.4  # the text names no colour: without the branch the colour is a guess


def test_previous_keyframe_keeps_the_layout(world, tmp_path):
    on = place_keeping(world, tmp_path / "on")
    off = place_keeping(world, tmp_path / "off", prev_scale=0.0)
    print("layout agreement with the previous keyframe: on", on["agreement"], "off", off["agreement"])
    assert on["agreement"] > off["agreement"] + 0.1


def test_the_colour_word_attends_to_the_character(world, tmp_path):
    res = []
    for i, (c, s, p) in enumerate([("red", "circle", "beach"), ("blue", "square", "snow"), ("yellow", "star", "city")]):
        a = token_attention(world, tmp_path / str(i), Scene(p, "noon", i, [Figure(c, s)]), c)
        res.append((a["inside"], a["area"]))
    print(res)
    assert all(area > 0 for _, area in res), "no character was drawn"
    assert all(inside > 1.5 * area for inside, area in res)
