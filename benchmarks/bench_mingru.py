"""gru.MinGRU (its parallel scan) beside gru.GRU (the fused engine) and torch.nn.GRU.

The minGRU paper (Feng et al. 2024) reports training 175× faster than a sequential GRU at
T = 512 on a GPU, because its gates do not read h_{t-1} and a sequence becomes a scan. This
measures what that gives on this CPU: for one layer of I = H = 128 at batch 16 and T = 512 and
4096, the median time of inference (forward under no_grad) and of one training step (forward,
then backward of output.sum()), the three layers taking turns in every round so that the
machine's drift touches each alike, and the ratios (above 1: MinGRU is faster).
Everything is also written to bench-results/mingru.json.

    python benchmarks/bench_mingru.py [--threads 2] [--lengths 512,4096]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import torch

import gru
from bench_layer import fmt, interleaved, ratio, sequence_runs

# Time the engine only: a cold cache compiles in place, never aside (`gru.ops.aside`).
os.environ.setdefault("GRU_COMPILE", "wait")

I, H, B = 128, 128, 16


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lengths", default="512,4096", help="comma-separated sequence lengths")
    parser.add_argument("--out", type=Path, default=Path("bench-results/mingru.json"))
    args = parser.parse_args(argv)
    lengths = [int(t) for t in args.lengths.split(",")]
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results: dict = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "threads": args.threads,
        },
        "versions": {"gru": gru.__version__, "torch": torch.__version__},
        "shape": {"I": I, "H": H, "B": B},
        "lengths": {},
    }
    print(
        f"gru {gru.__version__}, torch {torch.__version__}, {args.threads} threads, float32, "
        f"one layer, I = H = {I}, B = {B}; medians of interleaved rounds"
    )
    print()
    print(
        "| T | task | torch.nn.GRU | gru.GRU | gru.MinGRU | MinGRU vs torch | MinGRU vs gru.GRU |"
    )
    print("|---|---|---|---|---|---|---|")
    for T in lengths:
        layers = {"torch": torch.nn.GRU(I, H), "gru": None, "mingru": gru.MinGRU(I, H)}
        layers["gru"] = gru.GRU.from_torch(layers["torch"])
        x = torch.randn(T, B, I)
        fns = {}
        for name, layer in layers.items():
            fns[f"{name} infer"], fns[f"{name} train"] = sequence_runs(layer, x)
        # Long sequences take seconds a step: fewer rounds, the same turns.
        m = interleaved(fns, min_rounds=7 if T <= 1024 else 3, budget=10.0)
        results["lengths"][T] = {f"{k.replace(' ', '_')}_s": v for k, v in m.items()}
        for task in ("infer", "train"):
            t, g, mg = m[f"torch {task}"], m[f"gru {task}"], m[f"mingru {task}"]
            label = "inference" if task == "infer" else "training step"
            print(
                f"| {T} | {label} | {fmt(t)} | {fmt(g)} | {fmt(mg)} | {ratio(t, mg)} "
                f"| {ratio(g, mg)} |"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
