"""The command table: every ``gru`` command, the function that adds its arguments and the one
that runs it. A command parses its arguments into a task's config, calls the task's Python API
(`gru.tasks`) and prints what it returns; a new task adds its lines here (``gru train TASK``
in `gru.cli.train`, the commands on its runs in `gru.cli.use`)."""

from __future__ import annotations

import argparse
import sys

from gru import __version__
from gru.cli import tools, train, use

__all__ = ["COMMANDS", "main", "parser"]


def add_train(commands):
    """``gru train TASK``, one subcommand per task of `gru.cli.train.TASKS`."""
    parser = commands.add_parser("train", help="train a model on a task")
    tasks = parser.add_subparsers(dest="task", required=True, metavar="TASK")
    for add, run in train.TASKS.values():
        add(tasks).set_defaults(handler=run)
    return parser


# `gru COMMAND`: (add its parser to the commands, run it; None: its subcommands do), in the
# order of `gru --help`.
COMMANDS = {
    "convert": tools.COMMANDS["convert"],
    "train": (add_train, None),
    **use.COMMANDS,
    "compare": tools.COMMANDS["compare"],
}


def parser() -> argparse.ArgumentParser:
    """The parser of every command; each sets ``handler``, the function that runs it."""
    gru = argparse.ArgumentParser(
        prog="gru", description="Gated Recurrent Units: train and use GRU models."
    )
    gru.add_argument("--version", action="version", version=f"gru {__version__}")
    commands = gru.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add, run in COMMANDS.values():
        command = add(commands)
        if run is not None:
            command.set_defaults(handler=run)
    return gru


def main(argv: list[str] | None = None) -> int:
    """Run the ``gru`` command line with ``argv`` (default: sys.argv[1:]); return the exit code."""
    args = parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, TypeError, OSError) as error:  # FileNotFoundError is an OSError
        print(f"gru: error: {error}", file=sys.stderr)
        return 2
