"""The adding problem: a GRU learns to remember two marked values across a long sequence."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from gru.data.synthetic import adding_problem
from gru.models import SequenceRegressor
from gru.training import TrainConfig, fit

__all__ = ["AddingConfig", "AddingResult", "run"]


@dataclass
class AddingConfig:
    seq_len: int = 50
    hidden_size: int = 32
    n_train: int = 20_000
    n_test: int = 2_000
    batch_size: int = 64
    seed: int = 0
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=4, lr=3e-3))


@dataclass
class AddingResult:
    baseline_mse: float  # predicting the training targets' mean for every test sequence
    test_mse: float
    history: list[dict[str, float]]
    model: SequenceRegressor


def run(config: AddingConfig, log=print) -> AddingResult:
    """Train a GRU on the adding problem and measure its test MSE against the mean baseline."""
    for name in ("seq_len", "hidden_size", "n_train", "n_test", "batch_size"):
        value = getattr(config, name)
        if value < (2 if name == "seq_len" else 1):
            raise ValueError(f"adding: {name} must be positive, got {value}")
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    x_train, y_train = adding_problem(config.n_train, config.seq_len, generator=generator)
    x_test, y_test = adding_problem(config.n_test, config.seq_len, generator=generator)
    baseline = F.mse_loss(torch.full_like(y_test, float(y_train.mean())), y_test).item()
    if not config.train.quiet:
        log(
            f"adding problem: T={config.seq_len}, {config.n_train} training sequences, "
            f"baseline test MSE {baseline:.4f} (predict the mean)"
        )

    model = SequenceRegressor(2, config.hidden_size)

    def batches(epoch: int) -> list:
        order = torch.randperm(config.n_train, generator=generator)
        return [(x_train[i], y_train[i]) for i in order.split(config.batch_size)]

    def evaluate(model) -> dict[str, float]:
        return {"test_mse": F.mse_loss(model(x_test), y_test).item()}

    history = fit(model, F.mse_loss, batches, config.train, evaluate=evaluate, log=log)
    return AddingResult(baseline, history[-1]["test_mse"], history, model)
