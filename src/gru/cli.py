"""The command line: parse arguments into a task's config, run it, report."""

from __future__ import annotations

import argparse
import sys

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


def _add_training_options(parser: argparse.ArgumentParser, *, epochs: int, lr: float, batch: int):
    group = parser.add_argument_group("training")
    group.add_argument("--epochs", type=_positive_int, default=epochs, help="passes over the data")
    group.add_argument("--batch-size", type=_positive_int, default=batch, help="sequences per step")
    group.add_argument("--lr", type=_positive_float, default=lr, help="Adam's learning rate")
    group.add_argument("--seed", type=int, default=0, help="seed of every random choice")
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
    adding.add_argument("--seq-len", type=_positive_int, default=50, help="sequence length T")
    adding.add_argument("--hidden-size", type=_positive_int, default=32, help="GRU units H")
    adding.add_argument("--n-train", type=_positive_int, default=20_000, help="training sequences")
    adding.add_argument("--n-test", type=_positive_int, default=2_000, help="test sequences")
    _add_training_options(adding, epochs=4, lr=3e-3, batch=64)
    return parser


def _train_adding(args) -> int:
    from gru.tasks import adding
    from gru.training import TrainConfig

    config = adding.AddingConfig(
        seq_len=args.seq_len,
        hidden_size=args.hidden_size,
        n_train=args.n_train,
        n_test=args.n_test,
        batch_size=args.batch_size,
        seed=args.seed,
        train=TrainConfig(epochs=args.epochs, lr=args.lr, quiet=args.quiet),
    )
    result = adding.run(config)
    ratio = result.baseline_mse / max(result.test_mse, 1e-12)
    print(
        f"test MSE {result.test_mse:.4f} vs baseline {result.baseline_mse:.4f} ({ratio:.0f}x lower)"
    )
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
    except (ValueError, TypeError, FileNotFoundError) as error:
        print(f"gru: error: {error}", file=sys.stderr)
        return 2
    raise AssertionError(f"unhandled command {args.command}")  # argparse rejects the rest
