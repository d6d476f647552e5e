"""The full-length task runs: each task on its real data at its default settings, timed.

    sentiment   the IMDB presets on gru.GRU and on torch.nn.GRU, side by side: test accuracy on
                the 25,000 test reviews, seconds per epoch and for the run, their time ratio
    forecast    ETTh1, all 7 columns (M), lookback 96, horizons 96/192/336/720, the ETT split
                (12/4/4 months): test MSE and MAE on the standardized data beside the baselines
    textgen     Tiny Shakespeare (first 90% trains, last 10% validates): validation loss in
                nats per character and a generated sample
    anomaly     ETTh1's OT and the monthly sunspots with planted anomalies: precision, recall
                and F1 of the GRU detector beside a rolling z-score

Prints a table per task and writes the numbers to bench-results/tasks-<task>.json and each run
folder under bench-results/tasks/.

    python benchmarks/bench_tasks.py [--task sentiment|forecast|textgen|anomaly|all]
        [--preset seed|strong] [--layers gru,torch] [--horizons 96,192,336,720]
        [--data DIR] [--threads N] [--backend auto|fused|torch]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

# Time the engine only: a cold cache compiles in place, never aside (`gru.ops.aside`).
os.environ.setdefault("GRU_COMPILE", "wait")

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench-results"
TASKS = ("sentiment", "forecast", "textgen", "anomaly")


def _run_dir(name: str, stamp: str) -> Path:
    out = RESULTS / "tasks" / f"{name}-{stamp}"
    print(f"== {name} -> {out.relative_to(ROOT)}", flush=True)
    return out


def sentiment(args, stamp: str) -> list[dict]:
    from gru.tasks.sentiment import SentimentClassifier

    data = args.data / "imdb" / "aclImdb_v1_labeled.tar.xz"
    rows = []
    for layer in args.layers.split(","):
        if layer not in ("gru", "torch"):
            raise SystemExit(f"--layers: each must be gru or torch, got {layer!r}")
        classifier = SentimentClassifier.from_preset(
            args.preset, torch_layer=layer == "torch", backend=args.backend
        )
        out = _run_dir(f"{args.preset}-{layer}", stamp)
        report = classifier.fit(data, out=out)
        rows.append(
            {
                "preset": args.preset,
                "layer": report.layer,
                "test_accuracy": report.test["accuracy"],
                "best_epoch": report.best_epoch,
                "epochs": len(report.history),
                "seconds_per_epoch": report.seconds_per_epoch,
                "seconds": report.seconds,
                "run_dir": str(out.relative_to(ROOT)),
            }
        )
    print(f"\n{'layer':<28} {'test acc':>8} {'epoch':>5} {'s/epoch':>8} {'total s':>8}")
    for row in rows:
        print(
            f"{row['layer']:<28} {row['test_accuracy']:>8.4f} {row['best_epoch']:>5} "
            f"{row['seconds_per_epoch']:>8.1f} {row['seconds']:>8.1f}"
        )
    if len(rows) == 2:
        ratio = rows[1]["seconds_per_epoch"] / rows[0]["seconds_per_epoch"]
        print(f"{rows[1]['layer']} / {rows[0]['layer']} time per epoch: {ratio:.2f}")
    return rows


def forecast(args, stamp: str) -> list[dict]:
    from gru.tasks.forecast import Forecaster

    csv = args.data / "timeseries" / "ETTh1.csv"
    rows = []
    for horizon in (int(h) for h in args.horizons.split(",")):
        forecaster = Forecaster(
            lookback=96, horizon=horizon, model="segrnn", split="ett", backend=args.backend
        )
        report = forecaster.fit(csv, "OT", out=_run_dir(f"etth1-{horizon}", stamp), quiet=True)
        rows.append(
            {
                "horizon": horizon,
                "mse": report.test["mse"],
                "mae": report.test["mae"],
                "baselines": {
                    name: None if s is None else {"mse": s["mse"], "mae": s["mae"]}
                    for name, s in report.baselines.items()
                },
                "epochs": len(report.history),
                "training_seconds": report.training_seconds,
                "seconds": report.seconds,
            }
        )
    print(
        f"\nETTh1 M, lookback 96, test MSE / MAE (standardized)\n{'horizon':>7} "
        f"{'SegRNN':>15} {'linear':>15} {'seasonal naive':>15} {'persistence':>15} {'train s':>8}"
    )
    for row in rows:
        cells = [f"{row['mse']:.4f} {row['mae']:.4f}"]
        for name in ("linear", "seasonal_naive", "persistence"):
            s = row["baselines"].get(name)
            cells.append("-" if s is None else f"{s['mse']:.4f} {s['mae']:.4f}")
        print(
            f"{row['horizon']:>7} "
            + " ".join(f"{c:>15}" for c in cells)
            + f" {row['training_seconds']:>8.1f}"
        )
    return rows


def textgen(args, stamp: str) -> list[dict]:
    from gru.tasks.textgen import TextGenerator

    generator = TextGenerator(backend=args.backend)
    text = args.data / "text" / "tinyshakespeare.txt"
    report = generator.fit(text, out=_run_dir("shakespeare", stamp), quiet=True)
    sample = generator.generate("ROMEO:", 300, seed=0)
    print(
        f"\nTiny Shakespeare: validation loss {report.val_loss:.4f} nats per character "
        f"(epoch {report.best_epoch} of {len(report.history)}), {report.training_seconds:.0f} s "
        f"of training\nROMEO:{sample}"
    )
    return [
        {
            "val_loss": report.val_loss,
            "best_epoch": report.best_epoch,
            "epochs": len(report.history),
            "training_seconds": report.training_seconds,
            "seconds": report.seconds,
            "sample": "ROMEO:" + sample,
        }
    ]


def anomaly(args, stamp: str) -> list[dict]:
    from gru.tasks.anomaly import AnomalyDetector

    rows = []
    for name, csv, column in (
        ("etth1-ot", args.data / "timeseries" / "ETTh1.csv", "OT"),
        ("sunspots", args.data / "timeseries" / "monthly-sunspots.csv", "Sunspots"),
    ):
        detector = AnomalyDetector(backend=args.backend)
        report = detector.fit(csv, column, out=_run_dir(f"anomaly-{name}", stamp), quiet=True)
        rows.append(
            {
                "series": name,
                "events": len(report.events),
                "gru": report.test,
                "rolling_zscore": report.baseline,
                "training_seconds": report.training_seconds,
            }
        )
    print(
        f"\n{'series':<10} {'events':>6} {'detector':<16} {'precision':>9} {'recall':>7} {'F1':>6}"
    )
    for row in rows:
        for detector in ("gru", "rolling_zscore"):
            s = row[detector]
            print(
                f"{row['series']:<10} {row['events']:>6} {detector:<16} {s['precision']:>9.3f} "
                f"{s['recall']:>7.3f} {s['f1']:>6.3f}"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=(*TASKS, "all"), default="all")
    parser.add_argument("--preset", choices=("seed", "strong"), default="seed")
    parser.add_argument("--layers", default="gru,torch", help="comma-separated: gru, torch")
    parser.add_argument("--horizons", default="96,192,336,720", help="ETTh1 horizons")
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--backend", default="auto", choices=("auto", "fused", "torch"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    machine = {
        "processor": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for task in TASKS if args.task == "all" else (args.task,):
        rows = globals()[task](args, stamp)
        RESULTS.mkdir(exist_ok=True)
        result = json.dumps({"machine": machine, "runs": rows}, indent=2)
        (RESULTS / f"tasks-{task}.json").write_text(result)


if __name__ == "__main__":
    main()
