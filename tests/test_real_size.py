"""Real architectures, random weights: every model class vgot supports, built from its published config, one forward at
a small spatial size with vgot's processors / adapters attached, then removed. Widths are never reduced; the one model
too big even in bf16 for the 8 GB budget (SDXL with two image branches) has fewer transformer layers in its last
block. bf16 where fp32 would pass 6 GB. `make test-fast` skips this file (`-m "not real_size"`).

Measured with /usr/bin/time -v, OMP_NUM_THREADS=1, on our 2-core CPU machine: 58 s wall, 6.5 GB peak RSS (4 tests); the
transformer backends' four (Wan 2.2 TI2V-5B and LTX-Video transformers with the camera adapter, their VAEs): 25 s wall,
3.4 GB peak RSS (the Wan 2.2 VAE; the others 0.9-2.1 GB)."""
import contextlib, gc
import numpy as np
import pytest, torch

from vgot.attention import (install_decoupled_attention, remove_decoupled_attention, decoupled_processors, check_ip_adapter_state_dict,
                            ip_adapter_layer_keys)
from vgot.camera import as_trajectory
from vgot.camera_unet import CameraAdapter, temporal_attention_layers
from vgot.core import CameraMotion
from vgot.tiny import tiny_ip_adapter_state_dict, tiny_ip_adapter_plus_state_dict

pytestmark = pytest.mark.real_size

VIT_H_EMBEDS, VIT_H_HIDDEN, BIGG_EMBEDS = 1024, 1280, 1280      # the published IP-Adapter image encoders' widths


@contextlib.contextmanager
def default_dtype(dt):
    "Build parameters directly in `dt` (no float32 copy first: that copy alone would pass the memory budget)."
    old = torch.get_default_dtype(); torch.set_default_dtype(dt)
    try: yield
    finally: torch.set_default_dtype(old)


def free():
    gc.collect()


def sd15_unet():
    from diffusers import UNet2DConditionModel
    torch.manual_seed(0)
    return UNet2DConditionModel(sample_size=64, in_channels=4, out_channels=4, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
                                cross_attention_dim=768, attention_head_dim=8,
                                down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                                up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3).eval()


def sdxl_unet(last_block_layers=4):
    "SDXL base's config (widths, heads, text_time additions); transformer_layers_per_block (1, 2, 10) → (1, 2, last_block_layers)."
    from diffusers import UNet2DConditionModel
    torch.manual_seed(0)
    with default_dtype(torch.bfloat16):
        return UNet2DConditionModel(sample_size=128, in_channels=4, out_channels=4, block_out_channels=(320, 640, 1280), layers_per_block=2,
                                    transformer_layers_per_block=(1, 2, last_block_layers), attention_head_dim=(5, 10, 20),
                                    cross_attention_dim=2048, use_linear_projection=True, addition_embed_type="text_time",
                                    addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816,
                                    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                                    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D")).eval()


def snapshot(unet):
    return {n: (type(p), id(p)) for n, p in unet.attn_processors.items()}, unet.encoder_hid_proj, unet.config.encoder_hid_dim_type


def _decoupled_round_trip(unet, base, plus, call, image_embeds):
    "Both IP-Adapter layouts as two branches: checked, installed, one forward, removed; the UNet is as it was."
    before = snapshot(unet)
    assert check_ip_adapter_state_dict(unet, base) == "base" and check_ip_adapter_state_dict(unet, plus) == "plus"
    procs = install_decoupled_attention(unet, {"identity": plus, "prev": base}, {"identity": 0.6, "prev": 0.4})
    try:
        assert len(procs) == len(ip_adapter_layer_keys(unet)) == len(base["ip_adapter"]) // 2
        with torch.no_grad(): out = call(image_embeds)
        assert torch.isfinite(out).all()
    finally:
        remove_decoupled_attention(unet)
    assert snapshot(unet) == before and not decoupled_processors(unet)
    return out


def test_sd15_unet_with_base_and_plus_ip_adapter():
    "SD 1.5's UNet (860 M, fp32: 3.4 GB), cross_attention_dim 768; IP-Adapter base (ViT-H image_embeds) and Plus (Resampler 768 wide, 12 heads) layouts."
    unet = sd15_unet()
    base, plus = tiny_ip_adapter_state_dict(unet, VIT_H_EMBEDS), tiny_ip_adapter_plus_state_dict(unet, VIT_H_HIDDEN)
    assert plus["image_proj"]["layers.0.0.to_q.weight"].shape == (768, 768) and plus["image_proj"]["latents"].shape == (1, 16, 768)
    assert len(base["ip_adapter"]) == 32                                       # 16 cross-attention layers, as the published file
    g = torch.Generator().manual_seed(0)
    x, text = torch.randn(1, 4, 16, 16, generator=g), torch.randn(1, 77, 768, generator=g)
    emb = [torch.randn(1, 1, 257, VIT_H_HIDDEN, generator=g), torch.randn(1, 1, VIT_H_EMBEDS, generator=g)]
    call = lambda e: unet(x, torch.tensor([500]), text, added_cond_kwargs={"image_embeds": e} if e is not None else None).sample
    with torch.no_grad(): plain = call(None)
    out = _decoupled_round_trip(unet, base, plus, call, emb)
    assert out.shape == (1, 4, 16, 16) and (out - plain).abs().max() > 1e-4
    with torch.no_grad(): torch.testing.assert_close(call(None), plain)
    del unet, base, plus; free()


def test_sdxl_unet_bf16_with_base_and_plus_ip_adapter():
    "SDXL's UNet in bf16 with its text_time additions (fewer transformer layers in the last block, same widths); base (bigG) and Plus (ViT-H, 1280 wide, 20 heads)."
    unet = sdxl_unet()
    base, plus = tiny_ip_adapter_state_dict(unet, BIGG_EMBEDS), tiny_ip_adapter_plus_state_dict(unet, VIT_H_HIDDEN)
    assert plus["image_proj"]["proj_out.weight"].shape == (2048, 1280) and plus["image_proj"]["layers.3.0.to_q.weight"].shape == (1280, 1280)
    g = torch.Generator().manual_seed(0)
    bf = torch.bfloat16
    x, text = torch.randn(1, 4, 16, 16, generator=g).to(bf), torch.randn(1, 77, 2048, generator=g).to(bf)
    cond = {"text_embeds": torch.randn(1, 1280, generator=g).to(bf), "time_ids": torch.tensor([[128., 128, 0, 0, 128, 128]]).to(bf)}
    emb = [torch.randn(1, 1, 257, VIT_H_HIDDEN, generator=g).to(bf), torch.randn(1, 1, BIGG_EMBEDS, generator=g).to(bf)]
    call = lambda e: unet(x, torch.tensor([500]), text, added_cond_kwargs={**cond, **({"image_embeds": e} if e is not None else {})}).sample
    out = _decoupled_round_trip(unet, base, plus, call, emb)
    assert out.shape == (1, 4, 16, 16) and out.dtype == bf
    assert all(p.dtype == bf for p in unet.parameters())
    del unet, base, plus; free()


def _camera_round_trip(unet, call, frames):
    "A camera adapter with non-zero output weights on every temporal layer: it changes the output; removed, the model is the same."
    with torch.no_grad(): plain = call()
    ad = CameraAdapter(unet, cam_dim=64)
    assert len(ad.names) == len(temporal_attention_layers(unet))
    for p in ad.layers.values(): torch.nn.init.normal_(p.to_out_cam.weight, std=0.02)
    with torch.no_grad(), ad.applied(unet, as_trajectory(CameraMotion(pan=0.2, zoom=1.2), frames)):
        out = call()
    assert torch.isfinite(out).all() and (out.float() - plain.float()).abs().max() > 0
    with torch.no_grad(): torch.testing.assert_close(call(), plain)
    return ad


def test_svd_unet_bf16_with_camera_adapter():
    "Stable Video Diffusion's UNetSpatioTemporalConditionModel (1.53 B, published config = the class defaults) in bf16, 4 frames at 16x16."
    from diffusers import UNetSpatioTemporalConditionModel
    torch.manual_seed(0)
    with default_dtype(torch.bfloat16): unet = UNetSpatioTemporalConditionModel().eval()
    bf, g = torch.bfloat16, torch.Generator().manual_seed(0)
    x, emb = torch.randn(1, 4, 8, 16, 16, generator=g).to(bf), torch.randn(1, 1, 1024, generator=g).to(bf)
    ids = torch.tensor([[6.0, 127.0, 0.02]]).to(bf)
    call = lambda: unet(x, torch.tensor([0.5]), encoder_hidden_states=emb, added_time_ids=ids, return_dict=False)[0]
    ad = _camera_round_trip(unet, call, 4)
    assert len(ad.names) == 16                                                   # every temporal transformer block
    del unet, ad; free()


def test_i2vgenxl_unet_with_camera_adapter():
    "I2VGen-XL's UNet (1.42 B, published config = the class defaults; fp32 is 5.7 GB, under 6), 4 frames at 16x16."
    from diffusers import I2VGenXLUNet
    torch.manual_seed(0)
    unet = I2VGenXLUNet().eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, 4, 16, 16, generator=g)
    kw = dict(fps=torch.tensor([8]), image_latents=torch.randn(1, 4, 4, 16, 16, generator=g), image_embeddings=torch.randn(1, 1024, generator=g),
              encoder_hidden_states=torch.randn(1, 77, 1024, generator=g))
    call = lambda: unet(x, torch.tensor([500]), return_dict=False, **kw)[0]
    _camera_round_trip(unet, call, 4)
    del unet; free()


# ---- the transformer backends: Wan 2.2 TI2V-5B and LTX-Video with the camera adapter, and their causal video VAEs --------

def _dit_camera_round_trip(tr, call, traj):
    """A TransformerCameraAdapter on every block: zero-initialised, the output is bit-identical; with non-zero output weights
    it changes; removed, the model is the same and has no hook left."""
    from vgot.camera_dit import TransformerCameraAdapter, transformer_blocks
    hooks = lambda: sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in tr.modules())
    with torch.no_grad(): plain = call()
    ad = TransformerCameraAdapter(tr, cam_dim=64)
    assert len(ad.blocks) == len(transformer_blocks(tr))
    with torch.no_grad(), ad.applied(tr, traj):
        assert torch.equal(call(), plain)                                     # zero-initialised: bit-identical
        for b in ad.blocks: torch.nn.init.normal_(b.to_out.weight, std=0.02)
        out = call()
    assert torch.isfinite(out).all() and (out.float() - plain.float()).abs().max() > 0
    assert hooks() == 0
    with torch.no_grad(): assert torch.equal(call(), plain)
    return ad


def test_wan22_ti2v_5b_transformer_with_camera_adapter():
    """Wan 2.2 TI2V-5B's WanTransformer3DModel at its published widths (hub transformer/config.json: 24 heads x 128 = 3072,
    ffn 14336, in/out 48 channels, text_dim 4096, freq_dim 256, patch (1, 2, 2), cross_attn_norm) with 1 of its 30 blocks
    (254 M, fp32 1.0 GB); 3 latent frames of 4x4 (12 tokens), per-token timesteps with frame 0 at 0 as its pipeline makes them."""
    from diffusers import WanTransformer3DModel
    from vgot.camera_dit import latent_trajectory
    torch.manual_seed(0)
    tr = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=24, attention_head_dim=128, in_channels=48, out_channels=48,
                               text_dim=4096, freq_dim=256, ffn_dim=14336, num_layers=1, cross_attn_norm=True, eps=1e-6,
                               rope_max_seq_len=1024).eval()
    assert tr.config.num_attention_heads * tr.config.attention_head_dim == 3072
    g = torch.Generator().manual_seed(0)
    x, text = torch.randn(1, 48, 3, 4, 4, generator=g), torch.randn(1, 16, 4096, generator=g)
    ts = torch.tensor([[0.0] * 4 + [700.0] * 8])                              # TI2V: latent frame 0 is the clean image
    call = lambda: tr(hidden_states=x, timestep=ts, encoder_hidden_states=text, return_dict=False)[0]
    ad = _dit_camera_round_trip(tr, call, latent_trajectory(as_trajectory(CameraMotion(pan=0.2, zoom=1.2), 9), 4))
    assert ad.config["dim"] == 3072 and call().shape == (1, 48, 3, 4, 4)
    del tr, ad; free()


def test_ltx_video_transformer_with_camera_adapter():
    """LTX-Video's LTXVideoTransformer3DModel at its published widths (32 heads x 64 = 2048, cross_attention_dim 2048,
    caption_channels 4096, in/out 128 channels, patch size 1) with 1 of its 28 blocks (110 M, fp32 0.44 GB); the condition pipeline's
    call: a batch of 2 (classifier-free guidance), 2 latent frames of 2x2 tokens, video_coords as it builds them."""
    from diffusers import LTXConditionPipeline, LTXVideoTransformer3DModel
    from vgot.camera_dit import latent_trajectory
    torch.manual_seed(0)
    tr = LTXVideoTransformer3DModel(in_channels=128, out_channels=128, patch_size=1, patch_size_t=1, num_attention_heads=32,
                                    attention_head_dim=64, cross_attention_dim=2048, num_layers=1, caption_channels=4096).eval()
    g = torch.Generator().manual_seed(0)
    x, text = torch.randn(2, 8, 128, generator=g), torch.randn(2, 8, 4096, generator=g)
    ids = LTXConditionPipeline._scale_video_ids(LTXConditionPipeline._prepare_video_ids(1, 2, 2, 2), 32, 8).float()
    ids[:, 0] /= 25.0
    ts = torch.tensor([[0.0] * 4 + [700.0] * 4]).expand(2, -1)
    call = lambda: tr(hidden_states=x, encoder_hidden_states=text, timestep=ts, encoder_attention_mask=torch.ones(2, 8),
                      video_coords=ids.expand(2, -1, -1), return_dict=False)[0]
    ad = _dit_camera_round_trip(tr, call, latent_trajectory(as_trajectory(CameraMotion(tilt=0.2, zoom=0.8), 9), 8))
    assert ad.config["dim"] == 2048
    del tr, ad; free()


def test_wan22_vae_compresses_16x_space_4x_time():
    """Wan 2.2's AutoencoderKLWan at TI2V-5B's vae/config.json (base_dim 160, decoder_base_dim 256, dim_mult (1, 2, 4, 4),
    2 res blocks, z_dim 48, 12-channel patches of 2x2, residual; 705 M, fp32 2.8 GB): 5 frames of 64x64 -> 2 latent frames
    of 4x4 and back.
    The published latents_mean/std (48 values) only normalise latents in the pipeline; zeros and ones stand in here."""
    from diffusers import AutoencoderKLWan
    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=160, decoder_base_dim=256, dim_mult=[1, 2, 4, 4], num_res_blocks=2, z_dim=48, in_channels=12,
                           out_channels=12, patch_size=2, is_residual=True, temperal_downsample=[False, True, True],
                           scale_factor_spatial=16, scale_factor_temporal=4, latents_mean=[0.0] * 48, latents_std=[1.0] * 48).eval()
    x = torch.rand(1, 3, 5, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        z = vae.encode(x).latent_dist.mode()
        assert z.shape == (1, 48, 2, 4, 4)                                    # N = 4·1 + 1 frames -> m + 1 = 2 latent frames
        y = vae.decode(z).sample
    assert y.shape == x.shape and torch.isfinite(y).all()
    del vae; free()


# Lightricks/LTX-Video-0.9.5 vae/config.json (diffusers' conversion script, version 0.9.5): the VAE vgot's LTX presets load
LTX_095_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=128, block_out_channels=(128, 256, 512, 1024, 2048),
    down_block_types=("LTXVideo095DownBlock3D",) * 4, decoder_block_out_channels=(256, 512, 1024),
    layers_per_block=(4, 6, 6, 2, 2), decoder_layers_per_block=(5, 5, 5, 5),
    spatio_temporal_scaling=(True, True, True, True), decoder_spatio_temporal_scaling=(True, True, True),
    decoder_inject_noise=(False, False, False, False), downsample_type=("spatial", "temporal", "spatiotemporal", "spatiotemporal"),
    upsample_residual=(True, True, True), upsample_factor=(2, 2, 2), timestep_conditioning=True, patch_size=4, patch_size_t=1,
    resnet_norm_eps=1e-6, scaling_factor=1.0, encoder_causal=True, decoder_causal=False,
    spatial_compression_ratio=32, temporal_compression_ratio=8,
)  # fmt: skip


def test_ltx_video_vae_compresses_32x_space_8x_time():
    """LTX-Video 0.9.5's AutoencoderKLLTXVideo at its published config (timestep-conditioned decoder): 9 frames of 64x64 ->
    2 latent frames of 2x2 with 128 channels, and back through vgot's own decoding (`decode_video`, with the model card's
    decode timestep and noise), where the timestep reaches the decoder."""
    from types import SimpleNamespace
    from diffusers import AutoencoderKLLTXVideo
    from vgot.shots import decode_video
    torch.manual_seed(0)
    vae = AutoencoderKLLTXVideo(**LTX_095_VAE).eval()
    assert (vae.spatial_compression_ratio, vae.temporal_compression_ratio) == (32, 8) and vae.config.timestep_conditioning
    x = torch.rand(1, 3, 9, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        z = vae.encode(x).latent_dist.mode()
        assert z.shape == (1, 128, 2, 2, 2)                                   # N = 8·1 + 1 frames -> 2 latent frames
        y = vae.decode(z, temb=torch.tensor([0.05])).sample
    assert y.shape == x.shape and torch.isfinite(y).all()
    LTXStubPipeline = type("LTXStubPipeline", (), {})                      # vgot reads the backend from the class name
    pipe = LTXStubPipeline()
    pipe.vae = vae
    lat = z[0].permute(1, 0, 2, 3)                                            # (F, C, h, w); latents_mean 0, std 1: as is
    a = decode_video(pipe, lat, timestep=0.05, noise_scale=0.0)
    b = decode_video(pipe, lat, timestep=0.5, noise_scale=0.0)
    assert a.shape == (9, 64, 64, 3) and np.abs(a - b).max() > 1e-4          # the decoder reads the timestep
    del vae, pipe; free()
