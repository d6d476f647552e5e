"""What the tasks share about configs and run folders."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from torch import nn

from gru import checkpoint
from gru.training import TrainConfig


def config_from_dict(cls, values: dict, where: str):
    """A task config dataclass ``cls`` (with a ``train`` TrainConfig) from its `asdict`;
    unknown or missing settings raise ValueError."""
    values = dict(values)
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
    of plain values, as config.json stores it."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict, *, where: str = "config"):
        """The inverse of `to_dict`; unknown or missing settings raise ValueError."""
        return config_from_dict(cls, values, where)


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


def settled_config(config, default, settings: dict, owner: str):
    """A task's checked config: ``config`` as given, or ``default()`` with ``settings`` (by
    name) applied; TypeError when both come."""
    if config is None:
        config = default()
        apply_settings(config, settings, owner)
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


def load_run(run_dir, task: str) -> dict:
    """The config.json of ``run_dir``, which must be a run of ``task``."""
    stored = checkpoint.load_config(run_dir)
    if stored["task"] != task:
        raise ValueError(f"run: {str(run_dir)!r} is a {stored['task']!r} run, not a {task} run")
    return stored


def load_weights(model: nn.Module, run_dir, stored: dict) -> None:
    """Load the run's model.safetensors into ``model`` (checked) and set it to eval mode."""
    state = checkpoint.load_model_state(run_dir, stored)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(
            f"run: model.safetensors of {str(run_dir)!r} does not fit its config.json: "
            f"{str(error).splitlines()[0]}"
        ) from None
    model.eval()


def check_out(out: Path) -> None:
    """Refuse an --out folder that exists and is not empty (nothing is overwritten)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(
            f"--out: {str(out)!r} already exists and is not empty; pick a new folder, "
            f"or continue that run with --resume {out}"
        )


def check_resume(out: Path, task: str, config: dict, data: dict) -> None:
    """Refuse to resume ``out`` unless it is a ``task`` run with this ``config`` and data
    (each key of ``data`` that is not None must match the run's)."""
    stored = checkpoint.load_config(out)
    if stored.get("task") != task:
        raise ValueError(f"--resume: {str(out)!r} is a {stored.get('task')!r} run, not {task}")
    changed = differences(stored.get("config", {}), config)
    if changed:
        raise ValueError(
            f"--resume: {str(out)!r} was trained with a different configuration: "
            + "; ".join(f"{k} was {a!r}, now {b!r}" for k, a, b in changed)
            + "; resume with the run's own settings or start a new run"
        )
    before = stored.get("data", {})
    for key, value in data.items():
        if value is not None and before.get(key) not in (None, value):
            raise ValueError(
                f"--resume: {str(out)!r} was trained with {key} {before[key]!r}, not {value!r}"
            )


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
