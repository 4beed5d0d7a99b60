"""End-to-end wall time and peak memory of the tiny preset for 4, 8 and 16 shots, for every video backend.

Each (backend, size) runs in a fresh process (so peak RSS is that run's alone): first a warm-up generation of a
2-shot story (every model loaded, every code path run once: the cold start is not timed), then --runs generations of
the size, each into a fresh run folder; the table shows their median. Memory must not grow with the number of
shots: frames are streamed to disk, not held. Ratios are relative to the backend's first size.

The tiny preset's own video backend gets --sizes and --runs; the other backends of `vgot.shots.BACKENDS` (a run's
`--set shots.backend=...`) get --other-sizes and --other-runs, to keep the bench short. A backend whose transitions
the library cannot refine by diffusion runs with transitions.mode=gpr (noted); one that fails is skipped with a note.
Writes (replaces) its section of bench/RESULTS.md.

    python bench/bench_pipeline.py [--sizes 4 8 16] [--runs 3] [--other-sizes 4 8] [--other-runs 2] [--backends ...] [--no-write]
"""
import argparse, json, os, resource, statistics, subprocess, sys, tempfile, time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("VGOT_HOME", str(ROOT / ".vgot_home"))
sys.path.insert(0, str(ROOT / "bench"))

SENTENCES = ["Mira walks along the harbour at dawn.", "Mira climbs the stone steps to the old tower.",
             "A gull lands beside Mira on the wall.", "Mira sees a red sail far out at sea.",
             "Mira runs down to the pier, waving.", "The boat turns toward the harbour in the wind.",
             "Mira waits on the pier as the boat comes in.", "Mira and the sailor walk home through the market."]


def story(n: int) -> str:
    return "\n\n".join(SENTENCES[i % len(SENTENCES)] for i in range(n))


def one(n: int, runs: int, backend: str, out: Path):
    "In this process: a warm-up generation, then `runs` timed generations of an n-shot story with `backend`."
    from vgot.core import VgotError
    from vgot.pipeline import VGoT
    with tempfile.TemporaryDirectory() as d:
        p, w = Path(d) / "story.txt", Path(d) / "warm.txt"
        p.write_text(story(n)); w.write_text(story(2))
        note = ""
        vg = VGoT.from_preset("tiny", seed=0, shots={"backend": backend})
        t0 = time.perf_counter()
        try:                                                     # cold start: models loaded, code paths run once
            vg.generate(w, Path(d) / "warm", quiet=True)
        except VgotError as e:                                   # e.g. no diffusion refinement of this backend's transitions
            note = f"transitions.mode=gpr (the preset's mode: {str(e).splitlines()[0][:400]})"
            vg = VGoT.from_preset("tiny", seed=0, shots={"backend": backend}, transitions={"mode": "gpr"})
            vg.generate(w, Path(d) / "warm2", quiet=True)
        warm = time.perf_counter() - t0
        ts = []
        for k in range(runs):
            t0 = time.perf_counter()
            r = vg.generate(p, Path(d) / f"run{k}", quiet=True)
            ts.append(time.perf_counter() - t0)
        assert all(c.backend == backend for c in r.clips), [c.backend for c in r.clips]
        frames = sum(c.n_frames for c in r.clips) + sum(t.n_frames for t in r.transitions)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.write_text(json.dumps(dict(shots=len(r.script.shots), frames=frames, seconds=statistics.median(ts), runs=ts,
                                   warmup=warm, peak_mib=peak, note=note)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16], help="stories (shots) for the preset's own backend")
    ap.add_argument("--runs", type=int, default=3, help="timed generations per size, after the warm-up (median)")
    ap.add_argument("--other-sizes", type=int, nargs="+", default=[4, 8], help="stories for the other backends")
    ap.add_argument("--other-runs", type=int, default=2, help="timed generations per size for the other backends")
    ap.add_argument("--backends", nargs="+", help="only these (default: every backend of vgot.shots.BACKENDS)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--backend", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        return one(a.one, a.runs, a.backend, Path(a.out))
    from _results import machine, md_table, skip_note, write_section
    from vgot.models import get_preset
    from vgot.shots import BACKENDS
    tiny = get_preset("tiny")
    own = tiny.defaults.get("i2v_backend", BACKENDS[0])
    t_all = time.perf_counter()
    notes, table, verdicts = [], [], []
    for b in a.backends or BACKENDS:
        if b not in BACKENDS:
            notes.append(skip_note(f"backend '{b}'", f"not in this library's vgot.shots.BACKENDS {BACKENDS}")); continue
        if b not in tiny.i2v:
            notes.append(skip_note(f"backend '{b}'", f"the tiny preset has no '{b}' video model")); continue
        sizes, runs = (a.sizes, a.runs) if b == own else (a.other_sizes, a.other_runs)
        rows = []
        for n in sizes:
            with tempfile.NamedTemporaryFile(suffix=".json") as f:
                cmd = [sys.executable, __file__, "--one", str(n), "--runs", str(runs), "--backend", b, "--out", f.name]
                res = subprocess.run(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True)
                if res.returncode:
                    err = [l for l in res.stderr.strip().splitlines() if l.strip()][-1:] or ["?"]
                    notes.append(skip_note(f"backend '{b}', {n} shots", f"the run failed: {err[0][:400]}"))
                    continue
                rows.append((n, json.loads(Path(f.name).read_text())))
        if not rows:
            continue
        base = rows[0][1]
        print(f"\nbackend {b}: median of {runs} generations per size after a warm-up generation in the same process")
        print(f"{'story':>6} {'shots':>6} {'frames':>7} {'seconds':>8} {'s/shot':>7} {'peak MiB':>9} {'time ratio':>10} {'memory ratio':>12} {'warm-up s':>9}")
        for n, r in rows:
            print(f"{n:>6} {r['shots']:>6} {r['frames']:>7} {r['seconds']:>8.2f} {r['seconds'] / r['shots']:>7.2f} {r['peak_mib']:>9.0f} "
                  f"{r['seconds'] / base['seconds']:>10.2f} {r['peak_mib'] / base['peak_mib']:>12.2f} {r['warmup']:>9.1f}")
            table.append([b, n, r["shots"], r["frames"], f"{r['seconds']:.2f}", f"{r['seconds'] / r['shots']:.2f}", f"{r['peak_mib']:.0f}",
                          f"{r['seconds'] / base['seconds']:.2f}", f"{r['peak_mib'] / base['peak_mib']:.2f}",
                          ", ".join(f"{x:.2f}" for x in r["runs"]), f"{r['warmup']:.1f}"])
            if r["note"] and n == rows[0][0]:
                notes.append(f"backend '{b}' ran with {r['note']}"); print("note:", notes[-1])
        last = rows[-1][1]
        grow = last["peak_mib"] / base["peak_mib"]
        verdicts.append(f"{b} x{grow:.2f} ({last['shots']} vs {base['shots']} shots, {'ok' if grow <= 1.10 else 'MISSED'})")
    verdict = "Peak memory growth: " + "; ".join(verdicts) + " (target: no growth with the number of shots, <= 1.10)"
    print(verdict)
    total = time.perf_counter() - t_all
    print(f"total {total:.0f} s")
    if not a.no_write:
        body = "\n".join([
            f"{machine()}. Tiny preset, the whole pipeline (`VGoT.generate`) with each video backend of "
            f"vgot.shots.BACKENDS ({', '.join(BACKENDS)}; a run's `--set shots.backend=...`). Each (backend, size) in a "
            "fresh process: a warm-up generation of a 2-shot story first (the cold start: models loaded, code paths "
            f"run once; not timed), then the median of {a.runs} generations ({a.other_runs} for the backends other than "
            f"the preset's own, {own}). Peak MiB: the process's peak resident set size; ratios against the backend's "
            "first size.",
            "",
            md_table(["backend", "story", "shots", "frames", "seconds (median)", "s/shot", "peak MiB", "time ratio",
                      "memory ratio", "runs (s)", "warm-up s"], table),
            "",
            verdict + f". Whole bench {total:.0f} s.",
            *(["", "Notes: " + "; ".join(n.removeprefix("skipped ") for n in notes) + "."] if notes else []),
        ])
        print(f"wrote its section of {write_section('Pipeline, tiny preset', body, 'bench/bench_pipeline.py')}")


if __name__ == "__main__":
    main()
