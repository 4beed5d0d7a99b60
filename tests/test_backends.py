"The transformer video backends (Wan, LTX-Video) end to end on the tiny preset: runs, text-aware shots, transitions."
import json
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import STORIES
from vgot import cli
from vgot.core import CameraMotion, RunStore, Shot, ShotClip, Transition, make_generator
from vgot.media import read_video, load_tensors
from vgot.shots import ShotConfig, generate_shot, compression, decode_latents, encode_video
from vgot.camera import latent_times
from vgot.transitions import TransitionConfig, make_transition, refine_transition_dit, causal_transition_frames

STORY = STORIES / "fox_and_crow.txt"


def _expected_frames(run):
    "Frames the final video must have: every shot's, then every transition's, from their artifacts."
    shots = sorted((run / "shots").glob("[0-9][0-9][0-9].json"))
    trans = sorted((run / "transitions").glob("*.json"))
    return sum(ShotClip.load(p).n_frames for p in shots) + sum(Transition.load(p).n_frames for p in trans), shots, trans


@pytest.mark.parametrize(
    "backend,mode", [("wan", "gpr+diffusion"), ("ltx", "gpr+diffusion"), ("wan", "gpr"), ("ltx", "linear")]
)
def test_full_run_writes_final_video_with_expected_frames(tmp_path, backend, mode):
    run = tmp_path / "run"
    argv = ["run", str(STORY), "--preset", "tiny", "--run-dir", str(run), "--quiet"]
    rc = cli.main(argv + ["--set", f"shots.backend={backend}", "--set", f"transitions.mode={mode}"])
    assert rc == 0
    expected, shots, trans = _expected_frames(run)
    frames, fps = read_video(run / "final.mp4")
    assert len(frames) == expected
    assert {ShotClip.load(p).backend for p in shots} == {backend}
    r = compression_ratio = {"wan": 4, "ltx": 8}[backend]
    for p in trans:  # each transition clip V_j(T) .. V_{j+1}(1) is r·m + 1 frames: n = r·m − 1
        t = Transition.load(p)
        assert t.mode == mode and (t.n_frames + 1) % r == 0, (t.mode, t.n_frames)
    for p in shots:  # the latents carry their frame times: one per latent frame, first at 0, r apart after the first
        lat = load_tensors(run / ShotClip.load(p).latents)
        assert lat["times"][0] == 0 and len(lat["times"]) == len(lat["latents"])
    cfg = json.loads((run / "run.json").read_text())["config"]
    assert cfg["shots"]["backend"] == backend
    if mode == "gpr":  # the GP path explorer refits on the causal time axis, as the stage did
        from vgot.viz import GPPathViewer

        gp = GPPathViewer.from_run(run, 0).path
        assert gp.t[0] == 0 and gp.t[1] == r - (r - 1) / 2  # latent frames at 0, r·k − (r − 1)/2
        saved = load_tensors(run / Transition.load(trans[0]).latents)["latents"]
        assert torch.allclose(gp.mean, saved, atol=1e-5)


def _shot(prompt_bg: str) -> Shot:
    return Shot(
        index=0, segment="s", duration=2.0, character="a fox", relation="a fox looks up at a crow",
        background=prompt_bg, camera="wide", motion=CameraMotion(pan=0.1),
    )  # fmt: skip


def _keyframe(store):
    from vgot.core import Keyframe
    from vgot.media import save_image

    rng = np.random.default_rng(0)
    img = Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8))
    save_image(store.path("keyframes/000.png"), img)
    return Keyframe(shot=0, image="keyframes/000.png", latent="keyframes/000.safetensors", seed=0, width=32, height=32)


@pytest.mark.parametrize("backend,changes", [("wan", True), ("ltx", True), ("svd", False)])
def test_changing_the_prompt_changes_text_aware_shots_only(tmp_path, tiny_models, backend, changes):
    cfg = ShotConfig.from_preset("tiny", backend=backend, camera="none", guidance_scale=3.0)
    lats = []
    for k, bg in enumerate(("a forest clearing at dawn", "a snowy mountain pass at night")):
        store = RunStore(tmp_path / f"run{k}")
        clip = generate_shot(_keyframe(store), _shot(bg), tiny_models, cfg, store)
        lats.append(load_tensors(store.path(clip.latents))["latents"])
    assert lats[0].shape == lats[1].shape
    assert (not torch.equal(lats[0], lats[1])) == changes


@pytest.mark.parametrize("backend", ["wan", "ltx"])
def test_conditioned_transition_matches_both_boundary_frames_best(tiny_models, backend):
    """The clip's boundary latent frames match the conditions' latents best with the conditions in place (not swapped,
    not dropped); Wan's causal decoder gives the condition's own first frame exactly. (The random tiny decoders'
    last frames hardly depend on their latent frame: see the smoothing notebook.)"""
    from vgot.transitions import _boundary_latent

    pipe = tiny_models.i2v(backend)
    r = compression(pipe)[0]
    rng = np.random.default_rng(11)
    fa, fb = rng.random((32, 32, 3)).astype(np.float32), rng.random((32, 32, 3)).astype(np.float32)
    A, B = (Image.fromarray((x * 255).round().astype(np.uint8)) for x in (fa, fb))
    za, zb = encode_video(pipe, fa[None])[0], _boundary_latent(pipe, B, r)
    path = torch.randn(3, *za.shape, generator=make_generator(3)) * 0.5  # a clip of 2r + 1 frames

    def errs(first, last):
        lat = refine_transition_dit(path, pipe, first, last, "a dissolve", strength=0.75, steps=4,
                                    generator=make_generator(4)).latents  # fmt: skip
        fr = decode_latents(pipe, lat)
        assert len(fr) == 2 * r + 1
        da = decode_latents(pipe, za[None])[0]
        return float((lat[0] - za).abs().mean()), float((lat[-1] - zb).abs().mean()), float(np.abs(fr[0] - da).mean())

    both, swapped = errs(A, B), errs(B, A)
    dropped = errs(None, None) if backend == "ltx" else errs(A, None)
    assert both[0] < swapped[0] and both[1] < swapped[1]
    assert both[0] <= dropped[0] + 1e-6 and both[1] < dropped[1]
    if backend == "wan":
        assert both[2] < 1e-4 < swapped[2]
    assert torch.equal(refine_transition_dit(path, pipe, A, B, strength=0.0).latents, path)  # the GP path itself
    # the model's own last-frame condition (Wan's last_image, LTX's condition at the last index), not only the pin,
    # carries V_{j+1}(1): unpinned, another last frame gives another clip (catches: drop the last-frame condition).
    # The tiny Wan is a TI2V model (expand_timesteps), which has no last-frame input: only the pin holds it there.
    if backend == "wan" and pipe.config.expand_timesteps:
        with pytest.warns(UserWarning, match="takes no last-frame input"):
            refine_transition_dit(path, pipe, A, B, strength=0.5, steps=2, pin_last=False, generator=make_generator(4))
        return
    C = Image.fromarray((rng.random((32, 32, 3)) * 255).round().astype(np.uint8))

    def unpinned(last):
        return refine_transition_dit(path, pipe, A, last, "a dissolve", strength=0.75, steps=4, pin_last=False,
                                     generator=make_generator(4)).latents  # fmt: skip

    u_b, u_c = unpinned(B), unpinned(C)
    assert torch.equal(u_b, unpinned(B))
    assert (u_b - u_c).abs().mean() > 1e-3 * u_b.abs().mean(), float((u_b - u_c).abs().mean())


def test_transition_at_strength_zero_is_the_gp_path(tiny_models):
    pipe = tiny_models.i2v("wan")
    g = make_generator(0)
    la, lb = torch.randn(3, 16, 4, 4, generator=g), torch.randn(3, 16, 4, 4, generator=g)
    frames = (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)
    kw = dict(fps=4, times_a=latent_times(3, 4), times_b=latent_times(3, 4), n_a=9, generator=make_generator(1))
    gp = make_transition(la, lb, tiny_models, TransitionConfig(mode="gpr", frames=7, backend="wan"), frames, frames, **kw)
    c0 = TransitionConfig(mode="gpr+diffusion", frames=7, backend="wan", strength=0.0)
    ref = make_transition(la, lb, tiny_models, c0, frames, frames, **kw)
    assert torch.equal(gp.latents, ref.latents) and np.array_equal(gp.frames, ref.frames)
    assert causal_transition_frames(7, 4) == 7 == len(ref.frames)


def test_gpr_diffusion_on_i2vgen_names_the_alternatives(tiny_models):
    from vgot.core import VgotError

    z = torch.randn(5, 4, 16, 16)
    c = TransitionConfig(mode="gpr+diffusion", frames=3, backend="i2vgen-xl", context_frames=2)
    with pytest.raises(VgotError, match="use mode 'gpr', or the 'wan' or 'ltx' backend"):
        make_transition(z, z, tiny_models, c, np.zeros((32, 32, 3), np.uint8), np.zeros((32, 32, 3), np.uint8))


@pytest.mark.parametrize("backend", ["wan", "ltx"])
def test_untrained_transformer_camera_adapter_leaves_the_shot_unchanged(tmp_path, tiny_models, backend):
    "camera='embedding' on a transformer backend loads the transformer adapter; zero-initialised it changes nothing."
    from vgot.camera_dit import TransformerCameraAdapter

    pipe = tiny_models.i2v(backend)
    ck = tmp_path / f"{backend}_adapter.safetensors"
    TransformerCameraAdapter(pipe.transformer, cam_dim=16).save(ck)
    lats = []
    for mode in ("none", "embedding"):
        cfg = ShotConfig.from_preset("tiny", backend=backend, camera=mode, camera_adapter=str(ck) if mode != "none" else None)
        store = RunStore(tmp_path / f"run-{mode}")
        clip = generate_shot(_keyframe(store), _shot("a forest clearing"), tiny_models, cfg, store)
        lats.append(load_tensors(store.path(clip.latents))["latents"])
    assert torch.equal(lats[0], lats[1])
    other = "ltx" if backend == "wan" else "wan"  # a checkpoint for the other transformer is refused by name
    cfg = ShotConfig.from_preset("tiny", backend=other, camera="embedding", camera_adapter=str(ck))
    from vgot.core import VgotError

    with pytest.raises(VgotError, match=f"camera='embedding' with backend '{other}'"):
        store = RunStore(tmp_path / "run-other")
        generate_shot(_keyframe(store), _shot("a forest clearing"), tiny_models, cfg, store)


def test_picking_i2vgen_xl_picks_gp_transitions():
    "I2VGen-XL cannot refine a transition by conditional diffusion, so picking it makes 'gpr' the transitions' default."
    from vgot.run_config import RunConfig

    cfg = RunConfig(preset="tiny").set("shots.backend=i2vgen-xl")
    assert (cfg.stage_config("transitions").backend, cfg.stage_config("transitions").mode) == ("i2vgen-xl", "gpr")
    assert RunConfig(preset="tiny").stage_config("transitions").mode == "gpr+diffusion"
    assert RunConfig(preset="sd15").set("shots.backend=i2vgen-xl").stage_config("transitions").mode == "gpr"


def test_wan_with_its_real_scheduler_unipc():
    """Real Wan ships UniPCMultistepScheduler: SDEdit from part-way down its schedule runs (a begin index into the
    whole schedule left UniPC an order of 0 and failed), the transformer sees the pinned last frame after every step,
    the warp runs on it (with its corrector off, so the pull is not rebuilt away), and the pipeline's own scheduler is
    left as it was."""
    from diffusers import UniPCMultistepScheduler
    from vgot.models import load_i2v
    from vgot.shots import chunk_camera, run_chunk
    from vgot.camera import as_trajectory
    from vgot.transitions import _boundary_latent

    pipe = load_i2v("tiny:wan", "wan")
    pipe.scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=5.0)
    shared = pipe.scheduler
    rng = np.random.default_rng(2)
    A, B = (Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)) for _ in range(2))
    za = encode_video(pipe, np.asarray(A, np.float32)[None] / 255)[0]
    path = torch.randn(3, *za.shape, generator=make_generator(0))
    zb = _boundary_latent(pipe, B, 4)
    for strength in (0.5, 0.8):  # part-way down a 10-step UniPC schedule
        seen = []  # the last latent frame the transformer is given at each call
        hook = pipe.transformer.register_forward_pre_hook(
            lambda m, a, kw: seen.append(kw["hidden_states"][0, :, -1].float().clone()), with_kwargs=True
        )
        try:
            r = refine_transition_dit(path, pipe, A, B, "a dissolve", strength=strength, steps=10,
                                      generator=make_generator(1))  # fmt: skip
        finally:
            hook.remove()
        n_run = int(10 * strength)
        assert r.steps_run == n_run and len(seen) == 2 * n_run  # guided: two calls per step
        full = UniPCMultistepScheduler.from_config(shared.config)
        full.set_timesteps(10)
        eps_last = torch.randn(path.shape, generator=make_generator(1))[-1]  # the start's noise of that frame
        for i in range(1, n_run):  # after every step the frame is back on V_{j+1}(1)'s latent at the level reached
            σ = float(full.sigmas[10 - n_run + i])
            assert torch.allclose(seen[2 * i], (1 - σ) * zb + σ * eps_last, atol=1e-4), (strength, i)
        assert torch.allclose(r.latents[-1], zb, atol=1e-5)
        assert torch.allclose(r.latents[0], za, atol=1e-4)
    assert pipe.scheduler is shared and not getattr(shared, "disable_corrector", [])
    cfg = ShotConfig(backend="wan", camera="warp", steps=6, warp_strength=0.9, warp_steps=0.9)
    traj = as_trajectory(CameraMotion(pan=0.3), 9)
    lat = run_chunk(pipe, "wan", A, "a fox", chunk_camera(pipe, "wan", A, traj, cfg, make_generator(0)), cfg, make_generator(0))
    none = ShotConfig(backend="wan", camera="none", steps=6)
    lat0 = run_chunk(pipe, "wan", A, "a fox", chunk_camera(pipe, "wan", A, traj, none, make_generator(0)), none, make_generator(0))
    still = as_trajectory(CameraMotion(), 9)
    lat_s = run_chunk(pipe, "wan", A, "a fox", chunk_camera(pipe, "wan", A, still, cfg, make_generator(0)), cfg, make_generator(0))
    assert lat.shape == lat0.shape == lat_s.shape == (3, 16, 4, 4) and pipe.scheduler is shared
    # the pull reaches the result through UniPC, and it follows the camera: a pan and a static camera differ
    # (catches: skip the warp; a pull the corrector rebuilt away)
    assert (lat - lat0).abs().mean() > 1e-3 * lat0.abs().mean()
    assert (lat - lat_s).abs().mean() > 1e-3 * lat_s.abs().mean()
