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
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import ClassVar

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gru.data import timeseries
from gru.data.timeseries import Scaler, TimeSeries, Windows
from gru.models import FORECASTERS, batched_predict, build, forecaster
from gru.tasks import runs
from gru.tasks.baselines import LinearBaseline, forecast_baselines, persistence, seasonal_naive
from gru.tasks.evaluation import forecast_examples, forecast_scores, forecast_table, headline
from gru.tasks.series import check_reading, read_series, scaled, short_part, split_series
from gru.training import TrainConfig

__all__ = [  # with the baselines of `gru.tasks.baselines`, importable from here as before
    "BASELINES",
    "ForecastConfig",
    "ForecastReport",
    "Forecaster",
    "LinearBaseline",
    "persistence",
    "plot_future",
    "seasonal_naive",
]

MODELS = FORECASTERS


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
class ForecastConfig(runs.TaskConfig):
    """Everything that decides a forecaster: the data's reading, the model, the training.

    ``features``: "S" the target alone, "M" every numeric column predicts every one, "MS"
    every column predicts the target. ``split``: "ratio" (70/10/20) or "ett" (12/4/4 months).
    ``season``: the seasonal-naive baseline's period in rows (None: detected from the
    training rows' autocorrelation). ``segment``: SegRNN's segment length S; ``hidden_size``
    its d, or the plain GRU's H. ``loss``: what training minimizes, one of `LOSSES`.
    ``limit``: train on the first that many rows only (quick runs; None: every row).
    """

    ADDED_LATER: ClassVar[dict] = {"limit": None}  # runs written before --limit

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
    limit: int | None = None
    train: TrainConfig = field(
        default_factory=runs.least_val_loss(epochs=12, batch_size=256, lr=2e-3)
    )

    def __post_init__(self) -> None:
        if self.hidden_size is None and self.model in DEFAULT_HIDDEN:
            self.hidden_size = DEFAULT_HIDDEN[self.model]

    def check(self) -> None:
        """Raise ValueError naming the first setting out of range."""
        names = ("lookback", "horizon", "hidden_size", "segment", "num_layers")
        minimums = {**dict.fromkeys(names, 1), "limit": 2}
        runs.check_ints("ForecastConfig", self, minimums, optional=("limit",))
        for name, allowed in (
            ("features", timeseries.FEATURES),
            ("model", MODELS),
            ("loss", LOSSES),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"ForecastConfig: {name} must be one of {allowed}, got {getattr(self, name)!r}"
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
        check_reading("ForecastConfig", self)
        self.train.check()


@dataclass
class ForecastReport(runs.RunReport):
    """The outcome of `Forecaster.fit`.

    ``test`` and each of ``baselines`` hold "mse" and "mae" on the standardized data,
    "mae_original", the target's MAE in its own units, and "mae_original_by_column" {column:
    MAE in the column's units}, on the test windows; ``validation`` the same for the model on
    the validation windows (the kept epoch's weights).
    """

    test: dict
    baselines: dict[str, dict | None]
    validation: dict
    windows: dict[str, int]
    season: int | None


# --- the Python API ----------------------------------------------------------------------------


class Forecaster(runs.Task):
    """A GRU forecaster of the next ``horizon`` steps from the last ``lookback`` steps.

    ``Forecaster(lookback=96, horizon=96, model="segrnn", features="M", epochs=10, ...)``
    takes any `ForecastConfig` or `TrainConfig` setting by name, or a whole ``config``.
    ``backend`` is passed to `gru.GRU`; it changes speed, not results.
    """

    task = "forecast"
    config_class = ForecastConfig
    report: ForecastReport | None = None
    columns: list[str] | None = None  # every column read, in order
    target: str | None = None
    scaler: Scaler | None = None  # fitted on the training rows

    # --- what the model reads and how --------------------------------------------------------

    def channels(self) -> tuple[list[int], list[int]]:
        """(the channels the model reads, the channels it forecasts), as indices of
        ``columns``: the target alone (features S), every column (M), every column to
        forecast the target (MS)."""
        target = self.columns.index(self.target)
        every = list(range(len(self.columns)))
        return {"S": ([target], [target]), "M": (every, every), "MS": (every, [target])}[
            self.config.features
        ]

    def _build_model(self) -> nn.Module:
        c = self.config
        inputs, outputs = self.channels()
        options = {"segment": c.segment, "num_layers": c.num_layers, "dropout": c.dropout}
        targets = [inputs.index(o) for o in outputs]
        size = (len(inputs), c.lookback, c.horizon, c.hidden_size)
        make = partial(forecaster, c.model, *size, **options, targets=targets, backend=self.backend)
        return build(make, "Forecaster", "hidden_size (--hidden-size) or lookback and horizon")

    def forecast_windows(self, x: Windows | Tensor, batch: int = 512) -> Tensor:
        """The model's forecasts (N, F, K) of the standardized windows ``x`` (N, W, C) of the
        channels it reads, in eval mode."""
        if len(x) == 0:
            return torch.zeros(0, self.config.horizon, 1)
        return batched_predict(self.model, x, batch_size=batch)

    def read(self, data, *, columns: list[str] | None = None, limit=None) -> TimeSeries:
        """``data`` (a CSV path or a DataFrame) as this forecaster reads it: its target and
        feature columns, or exactly ``columns`` (a trained model's `columns`); ``limit`` rows."""
        c = self.config
        reading = {"time_column": c.time_column, "fillna": c.fillna, "columns": columns}
        reading["limit"] = limit
        return read_series(data, target=self.target, features=c.features, **reading)

    def history(self, data) -> pd.Series:
        """The target's values in ``data`` (read as the model reads it), in its units, indexed
        by the time column (row numbers when there is none): what a forecast continues."""
        series = self.read(data, columns=self.columns)
        index = series.time if series.time is not None else pd.RangeIndex(len(series))
        return pd.Series(series.values[:, series.columns.index(self.target)], index=index)

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
        if not isinstance(target, str):
            raise TypeError(f"Forecaster.fit: target must be a column name, got {target!r}")
        run = self.run_folder(out, resume, checkpoint_every, device, quiet, log)
        run.check(c.to_dict(), {"source": runs.source_name(data), "target": target})
        series, parts, sets, season = self._prepare(data, target, run)
        torch.manual_seed(c.train.seed)
        self.model = self._build_model()
        run.start(c.to_dict(), self._data_record(series, parts, runs.source_name(data)))
        val_x, val_y = sets["validation"]
        val_true = val_y.all()
        result = run.train(
            self.model,
            LOSS_FUNCTIONS[c.loss],
            sets["train"],
            c.train,
            evaluate=lambda model: self._validation_scores(val_x, val_true),
        )
        self.model.eval()
        scores, forecasts = self._test(sets, season)
        windows = {name: len(x) for name, (x, _) in sets.items()}
        self.report = ForecastReport(
            **run.outcome(result), **scores, windows=windows, season=season
        )
        if run.writes:
            test_x, test_y = sets["test"]
            pred = self.forecast_windows(test_x)
            examples = self._examples(series, parts, pred, test_y.all(), forecasts)
            plot_examples(run.path / PLOT_FILE, examples, self.target, c)
            run.finish(self.report, self._metrics(data, series, examples))
        return self.report

    def _prepare(self, data, target: str, run: runs.RunFolder):
        """Read ``data``, split it, fit the scaler on its training rows and cut the windows:
        (series, split, {part: (x, y) windows}, season or None)."""
        c = self.config
        self.target = target
        series = self.read(data, limit=c.limit)
        self.columns = series.columns
        parts = self._split(series)
        self.scaler, values = scaled(series, parts)  # (T, C)
        inputs, outputs = self.channels()
        named = (("train", parts.train), ("validation", parts.validation), ("test", parts.test))
        sets = {
            name: timeseries.windows(values, part, c.lookback, c.horizon, inputs, outputs)
            for name, part in named
        }
        counts = {name: len(x) for name, (x, _) in sets.items()}
        season = c.season
        if season is None:
            train_target = values[: parts.train[1], self.columns.index(target)].numpy()
            season = timeseries.detect_season(train_target, c.lookback)
        run.say(
            f"data: {series.source} ({len(series):,} rows, {len(self.columns)} channels; "
            f"windows {counts['train']:,} train / {counts['validation']:,} validation / "
            f"{counts['test']:,} test; season {season}); model {c.model}"
        )
        return series, parts, sets, season

    def _validation_scores(self, x: Windows, true: Tensor) -> dict[str, float]:
        pred = self.forecast_windows(x)
        return {
            "val_loss": float(LOSS_FUNCTIONS[self.config.loss](pred, true)),
            "val_mse": float(F.mse_loss(pred, true)),
            "val_mae": float(F.l1_loss(pred, true)),
        }

    def _test(self, sets, season: int | None) -> tuple[dict, dict[str, Tensor | None]]:
        """The scores of the model on the test and validation windows and of the baselines
        on the test windows (`ForecastReport`'s test, validation and baselines), and the
        baselines' forecasts."""
        c = self.config
        inputs, outputs = self.channels()
        test_x, test_y = sets["test"]
        forecasts = forecast_baselines(
            sets["train"],
            test_x.all(),
            [inputs.index(o) for o in outputs],
            c.horizon,
            season,
            shared=c.features != "MS",
        )
        baselines = {
            n: None if f is None else self._scores(f, test_y) for n, f in forecasts.items()
        }
        result = {"test": self._scores(test_x, test_y)}
        result["validation"] = self._scores(*sets["validation"])
        return {**result, "baselines": baselines}, forecasts

    def _scores(self, x: Windows | Tensor, y: Windows) -> dict:
        """`forecast_scores` of the forecasts ``x`` (N, F, K), or the model's of the windows
        ``x`` (N, W, C), against the windows ``y``."""
        outputs = self.channels()[1]
        pred = x if isinstance(x, Tensor) else self.forecast_windows(x)
        names, std = [self.columns[o] for o in outputs], self.scaler.std[outputs]
        return forecast_scores(pred, y.all(), std, names, self.target)

    def _split(self, series: TimeSeries) -> timeseries.Split:
        """The chronological split of ``series``; ValueError when a part holds no window."""
        c = self.config
        parts = split_series(series, c.split)
        short = short_part(parts, c.lookback, c.horizon)
        if short is None:
            return parts
        name, (a, b) = short
        if c.split == "ratio":
            raise ValueError(
                f"data: {series.source} has {len(series)} rows, too few for lookback "
                f"{c.lookback} + horizon {c.horizon} with a 70/10/20 split: its {name} part "
                f"({b - a} rows) holds no whole window; the minimum length is "
                f"{timeseries.minimum_length(c.lookback, c.horizon)} rows"
            )
        raise ValueError(
            f"data: the {name} part of the ETT split of {series.source} (rows {a}-{b - 1}) is "
            f"too short for lookback {c.lookback} + horizon {c.horizon}"
        )

    def _examples(self, series, parts, pred: Tensor, true: Tensor, forecasts) -> list[dict]:
        """A few test windows of the target, in its own units, for plots and reports."""
        c = self.config
        column = self.columns.index(self.target)  # every feature mode forecasts the target
        k = self.channels()[1].index(column)
        shown = {"actual": true[:, :, k], "forecast": pred[:, :, k]}
        shown.update({n: f[:, :, k] for n, f in forecasts.items() if f is not None})
        units = (self.scaler.mean[column], self.scaler.std[column])
        first = max(parts.test[0], c.lookback)
        return forecast_examples(series, column, first, c.lookback, shown, units, EXAMPLES)

    def _data_record(self, series: TimeSeries, parts, source: str | None) -> dict:
        """The data of config.json: what was read and how, to read new data the same way."""
        return {
            "source": source,
            "target": self.target,
            "columns": self.columns,
            "time_column": series.time_column,
            "rows": len(series),
            "start": str(series.time[0]) if series.time is not None else None,
            "end": str(series.time[-1]) if series.time is not None else None,
            "split": parts.as_dict(),
            "scaler": self.scaler.to_dict(),
        }

    def _metrics(self, data, series: TimeSeries, examples: list[dict]) -> dict:
        """metrics.json of a finished run."""
        c, report = self.config, self.report
        inputs, outputs = self.channels()
        by_column = {c.model: report.test["mae_original_by_column"]}
        by_column.update(
            {n: b["mae_original_by_column"] for n, b in report.baselines.items() if b is not None}
        )
        notes = []
        if report.season is None:
            notes.append(
                "No season was found in the training rows (or given with --season), so the "
                "seasonal-naive baseline was not computed."
            )
        return {
            "task": self.task,
            "test": headline(report.test),
            "validation": headline(report.validation),
            "baselines": {n: headline(b) for n, b in report.baselines.items()},
            "mae_original_by_column": by_column,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "data": {
                "source": runs.source_name(data) or "a DataFrame",
                "rows": len(series),
                "channels read": len(inputs),
                "channels forecast": len(outputs),
                "target": self.target,
                "train windows": report.windows["train"],
                "validation windows": report.windows["validation"],
                "test windows": report.windows["test"],
                "season": report.season,
            },
            "examples": forecast_table(examples, c.lookback, c.horizon, c.model),
            "figures": {
                PLOT_FILE: f"Forecasts of {self.target} for {len(examples)} test windows: "
                f"the last {c.lookback} steps read, the actual next {c.horizon} steps, "
                f"the {c.model} forecast and the linear and seasonal-naive baselines.",
            },
            "notes": notes,
        }

    # --- load and predict --------------------------------------------------------------------

    def _restore(self, stored: dict, run_dir: Path) -> None:
        data = stored["data"]
        self.columns, self.target = list(data["columns"]), data["target"]
        self.scaler = Scaler.from_dict(data["scaler"])

    def predict(self, data: pd.DataFrame | str | os.PathLike) -> pd.DataFrame:
        """The next ``horizon`` rows after the end of ``data``, in the data's units.

        ``data`` must hold the columns the model was trained on and at least ``lookback``
        rows; the forecast is a DataFrame indexed by the future timestamps (continuing the time
        column's frequency; row numbers when there is none), one column per forecast channel.
        """
        if self.model is None:
            raise ValueError("Forecaster.predict: fit or load a model first")
        c = self.config
        series = self.read(data, columns=self.columns)
        if len(series) < c.lookback:
            raise ValueError(
                f"data: {series.source} has {len(series)} rows; the model reads the last "
                f"lookback={c.lookback} rows, so it needs at least {c.lookback}"
            )
        inputs, outputs = self.channels()
        window = self.scaler.transform(series.values[-c.lookback :])[:, inputs]  # (W, C)
        x = torch.from_numpy(window).float().unsqueeze(0)  # (1, W, C)
        y = self.forecast_windows(x)[0].double().numpy()  # (F, K)
        values = self.scaler.inverse(y, outputs)
        index = timeseries.future_times(series.time, c.horizon, len(series))
        frame = pd.DataFrame(values, index=index, columns=[self.columns[o] for o in outputs])
        frame.index.name = series.time_column or ("time" if series.time is not None else "row")
        return frame

    def evaluate(self, data: pd.DataFrame | str | os.PathLike) -> dict:
        """MSE and MAE (standardized) and MAE in the data's units of the model on every window
        of ``data`` (read as the model was trained to read it): the scores of
        `ForecastReport.test`, on data of your choice."""
        if self.model is None:
            raise ValueError("Forecaster.evaluate: fit or load a model first")
        c = self.config
        series = self.read(data, columns=self.columns)
        values = torch.from_numpy(self.scaler.transform(series.values)).float()  # (T, C)
        inputs, outputs = self.channels()
        x, y = timeseries.windows(values, (0, len(series)), c.lookback, c.horizon, inputs, outputs)
        if len(x) == 0:
            need = c.lookback + c.horizon
            raise ValueError(f"data: {series.source} has {len(series)} rows; it needs {need}")
        return self._scores(x, y)


def plot_examples(path, examples: list[dict], target: str, config: ForecastConfig) -> Path:
    """Draw the test windows of a run (`gru.viz.figures.forecast_examples`) as a PNG."""
    from gru.viz import figures  # matplotlib loads only when a picture is drawn

    c = config
    figure = figures.forecast_examples(
        examples, target, lookback=c.lookback, horizon=c.horizon, model=c.model
    )
    return figures.save_png(figure, path, dpi=90)


def plot_future(path: str | os.PathLike, history: pd.Series, forecast: pd.Series, title: str):
    """Draw the end of a series (`Forecaster.history`) and its forecast (a column of
    `Forecaster.predict`) as a PNG."""
    from gru.viz import figures

    return figures.save_png(figures.future_forecast(history, forecast, title), path, dpi=90)
