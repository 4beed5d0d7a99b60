"""End-to-end wall time and peak memory of the tiny preset for 4, 8 and 16 shots.

Each size runs in a fresh process (so peak RSS is that run's alone). Memory must not grow with the number of
shots: frames are streamed to disk, not held. Prints a table; ratios are relative to the 4-shot run.
Usage: python bench/bench_pipeline.py [--sizes 4 8 16]
"""
import argparse, json, os, resource, subprocess, sys, tempfile, time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("VGOT_HOME", str(ROOT / ".vgot_home"))

SENTENCES = ["Mira walks along the harbour at dawn.", "Mira climbs the stone steps to the old tower.",
             "A gull lands beside Mira on the wall.", "Mira sees a red sail far out at sea.",
             "Mira runs down to the pier, waving.", "The boat turns toward the harbour in the wind.",
             "Mira waits on the pier as the boat comes in.", "Mira and the sailor walk home through the market."]

def story(n: int) -> str:
    return "\n\n".join(SENTENCES[i % len(SENTENCES)] for i in range(n))

def one(n: int, out: Path):
    from vgot.pipeline import VGoT
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "story.txt"; p.write_text(story(n))
        vg = VGoT.from_preset("tiny", seed=0)
        vg.generate(p, Path(d) / "warm", quiet=True, stop_after="script")     # load code paths once
        t0 = time.perf_counter()
        r = vg.generate(p, Path(d) / "run", quiet=True)
        dt = time.perf_counter() - t0
        frames = sum(c.n_frames for c in r.clips) + sum(t.n_frames for t in r.transitions)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.write_text(json.dumps(dict(shots=len(r.script.shots), frames=frames, seconds=dt, peak_mib=peak)))

def main():
    ap = argparse.ArgumentParser(); ap.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16]); ap.add_argument("--one", type=int)
    ap.add_argument("--out"); a = ap.parse_args()
    if a.one: return one(a.one, Path(a.out))
    rows = []
    for n in a.sizes:
        with tempfile.NamedTemporaryFile(suffix=".json") as f:
            subprocess.run([sys.executable, __file__, "--one", str(n), "--out", f.name], check=True, cwd=ROOT)
            rows.append(json.loads(Path(f.name).read_text()))
    base = rows[0]
    print(f"{'story':>6} {'shots':>6} {'frames':>7} {'seconds':>8} {'s/shot':>7} {'peak MiB':>9} {'time ratio':>10} {'memory ratio':>12}")
    for n, r in zip(a.sizes, rows):
        print(f"{n:>6} {r['shots']:>6} {r['frames']:>7} {r['seconds']:>8.2f} {r['seconds']/r['shots']:>7.2f} {r['peak_mib']:>9.0f} "
              f"{r['seconds']/base['seconds']:>10.2f} {r['peak_mib']/base['peak_mib']:>12.2f}")
    grow = rows[-1]["peak_mib"] / base["peak_mib"]
    print(f"peak memory, {rows[-1]['shots']} vs {base['shots']} shots: x{grow:.2f} (target: no growth with the number of shots, <= 1.10)")

if __name__ == "__main__": main()
