"""The adding problem: a GRU learns to remember two marked values across a long sequence."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from gru import __version__, checkpoint
from gru.data.synthetic import adding_problem
from gru.models import SequenceRegressor
from gru.training import TrainConfig, fit
from gru.viz.report import write_report

__all__ = ["AddingConfig", "AddingResult", "load", "run"]


@dataclass
class AddingConfig:
    """The adding problem's size, the model's width and how to train it."""

    seq_len: int = 50
    hidden_size: int = 32
    n_train: int = 20_000
    n_test: int = 2_000
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(epochs=4, batch_size=64, lr=3e-3)
    )


@dataclass
class AddingResult:
    baseline_mse: float  # predicting the training targets' mean for every test sequence
    test_mse: float
    history: list[dict[str, float]]
    model: SequenceRegressor
    seconds: float


def _build(config: AddingConfig, backend: str) -> SequenceRegressor:
    return SequenceRegressor(2, config.hidden_size, backend=backend)


def run(
    config: AddingConfig,
    *,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    checkpoint_every: int | None = None,
    quiet: bool = False,
    backend: str = "auto",
    log=print,
) -> AddingResult:
    """Train a GRU on the adding problem and measure its test MSE against the mean baseline.

    With ``out`` the run folder is written there (see `gru.training.fit`); ``resume`` continues
    it, which must have been started with the same config.
    """
    for name in ("seq_len", "hidden_size", "n_train", "n_test"):
        value = getattr(config, name)
        if value < (2 if name == "seq_len" else 1):
            raise ValueError(f"adding: {name} must be positive, got {value}")
    out = Path(out) if out is not None else None
    run_config = {"task": "adding", "gru_version": __version__, "config": asdict(config)}
    if out is not None and resume:
        stored = checkpoint.load_config(out)
        if stored.get("task") != "adding" or stored.get("config") != run_config["config"]:
            raise ValueError(
                f"--resume: {str(out)!r} was trained with a different configuration "
                f"({stored.get('config')}); resume with the run's own settings"
            )
    elif out is not None:
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise ValueError(f"--out: {str(out)!r} already exists and is not empty")
        out.mkdir(parents=True, exist_ok=True)
        checkpoint.save_config(out, run_config)

    generator = torch.Generator().manual_seed(config.train.seed)
    x_train, y_train = adding_problem(config.n_train, config.seq_len, generator=generator)
    x_test, y_test = adding_problem(config.n_test, config.seq_len, generator=generator)
    baseline = F.mse_loss(torch.full_like(y_test, float(y_train.mean())), y_test).item()
    if not quiet:
        log(
            f"adding problem: T={config.seq_len}, {config.n_train} training sequences, "
            f"baseline test MSE {baseline:.4f} (predict the mean)"
        )

    torch.manual_seed(config.train.seed)
    model = _build(config, backend)

    def evaluate(model) -> dict[str, float]:
        return {"test_mse": F.mse_loss(model(x_test), y_test).item()}

    result = fit(
        model,
        F.mse_loss,
        (x_train, y_train),
        config.train,
        evaluate=evaluate,
        run_dir=out,
        resume=resume,
        checkpoint_every=checkpoint_every,
        quiet=quiet,
        log=log,
    )
    test_mse = result.history[-1]["test_mse"]
    if out is not None:
        model.eval()
        with torch.no_grad():
            predictions = model(x_test[:6])  # (6,)
        rows = [
            [", ".join(f"{v:.3f}" for v in x[x[:, 1] == 1, 0].tolist()), float(y), float(p)]
            for x, y, p in zip(x_test[:6], y_test[:6], predictions, strict=True)
        ]
        examples = {"columns": ["marked values", "their sum", "prediction"], "rows": rows}
        checkpoint.write_json(
            out / checkpoint.METRICS_FILE,
            {
                "history": result.history,
                "test": {"mse": test_mse},
                "baselines": {"predict the mean": {"mse": baseline}},
                "data": {
                    "sequence length": config.seq_len,
                    "training sequences": config.n_train,
                    "test sequences": config.n_test,
                },
                "examples": examples,
                "training_seconds": result.seconds,
            },
        )
        write_report(out)
    return AddingResult(baseline, test_mse, result.history, model, result.seconds)


def load(run_dir: str | os.PathLike) -> SequenceRegressor:
    """The model an adding run folder holds."""
    stored = checkpoint.load_config(run_dir)
    if stored["task"] != "adding":
        raise ValueError(f"run: {str(run_dir)!r} is a {stored['task']!r} run, not adding")
    config = stored["config"]
    model = SequenceRegressor(2, config["hidden_size"])
    model.load_state_dict(checkpoint.load_model_state(run_dir, stored))
    return model.eval()
