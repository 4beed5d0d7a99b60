"""Real-size backends on a GPU: seconds per denoising step, peak GPU memory, the VAE decode, and the FLOP floor.

Every model vgot runs at real size, built from its published config (written out below: no downloads) with random
weights, in bf16 with PyTorch's SDPA attention, at its native resolution and frame count:

  sd15       keyframes  SD 1.5 UNet + vgot's decoupled attention (identity + previous keyframe branches), 512x512
  sdxl       keyframes  SDXL base UNet + vgot's decoupled attention, 1024x1024
  svd        shot       SVD-XT UNet, 1024x576, 25 frames
  i2vgen-xl  shot       I2VGen-XL UNet, 1280x704, 16 frames
  wan        shot       Wan 2.2 TI2V-5B (WanTransformer3DModel + AutoencoderKLWan), 1280x704, 121 frames
  ltx        shot       LTX-Video 0.9.5, the version vgot's presets load (LTXVideoTransformer3DModel + the 0.9.5
                        AutoencoderKLLTXVideo), 768x512 (its model card's size), 121 frames

vgot's real presets run I2VGen-XL at 1024x576 and LTX-Video at 704x480: the sizes here are upper bounds for them
(the report lists the presets' settings beside the table).

Each stage runs as its pipeline does: the encoders once (text / image encoders, and the VAE encoder for the
conditioning image), then the denoiser for one step per call as the pipeline calls it under classifier-free guidance
(one batch of 2 for the UNets and LTX; two calls of batch 1 for Wan, as WanImageToVideoPipeline does), then the VAE
decode of the stage's latents. Two configurations:

  resident          every component on the GPU, no VAE tiling;
  offload + tiling  model CPU offload (each component moved to the GPU for its phase and back, as diffusers'
                    enable_model_cpu_offload does) and VAE tiling (SVD's temporal decoder has none: its decoder
                    works `decode_chunk_size` = 8 frames at a time in both).

Reported per backend: s/step (median of --steps after --warmup, CUDA-synchronised), peak memory
(torch.cuda.max_memory_allocated; reserved in brackets) of the stage and of each phase, the VAE decode (s, peak)
without and with tiling, and the FLOP floor of a step: FLOPs of one denoiser forward (FlopCounterMode on a meta-device
copy at the native size: shapes only, no memory) x 2 for classifier-free guidance, divided by this card's measured
bf16 matmul rate (an 8192^3 matmul). Target: every shot backend's stage fits a 24 GB card with offload + tiling
(reserved peak <= 24 GiB minus 1 GiB for the CUDA context): PASS / FAIL per backend.

    python bench/gpu.py [--only wan,ltx] [--steps 3] [--warmup 1] [--no-offload] [--out bench/RESULTS.md]
    python bench/gpu.py --dry-run      # CPU: builds every model on the meta device, parameters and FLOPs per step

On a GPU it writes (replaces) its section of bench/RESULTS.md, one per card, from the rows of this run and of
earlier runs on the same card (kept in bench/gpu_results.json, by backend; --fresh forgets them): a run can be split
with --only to fit a time limit, e.g. `--only sd15,sdxl,svd,i2vgen-xl` then `--only wan,ltx` (Wan's 121-frame 720p
VAE decodes take the longest). --dry-run (automatic without CUDA) writes nothing. One backend failing (out of memory,
an API change) is reported in its row; the others go on.
"""
from __future__ import annotations

import argparse, contextlib, gc, json, os, statistics, sys, time, traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("VGOT_HOME", str(ROOT / ".vgot_home"))
sys.path.insert(0, str(ROOT / "bench"))

import torch

GiB = 2**30
DEVICE = "cuda"
BUDGET_GIB, CONTEXT_GIB = 24.0, 1.0   # the target card, and what its CUDA context and other processes take
BF16 = torch.bfloat16

# --------------------------------------------------------------------------------------------------------------------
# Published configs (random weights). Sources: the hub's config.json of each repository named.

# stable-diffusion-v1-5/stable-diffusion-v1-5: unet/, vae/, text_encoder/; h94/IP-Adapter models/image_encoder (ViT-H)
SD15_UNET = dict(sample_size=64, in_channels=4, out_channels=4, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
                 cross_attention_dim=768, attention_head_dim=8, down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                 up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
SD_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
              down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, sample_size=512,
              scaling_factor=0.18215)
# stabilityai/stable-diffusion-xl-base-1.0: unet/, vae/, text_encoder/ (CLIP-L), text_encoder_2/ (bigG);
# h94/IP-Adapter sdxl_models/image_encoder (ViT-bigG)
SDXL_UNET = dict(sample_size=128, in_channels=4, out_channels=4, block_out_channels=(320, 640, 1280), layers_per_block=2,
                 transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20), cross_attention_dim=2048,
                 use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
                 projection_class_embeddings_input_dim=2816,
                 down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                 up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"))
SDXL_VAE = dict(SD_VAE, sample_size=1024, scaling_factor=0.13025)
# stabilityai/stable-video-diffusion-img2vid-xt: unet/ (UNetSpatioTemporalConditionModel), vae/
# (AutoencoderKLTemporalDecoder: not the class's defaults), image_encoder/ (CLIP ViT-H/14)
SVD_UNET = dict(sample_size=96, in_channels=8, out_channels=4, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
                down_block_types=("CrossAttnDownBlockSpatioTemporal",) * 3 + ("DownBlockSpatioTemporal",),
                up_block_types=("UpBlockSpatioTemporal",) + ("CrossAttnUpBlockSpatioTemporal",) * 3,
                addition_time_embed_dim=256, projection_class_embeddings_input_dim=768, cross_attention_dim=1024,
                transformer_layers_per_block=1, num_attention_heads=(5, 10, 20, 20), num_frames=25)
SVD_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
               down_block_types=("DownEncoderBlock2D",) * 4, sample_size=768, scaling_factor=0.18215, force_upcast=True)
# ali-vilab/i2vgen-xl: unet/ (I2VGenXLUNet), vae/ (the SD VAE), text_encoder/ (CLIP ViT-H text, 24 layers),
# image_encoder/ (CLIP ViT-H/14)
I2VGEN_UNET = dict(sample_size=32, in_channels=4, out_channels=4, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
                   down_block_types=("CrossAttnDownBlock3D",) * 3 + ("DownBlock3D",),
                   up_block_types=("UpBlock3D",) + ("CrossAttnUpBlock3D",) * 3, norm_num_groups=32,
                   cross_attention_dim=1024, attention_head_dim=64, num_attention_heads=None)
# Wan-AI/Wan2.2-TI2V-5B-Diffusers transformer/ and vae/ (as diffusers' scripts/convert_wan_to_diffusers.py writes
# them for "Wan2.2-TI2V-5B"); text_encoder/ is google/umt5-xxl's encoder
WAN_TRANSFORMER = dict(added_kv_proj_dim=None, attention_head_dim=128, cross_attn_norm=True, eps=1e-6, ffn_dim=14336,
                       freq_dim=256, in_channels=48, num_attention_heads=24, num_layers=30, out_channels=48,
                       patch_size=(1, 2, 2), qk_norm="rms_norm_across_heads", text_dim=4096, rope_max_seq_len=1024)
WAN_VAE = dict(base_dim=160, decoder_base_dim=256, z_dim=48, is_residual=True, in_channels=12, out_channels=12, patch_size=2,
               scale_factor_temporal=4, scale_factor_spatial=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
               temperal_downsample=[False, True, True])   # the hub config's clip_output=False: this diffusers has no such option
# Lightricks/LTX-Video-0.9.5 (the model vgot's real presets name; LTXConditionPipeline): transformer/ is the 2B
# LTX-Video transformer (as 0.9.0/0.9.1), vae/ the 0.9.5 VAE with timestep conditioning (as diffusers'
# scripts/convert_ltx_to_diffusers.py writes them for version 0.9.5); text_encoder/ is T5-v1.1-XXL's encoder
LTX_TRANSFORMER = dict(in_channels=128, out_channels=128, patch_size=1, patch_size_t=1, num_attention_heads=32,
                       attention_head_dim=64, cross_attention_dim=2048, num_layers=28, activation_fn="gelu-approximate",
                       qk_norm="rms_norm_across_heads", norm_elementwise_affine=False, norm_eps=1e-6, caption_channels=4096,
                       attention_bias=True, attention_out_bias=True)
LTX_VAE = dict(in_channels=3, out_channels=3, latent_channels=128, block_out_channels=(128, 256, 512, 1024, 2048),
               down_block_types=("LTXVideo095DownBlock3D",) * 4, decoder_block_out_channels=(256, 512, 1024),
               layers_per_block=(4, 6, 6, 2, 2), decoder_layers_per_block=(5, 5, 5, 5),
               spatio_temporal_scaling=(True, True, True, True), decoder_spatio_temporal_scaling=(True, True, True),
               decoder_inject_noise=(False,) * 4, downsample_type=("spatial", "temporal", "spatiotemporal", "spatiotemporal"),
               upsample_residual=(True, True, True), upsample_factor=(2, 2, 2), timestep_conditioning=True, patch_size=4,
               patch_size_t=1, resnet_norm_eps=1e-6, scaling_factor=1.0, encoder_causal=True, decoder_causal=False,
               spatial_compression_ratio=32, temporal_compression_ratio=8)

# transformers encoders
CLIP_L_TEXT = dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12, vocab_size=49408,
                   max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768)
CLIP_BIGG_TEXT = dict(hidden_size=1280, intermediate_size=5120, num_attention_heads=20, num_hidden_layers=32, vocab_size=49408,
                      max_position_embeddings=77, hidden_act="gelu", projection_dim=1280)
CLIP_H_TEXT = dict(hidden_size=1024, intermediate_size=4096, num_attention_heads=16, num_hidden_layers=24, vocab_size=49408,
                   max_position_embeddings=77, hidden_act="gelu", projection_dim=1024)
VIT_H = dict(hidden_size=1280, intermediate_size=5120, num_attention_heads=16, num_hidden_layers=32, patch_size=14,
             image_size=224, projection_dim=1024, hidden_act="gelu")
VIT_BIGG = dict(hidden_size=1664, intermediate_size=8192, num_attention_heads=16, num_hidden_layers=48, patch_size=14,
                image_size=224, projection_dim=1280, hidden_act="gelu")
UMT5_XXL = dict(d_model=4096, d_ff=10240, d_kv=64, num_heads=64, num_layers=24, vocab_size=256384,
                feed_forward_proj="gated-gelu", relative_attention_num_buckets=32, relative_attention_max_distance=128,
                tie_word_embeddings=False)
T5_XXL = dict(d_model=4096, d_ff=10240, d_kv=64, num_heads=64, num_layers=24, vocab_size=32128,
              feed_forward_proj="gated-gelu", tie_word_embeddings=False)


# --------------------------------------------------------------------------------------------------------------------
# Building

@contextlib.contextmanager
def building(device, dtype=BF16):
    "Parameters made directly on `device` in `dtype` (no float32 copy first)."
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(old)


def clip_text(cfg, projection=False):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(CLIPTextConfig(**cfg)).eval()


def clip_vision(cfg):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
    return CLIPVisionModelWithProjection(CLIPVisionConfig(**cfg)).eval()


def umt5(cfg):
    from transformers import UMT5Config, UMT5EncoderModel
    return UMT5EncoderModel(UMT5Config(**cfg)).eval()


def t5(cfg):
    from transformers import T5Config, T5EncoderModel
    return T5EncoderModel(T5Config(**cfg)).eval()


def n_params(m) -> int:
    return sum(p.numel() for p in m.parameters())


def n_bytes(m) -> int:
    return sum(p.numel() * p.element_size() for p in m.parameters()) + sum(b.numel() * b.element_size() for b in m.buffers())


def rand(shape, dev, dt=BF16):
    return torch.randn(shape, device=dev, dtype=dt)


def ids(shape, vocab, dev):
    return torch.randint(0, vocab, shape, device=dev)


# --------------------------------------------------------------------------------------------------------------------
# The backends

@dataclass
class Backend:
    name: str
    stage: str                                   # "keyframes" | "shot"
    model: str                                   # what it is, for the table
    width: int
    height: int
    frames: int                                  # video frames (1: an image)
    native_steps: int                            # the pipeline's default number of steps, for the stage estimate
    build_denoiser: Callable                     # () -> module (under `building`)
    build_vae: Callable
    encoders: dict                               # name -> () -> module
    encode: Callable                             # (components, dev) -> None: the encoder phase (runs each encoder once)
    forward: Callable                            # (denoiser, batch, dev) -> () -> output: one denoiser call
    step_calls: tuple                            # batch sizes of the denoiser calls in one guided step
    latents: Callable                            # (dev, dtype) -> the stage's latents, as the VAE decodes them
    decode: Callable                             # (vae, latents) -> video / image tensor
    prepare: Optional[Callable] = None           # (denoiser) -> None: vgot's processors, after building
    cfg: int = 2                                 # denoiser forwards per step under classifier-free guidance
    tiling: bool = True                          # the VAE has tiling
    encode_vae: bool = True                      # the encoder phase runs the VAE's encoder (the conditioning image)
    notes: str = ""


def _unet_forward(extra):
    "A UNet2DConditionModel call: (denoiser, batch, dev) -> thunk; `extra(batch, dev)` gives its added kwargs."
    def make(unet, b, dev):
        h = unet.config.sample_size
        x, enc = rand((b, 4, h, h), dev), rand((b, 77, unet.config.cross_attention_dim), dev)
        t = torch.tensor([500.0] * b, device=dev)
        kw = extra(b, dev)
        return lambda: unet(x, t, enc, added_cond_kwargs=kw, return_dict=False)[0]
    return make


def _install_decoupled(embed_dim):
    "vgot's decoupled cross-attention with two branches (identity, previous keyframe) of random IP-Adapter weights."
    def prepare(unet):
        from vgot.attention import install_decoupled_attention
        from vgot.tiny import tiny_ip_adapter_state_dict
        w = tiny_ip_adapter_state_dict(unet, embed_dim)
        install_decoupled_attention(unet, {"identity": w, "prev": w}, {"identity": 0.6, "prev": 0.4})
    return prepare


def _sd_decode(vae, z):
    return vae.decode(z / vae.config.scaling_factor, return_dict=False)[0]


def _keyframe_encode(text_cfgs, vision_cfg):
    def encode(c, dev):
        for k, cfg in text_cfgs:
            c[k](ids((2, 77), cfg["vocab_size"], dev))                  # prompt and negative prompt
        c["image_encoder"](rand((2, 3, 224, 224), dev))                  # identity image and previous keyframe
    return encode


def sd15() -> Backend:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    return Backend(
        "sd15", "keyframes", "SD 1.5 UNet + decoupled attn", 512, 512, 1, 30,
        build_denoiser=lambda: UNet2DConditionModel(**SD15_UNET).eval(),
        build_vae=lambda: AutoencoderKL(**SD_VAE).eval(),
        encoders={"text_encoder": lambda: clip_text(CLIP_L_TEXT), "image_encoder": lambda: clip_vision(VIT_H)},
        encode=_keyframe_encode([("text_encoder", CLIP_L_TEXT)], VIT_H),
        forward=_unet_forward(lambda b, dev: {"image_embeds": [rand((b, 1, 1024), dev), rand((b, 1, 1024), dev)]}),
        step_calls=(2,), latents=lambda dev, dt: rand((1, 4, 64, 64), dev, dt), decode=_sd_decode,
        prepare=_install_decoupled(VIT_H["projection_dim"]), encode_vae=False)


def sdxl() -> Backend:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    def extra(b, dev):
        return {"text_embeds": rand((b, 1280), dev), "time_ids": torch.tensor([[1024.0, 1024, 0, 0, 1024, 1024]] * b, device=dev, dtype=BF16),
                "image_embeds": [rand((b, 1, 1280), dev), rand((b, 1, 1280), dev)]}
    return Backend(
        "sdxl", "keyframes", "SDXL base UNet + decoupled attn", 1024, 1024, 1, 30,
        build_denoiser=lambda: UNet2DConditionModel(**SDXL_UNET).eval(),
        build_vae=lambda: AutoencoderKL(**SDXL_VAE).eval(),
        encoders={"text_encoder": lambda: clip_text(CLIP_L_TEXT), "text_encoder_2": lambda: clip_text(CLIP_BIGG_TEXT, True),
                  "image_encoder": lambda: clip_vision(VIT_BIGG)},
        encode=_keyframe_encode([("text_encoder", CLIP_L_TEXT), ("text_encoder_2", CLIP_BIGG_TEXT)], VIT_BIGG),
        forward=_unet_forward(extra), step_calls=(2,), latents=lambda dev, dt: rand((1, 4, 128, 128), dev, dt),
        decode=_sd_decode, prepare=_install_decoupled(VIT_BIGG["projection_dim"]), encode_vae=False)


def svd() -> Backend:
    from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel
    F, h, w = 25, 576 // 8, 1024 // 8
    def forward(unet, b, dev):
        x, emb = rand((b, F, 8, h, w), dev), rand((b, 1, 1024), dev)
        tid = torch.tensor([[6.0, 127.0, 0.02]] * b, device=dev, dtype=BF16)
        t = torch.tensor([0.5] * b, device=dev)
        return lambda: unet(x, t, encoder_hidden_states=emb, added_time_ids=tid, return_dict=False)[0]
    def encode(c, dev):
        c["image_encoder"](rand((1, 3, 224, 224), dev))
        c["vae"].encode(rand((1, 3, 576, 1024), dev, c["vae"].dtype)).latent_dist.mode()
    def decode(vae, z, chunk=8):                     # as StableVideoDiffusionPipeline.decode_latents
        return torch.cat([vae.decode(z[i:i + chunk], num_frames=len(z[i:i + chunk])).sample for i in range(0, len(z), chunk)])
    return Backend(
        "svd", "shot", "SVD-XT UNet", 1024, 576, F, 25,
        build_denoiser=lambda: UNetSpatioTemporalConditionModel(**SVD_UNET).eval(),
        build_vae=lambda: AutoencoderKLTemporalDecoder(**SVD_VAE).eval(),
        encoders={"image_encoder": lambda: clip_vision(VIT_H)}, encode=encode, forward=forward, step_calls=(2,),
        latents=lambda dev, dt: rand((F, 4, h, w), dev, dt), decode=decode, tiling=False,
        notes="no VAE tiling (temporal decoder): decodes 8 frames at a time in both configurations")


def i2vgen() -> Backend:
    from diffusers import AutoencoderKL, I2VGenXLUNet
    F, h, w = 16, 704 // 8, 1280 // 8
    def forward(unet, b, dev):
        x, img = rand((b, 4, F, h, w), dev), rand((b, 4, F, h, w), dev)
        kw = dict(fps=torch.tensor([16] * b, device=dev), image_latents=img, image_embeddings=rand((b, 1024), dev),
                  encoder_hidden_states=rand((b, 77, 1024), dev))
        t = torch.tensor([500] * b, device=dev)
        return lambda: unet(x, t, return_dict=False, **kw)[0]
    def encode(c, dev):
        c["text_encoder"](ids((2, 77), 49408, dev))
        c["image_encoder"](rand((1, 3, 224, 224), dev))
        c["vae"].encode(rand((1, 3, 704, 1280), dev, c["vae"].dtype)).latent_dist.sample()
    def decode(vae, z, chunk=8):                     # (F, 4, h, w), vgot's decode_chunk_size
        return torch.cat([vae.decode(z[i:i + chunk] / vae.config.scaling_factor, return_dict=False)[0] for i in range(0, len(z), chunk)])
    return Backend(
        "i2vgen-xl", "shot", "I2VGen-XL UNet", 1280, 704, F, 50,
        build_denoiser=lambda: I2VGenXLUNet(**I2VGEN_UNET).eval(),
        build_vae=lambda: AutoencoderKL(**SD_VAE).eval(),
        encoders={"text_encoder": lambda: clip_text(CLIP_H_TEXT), "image_encoder": lambda: clip_vision(VIT_H)},
        encode=encode, forward=forward, step_calls=(2,), latents=lambda dev, dt: rand((F, 4, h, w), dev, dt), decode=decode)


def wan() -> Backend:
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    Fv, H, W = 121, 704, 1280
    F, h, w = (Fv - 1) // 4 + 1, H // 16, W // 16                    # latents (48, 31, 44, 80)
    def forward(tr, b, dev):                          # WanImageToVideoPipeline with expand_timesteps (TI2V-5B)
        x, enc = rand((b, 48, F, h, w), dev), rand((b, 512, 4096), dev)
        t = torch.full((b, F * (h // 2) * (w // 2)), 500.0, device=dev)   # one timestep per token
        return lambda: tr(hidden_states=x, timestep=t, encoder_hidden_states=enc, return_dict=False)[0]
    def encode(c, dev):
        c["text_encoder"](input_ids=ids((2, 512), UMT5_XXL["vocab_size"], dev))          # 512 tokens, all attended
        c["vae"].encode(rand((1, 3, 1, H, W), dev, c["vae"].dtype)).latent_dist.mode()      # the keyframe (first frame)
    return Backend(
        "wan", "shot", "Wan 2.2 TI2V-5B", W, H, Fv, 50,
        build_denoiser=lambda: WanTransformer3DModel(**WAN_TRANSFORMER).eval(),
        build_vae=lambda: AutoencoderKLWan(**WAN_VAE).eval(),
        encoders={"text_encoder": lambda: umt5(UMT5_XXL)}, encode=encode, forward=forward, step_calls=(1, 1),
        latents=lambda dev, dt: rand((1, 48, F, h, w), dev, dt), decode=lambda vae, z: vae.decode(z, return_dict=False)[0],
        notes="guidance as WanImageToVideoPipeline: two batch-1 calls per step; the model card decodes in fp32 (--vae-dtype)")


def ltx() -> Backend:
    from diffusers import AutoencoderKLLTXVideo, LTXVideoTransformer3DModel
    Fv, H, W, fps = 121, 512, 768, 24
    F, h, w = (Fv - 1) // 8 + 1, H // 32, W // 32                    # latents (128, 16, 16, 24)
    def forward(tr, b, dev):                          # LTXConditionPipeline: tokens (b, F*h*w, 128), per-token timesteps
        x, enc = rand((b, F * h * w, 128), dev), rand((b, 256, 4096), dev)
        mask = torch.ones(b, 256, device=dev, dtype=BF16)
        t = torch.full((b, F * h * w), 500.0, device=dev)
        return lambda: tr(hidden_states=x, encoder_hidden_states=enc, timestep=t, encoder_attention_mask=mask, num_frames=F,
                          height=h, width=w, rope_interpolation_scale=(8 / fps, 32, 32), return_dict=False)[0]
    def encode(c, dev):
        c["text_encoder"](input_ids=ids((2, 256), T5_XXL["vocab_size"], dev))            # 256 tokens, all attended
        c["vae"].encode(rand((1, 3, 1, H, W), dev, c["vae"].dtype)).latent_dist.mode()   # the keyframe condition
    def decode(vae, z):                               # as vgot's decode_video: timestep 0, no noise
        return vae.decode(z, temb=torch.zeros(1, device=z.device, dtype=z.dtype), return_dict=False)[0]
    return Backend(
        "ltx", "shot", "LTX-Video 0.9.5 (2B)", W, H, Fv, 40,
        build_denoiser=lambda: LTXVideoTransformer3DModel(**LTX_TRANSFORMER).eval(),
        build_vae=lambda: AutoencoderKLLTXVideo(**LTX_VAE).eval(),
        encoders={"text_encoder": lambda: t5(T5_XXL)}, encode=encode, forward=forward, step_calls=(2,),
        latents=lambda dev, dt: rand((1, 128, F, h, w), dev, dt), decode=decode)


BACKENDS = {"sd15": sd15, "sdxl": sdxl, "svd": svd, "i2vgen-xl": i2vgen, "wan": wan, "ltx": ltx}


# --------------------------------------------------------------------------------------------------------------------
# Measuring

def make(fn, device, dtype=BF16):
    "A component built on `device` (legacy torch.Tensor(...) constructors ignore the device context: moved after)."
    with building(device, dtype):
        return fn().to(device)


def flops_per_forward(be: Backend, den=None) -> float:
    "FLOPs of one batch-1 denoiser forward at the native size, counted on a meta-device copy (shapes only)."
    from torch.utils.flop_counter import FlopCounterMode
    if den is None:
        den = make(be.build_denoiser, "meta")
        if be.prepare:
            be.prepare(den)
    call = be.forward(den, 1, torch.device("meta"))
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        call()
    return float(fc.get_total_flops())


def matmul_rate(dev, n: int = 8192, reps: int = 10, rounds: int = 5) -> float:
    "This card's bf16 matmul rate (FLOP/s): median over `rounds` of `reps` n x n x n matmuls, after a warm-up."
    a, b = rand((n, n), dev), rand((n, n), dev)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    ts = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        torch.cuda.synchronize()
        ts.append((time.perf_counter() - t0) / reps)
    del a, b
    torch.cuda.empty_cache()
    return 2 * n**3 / statistics.median(ts)


def oom(e: BaseException) -> bool:
    return isinstance(e, torch.cuda.OutOfMemoryError) or "out of memory" in str(e).lower()


def short(e: BaseException) -> str:
    return "OOM" if oom(e) else f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"


class Phase:
    "Peak GPU memory (allocated, reserved) and wall time of a block; empties the allocator's cache first."
    def __init__(self, dev): self.dev = dev
    def __enter__(self):
        gc.collect(); torch.cuda.empty_cache(); torch.cuda.synchronize(self.dev); torch.cuda.reset_peak_memory_stats(self.dev)
        self.t0 = time.perf_counter(); return self
    def __exit__(self, *exc):
        torch.cuda.synchronize(self.dev)
        self.seconds = time.perf_counter() - self.t0
        self.alloc = torch.cuda.max_memory_allocated(self.dev) / GiB
        self.reserved = torch.cuda.max_memory_reserved(self.dev) / GiB


def move(mods, dev):
    for m in mods:
        m.to(dev)


def run_stage(be: Backend, comps: dict, dev, offload: bool, tiling: bool, steps: int, warmup: int, decode_reps: int,
              vae_dtype) -> dict:
    """One stage: encoders, `warmup` + `steps` guided steps, the VAE decode. offload: each component on the GPU only
    for its phase (model CPU offload); otherwise all resident. tiling: the VAE's enable_tiling() (what vgot's
    vae_tiling does); where the VAE also decodes frame-wise (LTX), that is measured too, as a separate phase.
    Returns times and peaks; a phase that fails (out of memory, ...) says why and the stage goes on."""
    out = {"phases": {}, "failed": [], "alloc": float("nan"), "reserved": float("nan")}
    cpu = torch.device("cpu")
    vae = comps["vae"]
    if be.tiling and hasattr(vae, "enable_tiling"):
        vae.enable_tiling() if tiling else vae.disable_tiling()
    sync = lambda: torch.cuda.synchronize(dev)
    if not offload:
        try:
            move(comps.values(), dev)
        except Exception as e:
            move(comps.values(), cpu); gc.collect(); torch.cuda.empty_cache()
            out["failed"] = [f"load: {short(e)}"]
            return out

    def phase(name, mods, body):
        try:
            t_move = 0.0
            with Phase(dev) as p:
                if offload:
                    t0 = time.perf_counter(); move(mods, dev); sync(); t_move = time.perf_counter() - t0
                with torch.no_grad():
                    res = body()
                if offload:
                    t0 = time.perf_counter(); move(mods, cpu); sync(); t_move += time.perf_counter() - t0
            out["phases"][name] = dict(seconds=p.seconds, alloc=p.alloc, reserved=p.reserved, moves=t_move)
            return res
        except Exception as e:                                       # OOM or other: recorded, the stage goes on
            out["phases"][name] = dict(error=short(e))
            if offload:
                with contextlib.suppress(Exception):
                    move(mods, cpu)
            gc.collect(); torch.cuda.empty_cache()
            return None

    enc_mods = [comps[k] for k in be.encoders] + ([vae] if be.encode_vae else [])
    phase("encode", enc_mods, lambda: be.encode(comps, dev))

    def denoise():
        calls = [be.forward(comps["denoiser"], b, dev) for b in be.step_calls]
        step = lambda: [c() for c in calls]
        for _ in range(warmup):
            step()
        ts = []
        for _ in range(steps):
            sync(); t0 = time.perf_counter(); step(); sync(); ts.append(time.perf_counter() - t0)
        return ts
    ts = phase("denoise", [comps["denoiser"]], denoise)
    if ts:
        out["step_s"], out["steps"] = statistics.median(ts), ts

    def decode():
        z = be.latents(dev, vae_dtype)
        ds = []
        for _ in range(decode_reps):
            v = None                                                 # only one decoded video alive at a time
            sync(); t0 = time.perf_counter(); v = be.decode(vae, z); sync(); ds.append(time.perf_counter() - t0)
            out["video_shape"] = tuple(v.shape)
        return ds[-1] if len(ds) == 1 else statistics.median(ds[1:])   # the first is the warm-up
    out["decode_s"] = phase("decode", [vae], decode)
    ok = [p for p in out["phases"].values() if "error" not in p]
    out["alloc"] = max((p["alloc"] for p in ok), default=float("nan"))
    out["reserved"] = max((p["reserved"] for p in ok), default=float("nan"))
    out["failed"] = [f"{k}: {p['error']}" for k, p in out["phases"].items() if "error" in p]
    if tiling and be.tiling and hasattr(vae, "use_framewise_decoding"):    # not part of the stage's peak
        vae.use_framewise_decoding = True
        try:
            out["decode_framewise_s"] = phase("decode, tiled + frame-wise", [vae], decode)
        finally:
            vae.use_framewise_decoding = False
    if not offload:
        move(comps.values(), cpu)
    gc.collect(); torch.cuda.empty_cache()
    return out


def build_components(be: Backend, dev, vae_dtype) -> dict:
    "Each component made on the GPU (fast random init), then kept in CPU memory: the stage moves what it needs."
    comps = {}
    for name, fn in [("denoiser", be.build_denoiser), ("vae", be.build_vae), *be.encoders.items()]:
        m = make(fn, dev, vae_dtype if name == "vae" else BF16)
        if name == "denoiser" and be.prepare:
            be.prepare(m)
        comps[name] = m.to("cpu")
        torch.cuda.empty_cache()
    return comps


def bench_gpu(be: Backend, dev, rate: float, a) -> dict:
    row = dict(name=be.name, stage=be.stage, model=be.model, size=f"{be.width}x{be.height}" + (f"x{be.frames}" if be.frames > 1 else ""))
    try:
        row["flops"] = flops_per_forward(be)
        row["floor_s"] = row["flops"] * be.cfg / rate
    except Exception as e:
        row["flops_error"] = short(e)
    vae_dtype = torch.float32 if a.vae_dtype == "fp32" else BF16
    t0 = time.perf_counter()
    comps = build_components(be, dev, vae_dtype)
    row["build_s"] = time.perf_counter() - t0
    row["params"] = {k: n_params(m) for k, m in comps.items()}
    row["weights_gib"] = {k: n_bytes(m) / GiB for k, m in comps.items()}
    try:
        # the GPU count of one real forward, a check on the meta count (SDPA kernels have their own FLOP formulas)
        from torch.utils.flop_counter import FlopCounterMode
        comps["denoiser"].to(dev)
        call = be.forward(comps["denoiser"], 1, dev)
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            call()
        row["flops_gpu"] = float(fc.get_total_flops())
    except Exception as e:
        row["flops_gpu_error"] = short(e)
    finally:
        comps["denoiser"].to("cpu"); gc.collect(); torch.cuda.empty_cache()
    row["resident"] = run_stage(be, comps, dev, offload=False, tiling=False, steps=a.steps, warmup=a.warmup,
                                decode_reps=a.decode_reps, vae_dtype=vae_dtype)
    if not a.no_offload:
        row["offload"] = run_stage(be, comps, dev, offload=True, tiling=True, steps=a.steps, warmup=a.warmup,
                                   decode_reps=a.decode_reps, vae_dtype=vae_dtype)
        r = row["offload"]
        row["fits"] = (not r["failed"]) and r["reserved"] <= BUDGET_GIB - CONTEXT_GIB
    del comps
    gc.collect(); torch.cuda.empty_cache()
    return row


def dry(be: Backend, a) -> dict:
    "Meta device: parameters, weight bytes, FLOPs per step at the native size, and the decoded video's shape."
    row = dict(name=be.name, stage=be.stage, model=be.model, size=f"{be.width}x{be.height}" + (f"x{be.frames}" if be.frames > 1 else ""))
    meta = torch.device("meta")
    vae_dtype = torch.float32 if a.vae_dtype == "fp32" else BF16
    comps = {}
    for name, fn in [("denoiser", be.build_denoiser), ("vae", be.build_vae), *be.encoders.items()]:
        comps[name] = make(fn, meta, vae_dtype if name == "vae" else BF16)
    if be.prepare:
        be.prepare(comps["denoiser"])
    row["params"] = {k: n_params(m) for k, m in comps.items()}
    row["weights_gib"] = {k: n_bytes(m) / GiB for k, m in comps.items()}
    row["flops"] = flops_per_forward(be, comps["denoiser"])
    with torch.no_grad():
        be.encode(comps, meta)
        v = be.decode(comps["vae"], be.latents(meta, vae_dtype))
        for b in be.step_calls:
            o = be.forward(comps["denoiser"], b, meta)()
    row["video_shape"], row["out_shape"] = tuple(v.shape), tuple(o.shape)
    return row


# --------------------------------------------------------------------------------------------------------------------
# Reporting

def g(x, fmt="{:.2f}"):
    return "—" if x is None or x != x else fmt.format(x)


def phase_cell(r: Optional[dict], key: str) -> str:
    p = (r or {}).get("phases", {}).get(key)
    if not p:
        return "—"
    return p.get("error") or f"{p['alloc']:.1f} ({p['reserved']:.1f})"


def decode_cell(r: Optional[dict], key: str = "decode", s_key: str = "decode_s") -> str:
    p = (r or {}).get("phases", {}).get(key)
    if not p:
        return "—"
    return p.get("error") or f"{g(r.get(s_key))} s / {p['alloc']:.1f}"


def peak_cell(r: Optional[dict]) -> str:
    if not r:
        return "—"
    cell = f"{g(r['alloc'], '{:.1f}')} ({g(r['reserved'], '{:.1f}')})"
    return cell + (f"; failed: {', '.join(r['failed'])}" if r["failed"] else "")


def stage_estimate(be: Backend, r: Optional[dict]) -> Optional[float]:
    "Seconds of a whole stage at the pipeline's native number of steps: encoders + steps x s/step + decode."
    if not r or "step_s" not in r or r.get("decode_s") is None or "seconds" not in r["phases"].get("encode", {}):
        return None
    return r["phases"]["encode"]["seconds"] + be.native_steps * r["step_s"] + r["decode_s"]


def preset_settings() -> str:
    "What vgot's real presets run each video backend at (read from the installed library; best effort)."
    try:
        from vgot.models import get_preset
        seen = {}
        for p in ("sd15", "sdxl"):
            for b, d in get_preset(p).defaults.get("by_backend", {}).items():
                seen.setdefault(b, f"{d.get('video_width')}x{d.get('video_height')}x{d.get('native_frames')}, "
                                   f"{d.get('video_steps')} steps")
        return "; ".join(f"{b} {v}" for b, v in seen.items())
    except Exception as e:                            # the library is being changed: the benchmark still runs
        return f"not read ({short(e)})"


def report_gpu(rows, card, rate, a) -> str:
    from _results import md_table
    head = ["backend", "stage", "size", "params (B): denoiser / all", "TFLOP / step", "floor s/step", "s/step",
            "measured / floor", "peak GiB, resident", "VAE decode s / GiB", "stage s, est.", "s/step, offload",
            "VAE decode s / GiB, tiled", "peak GiB, offload + tiling", "24 GB"]
    body, notes = [], []
    for r in rows:
        if "error" in r:
            body.append([r["name"], r.get("stage", ""), r.get("size", ""), f"failed: {r['error']}"] + [""] * (len(head) - 4))
            continue
        be = BACKENDS[r["name"]]()
        R, O = r.get("resident"), r.get("offload")
        tf = r["flops"] * be.cfg / 1e12 if "flops" in r else None
        meas, floor = (R or {}).get("step_s"), r.get("floor_s")
        body.append([r["name"], r["stage"], r["size"],
                     f"{r['params']['denoiser'] / 1e9:.2f} / {sum(r['params'].values()) / 1e9:.2f}",
                     g(tf, "{:.1f}"), g(floor, "{:.3f}"), g(meas, "{:.3f}"), g(meas / floor if meas and floor else None),
                     peak_cell(R), decode_cell(R), g(stage_estimate(be, R), "{:.0f}"), g((O or {}).get("step_s"), "{:.3f}"),
                     decode_cell(O), peak_cell(O), "—" if "fits" not in r else ("PASS" if r["fits"] else "FAIL")])
        if be.notes:
            notes.append(f"{r['name']}: {be.notes}")
        if O and "decode, tiled + frame-wise" in O["phases"]:
            notes.append(f"{r['name']}: tiled + frame-wise decode (use_framewise_decoding, which vgot's vae_tiling does not "
                         f"set) {decode_cell(O, 'decode, tiled + frame-wise', 'decode_framewise_s')} GiB")
        if "flops" in r and "flops_gpu" in r and abs(r["flops_gpu"] / r["flops"] - 1) > 0.02:
            notes.append(f"{r['name']}: FlopCounterMode counts {r['flops_gpu'] / 1e12:.1f} TFLOP per forward on the GPU "
                         f"against {r['flops'] / 1e12:.1f} on the meta copy (the table's)")
        for k in ("flops_error", "flops_gpu_error"):
            if k in r:
                notes.append(f"{r['name']}: {k.replace('_', ' ')}: {r[k]}")
    shots = [r for r in rows if r.get("stage") == "shot" and "fits" in r]
    lines = [
        f"Card: **{card}**; measured bf16 matmul rate {rate / 1e12:.0f} TFLOP/s (8192^3). torch {torch.__version__}, "
        f"CUDA {torch.version.cuda}, diffusers {__import__('diffusers').__version__}, transformers "
        f"{__import__('transformers').__version__}. Random weights from the published configs, bf16 (VAE {a.vae_dtype}), "
        f"SDPA. s/step: median of {a.steps} guided steps after {a.warmup} warm-up, CUDA-synchronised; VAE decode: "
        f"{'median of the runs after the first' if a.decode_reps > 1 else 'one run'}. Peak: max_memory_allocated "
        "(max_memory_reserved in brackets) over the stage (encoders, steps, decode). TFLOP / step: one forward counted "
        "by FlopCounterMode, x 2 for classifier-free guidance; floor: that at the measured matmul rate. Stage s, est.: "
        "encoders + the pipeline's native steps x s/step + decode, resident.",
        "",
        md_table(head, body),
        "",
        "Peak GiB per phase with offload + tiling, allocated (reserved): " + ("; ".join(
            f"{r['name']}: encode {phase_cell(r.get('offload'), 'encode')}, denoise {phase_cell(r.get('offload'), 'denoise')}, "
            f"decode {phase_cell(r.get('offload'), 'decode')}" for r in rows if r.get("offload")) or "not measured") + ".",
        "",
        f"Target: every shot backend's stage fits a {BUDGET_GIB:.0f} GB card with model CPU offload and VAE tiling "
        f"(reserved peak <= {BUDGET_GIB - CONTEXT_GIB:.0f} GiB, 1 GiB left for the CUDA context): "
        + (", ".join(f"{r['name']} **{'PASS' if r['fits'] else 'FAIL'}**" for r in shots) or "not measured") + ".",
        "",
        f"vgot's real presets run the video backends at (width x height x frames per call): {preset_settings()}.",
    ]
    runs = {}
    for r in rows:
        st = r.get("run")
        if st:
            key = (f"{st['date']} (matmul {st['rate'] / 1e12:.0f} TFLOP/s, {st['steps']} steps after {st['warmup']}, "
                   f"{st['decode_reps']} decodes, VAE {st['vae_dtype']}, torch {st['torch']}, diffusers {st['diffusers']})")
            runs.setdefault(key, []).append(r["name"])
    if len(runs) > 1:
        lines += ["", "Rows from several runs of bench/gpu.py on this card: "
                  + "; ".join(f"{', '.join(ns)}: {k}" for k, ns in runs.items()) + "."]
    if notes:
        lines += ["", "Notes: " + "; ".join(notes) + "."]
    return "\n".join(lines) + "\n"


def report_dry(rows) -> str:
    out = [f"{'backend':10s} {'stage':9s} {'size':>14s} {'denoiser B':>10s} {'all B':>6s} {'largest GiB':>15s} "
           f"{'TFLOP/fwd':>9s} {'TFLOP/step':>10s} {'s/step @1 PFLOP/s':>17s}  decoded"]
    for r in rows:
        if "error" in r:
            out.append(f"{r['name']:10s} FAILED: {r['error']}")
            continue
        big = max(r["weights_gib"].items(), key=lambda kv: kv[1])
        out.append(f"{r['name']:10s} {r['stage']:9s} {r['size']:>14s} {r['params']['denoiser'] / 1e9:10.3f} "
                   f"{sum(r['params'].values()) / 1e9:6.2f} {f'{big[1]:.1f} {big[0][:10]}':>15s} {r['flops'] / 1e12:9.1f} "
                   f"{r['flops'] * 2 / 1e12:10.1f} {r['flops'] * 2 / 1e15:17.3f}  {r['video_shape']}")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help=f"comma-separated backends (of {', '.join(BACKENDS)})")
    ap.add_argument("--steps", type=int, default=3, help="timed guided steps per configuration (median)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--decode-reps", type=int, default=2, help="VAE decodes per configuration (the first is a warm-up)")
    ap.add_argument("--no-offload", action="store_true", help="skip the offload + tiling configuration")
    ap.add_argument("--vae-dtype", choices=("bf16", "fp32"), default="bf16")
    ap.add_argument("--dry-run", action="store_true", help="meta device only: parameters and FLOPs (automatic without CUDA)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md", help="the results file to write the section into")
    ap.add_argument("--fresh", action="store_true", help="forget this card's rows of earlier runs (see gpu_results.json)")
    a = ap.parse_args(argv)
    names = [n.strip() for n in a.only.split(",")] if a.only else list(BACKENDS)
    unknown = [n for n in names if n not in BACKENDS]
    if unknown:
        ap.error(f"unknown backend(s) {', '.join(unknown)} (known: {', '.join(BACKENDS)})")
    import warnings; warnings.filterwarnings("ignore")
    import diffusers.utils.logging as dlog; dlog.set_verbosity_error()
    import transformers.utils.logging as tlog; tlog.set_verbosity_error()
    dry_run = a.dry_run or not torch.cuda.is_available()
    rows = []
    t_all = time.perf_counter()
    if dry_run:
        if not a.dry_run:
            print("no CUDA device: dry run (meta device), RESULTS.md is not written", file=sys.stderr)
        for n in names:
            t0 = time.perf_counter()
            try:
                rows.append(dry(BACKENDS[n](), a))
            except Exception as e:
                traceback.print_exc()
                rows.append(dict(name=n, error=short(e)))
            print(f"  {n}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
        print(f"\nDry run (meta device, bf16, VAE {a.vae_dtype}; FLOPs of one batch-1 forward at the native size; a step is 2 forwards "
              f"under guidance): torch {torch.__version__}, diffusers {__import__('diffusers').__version__}")
        print(report_dry(rows))
        print(f"vgot's real presets run the video backends at: {preset_settings()}")
        print(f"total {time.perf_counter() - t_all:.1f} s")
    else:
        dev = torch.device(DEVICE)
        card = torch.cuda.get_device_name(dev)
        rate = matmul_rate(dev)
        print(f"{card}: bf16 matmul {rate / 1e12:.0f} TFLOP/s", flush=True)
        for n in names:
            t0 = time.perf_counter()
            try:
                rows.append(bench_gpu(BACKENDS[n](), dev, rate, a))
            except Exception as e:
                traceback.print_exc()
                rows.append(dict(name=n, error=short(e)))
                gc.collect(); torch.cuda.empty_cache()
            print(f"  {n}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        # rows accumulate per card in gpu_results.json beside the results file, so runs split by --only make one table
        stamp = dict(date=time.strftime("%Y-%m-%d"), rate=rate, steps=a.steps, warmup=a.warmup, decode_reps=a.decode_reps,
                     vae_dtype=a.vae_dtype, torch=torch.__version__, diffusers=__import__("diffusers").__version__)
        store_path = a.out.with_name("gpu_results.json")
        store = json.loads(store_path.read_text()) if store_path.exists() else {}
        mine = {} if a.fresh else store.get(card, {})
        for r in rows:
            mine[r["name"]] = dict(r, run=stamp)
        store[card] = mine
        store_path.write_text(json.dumps(store, indent=1, default=str))
        text = report_gpu([mine[n] for n in BACKENDS if n in mine], card, rate, a)
        print(text)
        for r in rows:
            if r.get("stage") == "shot" and "fits" in r:
                print(f"{r['name']:10s} shot stage on a {BUDGET_GIB:.0f} GB card with offload + tiling: "
                      f"{'PASS' if r['fits'] else 'FAIL'} (reserved {r['offload']['reserved']:.1f} GiB"
                      + (f"; failed: {', '.join(r['offload']['failed'])})" if r['offload']['failed'] else ")"))
        from _results import write_section
        p = write_section(f"Real-size backends on {card}", text, "bench/gpu.py", a.out)
        print(f"wrote its section of {p} (rows kept in {store_path}); total {time.perf_counter() - t_all:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
