"""Shot stage speed and memory on the tiny preset: per-shot time and peak memory for each backend and camera mode,
and the overhead of camera="embedding" and camera="warp" relative to camera="none" (target ≤ 1.10).

    .venv/bin/python bench/bench_shots.py [--reps 5] [--frames 8] [--threads 1] [--device auto]

Configurations are timed in interleaved rounds (so a change in machine load hits them all alike) and the median
is reported. Peak memory: torch.cuda.max_memory_allocated on CUDA; on CPU the peak resident set size above the
level before the call, sampled every 2 ms.
"""
import argparse, os, sys, tempfile, threading, time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VGOT_HOME", str(Path(__file__).resolve().parents[1] / ".vgot_home"))

import numpy as np
import torch


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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5, help="timed rounds (after one warm-up round)")
    ap.add_argument("--frames", type=int, default=8, help="frames per shot (duration 2 s, fps = frames / 2)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest for tiny models)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from PIL import Image
    from vgot.core import CameraMotion, Keyframe, RunStore, Shot, save_image
    from vgot.models import Models
    from vgot.camera import CameraAdapter
    from vgot.shots import ShotConfig, generate_shot

    models = Models("tiny", device=args.device)
    tmp = Path(tempfile.mkdtemp(prefix="bench_shots."))
    img = Image.fromarray((np.random.RandomState(0).rand(64, 64, 3) * 255).astype(np.uint8))
    shot = Shot(index=0, segment="s", duration=2.0, character="c", background="b", relation="r", camera="pan right",
                motion=CameraMotion(pan=0.2, tilt=0.05, zoom=1.2))
    adapters = {}
    for b in ("svd", "i2vgen-xl"):
        ad = CameraAdapter(models.i2v(b).unet)
        for p in ad.layers.values(): torch.nn.init.normal_(p.to_out_cam.weight, std=0.02)   # as after training
        ad.save(tmp / f"{b}.safetensors"); adapters[b] = str(tmp / f"{b}.safetensors")
    configs = [(b, c) for b in ("svd", "i2vgen-xl") for c in ("none", "embedding", "warp")]
    times = {k: [] for k in configs}; mem = {k: 0.0 for k in configs}
    run = 0
    t_start = time.time()
    for rnd in range(args.reps + 1):
        for b, c in configs:
            run += 1
            store = RunStore(tmp / f"run{run}")
            p, l = store.keyframe_rel(0); save_image(store.path(p), img)
            kf = Keyframe(shot=0, image=p, latent=l, seed=0, width=64, height=64)
            cfg = ShotConfig.from_preset("tiny", backend=b, camera=c, camera_adapter=adapters[b], fps=args.frames / 2,
                                         native_frames=max(args.frames, 2))
            with PeakMemory(models.device) as pm:
                t0 = time.perf_counter(); clip = generate_shot(kf, shot, models, cfg, store); dt = time.perf_counter() - t0
            assert clip.n_frames == args.frames
            if rnd: times[(b, c)].append(dt); mem[(b, c)] = max(mem[(b, c)], pm.peak)
    med = {k: float(np.median(v)) for k, v in times.items()}
    print(f"vgot shots on the tiny preset: {args.frames} frames at 32x32, 2 steps, device {models.device}, "
          f"{args.threads} thread(s), median of {args.reps} interleaved rounds")
    print(f"{'backend':10s} {'camera':10s} {'s/shot':>8s} {'vs none':>8s} {'peak MiB':>9s}  target")
    worst = 0.0
    for b, c in configs:
        r = med[(b, c)] / med[(b, "none")]
        if c != "none": worst = max(worst, r)
        tgt = "" if c == "none" else ("<= 1.10 ok" if r <= 1.10 else "<= 1.10 MISSED")
        print(f"{b:10s} {c:10s} {med[(b, c)]:8.3f} {r:8.2f} {mem[(b, c)]:9.1f}  {tgt}")
    print(f"worst camera overhead: {worst:.2f}x (target <= 1.10); total {time.time() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
