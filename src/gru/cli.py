"""The command line: parse arguments into a task's config, run it, report."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from gru import __version__

__all__ = ["main"]


def _count(n: int, noun: str) -> str:
    """'1 epoch', '3 epochs'."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {value}")
    return value


def _add_training_options(parser: argparse.ArgumentParser, defaults: dict) -> None:
    """The options every ``gru train TASK`` shares; ``defaults`` names each one's default."""
    group = parser.add_argument_group("training (every task)")
    group.add_argument(
        "--out",
        metavar="RUN_DIR",
        help="where the run folder goes; it must not exist yet or be empty "
        "(default: a new folder under runs/)",
    )
    group.add_argument(
        "--epochs", type=_positive_int, help=f"passes over the data (default {defaults['epochs']})"
    )
    group.add_argument(
        "--batch-size",
        type=_positive_int,
        help=f"sequences per step, per process (default {defaults['batch_size']})",
    )
    group.add_argument(
        "--lr",
        type=_positive_float,
        help=f"the optimizer's learning rate (default {defaults['lr']})",
    )
    group.add_argument("--seed", type=int, help="seed of every random choice (default 0)")
    group.add_argument(
        "--backend",
        choices=("auto", "fused", "torch"),
        default="auto",
        help="how gru.GRU computes: the fused CPU engine, composed torch operations, or auto "
        "(the engine on CPU); the results are the same (default auto)",
    )
    group.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its last checkpoint; options left out take the "
        "run's own values, options given must match them",
    )
    group.add_argument(
        "--checkpoint-every",
        type=_positive_int,
        metavar="STEPS",
        help="also checkpoint every STEPS optimizer steps (always after every epoch)",
    )
    group.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="where to train; under torchrun, cuda gives each process its own GPU (default cpu)",
    )
    group.add_argument("--quiet", action="store_true", help="no progress bar or epoch lines")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gru", description="Gated Recurrent Units: train and use GRU models."
    )
    parser.add_argument("--version", action="version", version=f"gru {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_convert(commands)
    train = commands.add_parser("train", help="train a model on a task")
    tasks = train.add_subparsers(dest="task", required=True, metavar="TASK")

    adding = tasks.add_parser(
        "adding",
        help="the adding problem (long-term memory)",
        description="Train a GRU to add the two marked values of a long sequence "
        "(Hochreiter & Schmidhuber 1997) and compare its test MSE with predicting the mean.",
    )
    adding.add_argument("--seq-len", type=_positive_int, help="sequence length T (default 50)")
    adding.add_argument("--hidden-size", type=_positive_int, help="GRU units H (default 32)")
    adding.add_argument("--n-train", type=_positive_int, help="training sequences (default 20000)")
    adding.add_argument("--n-test", type=_positive_int, help="test sequences (default 2000)")
    _add_training_options(adding, {"epochs": 4, "batch_size": 64, "lr": 3e-3})

    _add_sentiment(tasks)
    _add_train_forecast(tasks)
    _add_train_textgen(tasks)
    _add_train_anomaly(tasks)
    _add_predict(commands)
    _add_evaluate(commands)
    _add_forecast(commands)
    _add_generate(commands)
    _add_detect(commands)
    _add_explain(commands)
    _add_compare(commands)
    return parser


def _default_out(task: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path("runs") / f"{task}-{stamp}"
    n = 2
    while out.exists():
        out, n = Path("runs") / f"{task}-{stamp}-{n}", n + 1
    return out


def _run_folder(args, task: str) -> tuple[Path, bool]:
    """(the run folder, whether to resume it) from --out and --resume."""
    if args.resume is not None:
        if args.out is not None and Path(args.out).resolve() != Path(args.resume).resolve():
            raise ValueError(
                f"--out {args.out} and --resume {args.resume} name different folders; a resumed "
                "run stays in its folder"
            )
        return Path(args.resume), True
    return (Path(args.out) if args.out is not None else _default_out(task)), False


def _overlay(config, train, args, names: dict[str, str]) -> None:
    """Set each option given on the command line onto ``config`` or its TrainConfig."""
    for option, field_name in names.items():
        value = getattr(args, option, None)
        if value is not None:
            setattr(train if hasattr(train, field_name) else config, field_name, value)


_TRAIN_OPTIONS = {"epochs": "epochs", "batch_size": "batch_size", "lr": "lr", "seed": "seed"}


def _train_adding(args) -> int:
    from gru import checkpoint
    from gru.tasks import adding
    from gru.training import TrainConfig

    out, resume = _run_folder(args, "adding")
    if resume:
        stored = checkpoint.load_config(out)
        if stored["task"] != "adding":
            raise ValueError(f"--resume: {str(out)!r} is a {stored['task']!r} run, not adding")
        values = dict(stored["config"])
        config = adding.AddingConfig(**{**values, "train": TrainConfig(**values["train"])})
    else:
        config = adding.AddingConfig()
    names = {name: name for name in ("seq_len", "hidden_size", "n_train", "n_test")}
    _overlay(config, config.train, args, {**names, **_TRAIN_OPTIONS})
    result = adding.run(
        config,
        out=out,
        resume=resume,
        checkpoint_every=args.checkpoint_every,
        quiet=args.quiet,
        backend=args.backend,
    )
    ratio = result.baseline_mse / max(result.test_mse, 1e-12)
    print(
        f"test MSE {result.test_mse:.4f} vs baseline {result.baseline_mse:.4f} ({ratio:.0f}x lower)"
    )
    print(f"run folder: {out}")
    return 0


def _add_sentiment(tasks) -> None:
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
    model.add_argument("--num-words", type=_positive_int, help="vocabulary size, ids included")
    model.add_argument("--maxlen", type=_positive_int, help="ids kept per review")
    model.add_argument("--embedding-dim", type=_positive_int, help="embedding size E")
    model.add_argument("--hidden-size", type=_positive_int, help="GRU units H")
    model.add_argument(
        "--limit", type=_positive_int, help="use at most N training and N test reviews (quick runs)"
    )
    _add_training_options(
        sentiment,
        {
            "epochs": "5 (seed), 3 (strong)",
            "batch_size": "32 (seed), 64 (strong)",
            "lr": "1e-3 (seed), 3e-3 (strong)",
        },
    )


_SENTIMENT_OPTIONS = {
    **_TRAIN_OPTIONS,
    "num_words": "num_words",
    "maxlen": "maxlen",
    "embedding_dim": "embedding_dim",
    "hidden_size": "hidden_size",
    "limit": "limit",
    "torch_layer": "torch_layer",
}


def _train_sentiment(args) -> int:
    from gru import checkpoint
    from gru.data.text import load_word_index
    from gru.tasks.sentiment import PRESETS, SentimentClassifier, SentimentConfig

    out, resume = _run_folder(args, "sentiment")
    data = args.data
    if resume and args.preset is None:
        stored = checkpoint.load_config(out)
        if stored["task"] != "sentiment":
            raise ValueError(f"--resume: {str(out)!r} is a {stored['task']!r} run, not sentiment")
        config = SentimentConfig.from_dict(stored["config"], where=f"config.json of {out}")
        data = data if data is not None else stored["data"]["source"]
    else:
        config = SentimentConfig.from_dict(PRESETS[args.preset or "seed"].to_dict())
    _overlay(config, config.train, args, _SENTIMENT_OPTIONS)
    data = data if data is not None else "sample"
    word_index = load_word_index(args.word_index) if args.word_index else None
    classifier = SentimentClassifier(config, backend=args.backend)
    report = classifier.fit(
        data,
        **_run_options(args, out, resume),
        word_index=word_index,
        text_column=args.text_column,
        label_column=args.label_column,
    )
    if not _is_main_process():
        return 0
    epochs = len(report.history)
    print(f"run folder: {out}")
    print(
        f"time: {_count(epochs, 'epoch')}, {report.seconds_per_epoch:.1f} s per epoch, "
        f"{report.seconds:.1f} s for the whole run, with {report.layer}"
    )
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


def _is_main_process() -> bool:
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def _add_predict(commands) -> None:
    predict = commands.add_parser(
        "predict",
        help="label texts with a trained sentiment model",
        description="Print, for each text, the predicted label and P(positive) of the model in "
        "RUN_DIR.",
    )
    predict.add_argument("--run", required=True, metavar="RUN_DIR", help="a sentiment run folder")
    predict.add_argument("texts", nargs="*", metavar="TEXT", help="texts to label")
    predict.add_argument("--file", metavar="FILE", help="a UTF-8 file with one text per line")


def _predict(args) -> int:
    from gru.tasks.sentiment import SentimentClassifier

    texts = list(args.texts)
    if args.file is not None:
        path = Path(args.file)
        if not path.is_file():
            raise FileNotFoundError(f"--file: {str(path)!r} does not exist")
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"--file: cannot read {str(path)!r} as UTF-8 text: {error}") from None
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                raise ValueError(f"--file: line {number} of {str(path)!r} is empty")
        texts += lines
    if not texts:
        raise ValueError("predict: give texts to label, or --file with one text per line")
    classifier = SentimentClassifier.load(args.run)
    for text, p in zip(texts, classifier.predict(texts), strict=True):
        label = "positive" if p > 0.5 else "negative"
        print(f"{label}\t{p:.4f}\t{text}")
    return 0


def _add_evaluate(commands) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="score a trained sentiment model on labeled reviews",
        description="Print the accuracy and loss of the model in RUN_DIR on the test split of "
        "PATH (every review when PATH has no split).",
    )
    evaluate.add_argument("--run", required=True, metavar="RUN_DIR", help="a sentiment run folder")
    evaluate.add_argument(
        "--data",
        required=True,
        metavar="PATH",
        help="labeled reviews in any form `gru train sentiment --data` reads",
    )
    evaluate.add_argument("--text-column", default="text", help="CSV column of the texts")
    evaluate.add_argument("--label-column", default="label", help="CSV column of the labels")


def _evaluate(args) -> int:
    from gru.tasks.sentiment import SentimentClassifier

    classifier = SentimentClassifier.load(args.run)
    scores = classifier.evaluate(
        args.data, text_column=args.text_column, label_column=args.label_column
    )
    print(
        f"accuracy {scores['accuracy']:.4f}  loss {scores['loss']:.4f}  on {scores['reviews']:,} "
        f"reviews of {args.data}"
    )
    return 0


def _add_explain(commands) -> None:
    explain = commands.add_parser(
        "explain",
        help="see what the gates of a trained model did on your input (an HTML page)",
        description="Run the model of RUN_DIR on your input and write a self-contained HTML page "
        "of what its gates did: for a sentiment run, the text token by token colored by the "
        "update and reset gates, P(positive) as the text is read and heatmaps of r and z; for a "
        "forecast run, the last input window of --csv, the forecast beside the actual values "
        "and the gates over the window. The figures are also written as PNG files beside it.",
    )
    explain.add_argument("--run", required=True, metavar="RUN_DIR", help="a trained run folder")
    explain.add_argument("text", nargs="?", metavar="TEXT", help="the text to explain (sentiment)")
    explain.add_argument("--csv", metavar="PATH", help="the series to explain (forecast)")
    explain.add_argument(
        "--out", metavar="FILE.html", help="where the page goes (default: RUN_DIR/explain.html)"
    )


def _explain(args) -> int:
    from gru.tasks.explain import explain

    print(f"wrote {explain(args.run, args.text, csv=args.csv, out=args.out)}")
    return 0


# --- forecasting, text generation, anomaly detection -------------------------------------------


def _add_series_options(parser, *, ett: bool = True) -> None:
    """How a CSV series is read: its time column, missing values, the split."""
    parser.add_argument(
        "--time-column",
        metavar="COL",
        help="the column of timestamps (default: one named date, time, timestamp, month, ...)",
    )
    parser.add_argument(
        "--fillna",
        choices=("ffill", "interpolate", "zero"),
        help="fill missing values: the last value before the gap, a line across it, or 0 "
        "(default: refuse data with missing values)",
    )
    if ett:
        parser.add_argument(
            "--split",
            choices=("ratio", "ett"),
            help="chronological train/validation/test: 70/10/20 of the rows (ratio, the "
            "default) or the ETT benchmark's 12/4/4 months (ett)",
        )


def _task_config(args, task: str, config_cls, fresh, options: dict):
    """(config, run folder, resume?, stored data) for ``gru train TASK``: a resumed run starts
    from its own config.json; options given on the command line are laid over it."""
    from gru import checkpoint

    out, resume = _run_folder(args, task)
    stored_data = {}
    if resume:
        stored = checkpoint.load_config(out)
        if stored["task"] != task:
            raise ValueError(f"--resume: {str(out)!r} is a {stored['task']!r} run, not {task}")
        config = config_cls.from_dict(stored["config"], where=f"config.json of {out}")
        stored_data = stored.get("data", {})
    else:
        config = fresh()
    _overlay(config, config.train, args, options)
    return config, out, resume, stored_data


def _run_options(args, out, resume: bool) -> dict:
    """What every task's ``fit`` takes from the options `gru train` commands share."""
    return {
        "out": out,
        "resume": resume,
        "checkpoint_every": args.checkpoint_every,
        "quiet": args.quiet,
        "device": args.device,
    }


def _needs(value, option: str, stored: dict, key: str):
    if value is not None:
        return value
    if stored.get(key) is not None:
        return stored[key]
    raise ValueError(f"{option} is required")


def _add_train_forecast(tasks) -> None:
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
        choices=("S", "M", "MS"),
        help="S: the target alone; M: all numeric columns predict all; MS: all predict the "
        "target (default M)",
    )
    forecast.add_argument("--lookback", type=_positive_int, help="rows read, W (default 96)")
    forecast.add_argument("--horizon", type=_positive_int, help="rows forecast, F (default 96)")
    forecast.add_argument(
        "--model",
        choices=("segrnn", "gru"),
        help="segrnn: SegRNN (Lin et al. 2023), a GRU over segments of the window with parallel "
        "decoding; gru: a plain GRU encoder with a linear head (default segrnn)",
    )
    forecast.add_argument(
        "--season",
        type=_positive_int,
        help="the seasonal-naive baseline's period in rows (default: detected)",
    )
    _add_series_options(forecast)
    model = forecast.add_argument_group("model (default: the model's own)")
    model.add_argument(
        "--hidden-size", type=_positive_int, help="SegRNN's width d (256) or the GRU's H (64)"
    )
    model.add_argument("--segment", type=_positive_int, help="SegRNN's segment length (24)")
    model.add_argument("--layers", type=_positive_int, help="the plain GRU's layers (1)")
    model.add_argument("--dropout", type=float, help="dropout before the output layer (0.5)")
    model.add_argument(
        "--loss",
        choices=("mse", "mae", "mse+mae", "huber"),
        help="what training minimizes: mse, mae, their sum, or huber (Huber's loss, δ = 1 on "
        "the standardized data) (default mse+mae)",
    )
    _add_training_options(forecast, {"epochs": 12, "batch_size": 256, "lr": 2e-3})


_FORECAST_OPTIONS = {
    **_TRAIN_OPTIONS,
    "features": "features",
    "lookback": "lookback",
    "horizon": "horizon",
    "model": "model",
    "season": "season",
    "time_column": "time_column",
    "fillna": "fillna",
    "split": "split",
    "hidden_size": "hidden_size",
    "segment": "segment",
    "layers": "num_layers",
    "dropout": "dropout",
    "loss": "loss",
}


def _train_forecast(args) -> int:
    from gru.tasks.forecast import ForecastConfig, Forecaster

    def fresh():  # the chosen model's default width
        return ForecastConfig(model=args.model or "segrnn")

    config, out, resume, stored = _task_config(
        args, "forecast", ForecastConfig, fresh, _FORECAST_OPTIONS
    )
    csv = _needs(args.csv, "--csv", stored, "source")
    target = _needs(args.target, "--target", stored, "target")
    forecaster = Forecaster(config=config, backend=args.backend)
    report = forecaster.fit(
        csv,
        target,
        **_run_options(args, out, resume),
    )
    if not _is_main_process():
        return 0
    epochs = len(report.history)
    print(f"run folder: {out}")
    print(
        f"time: {_count(epochs, 'epoch')} in {report.training_seconds:.1f} s of training "
        f"({report.training_seconds / max(epochs, 1):.1f} s per epoch), {report.seconds:.1f} s "
        f"for the whole run; weights of epoch {report.best_epoch}"
    )
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


def _add_forecast(commands) -> None:
    forecast = commands.add_parser(
        "forecast",
        help="forecast the next steps of a series with a trained forecast model",
        description="Forecast the --horizon rows after the end of the CSV with the model of "
        "RUN_DIR (it reads the last --lookback rows) and write them as CSV and a plot.",
    )
    forecast.add_argument("--run", required=True, metavar="RUN_DIR", help="a forecast run folder")
    forecast.add_argument("--csv", required=True, metavar="PATH", help="the series to continue")
    forecast.add_argument(
        "--output",
        metavar="FILE.csv",
        help="where the forecast goes, its plot beside it as .png "
        "(default: RUN_DIR/forecast-<name of the CSV>.csv)",
    )
    forecast.add_argument(
        "--fillna",
        choices=("ffill", "interpolate", "zero"),
        help="fill missing values of the CSV (default: the run's setting)",
    )


def _output_paths(args, run_dir, prefix: str) -> tuple[Path, Path]:
    output = (
        Path(args.output)
        if args.output is not None
        else Path(run_dir) / f"{prefix}-{Path(args.csv).stem}.csv"
    )
    if output.suffix.lower() != ".csv":
        raise ValueError(f"--output: {str(output)!r} must be a .csv file")
    if not output.parent.is_dir():
        raise FileNotFoundError(f"--output: the folder of {str(output)!r} does not exist")
    return output, output.with_suffix(".png")


def _write_csv(frame, path: Path) -> None:
    from gru._io import atomic_write

    text = frame.to_csv()
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def _forecast(args) -> int:
    from gru.tasks.forecast import Forecaster, plot_future

    forecaster = Forecaster.load(args.run)
    if args.fillna is not None:
        forecaster.config.fillna = args.fillna
    output, picture = _output_paths(args, args.run, "forecast")
    frame = forecaster.predict(args.csv)
    series = forecaster._read(args.csv, columns=forecaster.columns)
    target = forecaster.target
    import pandas as pd

    history_index = series.time if series.time is not None else pd.RangeIndex(len(series))
    history = pd.Series(series.values[:, series.columns.index(target)], index=history_index)
    _write_csv(frame, output)
    tail = history.iloc[-3 * forecaster.config.lookback :]
    plot_future(picture, tail, frame[target], f"{target}: the next {len(frame)} steps")
    print(
        f"forecast of {', '.join(frame.columns)} for the {len(frame)} steps after the end of "
        f"{args.csv}: {frame.index[0]} to {frame.index[-1]}"
    )
    print(f"wrote {output} and {picture}")
    return 0


def _add_train_textgen(tasks) -> None:
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
    model.add_argument("--hidden-size", type=_positive_int, help="GRU units H")
    model.add_argument("--layers", type=_positive_int, help="GRU layers")
    model.add_argument("--embedding-dim", type=_positive_int, help="character embedding size")
    model.add_argument("--dropout", type=float, help="dropout between layers and before the output")
    model.add_argument("--seq-len", type=_positive_int, help="characters per chunk (128)")
    model.add_argument(
        "--limit", type=_positive_int, help="use only the first N characters (quick runs)"
    )
    _add_training_options(textgen, {"epochs": 8, "batch_size": 32, "lr": 3e-3})


_TEXTGEN_OPTIONS = {
    **_TRAIN_OPTIONS,
    "hidden_size": "hidden_size",
    "layers": "num_layers",
    "embedding_dim": "embedding_dim",
    "dropout": "dropout",
    "seq_len": "seq_len",
    "limit": "limit",
}


def _train_textgen(args) -> int:
    from gru.tasks.textgen import TextGenConfig, TextGenerator

    config, out, resume, stored = _task_config(
        args, "textgen", TextGenConfig, TextGenConfig, _TEXTGEN_OPTIONS
    )
    text = _needs(args.text, "--text", stored, "source")
    generator = TextGenerator(config=config, backend=args.backend)
    report = generator.fit(
        text,
        **_run_options(args, out, resume),
    )
    if not _is_main_process():
        return 0
    epochs = len(report.history)
    print(f"run folder: {out}")
    print(
        f"time: {_count(epochs, 'epoch')} in {report.training_seconds:.1f} s of training, "
        f"{report.seconds:.1f} s for the whole run"
    )
    print(
        f"validation loss: {report.val_loss:.4f} nats per character "
        f"({report.val_loss / 0.6931471805599453:.3f} bits), epoch {report.best_epoch}"
    )
    print("sample (temperature 0.8, seed 0):")
    print(report.sample)
    return 0


def _add_generate(commands) -> None:
    generate = commands.add_parser(
        "generate",
        help="write text with a trained character model",
        description="Continue --prompt with --length characters from the model of RUN_DIR, "
        "one GRU step per character.",
    )
    generate.add_argument("--run", required=True, metavar="RUN_DIR", help="a textgen run folder")
    generate.add_argument(
        "--prompt", default="\n", help="the text to continue (default: a newline)"
    )
    generate.add_argument(
        "--length", type=int, default=500, help="characters to write (default 500)"
    )
    generate.add_argument(
        "--temperature",
        type=float,
        default=0.8,
        help="below 1 more conservative, above 1 more surprising, 0 always the likeliest "
        "(default 0.8)",
    )
    generate.add_argument(
        "--top-k", type=_positive_int, help="draw only among the K likeliest characters"
    )
    generate.add_argument("--seed", type=int, help="the same seed writes the same text")


def _generate(args) -> int:
    from gru.tasks.textgen import TextGenerator

    generator = TextGenerator.load(args.run)
    text = generator.generate(
        args.prompt,
        args.length,
        temperature=args.temperature,
        top_k=args.top_k,
        seed=args.seed,
    )
    print(args.prompt + text)
    return 0


def _add_train_anomaly(tasks) -> None:
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
        "--lookback", type=_positive_int, help="values read before each point (default 48)"
    )
    anomaly.add_argument("--hidden-size", type=_positive_int, help="GRU units H (default 32)")
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
        type=_positive_float,
        help="their size in robust standard deviations of one-step changes (default 6)",
    )
    _add_series_options(anomaly)
    _add_training_options(anomaly, {"epochs": 8, "batch_size": 128, "lr": 3e-3})


_ANOMALY_OPTIONS = {
    **_TRAIN_OPTIONS,
    "lookback": "lookback",
    "hidden_size": "hidden_size",
    "quantile": "quantile",
    "impute": "impute",
    "anomalies": "anomalies",
    "magnitude": "magnitude",
    "time_column": "time_column",
    "fillna": "fillna",
    "split": "split",
}


def _train_anomaly(args) -> int:
    from gru.tasks.anomaly import AnomalyConfig, AnomalyDetector

    config, out, resume, stored = _task_config(
        args, "anomaly", AnomalyConfig, AnomalyConfig, _ANOMALY_OPTIONS
    )
    csv = _needs(args.csv, "--csv", stored, "source")
    column = _needs(args.column, "--column", stored, "column")
    detector = AnomalyDetector(config=config, backend=args.backend)
    report = detector.fit(
        csv,
        column,
        **_run_options(args, out, resume),
    )
    if not _is_main_process():
        return 0
    print(f"run folder: {out}")
    epochs = len(report.history)
    print(
        f"time: {_count(epochs, 'epoch')} in {report.training_seconds:.1f} s of training, "
        f"{report.seconds:.1f} s for the whole run"
    )
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


def _add_detect(commands) -> None:
    detect = commands.add_parser(
        "detect",
        help="flag anomalies in a series with a trained anomaly model",
        description="Score every point of the run's column in the CSV by its standardized "
        "forecast error and write the flagged points as CSV and the series as a plot.",
    )
    detect.add_argument("--run", required=True, metavar="RUN_DIR", help="an anomaly run folder")
    detect.add_argument("--csv", required=True, metavar="PATH", help="the series to check")
    detect.add_argument(
        "--threshold",
        type=_positive_float,
        help="flag scores beyond this (default: the one chosen on validation data)",
    )
    detect.add_argument(
        "--output",
        metavar="FILE.csv",
        help="where the flagged points go, the plot beside it as .png "
        "(default: RUN_DIR/anomalies-<name of the CSV>.csv)",
    )
    detect.add_argument(
        "--fillna",
        choices=("ffill", "interpolate", "zero"),
        help="fill missing values of the CSV (default: the run's setting)",
    )


def _detect(args) -> int:
    from gru.tasks.anomaly import AnomalyDetector, plot_flags

    detector = AnomalyDetector.load(args.run)
    if args.fillna is not None:
        detector.config.fillna = args.fillna
    output, picture = _output_paths(args, args.run, "anomalies")
    frame = detector.detect(args.csv, threshold=args.threshold)
    flagged = frame[frame["anomaly"]].drop(columns="anomaly")
    _write_csv(flagged, output)
    plot_flags(picture, frame, detector.column)
    threshold = args.threshold if args.threshold is not None else detector.threshold
    print(
        f"{len(flagged)} of {len(frame)} points of {detector.column!r} flagged "
        f"(|score| > {threshold:.2f})"
    )
    print(f"wrote {output} and {picture}")
    return 0


def _add_convert(commands) -> None:
    convert = commands.add_parser(
        "convert",
        help="move a GRU's weights between Keras, ONNX, PyTorch and safetensors files",
        description="Read the GRU in SOURCE and write it to DEST, each format chosen by the "
        "file's extension: .keras, .weights.h5, .h5 (Keras 2, read only), .onnx, .safetensors, "
        ".pt (a torch.nn.GRU state dict, loaded without pickle). Both conventions convert "
        "exactly; DEST is written atomically.",
    )
    convert.add_argument("source", metavar="SOURCE", help="file to read")
    convert.add_argument("dest", metavar="DEST", help="file to write")
    convert.add_argument("--layer", help="name of the Keras layer, when SOURCE has several")


def _convert(args) -> int:
    from gru.interop.convert import convert

    print(convert(args.source, args.dest, layer=args.layer))
    return 0


def _add_compare(commands) -> None:
    from gru.tasks.compare import MODELS, TASKS

    compare = commands.add_parser(
        "compare",
        help="train RNN, LSTM and GRU layers on the same tasks and budget, side by side",
        description="Train a plain RNN, an LSTM, torch.nn.GRU, gru.GRU, gru.GRU with layer "
        "norm and gru.MinGRU on the same data with the same budget; print and save a Markdown "
        "table (parameters, training seconds per epoch, inference latency per sequence and per "
        "streaming step, test metric, steps to reach a target) and a PNG of the learning curves.",
    )
    compare.add_argument(
        "--tasks",
        help="comma-separated, of: " + ", ".join(TASKS) + " (default: the adding problems, "
        "and imdb and etth1 when their data is given)",
    )
    compare.add_argument(
        "--models", help="comma-separated, of: " + ", ".join(MODELS) + " (default: all)"
    )
    compare.add_argument("--imdb", metavar="PATH", help="IMDB data for the imdb task")
    compare.add_argument("--csv", metavar="PATH", help="ETTh1.csv for the etth1 task")
    compare.add_argument("--out", type=Path, help="folder for the table, numbers and curves")
    compare.add_argument("--quick", action="store_true", help="a small run of under 2 minutes")
    compare.add_argument("--epochs", type=_positive_int, help="epochs for every task")
    compare.add_argument("--hidden-size", type=_positive_int, help="H for every layer")
    compare.add_argument(
        "--adding-train", type=_positive_int, help="adding problem training sequences (5000)"
    )
    compare.add_argument(
        "--imdb-limit", type=_positive_int, help="reviews of each IMDB split (10000)"
    )
    compare.add_argument(
        "--etth1-stride", type=_positive_int, help="train on every n-th ETTh1 window (1)"
    )
    compare.add_argument("--seed", type=int, default=0)
    compare.add_argument(
        "--threads", type=_positive_int, help="torch threads (default: torch's choice)"
    )
    compare.add_argument("--quiet", action="store_true", help="print only the table")


def _compare(args) -> int:
    import torch

    from gru.tasks import compare

    if args.threads:
        torch.set_num_threads(args.threads)

    def names(text: str | None) -> list[str] | None:
        return None if text is None else [n.strip() for n in text.split(",") if n.strip()]

    tasks = names(args.tasks)
    if tasks is None:
        tasks = ["adding-100", "adding-400"]
        tasks += ["imdb"] if args.imdb else []
        tasks += ["etth1"] if args.csv else []
    config = compare.CompareConfig(
        tasks=tasks,
        models=names(args.models) or list(compare.MODELS),
        imdb=args.imdb,
        csv=args.csv,
        quick=args.quick,
        epochs=args.epochs,
        hidden_size=args.hidden_size,
        seed=args.seed,
    )
    for option in ("adding_train", "imdb_limit", "etth1_stride"):
        if getattr(args, option) is not None:
            setattr(config, option, getattr(args, option))
    out = args.out if args.out is not None else _default_out("compare")
    result = compare.run(config, out=out, quiet=args.quiet)
    if args.quiet:
        print(result.table)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the ``gru`` command line with ``argv`` (default: sys.argv[1:]); return the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "convert":
            return _convert(args)
        if args.command == "compare":
            return _compare(args)
        if args.command == "train" and args.task == "adding":
            return _train_adding(args)
        if args.command == "train" and args.task == "sentiment":
            return _train_sentiment(args)
        if args.command == "train":
            return {
                "forecast": _train_forecast,
                "textgen": _train_textgen,
                "anomaly": _train_anomaly,
            }[args.task](args)
        if args.command == "forecast":
            return _forecast(args)
        if args.command == "generate":
            return _generate(args)
        if args.command == "detect":
            return _detect(args)
        if args.command == "predict":
            return _predict(args)
        if args.command == "evaluate":
            return _evaluate(args)
        if args.command == "explain":
            return _explain(args)
    except (ValueError, TypeError, OSError) as error:  # FileNotFoundError is an OSError
        print(f"gru: error: {error}", file=sys.stderr)
        return 2
    raise AssertionError(f"unhandled command {args.command}")  # argparse rejects the rest
