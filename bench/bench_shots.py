"""Shot stage speed and memory on the tiny preset: per-shot time and peak memory for each video backend and camera
mode, and the overhead of camera="embedding" and camera="warp" relative to camera="none" (target ≤ 1.10).

    .venv/bin/python bench/bench_shots.py [--reps 5] [--frames 8] [--threads 1] [--device cpu] [--no-write]

The backends are those of the installed library (`vgot.shots.BACKENDS`); a backend or camera mode that the library
or its tiny preset cannot run yet is skipped with a note. One warm-up round first (it also finds what can run), then
the configurations are timed in interleaved rounds (a change in machine load hits them all alike) and the median is
reported. Peak memory: torch.cuda.max_memory_allocated on CUDA; on CPU the peak resident set size above the level
before the call, sampled every 2 ms. Writes (replaces) its section of bench/RESULTS.md.
"""
import argparse, os, sys, tempfile, threading, time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VGOT_HOME", str(Path(__file__).resolve().parents[1] / ".vgot_home"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch

from _results import machine, md_table, median, skip_note, write_section

CAMERAS = ("none", "embedding", "warp")


def rss_mb() -> float:
    with open("/proc/self/statm") as f: return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakMemory:
    "Peak memory (MiB) of a block above its starting level."
    def __init__(self, device): self.device, self.peak = device, 0.0
    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); self.base = torch.cuda.memory_allocated()
        else:
            self.base, self.stop = rss_mb(), False
            def sample():
                while not self.stop: self.peak = max(self.peak, rss_mb() - self.base); time.sleep(0.002)
            self.t = threading.Thread(target=sample, daemon=True); self.t.start()
        return self
    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(); self.peak = (torch.cuda.max_memory_allocated() - self.base) / 2**20
        else:
            self.stop = True; self.t.join(); self.peak = max(self.peak, rss_mb() - self.base)


def camera_adapter(pipe, path: Path) -> str:
    "A camera-adapter checkpoint for this pipeline's denoiser (UNet or video transformer), output weights non-zero as after training."
    from vgot.camera import denoiser
    from vgot.camera_unet import CameraAdapter
    net = denoiser(pipe)
    if hasattr(net, "down_blocks"):                                  # a video UNet
        ad = CameraAdapter(net)
        for p in ad.layers.values(): torch.nn.init.normal_(p.to_out_cam.weight, std=0.02)
    else:                                                            # Wan, LTX-Video: vgot.camera_dit
        from vgot.camera_dit import TransformerCameraAdapter
        ad = TransformerCameraAdapter(net)
        for b in ad.blocks: torch.nn.init.normal_(b.to_out.weight, std=0.02)
    ad.save(path)
    return str(path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5, help="timed rounds (after one warm-up round)")
    ap.add_argument("--frames", type=int, default=8, help="frames per shot (duration 2 s, fps = frames / 2)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest for tiny models)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--backends", nargs="+", help="only these (default: every backend of vgot.shots.BACKENDS)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from PIL import Image
    from vgot.core import CameraMotion, Keyframe, RunStore, Shot
    from vgot.media import save_image
    from vgot.models import Models
    from vgot.shots import BACKENDS, ShotConfig, generate_shot

    models = Models("tiny", device=args.device)
    tmp = Path(tempfile.mkdtemp(prefix="bench_shots."))
    img = Image.fromarray((np.random.RandomState(0).rand(64, 64, 3) * 255).astype(np.uint8))
    shot = Shot(index=0, segment="s", duration=2.0, character="c", background="b", relation="r", camera="pan right",
                motion=CameraMotion(pan=0.2, tilt=0.05, zoom=1.2))
    notes, backends = [], []
    for b in args.backends or BACKENDS:
        if b not in BACKENDS:
            notes.append(skip_note(f"backend '{b}'", f"not in this library's vgot.shots.BACKENDS {BACKENDS}"))
        elif b not in models.preset.i2v:
            notes.append(skip_note(f"backend '{b}'", f"the tiny preset has no '{b}' video model"))
        else:
            backends.append(b)
    adapters, run = {}, 0

    def config(b, c):
        # a causal-VAE backend (Wan, LTX) keeps its preset's frames per call (r·k + 1); the others make the shot in one call
        kw = {} if b in ("wan", "ltx") else dict(native_frames=max(args.frames, 2))
        return ShotConfig.from_preset("tiny", backend=b, camera=c, camera_adapter=adapters.get(b), fps=args.frames / 2, **kw)

    def one(b, c):
        nonlocal run
        run += 1
        store = RunStore(tmp / f"run{run}")
        p, l = store.keyframe_rel(0); save_image(store.path(p), img)
        kf = Keyframe(shot=0, image=p, latent=l, seed=0, width=64, height=64)
        cfg = config(b, c)
        with PeakMemory(models.device) as pm:
            t0 = time.perf_counter(); clip = generate_shot(kf, shot, models, cfg, store); dt = time.perf_counter() - t0
        assert clip.n_frames == args.frames, (b, c, clip.n_frames)
        return dt, pm.peak

    # warm-up round: loads each pipeline, and finds the configurations this library runs
    configs = []
    t_start = time.time()
    for b in backends:
        try:
            adapters[b] = camera_adapter(models.i2v(b), tmp / f"{b}.safetensors")
        except Exception as e:
            notes.append(skip_note(f"{b} camera=embedding", f"no camera adapter for its denoiser ({type(e).__name__}: {e})"))
        for c in CAMERAS:
            if c == "embedding" and b not in adapters:
                continue
            try:
                one(b, c)
                configs.append((b, c))
            except Exception as e:
                notes.append(skip_note(f"{b} camera={c}", f"{type(e).__name__}: {str(e).splitlines()[0][:400]}"))
    t_warm = time.time() - t_start
    times = {k: [] for k in configs}; mem = {k: 0.0 for k in configs}
    for rnd in range(args.reps):
        for k in configs:
            dt, pk = one(*k)
            times[k].append(dt); mem[k] = max(mem[k], pk)
    med = {k: median(v) for k, v in times.items()}
    title = (f"vgot shots on the tiny preset: {args.frames} frames at 32x32, 2 steps, device {models.device}, "
             f"{args.threads} thread(s), median of {args.reps} interleaved rounds after a warm-up round")
    print(title)
    print(f"{'backend':10s} {'camera':10s} {'s/shot':>8s} {'vs none':>8s} {'peak MiB':>9s}  target")
    rows, worst = [], {}
    for b, c in configs:
        base = med.get((b, "none"))
        r = med[(b, c)] / base if base else float("nan")
        if c != "none" and base:
            worst[b] = max(worst.get(b, 0.0), r)
        tgt = "" if c == "none" else ("<= 1.10 ok" if r <= 1.10 else "<= 1.10 MISSED")
        print(f"{b:10s} {c:10s} {med[(b, c)]:8.3f} {r:8.2f} {mem[(b, c)]:9.1f}  {tgt}")
        rows.append([b, c, f"{med[(b, c)]:.3f}", f"{r:.2f}", f"{mem[(b, c)]:.1f}", tgt,
                     ", ".join(f"{x:.3f}" for x in times[(b, c)])])
    total = time.time() - t_start
    summary = ", ".join(f"{b} {w:.2f}x" for b, w in worst.items())
    print(f"worst camera overhead per backend: {summary} (target <= 1.10); warm-up round {t_warm:.0f} s, total {total:.0f} s")
    for n in notes: print("note:", n)
    if not args.no_write:
        body = "\n".join([
            f"Tiny preset, {args.frames}-frame shots at 32x32, 2 steps, device {models.device}; {machine()}. "
            f"One warm-up round of every configuration, then the median of {args.reps} interleaved rounds; peak: resident "
            "set size above the level before the call (CPU) or max_memory_allocated (CUDA). Backends: those of "
            f"vgot.shots.BACKENDS ({', '.join(BACKENDS)}).",
            "",
            md_table(["backend", "camera", "s/shot (median)", "vs none", "peak MiB", "target", "runs (s)"], rows),
            "",
            f"Worst camera overhead per backend: {summary or 'none measured'} (target <= 1.10). "
            f"Warm-up round {t_warm:.0f} s, whole bench {total:.0f} s.",
            *(["", "Skipped: " + "; ".join(n.removeprefix("skipped ") for n in notes) + "."] if notes else []),
        ])
        p = write_section("Shot stage, tiny preset", body, "bench/bench_shots.py")
        print(f"wrote its section of {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
