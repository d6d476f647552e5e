"""One run folder's lifecycle, and what every task's config and class share.

A task's ``fit`` writes its run into one folder (see `gru.checkpoint`): config.json before
training, the weights and the resumable state while it trains, metrics.json, its figures and
report.html at the end. `RunFolder` holds that lifecycle so that each task states only what is
its own:

    run = self.run_folder(out, resume, checkpoint_every, device, quiet, log)  # fit's options
    run.check(config.to_dict(), {"source": source, "target": target})  # before any work
    run.say("data: ...")                  # progress, from the main process unless quiet
    run.start(config.to_dict(), data)     # a new run: the folder and its config.json
    result = run.train(model, loss, tensors, config.train, evaluate=...)  # gru.training.fit
    report = ForecastReport(**run.outcome(result), test=...)  # a RunReport
    run.finish(report, metrics)           # metrics.json and report.html

Every task's class is a `Task`: one constructor, ``Task(config=None, *, backend="auto",
**settings)``, and one `Task.load`, which reads a run of the task back (`load_run`,
`load_weights`). Errors name the Python argument (``out``, ``resume``) and, where a person
would type it, the command-line option.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from gru import __version__, checkpoint, training
from gru._io import atomic_write, leftovers, remove_leftovers
from gru.training import TrainConfig
from gru.viz import write_report

__all__ = [
    "RunFolder",
    "RunReport",
    "Task",
    "TaskConfig",
    "a_run",
    "apply_settings",
    "check_ints",
    "check_new_folder",
    "check_numbers",
    "config_from_dict",
    "differences",
    "least_val_loss",
    "load_run",
    "load_weights",
    "read_checked",
    "read_checked_bytes",
    "reading",
    "settled_config",
    "source_name",
]


# --- configs -------------------------------------------------------------------------------------


def config_from_dict(cls, values: dict, where: str):
    """A task config dataclass ``cls`` (with a ``train`` TrainConfig) from its `asdict`;
    unknown or missing settings raise ValueError, except those ``cls.ADDED_LATER`` names
    {setting: the value a run written before it had}."""
    values = {**getattr(cls, "ADDED_LATER", {}), **values}
    train = values.pop("train", None)
    names = {f.name for f in dataclasses.fields(cls)} - {"train"}
    unknown, missing = sorted(set(values) - names), sorted(names - set(values))
    if unknown or missing or not isinstance(train, dict):
        raise ValueError(
            f"{where}: does not describe a {cls.__name__} (unknown settings {unknown}, "
            f"missing {missing}); was it altered?"
        )
    if set(train) != {f.name for f in dataclasses.fields(TrainConfig)}:
        raise ValueError(f"{where}: its training settings are not a TrainConfig; was it altered?")
    return cls(**values, train=TrainConfig(**train))


class TaskConfig:
    """What every task config dataclass (with a ``train`` TrainConfig) has: to and from a dict
    of plain values, as config.json stores it. ``ADDED_LATER`` (a class attribute, not a
    setting) names the settings a config.json written before them lacks, with their value."""

    ADDED_LATER: ClassVar[dict] = {}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict, *, where: str = "config"):
        """The inverse of `to_dict`; unknown or missing settings raise ValueError."""
        return config_from_dict(cls, values, where)


def least_val_loss(epochs: int, batch_size: int, lr: float, **settings) -> Callable:
    """A factory of the default training of a task that keeps the weights of its epoch of
    least validation loss: ``epochs`` of ``batch_size`` at ``lr`` on a cosine schedule, with
    ``settings`` (more `TrainConfig` fields), for ``field(default_factory=...)``."""
    chosen = {"schedule": "cosine", "monitor": "val_loss", "mode": "min", "restore_best": True}
    return lambda: TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, **chosen, **settings)


def check_ints(owner: str, config, minimums: dict[str, int], *, optional=()) -> None:
    """ValueError naming the first setting of ``config`` in ``minimums`` that is not an int of
    at least its minimum; the names in ``optional`` may also be None."""
    for name, minimum in minimums.items():
        value = getattr(config, name)
        if value is None and name in optional:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            what = "a positive int" if minimum == 1 else f"an int ≥ {minimum}"
            raise ValueError(f"{owner}: {name} must be {what}, got {value!r}")


def check_numbers(owner: str, config, names) -> None:
    """TypeError naming the first setting of ``config`` in ``names`` that is not a real number
    (an int or float, not a bool), before its range is compared."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{owner}: {name} must be a number, got {value!r}")


def settled_config(config, cls, settings: dict, owner: str):
    """A task's checked config: ``config`` as given, or a ``cls`` made from ``settings`` (its
    own fields go to the constructor, so defaults that follow them follow them; training
    settings go to its TrainConfig); TypeError when both come or a name is unknown."""
    if config is None:
        own = {f.name for f in dataclasses.fields(cls)} - {"train"}
        config = cls(**{k: v for k, v in settings.items() if k in own})
        apply_settings(config, {k: v for k, v in settings.items() if k not in own}, owner)
    elif settings:
        raise TypeError(f"{owner}: give either config or settings by name, not both")
    config.check()
    return config


def apply_settings(config, settings: dict, owner: str) -> None:
    """Set each of ``settings`` on ``config`` or, for training settings, on ``config.train``;
    TypeError for a name that is neither."""
    own = {f.name for f in dataclasses.fields(config)} - {"train"}
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    for key, value in settings.items():
        if key in own:
            setattr(config, key, value)
        elif key in train_fields:
            setattr(config.train, key, value)
        else:
            raise TypeError(f"{owner}: unknown setting {key!r}")


def differences(a: dict, b: dict, prefix: str = "") -> list[tuple[str, object, object]]:
    """(key, a's value, b's value) for every setting that differs, nested keys dotted."""
    out = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            out += differences(x, y, f"{prefix}{key}.")
        elif x != y:
            out.append((f"{prefix}{key}", x, y))
    return out


def source_name(data, names: tuple[str, ...] = ()) -> str | None:
    """What a run records as its source: the absolute path of a file ``data``, ``data`` itself
    when it is one of ``names`` (data a task knows by name), None for data given as objects."""
    if not isinstance(data, (str, os.PathLike)):
        return None
    text = str(data)
    return text if text in names else os.path.abspath(text)


# --- reading runs back ---------------------------------------------------------------------------


def a_run(task, quoted: bool = True) -> str:
    """The words for a run of ``task``, with its article: "an 'anomaly' run", "a 'sentiment'
    run" (``quoted=False``: "an anomaly run"), the one way every message names one."""
    name = repr(task) if quoted else str(task)
    article = "an" if str(task)[:1].lower() in tuple("aeiou") else "a"
    return f"{article} {name} run"


def _check_task(stored: dict, task: str, run_dir, where: str) -> dict:
    """``stored`` (a config.json) if it is a run of ``task``: the one "is a … run" message."""
    if stored.get("task") != task:
        found, wanted = a_run(stored.get("task")), a_run(task, quoted=False)
        raise ValueError(f"{where}: {str(run_dir)!r} is {found}, not {wanted}")
    return stored


def load_run(run_dir, task: str, *, where: str = "run") -> dict:
    """The config.json of ``run_dir``, which must be a run of ``task`` (``where`` names the
    argument that gave the folder, in messages)."""
    return _check_task(checkpoint.load_config(run_dir), task, run_dir, where)


@contextmanager
def reading(run_dir) -> Iterator[None]:
    """Read a run's config.json inside this block: a setting it lacks (KeyError) or of the
    wrong kind (TypeError) becomes a ValueError naming the file."""
    try:
        yield
    except (KeyError, TypeError) as error:
        raise ValueError(
            f"run: config.json of {str(run_dir)!r} lacks {error} (was it altered?)"
        ) from None


def load_weights(model: nn.Module, run_dir, stored: dict, state: dict | None = None) -> None:
    """Load the run's model.safetensors (checked), or its already loaded ``state``, into
    ``model`` and set it to eval mode."""
    if state is None:
        state = checkpoint.load_model_state(run_dir, stored)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(
            f"run: model.safetensors of {str(run_dir)!r} does not fit its config.json: "
            f"{str(error).splitlines()[0]}"
        ) from None
    model.eval()


def read_checked(run_dir, name: str, sha256: str) -> str:
    """The text of the file ``name`` of a run folder, which must match the ``sha256`` its
    config.json records (`RunFolder.write_text`)."""
    return read_checked_bytes(run_dir, name, sha256).decode("utf-8")


def read_checked_bytes(run_dir, name: str, sha256: str) -> bytes:
    """The bytes of the file ``name`` of a run folder, which must match the ``sha256`` its
    config.json records (`RunFolder.write_bytes`)."""
    path = Path(run_dir) / name
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ValueError(f"run: cannot read {str(path)!r}: {error}") from None
    if _digest(data) != sha256:
        raise ValueError(
            f"run: {str(path)!r} was altered: it does not match the checksum in config.json"
        )
    return data


def _digest(data: str | bytes) -> str:
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


# --- one run folder ------------------------------------------------------------------------------


def check_new_folder(path: Path, name: str, hint: str = "") -> None:
    """ValueError "``name`` 'path' already exists and is not empty" (and ``hint``) unless
    ``path`` does not exist yet or is an empty folder: nothing is ever overwritten. A folder
    that holds nothing but the temporary files of killed writes (`gru._io.leftovers`, all
    that a run killed while writing its first file leaves) counts as empty. A file there is
    named as a file (ValueError "... is a file, not a folder")."""
    if path.exists() and not path.is_dir():
        raise ValueError(f"{name} {str(path)!r} is a file, not a folder; pick a new folder")
    if path.exists() and len(leftovers(path)) < len(list(path.iterdir())):
        raise ValueError(f"{name} {str(path)!r} already exists and is not empty{hint}")


def _silent(message: str) -> None:
    pass


@dataclass(kw_only=True)
class RunReport:
    """What every task's ``fit`` reports (each task's report adds its own results): the
    per-epoch ``history``, the epoch whose weights were kept, the seconds of the whole run
    and of training, and the run folder (None when nothing was written)."""

    history: list[dict[str, float]]
    best_epoch: int
    seconds: float
    training_seconds: float
    run_dir: Path | None


class RunFolder:
    """The run folder ``out`` of one ``fit`` of ``task`` (None: a run that writes nothing).

    ``owner`` names the method in messages ("Forecaster.fit"); the other arguments are the
    run options every task's ``fit`` takes, in its order, and hands on to `gru.training.fit`.
    Under torchrun only rank 0 writes and speaks: ``main`` says whether this process is it,
    ``world`` how many train. ``say`` is ``log`` on the main process unless ``quiet``.
    """

    def __init__(
        self,
        task: str,
        owner: str,
        out: str | os.PathLike | None = None,
        resume: bool = False,
        checkpoint_every: int | None = None,
        device: str = "cpu",
        quiet: bool = False,
        log: Callable[[str], object] = print,
    ) -> None:
        if resume and out is None:
            raise ValueError(f"{owner}: resume=True needs out, the run to resume")
        self.started = time.perf_counter()
        self.path = Path(out) if out is not None else None
        self.task, self.owner, self.resume = task, owner, resume
        self.checkpoint_every, self.device, self.quiet, self.log = (
            checkpoint_every,
            device,
            quiet,
            log,
        )
        self.rank, self.world = training.distributed(device)
        self.main = self.rank == 0
        self.say = log if (self.main and not quiet) else _silent
        self.pending: dict[str, bytes] = {}  # write_bytes's files of a new run, for `start`

    @property
    def writes(self) -> bool:
        """Whether this process writes the folder: there is one and this is the main process."""
        return self.path is not None and self.main

    def check(self, config: dict, data: dict | None = None) -> None:
        """Refuse, before any work, an ``out`` that exists and is not empty, or a run to
        resume that is not a run of this task with this ``config`` (``to_dict``) and ``data``
        (each value that is not None must be the run's)."""
        if not self.writes:
            return
        if not self.resume:
            hint = (
                f"; pick a new folder, or continue that run with --resume {self.path} "
                "(resume=True from Python)"
            )
            check_new_folder(self.path, f"{self.owner}: out", hint)
            return
        where = f"{self.owner}: resume"
        stored = load_run(self.path, self.task, where=where)
        changed = differences(stored.get("config", {}), config)
        if changed:
            raise ValueError(
                f"{where}: {str(self.path)!r} was trained with a different configuration: "
                + "; ".join(f"{k} was {a!r}, now {b!r}" for k, a, b in changed)
                + "; resume with the run's own settings or start a new run"
            )
        before = stored.get("data", {})
        for key, value in (data or {}).items():
            if value is not None and before.get(key) not in (None, value):
                what = "on" if key == "source" else f"with {key}"
                raise ValueError(
                    f"{where}: {str(self.path)!r} was trained {what} {before[key]!r}, not {value!r}"
                )

    def write_text(self, name: str, text: str) -> str:
        """Write ``text`` as the file ``name`` of the run (UTF-8, `write_bytes`); return its
        SHA-256, which `start` should record in config.json and `read_checked` checks."""
        return self.write_bytes(name, text.encode("utf-8"))

    def write_bytes(self, name: str, data: bytes) -> str:
        """Write ``data`` as the file ``name`` of the run; return its SHA-256, which `start`
        should record in config.json and `read_checked_bytes` checks.

        Call it before `start`, which writes config.json first and then this file, so that a
        folder without config.json never holds more than a killed write's temporary file. A
        resumed run writes the file if a kill left it unwritten, and refuses ``data`` other
        than what the run started with (its data changed)."""
        if not self.writes:
            return _digest(data)
        path = self.path / name
        if not self.resume:
            self.pending[name] = data
        elif not path.exists():
            atomic_write(path, lambda f: f.write(data))
        elif path.read_bytes() != data:
            raise ValueError(
                f"{self.owner}: resume: {name} of {str(self.path)!r} is not the one this data "
                "gives (was the data changed since the run started?); resume with the run's own "
                "data or start a new run"
            )
        return _digest(data)

    def start(self, config: dict, data: dict | None = None, **more) -> None:
        """Create the folder of a new run and write its config.json: the task, this version,
        the ``config`` (``to_dict``), the ``data`` it reads and ``more`` entries; then the files
        of `write_text`. A resumed run keeps the config.json it has."""
        if not self.writes or self.resume:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        remove_leftovers(self.path)  # of a start that was killed (`check_new_folder`)
        stored = {"task": self.task, "gru_version": __version__, "config": config}
        if data is not None:
            stored["data"] = data
        checkpoint.save_config(self.path, {**stored, **more})
        for name, data in self.pending.items():
            atomic_write(self.path / name, lambda f, data=data: f.write(data))
        self.pending.clear()

    def train(self, model: nn.Module, loss, tensors: tuple, config: TrainConfig, **options):
        """`gru.training.fit` of ``model`` in this run: checkpoints in its folder, resumed
        when it resumes, with its progress settings; ``options`` (evaluate, metrics, carry,
        sort_key) pass through. Returns the `gru.training.FitResult`."""
        return training.fit(
            model,
            loss,
            tensors,
            config,
            run_dir=self.path,
            resume=self.resume,
            checkpoint_every=self.checkpoint_every,
            quiet=self.quiet,
            device=self.device,
            log=self.log,
            **options,
        )

    def outcome(self, result: training.FitResult) -> dict:
        """The `RunReport` fields of a finished training ``result``, the seconds counted from
        this folder's creation."""
        return {
            "history": result.history,
            "best_epoch": result.best_epoch,
            "seconds": time.perf_counter() - self.started,
            "training_seconds": result.seconds,
            "run_dir": self.path,
        }

    def finish(self, report: RunReport | None, metrics: dict) -> None:
        """Write metrics.json, ``metrics`` with the history, best epoch, seconds and threads of
        ``report`` when given, and report.html (from the main process, when there is a
        folder); remove the temporary files that killed writes left."""
        if not self.writes:
            return
        if report is not None:
            metrics = {
                "history": report.history,
                "best_epoch": report.best_epoch,
                "seconds": report.seconds,
                "training_seconds": report.training_seconds,
                "threads": torch.get_num_threads(),
                **metrics,
            }
        checkpoint.write_json(self.path / checkpoint.METRICS_FILE, metrics)
        write_report(self.path)
        remove_leftovers(self.path)  # of writes killed in an earlier try of this run


# --- what every task's class shares --------------------------------------------------------------


class Task:
    """The base of every task's class: ``Task(config=None, *, backend="auto", **settings)``
    takes a whole config or its settings by name (`settled_config`); ``backend`` is passed to
    `gru.GRU` (speed only). A task names itself (``task``, as config.json and the CLI do) and
    its config class, builds its model (``_build_model``) and says what else it stores in
    config.json (``_restore``), so that `load` reads any of its runs back, every file checked.
    """

    task: str
    config_class: type
    model: nn.Module | None = None
    report: RunReport | None = None

    def __init__(self, config=None, *, backend: str = "auto", **settings) -> None:
        self.config = settled_config(config, self.config_class, settings, type(self).__name__)
        self.backend = backend

    def _build_model(self) -> nn.Module:
        raise NotImplementedError

    def _restore(self, stored: dict, run_dir: Path) -> dict | None:
        """Set what the task read besides its config from the run's config.json ``stored``;
        return the weights to load when the task took tensors of its own out of them (None:
        model.safetensors as it is)."""
        return None

    def run_folder(self, out, resume, checkpoint_every, device, quiet, log) -> RunFolder:
        """The `RunFolder` of this task's ``fit``, from the run options it takes."""
        owner = f"{type(self).__name__}.fit"
        return RunFolder(self.task, owner, out, resume, checkpoint_every, device, quiet, log)

    @classmethod
    def load(cls, run_dir: str | os.PathLike, *, backend: str = "auto"):
        """The trained task a run folder of it holds, every file checked (`gru.checkpoint`)."""
        stored = load_run(run_dir, cls.task)
        with reading(run_dir):
            config = cls.config_class.from_dict(stored["config"], where=f"config.json of {run_dir}")
            task = cls(config, backend=backend)
            state = task._restore(stored, Path(run_dir))
        task.model = task._build_model()
        load_weights(task.model, run_dir, stored, state)
        return task
