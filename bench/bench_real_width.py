"""Overheads at real width, on CPU: the camera embedding on SVD's UNet and attention-map capture on SD 1.5's UNet,
each against the same UNet without it, built from the published configs with random weights (targets ≤ 1.10).

    .venv/bin/python bench/bench_real_width.py [--reps 3] [--threads 1] [--size 16] [--frames 8] [--no-write]

One UNet forward per measurement at a small latent size (batch 2, as under classifier-free guidance); the
configurations are timed in interleaved rounds after a warm-up round (a change in machine load hits them all alike)
and the median is reported. Writes (replaces) its section of bench/RESULTS.md. SD 1.5 runs in float32 (3.4 GB); SVD's UNet in bf16 (fp32 would be 6.1 GB), its camera adapter in float32
as vgot runs it beside a half-precision UNet.
"""
import argparse, contextlib, gc, os, statistics, sys, time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VGOT_HOME", str(Path(__file__).resolve().parents[1] / ".vgot_home"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch


def timed(fn) -> float:
    t = time.perf_counter(); fn(); return time.perf_counter() - t


def rounds(configs: dict, reps: int) -> dict:
    "Median seconds of each configuration over `reps` interleaved rounds, after one warm-up round."
    times = {k: [] for k in configs}
    for r in range(reps + 1):
        for k, (setup, run, teardown) in configs.items():
            setup()
            try:
                with torch.no_grad(): dt = timed(run)
            finally: teardown()
            if r: times[k].append(dt)
    return {k: statistics.median(v) for k, v in times.items()}


def bench_capture(size: int, reps: int) -> dict:
    "SD 1.5 UNet with decoupled attention (two base-format branches), without and with an AttentionStore on every layer."
    from diffusers import UNet2DConditionModel
    from vgot.attention import AttentionStore, install_decoupled_attention, remove_decoupled_attention, set_attention_store
    from vgot.tiny import tiny_ip_adapter_state_dict
    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=64, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, cross_attention_dim=768,
                                attention_head_dim=8, down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                                up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3).eval()
    w = tiny_ip_adapter_state_dict(unet, 1024)
    g = torch.Generator().manual_seed(0)
    x, text = torch.randn(2, 4, size, size, generator=g), torch.randn(2, 77, 768, generator=g)
    emb = {"image_embeds": [torch.randn(2, 1, 1024, generator=g), torch.randn(2, 1, 1024, generator=g)]}
    install_decoupled_attention(unet, {"identity": w, "prev": w}, {"identity": 0.6, "prev": 0.4})
    store = AttentionStore(rows=slice(1, 2), latent_hw=(size, size))
    run = lambda: unet(x, torch.tensor([500]), text, added_cond_kwargs=emb)
    nothing = lambda: None
    def on(): store.reset(); set_attention_store(unet, store)
    def off(): set_attention_store(unet, None)
    t = rounds({"decoupled": (nothing, run, nothing), "decoupled + capture (every layer)": (on, run, off)}, reps)
    on(); run(); off()
    n_maps, nbytes = len(store.maps), store.nbytes
    remove_decoupled_attention(unet); del unet; gc.collect()
    return {"times": t, "maps": n_maps, "bytes": nbytes}


def bench_camera(size: int, frames: int, reps: int) -> dict:
    "SVD's UNet (bf16) with camera='none' and with the camera adapter (trained-like: non-zero output weights) attached."
    from diffusers import UNetSpatioTemporalConditionModel
    from vgot.camera import as_trajectory
    from vgot.camera_unet import CameraAdapter
    from vgot.core import CameraMotion
    torch.manual_seed(0)
    old = torch.get_default_dtype(); torch.set_default_dtype(torch.bfloat16)
    try: unet = UNetSpatioTemporalConditionModel().eval()
    finally: torch.set_default_dtype(old)
    bf, g = torch.bfloat16, torch.Generator().manual_seed(0)
    x, emb = torch.randn(2, frames, 8, size, size, generator=g).to(bf), torch.randn(2, 1, 1024, generator=g).to(bf)
    ids = torch.tensor([[6.0, 127.0, 0.02]] * 2).to(bf)
    ad = CameraAdapter(unet, cam_dim=64)
    for p in ad.layers.values(): torch.nn.init.normal_(p.to_out_cam.weight, std=0.02)
    traj = as_trajectory(CameraMotion(pan=0.2, zoom=1.2), frames)
    run = lambda: unet(x, torch.tensor([0.5]), encoder_hidden_states=emb, added_time_ids=ids, return_dict=False)
    nothing = lambda: None
    def on(): ad.install(unet); ad.set_camera(traj)
    def off(): ad.remove(unet)
    t = rounds({"camera=none": (nothing, run, nothing), "camera=embedding": (on, run, off)}, reps)
    n = len(ad.names); del unet, ad; gc.collect()
    return {"times": t, "layers": n}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3, help="timed rounds after the warm-up round (median)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    ap.add_argument("--size", type=int, default=16, help="latent side (16: 128 px images)")
    ap.add_argument("--frames", type=int, default=8)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    print(f"torch {torch.__version__}, {a.threads} thread(s), latent {a.size}x{a.size}, batch 2, {a.reps} rounds (median)")
    cap = bench_capture(a.size, a.reps)
    t = cap["times"]; base = t["decoupled"]
    print(f"\nSD 1.5 UNet (fp32), attention capture: {cap['maps']} maps, {cap['bytes'] / 2**20:.1f} MiB per step")
    for k, v in t.items(): print(f"  {k:36s} {v:7.3f} s   {v / base:5.3f}x")
    cam = bench_camera(a.size, a.frames, a.reps)
    t = cam["times"]; base = t["camera=none"]
    print(f"\nSVD UNet (bf16), {a.frames} frames, camera adapter on {cam['layers']} temporal layers")
    for k, v in t.items(): print(f"  {k:36s} {v:7.3f} s   {v / base:5.3f}x")
    total = time.perf_counter() - t0
    print(f"\ntotal {total:.0f} s")
    if not a.no_write:
        from _results import machine, md_table, write_section
        rows = [["SD 1.5 UNet, fp32", k, f"{v:.3f}", f"{v / cap['times']['decoupled']:.3f}"] for k, v in cap["times"].items()]
        rows += [[f"SVD UNet, bf16, {a.frames} frames", k, f"{v:.3f}", f"{v / base:.3f}"] for k, v in t.items()]
        body = "\n".join([
            f"{machine()}. One UNet forward per measurement, published configs with random weights, latent "
            f"{a.size}x{a.size}, batch 2; median of {a.reps} interleaved rounds after a warm-up round. Capture: an "
            f"AttentionStore on every decoupled layer ({cap['maps']} maps, {cap['bytes'] / 2**20:.1f} MiB per step); "
            f"camera: the adapter (non-zero output weights, as trained) on {cam['layers']} temporal layers. Targets <= 1.10.",
            "",
            md_table(["model", "configuration", "s / forward", "ratio"], rows),
            "",
            f"Whole bench {total:.0f} s.",
        ])
        print(f"wrote its section of {write_section('Overheads at real width', body, 'bench/bench_real_width.py')}")


if __name__ == "__main__":
    sys.exit(main())
