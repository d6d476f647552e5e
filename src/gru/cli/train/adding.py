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
    )
    adding.add_argument(
        "--seq-len", type=options.positive_int, help="sequence length T (default 50)"
    )
    adding.add_argument("--hidden-size", type=options.positive_int, help="GRU units H (default 32)")
    adding.add_argument(
        "--n-train", type=options.positive_int, help="training sequences (default 20000)"
    )
    adding.add_argument("--n-test", type=options.positive_int, help="test sequences (default 2000)")
    options.add_training_options(adding, {"epochs": 4, "batch_size": 64, "lr": 3e-3})
    return adding


def run(args) -> int:
    from gru.tasks.adding import Adder

    config, out, resume, _ = options.train_config(args, Adder)
    result = options.fit(args, Adder, config, out, resume)
    if not options.is_main_process():
        return 0
    mse, mean = result.test_mse, result.baseline_mse
    if mse < mean:
        print(f"test MSE {mse:.4f} vs baseline {mean:.4f} ({mean / max(mse, 1e-12):.1f}x lower)")
    else:  # say so plainly, as the report does
        print(f"test MSE {mse:.4f}: predicting the mean ({mean:.4f}) beats this model")
    print(f"run folder: {out}")
    return 0
