"Camera module: trajectory → affine, warp, the camera-following estimator, the adapter, and training."
import json
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import run_cli
from vgot.core import CameraMotion, VgotError
from vgot.media import write_video, read_video
from vgot.camera import (CameraTrainConfig, as_trajectory, camera_affines, camera_following, estimate_motion, relative_trajectory,
                         render_motion, warp)
from vgot.camera_unet import CameraAdapter, CameraAttnProcessor, temporal_attention_layers
from vgot.camera_train import train_camera




def texture(H=96, W=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = sum(F.interpolate(torch.rand(1, 3, H // s, W // s, generator=g), size=(H, W), mode="bicubic", align_corners=False) / s**0.5
            for s in (2, 4, 8))
    return ((x - x.amin()) / (x.amax() - x.amin()))[0]


def film(motion, n=8, seed=0, crop=0.5):
    "uint8 (F, H, W, 3) frames of a textured still filmed with `motion`."
    fr = render_motion(texture(seed=seed), motion, n, crop=crop).permute(0, 2, 3, 1).clamp(0, 1).numpy()
    return (fr * 255).round().astype(np.uint8)


def test_sign_convention_by_hand():
    "Content sliding left is a camera moving right (dx > 0); content sliding down is a camera moving up (dy > 0)."
    img = (texture(64, 64).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    a = img[16:48, 16:48]
    left = img[16:48, 20:52]          # the view moved 4 px right: content slides left
    down = img[12:44, 16:48]          # the view moved 4 px up: content slides down
    e = estimate_motion(np.stack([a, left]))
    assert e.shape == (1, 3) and abs(e[0, 0] - 4 / 32) < 0.01 and abs(e[0, 1]) < 0.01 and abs(e[0, 2] - 1) < 0.01
    e = estimate_motion(np.stack([a, down]))
    assert abs(e[0, 1] - 4 / 32) < 0.01 and abs(e[0, 0]) < 0.01


@pytest.mark.parametrize("motion", [CameraMotion(pan=0.3), CameraMotion(pan=-0.25, tilt=0.2), CameraMotion(zoom=1.8),
                                    CameraMotion(zoom=0.6), CameraMotion(pan=0.15, tilt=-0.15, zoom=1.3), CameraMotion()])
def test_estimator_recovers_known_warps(motion):
    cf = camera_following(film(motion), motion)
    assert cf["pan_error"] < 0.005 and cf["tilt_error"] < 0.005 and cf["log_zoom_error"] < 0.01, cf["estimated"]
    assert set(cf) >= {"requested", "estimated", "pan_error", "tilt_error", "zoom_error", "per_pair"}
    assert len(cf["per_pair"]) == 7


def test_estimator_through_h264(tmp_path):
    m = CameraMotion(pan=0.2, tilt=0.1, zoom=1.5)
    write_video(tmp_path / "v.mp4", film(m, 12), 8)
    v, _ = read_video(tmp_path / "v.mp4")
    cf = camera_following(v, m)
    assert cf["pan_error"] < 0.01 and cf["tilt_error"] < 0.01 and cf["log_zoom_error"] < 0.02, cf["estimated"]


def test_estimator_per_step_units_and_inputs():
    m = CameraMotion(pan=0.28, zoom=1.4)
    fr = film(m, 8)
    e_u8, e_f = estimate_motion(fr), estimate_motion(fr.astype(np.float32) / 255)
    assert e_u8.shape == (7, 3)
    np.testing.assert_allclose(e_u8, e_f, atol=1e-6)
    np.testing.assert_allclose(e_u8[:, 0], np.full(7, 0.04), atol=0.003)      # Δc_x per step, in the first frame's units
    np.testing.assert_allclose(e_u8[:, 2], np.full(7, 1.4 ** (1 / 7)), atol=0.003)
    assert estimate_motion(fr[:1]).shape == (0, 3)
    with pytest.raises(VgotError, match="expected"): estimate_motion(fr[..., 0])


def test_relative_trajectory_composes():
    "Frame f seen from frame a: A_f = A_a ∘ A_rel(f), so a chunk starting at frame a continues the same camera path."
    t = as_trajectory(CameraMotion(pan=0.3, tilt=-0.2, zoom=1.6), 9)
    A, R = camera_affines(t), camera_affines(relative_trajectory(t, 4))
    hom = lambda M: torch.cat([M, torch.tensor([[[0., 0, 1]]]).expand(len(M), 1, 3)], dim=1)
    torch.testing.assert_close(hom(A[4:5]) @ hom(R), hom(A[4:]), atol=1e-5, rtol=1e-5)
    img = texture()
    full = render_motion(img, t, 9, crop=0.5)
    start = render_motion(img, t[4:5], 1, crop=0.5)[0]                           # frame 4
    chunk = warp(start, camera_affines(relative_trajectory(t, 4)))
    # compare away from the borders (the chunk's source frame is smaller than the texture)
    assert (chunk[:, :, 12:36, 12:36] - full[4:, :, 12:36, 12:36]).abs().mean() < 0.02


def test_warp_shapes_and_errors():
    A = camera_affines(as_trajectory(CameraMotion(pan=0.1), 3))
    assert warp(torch.randn(4, 8, 8), A).shape == (3, 4, 8, 8)
    assert warp(torch.randn(3, 4, 8, 8), A, size=(4, 6)).shape == (3, 4, 4, 6)
    with pytest.raises(VgotError, match="do not match"): warp(torch.randn(2, 4, 8, 8), A)
    with pytest.raises(VgotError, match="positive"): as_trajectory(np.array([[0, 0, 0.0]]))


def _svd_unet_out(unet, Fr=4):
    g = torch.Generator().manual_seed(0)
    return unet(torch.randn(1, Fr, 8, 16, 16, generator=g), torch.tensor([1.0]), encoder_hidden_states=torch.randn(1, 1, 32, generator=g),
                added_time_ids=torch.tensor([[6.0, 127, 0.02]]), return_dict=False)[0]


def test_untrained_adapter_leaves_unet_unchanged(tiny_models):
    unet = tiny_models.i2v("svd").unet
    with torch.no_grad():
        base = _svd_unet_out(unet)
        ad = CameraAdapter(unet, cam_dim=8)
        with ad.applied(unet, as_trajectory(CameraMotion(pan=0.3), 4)):
            assert torch.equal(_svd_unet_out(unet), base)
            assert all(isinstance(a.processor, CameraAttnProcessor) for a in temporal_attention_layers(unet).values())
            ad.scale = 0.0
            for p in ad.layers.values(): torch.nn.init.normal_(p.to_out_cam.weight)
            assert torch.equal(_svd_unet_out(unet), base)                      # λ = 0 switches it off
            ad.scale = 1.0
            assert not torch.allclose(_svd_unet_out(unet), base)
        assert torch.equal(_svd_unet_out(unet), base)
    with pytest.raises(VgotError, match="frames"):
        with ad.applied(unet, as_trajectory(CameraMotion(pan=0.3), 3)): _svd_unet_out(unet, Fr=4)


def test_training_lowers_loss_resumes_and_loads(tiny_models, tmp_path):
    from PIL import Image
    data = tmp_path / "data"; data.mkdir()
    for i in range(2): Image.fromarray((texture(64, 64, seed=i).permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(data / f"{i}.png")
    write_video(data / "clip.mp4", film(CameraMotion(), 3, seed=5), 4)      # clips count too (a middle frame)
    pipe = tiny_models.i2v("svd")
    cfg = CameraTrainConfig(steps=8, n_frames=4, cam_dim=16, lr=3e-3, save_every=4, n_eval=2)
    full = train_camera(pipe, data, tmp_path / "full", cfg, progress=False)
    assert full["steps"] == 8 and len(full["losses"]) == 8
    assert full["eval_after"] < full["eval_before"], (full["eval_before"], full["eval_after"])
    # interrupted at step 4, then resumed: the same weights as the uninterrupted run
    train_camera(pipe, data, tmp_path / "part", CameraTrainConfig(**{**cfg.__dict__, "steps": 4}), progress=False)
    res = train_camera(pipe, data, tmp_path / "part", cfg, progress=False)
    assert res["steps"] == 8 and len(res["losses"]) == 8
    np.testing.assert_allclose(res["losses"], full["losses"], rtol=1e-4, atol=1e-6)
    a, b = CameraAdapter.load(full["checkpoint"], pipe.unet), CameraAdapter.load(res["checkpoint"], pipe.unet)
    for (k, v), (_, w) in zip(a.state_dict().items(), b.state_dict().items()): torch.testing.assert_close(v, w, rtol=1e-4, atol=1e-6), k
    assert not any(isinstance(x.processor, CameraAttnProcessor) for x in temporal_attention_layers(pipe.unet).values())
    assert all(p.requires_grad for p in pipe.unet.parameters())                # the UNet is given back as it was


def test_i2vgen_training_lowers_loss(tiny_models, tmp_path):
    from PIL import Image
    data = tmp_path / "data"; data.mkdir()
    for i in range(2): Image.fromarray((texture(64, 64, seed=i).permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(data / f"{i}.png")
    pipe = tiny_models.i2v("i2vgen-xl")
    res = train_camera(pipe, data, tmp_path / "out", CameraTrainConfig(steps=12, n_frames=4, cam_dim=16, lr=3e-3, n_eval=2), progress=False)
    assert res["eval_after"] < res["eval_before"], (res["eval_before"], res["eval_after"])
    assert CameraAdapter.metadata(res["checkpoint"])["vgot_camera_adapter"]["unet"] == "I2VGenXLUNet"
    CameraAdapter.load(res["checkpoint"], pipe.unet)
    with pytest.raises(VgotError, match="n_frames"): train_camera(pipe, data, tmp_path / "o", CameraTrainConfig(n_frames=1), progress=False)


def test_checkpoint_errors(tiny_models, tmp_path):
    svd, i2v = tiny_models.i2v("svd"), tiny_models.i2v("i2vgen-xl")
    CameraAdapter(i2v.unet, cam_dim=8).save(tmp_path / "i2v.safetensors")
    with pytest.raises(VgotError, match="trained for I2VGenXLUNet"): CameraAdapter.load(tmp_path / "i2v.safetensors", svd.unet)
    from safetensors.torch import save_file
    save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(VgotError, match="not a vgot camera adapter"): CameraAdapter.load(tmp_path / "other.safetensors", svd.unet)
    with pytest.raises(VgotError, match="not found"): CameraAdapter.load(tmp_path / "missing.safetensors", svd.unet)


def test_train_camera_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")     # tiny models: one thread is fastest on a shared machine
    from PIL import Image
    data = tmp_path / "data"; data.mkdir()
    Image.fromarray((texture(64, 64).permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(data / "a.png")
    r = run_cli("train-camera", data, "--out", tmp_path / "out", "--steps", "3", "--frames", "4", "--cam-dim", "8", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "trained 3 steps" in r.stdout and (tmp_path / "out" / "camera_adapter.safetensors").exists()
    r = run_cli("train-camera", tmp_path / "empty", "--out", tmp_path / "o2", "--steps", "1", "--quiet")
    assert r.returncode == 2 and "not a folder" in r.stderr and "Traceback" not in r.stderr


def test_camera_following_on_untrackable_frames_says_so_instead_of_guessing():
    "Independent noise frames have no motion to track: the fit diverges, and the measure says so (it once crashed in math.log)."
    import numpy as np
    from vgot.camera import camera_following, estimate_motion
    from vgot.core import CameraMotion
    frames = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    est = estimate_motion(frames)
    assert est.shape == (5, 3) and np.isnan(est).any() and (est[np.isfinite(est[:, 2]), 2] > 0).all()
    res = camera_following(frames, CameraMotion(0.2, 0.0, 1.2))
    assert res["estimated"] is None and res["pan_error"] is None and "could not be estimated" in res["note"]
    flat = np.full((4, 32, 32, 3), 128, np.uint8)
    assert camera_following(flat, CameraMotion())["estimated"] == {"pan": 0.0, "tilt": 0.0, "zoom": 1.0}


# ---- the adapter uses the camera; config from the preset; checkpointing and bf16 ----------------------------------

def _stills(tmp_path, n=4):
    from PIL import Image
    data = tmp_path / "data"; data.mkdir(exist_ok=True)
    for i in range(n): Image.fromarray((texture(64, 64, seed=i).permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(data / f"{i}.png")
    return data


def test_trained_adapter_uses_the_camera(tiny_models, tmp_path):
    """Trained on known warps of stills, the adapter's loss depends on the camera input: a static camera costs it much more on
    most clips; the untrained adapter shows no difference at all. Shuffled trajectories are NOT reliably worse on the
    random tiny model (measured -0.15 % to +1.4 % over runs), so that ordering is reported, not asserted: see 03a_camera."""
    from vgot.camera_train import camera_dependence
    pipe, data = tiny_models.i2v("svd"), _stills(tmp_path)
    cfg = CameraTrainConfig(steps=120, n_frames=4, cam_dim=32, lr=3e-3, p_mean=-0.5, save_every=1000, n_eval=2)
    before = camera_dependence(pipe, CameraAdapter(pipe.unet, cam_dim=32), data, cfg, n=16)
    assert before["true"] == before["shuffled"] == before["static"]          # zero-initialised output: blind to the camera
    res = train_camera(pipe, data, tmp_path / "out", cfg, progress=False)
    dep = camera_dependence(pipe, CameraAdapter.load(res["checkpoint"], pipe.unet), data, cfg, n=16)
    assert dep["true"] < before["true"]
    assert dep["static"] > 1.1 * dep["true"], dep                             # measured: 0.33 vs 0.45
    per = np.array(dep["per_clip"])
    assert (per[:, 2] > per[:, 0]).mean() > 0.8                               # the static camera is worse on most clips, not on average only


def test_camera_train_config_from_preset():
    from vgot.core import preset_defaults
    c = CameraTrainConfig.from_preset("sd15", steps=5, mixed_precision="bf16", gradient_checkpointing=True)
    assert (c.width, c.height, c.n_frames, c.fps, c.steps, c.mixed_precision) == (704, 480, 121, 24, 5, "bf16")   # sd15's LTX-Video
    c = CameraTrainConfig.from_preset({**preset_defaults("sd15"), "i2v_backend": "svd"}, steps=5)               # as train-camera --backend svd
    assert (c.width, c.height, c.n_frames, c.fps) == (1024, 576, 25, 8)
    assert (CameraTrainConfig.from_preset("tiny").width, CameraTrainConfig.from_preset("tiny").n_frames) == (32, 8)
    with pytest.raises(VgotError, match="no setting 'frames' \\(did you mean 'n_frames'\\?\\)"): CameraTrainConfig.from_preset("tiny", frames=4)
    with pytest.raises(VgotError, match="mixed_precision = 'fp16' is not one of no, bf16"): CameraTrainConfig.from_preset("tiny", mixed_precision="fp16")


def test_checkpointing_and_bf16_training_run(tiny_models, tmp_path, monkeypatch):
    "Both options on CPU: the loss is finite, gradients reach every camera layer, and checkpointing really recomputes blocks."
    import torch.utils.checkpoint as tuc
    calls = []
    real = tuc.checkpoint
    monkeypatch.setattr(tuc, "checkpoint", lambda *a, **k: calls.append(1) or real(*a, **k))
    data = _stills(tmp_path, 2)
    for backend in ("svd", "i2vgen-xl"):
        pipe = tiny_models.i2v(backend)
        calls.clear()
        cfg = CameraTrainConfig(steps=3, n_frames=4, cam_dim=16, lr=3e-3, n_eval=1, gradient_checkpointing=True, mixed_precision="bf16")
        res = train_camera(pipe, data, tmp_path / backend, cfg, progress=False)
        assert len(res["losses"]) == 3 and all(np.isfinite(res["losses"])) and np.isfinite(res["eval_after"])
        assert len(calls) >= 3 * (len(pipe.unet.down_blocks) + len(pipe.unet.up_blocks)), (backend, len(calls))
        ad = CameraAdapter.load(res["checkpoint"], pipe.unet)
        assert all(p.to_out_cam.weight.abs().sum() > 0 for p in ad.layers.values())     # every camera layer was updated
        assert all(p.requires_grad for p in pipe.unet.parameters())
        assert all(type(b).forward is b.forward.__func__ for b in pipe.unet.up_blocks)     # the checkpoint wrappers are gone


def test_checkpointing_gives_the_same_gradients(tiny_models):
    from vgot.camera_train import block_checkpointing, camera_loss
    from vgot.camera_unet import _svd_sample
    pipe = tiny_models.i2v("svd")
    cfg = CameraTrainConfig(n_frames=4, cam_dim=16)
    s = _svd_sample(pipe, [texture(64, 64, seed=1)], cfg, seed=3)
    grads = []
    for on in (False, True):
        torch.manual_seed(0); ad = CameraAdapter(pipe.unet, cam_dim=16)
        for p in ad.parameters(): torch.nn.init.normal_(p, std=0.05)
        pipe.unet.requires_grad_(False)
        try:
            with ad.applied(pipe.unet, s["traj"]), block_checkpointing(pipe.unet, on):
                camera_loss(pipe.unet, ad, s).backward()
        finally: pipe.unet.requires_grad_(True)
        grads.append({k: p.grad.clone() for k, p in ad.named_parameters()})
    for k in grads[0]: torch.testing.assert_close(grads[0][k], grads[1][k], rtol=1e-4, atol=1e-7)
