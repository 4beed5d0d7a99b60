"""Helpers shared by the benchmarks: medians after a warm-up, the machine's description, and bench/RESULTS.md sections.

Each benchmark owns one section of bench/RESULTS.md, headed `## <title> (<date>, bench/<script>)`; `write_section`
replaces that section (from its heading to the next `## ` heading) or appends it, leaving the others as they are.
Not a benchmark itself: `make bench` runs bench/bench_*.py only.
"""
from __future__ import annotations

import os, platform, re, statistics, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "RESULTS.md"
HEADER = "# Benchmark results\n"


def median(xs) -> float:
    return float(statistics.median(xs))


def timed_median(fn, repeats: int, warmup: int = 1, sync=None) -> tuple[float, list]:
    "Median wall seconds of `fn()` over `repeats` runs after `warmup` untimed runs; also the runs themselves."
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if sync is not None:
            sync()
        ts.append(time.perf_counter() - t0)
    return median(ts), ts


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    "One line about where the numbers come from: CPU count and model, thread settings, torch version."
    import torch

    omp = os.environ.get("OMP_NUM_THREADS", "unset")
    return (f"{os.cpu_count()} CPUs ({cpu_model()}), OMP_NUM_THREADS={omp}, torch {torch.__version__} "
            f"({torch.get_num_threads()} intra-op thread(s)), Python {platform.python_version()}")


def skip_note(what: str, why: str) -> str:
    "Print and return a note that `what` (a backend, a configuration) was skipped, and why."
    line = f"skipped {what}: {why}"
    print(line, flush=True)
    return line


def write_section(title: str, body: str, script: str, path: Path | None = None) -> Path:
    """Replace (or append) the section `## {title} (...)` of RESULTS.md with a dated heading and `body`.

    `script` names the benchmark (bench/xxx.py); the date is today's."""
    path = Path(path) if path else RESULTS
    head = f"## {title} ({time.strftime('%Y-%m-%d')}, {script})"
    section = head + "\n\n" + body.strip("\n") + "\n"
    text = path.read_text() if path.exists() else HEADER
    lines = text.splitlines(keepends=True)
    start = next((i for i, l in enumerate(lines) if re.match(rf"## {re.escape(title)} \(", l)), None)
    if start is None:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("## ")), len(lines))
        rest = "".join(lines[end:])
        text = "".join(lines[:start]) + section + ("\n" + rest if rest else "")
    path.write_text(text)
    return path


def md_table(header: list, rows: list) -> str:
    "A Markdown table from a header and rows of cells (already formatted)."
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)
