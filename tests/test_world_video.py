"""The world's video half (vgot.world_video): clips and their oracles, the training inputs the Wan I2V pipeline builds,
resumable training, and the exported folder through vgot's shot and transition stages."""
import random

import numpy as np
import pytest
import torch
from PIL import Image

from vgot import world as W
from vgot.core import CameraMotion, Keyframe, RunStore, Shot, make_generator
from vgot.media import load_tensors, save_image
from vgot.shotcards import camera_motion_from_text
from vgot.world import Figure, Scene, render
from vgot.world_video import (
    ACTIONS, FOLLOW_PHRASE, MOVE_PHRASES, MOVES, PUSH_PHRASE, Clip, clip_caption, clip_frames, encode_text, export_world_video, i2v_condition, motion_correlation,
    random_clip, read_action, read_camera, to_video, train_video, train_video_vae, world_t5_tokenizer,
    world_video_models, world_video_pipeline, VIDEO_SIZES,
)  # fmt: skip


def _clips(n, seed):
    r = random.Random(seed)
    return [random_clip(r) for _ in range(n)]


def test_oracles_read_rendered_clips_back():
    clips = _clips(10, 3)
    frames = [clip_frames(c.scene, c.motion, c.action) for c in clips]
    est = [read_camera(f) for f in frames]
    got = [read_action(f, c.scene.figures[0].colour, c.scene.figures[0].shape, e) for f, c, e in zip(frames, clips, est)]
    assert got == [c.action for c in clips]
    mc = motion_correlation(est, [c.trajectory() for c in clips])
    assert mc["all"] > 0.9 and mc["fitted"] == 1.0, mc
    # a walk under a tracking pan stays put on screen: only the camera read back makes it a walk
    c = Clip(Scene("city", "noon", 2, [Figure("red", "square", 0.3)]), CameraMotion(pan=0.3), "walk_right")
    f = clip_frames(c.scene, c.motion, c.action)
    assert read_action(f, "red", "square") == "walk_right"
    assert read_action(f, "red", "square", traj=np.tile([0.0, 0.0, 1.0], (17, 1))) == "stand"


def test_oracles_on_noise():
    g = np.random.default_rng(0)
    clips = _clips(8, 4)
    noise = [g.integers(0, 256, (17, 64, 64, 3), dtype=np.uint8) for _ in clips]
    mc = motion_correlation([read_camera(f, "beach", "noon") for f in noise], [c.trajectory() for c in clips])
    assert abs(mc["all"]) < 0.5, mc
    got = [read_action(f, c.scene.figures[0].colour, c.scene.figures[0].shape, c.trajectory(), "beach", "noon")
           for f, c in zip(noise, clips)]  # fmt: skip
    assert sum(a == c.action for a, c in zip(got, clips)) <= len(clips) // 2, got


def test_clips_and_captions():
    clips = _clips(60, 5)
    assert {c.move() for c in clips} == set(MOVES) and {c.action for c in clips} == set(ACTIONS)
    r = random.Random(0)
    for c in clips:
        f = clip_frames(c.scene, c.motion, c.action)
        assert (f[0] == render(c.scene)).all()
        cap = clip_caption(c, r)
        words = {"walk_left": "walk", "walk_right": "walk", "jump": "jump"}.get(c.action)
        assert words is None or words in cap, cap
        if c.action.startswith("walk") and "with the movement" not in cap:
            assert c.action.split("_")[1] in cap, cap
        if c.move() != "static":  # the caption ends with the camera's phrase, which the planner reads back
            (cam,) = [p for p in (*MOVE_PHRASES.values(), FOLLOW_PHRASE, PUSH_PHRASE) if cap.endswith(p)]
            m, kind = camera_motion_from_text(cam)
            assert kind == ("pan" if c.move().startswith("pan") else c.move()), (cap, kind)
            if cam == FOLLOW_PHRASE:  # the planner pans with a walk: its direction is the walk's
                assert c.action == ("walk_right" if c.motion.pan > 0 else "walk_left"), cap
            else:
                assert np.sign(m.pan) == np.sign(c.motion.pan) and np.sign(m.tilt) == np.sign(c.motion.tilt), cap
            assert np.sign(np.log(m.zoom)) == np.sign(np.log(c.motion.zoom)), cap


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    tok = world_t5_tokenizer()
    m = world_video_models(len(tok), dict(VIDEO_SIZES, transformer=dict(VIDEO_SIZES["transformer"], num_layers=1)))
    m["vae"].register_to_config(latents_mean=torch.randn(16).tolist(), latents_std=(torch.rand(16) + 0.5).tolist())
    return tok, m, world_video_pipeline(m, tok)


@pytest.mark.parametrize("last", [False, True])
def test_training_condition_is_the_pipelines(small, last):
    tok, m, pipe = small
    c = _clips(2, 6)
    v = to_video(np.stack([clip_frames(x.scene, x.motion, x.action) for x in c]))
    got = i2v_condition(m["vae"], v, last)
    for b in range(2):
        _, want = pipe.prepare_latents(v[b : b + 1, :, 0], 1, 16, 64, 64, 17, torch.float32, torch.device("cpu"),
                                       last_image=v[b : b + 1, :, -1] if last else None)  # fmt: skip
        assert torch.allclose(got[b : b + 1], want, atol=1e-5)
    other = i2v_condition(m["vae"], v, not last)
    assert not torch.allclose(got[:, :4], other[:, :4]) and not torch.allclose(got[:, 4:, -1], other[:, 4:, -1])


def test_training_text_is_the_pipelines(small):
    tok, m, pipe = small
    texts = ["Pip walks left on the beach at dusk, tracking shot, camera pans left", "", "a red circle jumps"]
    want = pipe.encode_prompt(texts, do_classifier_free_guidance=False, max_sequence_length=512, device=torch.device("cpu"))[0]
    got = encode_text(tok, m["text_encoder"], texts)
    assert got.shape == (3, 512, 64) and torch.allclose(got, want, atol=1e-5)


@pytest.fixture(scope="module")
def vae_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("wv")
    train_video_vae(root, steps=2, batch=2, every=2, n_stats=4)
    return root


def _interrupt_after(monkeypatch, at):
    save = W._Stage.save

    def save_then_stop(self, step, done=False, **info):
        save(self, step, done, **info)
        if step == at and not done:
            raise KeyboardInterrupt

    monkeypatch.setattr(W._Stage, "save", save_then_stop)


def test_resume_gives_identical_weights(vae_root, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    kw = dict(steps=4, batch=2, n=4, every=2)
    roots = []
    for k, stop in enumerate((None, 2)):
        root = tmp_path / f"r{k}"
        (root / "ckpt").mkdir(parents=True)
        (root / "ckpt" / "video_vae").symlink_to(vae_root / "ckpt" / "video_vae")
        if stop:
            with monkeypatch.context() as mp:
                _interrupt_after(mp, stop)
                with pytest.raises(KeyboardInterrupt):
                    train_video(root, **kw)
            assert not (root / "ckpt" / "video" / "done.json").exists()
        train_video(root, **kw)
        roots.append(load_file(str(root / "ckpt" / "video" / "weights.safetensors")))
    assert roots[0].keys() == roots[1].keys()
    assert all(torch.equal(roots[0][k], roots[1][k]) for k in roots[0])


def test_export_loads_and_makes_shots_and_transitions(vae_root, tmp_path):
    from vgot.models import Models, load_i2v
    from vgot.shots import ShotConfig, compression, generate_shot
    from vgot.transitions import refine_transition_dit

    train_video(vae_root, steps=2, batch=2, n=4, every=2)
    out = export_world_video(vae_root, tmp_path / "wan")
    pipe = load_i2v(str(out), backend="wan", dtype=torch.float32)
    assert type(pipe).__name__ == "WanImageToVideoPipeline" and not pipe.config.expand_timesteps
    assert pipe.image_encoder is None and compression(pipe) == (4, 8)
    # a shot through vgot's own shot stage, from a world keyframe
    models = Models("world", i2v={"wan": str(out)}, device="cpu", dtype="float32")
    store = RunStore(tmp_path / "run")
    key = Image.fromarray(render(Scene("beach", "dusk", 3, [Figure("red", "circle", 0.4)])))
    save_image(store.path("keyframes/000.png"), key)
    kf = Keyframe(shot=0, image="keyframes/000.png", latent="keyframes/000.safetensors", seed=0, width=64, height=64)
    shot = Shot(index=0, segment="Pip walks left on the beach at dusk.", duration=4.0, character="Pip, a red circle",
                relation="Pip walks left on the beach at dusk", background="the beach",
                camera="tracking shot, camera pans left", motion=CameraMotion(pan=-0.3))  # fmt: skip
    cfg = ShotConfig(backend="wan", camera="none", width=64, height=64, native_frames=17, steps=2, fps=4)
    clip = generate_shot(kf, shot, models, cfg, store)
    lat = load_tensors(store.path(clip.latents))["latents"]
    assert clip.n_frames == 16 and lat.shape == (5, 16, 8, 8)
    # a transition conditioned on both boundary frames (first-last-frame: the pipeline's `last_image`)
    path = torch.randn(3, 16, 8, 8, generator=make_generator(0))
    other = Image.fromarray(render(Scene("snow", "night", 1, [Figure("blue", "star", 0.6)])))
    a = refine_transition_dit(path, pipe, key, other, "a dissolve", strength=0.5, steps=2, pin_last=False,
                              generator=make_generator(1)).latents  # fmt: skip
    b = refine_transition_dit(path, pipe, key, key, "a dissolve", strength=0.5, steps=2, pin_last=False,
                              generator=make_generator(1)).latents  # fmt: skip
    assert a.shape == path.shape and not torch.equal(a, b)  # the last frame reaches the model
