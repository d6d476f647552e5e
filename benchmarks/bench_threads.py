"""Threads on a busy machine: a training step of S2's size (I = H = B = 32, T = 100) with one
other busy process on the machine, on 1 thread, on every core, and on the default thread count
of a command given no --threads (`gru.ops.threads.default_threads`).

Each count is timed in its own process, one after another, while a process spinning on one
core runs beside them; the table gives the median step time of each and the ratio to the
one-thread time (the target: the default never above 1.3x). Then the same without the busy
process. Written to bench-results/threads.json as well.

    python benchmarks/bench_threads.py [--steps 40] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# Time the engine only: a cold cache compiles in place, never aside (`gru.ops.aside`).
os.environ.setdefault("GRU_COMPILE", "wait")

# One process's timing: threads from argv ("default": what a command without --threads
# takes), then median seconds of `steps` training steps after 5 unmeasured ones.
CHILD = r"""
import statistics, sys, time
import torch
import gru
from gru.ops.threads import default_threads, set_threads
wanted, steps = sys.argv[1], int(sys.argv[2])
n = default_threads() if wanted == "default" else int(wanted)
set_threads(n)
torch.manual_seed(0)
layer = gru.GRU(32, 32)
x = torch.randn(100, 32, 32, requires_grad=True)
times = []
for i in range(steps + 5):
    start = time.perf_counter()
    output, _ = layer(x)
    output.sum().backward()
    if i >= 5:
        times.append(time.perf_counter() - start)
print(n, statistics.median(times))
"""

SPIN = "while True: pass"


def timed(threads: str, steps: int) -> tuple[int, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("GRU_THREADS", "OMP_NUM_THREADS")}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, threads, str(steps)],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return int(out[0]), float(out[1])


def table(steps: int, cores: int, rounds: int) -> list[dict]:
    """Each count timed ``rounds`` times, the counts taking turns (a load that comes and goes
    then falls on each alike); the median of its rounds."""
    counts = ("1", str(cores), "default")
    seen = {c: [] for c in counts}
    for _ in range(rounds):
        for c in counts:
            seen[c].append(timed(c, steps))
    rows = [
        {
            "threads": c,
            "ran_on": seen[c][0][0],
            "step_ms": statistics.median(s for _, s in seen[c]) * 1e3,
        }
        for c in counts
    ]
    one = rows[0]["step_ms"]
    for row in rows:
        row["vs_one_thread"] = row["step_ms"] / one
    return rows


def show(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    print("| threads | ran on | step | vs 1 thread |\n|---|---:|---:|---:|")
    for r in rows:
        ratio = r["vs_one_thread"]
        print(f"| {r['threads']} | {r['ran_on']} | {r['step_ms']:.2f} ms | {ratio:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40, help="timed steps per process")
    parser.add_argument("--rounds", type=int, default=3, help="processes per thread count")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    print(f"{cores} CPUs; load average before: {os.getloadavg()[0]:.2f}")
    spinner = subprocess.Popen([sys.executable, "-c", SPIN])
    try:
        time.sleep(1.0)
        busy = table(args.steps, cores, args.rounds)
    finally:
        spinner.kill()
        spinner.wait()
    time.sleep(1.0)
    idle = table(args.steps, cores, args.rounds)
    show("with one other busy process", busy)
    show("without it", idle)
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    record = {"cpus": cores, "with_one_busy_process": busy, "without": idle}
    (out / "threads.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
