"""``gru train adding``: the adding problem (`gru.tasks.adding`)."""

from __future__ import annotations

from gru.cli import options

__all__ = ["add", "run"]


def add(tasks):
    adding = tasks.add_parser(
        "adding",
        help="the adding problem (long-term memory)",
        description="Train a GRU to add the two marked values of a long sequence "
        "(Hochreiter & Schmidhuber 1997) and compare its test MSE with predicting the mean.",
        epilog=options.examples(
            "gru train adding --out runs/adding",
            "gru train adding --seq-len 100 --n-train 2000 --epochs 2 --out runs/adding-100",
        ),
    )
    adding.add_argument(
        "--seq-len", type=options.positive_int, help="sequence length T (default 50)"
    )
    adding.add_argument("--hidden-size", type=options.positive_int, help="GRU units H (default 32)")
    adding.add_argument(
        "--n-train", type=options.positive_int, help="training sequences (default 20000)"
    )
    adding.add_argument("--n-test", type=options.positive_int, help="test sequences (default 2000)")
    adding.add_argument(
        "--n-val",
        type=options.positive_int,
        help="validation sequences, which training watches to keep its best epoch (default 1000)",
    )
    options.add_training_options(adding, {"epochs": 4, "batch_size": 64, "lr": 3e-3})
    return adding


def run(args) -> int:
    from gru.tasks.adding import Adder

    config, out, resume, _ = options.train_config(args, Adder)
    result = options.fit(args, Adder, config, out, resume)
    epochs = options.count(len(result.history), "epoch")
    time = (
        f"{epochs} in {result.seconds:.1f} s of training, {result.run_seconds:.1f} s for the "
        f"whole run; weights of epoch {result.best_epoch} (least validation MSE)"
    )
    if not options.ran(out, result, time):
        return 0
    ratio = result.baseline_mse / max(result.test_mse, 1e-12)
    verdict = (
        f"{ratio:.0f}x lower"
        if ratio >= 2
        else "no better than the mean: the model has not learned to add the marked values"
    )
    print(
        f"test MSE {result.test_mse:.4f} vs {result.baseline_mse:.4f} predicting the mean "
        f"({verdict})"
    )
    return 0
