"""``gru train classify``: a label per sequence (`gru.tasks.classify`)."""

from __future__ import annotations

from gru.cli import options

__all__ = ["add", "run"]


def add(tasks):
    classify = tasks.add_parser(
        "classify",
        help="label sequences (UEA archive problems, your own .ts, CSV or .npz)",
        description="Train a GRU sequence classifier on labeled sequences and report its test "
        "accuracy beside the most frequent class and 1-nearest-neighbour DTW on the same test "
        "sequences. The default preset (a bidirectional GRU pooling the mean and max of its "
        "outputs over time, light augmentation) is one design for the whole archive.",
        epilog=options.examples(
            "gru train classify --train BasicMotions_TRAIN.ts --test BasicMotions_TEST.ts "
            "--out runs/classify",
            "gru train classify --train JapaneseVowels_TRAIN.ts --test JapaneseVowels_TEST.ts "
            "--seed 1 --out runs/vowels",
        ),
    )
    classify.add_argument(
        "--train",
        metavar="PATH",
        help="the training sequences: a .ts file (sktime's format), a long-format CSV (id, "
        "time, channels…, label) or an .npz (X, y, optional lengths)",
    )
    classify.add_argument(
        "--test", metavar="PATH", help="the test sequences, in any of the same formats"
    )
    classify.add_argument("--id-column", default="id", help="CSV column of the sequence ids")
    classify.add_argument("--time-column", default="time", help="CSV column of the steps' order")
    classify.add_argument("--label-column", default="label", help="CSV column of the labels")
    classify.add_argument(
        "--no-dtw",
        action="store_true",
        help="skip the 1-NN DTW baseline (it compares every test sequence with every training one)",
    )
    model = classify.add_argument_group("model (default: the preset's)")
    model.add_argument("--hidden-size", type=options.positive_int, help="GRU units H (64)")
    model.add_argument("--num-layers", type=options.positive_int, help="stacked GRU layers (1)")
    model.add_argument(
        "--unidirectional",
        dest="bidirectional",
        action="store_false",
        default=None,
        help="read the sequences forward only (default: both directions)",
    )
    model.add_argument(
        "--pooling",
        choices=("mean_max", "mean", "max", "last"),
        help="what the head reads of the GRU's outputs over time (default mean_max)",
    )
    model.add_argument("--dropout", type=float, help="dropout on the pooled features (0.3)")
    model.add_argument(
        "--jitter", type=float, help="noise added to each standardized training value (0.05)"
    )
    model.add_argument(
        "--scaling",
        type=float,
        help="spread of a random gain per channel of a training sequence (0.1)",
    )
    options.add_training_options(classify, {"epochs": 80, "batch_size": 16, "lr": 1e-2})
    return classify


def run(args) -> int:
    from gru.tasks.classify import SequenceClassifier

    config, out, resume, stored = options.train_config(args, SequenceClassifier)
    train = options.needs(args.train, "--train", stored, "train")
    test = args.test if args.test is not None else stored.get("test")
    columns = {
        "id_column": args.id_column,
        "time_column": args.time_column,
        "label_column": args.label_column,
    }
    report = options.fit(
        args, SequenceClassifier, config, out, resume, train, test, baselines=not args.no_dtw,
        **columns,
    )  # fmt: skip
    time = (
        f"{options.count(len(report.history), 'epoch')} in {report.training_seconds:.1f} s of "
        f"training ({report.training_cpu_seconds:.1f} s of CPU), {report.seconds:.1f} s for the "
        "whole run"
    )
    if not options.ran(out, report, time):
        return 0
    if report.test is None:
        print("no --test data: the model is trained; score it with gru evaluate --run "
              f"{out} --data TEST")  # fmt: skip
        return 0
    print(f"test accuracy on {report.sequences['test']} sequences:")
    print(f"  {'GRU classifier':<22} {report.test['accuracy']:.4f}")
    for name, scores in report.baselines.items():
        shown = f"{scores['accuracy']:.4f}" if scores is not None else "-  (not computed)"
        print(f"  {name:<22} {shown}")
    return 0
