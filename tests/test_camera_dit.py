"""The camera embedding for the transformer backends (Wan, LTX-Video) on the tiny models: the zero-initialised adapter
changes no pipeline output, gradients reach it and nothing else, hooks come off, checkpoints round-trip and refuse
other models, training lowers the loss and resumes exactly, and `vgot train-camera --backend wan` works."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from conftest import run_cli
from vgot.camera import CameraTrainConfig, as_trajectory, conditioning
from vgot.camera_unet import CameraAdapter
from vgot.camera_dit import (TransformerCameraAdapter, _ltx_sample, _wan_sample, latent_trajectory, token_frames, transformer_blocks,
                             transformer_camera_loss)
from vgot.camera_train import camera_dependence, load_camera_adapter_any, train_camera
from vgot.core import CameraMotion, VgotError, make_generator

BACKENDS = {"wan": 4, "ltx": 8}                 # backend -> the VAE's temporal ratio r
SAMPLE = {"wan": _wan_sample, "ltx": _ltx_sample}


def texture(H=64, W=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = sum(F.interpolate(torch.rand(1, 3, H // s, W // s, generator=g), size=(H, W), mode="bicubic", align_corners=False) / s**0.5
            for s in (2, 4, 8))
    return ((x - x.amin()) / (x.amax() - x.amin()))[0]


def stills(tmp_path, n=3):
    data = tmp_path / "data"; data.mkdir(exist_ok=True)
    for i in range(n): Image.fromarray((texture(seed=i).permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(data / f"{i}.png")
    return data


def run(pipe, n_frames=9, guidance=4.0, **kw):
    "Latents of a tiny image-to-video call with classifier-free guidance (Wan: 2 calls of batch 1; LTX: 1 call of batch 2)."
    return pipe(image=Image.new("RGB", (32, 32), (120, 80, 40)), prompt="a lighthouse", height=32, width=32, num_frames=n_frames,
                num_inference_steps=2, guidance_scale=guidance, output_type="latent", generator=torch.Generator().manual_seed(0), **kw).frames


def n_hooks(m):
    return sum(len(x._forward_hooks) + len(x._forward_pre_hooks) for x in m.modules())


def traj_for(backend, n_frames=9, motion=CameraMotion(pan=0.3, tilt=-0.1, zoom=1.3)):
    return latent_trajectory(as_trajectory(motion, n_frames), BACKENDS[backend])


@pytest.mark.parametrize("r,n", [(4, 5), (4, 9), (4, 81), (8, 9), (8, 121), (1, 6)])
def test_training_samples_the_camera_at_each_latent_frames_mean_time(r, n):
    """Known answer: latent frame 0 is frame 0, latent frame k ≥ 1 stands for frames r(k−1)+1 .. rk, so the camera is
    read at their mean time rk − (r − 1)/2, linearly between the frames' cameras (np.interp of each coordinate)."""
    for motion in (CameraMotion(pan=0.3), CameraMotion(pan=-0.2, tilt=0.25, zoom=1.6), CameraMotion(zoom=0.7)):
        traj = as_trajectory(motion, n)
        m = (n - 1) // r
        times = [0.0] + [float(np.mean(np.arange(r * (k - 1) + 1, r * k + 1))) for k in range(1, m + 1)]
        want = np.stack([np.interp(times, np.arange(n), traj[:, c].numpy()) for c in range(3)], 1)
        ours = latent_trajectory(traj, r)
        assert ours.shape == (m + 1, 3)
        np.testing.assert_allclose(ours.numpy(), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_samples_the_camera_where_the_shot_stage_does(tiny_models, backend):
    "The trajectory training gives the adapter is the one the shot stage (`chunk_camera`) gives it at inference."
    from vgot.shots import ShotConfig, chunk_camera
    pipe, r = tiny_models.i2v(backend), BACKENDS[backend]
    cfg = ShotConfig.from_preset("tiny", backend=backend, camera="none")
    img = Image.new("RGB", (cfg.width, cfg.height), (90, 120, 60))
    for n in (r + 1, 2 * r + 1):
        traj = as_trajectory(CameraMotion(pan=-0.2, tilt=0.25, zoom=1.6), n)
        cam = chunk_camera(pipe, backend, img, traj, cfg, make_generator(0))
        torch.testing.assert_close(cam.traj, latent_trajectory(traj, r), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_initialised_adapter_leaves_the_pipeline_bit_identical(tiny_models, backend):
    pipe = tiny_models.i2v(backend); tr = pipe.transformer
    calls = []
    hd = tr.register_forward_pre_hook(lambda m, a, k: calls.append(k["hidden_states"].shape[0]), with_kwargs=True)
    try:
        with torch.no_grad(): base = run(pipe)
    finally: hd.remove()
    assert calls == ([1, 1, 1, 1] if backend == "wan" else [2, 2])          # the two ways guidance batches the calls
    ad = TransformerCameraAdapter(tr, cam_dim=16)
    with torch.no_grad(), ad.applied(tr, traj_for(backend)):
        assert torch.equal(run(pipe), base)
        for b in ad.blocks: torch.nn.init.normal_(b.to_out.weight, std=0.3)
        changed = run(pipe)
        ad.scale = 0.0
        assert torch.equal(run(pipe), base)                                   # λ = 0 switches it off
    assert (changed - base).abs().max() > 1e-3
    with torch.no_grad(): assert torch.equal(run(pipe), base)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_camera_seam_installs_and_removes_the_adapter(tiny_models, backend):
    "`vgot.camera.conditioning('embedding', ...)` as the shot stage uses it: the adapter acts during the call only."
    pipe = tiny_models.i2v(backend); tr = pipe.transformer
    ad = TransformerCameraAdapter(tr, cam_dim=8)
    for b in ad.blocks: torch.nn.init.normal_(b.to_out.weight, std=0.3)
    with torch.no_grad(): base = run(pipe)
    cam = conditioning("embedding", traj_for(backend), (8, 4, 4), make_generator(0), adapter=ad)
    with torch.no_grad(), cam.applied(pipe) as kw:
        assert kw == {} and n_hooks(tr) == 1 + len(transformer_blocks(tr))
        out = run(pipe)
    assert not torch.equal(out, base) and n_hooks(tr) == 0 and not ad.installed


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_reach_the_adapter_only(tiny_models, backend):
    pipe = tiny_models.i2v(backend); tr = pipe.transformer
    cfg = CameraTrainConfig(n_frames=9, cam_dim=16)
    s = SAMPLE[backend](pipe, [texture(seed=1)], cfg, seed=2)
    ad = TransformerCameraAdapter(tr, cam_dim=16)
    tr.requires_grad_(False)
    try:
        with ad.applied(tr, s["traj"]):
            loss = transformer_camera_loss(tr, ad, s)
            loss.backward()
    finally:
        tr.requires_grad_(True)
    assert torch.isfinite(loss)
    grads = {k: p.grad for k, p in ad.named_parameters()}
    # zero-initialised: W_o and its bias get gradients at once; the rest through W_o after the first step
    assert all(grads[f"blocks.{i}.to_out.{w}"].abs().sum() > 0 for i in range(len(ad.blocks)) for w in ("weight", "bias"))
    assert all(p.grad is None for p in tr.parameters())
    opt = torch.optim.SGD(ad.parameters(), lr=0.1); opt.step(); opt.zero_grad()
    tr.requires_grad_(False)
    try:
        with ad.applied(tr, s["traj"]): transformer_camera_loss(tr, ad, s).backward()
    finally:
        tr.requires_grad_(True)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in ad.parameters()), [k for k, p in ad.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert all(p.grad is None for p in tr.parameters())


@pytest.mark.parametrize("backend", BACKENDS)
def test_remove_leaves_no_hooks_and_the_same_weights(tiny_models, backend):
    tr = tiny_models.i2v(backend).transformer
    before, hooks0 = {k: v.clone() for k, v in tr.state_dict().items()}, n_hooks(tr)
    ad = TransformerCameraAdapter(tr, cam_dim=8).install(tr)
    ad.install(tr)                                                            # a second install adds nothing
    assert n_hooks(tr) == hooks0 + 1 + len(transformer_blocks(tr)) and ad.installed
    ad.set_camera(traj_for(backend))
    ad.remove(tr)
    assert n_hooks(tr) == hooks0 and not ad.installed and ad.c_cam is None
    after = tr.state_dict()
    assert list(after) == list(before) and all(torch.equal(after[k], v) for k, v in before.items())


@pytest.mark.parametrize("backend", BACKENDS)
def test_checkpoint_round_trip_and_refusals(tiny_models, tmp_path, backend):
    pipe = tiny_models.i2v(backend); other = tiny_models.i2v("ltx" if backend == "wan" else "wan")
    ad = TransformerCameraAdapter(pipe.transformer, cam_dim=16, scale=0.5)
    for p in ad.parameters(): torch.nn.init.normal_(p, std=0.1)
    ad.save(tmp_path / "a.safetensors", step=7)
    for loaded in (TransformerCameraAdapter.load(tmp_path / "a.safetensors", pipe.transformer),
                   load_camera_adapter_any(tmp_path / "a.safetensors", pipe.transformer)):
        assert isinstance(loaded, TransformerCameraAdapter) and loaded.scale == 0.5
        assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in ad.state_dict().items())
    assert TransformerCameraAdapter.metadata(tmp_path / "a.safetensors")["step"] == 7
    name, other_name = type(pipe.transformer).__name__, type(other.transformer).__name__
    for load in (TransformerCameraAdapter.load, load_camera_adapter_any):
        with pytest.raises(VgotError, match=f"trained for {name}, but this video model is {other_name}"):
            load(tmp_path / "a.safetensors", other.transformer)
    deeper = type(pipe.transformer).from_config({**pipe.transformer.config, "num_layers": 3})
    with pytest.raises(VgotError, match="does not match this"):
        TransformerCameraAdapter.load(tmp_path / "a.safetensors", deeper)
    with pytest.raises(VgotError, match="not found"): load_camera_adapter_any(tmp_path / "none.safetensors", pipe.transformer)


def test_load_any_tells_unet_and_transformer_checkpoints_apart(tiny_models, tmp_path):
    svd, wan = tiny_models.i2v("svd"), tiny_models.i2v("wan")
    CameraAdapter(svd.unet, cam_dim=8).save(tmp_path / "svd.safetensors")
    TransformerCameraAdapter(wan.transformer, cam_dim=8).save(tmp_path / "wan.safetensors")
    assert type(load_camera_adapter_any(tmp_path / "svd.safetensors", svd.unet)) is CameraAdapter
    with pytest.raises(VgotError, match="trained for UNetSpatioTemporalConditionModel, but this video model is WanTransformer3DModel"):
        load_camera_adapter_any(tmp_path / "svd.safetensors", wan.transformer)
    with pytest.raises(VgotError, match="trained for WanTransformer3DModel, but this video model is UNetSpatioTemporalConditionModel"):
        load_camera_adapter_any(tmp_path / "wan.safetensors", svd.unet)
    with pytest.raises(VgotError, match="trained for WanTransformer3DModel"):   # the UNet loader refuses it too
        CameraAdapter.load(tmp_path / "wan.safetensors", svd.unet)


def test_wrong_frame_count_and_other_models_are_refused(tiny_models):
    wan = tiny_models.i2v("wan")
    ad = TransformerCameraAdapter(wan.transformer, cam_dim=8)
    with pytest.raises(VgotError, match="the camera trajectory has 5 frames but the transformer sees 3 latent frames"):
        with torch.no_grad(), ad.applied(wan.transformer, as_trajectory(CameraMotion(pan=0.2), 5)): run(wan, guidance=1.0)
    assert n_hooks(wan.transformer) == 0
    with pytest.raises(VgotError, match="UNetSpatioTemporalConditionModel is not a video transformer"):
        TransformerCameraAdapter(tiny_models.i2v("svd").unet)


def test_training_refuses_frame_counts_the_vae_cannot_take(tiny_models, tmp_path):
    data = stills(tmp_path, 1)
    for backend, bad, good in (("wan", 8, "5, 9"), ("ltx", 13, "9, 17")):
        with pytest.raises(VgotError, match=f"use r·m \\+ 1 frames \\({good}"):
            train_camera(tiny_models.i2v(backend), data, tmp_path / backend, CameraTrainConfig(steps=1, n_frames=bad, n_eval=1), progress=False)
        assert all(p.requires_grad for p in tiny_models.i2v(backend).transformer.parameters())   # refused before anything was frozen


def test_batched_trajectories_are_tiled_over_the_guidance_halves(tiny_models):
    "LTX with guidance runs [uncond; cond] as one batch: a batch of 1 trajectory serves both rows, one of 2 tiles as (b mod 2)."
    pipe = tiny_models.i2v("ltx"); tr = pipe.transformer
    ad = TransformerCameraAdapter(tr, cam_dim=8)
    for b in ad.blocks: torch.nn.init.normal_(b.to_out.weight, std=0.3)
    t1, t2 = traj_for("ltx"), traj_for("ltx", motion=CameraMotion(tilt=0.3))
    with torch.no_grad():
        with ad.applied(tr, t1): one = run(pipe)
        with ad.applied(tr, torch.stack([t1, t1])): same = run(pipe)
        with ad.applied(tr, torch.stack([t1, t2])): mixed = run(pipe)    # rows: uncond gets t1, cond gets t2
    assert torch.equal(one, same) and not torch.equal(one, mixed)


def test_ltx_extra_conditioning_tokens_get_the_nearest_frame(tiny_models):
    "LTX's condition pipeline puts the tokens of an image at frame 3 before the video's; the camera treats them as latent frame 1."
    from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition
    pipe = tiny_models.i2v("ltx"); seen = {}
    img = Image.new("RGB", (32, 32), (120, 80, 40))
    hd = pipe.transformer.register_forward_pre_hook(lambda m, a, k: seen.setdefault("f", token_frames(m, a, k)) and None, with_kwargs=True)
    try:
        with torch.no_grad():
            pipe(conditions=[LTXVideoCondition(image=img, frame_index=0), LTXVideoCondition(image=img, frame_index=3)], prompt="x",
                 height=32, width=32, num_frames=17, num_inference_steps=1, output_type="latent")
    finally: hd.remove()
    frames, n = seen["f"]
    assert n == 3 and frames.tolist() == [1] * 16 + [0] * 16 + [1] * 16 + [2] * 16


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_lowers_the_loss_and_resumes_to_the_same_weights(tiny_models, tmp_path, backend):
    pipe, data = tiny_models.i2v(backend), stills(tmp_path)
    cfg = CameraTrainConfig(steps=10, n_frames=9, cam_dim=16, lr=3e-3, save_every=5, n_eval=3, fps=8)
    full = train_camera(pipe, data, tmp_path / "full", cfg, progress=False)
    assert full["steps"] == 10 and len(full["losses"]) == 10 and np.isfinite(full["losses"]).all()
    assert full["eval_after"] < full["eval_before"], (full["eval_before"], full["eval_after"])
    # interrupted after 5 steps, then resumed: the same losses and the same final weights as the uninterrupted run
    train_camera(pipe, data, tmp_path / "part", CameraTrainConfig(**{**cfg.__dict__, "steps": 5}), progress=False)
    res = train_camera(pipe, data, tmp_path / "part", cfg, progress=False)
    assert res["steps"] == 10
    np.testing.assert_allclose(res["losses"], full["losses"], rtol=1e-4, atol=1e-6)
    a, b = load_camera_adapter_any(full["checkpoint"], pipe.transformer), load_camera_adapter_any(res["checkpoint"], pipe.transformer)
    for k, v in a.state_dict().items(): torch.testing.assert_close(v, b.state_dict()[k], rtol=1e-4, atol=1e-6)
    assert all(blk.to_out.weight.abs().sum() > 0 for blk in a.blocks)
    assert n_hooks(pipe.transformer) == 0 and all(p.requires_grad for p in pipe.transformer.parameters())


@pytest.mark.parametrize("backend", BACKENDS)
def test_checkpointing_and_bf16_training_on_transformers(tiny_models, tmp_path, monkeypatch, backend):
    "The transformer's own gradient checkpointing (the adapter's hooks are recomputed with the blocks) and bf16 autocast."
    import torch.utils.checkpoint as tuc
    calls, real = [], tuc.checkpoint
    monkeypatch.setattr(tuc, "checkpoint", lambda *a, **k: calls.append(1) or real(*a, **k))
    pipe = tiny_models.i2v(backend); tr = pipe.transformer
    cfg = CameraTrainConfig(steps=2, n_frames=9, cam_dim=16, lr=3e-3, n_eval=1, gradient_checkpointing=True, mixed_precision="bf16")
    res = train_camera(pipe, stills(tmp_path, 1), tmp_path / "out", cfg, progress=False)
    assert np.isfinite(res["losses"]).all() and np.isfinite(res["eval_after"])
    assert len(calls) >= 2 * len(transformer_blocks(tr)) and not tr.is_gradient_checkpointing   # switched off again
    # the gradients of the checkpointed backward are those of the plain one
    from vgot.camera_train import block_checkpointing
    s = SAMPLE[backend](pipe, [texture(seed=1)], CameraTrainConfig(n_frames=9, cam_dim=16), seed=4)

    def grads(ckpt):
        torch.manual_seed(0)
        ad = TransformerCameraAdapter(tr, cam_dim=16)
        for p in ad.parameters(): torch.nn.init.normal_(p, std=0.1)
        tr.requires_grad_(False)
        try:
            with ad.applied(tr, s["traj"]), block_checkpointing(tr, ckpt): transformer_camera_loss(tr, ad, s).backward()
        finally:
            tr.requires_grad_(True)
        return {k: p.grad for k, p in ad.named_parameters()}

    g0, g1 = grads(False), grads(True)
    for k in g0: torch.testing.assert_close(g0[k], g1[k], rtol=1e-5, atol=1e-6)


def test_camera_dependence_on_wan(tiny_models, tmp_path):
    """`camera_dependence` gives each clip its true, a shuffled and a static trajectory: the zero-initialised adapter is
    blind to them (equal losses), one whose output projection is not zero tells the three apart on every clip
    (catches: the same trajectory passed three times; drop the camera input)."""
    pipe = tiny_models.i2v("wan")
    cfg = CameraTrainConfig(n_frames=9, cam_dim=16)
    imgs = [texture(seed=i) for i in range(2)]
    ad = TransformerCameraAdapter(pipe.transformer, cam_dim=16)
    dep = camera_dependence(pipe, ad, imgs, cfg, n=3)
    assert dep["true"] == dep["shuffled"] == dep["static"] and len(dep["per_clip"]) == 3
    torch.manual_seed(0)
    for b in ad.blocks: torch.nn.init.normal_(b.to_out.weight, std=0.3)
    per = np.array(camera_dependence(pipe, ad, imgs, cfg, n=3)["per_clip"])
    assert (per[:, 0] != per[:, 1]).all() and (per[:, 0] != per[:, 2]).all(), per


def test_train_camera_cli_wan(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    data = stills(tmp_path, 1)
    r = run_cli("train-camera", data, "--backend", "wan", "--out", tmp_path / "out", "--steps", "3", "--cam-dim", "8", "--n-eval", "1", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "trained 3 steps" in r.stdout
    md = TransformerCameraAdapter.metadata(tmp_path / "out" / "camera_adapter.safetensors")
    assert md["vgot_camera_adapter"]["transformer"] == "WanTransformer3DModel" and md["config"]["n_frames"] == 9   # the preset's Wan frames
    r = run_cli("train-camera", data, "--backend", "wan", "--frames", "8", "--out", tmp_path / "o2", "--steps", "1", "--quiet")
    assert r.returncode == 2 and "use r·m + 1 frames" in r.stderr and "Traceback" not in r.stderr
