"""Forecasting: the next F steps of a multichannel series from its last W steps.

Two models (`gru.models`): "segrnn", SegRNN (Lin et al. 2023), a GRU over segments of the
lookback with parallel decoding of the horizon, one channel at a time; and "gru", a plain GRU
encoder with a linear head. Every run is measured beside three baselines on the same test
windows: the last value (persistence), the last season repeated (seasonal naive) and a linear
model of the lookback window fitted by least squares on the training windows.

Data handling (`gru.data.timeseries`): chronological train/validation/test split (70/10/20, or
the ETT benchmark's 12/4/4 months), standardization fitted on the training rows only, one
window per forecast start row. MSE and MAE are reported on the standardized data, averaged over
windows, steps and forecast channels, as the papers report them, and MAE also in the data's
own units, per channel.

    f = Forecaster(lookback=96, horizon=96, model="segrnn")
    report = f.fit(df, target="OT")          # or a CSV path
    f.predict(df)                            # the next 96 rows after the end of df

Shapes: N windows, W lookback, F horizon, C channels read, K channels forecast.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gru import __version__, checkpoint, training
from gru.data import timeseries
from gru.data.timeseries import Scaler, TimeSeries, Windows
from gru.models import GRUForecaster, SegRNN
from gru.tasks._runs import (
    TaskConfig,
    check_ints,
    check_out,
    check_resume,
    load_run,
    load_weights,
    settled_config,
)
from gru.training import TrainConfig
from gru.viz.report import write_report

__all__ = [
    "BASELINES",
    "ForecastConfig",
    "ForecastReport",
    "Forecaster",
    "LinearBaseline",
    "persistence",
    "seasonal_naive",
]

MODELS = ("segrnn", "gru")


def _mse_plus_mae(pred: Tensor, true: Tensor) -> Tensor:
    return F.mse_loss(pred, true) + F.l1_loss(pred, true)


# What training minimizes: the two metrics papers report, their sum, or Huber's loss (δ = 1 in
# standardized units: squared for small errors, absolute for large ones).
LOSS_FUNCTIONS = {
    "mse": F.mse_loss,
    "mae": F.l1_loss,
    "mse+mae": _mse_plus_mae,
    "huber": F.huber_loss,
}
LOSSES = tuple(LOSS_FUNCTIONS)
BASELINES = ("persistence", "seasonal_naive", "linear")
PLOT_FILE = "forecast_test.png"
EXAMPLES = 4  # test windows drawn and kept in metrics.json

# Widths by model when hidden_size is not given: SegRNN's d (the paper uses 512; see the
# README for what trains within 10 minutes on 2 cores) and the plain GRU's H.
DEFAULT_HIDDEN = {"segrnn": 256, "gru": 64}


@dataclass
class ForecastConfig(TaskConfig):
    """Everything that decides a forecaster: the data's reading, the model, the training.

    ``features``: "S" the target alone, "M" every numeric column predicts every one, "MS"
    every column predicts the target. ``split``: "ratio" (70/10/20) or "ett" (12/4/4 months).
    ``season``: the seasonal-naive baseline's period in rows (None: detected from the
    training rows' autocorrelation). ``segment``: SegRNN's segment length S; ``hidden_size``
    its d, or the plain GRU's H. ``loss``: what training minimizes, one of `LOSSES`.
    """

    lookback: int = 96
    horizon: int = 96
    features: str = "M"
    model: str = "segrnn"
    hidden_size: int | None = None
    segment: int = 24
    num_layers: int = 1
    dropout: float = 0.5
    loss: str = "mse+mae"
    split: str = "ratio"
    season: int | None = None
    time_column: str | None = None
    fillna: str | None = None
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            epochs=12,
            batch_size=256,
            lr=2e-3,
            schedule="cosine",
            monitor="val_loss",
            mode="min",
            restore_best=True,
        )
    )

    def __post_init__(self) -> None:
        if self.hidden_size is None and self.model in DEFAULT_HIDDEN:
            self.hidden_size = DEFAULT_HIDDEN[self.model]

    def check(self) -> None:
        """Raise ValueError naming the first setting out of range."""
        names = ("lookback", "horizon", "hidden_size", "segment", "num_layers")
        check_ints("ForecastConfig", self, dict.fromkeys(names, 1))
        for name, allowed in (
            ("features", timeseries.FEATURES),
            ("model", MODELS),
            ("loss", LOSSES),
            ("split", timeseries.SPLITS),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"ForecastConfig: {name} must be one of {allowed}, got {getattr(self, name)!r}"
                )
        if self.fillna is not None and self.fillna not in timeseries.FILLNA:
            raise ValueError(
                f"ForecastConfig: fillna must be one of {timeseries.FILLNA} or None, "
                f"got {self.fillna!r}"
            )
        if self.model == "segrnn" and self.segment > self.lookback:
            raise ValueError(
                f"ForecastConfig: segment={self.segment} is longer than lookback={self.lookback}"
            )
        if self.model == "segrnn" and self.hidden_size % 2:
            raise ValueError(
                f"ForecastConfig: SegRNN's hidden_size (d) must be even, got {self.hidden_size}"
            )
        if self.season is not None and not 1 <= self.season <= self.lookback:
            raise ValueError(
                f"ForecastConfig: season must be between 1 and lookback={self.lookback} (the "
                f"seasonal-naive baseline repeats the window's last season), got {self.season}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ForecastConfig: dropout must be in [0, 1), got {self.dropout}")
        self.train.check()


# --- baselines ---------------------------------------------------------------------------------


def persistence(x: Tensor, horizon: int) -> Tensor:
    """The last value of each channel, repeated: x (N, W, K) -> (N, F, K)."""
    return x[:, -1:, :].expand(-1, horizon, -1)


def seasonal_naive(x: Tensor, horizon: int, season: int) -> Tensor:
    """The last ``season`` steps of the window, repeated: x (N, W, K) -> (N, F, K);
    step h of the forecast is x[W − season + (h mod season)]."""
    W = x.shape[1]
    if not 1 <= season <= W:
        raise ValueError(f"seasonal_naive: season must be between 1 and W={W}, got {season}")
    steps = W - season + torch.arange(horizon) % season  # (F,)
    return x[:, steps, :]


class LinearBaseline:
    """Least squares from the lookback window to the horizon, with a bias.

    ``shared=True`` (features S and M): one map (W + 1) -> F for every channel, each channel's
    window predicting its own future (channel independence, as DLinear's "Linear" without
    individual heads). ``shared=False`` (MS): all C channels' windows (W·C + 1 values) predict
    the K forecast channels. Solved by the normal equations in float64 with a tiny ridge
    (1e-6 of the mean diagonal) so that constant inputs cannot make them singular.
    """

    def __init__(self, shared: bool) -> None:
        self.shared = shared
        self.weight: Tensor | None = None  # (P + 1, F) or (P + 1, F·K)

    def _design(self, x: Tensor) -> Tensor:
        if self.shared:
            rows = x.transpose(1, 2).reshape(-1, x.shape[1])  # (N·C, W)
        else:
            rows = x.reshape(len(x), -1)  # (N, W·C)
        rows = rows.double()
        return torch.cat([rows, torch.ones(len(rows), 1, dtype=rows.dtype)], dim=1)

    def _target(self, y: Tensor) -> Tensor:
        if self.shared:
            return y.transpose(1, 2).reshape(-1, y.shape[1]).double()  # (N·K, F)
        return y.reshape(len(y), -1).double()  # (N, F·K)

    def fit(self, x: Windows, y: Windows, *, batch: int = 2048) -> LinearBaseline:
        """Fit on the training windows ``x`` (N, W, C) -> ``y`` (N, F, K)."""
        gram, cross = None, None
        for index in torch.arange(len(x)).split(batch):
            a, b = self._design(x[index]), self._target(y[index])
            gram = a.T @ a if gram is None else gram + a.T @ a  # (P + 1, P + 1)
            cross = a.T @ b if cross is None else cross + a.T @ b  # (P + 1, F·)
        ridge = 1e-6 * gram.diagonal().mean()
        gram = gram + ridge * torch.eye(len(gram), dtype=gram.dtype)
        self.weight = torch.linalg.solve(gram, cross)
        return self

    def __call__(self, x: Tensor, horizon: int, channels: int) -> Tensor:
        """The forecast (N, F, K) of windows x (N, W, C)."""
        out = (self._design(x) @ self.weight).float()
        if self.shared:
            return out.view(len(x), channels, horizon).transpose(1, 2)
        return out.view(len(x), horizon, channels)


# --- the report --------------------------------------------------------------------------------


@dataclass
class ForecastReport:
    """The outcome of `Forecaster.fit`.

    ``test`` and each of ``baselines`` hold "mse" and "mae" on the standardized data,
    "mae_original", the target's MAE in its own units, and "mae_original_by_column" {column:
    MAE in the column's units}, on the test windows; ``validation`` the same for the model on
    the validation windows (the kept epoch's weights).
    """

    test: dict
    baselines: dict[str, dict | None]
    validation: dict
    history: list[dict[str, float]]
    best_epoch: int
    seconds: float
    training_seconds: float
    windows: dict[str, int]
    season: int | None
    run_dir: Path | None


def _scores(pred: Tensor, true: Tensor, std: np.ndarray, names: list[str], target: str) -> dict:
    """MSE and MAE of standardized forecasts (N, F, K), and MAE in original units per column
    (std (K,) scales each column's standardized error back to its units) and of ``target``."""
    error = pred.double() - true.double()
    per_column = error.abs().mean(dim=(0, 1)).numpy()  # (K,)
    by_column = {n: float(v * s) for n, v, s in zip(names, per_column, std, strict=True)}
    return {
        "mse": float((error**2).mean()),
        "mae": float(error.abs().mean()),
        "mae_original": by_column[target],
        "mae_original_by_column": by_column,
    }


def _headline(scores: dict | None) -> dict | None:
    """The scalar scores of `_scores`, for metrics.json's tables."""
    return None if scores is None else {k: v for k, v in scores.items() if not isinstance(v, dict)}


def _source_name(data) -> str | None:
    return os.path.abspath(str(data)) if isinstance(data, (str, os.PathLike)) else None


# --- the Python API ----------------------------------------------------------------------------


class Forecaster:
    """A GRU forecaster of the next ``horizon`` steps from the last ``lookback`` steps.

    ``Forecaster(lookback=96, horizon=96, model="segrnn", features="M", epochs=10, ...)``
    takes any `ForecastConfig` or `TrainConfig` setting by name, or a whole ``config``.
    ``backend`` is passed to `gru.GRU`; it changes speed, not results.
    """

    def __init__(
        self,
        lookback: int = 96,
        horizon: int = 96,
        model: str = "segrnn",
        *,
        config: ForecastConfig | None = None,
        backend: str = "auto",
        **settings,
    ) -> None:
        self.config = settled_config(
            config,
            lambda: ForecastConfig(lookback=lookback, horizon=horizon, model=model),
            settings,
            "Forecaster",
        )
        self.backend = backend
        self.model: nn.Module | None = None
        self.columns: list[str] | None = None
        self.target: str | None = None
        self.scaler: Scaler | None = None
        self.report: ForecastReport | None = None

    # --- helpers -----------------------------------------------------------------------------

    def _channels(self) -> tuple[list[int], list[int]]:
        target = self.columns.index(self.target)
        every = list(range(len(self.columns)))
        return {"S": ([target], [target]), "M": (every, every), "MS": (every, [target])}[
            self.config.features
        ]

    def _build_model(self) -> nn.Module:
        c = self.config
        inputs, outputs = self._channels()
        targets = [inputs.index(o) for o in outputs]
        if c.model == "segrnn":
            return SegRNN(
                len(inputs),
                c.lookback,
                c.horizon,
                segment=c.segment,
                d_model=c.hidden_size,
                dropout=c.dropout,
                targets=targets,
                backend=self.backend,
            )
        return GRUForecaster(
            len(inputs),
            c.horizon,
            c.hidden_size,
            targets=targets,
            num_layers=c.num_layers,
            dropout=c.dropout,
            backend=self.backend,
        )

    @torch.no_grad()
    def _forecast(self, x: Windows | Tensor, batch: int = 512) -> Tensor:
        """The model's forecasts (N, F, K) of the windows ``x`` (N, W, C), in eval mode."""
        model = self.model
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        n = len(x)
        out = []
        for index in torch.arange(n).split(batch):
            out.append(model(x[index].to(device)).float().cpu())
        model.train(was_training)
        return torch.cat(out) if out else torch.zeros(0, self.config.horizon, 1)

    def _read(self, data, *, columns: list[str] | None = None) -> TimeSeries:
        c = self.config
        if isinstance(data, (str, os.PathLike)):
            frame, source = timeseries.read_csv(data), str(data)
        elif isinstance(data, pd.DataFrame):
            frame, source = data, None
        else:
            raise TypeError(
                f"data must be a pandas DataFrame or a CSV path, got {type(data).__name__}"
            )
        return timeseries.prepare(
            frame,
            target=self.target,
            features=c.features,
            time_column=c.time_column,
            fillna=c.fillna,
            source=source,
            columns=columns,
        )

    # --- fit ---------------------------------------------------------------------------------

    def fit(
        self,
        data: pd.DataFrame | str | os.PathLike,
        target: str,
        *,
        out: str | os.PathLike | None = None,
        resume: bool = False,
        checkpoint_every: int | None = None,
        quiet: bool = False,
        device: str = "cpu",
        log=print,
    ) -> ForecastReport:
        """Train on ``data`` (a DataFrame or a CSV path) to forecast it; measure the test part.

        ``target`` names the column forecast (with ``features="S"`` or "MS") and drawn. The
        model kept is the one of the best validation epoch. With ``out`` the run folder is
        written there (it must not exist yet or be empty, unless ``resume`` continues it).
        """
        c = self.config
        c.check()
        start = time.perf_counter()
        if not isinstance(target, str):
            raise TypeError(f"Forecaster.fit: target must be a column name, got {target!r}")
        rank, _ = training.distributed(device)
        main = rank == 0
        say = log if (main and not quiet) else (lambda message: None)
        out = Path(out) if out is not None else None
        if resume and out is None:
            raise ValueError("Forecaster.fit: resume=True needs out, the run to resume")
        if out is not None and main:
            if resume:
                source = _source_name(data)
                check_resume(out, "forecast", c.to_dict(), {"source": source, "target": target})
            else:
                check_out(out)

        self.target = target
        series = self._read(data)
        self.columns = series.columns
        parts = self._split(series)
        self.scaler = Scaler.fit(series.values[: parts.train[1]])
        values = torch.from_numpy(self.scaler.transform(series.values)).float()  # (T, C)
        inputs, outputs = self._channels()
        names = [self.columns[o] for o in outputs]
        sets = {
            name: timeseries.windows(values, part, c.lookback, c.horizon, inputs, outputs)
            for name, part in (
                ("train", parts.train),
                ("validation", parts.validation),
                ("test", parts.test),
            )
        }
        counts = {name: len(x) for name, (x, _) in sets.items()}
        target_index = self.columns.index(target)
        season = c.season
        if season is None:
            season = timeseries.detect_season(
                values[: parts.train[1], target_index].numpy(), c.lookback
            )
        say(
            f"data: {series.source} ({len(series):,} rows, {len(self.columns)} channels; "
            f"windows {counts['train']:,} train / {counts['validation']:,} validation / "
            f"{counts['test']:,} test; season {season}); model {c.model}"
        )

        loss_fn = LOSS_FUNCTIONS[c.loss]
        val_x, val_y = sets["validation"]
        val_true = val_y.all()

        def evaluate(model) -> dict[str, float]:
            pred = self._forecast(val_x)
            return {
                "val_loss": float(loss_fn(pred, val_true)),
                "val_mse": float(F.mse_loss(pred, val_true)),
                "val_mae": float(F.l1_loss(pred, val_true)),
            }

        torch.manual_seed(c.train.seed)
        self.model = self._build_model()
        run_config = self._run_config(series, parts, _source_name(data))
        if out is not None and main and not resume:
            out.mkdir(parents=True, exist_ok=True)
            checkpoint.save_config(out, run_config)
        result = training.fit(
            self.model,
            loss_fn,
            sets["train"],
            c.train,
            evaluate=evaluate,
            run_dir=out,
            resume=resume,
            checkpoint_every=checkpoint_every,
            quiet=quiet,
            device=device,
            log=log,
        )
        self.model.eval()

        test_x, test_y = sets["test"]
        true = test_y.all()  # (N, F, K)
        std = self.scaler.std[outputs]
        pred = self._forecast(test_x)
        test = _scores(pred, true, std, names, target)
        validation = _scores(self._forecast(val_x), val_true, std, names, target)
        forecasts = self._baselines(sets, season, outputs, inputs)
        baselines = {
            name: (None if f is None else _scores(f, true, std, names, target))
            for name, f in forecasts.items()
        }
        seconds = time.perf_counter() - start
        self.report = ForecastReport(
            test=test,
            baselines=baselines,
            validation=validation,
            history=result.history,
            best_epoch=result.best_epoch,
            seconds=seconds,
            training_seconds=result.seconds,
            windows=counts,
            season=season,
            run_dir=out,
        )
        if out is not None and main:
            examples = self._examples(series, parts, pred, true, forecasts, outputs)
            _plot_forecasts(out / PLOT_FILE, examples, target, c)
            by_column = {c.model: test["mae_original_by_column"]}
            by_column.update(
                {n: b["mae_original_by_column"] for n, b in baselines.items() if b is not None}
            )
            notes = []
            if season is None:
                notes.append(
                    "No season was found in the training rows (or given with --season), so the "
                    "seasonal-naive baseline was not computed."
                )
            checkpoint.write_json(
                out / checkpoint.METRICS_FILE,
                {
                    "task": "forecast",
                    "history": result.history,
                    "best_epoch": result.best_epoch,
                    "test": _headline(test),
                    "validation": _headline(validation),
                    "baselines": {n: _headline(b) for n, b in baselines.items()},
                    "mae_original_by_column": by_column,
                    "seconds": seconds,
                    "training_seconds": result.seconds,
                    "threads": torch.get_num_threads(),
                    "parameters": sum(p.numel() for p in self.model.parameters()),
                    "data": {
                        "source": _source_name(data) or "a DataFrame",
                        "rows": len(series),
                        "channels read": len(inputs),
                        "channels forecast": len(outputs),
                        "target": target,
                        "train windows": counts["train"],
                        "validation windows": counts["validation"],
                        "test windows": counts["test"],
                        "season": season,
                    },
                    "examples": _example_table(examples, c),
                    "figures": {
                        PLOT_FILE: f"Forecasts of {target} for {len(examples)} test windows: "
                        f"the last {c.lookback} steps read, the actual next {c.horizon} steps, "
                        f"the {c.model} forecast and the linear and seasonal-naive baselines.",
                    },
                    "notes": notes,
                },
            )
            write_report(out)
        return self.report

    def _split(self, series: TimeSeries) -> timeseries.Split:
        c = self.config
        n = len(series)
        per_day = timeseries.rows_per_day(series.time)
        parts = timeseries.split_rows(n, c.split, per_day=per_day)
        for name, part in (
            ("train", parts.train),
            ("validation", parts.validation),
            ("test", parts.test),
        ):
            if part[1] - max(part[0], c.lookback) - c.horizon + 1 < 1:
                if c.split == "ratio":
                    need = timeseries.minimum_length(c.lookback, c.horizon)
                    raise ValueError(
                        f"data: {series.source} has {n} rows, too few for lookback "
                        f"{c.lookback} + horizon {c.horizon} with a 70/10/20 split: its "
                        f"{name} part ({part[1] - part[0]} rows) holds no whole window; "
                        f"the minimum length is {need} rows"
                    )
                raise ValueError(
                    f"data: the {name} part of the ETT split of {series.source} (rows "
                    f"{part[0]}-{part[1] - 1}) is too short for lookback {c.lookback} + "
                    f"horizon {c.horizon}"
                )
        return parts

    def _baselines(self, sets, season, outputs, inputs) -> dict[str, Tensor | None]:
        c = self.config
        test_x, _ = sets["test"]
        x = test_x.all()  # (N, W, C)
        own = x[:, :, [inputs.index(o) for o in outputs]]  # (N, W, K): the forecast channels
        linear = LinearBaseline(shared=c.features != "MS").fit(*sets["train"])
        return {
            "persistence": persistence(own, c.horizon),
            "seasonal_naive": None if season is None else seasonal_naive(own, c.horizon, season),
            "linear": linear(x, c.horizon, len(outputs)),
        }

    def _examples(self, series, parts, pred, true, forecasts, outputs) -> list[dict]:
        """A few test windows of the target, in its own units, for plots and reports."""
        c = self.config
        column = self.columns.index(self.target)  # every feature mode forecasts the target
        k = outputs.index(column)
        n = len(pred)
        picks = sorted({round(i * (n - 1) / max(EXAMPLES - 1, 1)) for i in range(EXAMPLES)})
        first = max(parts.test[0], c.lookback)
        mean, std = self.scaler.mean[column], self.scaler.std[column]
        examples = []
        for i in picks:
            t = first + i
            rows = np.arange(t - c.lookback, t + c.horizon)
            stamps = (
                [str(s) for s in series.time[rows]] if series.time is not None else rows.tolist()
            )
            history = series.values[t - c.lookback : t, column]
            example = {
                "start_row": int(t),
                "times": stamps,
                "history": history.tolist(),
                "actual": (true[i, :, k].double().numpy() * std + mean).tolist(),
                "forecast": (pred[i, :, k].double().numpy() * std + mean).tolist(),
            }
            for name, f in forecasts.items():
                if f is not None:
                    example[name] = (f[i, :, k].double().numpy() * std + mean).tolist()
            examples.append(example)
        return examples

    def _run_config(self, series: TimeSeries, parts, source: str | None) -> dict:
        return {
            "task": "forecast",
            "gru_version": __version__,
            "config": self.config.to_dict(),
            "data": {
                "source": source,
                "target": self.target,
                "columns": self.columns,
                "time_column": series.time_column,
                "rows": len(series),
                "start": str(series.time[0]) if series.time is not None else None,
                "end": str(series.time[-1]) if series.time is not None else None,
                "split": parts.as_dict(),
                "scaler": self.scaler.to_dict(),
            },
        }

    # --- load and predict --------------------------------------------------------------------

    @classmethod
    def load(cls, run_dir: str | os.PathLike, *, backend: str = "auto") -> Forecaster:
        """The forecaster a forecast run folder holds, every file checked."""
        stored = load_run(run_dir, "forecast")
        try:
            config = ForecastConfig.from_dict(stored["config"], where=f"config.json of {run_dir}")
            data = stored["data"]
            forecaster = cls(config=config, backend=backend)
            forecaster.columns = list(data["columns"])
            forecaster.target = data["target"]
            forecaster.scaler = Scaler.from_dict(data["scaler"])
        except (KeyError, TypeError) as error:
            raise ValueError(
                f"run: config.json of {str(run_dir)!r} lacks {error} (was it altered?)"
            ) from None
        forecaster.model = forecaster._build_model()
        load_weights(forecaster.model, run_dir, stored)
        return forecaster

    def predict(self, data: pd.DataFrame | str | os.PathLike) -> pd.DataFrame:
        """The next ``horizon`` rows after the end of ``data``, in the data's units.

        ``data`` must hold the columns the model was trained on and at least ``lookback``
        rows; the forecast is a DataFrame indexed by the future timestamps (continuing the time
        column's frequency; row numbers when there is none), one column per forecast channel.
        """
        if self.model is None:
            raise ValueError("Forecaster.predict: fit or load a model first")
        c = self.config
        series = self._read(data, columns=self.columns)
        if len(series) < c.lookback:
            raise ValueError(
                f"data: {series.source} has {len(series)} rows; the model reads the last "
                f"lookback={c.lookback} rows, so it needs at least {c.lookback}"
            )
        inputs, outputs = self._channels()
        window = self.scaler.transform(series.values[-c.lookback :])[:, inputs]  # (W, C)
        x = torch.from_numpy(window).float().unsqueeze(0)  # (1, W, C)
        y = self._forecast(x)[0].double().numpy()  # (F, K)
        values = self.scaler.inverse(y, outputs)
        index = timeseries.future_times(series.time, c.horizon, len(series))
        frame = pd.DataFrame(values, index=index, columns=[self.columns[o] for o in outputs])
        frame.index.name = series.time_column or ("time" if series.time is not None else "row")
        return frame


# --- pictures ----------------------------------------------------------------------------------


def _plot_forecasts(path: Path, examples: list[dict], target: str, config: ForecastConfig) -> None:
    """Forecast against actual for a few test windows of the target, with two baselines."""
    from matplotlib.figure import Figure

    from gru._io import atomic_write

    figure = Figure(figsize=(12, 2.6 * len(examples)), layout="constrained")
    axes = figure.subplots(len(examples), 1, squeeze=False)[:, 0]
    W = config.lookback
    for ax, example in zip(axes, examples, strict=True):
        steps = np.arange(-W, config.horizon)
        ax.plot(steps[:W], example["history"], color="0.4", lw=1, label="history")
        ax.plot(steps[W:], example["actual"], color="black", lw=1.2, label="actual")
        ax.plot(steps[W:], example["forecast"], color="tab:red", lw=1.4, label=config.model)
        for name, style in (("linear", "tab:blue"), ("seasonal_naive", "tab:green")):
            if name in example:
                ax.plot(steps[W:], example[name], color=style, lw=0.9, ls="--", label=name)
        ax.axvline(0, color="0.7", lw=0.8)
        ax.set_title(f"{target}, test window from {example['times'][W]}", fontsize=9)
        ax.set_xlabel("steps from the forecast start")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, ncol=5, loc="upper left")
    atomic_write(path, lambda f: figure.savefig(f, format="png", dpi=90))


def _example_table(examples: list[dict], config: ForecastConfig) -> dict:
    """A few steps of each drawn test window as a table (the figure shows them all)."""
    F_ = config.horizon
    steps = sorted({1, max(1, F_ // 4), max(1, F_ // 2), F_})
    names = [n for n in ("linear", "seasonal_naive", "persistence") if n in examples[0]]
    rows = []
    for example in examples:
        for h in steps:
            row = [example["times"][config.lookback + h - 1], h, example["actual"][h - 1]]
            row += [example["forecast"][h - 1], *(example[n][h - 1] for n in names)]
            rows.append(row)
    return {
        "columns": ["time", "steps ahead", "actual", config.model, *names],
        "rows": rows,
        "caption": f"The target at a few horizons of {len(examples)} test windows, in its units.",
    }


def plot_future(path: Path, history: pd.Series, forecast: pd.Series, title: str) -> None:
    """The end of a series and its forecast, as a PNG."""
    from matplotlib.figure import Figure

    from gru._io import atomic_write

    figure = Figure(figsize=(10, 3.5), layout="constrained")
    ax = figure.subplots()
    ax.plot(history.index, history.to_numpy(), color="black", lw=1, label="history")
    ax.plot(forecast.index, forecast.to_numpy(), color="tab:red", lw=1.4, label="forecast")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    atomic_write(path, lambda f: figure.savefig(f, format="png", dpi=90))
