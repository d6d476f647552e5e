"""gru.GRU with its variants beside the plain torch.nn.GRU: a variant may not make the layer
slower than torch.nn.GRU.

For the reference configurations S2, S3 and S4 of bench_layer.py it times, in interleaved
rounds (medians), torch.nn.GRU without variants, the plain gru.GRU, and gru.GRU with
layer_norm=True, zoneout=0.1 and recurrent_dropout=0.25 (each alone and all three together):
inference in eval mode (zoneout as its expectation, no dropout) and one training step
(forward, then backward of output.sum()) in train mode (masks drawn every step). The ratios
are torch / gru (above 1: gru.GRU with the variant is faster than the plain torch.nn.GRU).
Everything is also written to bench-results/variants.json.

    python benchmarks/bench_variants.py [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import torch

import gru
from bench_layer import CONFIGS, fmt, interleaved, ratio

# Time the engine only: a cold cache compiles in place, never aside (`gru.ops.aside`).
os.environ.setdefault("GRU_COMPILE", "wait")

VARIANTS = {
    "plain": {},
    "layer_norm": {"layer_norm": True},
    "zoneout 0.1": {"zoneout": 0.1},
    "recurrent_dropout 0.25": {"recurrent_dropout": 0.25},
    "all three": {"layer_norm": True, "zoneout": 0.1, "recurrent_dropout": 0.25},
}


def runs(module, x, training: bool):
    """A callable for inference (eval mode) or one training step (train mode) of a layer."""

    def infer():
        module.eval()
        with torch.no_grad():
            module(x)

    def train():
        module.train()
        out, _ = module(x)
        out.sum().backward()

    return train if training else infer


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--configs", default="S2,S3,S4")
    parser.add_argument("--out", type=Path, default=Path("bench-results/variants.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results: dict = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "threads": args.threads,
        },
        "versions": {"gru": gru.__version__, "torch": torch.__version__},
        "configs": {},
    }
    print(
        f"gru {gru.__version__}, torch {torch.__version__}, {args.threads} threads, float32, "
        "medians of interleaved rounds; torch.nn.GRU is always the plain layer"
    )
    print()
    print(
        "| cfg | I/H/B/T | gru.GRU with | torch infer | gru infer | vs torch | torch train "
        "| gru train | vs torch |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.configs.split(","):
        I, H, B, T = CONFIGS[name]
        theirs = torch.nn.GRU(I, H)
        x = torch.randn(T, B, I)
        fns = {("torch", task): runs(theirs, x, task == "train") for task in ("infer", "train")}
        for variant, kw in VARIANTS.items():
            ours = gru.GRU(I, H, **kw)
            for task in ("infer", "train"):
                fns[(variant, task)] = runs(ours, x, task == "train")
        m = interleaved({f"{v}|{t}": fn for (v, t), fn in fns.items()}, min_rounds=7, budget=6.0)
        results["configs"][name] = {"shape": [I, H, B, T], "median_s": m}
        t_inf, t_train = m["torch|infer"], m["torch|train"]
        for variant in VARIANTS:
            g_inf, g_train = m[f"{variant}|infer"], m[f"{variant}|train"]
            print(
                f"| {name} | {I}/{H}/{B}/{T} | {variant} | {fmt(t_inf)} | {fmt(g_inf)} "
                f"| {ratio(t_inf, g_inf)} | {fmt(t_train)} | {fmt(g_train)} "
                f"| {ratio(t_train, g_train)} |"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
