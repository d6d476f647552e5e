"""``gru train anomaly``: anomalies in a CSV series (`gru.tasks.anomaly`)."""

from __future__ import annotations

from gru.cli import options

__all__ = ["add", "run"]


def add(tasks):
    anomaly = tasks.add_parser(
        "anomaly",
        help="learn a series' normal behaviour to flag anomalies (CSV)",
        description="Train a GRU to forecast one column of a CSV one step ahead; choose the "
        "threshold of its standardized forecast error on the validation rows; then plant "
        "anomalies (spikes, level shifts, runs dropped to zero) in a copy of the test rows and "
        "report precision, recall and F1 beside a rolling z-score detector.",
        epilog=options.examples(
            "gru train anomaly --csv monthly-sunspots.csv --column Sunspots --out runs/sunspots",
            "gru train anomaly --csv ETTh1.csv --column OT --limit 3000 --epochs 1 "
            "--out runs/ot-quick",
        ),
    )
    options.add_data_option(
        anomaly, "--csv", metavar="PATH", help="the series, one row per time step"
    )
    options.add_data_option(anomaly, "--column", metavar="COL", help="the column to watch")
    options.add_limit(anomaly, "rows")
    anomaly.add_argument(
        "--lookback", type=options.positive_int, help="values read before each point (default 48)"
    )
    anomaly.add_argument(
        "--hidden-size", type=options.positive_int, help="GRU units H (default 32)"
    )
    anomaly.add_argument(
        "--quantile",
        type=float,
        help="the threshold is this quantile of the validation scores (default 0.999)",
    )
    anomaly.add_argument(
        "--no-impute",
        dest="impute",
        action="store_false",
        default=None,
        help="read flagged values as they are instead of replacing them by their forecast",
    )
    anomaly.add_argument(
        "--anomalies",
        type=int,
        help="anomalies planted in the test rows, each with max(lookback, 48) normal points "
        "before and after it (default: as many as fit, at most 15)",
    )
    anomaly.add_argument(
        "--magnitude",
        type=options.positive_float,
        help="their size in robust standard deviations of one-step changes (default 6)",
    )
    options.add_series_options(anomaly)
    options.add_training_options(anomaly, {"epochs": 8, "batch_size": 128, "lr": 3e-3})
    return anomaly


def run(args) -> int:
    from gru.tasks.anomaly import AnomalyDetector

    config, out, resume, stored = options.train_config(args, AnomalyDetector)
    csv = options.needs(args.csv, "--csv", stored, "source")
    column = options.needs(args.column, "--column", stored, "column")
    report = options.fit(args, AnomalyDetector, config, out, resume, csv, column)
    if not options.ran(out, report):
        return 0
    kinds = sorted({e["kind"] for e in report.events})
    points = sum(e["end"] - e["start"] for e in report.events)
    if report.events:
        print(
            f"test rows with {len(report.events)} planted anomalies ({', '.join(kinds)}; "
            f"{points} points):"
        )
    else:
        print("test rows with no planted anomalies (--anomalies 0): recall and F1 measure nothing")
    print(
        f"  {'detector':<16} {'threshold':>9} {'precision':>9} {'recall':>7} {'F1':>6} "
        f"{'events found':>12} {'alarms':>6}"
    )
    for name, scores, threshold in (
        ("gru", report.test, report.threshold),
        ("rolling z-score", report.baseline, report.baseline_threshold),
    ):
        shown = {k: "-" if v is None else f"{v:.3f}" for k, v in scores.items()}
        print(
            f"  {name:<16} {threshold:>9.2f} {shown['precision']:>9} {shown['recall']:>7} "
            f"{shown['f1']:>6} {shown['event_recall']:>12} {scores['alarms']:>6}"
        )
    return 0
