"""gru.GRU beside torch.nn.GRU on the project's reference configurations, in one process.

Prints, per configuration, the median time of inference and of one training step (forward and
backward of output.sum()) for each implementation, and the ratio torch / gru (above 1: gru is
faster). Writes the same numbers to bench-results/layer.json.

    python benchmarks/bench_layer.py [--repeats N] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

import gru

# name: (I, H, B, T); S6 is one streaming step at B = 1.
CONFIGS = {
    "S1": (10, 20, 32, 5),
    "S2": (32, 32, 32, 100),
    "S3": (14, 50, 32, 120),
    "S4": (256, 256, 64, 100),
    "S5": (1024, 1024, 64, 50),
    "S6": (64, 64, 1, 1),
}


def median_seconds(fn, repeats: int, budget: float = 2.0) -> float:
    """Median wall time of fn() over up to ``repeats`` runs (fewer if they exceed ``budget``)."""
    fn()  # warm up
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats and (len(times) < 5 or time.perf_counter() - start < budget):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_sequence(module, x, repeats):
    def infer():
        with torch.no_grad():
            module(x)

    def train_step():
        output, _ = module(x)
        output.sum().backward()

    return median_seconds(infer, repeats), median_seconds(train_step, repeats)


def bench_step(cell, x, h, repeats):
    def step():
        with torch.no_grad():
            cell(x, h)

    return median_seconds(step, repeats * 20)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench-results/layer.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    rows = []
    for name, (I, H, B, T) in CONFIGS.items():
        if name == "S6":
            theirs = torch.nn.GRUCell(I, H)
            ours = gru.GRUCell.from_torch(theirs)
            x, h = torch.randn(B, I), torch.randn(B, H)
            t_torch, t_gru = (
                bench_step(theirs, x, h, args.repeats),
                bench_step(ours, x, h, args.repeats),
            )
            rows.append(
                {
                    "config": name,
                    "I": I,
                    "H": H,
                    "B": B,
                    "T": T,
                    "torch_step_s": t_torch,
                    "gru_step_s": t_gru,
                }
            )
            continue
        theirs = torch.nn.GRU(I, H)
        ours = gru.GRU.from_torch(theirs)
        x = torch.randn(T, B, I)
        ti, tt = bench_sequence(theirs, x, args.repeats)
        oi, ot = bench_sequence(ours, x, args.repeats)
        rows.append(
            {
                "config": name,
                "I": I,
                "H": H,
                "B": B,
                "T": T,
                "torch_infer_s": ti,
                "gru_infer_s": oi,
                "torch_train_s": tt,
                "gru_train_s": ot,
            }
        )

    def ms(s):
        return f"{s * 1e3:.3f} ms" if s >= 1e-3 else f"{s * 1e6:.1f} µs"

    versions = f"gru {gru.__version__}, torch {torch.__version__}"
    print(f"{versions}, {args.threads} threads, float32, medians")
    print("| cfg | I/H/B/T | torch infer | gru infer | ratio | torch train | gru train | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        shape = f"{r['I']}/{r['H']}/{r['B']}/{r['T']}"
        if r["config"] == "S6":
            ratio = r["torch_step_s"] / r["gru_step_s"]
            times = f"{ms(r['torch_step_s'])} | {ms(r['gru_step_s'])} | {ratio:.2f}x"
            print(f"| S6 (step) | {shape} | {times} | – | – | – |")
            continue
        ri = r["torch_infer_s"] / r["gru_infer_s"]
        rt = r["torch_train_s"] / r["gru_train_s"]
        infer = f"{ms(r['torch_infer_s'])} | {ms(r['gru_infer_s'])} | {ri:.2f}x"
        train = f"{ms(r['torch_train_s'])} | {ms(r['gru_train_s'])} | {rt:.2f}x"
        print(f"| {r['config']} | {shape} | {infer} | {train} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"torch": torch.__version__, "threads": args.threads, "machine": platform.machine()}
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
