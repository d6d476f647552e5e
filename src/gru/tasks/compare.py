"""The seeds' "GRU vs LSTM vs RNN" comparison, measured: six recurrent layers trained on the same
data with the same budget, side by side.

The layers (`MODELS`, the one factory table): a plain RNN (torch.nn.RNN, tanh), torch.nn.LSTM,
torch.nn.GRU, gru.GRU, gru.GRU(layer_norm=True) and gru.MinGRU. The tasks (`TASKS`):

- ``adding-100``, ``adding-400``: the adding problem at T = 100 and 400 (long-term memory):
  the layer reads (value, marker) pairs and a linear layer maps its last state to the sum of
  the two marked values. Metric: test MSE; predicting the mean scores 2/12 ≈ 0.167.
- ``imdb``: the seeds' IMDB model, Embedding(10000, 32) -> layer(32) -> Dense(1), on reviews
  cut to their last 100 words (Keras's pad_sequences), Adam (lr 1e-3, eps 1e-7), batch 32.
  Metric: test accuracy. Needs the data (any source `gru.data.imdb.load` reads).
- ``etth1``: ETTh1, all 7 channels, 96 hours -> the next 96 (the ETT split, standardized on
  the training months): the layer reads the window less its last value, a linear layer maps
  its last state to the 96 × 7 forecast. Metric: test MSE (standardized); the target is
  half the validation MSE of repeating the last value. Needs the CSV.

Every model of a task gets the same data, seed, optimizer, epochs and batches. Per model
the table gives: parameters; training seconds per epoch (the validation pass not counted);
inference latency for one sequence (batch 1, the whole model) and for one streaming step of
the recurrent layer (batch 1: `stream()` for gru's layers, a one-step call with the state
carried for torch's); the final test metric; and the training steps after which the
validation metric first reached the task's target (checked after every epoch, so a multiple
of the steps per epoch), of all the steps trained.

    result = run(CompareConfig(tasks=["adding-100"], models=["lstm", "gru"], quick=True))
    print(result.table)

Shapes: B batch, T time steps, I input features, H hidden units, C channels, F horizon.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gru import checkpoint
from gru.models import (
    GRUForecaster,
    LayerFactory,
    SequenceRegressor,
    TextClassifier,
    batched_predict,
    gru_layer,
)
from gru.nn import MinGRU
from gru.tasks.baselines import persistence, training_mean
from gru.tasks.evaluation import binary_scores
from gru.tasks.runs import check_ints, check_new_folder
from gru.tasks.timing import NOISY, latencies, readable
from gru.training import TrainConfig, fit

__all__ = ["MODELS", "TASKS", "CompareConfig", "CompareResult", "run"]


# --- the layers ------------------------------------------------------------------------------

# name: (what it is, a `gru.models.LayerFactory`: (I, H, **options) -> a batch-first layer
# returning (output, state)). Every task builds the same model of `gru.models` on each.
MODELS: dict[str, tuple[str, LayerFactory]] = {
    "rnn": ("torch.nn.RNN (tanh)", partial(nn.RNN, batch_first=True)),
    "lstm": ("torch.nn.LSTM", partial(nn.LSTM, batch_first=True)),
    "torch-gru": ("torch.nn.GRU", partial(nn.GRU, batch_first=True)),
    "gru": ("gru.GRU", gru_layer()),
    "gru-ln": ("gru.GRU(layer_norm=True)", gru_layer(layer_norm=True)),
    "mingru": ("gru.MinGRU", partial(MinGRU, batch_first=True)),
}


# --- the tasks -------------------------------------------------------------------------------


@dataclass
class _Problem:
    """One task made concrete: data, how to build and train a model, how to score it."""

    build: Callable[[str], nn.Module]  # name in MODELS -> the task's model on that layer
    loss: Callable[[Tensor, Tensor], Tensor]
    train: tuple  # the tensors `fit` trains on: inputs, then the target
    train_config: TrainConfig
    validate: Callable[[nn.Module], float]  # the metric on the validation data
    test: Callable[[nn.Module], float]  # the metric on the test data
    example: Tensor  # one input sequence (1, T, …) for the latency
    input_size: int  # what the recurrent layer reads per step
    metric: str  # "mse" or "accuracy"
    target: float  # the validation metric to reach
    description: str
    baseline: float = float("nan")  # the test metric of no model (`_no_model`)


def _mse(model: nn.Module, x: Tensor, y: Tensor) -> float:
    return F.mse_loss(batched_predict(model, x), y).item()


def _no_model(y: Tensor, y_test: Tensor, metric: str) -> float:
    """The test metric of no model: predicting the training targets' mean (MSE), or their
    majority class (accuracy); the row every layer's score stands beside."""
    if metric == "mse":
        return F.mse_loss(training_mean(y, y_test), y_test).item()
    return (y_test == float(y.float().mean() >= 0.5)).float().mean().item()


NO_MODEL = {"mse": "predict the mean (no model)", "accuracy": "the majority class (no model)"}


def _adding(config: CompareConfig, seq_len: int) -> _Problem:
    from gru.data.synthetic import adding_problem

    n_train, n_test = (500, 200) if config.quick else (config.adding_train, 1_000)
    generator = torch.Generator().manual_seed(config.seed)
    x, y = adding_problem(n_train, seq_len, generator=generator)
    x_val, y_val = adding_problem(n_test, seq_len, generator=generator)
    x_test, y_test = adding_problem(n_test, seq_len, generator=generator)
    H = config.hidden_size or 32
    epochs = 1 if config.quick else config.epochs or (12 if seq_len <= 100 else 6)
    return _Problem(
        build=lambda model: SequenceRegressor(2, H, layer=MODELS[model][1]),
        loss=F.mse_loss,
        train=(x, y),
        train_config=TrainConfig(epochs=epochs, batch_size=50, lr=3e-3, seed=config.seed),
        validate=lambda m: _mse(m, x_val, y_val),
        test=lambda m: _mse(m, x_test, y_test),
        example=x_test[:1],
        input_size=2,
        metric="mse",
        target=0.05,  # 30% of predicting the mean (0.167): the marked values are remembered
        description=f"adding problem, T={seq_len}, {n_train:,} training sequences, H={H}",
        baseline=_no_model(y, y_test, "mse"),
    )


def _imdb(config: CompareConfig) -> _Problem:
    from gru.data import imdb
    from gru.data.text import Sequences, limit_vocabulary, pad_sequences

    if config.imdb is None:
        raise ValueError(
            "compare: the task 'imdb' needs the IMDB data: pass imdb=PATH (--imdb PATH), e.g. "
            "aclImdb_v1.tar.gz, a Keras imdb.npz or a CSV of labeled texts"
        )
    num_words, maxlen, E = 10_000, 100, 32
    data = imdb.load(config.imdb)
    if data.train is None or data.test is None:
        raise ValueError(f"compare: {config.imdb!r} must hold both training and test reviews")
    limit = 500 if config.quick else config.imdb_limit
    rng = np.random.default_rng(config.seed)

    def tensors(part, n):
        part = part.subset(rng.permutation(len(part))[:n])  # shuffled: the files come sorted
        seqs = Sequences(limit_vocabulary(part.sequences.tokens, num_words), part.sequences.offsets)
        x, _ = pad_sequences(seqs, maxlen, padding="pre", truncating="pre")
        return torch.from_numpy(x), torch.as_tensor(part.labels, dtype=torch.float32)

    x_all, y_all = tensors(data.train, limit)
    n_val = len(x_all) // 5  # the seeds' validation_split=0.2: the last fifth
    x, y, x_val, y_val = x_all[:-n_val], y_all[:-n_val], x_all[-n_val:], y_all[-n_val:]
    x_test, y_test = tensors(data.test, limit)
    H = config.hidden_size or 32

    def accuracy(model, x, y) -> float:
        return binary_scores(batched_predict(model, x), y)["accuracy"]

    return _Problem(
        build=lambda model: TextClassifier(num_words, E, H, layer=MODELS[model][1]),
        loss=F.binary_cross_entropy_with_logits,
        train=(x, y),
        train_config=TrainConfig(
            epochs=1 if config.quick else config.epochs or 3,
            batch_size=32,
            lr=1e-3,
            eps=1e-7,
            clip_grad_norm=None,
            seed=config.seed,
        ),
        validate=lambda m: accuracy(m, x_val, y_val),
        test=lambda m: accuracy(m, x_test, y_test),
        example=x_test[:1],
        input_size=E,
        metric="accuracy",
        target=0.70,  # well past chance (50%)
        description=(
            f"IMDB, the seeds' model (10,000 words, last 100, E=32, H={H}), {len(x):,} training "
            f"/ {len(x_test):,} test reviews"
        ),
        baseline=_no_model(y, y_test, "accuracy"),
    )


def _etth1(config: CompareConfig) -> _Problem:
    from gru.data import timeseries

    if config.csv is None:
        raise ValueError(
            "compare: the task 'etth1' needs the ETTh1 series: pass csv=PATH (--csv PATH), "
            "the ETTh1.csv of the ETT benchmark"
        )
    lookback = horizon = 96
    frame = timeseries.read_csv(config.csv)
    series = timeseries.prepare(frame, target="OT", features="M", source=str(config.csv))
    parts = timeseries.split_rows(len(series), "ett", per_day=timeseries.rows_per_day(series.time))
    scaler = timeseries.Scaler.fit(series.values[: parts.train[1]])
    values = torch.from_numpy(scaler.transform(series.values)).float()  # (T, C)
    C = values.shape[1]
    channels = list(range(C))
    sets = {
        name: timeseries.windows(values, part, lookback, horizon, channels, channels)
        for name, part in (("train", parts.train), ("val", parts.validation), ("test", parts.test))
    }
    x, y = sets["train"]
    stride = 32 if config.quick else config.etth1_stride
    if stride > 1:  # every stride-th training window: a smaller budget
        keep = torch.arange(0, len(x), stride)
        x, y = x[keep], y[keep]
    x_val, y_val = (w.all() for w in sets["val"])
    x_test, y_test = (w.all() for w in sets["test"])
    H = config.hidden_size or 64
    repeat_last = F.mse_loss(persistence(x_val, horizon), y_val).item()
    return _Problem(
        build=lambda model: GRUForecaster(C, horizon, H, layer=MODELS[model][1]),
        loss=F.mse_loss,
        train=(x, y),
        train_config=TrainConfig(
            epochs=1 if config.quick else config.epochs or 3,
            batch_size=32,
            lr=1e-3,
            seed=config.seed,
        ),
        validate=lambda m: _mse(m, x_val, y_val),
        test=lambda m: _mse(m, x_test, y_test),
        example=x_test[:1],
        input_size=C,
        metric="mse",
        target=0.5 * repeat_last,  # half the error of repeating the last value
        description=(
            f"ETTh1, {C} channels, {lookback} -> {horizon} hours, ETT split, {len(x):,} training "
            f"windows, H={H}"
        ),
        baseline=_no_model(y, y_test, "mse"),
    )


# name: (what it measures, the function that prepares it)
TASKS: dict[str, tuple[str, Callable[[CompareConfig], _Problem]]] = {
    "adding-100": ("adding problem, T=100 (MSE)", lambda c: _adding(c, 100)),
    "adding-400": ("adding problem, T=400 (MSE)", lambda c: _adding(c, 400)),
    "imdb": ("IMDB sentiment, the seeds' model (accuracy)", _imdb),
    "etth1": ("ETTh1 multivariate 96 -> 96 (MSE)", _etth1),
}


# --- the run ---------------------------------------------------------------------------------


@dataclass
class CompareConfig:
    """Which tasks and models to compare, where the data is, and the budget.

    ``epochs`` (None: each task's own), ``hidden_size`` (None: 32, 64 for etth1),
    ``adding_train`` training sequences of the adding problem, ``imdb_limit`` reviews of
    each IMDB split (None: all 25,000) and ``etth1_stride`` (train on every n-th window) size
    the run; ``quick`` overrides them with a run of a minute or two.
    """

    tasks: list[str] = field(default_factory=lambda: ["adding-100", "adding-400"])
    models: list[str] = field(default_factory=lambda: list(MODELS))
    imdb: str | os.PathLike | None = None
    csv: str | os.PathLike | None = None
    quick: bool = False
    epochs: int | None = None
    hidden_size: int | None = None
    adding_train: int = 5_000
    etth1_stride: int = 1
    imdb_limit: int | None = 10_000
    seed: int = 0

    def check(self) -> None:
        """Raise ValueError naming the first unknown task or model, listing the valid ones."""
        for kind, names, valid in (("task", self.tasks, TASKS), ("model", self.models, MODELS)):
            if isinstance(names, str) or not names:
                raise ValueError(
                    f"compare: {kind}s must be a non-empty list of names, got {names!r}; "
                    f"valid {kind}s: {', '.join(valid)}"
                )
            for name in names:
                if name not in valid:
                    raise ValueError(
                        f"compare: unknown {kind} {name!r}; valid {kind}s: {', '.join(valid)}"
                    )
        names = ("epochs", "hidden_size", "adding_train", "imdb_limit", "etth1_stride")
        check_ints("compare", self, dict.fromkeys(names, 1), optional=names)


@dataclass
class CompareResult:
    """``rows``: one dict per (task, model) with every measured column; ``table``: them as
    Markdown; ``curves``: {task: {model: [(steps, validation metric), …]}}; ``files``: what
    was written under ``out``."""

    rows: list[dict]
    table: str
    curves: dict[str, dict[str, list[tuple[int, float]]]]
    files: list[Path]


def _train_one(problem: _Problem, model_name: str, quick: bool, quiet: bool, log) -> dict:
    torch.manual_seed(problem.train_config.seed)
    model = problem.build(model_name)  # fit compiles on a copy before its clocks start
    validation_seconds = []

    def evaluate(m) -> dict[str, float]:
        t0 = time.perf_counter()
        value = problem.validate(m)
        validation_seconds.append(time.perf_counter() - t0)
        return {f"val_{problem.metric}": value}

    result = fit(
        model,
        problem.loss,
        problem.train,
        problem.train_config,
        evaluate=evaluate,
        quiet=quiet,
        log=log,
    )
    steps_per_epoch = result.steps // max(len(result.history), 1)
    key = f"val_{problem.metric}"
    curve = [(h["epoch"] * steps_per_epoch, h[key]) for h in result.history]
    better = (
        (lambda v: v <= problem.target)
        if problem.metric == "mse"
        else (lambda v: v >= problem.target)
    )
    reached = next((steps for steps, value in curve if better(value)), None)
    epoch_seconds = [
        h["seconds"] - v for h, v in zip(result.history, validation_seconds, strict=True)
    ]
    model.eval()
    with torch.no_grad():
        final = problem.test(model)
    per_sequence, per_step = latencies(model, problem.example, problem.input_size, quick)
    parameters = sum(p.numel() for p in model.rnn.parameters())
    return {
        "model": model_name,
        "layer": MODELS[model_name][0],
        "parameters": parameters,
        "train_seconds_per_epoch": float(np.mean(epoch_seconds)),
        "latency_sequence_s": per_sequence.median,
        "latency_step_s": per_step.median,
        "latency_sequence_spread": per_sequence.spread,
        "latency_step_spread": per_step.spread,
        "metric": problem.metric,
        "test": final,
        "target": problem.target,
        "steps_to_target": reached,
        "steps": result.steps,
        "curve": curve,
    }


SMOKE_TEST = (
    "**A smoke test** (quick: a few hundred sequences, one epoch, a tenth of a second of "
    "timing per model): it shows that every layer trains and runs, not how well or how fast; "
    "its scores and timings compare nothing. Leave out --quick (quick=False) to compare."
)


def _noisy(row: dict, kind: str) -> bool:
    """Whether the latency ``kind`` ("sequence", "step") of ``row`` spread too far (`NOISY`)."""
    return row.get(f"latency_{kind}_spread", 0.0) > NOISY


def _table(rows: list[dict], no_model: dict[str, float]) -> str:
    """The Markdown table of ``rows``, each task's layers after the row of no model
    (``no_model``: the test metric of each task without one); † marks noisy timings."""
    lines = [
        "| task | layer | parameters | training s / epoch | latency / sequence "
        "| latency / step | test metric | steps to target |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    targets: dict[str, str] = {}

    def score(value, metric):
        return f"{value:.4f} MSE" if metric == "mse" else f"{value:.1%} accuracy"

    for r in rows:
        if r["task"] not in targets:
            baseline = score(no_model[r["task"]], r["metric"])
            lines.append(f"| {r['task']} | {NO_MODEL[r['metric']]} | 0 | | | | {baseline} | |")
        sign = "≤" if r["metric"] == "mse" else "≥"
        target = f"{r['target']:.3g}" if r["metric"] == "mse" else f"{r['target']:.0%}"
        reached = r["steps_to_target"]
        reached = f"not in {r['steps']:,}" if reached is None else f"{reached:,} of {r['steps']:,}"
        sequence, step = (
            readable(r[f"latency_{k}_s"]) + (" †" if _noisy(r, k) else "")
            for k in ("sequence", "step")
        )
        lines.append(
            f"| {r['task']} | {r['layer']} | {r['parameters']:,} "
            f"| {r['train_seconds_per_epoch']:.1f} | {sequence} | {step} "
            f"| {score(r['test'], r['metric'])} | {reached} |"
        )
        targets[r["task"]] = f"validation {r['metric']} {sign} {target}"
    legend = "; ".join(f"{task}: {text}" for task, text in targets.items())
    notes = f"\n\nTargets ({legend}) checked after every epoch."
    if any(_noisy(r, "sequence") or _noisy(r, "step") for r in rows):
        notes += f" † Noisy: the repeats spread by more than {NOISY:.0%} of their median."
    return "\n".join(lines) + notes


def plot_curves(curves: dict, metrics: dict[str, str], path: str | os.PathLike) -> Path:
    """Validation metric against training steps, one panel per task side by side, one line per
    model (`gru.viz.figures.learning_curves`); written as a PNG to ``path``."""
    from gru.viz import figures  # matplotlib loads only when a picture is drawn

    labels = {model: MODELS[model][0] for by_model in curves.values() for model in by_model}
    return figures.save_png(figures.learning_curves(curves, metrics, labels), path, dpi=110)


def run(
    config: CompareConfig,
    *,
    out: str | os.PathLike | None = None,
    quiet: bool = False,
    log=print,
) -> CompareResult:
    """Train every model of ``config.models`` on every task of ``config.tasks``; measure them.

    With ``out`` it writes compare.md (the table), compare.json (every number and curve) and
    learning_curves.png there (a folder that does not exist yet or is empty).
    """
    config.check()
    say = (lambda message: None) if quiet else log
    out = Path(out) if out is not None else None
    if out is not None:
        check_new_folder(out, "--out:")
    problems = {task: TASKS[task][1](config) for task in config.tasks}  # data errors first
    rows: list[dict] = []
    curves: dict[str, dict] = {}
    for task, problem in problems.items():
        say(f"{task}: {problem.description}")
        curves[task] = {}
        for model in config.models:
            start = time.perf_counter()
            row = {"task": task, **_train_one(problem, model, config.quick, quiet, log)}
            rows.append(row)
            curves[task][model] = row["curve"]
            say(
                f"  {MODELS[model][0]}: test {problem.metric} {row['test']:.4f} "
                f"({time.perf_counter() - start:.0f} s)"
            )
    table = _table(rows, {task: problem.baseline for task, problem in problems.items()})
    if config.quick:
        table = f"{SMOKE_TEST}\n\n{table}"
    noisy = [
        f"{r['task']} {r['layer']}" for r in rows if _noisy(r, "sequence") or _noisy(r, "step")
    ]
    if noisy:
        warnings.warn(
            f"compare: the latencies of {', '.join(noisy)} spread by more than {NOISY:.0%} of "
            "their median between repeats (other programs busy?); marked † in the table: "
            "compare them with care, or measure again on an idle machine",
            stacklevel=2,
        )
    say(table)
    files: list[Path] = []
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        header = (
            f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"{os.cpu_count()} cores; {'quick' if config.quick else 'default'} budget\n\n"
        )
        (out / "compare.md").write_text(header + table + "\n")
        checkpoint.write_json(
            out / "compare.json",
            {
                "tasks": {t: p.description for t, p in problems.items()},
                "quick": config.quick,
                "no_model": {t: p.baseline for t, p in problems.items()},
                "threads": torch.get_num_threads(),
                "rows": rows,
            },
        )
        plot_curves(curves, {t: p.metric for t, p in problems.items()}, out / "learning_curves.png")
        files = [out / "compare.md", out / "compare.json", out / "learning_curves.png"]
        say(f"wrote {', '.join(str(f) for f in files)}")
    return CompareResult(rows, table, curves, files)
