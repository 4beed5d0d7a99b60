"""Speed of Module 4 (vgot.transitions).

1. The GP latent path: time of `gp_latent_path` for k in {2, 4, 8} context frames per side, transition lengths 8 and
   16, at the tiny preset's latent size (4x16x16) and at SVD's (4x72x128, 1024x576 video); hyperparameters fitted by
   marginal likelihood (the default) and fixed.
2. The GP's share of a whole `gpr+diffusion` transition with 25 diffusion steps on the same model (the tiny SVD on
   this machine), next to the refinement and the VAE decode. Target: GP <= 5 % of the transition.

Prints two tables; about 2 minutes on 2 CPU cores (more when the cores are shared).
    python bench/bench_transitions.py [--threads N] [--device cpu|cuda] [--repeats R] [--diffusion-repeats R]
"""
import argparse, os, statistics, sys, time
from dataclasses import replace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VGOT_HOME", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".vgot_home"))

import torch


def timed(fn, repeats):
    "Median wall time of `fn()` over `repeats` runs after one warm-up run."
    fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter(); fn()
        if torch.cuda.is_available(): torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def smooth_latents(F, shape, seed, device):
    "F latent frames in which every coordinate moves along a slow sinusoid (like real video latents, unlike white noise)."
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(F, dtype=torch.float32).view(-1, 1, 1, 1)
    return (torch.randn(shape, generator=g) * torch.sin(0.2 * t + 6 * torch.rand(shape, generator=g))).to(device)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per GP cell (median)")
    ap.add_argument("--diffusion-repeats", type=int, default=1, help="timed runs per diffusion cell (median; each takes seconds)")
    args = ap.parse_args()
    if args.threads: torch.set_num_threads(args.threads)
    from vgot.transitions import gp_latent_path, make_transition, TransitionConfig
    from vgot.models import Models, get_preset
    from vgot.core import make_generator
    dev = torch.device(args.device)
    print(f"torch {torch.__version__}, device {dev}, {torch.get_num_threads()} threads, "
          f"median of {args.repeats} (GP) and {args.diffusion_repeats} (diffusion) runs")
    t_start = time.perf_counter()

    # 1. the GP path alone
    sizes = {"tiny 4x16x16": (4, 16, 16), "SVD 4x72x128": (4, 72, 128)}
    print("\nGP latent path (gp_latent_path), ms")
    print(f"{'latent':14s} {'k':>2s} {'n':>3s} {'fitted':>9s} {'fixed':>9s} {'ℓ fitted':>9s}")
    for label, shape in sizes.items():
        for k in (2, 4, 8):
            for n in (8, 16):
                z = smooth_latents(2 * k + n, shape, seed=k * 31 + n, device=dev)
                za, zb = z[:k], z[k + n:]
                t_fit = timed(lambda: gp_latent_path(za, zb, n), args.repeats)
                t_fix = timed(lambda: gp_latent_path(za, zb, n, lengthscale=4.0, outputscale=1.0), args.repeats)
                ell = gp_latent_path(za, zb, n).lengthscale
                print(f"{label:14s} {k:2d} {n:3d} {1e3 * t_fit:9.1f} {1e3 * t_fix:9.1f} {ell:9.2f}")

    # 2. the GP's share of a whole gpr+diffusion transition, 25 steps, on the tiny SVD
    models = Models("tiny", device=str(dev))
    models.i2v("svd")
    shape = (4, 16, 16)
    frame_a = (torch.rand(32, 32, 3) * 255).to(torch.uint8).numpy()
    print("\ngpr+diffusion transition at 25 steps on the tiny SVD (32x32 video, latents 4x16x16, k = 4), ms")
    print(f"{'n':>3s} {'strength':>8s} {'steps run':>9s} {'GP':>8s} {'refine':>8s} {'decode':>8s} {'total':>8s} {'GP share':>9s}")
    warmed = False
    for n in (8, 16):
        for strength in (1.0, 0.5):
            cfg = TransitionConfig.from_preset(get_preset("tiny"), mode="gpr+diffusion", frames=n, context_frames=4,
                                               steps=25, strength=strength)
            z = smooth_latents(16 + n, shape, seed=n, device=dev)                  # shot j: z[:8], shot j+1: z[8+n:]
            if not warmed:                                                           # one warm-up run in all
                make_transition(z[:8], z[8 + n:], models, replace(cfg, steps=2), frame_a=frame_a, fps=4); warmed = True
            runs = []
            for r in range(args.diffusion_repeats):
                t0 = time.perf_counter()
                res = make_transition(z[:8], z[8 + n:], models, cfg, frame_a=frame_a, fps=4, generator=make_generator(r))
                tot = time.perf_counter() - t0
                runs.append((res.timings["gp"], res.timings["refine"], res.timings["decode"], tot))
            gp, ref, dec, tot = (statistics.median(x) for x in zip(*runs))
            print(f"{n:3d} {strength:8.1f} {int(25 * strength):9d} {1e3 * gp:8.1f} {1e3 * ref:8.1f} {1e3 * dec:8.1f} {1e3 * tot:8.1f} {100 * gp / tot:8.1f}%")
    print(f"\nbench took {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
