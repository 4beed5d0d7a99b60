"Shot generation: both backends × three camera modes, chunking, resume, atomic output, bad input, the CLI."
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from conftest import run_cli
from vgot.core import CameraMotion, Keyframe, RunStore, Script, Shot, ShotClip, VgotError
from vgot.media import load_tensors, read_video, save_image, save_tensors
from vgot.camera import as_trajectory, camera_affines, camera_following, warp
from vgot.camera_unet import CameraAdapter
import vgot.shots as shots_mod
from vgot.shots import (ShotConfig, chunk_plan, decode_latents, encode_keyframe, generate_shot, generate_shots,
                        latent_frames, load_keyframes)




def texture_image(H=64, W=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = sum(F.interpolate(torch.rand(1, 3, H // s, W // s, generator=g), size=(H, W), mode="bicubic", align_corners=False) / s**0.5
            for s in (4, 8, 16))
    x = (x - x.amin()) / (x.amax() - x.amin())
    return Image.fromarray((x[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8))


def make_keyframe(store, i, seed=0):
    "Write a keyframe the way Module 2 does: a PNG and a latent, plus keyframes/NNN.json."
    p, l = store.keyframe_rel(i)
    save_image(store.path(p), texture_image(seed=seed))
    save_tensors(store.path(l), {"latent": torch.randn(4, 8, 8, generator=torch.Generator().manual_seed(seed))})
    k = Keyframe(shot=i, image=p, latent=l, seed=seed, width=64, height=64)
    store.write_artifact(f"keyframes/{i:03d}.json", k)
    return k


def make_shot(i, duration=2.0, motion=None):
    return Shot(index=i, segment=f"segment {i}", duration=duration, character="a keeper", background="a lighthouse",
                relation="climbs the stairs", camera="pan right", motion=motion or CameraMotion(pan=0.2, zoom=1.2))


@pytest.fixture(scope="module")
def adapters(tiny_models, tmp_path_factory):
    "Adapter checkpoints for both backends (output projections non-zero, as after training)."
    d = tmp_path_factory.mktemp("adapters")
    out = {}
    for b in ("svd", "i2vgen-xl"):
        ad = CameraAdapter(tiny_models.i2v(b).unet, cam_dim=8)
        for p in ad.layers.values(): torch.nn.init.normal_(p.to_out_cam.weight, std=0.5)
        ad.save(d / f"{b}.safetensors"); out[b] = str(d / f"{b}.safetensors")
    return out


@pytest.mark.parametrize("backend", ["svd", "i2vgen-xl"])
@pytest.mark.parametrize("camera", ["embedding", "warp", "none"])
def test_backends_and_camera_modes(tiny_models, store, adapters, backend, camera):
    kf = make_keyframe(store, 0)
    cfg = ShotConfig.from_preset("tiny", backend=backend, camera=camera, camera_adapter=adapters[backend], fps=3)
    clip = generate_shot(kf, make_shot(0, duration=2.4), tiny_models, cfg, store)
    assert (clip.n_frames, clip.backend, clip.camera, clip.fps) == (7, backend, camera, 3.0)     # round(2.4 × 3) = 7
    frames, fps = read_video(store.path(clip.video))
    lat = load_tensors(store.path(clip.latents))["latents"]
    assert frames.shape == (7, 32, 32, 3) and fps == 3.0 and lat.shape == (7, 4, 16, 16)
    assert ShotClip.load(store.path("shots/000.json")) == clip and store.is_done("shot/000")
    Y = np.array([0.299, 0.587, 0.114])                      # stored latents decode to the video (up to H.264, on luma)
    assert np.abs(decode_latents(tiny_models.i2v(backend), lat) * 255 @ Y - frames.astype(np.float32) @ Y).mean() < 4


@pytest.mark.parametrize("backend", ["svd", "i2vgen-xl"])
def test_camera_modes_change_the_output_and_zero_adapter_does_not(tiny_models, tmp_path, backend):
    def lat(camera, ck=None):
        s = RunStore(tmp_path / f"{camera}-{ck is not None and ck.name}")
        c = generate_shot(make_keyframe(s, 0), make_shot(0), tiny_models,
                          ShotConfig.from_preset("tiny", backend=backend, camera=camera, camera_adapter=ck and str(ck), fps=2), s)
        return load_tensors(s.path(c.latents))["latents"]
    CameraAdapter(tiny_models.i2v(backend).unet, cam_dim=8).save(tmp_path / "zero.safetensors")
    none = lat("none")
    assert torch.equal(lat("embedding", tmp_path / "zero.safetensors"), none)    # untrained adapter: unchanged
    assert torch.equal(lat("none"), none)                                        # reproducible
    assert not torch.allclose(lat("warp"), none)


@pytest.mark.parametrize("backend", ["svd", "i2vgen-xl"])
def test_chunks_continue_from_the_last_frame(tiny_models, store, backend, monkeypatch):
    calls = []
    orig = shots_mod.run_chunk
    def spy(pipe, b, image, prompt, cam, config, gen):
        calls.append((len(cam.traj), np.array(image), cam.traj.clone()))
        return orig(pipe, b, image, prompt, cam, config, gen)
    monkeypatch.setattr(shots_mod, "run_chunk", spy)
    cfg = ShotConfig.from_preset("tiny", backend=backend, camera="warp", fps=2, native_frames=4)
    clip = generate_shot(make_keyframe(store, 0), make_shot(0, duration=5.0, motion=CameraMotion(pan=0.3)), tiny_models, cfg, store)
    assert clip.n_frames == 10 and [c[0] for c in calls] == [4, 4, 4]
    frames, _ = read_video(store.path(clip.video))
    lat = load_tensors(store.path(clip.latents))["latents"]
    assert len(frames) == 10 and lat.shape[0] == 10
    # chunk 2 is conditioned on the decoded last frame of chunk 1 (frame 3 of the shot)
    last = (decode_latents(tiny_models.i2v(backend), lat[:4])[-1] * 255).round()     # SVD's decoder is temporal: decode the chunk
    assert np.abs(calls[1][1].astype(np.float32) - last).max() <= 1
    for _, _, t in calls:                                        # each chunk's trajectory starts at its own first frame
        torch.testing.assert_close(t[0], torch.tensor([0.0, 0.0, 1.0]))
    torch.testing.assert_close(calls[1][2][-1, 0], torch.tensor(0.3 * 3 / 9))


def test_warp_latents_follow_the_script(tiny_models):
    """The warped keyframe latents the shot stage builds (`chunk_camera`, camera='warp') move as the script asks
    (camera-following measure), and a static camera leaves them on the keyframe's latent. Catches: skip the warp."""
    for b in ("svd", "i2vgen-xl"):
        pipe, img = tiny_models.i2v(b), texture_image(seed=3)
        cfg = ShotConfig.from_preset("tiny", backend=b, camera="warp", width=64, height=64)
        z = encode_keyframe(pipe, img)
        for m in (CameraMotion(pan=-0.25, tilt=0.1), CameraMotion(pan=0.1, zoom=1.4)):
            cam = shots_mod.chunk_camera(pipe, b, img, as_trajectory(m, 8), cfg, torch.Generator().manual_seed(0))
            assert cam.z_warp.shape == (8, *z.shape)
            cf = camera_following(latent_frames(cam.z_warp), m)
            assert cf["pan_error"] < 0.01 and cf["tilt_error"] < 0.01 and cf["log_zoom_error"] < 0.02, cf["estimated"]
        still = shots_mod.chunk_camera(pipe, b, img, as_trajectory(CameraMotion(), 8), cfg, torch.Generator().manual_seed(0))
        assert (still.z_warp[-1] - z).abs().max() < 1e-3 * z.abs().max()


@pytest.mark.parametrize("backend", ["svd", "i2vgen-xl", "wan", "ltx"])
def test_the_keyframe_conditions_every_backend(tiny_models, backend):
    """The same chunk (seed, prompt, camera) from two different keyframes gives different latents on every backend, and
    the same keyframe the same latents: the keyframe reaches the image-to-video call. Catches: ignore the keyframe."""
    pipe = tiny_models.i2v(backend)
    cfg = ShotConfig.from_preset("tiny", backend=backend, camera="none")
    traj = as_trajectory(CameraMotion(pan=0.1), 5)

    def chunk(img):
        cam = shots_mod.chunk_camera(pipe, backend, img, traj, cfg, torch.Generator().manual_seed(1))
        return shots_mod.run_chunk(pipe, backend, img, "a keeper climbs the stairs", cam, cfg, torch.Generator().manual_seed(2))

    a, b = (texture_image(cfg.height, cfg.width, seed=s) for s in (1, 2))
    la, lb, la2 = chunk(a), chunk(b), chunk(a)
    assert torch.equal(la, la2)
    assert (la - lb).abs().mean() > 1e-3 * la.abs().mean(), float((la - lb).abs().mean())


def test_resume_skips_finished_shots_and_redoes_stale(tiny_models, store, monkeypatch):
    kf, shot = make_keyframe(store, 0), make_shot(0)
    cfg = ShotConfig.from_preset("tiny", fps=2)
    clip = generate_shot(kf, shot, tiny_models, cfg, store)
    def boom(*a, **k): raise AssertionError("a finished shot was generated again")
    monkeypatch.setattr(shots_mod, "run_chunk", boom)
    assert generate_shot(kf, shot, tiny_models, cfg, RunStore(store.root)) == clip
    # memory options that do not change the output do not invalidate the shot
    assert generate_shot(kf, shot, tiny_models, ShotConfig.from_preset("tiny", fps=2, vae_slicing=True, vae_tiling=True), store) == clip
    with pytest.raises(AssertionError, match="generated again"):           # a changed motion makes it stale
        generate_shot(kf, make_shot(0, motion=CameraMotion(tilt=0.3)), tiny_models, cfg, store)
    assert store.status("shot/000", "x") == "stale"


def test_failure_leaves_no_partial_output(tiny_models, store, monkeypatch):
    def boom(*a, **k): raise RuntimeError("out of memory")
    monkeypatch.setattr(shots_mod, "decode_latents", boom)
    with pytest.raises(RuntimeError):
        generate_shot(make_keyframe(store, 0), make_shot(0), tiny_models, ShotConfig.from_preset("tiny", fps=2), store)
    assert not (store.root / "shots").exists() or not any((store.root / "shots").iterdir())
    assert not store.is_done("shot/000")


def test_bad_input_names_the_shot(tiny_models, store, tmp_path):
    kf = make_keyframe(store, 3)
    cfg = ShotConfig.from_preset("tiny")
    with pytest.raises(VgotError, match="shot 3: keyframe missing"): generate_shot(None, make_shot(3), tiny_models, cfg, store)
    with pytest.raises(VgotError, match=r"shot 3: duration = 1.0 is outside \[2.0, 5.0\]"):
        generate_shot(kf, make_shot(3, duration=1.0), tiny_models, cfg, store)
    bad = ShotConfig(); bad.backend = "cogvideo"
    with pytest.raises(VgotError, match="shot 3: shots config: backend = 'cogvideo' is not one of svd, i2vgen-xl"): generate_shot(kf, make_shot(3), tiny_models, bad, store)
    bad = ShotConfig(); bad.camera = "orbit"
    with pytest.raises(VgotError, match="shot 3: shots config: camera = 'orbit'"): generate_shot(kf, make_shot(3), tiny_models, bad, store)
    with pytest.raises(VgotError, match="shots config: camera = 'embedding' needs camera_adapter"):
        ShotConfig(camera="embedding")                                        # caught when the settings are made
    with pytest.raises(VgotError, match="camera_adapter = .*nope.safetensors' not found"):
        ShotConfig(camera="embedding", camera_adapter=str(tmp_path / "nope.safetensors"))
    CameraAdapter(tiny_models.i2v("svd").unet, cam_dim=8).save(tmp_path / "svd.safetensors")
    with pytest.raises(VgotError, match="shot 3: camera='embedding' with backend 'i2vgen-xl'.*trained for UNetSpatioTemporalConditionModel"):
        generate_shot(kf, make_shot(3), tiny_models, ShotConfig(backend="i2vgen-xl", camera="embedding", camera_adapter=str(tmp_path / "svd.safetensors")), store)
    store.path(kf.image).unlink()
    with pytest.raises(VgotError, match="shot 3: keyframe image keyframes/003.png not found"): generate_shot(kf, make_shot(3), tiny_models, cfg, store)
    with pytest.raises(VgotError, match="no setting 'steps_' \\(did you mean 'steps'\\?\\)"): ShotConfig.from_preset("tiny", steps_=3)


def test_generate_shots_and_cli(tiny_models, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    store = RunStore(tmp_path / "run")
    script = Script(title="t", shots=[make_shot(0), make_shot(1, motion=CameraMotion(tilt=0.2))])
    store.script_path.write_text(script.to_json())
    make_keyframe(store, 0)
    r = run_cli("shots", store.root, "--fps", "2", "--quiet")                  # keyframe 1 is missing
    assert r.returncode == 2 and "shot 1: keyframe missing" in r.stderr and "Traceback" not in r.stderr
    make_keyframe(store, 1, seed=1)
    r = run_cli("shots", store.root, "--fps", "2", "--backend", "i2vgen-xl", "--camera", "warp", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "shot 1: shots/001.mp4 (4 frames, i2vgen-xl, camera=warp)" in r.stdout
    store = RunStore(store.root)
    assert store.manifest["stages"]["shots"]["status"] == "done"
    clips = generate_shots(script, load_keyframes(store, script), tiny_models,
                           ShotConfig.from_preset("tiny", fps=2, backend="i2vgen-xl", camera="warp"), store, progress=False)
    assert [c.shot for c in clips] == [0, 1] and all(c.n_frames == 4 for c in clips)


def test_chunk_plan_edges():
    assert chunk_plan(1, 8) == [(0, 1)]
    assert chunk_plan(9, 8) == [(0, 8), (7, 2)]
    with pytest.raises(VgotError, match="at least 2"): chunk_plan(5, 1)


def test_vae_inputs_go_to_the_execution_device():
    """Under model CPU offload the VAE's weights wait on the CPU while the pipeline computes on its execution device:
    what vgot hands the VAE (and the decoder's timestep) goes to the execution device, never to `vae.device`. Stub
    pipelines with a meta execution device record where each input arrives."""
    from types import SimpleNamespace
    from vgot.shots import decode_video, encode_video

    class VAE:
        device, dtype = torch.device("cpu"), torch.float32

        def __init__(self, **cfg):
            self.config, self.seen = SimpleNamespace(**cfg), []
            self.latents_mean, self.latents_std = torch.zeros(4), torch.ones(4)

        def encode(self, x):
            self.seen.append(("encode", x.device))
            return SimpleNamespace(latent_dist=SimpleNamespace(mode=lambda: torch.zeros(1, 4, 2, 4, 4)))

        def decode(self, z, temb=None, return_dict=False):
            self.seen += [("decode", z.device)] + ([("temb", temb.device)] if temb is not None else [])
            return (torch.zeros(1, 3, 5, 16, 16),)

    class WanStubPipeline:                     # vgot reads the backend from the class name
        vae_scale_factor_temporal, vae_scale_factor_spatial, _execution_device = 4, 4, torch.device("meta")

        def __init__(self):
            self.vae = VAE(latents_mean=[0.0] * 4, latents_std=[1.0] * 4, timestep_conditioning=False)

    class LTXStubPipeline(WanStubPipeline):
        def __init__(self):
            self.vae = VAE(scaling_factor=1.0, timestep_conditioning=True)

    class I2VGenXLStubPipeline:
        vae_scale_factor, _execution_device = 4, torch.device("meta")

        def __init__(self):
            self.vae, self.seen = VAE(scaling_factor=0.2), []

        def decode_latents(self, lat, decode_chunk_size=8):
            self.seen.append(("decode_latents", lat.device))
            return torch.zeros(1, 3, lat.shape[2], 16, 16)

    meta = torch.device("meta")
    for P in (WanStubPipeline, LTXStubPipeline):
        p = P()
        encode_video(p, np.zeros((5, 16, 16, 3), np.float32))
        decode_video(p, torch.zeros(2, 4, 4, 4))
        encode_keyframe(p, Image.new("RGB", (16, 16)))
        assert p.vae.seen and all(d == meta for _, d in p.vae.seen), (P.__name__, p.vae.seen)
    assert ("temb", meta) in p.vae.seen                                  # LTX's decoder timestep too
    p = I2VGenXLStubPipeline()
    encode_keyframe(p, Image.new("RGB", (16, 16)))
    decode_latents(p, torch.zeros(3, 4, 4, 4))
    assert p.vae.seen + p.seen == [("encode", meta), ("decode_latents", meta)]


def test_ltx_decodes_with_the_model_cards_timestep_and_noise():
    """LTX's timestep-conditioned decoder gets the model card's decode timestep 0.05 and noise 0.025 as settings of both
    stages; they decide the output (and the resume hash) of LTX only, so other backends' runs keep their hashes."""
    from vgot.shots import decode_video
    from vgot.transitions import TransitionConfig
    c = ShotConfig.from_preset("tiny", backend="ltx")
    assert (c.decode_timestep, c.decode_noise_scale) == (0.05, 0.025) == (TransitionConfig().decode_timestep, TransitionConfig().decode_noise_scale)
    assert {"decode_timestep", "decode_noise_scale"} <= set(c.determining())
    assert not {"decode_timestep", "decode_noise_scale"} & set(ShotConfig.from_preset("tiny", backend="svd").determining())
    from diffusers import AutoencoderKLLTXVideo            # a tiny timestep-conditioned LTX VAE (0.9.1+ decoders are)
    torch.manual_seed(0)
    vae = AutoencoderKLLTXVideo(
        latent_channels=8, block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1,) * 5, decoder_layers_per_block=(1,) * 5, decoder_inject_noise=(False,) * 5,
        upsample_residual=(False,) * 4, upsample_factor=(1,) * 4, patch_size=1, patch_size_t=1, timestep_conditioning=True,
    ).eval()  # fmt: skip
    pipe = type("LTXStubPipeline", (), {})()                 # vgot reads the backend from the class name
    pipe.vae = vae
    lat = torch.randn(2, 8, 4, 4, generator=torch.Generator().manual_seed(0))
    g = lambda: torch.Generator().manual_seed(1)
    a = decode_video(pipe, lat, 0.05, 0.025, g())
    assert a.shape == (9, 32, 32, 3) and np.array_equal(a, decode_video(pipe, lat, 0.05, 0.025, g()))  # seeded
    assert np.abs(a - decode_video(pipe, lat, 0.05, 0.0, g())).max() > 1e-5             # the noise reaches the decoder
    assert np.abs(decode_video(pipe, lat, 0.05, 0.0) - decode_video(pipe, lat, 0.0, 0.0)).max() > 1e-5  # the timestep too
