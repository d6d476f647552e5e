"""The sentiment presets on the full IMDB data, on gru.GRU and on torch.nn.GRU, side by side.

Trains each preset once per layer on the 25,000 training reviews (20% held out for validation)
and scores all 25,000 test reviews, then prints test accuracy, seconds per epoch and for the
whole run, and the ratio of the two layers' times (above 1: gru.GRU is faster). Writes the
numbers to bench-results/tasks.json and each run folder under bench-results/tasks/.

    python benchmarks/bench_tasks.py [--preset seed|strong] [--layers gru,torch]
                                     [--data PATH] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from gru.tasks.sentiment import PRESETS, SentimentClassifier

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "imdb" / "aclImdb_v1_labeled.tar.xz"
RESULTS = ROOT / "bench-results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="seed")
    parser.add_argument("--layers", default="gru,torch", help="comma-separated: gru, torch")
    parser.add_argument("--data", type=Path, default=DATA, help="IMDB in any form gru reads")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--backend", default="auto", choices=("auto", "fused", "torch"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    stamp = time.strftime("%Y%m%d-%H%M%S")
    rows = []
    for layer in args.layers.split(","):
        if layer not in ("gru", "torch"):
            parser.error(f"--layers: each must be gru or torch, got {layer!r}")
        classifier = SentimentClassifier.from_preset(
            args.preset, torch_layer=layer == "torch", backend=args.backend
        )
        out = RESULTS / "tasks" / f"{args.preset}-{layer}-{stamp}"
        print(f"== {args.preset} preset on {classifier.layer_name} -> {out.relative_to(ROOT)}")
        report = classifier.fit(args.data, out=out)
        best = report.history[report.best_epoch - 1]
        rows.append(
            {
                "preset": args.preset,
                "layer": report.layer,
                "test_accuracy": report.test["accuracy"],
                "best_epoch": report.best_epoch,
                "val_accuracy": best.get("val_accuracy"),
                "epochs": len(report.history),
                "seconds_per_epoch": report.seconds_per_epoch,
                "seconds": report.seconds,
                "run_dir": str(out.relative_to(ROOT)),
            }
        )

    print()
    print(f"{'layer':<28} {'test acc':>8} {'epoch':>5} {'s/epoch':>8} {'total s':>8}")
    for row in rows:
        print(
            f"{row['layer']:<28} {row['test_accuracy']:>8.4f} {row['best_epoch']:>5} "
            f"{row['seconds_per_epoch']:>8.1f} {row['seconds']:>8.1f}"
        )
    if len(rows) == 2:
        ratio = rows[1]["seconds_per_epoch"] / rows[0]["seconds_per_epoch"]
        print(f"{rows[1]['layer']} / {rows[0]['layer']} time per epoch: {ratio:.2f}")
    RESULTS.mkdir(exist_ok=True)
    machine = {
        "processor": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    (RESULTS / "tasks.json").write_text(json.dumps({"machine": machine, "runs": rows}, indent=2))


if __name__ == "__main__":
    main()
