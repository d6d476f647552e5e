"""Anomaly detection: a GRU learns to forecast a series one step ahead, and a point whose
value is far from its forecast, in units of the usual forecast error, is flagged.

Scoring. The forecaster (`gru.models.GRUForecaster`, univariate, horizon 1) reads the W values
before t and predicts x̂_t; the residual r_t = x_t − x̂_t is standardized with the median and
the MAD (× 1.4826, the standard deviation of a normal sample) of the residuals on the
validation part: z_t = (r_t − median_1) / scale_1. A point is flagged when |z_t| exceeds the
threshold, by default the ``quantile`` (0.999) of |z| over the validation part (or a
threshold given).

With ``impute`` (the default) a flagged value is replaced by its forecast in the windows that
read it afterwards, so that a level shift or a run of zeros keeps being compared with what the
series would have done instead of becoming the new normal at once. A forecast made k steps
after the last real value is a k-step-ahead forecast, whose errors are larger, so its residual
is standardized by median_k and scale_k, measured on the validation part by letting the
forecaster run on its own forecasts for k = 1 … W steps. After W flagged points in a row the
new level is accepted and the real values are read again.

Evaluation (`gru.tasks.evaluation`). Before training, `gru train anomaly` plants anomalies
(spikes, level shifts, runs dropped to zero) at known positions in a copy of the test part, and
after it reports point-wise precision, recall and F1 and the share of anomalies found, beside a
rolling z-score detector (`gru.tasks.baselines.rolling_zscore`: each value against the mean
and standard deviation of the ``baseline_window`` values before it) whose threshold is chosen
by the same rule on the same validation part.

    detector = AnomalyDetector(lookback=48)
    report = detector.fit(df, column="OT")              # or a CSV path
    flagged = detector.detect(df)                       # a DataFrame of scores and flags

Shapes: T points, W lookback, N windows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from gru import checkpoint
from gru.data import timeseries
from gru.data.timeseries import Scaler, TimeSeries
from gru.models import GRUForecaster, batched_predict, build
from gru.tasks import evaluation, runs
from gru.tasks.baselines import rolling_zscore, rolling_zscore_part
from gru.tasks.evaluation import KINDS, detection_scores, inject_anomalies  # importable here
from gru.tasks.series import check_reading, read_series, scaled, short_part, split_series
from gru.training import TrainConfig

__all__ = [  # with the evaluation and baseline of other modules, importable here as before
    "KINDS",
    "AnomalyConfig",
    "AnomalyDetector",
    "AnomalyReport",
    "detection_scores",
    "inject_anomalies",
    "plot_flags",
    "rolling_zscore",
]

PLOT_FILE = "anomalies_test.png"
SUMMARY = ("precision", "recall", "f1", "event_recall", "event_precision", "event_f1")
DETECTOR_STATE = ("center", "scale", "threshold")  # saved beside the weights after training


@dataclass
class AnomalyConfig(runs.TaskConfig):
    """Everything that decides a detector: the forecaster, the threshold rule, the data split,
    the baseline's window and the evaluation's planted anomalies.

    ``anomalies``: how many anomalies to plant in the test part; None (the default) plants as
    many as fit, at most 15 (`gru.tasks.evaluation.plant_anomalies`); a number that does not
    fit is an error. ``limit``: train on the first that many rows only (quick runs).
    """

    ADDED_LATER: ClassVar[dict] = {"limit": None}  # runs written before --limit

    lookback: int = 48
    hidden_size: int = 32
    num_layers: int = 1
    dropout: float = 0.0
    quantile: float = 0.999
    impute: bool = True
    baseline_window: int = 48
    split: str = "ratio"
    anomalies: int | None = None
    magnitude: float = 6.0
    time_column: str | None = None
    fillna: str | None = None
    limit: int | None = None
    train: TrainConfig = field(
        default_factory=runs.least_val_loss(epochs=8, batch_size=128, lr=3e-3)
    )

    def check(self) -> None:
        """Raise ValueError naming the first setting out of range."""
        minimums = {"lookback": 2, "hidden_size": 1, "num_layers": 1, "baseline_window": 2}
        minimums.update(anomalies=0, limit=2)  # or None: as many as fit, every row
        runs.check_ints("AnomalyConfig", self, minimums, optional=("anomalies", "limit"))
        runs.check_numbers("AnomalyConfig", self, ("quantile", "magnitude"))
        if not 0.5 <= self.quantile < 1.0:
            raise ValueError(f"AnomalyConfig: quantile must be in [0.5, 1), got {self.quantile}")
        if not 0 < self.magnitude < float("inf"):
            raise ValueError(
                f"AnomalyConfig: magnitude must be a finite number > 0, got {self.magnitude}"
            )
        check_reading("AnomalyConfig", self)
        self.train.check()


# --- the report --------------------------------------------------------------------------------


@dataclass
class AnomalyReport(runs.RunReport):
    """The outcome of `AnomalyDetector.fit`: the forecaster's training ``history``, the
    threshold, and the evaluation on the test part with planted anomalies: ``test`` (the GRU
    detector) and ``baseline`` (rolling z-score) hold precision, recall, F1 and event recall;
    ``events`` the anomalies planted."""

    threshold: float
    baseline_threshold: float
    test: dict
    baseline: dict
    events: list[dict]


class AnomalyDetector(runs.Task):
    """Flags the points of a series that its GRU forecaster did not expect.

    Settings by name (`AnomalyConfig` and `TrainConfig` fields) or a whole ``config``;
    ``backend`` is passed to `gru.GRU` (speed only).
    """

    task = "anomaly"
    config_class = AnomalyConfig
    model: GRUForecaster | None = None
    report: AnomalyReport | None = None
    column: str | None = None
    scaler: Scaler | None = None  # fitted on the training rows
    threshold: float | None = None

    def __init__(self, config: AnomalyConfig | None = None, **options) -> None:
        super().__init__(config, **options)
        self.center = np.zeros(1)  # (K,): median of the k-step validation residuals, k = 1 … K
        self.scale = np.ones(1)  # (K,): their MAD × 1.4826

    def _build_model(self) -> GRUForecaster:
        c = self.config
        options = {"num_layers": c.num_layers, "dropout": c.dropout, "backend": self.backend}
        make = partial(GRUForecaster, 1, 1, c.hidden_size, **options)
        return build(make, "AnomalyDetector", "hidden_size (--hidden-size) or num_layers")

    def read(self, data, limit: int | None = None) -> TimeSeries:
        """The detector's column of ``data`` (a CSV path or a DataFrame), as it reads it."""
        reading = {"time_column": self.config.time_column, "fillna": self.config.fillna}
        reading.update(limit=limit)
        return read_series(data, target=self.column, features="S", **reading)

    def _forecasts(self, z: np.ndarray, batch: int = 2048) -> np.ndarray:
        """One-step forecasts (T,) of the standardized series z (T,); NaN for t < W."""
        W = self.config.lookback
        pred = np.full(len(z), np.nan)
        if len(z) <= W:
            return pred
        values = torch.from_numpy(z).float().unsqueeze(1)  # (T, 1)
        x, _ = timeseries.windows(values, (W, len(z)), W, 1, [0], [0])
        pred[W:] = batched_predict(self.model, x, batch_size=batch)[:, 0, 0].double().numpy()
        return pred

    @torch.no_grad()
    def _rollout_errors(self, z: np.ndarray, steps: int, batch: int = 4096) -> np.ndarray:
        """Errors (N, steps) of forecasts k = 1 … steps ahead of z (T,), standardized units:
        from every window of W real values the forecaster runs on its own forecasts; row i
        starts at t = W + i. Forecasts past the end are NaN."""
        W = self.config.lookback
        starts = np.arange(W, len(z))
        errors = np.full((len(starts), steps), np.nan)
        for chunk in np.array_split(starts, max(1, len(starts) // batch + 1)):
            window = torch.from_numpy(np.stack([z[t - W : t] for t in chunk])).float()  # (n, W)
            for k in range(steps):
                p = self.model(window.unsqueeze(-1))[:, 0, 0]  # (n,)
                at = chunk + k
                valid = at < len(z)
                rows = chunk[valid] - W
                errors[rows, k] = z[at[valid]] - p.double().numpy()[valid]
                window = torch.cat([window[:, 1:], p.unsqueeze(1)], dim=1)
        return errors

    def score(self, x: np.ndarray, threshold: float | None = None) -> pd.DataFrame:
        """Score the series ``x`` (T,) in its own units: one row per point with the forecast,
        the residual, the standardized score and whether it is flagged (|score| > threshold,
        the detector's own threshold unless one is given). The first W points have no score.
        """
        if self.model is None:
            raise ValueError("AnomalyDetector.score: fit or load a model first")
        threshold = self.threshold if threshold is None else threshold
        mean, std = self.scaler.mean[0], self.scaler.std[0]
        z_series = (np.asarray(x, dtype=np.float64) - mean) / std  # (T,)
        pred = self._forecasts(z_series)
        scores = (z_series - pred - self.center[0]) / self.scale[0]  # one step ahead
        flags = np.abs(np.nan_to_num(scores)) > threshold
        if self.config.impute:
            self._impute(z_series, pred, scores, flags, threshold)
        return pd.DataFrame(
            {
                "value": np.asarray(x, dtype=np.float64),
                "forecast": pred * std + mean,
                "residual": (z_series - pred) * std,
                "score": scores,
                "anomaly": flags,
            }
        )

    def _impute(self, z_series, pred, scores, flags, threshold: float) -> None:
        """Walk forward over z (T,) and update ``pred``, ``scores`` and ``flags`` in place: a
        flagged value is replaced by its forecast, the W windows that read it are forecast
        again (one batch), and a forecast made after ``run`` imputed values is scored as a
        (run + 1)-step-ahead one."""
        W, K, T = self.config.lookback, len(self.center), len(z_series)
        observed = z_series.copy()  # what the windows read
        run = 0  # imputed values just before t
        for t in range(W, T):
            k = min(run, K - 1)
            scores[t] = (z_series[t] - pred[t] - self.center[k]) / self.scale[k]
            flags[t] = abs(scores[t]) > threshold
            if flags[t] and run < W:
                observed[t] = pred[t]
                run += 1
            elif run:
                if flags[t]:  # W flagged points in a row: accept the new level
                    observed[t - W : t] = z_series[t - W : t]
                run = 0
            else:
                continue  # nothing changed: the batched forecasts stand
            redo = np.arange(t + 1, min(t + W + 1, T))  # the windows that read t
            if len(redo):
                windows = np.stack([observed[r - W : r] for r in redo])  # (len(redo), W)
                with torch.no_grad():
                    again = self.model(torch.from_numpy(windows).float().unsqueeze(-1))
                pred[redo] = again[:, 0, 0].double().numpy()

    def fit(
        self,
        data: pd.DataFrame | str | os.PathLike,
        column: str,
        *,
        out: str | os.PathLike | None = None,
        resume: bool = False,
        checkpoint_every: int | None = None,
        quiet: bool = False,
        device: str = "cpu",
        log=print,
    ) -> AnomalyReport:
        """Train the forecaster on ``column`` of ``data``, choose the threshold on the
        validation part, and evaluate on the test part with planted anomalies (module doc).
        With ``out`` the run folder is written there (it must not exist yet or be empty,
        unless ``resume`` continues it)."""
        c = self.config
        c.check()
        if not isinstance(column, str):
            raise TypeError(f"AnomalyDetector.fit: column must be a column name, got {column!r}")
        run = self.run_folder(out, resume, checkpoint_every, device, quiet, log)
        source = runs.source_name(data)
        run.check(c.to_dict(), {"source": source, "column": column})
        series, parts, planted = self._prepare(data, column)
        self.scaler, z = scaled(series, parts)  # (T, 1)
        W = c.lookback
        train_x, train_y = timeseries.windows(z, parts.train, W, 1, [0], [0])
        val_x, val_y = timeseries.windows(z, parts.validation, W, 1, [0], [0])
        val_true = val_y.all()
        run.say(
            f"data: {series.source} column {column!r} ({len(series):,} points: "
            f"{len(train_x):,} train / {len(val_x):,} validation windows / "
            f"{parts.test[1] - parts.test[0]:,} test points)"
        )

        def evaluate(model) -> dict[str, float]:
            pred = batched_predict(model, val_x, batch_size=2048)
            return {"val_loss": float(F.mse_loss(pred, val_true))}

        torch.manual_seed(c.train.seed)
        self.model = self._build_model()
        record = {"source": source, "column": column, "rows": len(series)}
        record.update(time_column=series.time_column, split=parts.as_dict())
        run.start(c.to_dict(), {**record, "scaler": self.scaler.to_dict()})
        result = run.train(self.model, F.mse_loss, (train_x, train_y), c.train, evaluate=evaluate)
        self.model.eval()
        baseline_threshold = self._calibrate(series.values[:, 0], parts.validation)
        tested = self._evaluate(series, parts, planted, baseline_threshold)
        self.report = AnomalyReport(
            **run.outcome(result),
            threshold=self.threshold,
            baseline_threshold=baseline_threshold,
            **{k: tested[k] for k in ("test", "baseline")},
            events=planted[2],
        )
        if run.writes:
            plot_flags(
                run.path / PLOT_FILE,
                tested["scored"],
                column,
                times=tested["times"],
                title="test part",
                shaded=evaluation.true_runs(planted[1]),
                baseline_flags=tested["base"],
            )
            self._save_detector(run.path)
            run.finish(self.report, self._metrics(source, series, parts, planted, tested))
        return self.report

    def _prepare(self, data, column: str) -> tuple[TimeSeries, timeseries.Split, tuple]:
        """Read ``column`` of ``data`` and split it; plant the anomalies to find in its test
        part now (seeded, from the data alone), so that a test part without room for them
        stops the run before it trains: (series, split, (planted (T,), labels, events))."""
        self.column = column
        series = self.read(data, self.config.limit)
        W = self.config.lookback
        parts = split_series(series, self.config.split)
        short = short_part(parts, W, W)
        if short is not None:
            name, (a, b) = short
            raise ValueError(
                f"data: {series.source} has {len(series)} rows, too few for lookback {W}: its "
                f"{name} part ({b - a} rows) must hold at least {W} points after their "
                f"lookback; the minimum length is {timeseries.minimum_length(W, W)} rows"
            )
        a, b, c = *parts.test, self.config
        planted = evaluation.plant_anomalies(
            series.values[a:b, 0],
            c.anomalies,
            seed=c.train.seed,
            magnitude=c.magnitude,
            lookback=c.lookback,
            baseline_window=c.baseline_window,
            source=series.source,
        )
        return series, parts, planted

    def _calibrate(self, x: np.ndarray, validation: tuple[int, int]) -> float:
        """Set the residual statistics and the threshold from the ``validation`` part of
        ``x`` (T,), read with W points of context before it; return the baseline's
        threshold, chosen by the same rule on the same part."""
        c = self.config
        W, (a, b) = c.lookback, validation
        context = max(a - W, 0)
        z_val = (x[context:b] - self.scaler.mean[0]) / self.scaler.std[0]
        errors = self._rollout_errors(z_val, W)[a - context - W :]  # (N, W): k = 1 … W
        self.center = np.nanmedian(errors, axis=0)  # (W,)
        spread = np.nanmedian(np.abs(errors - self.center), axis=0)  # (W,)
        self.scale = np.where(spread > 0, evaluation.MAD_TO_STD * spread, 1.0)
        first = (errors[:, 0] - self.center[0]) / self.scale[0]  # one step ahead
        self.threshold = evaluation.quantile_threshold(first, c.quantile)
        baseline_val = rolling_zscore_part(x, validation, c.baseline_window)
        return evaluation.quantile_threshold(baseline_val, c.quantile)

    def _evaluate(self, series, parts, planted, baseline_threshold: float) -> dict:
        """Both detectors on the test part with the anomalies planted in it: the GRU's
        scores ("scored"), both detectors' flags and `detection_scores`."""
        c = self.config
        x, (a, b) = series.values[:, 0], parts.test
        values, labels, events = planted
        with_context = np.concatenate([x[max(a - c.lookback, 0) : a], values])
        scored = self.score(with_context).iloc[-(b - a) :].reset_index(drop=True)
        flags = scored["anomaly"].to_numpy()
        base_z = rolling_zscore_part(x, parts.test, c.baseline_window, values)
        base_flags = np.abs(np.nan_to_num(base_z)) > baseline_threshold
        times = series.time[a:b] if series.time is not None else np.arange(a, b)
        return {
            "scored": scored,
            "flags": flags,
            "base": base_flags,
            "times": times,
            "test": detection_scores(flags, labels, events),
            "baseline": detection_scores(base_flags, labels, events),
        }

    def _save_detector(self, out: Path) -> None:
        """Save the weights again with the residual statistics and the threshold beside them
        (chosen after training) as tensors ``detector.*``, under the same checksums."""
        state = dict(self.model.state_dict())
        for name in DETECTOR_STATE:
            state[f"detector.{name}"] = torch.as_tensor(getattr(self, name), dtype=torch.float64)
        checkpoint.save_model(out, state, checkpoint.load_config(out))

    def _metrics(self, source, series, parts, planted, tested: dict) -> dict:
        """metrics.json of a finished run."""
        report, column = self.report, self.column
        _, labels, events = planted
        flags, base_flags, times = tested["flags"], tested["base"], tested["times"]
        scores = tested["scored"]["score"].to_numpy()
        flagged = {"gru": flags, "rolling_zscore": base_flags}
        return {
            "task": self.task,
            "test": {k: report.test[k] for k in SUMMARY},
            "baselines": {"rolling_zscore": {k: report.baseline[k] for k in SUMMARY}},
            "counts": {"gru": report.test, "rolling_zscore": report.baseline},
            "event_recall_by_kind": evaluation.recall_by_kind(events, labels, flagged),
            "threshold": self.threshold,
            "baseline_threshold": report.baseline_threshold,
            "residual_scale_by_steps_ahead": self.scale.tolist(),
            "data": {
                "source": source,
                "column": column,
                "points": len(series),
                "test points": parts.test[1] - parts.test[0],
                "anomalies planted": len(events),
                "anomalous points": int(labels.sum()),
            },
            "examples": [
                evaluation.planted_table(events, times, flagged),
                evaluation.alarm_table(flags, scores, events, times),
            ],
            "events": events,
            "figures": {
                PLOT_FILE: f"The test part of {column} with the planted anomalies shaded, the "
                "points each detector flagged, and the GRU's score.",
            },
        }

    def _restore(self, stored: dict, run_dir: Path) -> dict:
        """The column and scaler from config.json; the residual statistics and the threshold
        from the tensors ``detector.*`` saved beside the weights, which are returned."""
        self.column = stored["data"]["column"]
        self.scaler = Scaler.from_dict(stored["data"]["scaler"])
        state = checkpoint.load_model_state(run_dir, stored)
        if any(f"detector.{n}" not in state for n in DETECTOR_STATE):
            raise ValueError(
                f"run: {str(run_dir)!r} has no threshold yet: its training did not finish; "
                f"continue it with --resume {run_dir}"
            )
        self.center = state.pop("detector.center").numpy()
        self.scale = state.pop("detector.scale").numpy()
        self.threshold = float(state.pop("detector.threshold"))
        return state

    def detect(
        self, data: pd.DataFrame | str | os.PathLike, *, threshold: float | None = None
    ) -> pd.DataFrame:
        """Score every point of the detector's column in ``data``: a DataFrame indexed by the
        time column (row numbers without one) with value, forecast, residual, score and
        anomaly (bool). ``threshold`` replaces the one chosen on validation data."""
        if self.model is None:
            raise ValueError("AnomalyDetector.detect: fit or load a model first")
        if threshold is not None and (not isinstance(threshold, int | float) or not threshold > 0):
            raise ValueError(
                f"AnomalyDetector.detect: threshold must be positive, got {threshold!r}"
            )
        series = self.read(data)
        W = self.config.lookback
        if len(series) <= W:
            raise ValueError(
                f"data: {series.source} has {len(series)} rows; the detector reads the "
                f"{W} values before each point, so it needs at least {W + 1}"
            )
        frame = self.score(series.values[:, 0], threshold)
        if series.time is not None:
            frame.index = series.time
            frame.index.name = series.time_column or "time"
        return frame

    predict = detect  # the name every task's class answers to

    def evaluate(self, data: pd.DataFrame | str | os.PathLike, labels: np.ndarray) -> dict:
        """`detection_scores` of `detect` on ``data`` against the known anomalous points
        ``labels`` (T,) bool of its rows (each run of them counts as one event)."""
        labels = np.asarray(labels, bool)
        flags = self.detect(data)["anomaly"].to_numpy()
        if len(labels) != len(flags):
            raise ValueError(
                f"AnomalyDetector.evaluate: labels has {len(labels)} points, data {len(flags)}"
            )
        events = [{"start": s, "end": e} for s, e in evaluation.true_runs(labels)]
        return detection_scores(flags, labels, events)


def plot_flags(
    path: str | os.PathLike, frame: pd.DataFrame, column: str, *, times=None, **drawing
) -> Path:
    """Draw a scored series (`AnomalyDetector.detect`'s frame, over ``times``: its index by
    default) with its flagged points as a PNG; ``drawing``: the title, the known anomalies
    shaded and a baseline's flags (`gru.viz.figures.anomaly_detection`)."""
    from gru.viz import figures  # matplotlib loads only when a picture is drawn

    figure = figures.anomaly_detection(
        frame.index.to_numpy() if times is None else times,
        frame["value"].to_numpy(),
        frame["anomaly"].to_numpy(),
        frame["score"].to_numpy(),
        column=column,
        **{"title": "detect", **drawing},
    )
    return figures.save_png(figure, path, dpi=90)
