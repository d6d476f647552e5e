"""The adding problem: a GRU learns to remember two marked values across a long sequence.

Each sequence holds T pairs (value in [0, 1), marker): one value in each half is marked and the
target is their sum (Hochreiter & Schmidhuber 1997). Predicting the training targets' mean for
every sequence scores an MSE of about 1/6; a model that remembers scores far less. Training
watches the MSE on validation sequences (drawn apart from the test ones) and keeps the weights
of its best epoch; the test sequences are scored once, at the end.

    adder = Adder(seq_len=100)                 # settings by name, or Adder(AddingConfig(...))
    result = adder.fit(out="runs/adding")      # test MSE beside the mean's
    Adder.load("runs/adding").predict(x)       # x (B, T, 2) -> the sums (B,)

Shapes: B sequences, T = seq_len.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import partial
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from gru.data.synthetic import adding_problem
from gru.models import SequenceRegressor, build
from gru.tasks import runs
from gru.tasks.baselines import training_mean
from gru.training import TrainConfig

__all__ = ["Adder", "AddingConfig", "AddingResult", "load", "run"]

EXAMPLES = 6  # test sequences shown in the report


@dataclass
class AddingConfig(runs.TaskConfig):
    """The adding problem's size, the model's width and how to train it."""

    seq_len: int = 50
    hidden_size: int = 32
    n_train: int = 20_000
    n_test: int = 2_000
    n_val: int = 1_000  # what training watches: progress and the epoch whose weights are kept
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            epochs=4, batch_size=64, lr=3e-3, monitor="val_mse", mode="min", restore_best=True
        )
    )
    ADDED_LATER: ClassVar[dict] = {
        "n_val": 1_000
    }  # a run folder written before the validation split

    def check(self) -> None:
        """Raise ValueError naming the first setting out of range."""
        minimums = {"seq_len": 2, "hidden_size": 1, "n_train": 1, "n_test": 1, "n_val": 1}
        runs.check_ints("AddingConfig", self, minimums)
        self.train.check()


@dataclass
class AddingResult:
    """The outcome of `Adder.fit`: the test MSE beside the mean's, the training history
    (``val_mse`` per epoch), the epoch whose weights were kept, the seconds of training
    (``seconds``) and of the whole run (``run_seconds``)."""

    baseline_mse: float  # predicting the training targets' mean for every test sequence
    test_mse: float
    history: list[dict[str, float]]
    model: SequenceRegressor
    seconds: float
    best_epoch: int | None = None
    run_seconds: float | None = None


class Adder(runs.Task):
    """A GRU that reads a sequence of (value, marker) pairs and outputs the sum of the two
    marked values. Settings by name (`AddingConfig` and `TrainConfig` fields) or a whole
    ``config``; ``backend`` is passed to `gru.GRU` (speed only)."""

    task = "adding"
    config_class = AddingConfig
    model: SequenceRegressor | None = None

    def _build_model(self) -> SequenceRegressor:
        make = partial(SequenceRegressor, 2, self.config.hidden_size, backend=self.backend)
        return build(make, "Adder", "hidden_size (--hidden-size)")

    def data(self) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
        """((x, y) training, (x, y) test) of the config's size, drawn from its seed."""
        return self.splits()[:2]

    def splits(self) -> tuple[tuple[Tensor, Tensor], ...]:
        """((x, y) training, test, validation), drawn from the config's seed in that order
        (so training and test sequences are those of runs made before the validation split)."""
        c = self.config
        generator = torch.Generator().manual_seed(c.train.seed)
        sizes = (c.n_train, c.n_test, c.n_val)
        return tuple(adding_problem(n, c.seq_len, generator=generator) for n in sizes)

    def fit(
        self,
        *,
        out: str | os.PathLike | None = None,
        resume: bool = False,
        checkpoint_every: int | None = None,
        quiet: bool = False,
        device: str = "cpu",
        log=print,
    ) -> AddingResult:
        """Train on the adding problem and measure the test MSE against the mean baseline.

        With ``out`` the run folder is written there (it must not exist yet or be empty,
        unless ``resume`` continues it, which must have been started with the same config).
        """
        c = self.config
        c.check()
        run = self.run_folder(out, resume, checkpoint_every, device, quiet, log)
        run.check(c.to_dict())
        (x_train, y_train), (x_test, y_test), (x_val, y_val) = self.splits()
        baseline = F.mse_loss(training_mean(y_train, y_test), y_test).item()
        run.say(
            f"adding problem: T={c.seq_len}, {c.n_train} training and {c.n_val} validation "
            f"sequences, baseline test MSE {baseline:.4f} (predict the mean)"
        )
        torch.manual_seed(c.train.seed)
        self.model = self._build_model()
        run.start(c.to_dict())  # once the data and the model are made: nothing left to refuse
        evaluate = lambda model: {"val_mse": F.mse_loss(model(x_val), y_val).item()}
        result = run.train(self.model, F.mse_loss, (x_train, y_train), c.train, evaluate=evaluate)
        test_mse = self.evaluate(x_test, y_test)["mse"]  # once, with the weights kept
        if run.writes:
            run.finish(
                None,
                {
                    "history": result.history,
                    "test": {"mse": test_mse},
                    "validation": {"mse": result.history[result.best_epoch - 1]["val_mse"]},
                    "baselines": {"predict the mean": {"mse": baseline}},
                    "data": {
                        "sequence length": c.seq_len,
                        "training sequences": c.n_train,
                        "validation sequences": c.n_val,
                        "test sequences": c.n_test,
                    },
                    "examples": self._examples(x_test[:EXAMPLES], y_test[:EXAMPLES]),
                    "training_seconds": result.seconds,
                },
            )
        outcome = run.outcome(result)
        return AddingResult(
            baseline, test_mse, result.history, self.model, result.seconds,
            result.best_epoch, outcome["seconds"],
        )  # fmt: skip

    def _examples(self, x: Tensor, y: Tensor) -> dict:
        """The marked values, their sum and the prediction of a few test sequences."""
        predictions = self.predict(x)  # (B,)
        rows = [
            [", ".join(f"{v:.3f}" for v in s[s[:, 1] == 1, 0].tolist()), float(t), float(p)]
            for s, t, p in zip(x, y, predictions, strict=True)
        ]
        return {"columns": ["marked values", "their sum", "prediction"], "rows": rows}

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        """The predicted sums (B,) of the sequences x (B, T, 2), in eval mode."""
        if self.model is None:
            raise ValueError("Adder.predict: fit or load a model first")
        self.model.eval()
        return self.model(x)

    @torch.no_grad()
    def evaluate(self, x: Tensor, y: Tensor) -> dict[str, float]:
        """{"mse": the mean squared error of the predictions of x (B, T, 2) against y (B,)}."""
        if self.model is None:
            raise ValueError("Adder.evaluate: fit or load a model first")
        return {"mse": F.mse_loss(self.predict(x), y).item()}


def run(config: AddingConfig, *, backend: str = "auto", **options) -> AddingResult:
    """`Adder` ``(config, backend=backend).fit(**options)`` (out, resume, checkpoint_every,
    quiet, device, log): the adding task's first form, kept."""
    return Adder(config, backend=backend).fit(**options)


def load(run_dir: str | os.PathLike) -> SequenceRegressor:
    """The model an adding run folder holds (`Adder.load` ``(run_dir).model``)."""
    return Adder.load(run_dir).model
