"""``gru train sentiment``: movie-review sentiment (`gru.tasks.sentiment`)."""

from __future__ import annotations

from gru.cli import options

__all__ = ["add", "run"]


def add(tasks):
    from gru.tasks.sentiment import PRESETS

    sentiment = tasks.add_parser(
        "sentiment",
        help="positive or negative movie reviews (IMDB)",
        description="Train a GRU sentiment classifier on labeled reviews and report its test "
        "accuracy. --preset seed is the seeds' Keras model (Embedding(10000, 32) -> GRU(32) -> "
        "Dense(1, sigmoid), 100 words per review, Adam, batch 32, 5 epochs); --preset strong the "
        "same recipe scaled up to a bidirectional GRU that still trains on 2 CPU cores within "
        "20 minutes.",
        epilog=options.examples(
            "gru train sentiment --limit 500 --epochs 1 --out runs/sentiment",
            "gru train sentiment --data aclImdb_v1.tar.gz --preset seed --out runs/seed",
        ),
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
    model.add_argument(
        "--num-words", type=options.positive_int, help="vocabulary size, ids included"
    )
    model.add_argument("--maxlen", type=options.positive_int, help="ids kept per review")
    model.add_argument("--embedding-dim", type=options.positive_int, help="embedding size E")
    model.add_argument("--hidden-size", type=options.positive_int, help="GRU units H")
    options.add_limit(model, "reviews")
    options.add_training_options(
        sentiment,
        {
            "epochs": "5 (seed), 3 (strong)",
            "batch_size": "32 (seed), 64 (strong)",
            "lr": "1e-3 (seed), 3e-3 (strong)",
        },
    )
    return sentiment


def run(args) -> int:
    from gru.tasks.sentiment import SentimentClassifier

    def preset():
        return SentimentClassifier.from_preset(args.preset or "seed").config

    config, out, resume, stored = options.train_config(
        args, SentimentClassifier, preset, fresh_on_resume=args.preset is not None
    )
    data = args.data or stored.get("source") or "sample"
    columns = {"text_column": args.text_column, "label_column": args.label_column}
    report = options.fit(
        args, SentimentClassifier, config, out, resume, data, word_index=args.word_index, **columns
    )
    epochs = options.count(len(report.history), "epoch")
    time = (
        f"{epochs}, {report.seconds_per_epoch:.1f} s per epoch, "
        f"{report.seconds:.1f} s for the whole run, with {report.layer}"
    )
    if not options.ran(out, report, time):
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
