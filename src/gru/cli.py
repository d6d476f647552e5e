"""The command line: parse arguments into a task's config, run it, report."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from gru import __version__

__all__ = ["main"]


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
    _add_predict(commands)
    _add_evaluate(commands)
    _add_explain(commands)
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
            "epochs": "5 (seed), 4 (strong)",
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
        out=out,
        resume=resume,
        checkpoint_every=args.checkpoint_every,
        quiet=args.quiet,
        device=args.device,
        word_index=word_index,
        text_column=args.text_column,
        label_column=args.label_column,
    )
    if not _is_main_process():
        return 0
    epochs = len(report.history)
    print(f"run folder: {out}")
    print(
        f"time: {epochs} epochs, {report.seconds_per_epoch:.1f} s per epoch, "
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


def main(argv: list[str] | None = None) -> int:
    """Run the ``gru`` command line with ``argv`` (default: sys.argv[1:]); return the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "convert":
            return _convert(args)
        if args.command == "train" and args.task == "adding":
            return _train_adding(args)
        if args.command == "train" and args.task == "sentiment":
            return _train_sentiment(args)
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
