"Module 4 (vgot.transitions): the GP path against scikit-learn at full SVD size, known-answer smoothness, the refinement, the stage and the command."
import json, math
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_cli
from vgot.core import RunStore, Script, Shot, ShotClip, Transition, VgotError, make_generator
from vgot.media import load_tensors, read_video, save_tensors, write_video
from vgot.models import get_preset
from vgot.transitions import (TransitionConfig, decode_latents, generate_transitions, make_transition, path_smoothness,
                              refine_transition, transition_latents)
from vgot.gp_path import GPPath, gp_latent_path




def sklearn_mean(za, zb, n, ell, sf2, sn2, nu=None):
    "Posterior mean by scikit-learn with a fixed kernel on the standardised flattened latents (independent reference)."
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, Matern, WhiteKernel
    ka, kb = za.shape[0], zb.shape[0]
    t_obs = np.r_[np.arange(ka), np.arange(ka + n, ka + n + kb)][:, None].astype(float)
    Y = torch.cat([za, zb]).reshape(ka + kb, -1).double().numpy()
    mu = Y.mean(0); s = np.sqrt(((Y - mu) ** 2).mean())
    base = RBF(ell, "fixed") if nu is None else Matern(ell, "fixed", nu=nu)
    gpr = GaussianProcessRegressor(ConstantKernel(sf2, "fixed") * base + WhiteKernel(sn2, "fixed"), optimizer=None)
    gpr.fit(t_obs, (Y - mu) / s)
    return mu + s * gpr.predict(np.arange(ka, ka + n)[:, None].astype(float))


@pytest.mark.parametrize("kernel,nu", [("rbf", None), ("matern52", 2.5), ("matern32", 1.5)])
def test_gp_matches_sklearn_at_svd_size(kernel, nu):
    g = torch.Generator().manual_seed(1)
    t = torch.arange(24.).view(-1, 1, 1, 1)
    curve = torch.randn(4, 72, 128, generator=g) * torch.sin(0.2 * t + torch.rand(4, 72, 128, generator=g) * 6)   # (24, 4, 72, 128)
    za, zb = curve[:4], curve[20:] + 0.3
    p = gp_latent_path(za, zb, 16, kernel=kernel, lengthscale=4.0, outputscale=0.8, noise=1e-4)
    assert isinstance(p, GPPath) and p.mean.shape == (16, 4, 72, 128) and p.std.shape == (16,) and p.mean.dtype == torch.float32
    ref = sklearn_mean(za, zb, 16, 4.0, 0.8, 1e-4, nu)
    rel = np.abs(p.mean.reshape(16, -1).double().numpy() - ref).max() / np.abs(ref).max()
    assert rel < 1e-4, rel


def test_asymmetric_context_matches_sklearn():
    g = torch.Generator().manual_seed(2)
    za, zb = torch.randn(3, 4, 8, 8, generator=g), torch.randn(5, 4, 8, 8, generator=g)
    p = gp_latent_path(za, zb, 4, lengthscale=2.0, outputscale=1.0, noise=1e-3)
    assert p.t_obs.tolist() == [0, 1, 2, 7, 8, 9, 10, 11] and p.t.tolist() == [3, 4, 5, 6]
    ref = sklearn_mean(za, zb, 4, 2.0, 1.0, 1e-3)
    assert np.abs(p.mean.reshape(4, -1).double().numpy() - ref).max() / np.abs(ref).max() < 1e-4


def test_fit_raises_the_marginal_likelihood():
    g = torch.Generator().manual_seed(3)
    t = torch.arange(16.).view(-1, 1, 1, 1)
    curve = torch.randn(4, 8, 8, generator=g) * torch.sin(0.25 * t + 6 * torch.rand(4, 8, 8, generator=g))
    fitted = gp_latent_path(curve[:4], curve[12:], 8)
    assert fitted.fitted == ("lengthscale", "outputscale")
    for ell in (1.0, 4.5, 20.0):       # the initial lengthscale is (n+1)/2 = 4.5 frames
        fixed = gp_latent_path(curve[:4], curve[12:], 8, lengthscale=ell, outputscale=1.0)
        assert fitted.mll >= fixed.mll - 1e-6, (ell, fitted.mll, fixed.mll)
    noisy = gp_latent_path(curve[:4], curve[12:], 8, noise=None)
    assert "noise" in noisy.fitted and noisy.noise > 0


def moving_pair(k, n, offset, seed, shape=(4, 16, 16)):
    g = torch.Generator().manual_seed(seed)
    z0, v, jump = torch.randn(shape, generator=g), 0.3 * torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    line = z0 + v * torch.arange(2 * k + n, dtype=torch.float32).view(-1, 1, 1, 1)
    return line[:k], line[k + n:] + offset * jump, line, v


@pytest.mark.parametrize("k,n", [(2, 4), (4, 8), (4, 16), (8, 8)])
def test_gpr_continues_constant_velocity(k, n):
    "Known answer: both shots move with velocity v. Without a cut the GP path is the line; with one it keeps v best at the joints."
    za, zb, line, v = moving_pair(k, n, 0.0, seed=k * 100 + n)
    p = gp_latent_path(za, zb, n)
    assert (p.mean - line[k:k + n]).abs().max() < 0.02 * (line.max() - line.min())
    za, zb, line, v = moving_pair(k, n, 0.15 * (n + 1), seed=k * 100 + n)    # the cut needs half of v again as extra speed
    err, jumps = {}, {}
    for mode in ("gpr", "linear", "crossfade"):
        full = torch.cat([za, transition_latents(mode, za, zb, n)[0], zb])
        vel = full[1:] - full[:-1]
        vn = v.pow(2).mean().sqrt()
        err[mode] = max(float((vel[k - 1] - v).pow(2).mean().sqrt() / vn), float((vel[k + n - 1] - v).pow(2).mean().sqrt() / vn))
        sm = path_smoothness(full, k); jumps[mode] = max(sm["jump_in"], sm["jump_out"])
    assert err["gpr"] < 0.75 * min(err["linear"], err["crossfade"]), err
    assert jumps["gpr"] < 0.75 * min(jumps["linear"], jumps["crossfade"]), jumps


def test_path_smoothness_on_known_paths():
    t = torch.arange(12.).view(-1, 1, 1, 1)
    straight = torch.ones(12, 2, 2, 2) * t
    s = path_smoothness(straight, 3)
    assert s["jump_in"] == s["jump_out"] == s["max_acc"] == 0
    kinked = straight.clone(); kinked[3:] += 2 * (t[3:] - 2)      # velocity 1 -> 3 at frame 2 (the joint in for k=3)
    s = path_smoothness(kinked, 3)
    assert math.isclose(s["jump_in"], 2.0, rel_tol=1e-6) and s["jump_out"] == 0
    with pytest.raises(VgotError, match="k ≥ 2"): path_smoothness(straight, 1)


@pytest.mark.parametrize("bad,match", [
    (lambda za, zb: (za, zb[:, :, :8], 4), "differ in shape"),
    (lambda za, zb: (za.masked_fill(torch.zeros_like(za, dtype=torch.bool).index_fill_(0, torch.tensor([1]), True), float("nan")), zb, 4), "NaN"),
    (lambda za, zb: (za, zb.masked_fill(torch.ones_like(zb, dtype=torch.bool), float("inf")), 4), "NaN or inf"),
    (lambda za, zb: (za, zb, 0), "at least 1 frame"),
    (lambda za, zb: (za, zb, -3), "at least 1 frame"),
    (lambda za, zb: (za, zb, 2.5), "at least 1 frame"),
    (lambda za, zb: (za[0], zb, 4), r"expected \(k, C, h, w\)"),
    (lambda za, zb: (za.long(), zb, 4), "floating point"),
    (lambda za, zb: (za.numpy(), zb, 4), "not a torch.Tensor"),
])
def test_bad_input_is_a_vgot_error(bad, match):
    za, zb = torch.randn(4, 4, 16, 16), torch.randn(4, 4, 16, 16)
    a, b, n = bad(za, zb)
    with pytest.raises(VgotError, match=match): gp_latent_path(a, b, n)
    if isinstance(n, int) and n >= 1:
        for mode in ("linear", "crossfade"):
            with pytest.raises(VgotError, match=match): transition_latents(mode, a, b, n)


def test_linear_and_crossfade_paths():
    za, zb = torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2)
    lin, gp = transition_latents("linear", za, zb, 3)
    assert gp is None and torch.allclose(lin[:, 0, 0, 0], torch.tensor([0.25, 0.5, 0.75]))
    cf, _ = transition_latents("crossfade", za, zb, 3)
    assert torch.allclose(cf[:, 0, 0, 0], torch.tensor([(1 - math.cos(math.pi * s)) / 2 for s in (0.25, 0.5, 0.75)]))
    with pytest.raises(VgotError, match="has no latent path"): transition_latents("cut", za, zb, 3)


# --- refinement and stage on the tiny SVD ---------------------------------------------------------------

def test_refine_keeps_the_shared_scheduler_and_is_seeded(tiny_models):
    pipe = tiny_models.i2v("svd")
    pipe.scheduler.set_timesteps(7)
    before = pipe.scheduler.timesteps.clone()
    g = torch.Generator().manual_seed(0)
    za, zb = torch.randn(4, 4, 16, 16, generator=g), torch.randn(4, 4, 16, 16, generator=g)
    path = gp_latent_path(za, zb, 3).mean
    r1 = refine_transition(path, za[-1], zb[0], tiny_models, strength=0.7, steps=5, generator=make_generator(1), decode=False)
    r2 = refine_transition(path, za[-1], zb[0], tiny_models, strength=0.7, steps=5, generator=make_generator(1), decode=False)
    r3 = refine_transition(path, za[-1], zb[0], tiny_models, strength=0.7, steps=5, generator=make_generator(2), decode=False)
    assert r1.steps_run == 3 and torch.equal(r1.latents, r2.latents) and not torch.allclose(r1.latents, r3.latents)
    assert torch.equal(pipe.scheduler.timesteps, before)
    frame = (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)
    r4 = refine_transition(path, za[-1], zb[0], pipe, strength=0.7, steps=5, image=frame, generator=make_generator(1))
    assert r4.frames.shape == (3, 32, 32, 3) and not torch.allclose(r4.latents, r1.latents)   # the condition matters
    with pytest.raises(VgotError, match="channels"):
        refine_transition(torch.randn(3, 3, 16, 16), torch.randn(3, 16, 16), torch.randn(3, 16, 16), pipe, strength=0.5, steps=2)


def make_run(root, pipe, n_shots=3, n_frames=6, shape=(4, 16, 16), seed=0, fps=4.0):
    store = RunStore(root)
    shots = [Shot(index=i, segment=f"part {i}", duration=2.0, character="a keeper", background="a lighthouse",
                  relation="the keeper climbs", camera="wide") for i in range(n_shots)]
    script = Script("test", shots); store.write_artifact("script.json", script)
    g = torch.Generator().manual_seed(seed); clips = []
    for i in range(n_shots):
        lat = torch.randn(n_frames, *shape, generator=g)
        vid_rel, lat_rel = store.shot_rel(i)
        save_tensors(store.path(lat_rel), {"latents": lat})
        write_video(store.path(vid_rel), decode_latents(pipe, lat), fps)
        clip = ShotClip(shot=i, video=vid_rel, latents=lat_rel, n_frames=n_frames, fps=fps, seed=i, backend="svd")
        store.write_artifact(f"shots/{i:03d}.json", clip); clips.append(clip)
    return store, script, clips


def test_stage_writes_resumes_and_redoes(tiny_models, tmp_path):
    pipe = tiny_models.i2v("svd")
    store, script, clips = make_run(tmp_path / "run", pipe)
    cfg = TransitionConfig.from_preset(get_preset("tiny"), mode="gpr+diffusion", frames=3, context_frames=3)
    trs = generate_transitions(script, clips, tiny_models, cfg, store, progress=False)
    assert [(t.src, t.dst, t.n_frames) for t in trs] == [(0, 1, 3), (1, 2, 3)]
    names = sorted(p.name for p in (store.root / "transitions").iterdir())
    assert names == ["000-001.json", "000-001.latents.safetensors", "000-001.mp4", "001-002.json", "001-002.latents.safetensors", "001-002.mp4"]
    t = load_tensors(store.path(trs[0].latents))
    assert t["latents"].shape == (3, 4, 16, 16) and t["gp_std"].shape == (3,)
    from safetensors import safe_open
    with safe_open(str(store.path(trs[0].latents)), "pt") as f: meta = f.metadata()
    assert meta["mode"] == "gpr+diffusion" and json.loads(meta["gp"])["k"] == 3
    frames, fps = read_video(store.path(trs[0].video))
    assert frames.shape == (3, 32, 32, 3) and fps == 4.0
    # a fresh store on the same folder: everything is done, nothing is rewritten
    mtimes = {p.name: p.stat().st_mtime_ns for p in (store.root / "transitions").iterdir()}
    store2 = RunStore(store.root)
    assert generate_transitions(script, clips, tiny_models, cfg, store2, progress=False) == trs
    assert {p.name: p.stat().st_mtime_ns for p in (store.root / "transitions").iterdir()} == mtimes
    # a lost file: that transition alone is redone
    store.path(trs[1].video).unlink()
    generate_transitions(script, clips, tiny_models, cfg, store2, progress=False)
    assert store.path(trs[1].video).exists() and store.path(trs[0].latents).stat().st_mtime_ns == mtimes["000-001.latents.safetensors"]
    # the seed changes the refinement, so both are redone with different latents
    cfg_s = TransitionConfig.from_preset(get_preset("tiny"), mode="gpr+diffusion", frames=3, context_frames=3, seed=5)
    old = t["latents"].clone()
    generate_transitions(script, clips, tiny_models, cfg_s, store2, progress=False)
    assert not torch.allclose(load_tensors(store.path(trs[0].latents))["latents"], old)


def test_stage_crossfade_blends_the_boundary_frames(tiny_models, tmp_path):
    store = RunStore(tmp_path / "run")
    script = Script("t", [Shot(index=i, segment="s", duration=2.0, character="c", background="b", relation="r", camera="w") for i in range(2)])
    clips = []
    for i, level in enumerate((0, 255)):
        vid_rel, lat_rel = store.shot_rel(i)
        write_video(store.path(vid_rel), np.full((5, 32, 32, 3), level, np.uint8), 4)
        save_tensors(store.path(lat_rel), {"latents": torch.full((5, 4, 16, 16), float(i))})
        clips.append(ShotClip(shot=i, video=vid_rel, latents=lat_rel, n_frames=5, fps=4.0, seed=0))
    cfg = TransitionConfig(mode="crossfade", frames=5, context_frames=2)
    tr, = generate_transitions(script, clips, tiny_models, cfg, store, progress=False)
    frames, _ = read_video(store.path(tr.video))
    means = frames.reshape(5, -1).mean(1)
    assert np.all(np.diff(means) > 0) and 0 < means[0] < 40 and 215 < means[-1] < 255 and abs(means[2] - 127.5) < 6
    lat = load_tensors(store.path(tr.latents))["latents"]
    assert torch.allclose(lat[:, 0, 0, 0], torch.tensor([(1 - math.cos(math.pi * s / 6)) / 2 for s in range(1, 6)]), atol=1e-6)


def test_stage_bad_shots(tiny_models, tmp_path):
    pipe = tiny_models.i2v("svd")
    store, script, clips = make_run(tmp_path / "run", pipe, n_shots=2, n_frames=3)
    cfg = TransitionConfig.from_preset(get_preset("tiny"), mode="gpr")          # context_frames 4 > 3 frames
    with pytest.raises(VgotError, match="transition 000-001: the shot before has 3 latent frames, fewer than context_frames = 4"):
        generate_transitions(script, clips, tiny_models, cfg, store, progress=False)
    cfg = TransitionConfig.from_preset(get_preset("tiny"), mode="gpr", context_frames=2)
    save_tensors(store.path(clips[1].latents), {"other": torch.zeros(3, 4, 16, 16)})
    with pytest.raises(VgotError, match="no tensor 'latents'"): generate_transitions(script, clips, tiny_models, cfg, store, progress=False)
    bad = torch.zeros(3, 4, 16, 16); bad[0, 0, 0, 0] = float("nan")
    save_tensors(store.path(clips[1].latents), {"latents": bad})
    with pytest.raises(VgotError, match="transition 000-001: .*contains NaN"): generate_transitions(script, clips, tiny_models, cfg, store, progress=False)
    clips[1].latents = "../../outside.safetensors"
    with pytest.raises(VgotError, match="transition 000-001"): generate_transitions(script, clips, tiny_models, cfg, store, progress=False)
    assert not (store.root / "transitions").exists() or not any((store.root / "transitions").iterdir())
    with pytest.raises(VgotError, match="refinement by conditional diffusion takes a boundary frame as SVD's image condition, and 'i2vgen-xl' has none"):
        za = torch.randn(4, 4, 16, 16)
        make_transition(za, za + 1, tiny_models, TransitionConfig(mode="gpr+diffusion", backend="i2vgen-xl"))


def test_cut_and_single_shot(tiny_models, tmp_path):
    pipe = tiny_models.i2v("svd")
    store, script, clips = make_run(tmp_path / "run", pipe, n_shots=2, n_frames=4)
    tr, = generate_transitions(script, clips, tiny_models, TransitionConfig(mode="cut", frames=0), store, progress=False)
    assert tr == Transition(0, 1, "cut", 0, None, None) and store.is_done("transition/000-001")
    one = Script("t", script.shots[:1])
    assert generate_transitions(one, clips[:1], tiny_models, TransitionConfig(), store, progress=False) == []


def test_cli_transitions(tiny_models, tmp_path):
    pipe = tiny_models.i2v("svd")
    store, script, clips = make_run(tmp_path / "run", pipe, n_shots=2, n_frames=4)
    r = run_cli("transitions", store.root, "--mode", "gpr", "--frames", "2", "--context", "3", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert "000-001  gpr" in r.stdout and Transition.load(store.root / "transitions/000-001.json").n_frames == 2
    r = run_cli("transitions", store.root, "--mode", "linear", "--frames", "0")
    assert r.returncode == 2 and "use mode 'cut'" in r.stderr and "Traceback" not in r.stderr
    (store.root / "shots/001.json").unlink()
    r = run_cli("transitions", store.root)
    assert r.returncode == 2 and "make the shots first" in r.stderr and len(r.stderr.strip().splitlines()) == 1
