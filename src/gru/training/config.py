"""How to train (`TrainConfig`) and what training did (`FitResult`): the settings `fit` takes
and the record it returns, or the error of a run that diverged (`TrainingDiverged`)."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

from gru.training.precision import PRECISIONS

__all__ = ["OPTIMIZERS", "SCHEDULES", "FitResult", "TrainConfig", "TrainingDiverged"]

OPTIMIZERS = ("adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "cosine", "linear")


@dataclass
class TrainConfig:
    """How to train: every setting that changes the trained weights.

    ``schedule`` multiplies the learning rate by a factor that rises linearly from 0 over the
    first ``warmup`` fraction of all steps and then stays at 1 ("constant") or falls to 0 at
    the last step along a half cosine ("cosine") or a line ("linear"). ``precision`` "bf16"
    runs each step's forward under autocast to bfloat16, float32 master weights
    (`gru.training.precision`). ``monitor`` names a
    metric of ``evaluate`` ("val_accuracy"), better when larger with ``mode="max"``; training
    stops after ``patience`` epochs without improvement, and with ``restore_best`` it ends
    with (and saves) the weights of the best epoch.
    """

    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    eps: float = 1e-8
    clip_grad_norm: float | None = 1.0
    schedule: str = "constant"
    warmup: float = 0.0
    monitor: str | None = None
    mode: str = "max"
    patience: int | None = None
    restore_best: bool = False
    seed: int = 0
    precision: str = "fp32"

    def check(self) -> None:
        """Raise ValueError naming the first setting out of range."""
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig: {name} must be a positive int, got {value!r}")
        for name, zero_allowed in (("lr", False), ("eps", False), ("weight_decay", True)):
            value = getattr(self, name)
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
            ok = ok and math.isfinite(value) and (value > 0 or (zero_allowed and value == 0))
            if not ok:
                least = "≥ 0" if zero_allowed else "> 0"
                raise ValueError(
                    f"TrainConfig: {name} must be a finite number {least}, got {value!r}"
                )
        seed = self.seed  # what torch, NumPy and Python all take (the CLI's --seed too)
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
            raise ValueError(f"TrainConfig: seed must be an int from 0 to 2**63 - 1, got {seed!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"TrainConfig: optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}"
            )
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"TrainConfig: schedule must be one of {SCHEDULES}, got {self.schedule!r}"
            )
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"TrainConfig: warmup must be a fraction in [0, 1), got {self.warmup}")
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"TrainConfig: precision must be one of {PRECISIONS}, got {self.precision!r}"
            )
        if self.mode not in ("max", "min"):
            raise ValueError(f"TrainConfig: mode must be 'max' or 'min', got {self.mode!r}")
        if (self.patience is not None or self.restore_best) and self.monitor is None:
            raise ValueError("TrainConfig: patience and restore_best need a metric to monitor")
        if self.clip_grad_norm is not None and not self.clip_grad_norm > 0:
            raise ValueError(
                f"TrainConfig: clip_grad_norm must be positive or None, got {self.clip_grad_norm}"
            )


@dataclass
class FitResult:
    """What `fit` did: the per-epoch ``history`` (dicts of floats), the best epoch (by the
    monitored metric, else the last), whether early stopping ended it, and wall seconds."""

    history: list[dict[str, float]]
    best_epoch: int
    stopped_early: bool
    seconds: float
    steps: int
    resumed_at_step: int | None = None
    extra: dict = field(default_factory=dict)


class TrainingDiverged(ValueError):
    """Training stopped because its loss or its weights became NaN or infinite; the message
    says where and what to try, and the run folder keeps its last checkpoint before it.
    ``epoch``: the epoch it diverged in (None where not known)."""

    def __init__(self, message: str, epoch: int | None = None) -> None:
        super().__init__(message)
        self.epoch = epoch
