"""The command table: every ``gru`` command, the function that adds its arguments and the one
that runs it. A command parses its arguments into a task's config, calls the task's Python API
(`gru.tasks`) and prints what it returns; a new task adds its lines here (``gru train TASK``
in `gru.cli.train`, the commands on its runs in `gru.cli.use`)."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings

from gru import __version__
from gru.cli import compiling, options, tools, train, use

__all__ = ["COMMANDS", "main", "parser"]


def add_train(commands):
    """``gru train TASK``, one subcommand per task of `gru.cli.train.TASKS`."""
    parser = commands.add_parser(
        "train",
        help="train a model on a task",
        epilog=options.examples(
            "gru train adding --seq-len 50 --epochs 2 --out runs/adding",
            "gru train sentiment --limit 500 --epochs 1 --out runs/sentiment",
        ),
    )
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
    "compile": (compiling.add, compiling.run),
}


def parser() -> argparse.ArgumentParser:
    """The parser of every command; each sets ``handler``, the function that runs it."""
    gru = options.Parser(
        prog="gru",
        description="Gated Recurrent Units: train and use GRU models.",
        epilog=options.examples(
            "gru train sentiment --limit 500 --epochs 1 --out runs/sentiment",
            'gru predict --run runs/sentiment "a wonderful film"',
            "gru COMMAND --help",
        ),
    )
    gru.add_argument("--version", action="version", version=f"gru {__version__}")
    commands = gru.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add, run in COMMANDS.values():
        command = add(commands)
        if run is not None:
            command.set_defaults(handler=run)
    return gru


# Exit codes: 0 done; 2 a bad input (as argparse's usage errors), the message says which;
# 1 a failure that is a bug in gru (Ctrl-C stops a command as it stops Python).
BAD_INPUT, BUG = 2, 1
SIGPIPE_EXIT = 128 + 13  # what a shell reports for a command its reader left (SIGPIPE)
DEBUG = "GRU_DEBUG"  # set to 1 to see the traceback of any error


def main(argv: list[str] | None = None) -> int:
    """Run the ``gru`` command line with ``argv`` (default: sys.argv[1:]); return the exit code.

    Every error is one line on stderr, ``gru: error: ...``, without a traceback unless the
    environment variable GRU_DEBUG is set; warnings are lines ``gru: warning: ...``.
    """
    args = parser().parse_args(argv)
    os.environ.setdefault("GRU_COMPILE", "wait")  # runs warm up first (`gru.ops.aside`)
    try:
        with warnings.catch_warnings(), options.threads(args):  # all restored at the end
            warnings.simplefilter("default", UserWarning)  # what gru warns of, once each
            warnings.showwarning = _show_warning
            return args.handler(args)
    except BrokenPipeError:  # the reader left (`gru generate ... | head`): stop quietly
        return _reader_left()
    except Exception as error:
        if os.environ.get(DEBUG):
            traceback.print_exc()
        code, message = _explain(error)
        print(f"gru: error: {message}", file=sys.stderr)
        return code


def _reader_left() -> int:
    """Exit as a command killed by SIGPIPE does, without the traceback Python would print.

    What is still buffered for stdout goes to /dev/null, so the flush at exit cannot fail again.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return SIGPIPE_EXIT


def _explain(error: Exception) -> tuple[int, str]:
    """(exit code, the line that tells what failed) of an error that ended a command."""
    from gru._extras import MissingExtra
    from gru.models import out_of_memory

    asked = out_of_memory(error)
    if asked is not None:
        asked = f" (an allocation of {asked})" if asked else ""
        return BAD_INPUT, (
            f"out of memory{asked}: the model or the batches are too large for this machine; "
            "try a smaller --hidden-size, --batch-size, --maxlen, --seq-len or --lookback"
        )
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        return BAD_INPUT, f"{error.strerror}: {error.filename!r}"  # without "[Errno N]"
    if isinstance(error, OSError) and error.strerror and error.errno is not None:
        return BAD_INPUT, error.strerror
    if isinstance(error, MissingExtra):  # an optional package to install, named by its extra
        return BAD_INPUT, str(error)
    if isinstance(error, ValueError | TypeError | OSError):  # FileNotFoundError is an OSError
        return BAD_INPUT, str(error)
    return BUG, (
        f"{type(error).__name__}: {error}. This is a bug in gru, not in what you asked: "
        f"please report it with the command that failed ({DEBUG}=1 shows where it happened)"
    )


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    text = str(message)  # the library's own warnings start with "gru: " for Python's output
    print(f"gru: warning: {text.removeprefix('gru: ')}", file=sys.stderr)
