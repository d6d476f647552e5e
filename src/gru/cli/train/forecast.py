"""``gru train forecast``: forecasting a CSV series (`gru.tasks.forecast`)."""

from __future__ import annotations

from gru.cli import options

__all__ = ["add", "run"]


def add(tasks):
    from gru.data.timeseries import FEATURES
    from gru.tasks.forecast import LOSSES, MODELS

    forecast = tasks.add_parser(
        "forecast",
        help="forecast the next H steps of a time series (CSV)",
        description="Train a GRU forecaster on a CSV with a time column: sliding windows of "
        "--lookback rows forecast the next --horizon rows, scaling fitted on the training rows "
        "only, a chronological train/validation/test split. Reports test MSE and MAE (on the "
        "standardized data, as papers do, and MAE in the target's units) beside three "
        "baselines: the last value, the last season repeated, and a linear model of the window.",
        epilog=options.examples(
            "gru train forecast --csv ETTh1.csv --target OT --split ett --out runs/etth1",
            "gru train forecast --csv ETTh1.csv --target OT --limit 2000 --lookback 48 "
            "--horizon 24 --epochs 1 --out runs/etth1-quick",
        ),
    )
    options.add_data_option(
        forecast, "--csv", metavar="PATH", help="the series, one row per time step"
    )
    options.add_data_option(forecast, "--target", metavar="COL", help="the column to forecast")
    options.add_limit(forecast, "rows")
    forecast.add_argument(
        "--features",
        choices=FEATURES,
        help="S: the target alone; M: all numeric columns predict all; MS: all predict the "
        "target (default M)",
    )
    forecast.add_argument("--lookback", type=options.positive_int, help="rows read, W (default 96)")
    forecast.add_argument(
        "--horizon", type=options.positive_int, help="rows forecast, F (default 96)"
    )
    forecast.add_argument(
        "--model",
        choices=MODELS,
        help="segrnn: SegRNN (Lin et al. 2023), a GRU over segments of the window with parallel "
        "decoding; gru: a plain GRU encoder with a linear head (default segrnn)",
    )
    forecast.add_argument(
        "--season",
        type=options.positive_int,
        help="the seasonal-naive baseline's period in rows (default: detected)",
    )
    options.add_series_options(forecast)
    model = forecast.add_argument_group("model (default: the model's own)")
    model.add_argument(
        "--hidden-size",
        type=options.positive_int,
        help="SegRNN's width d (256) or the GRU's H (64)",
    )
    model.add_argument("--segment", type=options.positive_int, help="SegRNN's segment length (24)")
    model.add_argument(
        "--layers",
        type=options.positive_int,
        dest="num_layers",
        metavar="LAYERS",
        help="the plain GRU's layers (1)",
    )
    model.add_argument("--dropout", type=float, help="dropout before the output layer (0.5)")
    model.add_argument(
        "--loss",
        choices=LOSSES,
        help="what training minimizes: mse, mae, their sum, or huber (Huber's loss, δ = 1 on "
        "the standardized data) (default mse+mae)",
    )
    options.add_training_options(forecast, {"epochs": 12, "batch_size": 256, "lr": 2e-3})
    return forecast


def run(args) -> int:
    from gru.tasks.forecast import ForecastConfig, Forecaster

    def fresh():  # the chosen model's default width
        return ForecastConfig(model=args.model or "segrnn")

    config, out, resume, stored = options.train_config(args, Forecaster, fresh)
    csv = options.needs(args.csv, "--csv", stored, "source")
    target = options.needs(args.target, "--target", stored, "target")
    report = options.fit(args, Forecaster, config, out, resume, csv, target)
    epochs = len(report.history)
    time = (
        f"{options.count(epochs, 'epoch')} in {report.training_seconds:.1f} s of training "
        f"({report.training_seconds / max(epochs, 1):.1f} s per epoch), {report.seconds:.1f} s "
        f"for the whole run; weights of epoch {report.best_epoch}"
    )
    if not options.ran(out, report, time):
        return 0
    print(
        f"test ({report.windows['test']:,} windows, {config.features}, {config.lookback} -> "
        f"{config.horizon}), standardized MSE / MAE, and MAE of {target} in its units:"
    )
    rows = [(config.model, report.test)] + [
        (name if name != "seasonal_naive" else f"seasonal naive ({report.season})", scores)
        for name, scores in report.baselines.items()
    ]
    for name, scores in rows:
        if scores is None:
            print(f"  {'seasonal naive':<22} -  (no season found; give --season)")
        else:
            print(
                f"  {name:<22} {scores['mse']:.4f}  {scores['mae']:.4f}  "
                f"{scores['mae_original']:.4f}"
            )
    return 0
