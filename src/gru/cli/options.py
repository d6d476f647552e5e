"""What the commands share: option types, the options every ``gru train TASK`` takes, the run
folder they train into, and the files the commands on a trained run write."""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from pathlib import Path

__all__ = [
    "OVERWRITE",
    "Parser",
    "add_data_option",
    "add_limit",
    "add_output_options",
    "add_overwrite",
    "add_run_on_csv",
    "add_series_options",
    "add_threads",
    "add_training_options",
    "count",
    "default_out",
    "examples",
    "fit",
    "is_main_process",
    "needs",
    "output_paths",
    "overlay",
    "positive_float",
    "positive_int",
    "ran",
    "seed",
    "threads",
    "train_config",
    "warn",
    "write_csv",
]

EXAMPLES = "examples:"  # how an epilog of examples starts (`examples`); kept as written


class Formatter(argparse.HelpFormatter):
    """argparse's help, with an epilog of `examples` kept line by line as written (as
    argparse's RawDescriptionHelpFormatter keeps every text) and the descriptions wrapped."""

    def _fill_text(self, text, width, indent):
        if text.startswith(EXAMPLES):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class Parser(argparse.ArgumentParser):
    """The parser of ``gru`` and of each command (subcommands take their parent's class):
    `Formatter`'s help, and the options `add_data_option` marks required unless the command
    resumes a run (--resume), whose folder holds them."""

    def __init__(self, *args, formatter_class=Formatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)
        self.resumed_run_has: list[argparse.Action] = []

    def parse_known_args(self, args=None, namespace=None):
        words = [w.split("=", 1)[0] for w in ([] if args is None else args)]
        if any(len(w) >= 4 and "--resume".startswith(w) for w in words):  # argparse's prefixes
            for action in self.resumed_run_has:
                action.required = False
        return super().parse_known_args(args, namespace)


def examples(*commands: str) -> str:
    """An epilog of a command's help: ``commands``, real invocations, one a line."""
    return "\n".join((EXAMPLES, *(f"  {command}" for command in commands)))


def add_data_option(parser: Parser, *names: str, help: str, **kwargs) -> argparse.Action:
    """An option every new run of ``gru train TASK`` requires (--csv, --target, ...): required
    (shown in the usage without brackets), except under --resume, which reads the run's own."""
    action = parser.add_argument(
        *names, required=True, help=f"{help} (required; --resume reads the run's own)", **kwargs
    )
    parser.resumed_run_has.append(action)
    return action


LIMITS = {  # what --limit N keeps, by what a task reads
    "rows": "use only the first N rows of the CSV (quick runs)",
    "characters": "use only the first N characters (quick runs)",
    "reviews": "use at most N training and N test reviews (quick runs)",
    "pairs": "use only the first N sentence pairs of each split (quick runs)",
}


def add_limit(parser, unit: str) -> None:
    """--limit N of a task that reads data: at most N of its ``unit`` (a key of `LIMITS`)."""
    parser.add_argument("--limit", type=positive_int, metavar="N", help=LIMITS[unit])


def warn(message: str) -> None:
    """A warning of a command: the line ``gru: warning: <message>`` (`gru.cli.commands.main`)."""
    import warnings

    warnings.warn(message, UserWarning, stacklevel=2)


def count(n: int, noun: str) -> str:
    """'1 epoch', '3 epochs'."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < math.inf:  # NaN fails both
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {value}")
    return value


SEEDS = 2**63  # a seed is an int in [0, 2**63): what torch, NumPy and Python all take


def seed(text: str) -> int:
    value = int(text)
    if not 0 <= value < SEEDS:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to 2**63 - 1, got {value}")
    return value


OVERWRITE = "--overwrite"  # how a command is asked to replace an existing file


def add_overwrite(parser: argparse.ArgumentParser, what: str) -> None:
    """--overwrite: let the command replace ``what`` (its files) when they exist already."""
    parser.add_argument(
        OVERWRITE,
        action="store_true",
        help=f"replace {what} if it exists (it is never one of the command's inputs); without "
        "it an existing file is refused",
    )


def add_threads(parser: argparse.ArgumentParser) -> None:
    """--threads N of every command that computes (read by `threads`)."""
    parser.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="compute on N threads, torch's and the CPU engine's (default: one per core less "
        "the cores other programs keep busy when the command starts, or GRU_THREADS)",
    )


def threads(args):
    """The context a command runs in: a command that computes runs on --threads N threads, or
    without it on `gru.ops.threads.default_threads` (fewer than the cores when other programs
    keep some busy); torch's and the engine's thread counts restored after it."""
    import contextlib

    if not hasattr(args, "threads"):
        return contextlib.nullcontext()
    from gru.ops.threads import default_threads
    from gru.ops.threads import threads as computing_on

    return computing_on(args.threads if args.threads is not None else default_threads())


# --- gru train TASK ------------------------------------------------------------------------------


def add_training_options(parser: argparse.ArgumentParser, defaults: dict) -> None:
    """The options every ``gru train TASK`` shares; ``defaults`` names each one's default."""
    from gru.ops import BACKENDS
    from gru.training.precision import PRECISIONS

    group = parser.add_argument_group("training (every task)")
    group.add_argument(
        "--out",
        metavar="RUN_DIR",
        help="where the run folder goes; it must not exist yet or be empty "
        "(default: a new folder under runs/)",
    )
    group.add_argument(
        "--epochs", type=positive_int, help=f"passes over the data (default {defaults['epochs']})"
    )
    group.add_argument(
        "--batch-size",
        type=positive_int,
        help=f"sequences per step, per process (default {defaults['batch_size']})",
    )
    group.add_argument(
        "--lr",
        type=positive_float,
        help=f"the optimizer's learning rate (default {defaults['lr']})",
    )
    group.add_argument("--seed", type=seed, help="seed of every random choice (default 0)")
    group.add_argument(
        "--backend",
        choices=BACKENDS,
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
        type=positive_int,
        metavar="STEPS",
        help="also checkpoint every STEPS optimizer steps (always after every epoch)",
    )
    group.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="where to train; under torchrun, cuda gives each process its own GPU (default cpu)",
    )
    group.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="fp32, or bf16: each training step's products in bfloat16 under autocast, the "
        "weights, gradients and optimizer in float32, scores computed in float32; faster on "
        "CPUs with bfloat16 matrix units (AMX) (default fp32)",
    )
    group.add_argument("--quiet", action="store_true", help="no progress bar or epoch lines")
    add_threads(group)


def add_series_options(parser: argparse.ArgumentParser) -> None:
    """How a CSV series is read: its time column, missing values, the split."""
    from gru.data.timeseries import FILLNA, SPLITS

    parser.add_argument(
        "--time-column",
        metavar="COL",
        help="the column of timestamps (default: one named date, time, timestamp, month, ...)",
    )
    parser.add_argument(
        "--fillna",
        choices=FILLNA,
        help="fill missing values: the last value before the gap, a line across it, or 0 "
        "(default: refuse data with missing values)",
    )
    parser.add_argument(
        "--split",
        choices=SPLITS,
        help="chronological train/validation/test: 70/10/20 of the rows (ratio, the "
        "default) or the ETT benchmark's 12/4/4 months (ett)",
    )


def default_out(task: str) -> Path:
    """A new folder under runs/ named for the task and the time, for a run without --out."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path("runs") / f"{task}-{stamp}"
    n = 2
    while out.exists():
        out, n = Path("runs") / f"{task}-{stamp}-{n}", n + 1
    return out


def run_folder(args, task: str) -> tuple[Path, bool]:
    """(the run folder, whether to resume it) from --out and --resume."""
    if args.resume is not None:
        if args.out is not None and Path(args.out).resolve() != Path(args.resume).resolve():
            raise ValueError(
                f"--out {args.out} and --resume {args.resume} name different folders; a resumed "
                "run stays in its folder"
            )
        return Path(args.resume), True
    if args.out is not None:
        out = Path(args.out)
        found = next((p for p in (out, *out.parents) if p.exists()), None)
        if found is not None and found != out and not found.is_dir():
            raise NotADirectoryError(
                f"--out: {args.out!r} cannot be a run folder: {str(found)!r} is a file, not a "
                "folder"
            )
        return out, False
    return default_out(task), False


def train_config(args, task, fresh=None, *, fresh_on_resume: bool = False):
    """(config, run folder, resume?, the stored run's data) for ``gru train TASK`` of the
    `gru.tasks.runs.Task` class ``task``: a resumed run starts from its own config.json
    (unless ``fresh_on_resume``), a new one from ``fresh()`` (default: the config class's
    defaults), and every option given that names a setting is laid over it (`overlay`)."""
    from gru.tasks.runs import load_run

    out, resume = run_folder(args, task.task)
    stored = {}
    if resume and not fresh_on_resume:
        record = load_run(out, task.task, where="--resume")
        config = task.config_class.from_dict(record["config"], where=f"config.json of {out}")
        stored = record.get("data", {})
    else:
        config = (fresh or task.config_class)()
    overlay(config, args)
    overlay(config.train, args)
    return config, out, resume, stored


def overlay(config, args) -> None:
    """Set every setting of the dataclass ``config`` that an option given on the command line
    names (its ``dest``), except ``train``."""
    for setting in dataclasses.fields(config):
        value = getattr(args, setting.name, None)
        if setting.name != "train" and value is not None:
            setattr(config, setting.name, value)


def needs(value, option: str, stored: dict, key: str):
    """``value`` given as ``option``, else the resumed run's own (``stored[key]``)."""
    if value is not None:
        return value
    if stored.get(key) is not None:
        return stored[key]
    raise ValueError(f"{option} is required")


def fit(args, task, config, out: Path, resume: bool, *inputs, **options):
    """The report of ``task(config).fit(*inputs, **options)`` with the run options every
    ``gru train`` command shares (--backend, --checkpoint-every, --quiet, --device)."""
    trained = task(config, backend=args.backend)
    shared = {"checkpoint_every": args.checkpoint_every, "quiet": args.quiet}
    return trained.fit(*inputs, out=out, resume=resume, device=args.device, **shared, **options)


def is_main_process() -> bool:
    """Whether this process prints the results (rank 0 under torchrun)."""
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def ran(out: Path, report, time: str | None = None) -> bool:
    """In the process that prints (rank 0 under torchrun), print the run folder and ``time``
    (default: the epochs, the seconds of training and of the whole run) and return True;
    elsewhere print nothing and return False."""
    if not is_main_process():
        return False
    if time is None:
        time = (
            f"{count(len(report.history), 'epoch')} in {report.training_seconds:.1f} s of "
            f"training, {report.seconds:.1f} s for the whole run"
        )
    print(f"run folder: {out}")
    print(f"time: {time}")
    return True


# --- commands on a trained run -------------------------------------------------------------------


def add_run_on_csv(parser, prefix: str, *, run: str, csv: str) -> None:
    """--run (``run`` says what folder) and --csv (``csv``: what series) of a command that
    writes what a trained run makes of a CSV as ``prefix``-<name of the CSV>.csv and a PNG
    (`add_output_options`, `output_paths`)."""
    parser.set_defaults(prefix=prefix)
    parser.add_argument("--run", required=True, metavar="RUN_DIR", help=run)
    parser.add_argument("--csv", required=True, metavar="PATH", help=csv)


def add_output_options(parser, writes: str) -> None:
    """--out, --overwrite and --fillna of a command of `add_run_on_csv`: where it ``writes``
    ("the … go, the plot"), whether it may replace them, how the CSV's missing values are
    filled. --output, the old name of --out, still works (hidden from the help)."""
    from gru.data.timeseries import FILLNA

    prefix = parser.get_default("prefix")
    parser.add_argument(
        "--out",
        metavar="FILE.csv",
        help=f"where {writes} beside it as .png (default: RUN_DIR/{prefix}-<name of the CSV>.csv)",
    )
    parser.add_argument("--output", dest="old_out", metavar="FILE.csv", help=argparse.SUPPRESS)
    add_overwrite(parser, "the CSV and the plot")
    parser.add_argument(
        "--fillna",
        choices=FILLNA,
        help="fill missing values of the CSV (default: the run's setting)",
    )


def output_paths(args) -> tuple[Path, Path]:
    """(the CSV to write, the PNG beside it) of a command on a trained run: --out (or its old
    name --output), else RUN_DIR/<the command's prefix>-<name of the CSV>.csv. Neither may be
    the --csv read, nor exist already unless --overwrite (`gru._io.check_destination`)."""
    from gru._io import check_destination

    given = args.out
    if args.old_out is not None:
        if given is not None:
            raise ValueError("give --out or its old name --output, not both")
        warn("--output is the old name of --out; it still works, but write --out")
        given = args.old_out
    output = (
        Path(given)
        if given is not None
        else Path(args.run) / f"{args.prefix}-{Path(args.csv).stem}.csv"
    )
    if output.suffix.lower() != ".csv":
        raise ValueError(f"--out: {str(output)!r} must be a .csv file")
    name = "--out" if given is not None else "--out (by default)"
    check = {"inputs": {"--csv": args.csv}, "overwrite": args.overwrite, "replace": OVERWRITE}
    picture = output.with_suffix(".png")
    check_destination(output, name, **check)
    check_destination(picture, f"{name}'s plot", **check)
    return output, picture


def write_csv(frame, path: Path) -> None:
    """Write a pandas DataFrame as CSV, atomically."""
    from gru._io import atomic_write

    text = frame.to_csv()
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
