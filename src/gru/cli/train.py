"""``gru train TASK``: for each task, its options (each one's ``dest`` is the config setting it
gives, so `options.train_config` lays them over the config) and a small function that builds
the task's config, calls its ``fit`` and prints the report."""

from __future__ import annotations

from gru.cli.options import (
    add_series_options,
    add_training_options,
    count,
    fit,
    is_main_process,
    needs,
    positive_float,
    positive_int,
    ran,
    train_config,
)

__all__ = ["TASKS"]

LN2 = 0.6931471805599453  # nats per bit


# --- adding --------------------------------------------------------------------------------------


def add_adding(tasks):
    adding = tasks.add_parser(
        "adding",
        help="the adding problem (long-term memory)",
        description="Train a GRU to add the two marked values of a long sequence "
        "(Hochreiter & Schmidhuber 1997) and compare its test MSE with predicting the mean.",
    )
    adding.add_argument("--seq-len", type=positive_int, help="sequence length T (default 50)")
    adding.add_argument("--hidden-size", type=positive_int, help="GRU units H (default 32)")
    adding.add_argument("--n-train", type=positive_int, help="training sequences (default 20000)")
    adding.add_argument("--n-test", type=positive_int, help="test sequences (default 2000)")
    add_training_options(adding, {"epochs": 4, "batch_size": 64, "lr": 3e-3})
    return adding


def train_adding(args) -> int:
    from gru.tasks.adding import Adder

    config, out, resume, _ = train_config(args, Adder)
    result = fit(args, Adder, config, out, resume)
    if not is_main_process():
        return 0
    ratio = result.baseline_mse / max(result.test_mse, 1e-12)
    print(
        f"test MSE {result.test_mse:.4f} vs baseline {result.baseline_mse:.4f} ({ratio:.0f}x lower)"
    )
    print(f"run folder: {out}")
    return 0


# --- sentiment -----------------------------------------------------------------------------------


def add_sentiment(tasks):
    from gru.tasks.sentiment import PRESETS

    sentiment = tasks.add_parser(
        "sentiment",
        help="positive or negative movie reviews (IMDB)",
        description="Train a GRU sentiment classifier on labeled reviews and report its test "
        "accuracy. --preset seed is the seeds' Keras model (Embedding(10000, 32) -> GRU(32) -> "
        "Dense(1, sigmoid), 100 words per review, Adam, batch 32, 5 epochs); --preset strong the "
        "same recipe scaled up to a bidirectional GRU that still trains on 2 CPU cores within "
        "20 minutes.",
    )
    sentiment.add_argument(
        "--data",
        metavar="PATH",
        help="the reviews: an aclImdb folder or its .tar.gz/.tar.xz, a Keras imdb.npz, a CSV of "
        "labeled texts or a folder with pos/ and neg/ text files; 'keras' for "
        "~/.keras/datasets/imdb.npz; 'sample' (the default) for the small sample in the package",
    )
    sentiment.add_argument(
        "--preset", choices=sorted(PRESETS), help="model and training settings (default seed)"
    )
    sentiment.add_argument(
        "--torch-layer",
        action="store_true",
        default=None,
        help="build the same model on torch.nn.GRU instead of gru.GRU, to compare their speed",
    )
    sentiment.add_argument(
        "--word-index",
        metavar="JSON",
        help="word index {word: rank} to encode raw text (default: imdb_word_index.json beside "
        "the data or in ~/.keras/datasets for IMDB, else one built from the training texts)",
    )
    sentiment.add_argument("--text-column", default="text", help="CSV column of the texts")
    sentiment.add_argument("--label-column", default="label", help="CSV column of the labels")
    model = sentiment.add_argument_group("model (default: the preset's)")
    model.add_argument("--num-words", type=positive_int, help="vocabulary size, ids included")
    model.add_argument("--maxlen", type=positive_int, help="ids kept per review")
    model.add_argument("--embedding-dim", type=positive_int, help="embedding size E")
    model.add_argument("--hidden-size", type=positive_int, help="GRU units H")
    model.add_argument(
        "--limit", type=positive_int, help="use at most N training and N test reviews (quick runs)"
    )
    add_training_options(
        sentiment,
        {
            "epochs": "5 (seed), 3 (strong)",
            "batch_size": "32 (seed), 64 (strong)",
            "lr": "1e-3 (seed), 3e-3 (strong)",
        },
    )
    return sentiment


def train_sentiment(args) -> int:
    from gru.tasks.sentiment import SentimentClassifier

    def preset():
        return SentimentClassifier.from_preset(args.preset or "seed").config

    config, out, resume, stored = train_config(
        args, SentimentClassifier, preset, fresh_on_resume=args.preset is not None
    )
    data = args.data or stored.get("source") or "sample"
    columns = {"text_column": args.text_column, "label_column": args.label_column}
    report = fit(
        args, SentimentClassifier, config, out, resume, data, word_index=args.word_index, **columns
    )
    time = (
        f"{count(len(report.history), 'epoch')}, {report.seconds_per_epoch:.1f} s per epoch, "
        f"{report.seconds:.1f} s for the whole run, with {report.layer}"
    )
    if not ran(out, report, time):
        return 0
    best = report.history[report.best_epoch - 1] if report.history else {}
    chosen = f"weights of epoch {report.best_epoch}"
    if "val_accuracy" in best:
        chosen += f", validation accuracy {best['val_accuracy']:.4f}"
    if report.test is not None:
        print(
            f"test accuracy: {report.test['accuracy']:.4f} on {report.reviews['test']:,} "
            f"reviews ({chosen})"
        )
    else:
        print(f"no test split in {data}; {chosen}; score one with gru evaluate --run {out}")
    if str(data) == "sample":
        print(
            "full dataset: download aclImdb_v1.tar.gz from "
            "https://ai.stanford.edu/~amaas/data/sentiment/ and run\n"
            "  gru train sentiment --data aclImdb_v1.tar.gz --preset seed   (or --preset strong; "
            "--data keras reads ~/.keras/datasets/imdb.npz)"
        )
    return 0


# --- forecast ------------------------------------------------------------------------------------


def add_forecast(tasks):
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
    )
    forecast.add_argument("--csv", metavar="PATH", help="the series, one row per time step")
    forecast.add_argument("--target", metavar="COL", help="the column to forecast")
    forecast.add_argument(
        "--features",
        choices=FEATURES,
        help="S: the target alone; M: all numeric columns predict all; MS: all predict the "
        "target (default M)",
    )
    forecast.add_argument("--lookback", type=positive_int, help="rows read, W (default 96)")
    forecast.add_argument("--horizon", type=positive_int, help="rows forecast, F (default 96)")
    forecast.add_argument(
        "--model",
        choices=MODELS,
        help="segrnn: SegRNN (Lin et al. 2023), a GRU over segments of the window with parallel "
        "decoding; gru: a plain GRU encoder with a linear head (default segrnn)",
    )
    forecast.add_argument(
        "--season",
        type=positive_int,
        help="the seasonal-naive baseline's period in rows (default: detected)",
    )
    add_series_options(forecast)
    model = forecast.add_argument_group("model (default: the model's own)")
    model.add_argument(
        "--hidden-size", type=positive_int, help="SegRNN's width d (256) or the GRU's H (64)"
    )
    model.add_argument("--segment", type=positive_int, help="SegRNN's segment length (24)")
    model.add_argument(
        "--layers",
        type=positive_int,
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
    add_training_options(forecast, {"epochs": 12, "batch_size": 256, "lr": 2e-3})
    return forecast


def train_forecast(args) -> int:
    from gru.tasks.forecast import ForecastConfig, Forecaster

    def fresh():  # the chosen model's default width
        return ForecastConfig(model=args.model or "segrnn")

    config, out, resume, stored = train_config(args, Forecaster, fresh)
    csv = needs(args.csv, "--csv", stored, "source")
    target = needs(args.target, "--target", stored, "target")
    report = fit(args, Forecaster, config, out, resume, csv, target)
    epochs = len(report.history)
    time = (
        f"{count(epochs, 'epoch')} in {report.training_seconds:.1f} s of training "
        f"({report.training_seconds / max(epochs, 1):.1f} s per epoch), {report.seconds:.1f} s "
        f"for the whole run; weights of epoch {report.best_epoch}"
    )
    if not ran(out, report, time):
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


# --- textgen -------------------------------------------------------------------------------------


def add_textgen(tasks):
    textgen = tasks.add_parser(
        "textgen",
        help="a character-level language model of a text (e.g. Tiny Shakespeare)",
        description="Train a character-level GRU language model on a UTF-8 text: the first 90% "
        "trains with truncated back-propagation through time (the hidden state carried across "
        "chunks), the last 10% validates. Reports the validation loss in nats per character "
        "and a generated sample.",
    )
    textgen.add_argument("--text", metavar="PATH", help="the text (UTF-8)")
    model = textgen.add_argument_group("model (defaults: 2 layers of 512, embedding 64)")
    model.add_argument("--hidden-size", type=positive_int, help="GRU units H")
    model.add_argument(
        "--layers", type=positive_int, dest="num_layers", metavar="LAYERS", help="GRU layers"
    )
    model.add_argument("--embedding-dim", type=positive_int, help="character embedding size")
    model.add_argument("--dropout", type=float, help="dropout between layers and before the output")
    model.add_argument("--seq-len", type=positive_int, help="characters per chunk (128)")
    model.add_argument(
        "--limit", type=positive_int, help="use only the first N characters (quick runs)"
    )
    add_training_options(textgen, {"epochs": 8, "batch_size": 32, "lr": 3e-3})
    return textgen


def train_textgen(args) -> int:
    from gru.tasks.textgen import TextGenerator

    config, out, resume, stored = train_config(args, TextGenerator)
    text = needs(args.text, "--text", stored, "source")
    report = fit(args, TextGenerator, config, out, resume, text)
    if not ran(out, report):
        return 0
    print(
        f"validation loss: {report.val_loss:.4f} nats per character "
        f"({report.val_loss / LN2:.3f} bits), epoch {report.best_epoch}"
    )
    print("sample (temperature 0.8, seed 0):")
    print(report.sample)
    return 0


# --- anomaly -------------------------------------------------------------------------------------


def add_anomaly(tasks):
    anomaly = tasks.add_parser(
        "anomaly",
        help="learn a series' normal behaviour to flag anomalies (CSV)",
        description="Train a GRU to forecast one column of a CSV one step ahead; choose the "
        "threshold of its standardized forecast error on the validation rows; then plant "
        "anomalies (spikes, level shifts, runs dropped to zero) in a copy of the test rows and "
        "report precision, recall and F1 beside a rolling z-score detector.",
    )
    anomaly.add_argument("--csv", metavar="PATH", help="the series, one row per time step")
    anomaly.add_argument("--column", metavar="COL", help="the column to watch")
    anomaly.add_argument(
        "--lookback", type=positive_int, help="values read before each point (default 48)"
    )
    anomaly.add_argument("--hidden-size", type=positive_int, help="GRU units H (default 32)")
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
        type=positive_float,
        help="their size in robust standard deviations of one-step changes (default 6)",
    )
    add_series_options(anomaly)
    add_training_options(anomaly, {"epochs": 8, "batch_size": 128, "lr": 3e-3})
    return anomaly


def train_anomaly(args) -> int:
    from gru.tasks.anomaly import AnomalyDetector

    config, out, resume, stored = train_config(args, AnomalyDetector)
    csv = needs(args.csv, "--csv", stored, "source")
    column = needs(args.column, "--column", stored, "column")
    report = fit(args, AnomalyDetector, config, out, resume, csv, column)
    if not ran(out, report):
        return 0
    kinds = sorted({e["kind"] for e in report.events})
    points = sum(e["end"] - e["start"] for e in report.events)
    print(
        f"test rows with {len(report.events)} planted anomalies ({', '.join(kinds)}; "
        f"{points} points):"
    )
    print(
        f"  {'detector':<16} {'threshold':>9} {'precision':>9} {'recall':>7} {'F1':>6} "
        f"{'events found':>12} {'alarms':>6}"
    )
    for name, scores, threshold in (
        ("gru", report.test, report.threshold),
        ("rolling z-score", report.baseline, report.baseline_threshold),
    ):
        print(
            f"  {name:<16} {threshold:>9.2f} {scores['precision']:>9.3f} {scores['recall']:>7.3f} "
            f"{scores['f1']:>6.3f} {scores['event_recall']:>12.3f} {scores['alarms']:>6}"
        )
    return 0


# `gru train TASK`: (add its parser to the subcommands, run it), in the order of `gru train -h`.
TASKS = {
    "adding": (add_adding, train_adding),
    "sentiment": (add_sentiment, train_sentiment),
    "forecast": (add_forecast, train_forecast),
    "textgen": (add_textgen, train_textgen),
    "anomaly": (add_anomaly, train_anomaly),
}
