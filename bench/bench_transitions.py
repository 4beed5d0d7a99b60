"""Speed of Module 4 (vgot.transitions).

1. The GP latent path: time of `gp_latent_path` for k in {2, 4, 8} context frames per side, transition lengths 8 and
   16, at the tiny preset's latent size (4x16x16) and at SVD's (4x72x128, 1024x576 video); hyperparameters fitted by
   marginal likelihood (the default) and fixed. Median of --repeats after a warm-up run.
2. The GP's share of a whole `gpr+diffusion` transition with 25 diffusion steps, for every video backend of the
   installed library (`vgot.shots.BACKENDS`) on the tiny preset: two tiny shots are made with that backend, then the
   transition between them by `vgot.transitions.generate_transition` (the run's own per-pair step), with the
   refinement's parts (GP, refine, decode) as `make_transition` times them. A backend the library cannot refine
   (or the tiny preset lacks) is skipped with a note. One warm-up transition per backend, then the median of
   --diffusion-repeats. Target: GP <= 5 % of the transition.

Prints two tables and writes (replaces) its section of bench/RESULTS.md; about 2-3 minutes on 2 CPU cores.
    python bench/bench_transitions.py [--threads N] [--device cpu|cuda] [--repeats R] [--diffusion-repeats R] [--no-write]
"""
import argparse, os, shutil, statistics, sys, tempfile, time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VGOT_HOME", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".vgot_home"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np
import torch

from _results import machine, md_table, skip_note, write_section


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


def two_shots(models, backend: str, root: Path):
    "A store with two tiny shots made by `backend` (their keyframes random images), and the script and clips."
    from PIL import Image
    from vgot.core import CameraMotion, Character, Keyframe, RunStore, Script, Shot
    from vgot.media import save_image
    from vgot.shots import ShotConfig, generate_shot
    store = RunStore(root)
    shots = [Shot(index=i, segment=f"s{i}", duration=2.0, character="Ada", background="a harbour", relation=f"Ada walks, scene {i}",
                  camera="pan right", characters=["Ada"], motion=CameraMotion(pan=0.1 * (i + 1))) for i in range(2)]
    script = Script("bench", shots, cast=[Character("Ada", "Ada in a coat")])
    kw = {} if backend in ("wan", "ltx") else dict(native_frames=8)      # causal VAEs keep their r·k + 1 frames per call
    cfg = ShotConfig.from_preset("tiny", backend=backend, camera="none", fps=4.0, **kw)
    clips = []
    for i, s in enumerate(shots):
        img = Image.fromarray((np.random.RandomState(i).rand(64, 64, 3) * 255).astype(np.uint8))
        p, l = store.keyframe_rel(i); save_image(store.path(p), img)
        clips.append(generate_shot(Keyframe(shot=i, image=p, latent=l, seed=0, width=64, height=64), s, models, cfg, store))
    return script, clips


def transition_parts(script, clips, models, cfg, base: Path, work: Path):
    "One transition between the two shots on a fresh copy of the store: (parts from make_transition, wall seconds)."
    import vgot.transitions as T
    from vgot.core import RunStore
    if work.exists(): shutil.rmtree(work)
    shutil.copytree(base, work)
    seen = {}
    real = T.make_transition
    def spy(*a, **k):
        t0 = time.perf_counter(); r = real(*a, **k)
        seen.update(r.timings); seen["total"] = time.perf_counter() - t0
        return r
    T.make_transition = spy
    try:
        t0 = time.perf_counter()
        T.generate_transition(script, 0, clips[0], clips[1], models, cfg, RunStore(work))
        wall = time.perf_counter() - t0
    finally:
        T.make_transition = real
    return seen, wall


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per GP cell (median)")
    ap.add_argument("--diffusion-repeats", type=int, default=3, help="timed runs per diffusion cell (median; each takes about a second)")
    ap.add_argument("--backends", nargs="+", help="only these (default: every backend of vgot.shots.BACKENDS)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = ap.parse_args()
    if args.threads: torch.set_num_threads(args.threads)
    from vgot.transitions import TransitionConfig
    from vgot.gp_path import gp_latent_path
    from vgot.models import Models, get_preset
    from vgot.shots import BACKENDS
    dev = torch.device(args.device)
    print(f"torch {torch.__version__}, device {dev}, {torch.get_num_threads()} threads, "
          f"median of {args.repeats} (GP) and {args.diffusion_repeats} (diffusion) runs after a warm-up")
    t_start = time.perf_counter()

    # 1. the GP path alone
    sizes = {"tiny 4x16x16": (4, 16, 16), "SVD 4x72x128": (4, 72, 128)}
    print("\nGP latent path (gp_latent_path), ms")
    print(f"{'latent':14s} {'k':>2s} {'n':>3s} {'fitted':>9s} {'fixed':>9s} {'ℓ fitted':>9s}")
    gp_rows = []
    for label, shape in sizes.items():
        for k in (2, 4, 8):
            for n in (8, 16):
                z = smooth_latents(2 * k + n, shape, seed=k * 31 + n, device=dev)
                za, zb = z[:k], z[k + n:]
                t_fit = timed(lambda: gp_latent_path(za, zb, n), args.repeats)
                t_fix = timed(lambda: gp_latent_path(za, zb, n, lengthscale=4.0, outputscale=1.0), args.repeats)
                ell = gp_latent_path(za, zb, n).lengthscale
                print(f"{label:14s} {k:2d} {n:3d} {1e3 * t_fit:9.1f} {1e3 * t_fix:9.1f} {ell:9.2f}")
                gp_rows.append([label, k, n, f"{1e3 * t_fit:.1f}", f"{1e3 * t_fix:.1f}", f"{ell:.2f}"])
    t_gp = time.perf_counter() - t_start

    # 2. the GP's share of a whole gpr+diffusion transition, 25 steps, on each backend's tiny model
    models = Models("tiny", device=str(dev))
    notes, diff_rows = [], []
    tmp = Path(tempfile.mkdtemp(prefix="bench_transitions."))
    print("\ngpr+diffusion transition at 25 steps on the tiny preset's video models (32x32 shots of 8 frames, k = 4), ms")
    print(f"{'backend':10s} {'n':>3s} {'strength':>8s} {'25 x str':>9s} {'GP':>8s} {'refine':>8s} {'decode':>8s} {'total':>8s} {'GP share':>9s}")
    for b in args.backends or BACKENDS:
        if b not in BACKENDS:
            notes.append(skip_note(f"backend '{b}'", f"not in this library's vgot.shots.BACKENDS {BACKENDS}")); continue
        if b not in models.preset.i2v:
            notes.append(skip_note(f"backend '{b}'", f"the tiny preset has no '{b}' video model")); continue
        causal = b in ("wan", "ltx")
        lengths = (7, 15) if causal else (8, 16)     # causal VAEs make transitions of r·m − 1 frames
        try:
            base = tmp / f"{b}-shots"
            script, clips = two_shots(models, b, base)
            cfg0 = TransitionConfig.from_preset(get_preset("tiny"), backend=b, mode="gpr+diffusion", frames=lengths[0],
                                                context_frames=4, steps=2, strength=1.0)
            transition_parts(script, clips, models, cfg0, base, tmp / "work")                 # warm-up
        except Exception as e:
            notes.append(skip_note(f"backend '{b}'", f"gpr+diffusion failed: {type(e).__name__}: {str(e).splitlines()[0][:400]}"))
            continue
        for n in lengths:
            for strength in (1.0, 0.5):
                cfg = TransitionConfig.from_preset(get_preset("tiny"), backend=b, mode="gpr+diffusion", frames=n, context_frames=4,
                                                   steps=25, strength=strength)
                runs = [transition_parts(script, clips, models, cfg, base, tmp / "work")[0] for _ in range(args.diffusion_repeats)]
                gp, ref, dec, tot = (statistics.median(r.get(key, float("nan")) for r in runs) for key in ("gp", "refine", "decode", "total"))
                print(f"{b:10s} {n:3d} {strength:8.1f} {int(25 * strength):9d} {1e3 * gp:8.1f} {1e3 * ref:8.1f} {1e3 * dec:8.1f} "
                      f"{1e3 * tot:8.1f} {100 * gp / tot:8.1f}%")
                diff_rows.append([b, n, strength, int(25 * strength), f"{1e3 * gp:.1f}", f"{1e3 * ref:.1f}", f"{1e3 * dec:.1f}",
                                  f"{1e3 * tot:.1f}", f"{100 * gp / tot:.1f}%", "ok" if gp / tot <= 0.05 else "MISSED"])
    shutil.rmtree(tmp, ignore_errors=True)
    total = time.perf_counter() - t_start
    print(f"\nbench took {total:.0f} s")
    for n in notes: print("note:", n)
    if not args.no_write:
        body = "\n".join([
            f"{machine()}; device {dev}.",
            "",
            f"GP latent path (`gp_latent_path`), ms: median of {args.repeats} after a warm-up run; hyperparameters fitted "
            "by marginal likelihood, or fixed (ℓ = 4, σ_f² = 1).",
            "",
            md_table(["latent", "k", "n", "fitted ms", "fixed ms", "ℓ fitted"], gp_rows),
            "",
            "`gpr+diffusion` transitions at 25 steps between two tiny shots (32x32, 8 frames) of each backend of "
            f"vgot.shots.BACKENDS ({', '.join(BACKENDS)}), made by `generate_transition`; parts as `make_transition` "
            f"times them, ms, median of {args.diffusion_repeats} after a warm-up transition. Target: GP <= 5 % of the "
            "transition.",
            "",
            md_table(["backend", "n", "strength", "steps (25 x strength)", "GP", "refine", "decode", "total", "GP share", "target"], diff_rows)
            if diff_rows else "No backend could be measured.",
            "",
            "The target is about real models, whose refinement takes seconds per step: the tiny preset's video models "
            "are so small (the tiny Wan and LTX transformers refine in about 0.1 s) that the GP's tens of milliseconds "
            "are a large share there.",
            "",
            f"GP part {t_gp:.0f} s, whole bench {total:.0f} s.",
            *(["", "Skipped: " + "; ".join(n.removeprefix("skipped ") for n in notes) + "."] if notes else []),
        ])
        p = write_section("Transitions", body, "bench/bench_transitions.py")
        print(f"wrote its section of {p}")


if __name__ == "__main__":
    sys.exit(main())
