"""The world preset's trained keyframe models (committed weights), through vgot's keyframe stage, read by the oracles.

Each test measures one effect of the method and the same measurement where the effect is absent (the random tiny
preset, or the branch at λ = 0), so it fails when the effect is gone.

Measured on the committed weights (t2i 6,000 steps, IP-Adapter 600; nbs/09_world.ipynb): on the 30 held-out
combinations place 0.67, colour 0.33, shape 0.37, light 0.33 (the random tiny preset: 0.23, 0.10, 0.30, 0.33);
identity from the portrait 0.20 with λ_id > 0 against 0.10 at λ_id = 0; layout agreement with the previous keyframe
0.007 on against 0.005 off. The tests below hold what the weights show; issue 27's targets (place ≥ 0.9, colour ≥ 0.85,
shape ≥ 0.7, identity ≥ 0.85, a clear previous-keyframe effect, the colour word's attention on the character) are strict
expected failures: each turns into a failure the day the weights reach it, so the bar is raised then, not forgotten.
"""
import pytest
import torch

from vgot.models import Models
from vgot.tiny import world_weights
from vgot.world import Figure, Scene
from vgot.world_effects import identity_following, place_keeping, text_following, token_attention

NOT_YET = "issue 27's target is not reached by the committed weights (see the module docstring for the measured numbers)"


@pytest.fixture(scope="module")
def world():
    torch.set_num_threads(1)
    assert (world_weights() / "sd" / "model_index.json").is_file(), "the world preset's weights are missing: make world"
    return Models("world", dtype="float32")


@pytest.fixture(scope="module")
def text(world, tmp_path_factory):
    return text_following(world, tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="module")
def text_tiny(tmp_path_factory):
    return text_following(Models("tiny", dtype="float32"), tmp_path_factory.mktemp("tiny"))


def test_text_sets_place_and_colour_better_than_random_weights(text, text_tiny):
    print("world", {k: round(text[k], 2) for k in ("place", "light", "colour", "shape")})
    print("tiny ", {k: round(text_tiny[k], 2) for k in ("place", "light", "colour", "shape")})
    assert text["place"] >= 0.55 and text["place"] >= text_tiny["place"] + 0.3
    assert text["colour"] >= 0.25 and text["colour"] >= text_tiny["colour"] + 0.15
    assert text_tiny["place"] <= 0.4 and text_tiny["colour"] <= 0.3  # random weights: about chance (1/6, 1/8)


@pytest.mark.xfail(strict=True, reason=NOT_YET)
def test_text_following_target_on_held_out_combinations(text):
    assert text["place"] >= 0.9 and text["colour"] >= 0.85 and text["shape"] >= 0.7


@pytest.mark.xfail(strict=True, reason=NOT_YET)
def test_identity_comes_from_the_portrait(world, tmp_path):
    on = identity_following(world, tmp_path / "on")
    off = identity_following(world, tmp_path / "off", identity_scale=0.0)
    print("λ_id > 0:", on["colour"], on["shape"], " λ_id = 0:", off["colour"], off["shape"])
    assert on["colour"] >= 0.85 and off["colour"] <= 0.4


@pytest.mark.xfail(strict=True, reason=NOT_YET)
def test_previous_keyframe_keeps_the_layout(world, tmp_path):
    on = place_keeping(world, tmp_path / "on")
    off = place_keeping(world, tmp_path / "off", prev_scale=0.0)
    print("layout agreement with the previous keyframe: on", on["agreement"], "off", off["agreement"])
    assert on["agreement"] > off["agreement"] + 0.1


@pytest.mark.xfail(strict=True, reason=NOT_YET)
def test_the_colour_word_attends_to_the_character(world, tmp_path):
    res = []
    for i, (c, s, p) in enumerate([("red", "circle", "beach"), ("blue", "square", "snow"), ("yellow", "star", "city")]):
        a = token_attention(world, tmp_path / str(i), Scene(p, "noon", i, [Figure(c, s)]), c)
        res.append((a["inside"], a["area"]))
    print(res)
    assert all(0 < area < 0.3 for _, area in res), "no character (or no place) was read"
    assert all(inside > 1.5 * area for inside, area in res)
