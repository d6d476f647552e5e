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

Evaluation. `gru train anomaly` plants anomalies at known positions in a copy of the test part
(`inject_anomalies`: spikes, level shifts, runs dropped to zero; by default as many as fit, at
most 15, each with max(lookback, baseline_window) normal points before and after it; they are
planted before training, so a test part too short for them stops the run before it trains)
and reports point-wise
precision, recall and F1 and the share of anomalies with at least one flagged point, beside a
rolling z-score detector (`rolling_zscore`: each value against the mean and standard deviation
of the ``baseline_window`` values before it) whose threshold is chosen by the same rule on the
same validation part.

    detector = AnomalyDetector(lookback=48)
    report = detector.fit(df, column="OT")              # or a CSV path
    flagged = detector.detect(df)                       # a DataFrame of scores and flags

Shapes: T points, W lookback, N windows.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from gru import __version__, checkpoint, training
from gru.data import timeseries
from gru.data.timeseries import Scaler, TimeSeries
from gru.models import GRUForecaster
from gru.tasks._runs import (
    TaskConfig,
    check_ints,
    check_out,
    check_resume,
    load_run,
    settled_config,
)
from gru.training import TrainConfig
from gru.viz.report import write_report

__all__ = [
    "KINDS",
    "AnomalyConfig",
    "AnomalyDetector",
    "AnomalyReport",
    "detection_scores",
    "inject_anomalies",
    "rolling_zscore",
]

KINDS = ("spike", "level_shift", "dropout")  # dropout: a run of values dropped to zero
PLOT_FILE = "anomalies_test.png"
MAD_TO_STD = 1.4826  # the MAD of a normal sample times this is its standard deviation
SUMMARY = ("precision", "recall", "f1", "event_recall", "event_precision", "event_f1")
DETECTOR_STATE = ("center", "scale", "threshold")  # saved beside the weights after training
DEFAULT_ANOMALIES = 15  # planted by default, or as many as fit in a shorter test part


@dataclass
class AnomalyConfig(TaskConfig):
    """Everything that decides a detector: the forecaster, the threshold rule, the data split,
    the baseline's window and the evaluation's planted anomalies.

    ``anomalies``: how many anomalies to plant in the test part; None (the default) plants as
    many as fit, at most `DEFAULT_ANOMALIES` (15); a number that does not fit is an error.
    """

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
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            epochs=8,
            batch_size=128,
            lr=3e-3,
            schedule="cosine",
            monitor="val_loss",
            mode="min",
            restore_best=True,
        )
    )

    def check(self) -> None:
        """Raise ValueError naming the first setting out of range."""
        minimums = {"lookback": 2, "hidden_size": 1, "num_layers": 1, "baseline_window": 2}
        # anomalies None: as many as fit
        check_ints("AnomalyConfig", self, {**minimums, "anomalies": 0}, optional=("anomalies",))
        if not 0.5 <= self.quantile < 1.0:
            raise ValueError(f"AnomalyConfig: quantile must be in [0.5, 1), got {self.quantile}")
        if not self.magnitude > 0:
            raise ValueError(f"AnomalyConfig: magnitude must be positive, got {self.magnitude}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"AnomalyConfig: dropout must be in [0, 1), got {self.dropout}")
        if self.split not in timeseries.SPLITS:
            raise ValueError(
                f"AnomalyConfig: split must be one of {timeseries.SPLITS}, got {self.split!r}"
            )
        if self.fillna is not None and self.fillna not in timeseries.FILLNA:
            raise ValueError(
                f"AnomalyConfig: fillna must be one of {timeseries.FILLNA} or None, "
                f"got {self.fillna!r}"
            )
        self.train.check()


# --- planted anomalies, the baseline and the scores --------------------------------------------


def inject_anomalies(
    x: np.ndarray,
    count: int,
    *,
    rng: np.random.Generator,
    magnitude: float = 6.0,
    kinds: tuple[str, ...] = KINDS,
    margin: int = 48,
    allow_fewer: bool = False,
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Plant ``count`` anomalies in a copy of ``x`` (T,) at random, non-overlapping places.

    The kinds take turns: a ``spike`` adds ±(1 to 1.5)·magnitude·σ to one point; a
    ``level_shift`` adds ±(1 to 1.5)·magnitude·σ to 12–48 consecutive points; a ``dropout``
    sets 6–24 consecutive points to 0 (a sensor that stops reporting), where their mean is at
    least magnitude·σ away from 0 (a drop to 0 where the series is near 0 is no anomaly).
    σ is the robust standard deviation (MAD × 1.4826) of the one-step changes x_t − x_{t−1},
    the series' usual step size. Each anomaly keeps ``margin`` normal points before it and
    after it, so one anomaly's effect on a detector's window does not reach the next, and none
    starts in the first ``margin`` points. A kind with no room left gives its turn to the next
    kind that has room.

    When no kind has room for the next anomaly, ValueError, or with ``allow_fewer`` the
    anomalies planted so far (the first n of the same seed's ``count``: the draws are the
    same). Returns (the series with anomalies (T,), labels (T,) bool, one dict per anomaly with
    its kind, start, end (exclusive) and size in σ).
    """
    x = np.asarray(x, dtype=np.float64)
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"inject_anomalies: kinds must be among {KINDS}, got {kind!r}")
    T = len(x)
    steps = np.diff(x)
    sigma = MAD_TO_STD * float(np.median(np.abs(steps - np.median(steps)))) if T > 1 else 0.0
    if sigma == 0:
        sigma = float(np.std(steps)) if T > 1 else 0.0
        sigma = sigma or 1.0
    out, labels = x.copy(), np.zeros(T, dtype=bool)
    taken = np.zeros(T, dtype=bool)
    taken[:margin] = True
    sums = np.concatenate([[0.0], np.cumsum(x)])  # (T + 1,): window means of x
    events = []
    for i in range(count):
        for turn in range(len(kinds)):
            kind = kinds[(i + turn) % len(kinds)]
            length = {"spike": 1, "level_shift": int(rng.integers(12, 49)), "dropout": 0}[kind]
            if kind == "dropout":
                length = int(rng.integers(6, 25))
            s = np.arange(max(T - length - margin, 0))  # candidate starts
            busy = np.concatenate([[0], np.cumsum(taken)])  # (T + 1,): taken points before t
            lo, hi = np.maximum(s - margin, 0), np.minimum(s + length + margin, T)
            fits = busy[hi] - busy[lo] == 0  # no taken point within margin
            if kind == "dropout":
                mean = (sums[s + length] - sums[s]) / length
                fits &= np.abs(mean) >= magnitude * sigma
            free = s[fits]
            if len(free):
                break
        else:
            if allow_fewer:
                break
            raise ValueError(
                f"inject_anomalies: no room for {count} anomalies {margin} points apart in "
                f"{T} points (only {i} fit); plant fewer"
            )
        s = int(rng.choice(free))
        size = float(rng.uniform(1.0, 1.5) * magnitude * rng.choice((-1.0, 1.0)))
        if kind == "dropout":
            out[s : s + length] = 0.0
            size = float(-np.mean(x[s : s + length]) / sigma)
        else:
            out[s : s + length] += size * sigma
        labels[s : s + length] = True
        taken[s : s + length] = True
        events.append({"kind": kind, "start": s, "end": s + length, "size_sigma": size})
    events.sort(key=lambda e: e["start"])
    return out, labels, events


def rolling_zscore(x: np.ndarray, window: int) -> np.ndarray:
    """z_t = (x_t − mean) / std of the ``window`` values before t (T,); NaN for t < window.

    A std of 0 (a flat stretch) is replaced by the smallest positive one seen, so a change
    after a flat stretch scores high instead of infinite.
    """
    x = np.asarray(x, dtype=np.float64)
    z = np.full(len(x), np.nan)
    if len(x) <= window:
        return z
    past = np.lib.stride_tricks.sliding_window_view(x[:-1], window)  # (T − window, window)
    mean, std = past.mean(axis=1), past.std(axis=1)
    positive = std[std > 0]
    std = np.where(std > 0, std, positive.min() if len(positive) else 1.0)
    z[window:] = (x[window:] - mean) / std
    return z


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of consecutive True values of ``mask``."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def detection_scores(flags: np.ndarray, labels: np.ndarray, events: list[dict]) -> dict:
    """How well ``flags`` find the anomalies ``labels`` (T,) bool, planted as ``events``.

    Point-wise: precision, recall and F1 over points. By event: "event_recall", the share of
    events with at least one flagged point; "event_precision", the share of alarms (runs of
    consecutive flagged points) that touch an anomalous point; "event_f1" of the two.
    """
    flags, labels = np.asarray(flags, bool), np.asarray(labels, bool)
    tp = int(np.sum(flags & labels))
    fp = int(np.sum(flags & ~labels))
    fn = int(np.sum(~flags & labels))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    found = [bool(flags[e["start"] : e["end"]].any()) for e in events]
    alarms = _runs(flags)
    event_recall = float(np.mean(found)) if found else 0.0
    event_precision = float(np.mean([labels[s:e].any() for s, e in alarms])) if alarms else 0.0
    event_f1 = (
        2 * event_precision * event_recall / (event_precision + event_recall)
        if event_precision + event_recall
        else 0.0
    )
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "event_recall": event_recall,
        "event_precision": event_precision,
        "event_f1": event_f1,
        "alarms": len(alarms),
        "true_positives": tp,
        "false_positives": fp,
        "false_negatives": fn,
    }


def _threshold(scores: np.ndarray, quantile: float) -> float:
    finite = np.abs(scores[np.isfinite(scores)])
    return float(np.quantile(finite, quantile)) if len(finite) else math.inf


# --- the report --------------------------------------------------------------------------------


@dataclass
class AnomalyReport:
    """The outcome of `AnomalyDetector.fit`: the forecaster's training ``history``, the
    threshold, and the evaluation on the test part with planted anomalies: ``test`` (the GRU
    detector) and ``baseline`` (rolling z-score) hold precision, recall, F1 and event recall;
    ``events`` the anomalies planted."""

    history: list[dict[str, float]]
    best_epoch: int
    threshold: float
    baseline_threshold: float
    test: dict
    baseline: dict
    events: list[dict]
    seconds: float
    training_seconds: float
    run_dir: Path | None


# --- the Python API ----------------------------------------------------------------------------


class AnomalyDetector:
    """Flags the points of a series that its GRU forecaster did not expect.

    Settings by name (`AnomalyConfig` and `TrainConfig` fields) or a whole ``config``;
    ``backend`` is passed to `gru.GRU` (speed only).
    """

    def __init__(
        self, *, config: AnomalyConfig | None = None, backend: str = "auto", **settings
    ) -> None:
        self.config = settled_config(config, AnomalyConfig, settings, "AnomalyDetector")
        self.backend = backend
        self.model: GRUForecaster | None = None
        self.column: str | None = None
        self.scaler: Scaler | None = None
        self.center = np.zeros(1)  # (K,): median of the k-step validation residuals, k = 1 … K
        self.scale = np.ones(1)  # (K,): their MAD × 1.4826
        self.threshold: float | None = None
        self.report: AnomalyReport | None = None

    def _build_model(self) -> GRUForecaster:
        c = self.config
        return GRUForecaster(
            1,
            1,
            c.hidden_size,
            num_layers=c.num_layers,
            dropout=c.dropout,
            backend=self.backend,
        )

    def _read(self, data) -> TimeSeries:
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
            target=self.column,
            features="S",
            time_column=c.time_column,
            fillna=c.fillna,
            source=source,
        )

    @torch.no_grad()
    def _forecasts(self, z: np.ndarray, batch: int = 2048) -> np.ndarray:
        """One-step forecasts (T,) of the standardized series z (T,); NaN for t < W."""
        W = self.config.lookback
        pred = np.full(len(z), np.nan)
        if len(z) <= W:
            return pred
        values = torch.from_numpy(z).float().unsqueeze(1)  # (T, 1)
        x, _ = timeseries.windows(values, (W, len(z)), W, 1, [0], [0])
        self.model.eval()
        out = [self.model(x[index]) for index in torch.arange(len(x)).split(batch)]
        pred[W:] = torch.cat(out)[:, 0, 0].double().numpy()
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
        W, impute = self.config.lookback, self.config.impute
        K = len(self.center)
        mean, std = self.scaler.mean[0], self.scaler.std[0]
        z_series = (np.asarray(x, dtype=np.float64) - mean) / std  # (T,)
        pred = self._forecasts(z_series)
        scores = (z_series - pred - self.center[0]) / self.scale[0]  # one step ahead
        flags = np.abs(np.nan_to_num(scores)) > threshold
        # With imputation, walk forward: a flagged value is replaced by its forecast, the W
        # windows that read it are forecast again (one batch), and a forecast made after
        # `run` imputed values is scored as a (run + 1)-step-ahead one.
        observed = z_series.copy()  # what the windows read
        run = 0  # imputed values just before t
        for t in range(W, len(x)) if impute else ():
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
            redo = np.arange(t + 1, min(t + W + 1, len(x)))  # the windows that read t
            if len(redo):
                windows = np.stack([observed[r - W : r] for r in redo])  # (len(redo), W)
                with torch.no_grad():
                    again = self.model(torch.from_numpy(windows).float().unsqueeze(-1))
                pred[redo] = again[:, 0, 0].double().numpy()
        return pd.DataFrame(
            {
                "value": np.asarray(x, dtype=np.float64),
                "forecast": pred * std + mean,
                "residual": (z_series - pred) * std,
                "score": scores,
                "anomaly": flags,
            }
        )

    # --- fit ---------------------------------------------------------------------------------

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
        start = time.perf_counter()
        if not isinstance(column, str):
            raise TypeError(f"AnomalyDetector.fit: column must be a column name, got {column!r}")
        rank, _ = training.distributed(device)
        main = rank == 0
        say = log if (main and not quiet) else (lambda message: None)
        out = Path(out) if out is not None else None
        source = os.path.abspath(str(data)) if isinstance(data, (str, os.PathLike)) else None
        if resume and out is None:
            raise ValueError("AnomalyDetector.fit: resume=True needs out, the run to resume")
        if out is not None and main:
            if resume:
                check_resume(out, "anomaly", c.to_dict(), {"source": source, "column": column})
            else:
                check_out(out)

        self.column = column
        series = self._read(data)
        T, W = len(series), c.lookback
        per_day = timeseries.rows_per_day(series.time)
        parts = timeseries.split_rows(T, c.split, per_day=per_day)
        for name, part in (
            ("train", parts.train),
            ("validation", parts.validation),
            ("test", parts.test),
        ):
            if part[1] - max(part[0], W) < W:
                raise ValueError(
                    f"data: {series.source} has {T} rows, too few for lookback {W}: its {name} "
                    f"part ({part[1] - part[0]} rows) must hold at least {W} points after "
                    f"their lookback; the minimum length is "
                    f"{timeseries.minimum_length(W, W)} rows"
                )
        x = series.values[:, 0]
        # The anomalies to find are planted now (seeded, from the data alone), so that a test
        # part without room for them stops the run before it trains.
        a, b = parts.test
        planted, labels, events = self._plant(x[a:b], series.source)
        self.scaler = Scaler.fit(series.values[: parts.train[1]])
        z = torch.from_numpy(self.scaler.transform(series.values)).float()  # (T, 1)
        train_x, train_y = timeseries.windows(z, parts.train, W, 1, [0], [0])
        val_x, val_y = timeseries.windows(z, parts.validation, W, 1, [0], [0])
        val_true = val_y.all()
        say(
            f"data: {series.source} column {column!r} ({T:,} points: {len(train_x):,} train / "
            f"{len(val_x):,} validation windows / {parts.test[1] - parts.test[0]:,} test points)"
        )

        def evaluate(model) -> dict[str, float]:
            pred = torch.cat([model(val_x[i]) for i in torch.arange(len(val_x)).split(2048)])
            return {"val_loss": float(F.mse_loss(pred, val_true))}

        torch.manual_seed(c.train.seed)
        self.model = self._build_model()
        run_config = {
            "task": "anomaly",
            "gru_version": __version__,
            "config": c.to_dict(),
            "data": {
                "source": source,
                "column": column,
                "rows": T,
                "time_column": series.time_column,
                "split": parts.as_dict(),
                "scaler": self.scaler.to_dict(),
            },
        }
        if out is not None and main and not resume:
            out.mkdir(parents=True, exist_ok=True)
            checkpoint.save_config(out, run_config)
        result = training.fit(
            self.model,
            F.mse_loss,
            (train_x, train_y),
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

        # The threshold from the validation part, read with W points of context before it.
        a, b = parts.validation
        context = max(a - W, 0)
        z_val = self.scaler.transform(series.values[context:b])[:, 0]
        errors = self._rollout_errors(z_val, W)[a - context - W :]  # (N, W): k = 1 … W
        self.center = np.nanmedian(errors, axis=0)  # (W,)
        spread = np.nanmedian(np.abs(errors - self.center), axis=0)  # (W,)
        self.scale = np.where(spread > 0, MAD_TO_STD * spread, 1.0)
        self.threshold = _threshold((errors[:, 0] - self.center[0]) / self.scale[0], c.quantile)
        baseline_val = rolling_zscore(x[max(a - c.baseline_window, 0) : b], c.baseline_window)
        baseline_threshold = _threshold(baseline_val[-(b - a) :], c.quantile)

        # The evaluation: both detectors on the test part with the anomalies planted above.
        a, b = parts.test
        with_context = np.concatenate([x[max(a - W, 0) : a], planted])
        scored = self.score(with_context).iloc[-(b - a) :].reset_index(drop=True)
        flags = scored["anomaly"].to_numpy()
        base_context = np.concatenate([x[max(a - c.baseline_window, 0) : a], planted])
        base_z = rolling_zscore(base_context, c.baseline_window)[-(b - a) :]
        base_flags = np.abs(np.nan_to_num(base_z)) > baseline_threshold
        test = detection_scores(flags, labels, events)
        baseline = detection_scores(base_flags, labels, events)
        by_kind = {
            kind: {
                "gru": detection_scores(flags, labels, [e for e in events if e["kind"] == kind])[
                    "event_recall"
                ],
                "rolling_zscore": detection_scores(
                    base_flags, labels, [e for e in events if e["kind"] == kind]
                )["event_recall"],
            }
            for kind in KINDS
            if any(e["kind"] == kind for e in events)
        }
        seconds = time.perf_counter() - start
        self.report = AnomalyReport(
            history=result.history,
            best_epoch=result.best_epoch,
            threshold=self.threshold,
            baseline_threshold=baseline_threshold,
            test=test,
            baseline=baseline,
            events=events,
            seconds=seconds,
            training_seconds=result.seconds,
            run_dir=out,
        )
        if out is not None and main:
            times = series.time[a:b] if series.time is not None else np.arange(a, b)
            _plot_detection(
                out / PLOT_FILE, times, planted, scored, base_flags, labels, column, "test part"
            )
            self._save_detector(out, run_config)
            checkpoint.write_json(
                out / checkpoint.METRICS_FILE,
                {
                    "task": "anomaly",
                    "history": result.history,
                    "best_epoch": result.best_epoch,
                    "test": {k: test[k] for k in SUMMARY},
                    "baselines": {"rolling_zscore": {k: baseline[k] for k in SUMMARY}},
                    "counts": {"gru": test, "rolling_zscore": baseline},
                    "event_recall_by_kind": by_kind,
                    "threshold": self.threshold,
                    "baseline_threshold": baseline_threshold,
                    "residual_scale_by_steps_ahead": self.scale.tolist(),
                    "data": {
                        "source": source,
                        "column": column,
                        "points": T,
                        "test points": b - a,
                        "anomalies planted": len(events),
                        "anomalous points": int(labels.sum()),
                    },
                    "examples": [
                        {
                            "columns": [
                                "kind",
                                "starts at",
                                "points",
                                "size (σ)",
                                "gru",
                                "z-score",
                            ],
                            "rows": [
                                [
                                    e["kind"],
                                    str(times[e["start"]]),
                                    e["end"] - e["start"],
                                    round(e["size_sigma"], 2),
                                    int(flags[e["start"] : e["end"]].sum()),
                                    int(base_flags[e["start"] : e["end"]].sum()),
                                ]
                                for e in events
                            ],
                            "caption": "The anomalies planted in the test part and how many of "
                            "their points each detector flagged.",
                        },
                        _alarm_table(scored, labels, events, times),
                    ],
                    "events": events,
                    "figures": {
                        PLOT_FILE: f"The test part of {column} with the planted anomalies "
                        "shaded, the points each detector flagged, and the GRU's score.",
                    },
                    "seconds": seconds,
                    "training_seconds": result.seconds,
                    "threads": torch.get_num_threads(),
                },
            )
            write_report(out)
        return self.report

    def _plant(self, test: np.ndarray, source: str) -> tuple[np.ndarray, np.ndarray, list[dict]]:
        """`inject_anomalies` into the test part ``test`` (T,) with the config's count (None:
        as many as fit, at most `DEFAULT_ANOMALIES`), seed and magnitude; ValueError naming
        --anomalies when the count asked for does not fit."""
        c = self.config
        margin = max(c.lookback, c.baseline_window)
        count = DEFAULT_ANOMALIES if c.anomalies is None else c.anomalies
        planted, labels, events = inject_anomalies(
            test,
            count,
            rng=np.random.default_rng(c.train.seed),
            magnitude=c.magnitude,
            margin=margin,
            allow_fewer=True,
        )
        room = (
            f"each keeps {margin} normal points before and after it (the larger of lookback "
            f"{c.lookback} and baseline_window {c.baseline_window})"
        )
        if len(events) < count and c.anomalies is not None:
            raise ValueError(
                f"anomalies (--anomalies): {c.anomalies} anomalies do not fit in the {len(test)} "
                f"test points of {source}: {room}, so {len(events)} fit; ask for at most "
                f"{len(events)}, or leave --anomalies out to plant as many as fit"
            )
        if count and not events:
            raise ValueError(
                f"data: the test part of {source} ({len(test)} points) has no room for one "
                f"planted anomaly: {room}; give a longer series or a shorter --lookback"
            )
        return planted, labels, events

    def _save_detector(self, out: Path, run_config: dict) -> None:
        """Save the weights again with the residual statistics and the threshold beside them
        (chosen after training) as tensors ``detector.*``, under the same checksums."""
        state = dict(self.model.state_dict())
        for name in DETECTOR_STATE:
            state[f"detector.{name}"] = torch.as_tensor(getattr(self, name), dtype=torch.float64)
        checkpoint.save_model(out, state, checkpoint.load_config(out))

    # --- load and detect ---------------------------------------------------------------------

    @classmethod
    def load(cls, run_dir: str | os.PathLike, *, backend: str = "auto") -> AnomalyDetector:
        """The detector an anomaly run folder holds, every file checked."""
        stored = load_run(run_dir, "anomaly")
        try:
            config = AnomalyConfig.from_dict(stored["config"], where=f"config.json of {run_dir}")
            detector = cls(config=config, backend=backend)
            detector.column = stored["data"]["column"]
            detector.scaler = Scaler.from_dict(stored["data"]["scaler"])
        except (KeyError, TypeError) as error:
            raise ValueError(
                f"run: config.json of {str(run_dir)!r} lacks {error} (was it altered?)"
            ) from None
        state = checkpoint.load_model_state(run_dir, stored)
        missing = [n for n in DETECTOR_STATE if f"detector.{n}" not in state]
        if missing:
            raise ValueError(
                f"run: {str(run_dir)!r} has no threshold yet: its training did not finish; "
                f"continue it with --resume {run_dir}"
            )
        detector.center = state.pop("detector.center").numpy()
        detector.scale = state.pop("detector.scale").numpy()
        detector.threshold = float(state.pop("detector.threshold"))
        detector.model = detector._build_model()
        try:
            detector.model.load_state_dict(state)
        except RuntimeError as error:
            raise ValueError(
                f"run: model.safetensors of {str(run_dir)!r} does not fit its config.json: "
                f"{str(error).splitlines()[0]}"
            ) from None
        detector.model.eval()
        return detector

    def detect(
        self, data: pd.DataFrame | str | os.PathLike, *, threshold: float | None = None
    ) -> pd.DataFrame:
        """Score every point of the detector's column in ``data``: a DataFrame indexed by the
        time column (row numbers without one) with value, forecast, residual, score and
        anomaly (bool). ``threshold`` replaces the one chosen on validation data."""
        if self.model is None:
            raise ValueError("AnomalyDetector.detect: fit or load a model first")
        if threshold is not None and not threshold > 0:
            raise ValueError(f"AnomalyDetector.detect: threshold must be positive, got {threshold}")
        series = self._read(data)
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


def _alarm_table(scored: pd.DataFrame, labels, events, times, most: int = 12) -> dict:
    """The GRU's alarms (runs of flagged points) in the test part, strongest first, each with
    the planted anomaly it touches or "none (false alarm)", for report.html."""
    flags, score = scored["anomaly"].to_numpy(), np.abs(scored["score"].to_numpy())
    rows = []
    for s, e in _runs(flags):
        touched = [v["kind"] for v in events if v["start"] < e and s < v["end"]]
        rows.append(
            [
                str(times[s]),
                e - s,
                float(np.nanmax(score[s:e])),
                ", ".join(touched) if touched else "none (false alarm)",
            ]
        )
    rows.sort(key=lambda row: -row[2])
    shown = rows[:most]
    if not rows:
        return {"columns": [], "rows": [], "caption": "The GRU raised no alarm in the test part."}
    return {
        "columns": ["starts at", "points", "largest |score|", "planted anomaly"],
        "rows": shown,
        "caption": "The GRU's alarms (runs of flagged points) in the test part, strongest first"
        + (f"; {len(shown)} of {len(rows)}." if len(rows) > len(shown) else ".")
        + " An alarm that touches no planted anomaly is a false alarm.",
    }


# --- pictures ----------------------------------------------------------------------------------


def _plot_detection(path, times, values, scored, base_flags, labels, column, title) -> None:
    """The series with its anomalies shaded (when known), the points flagged, and the score."""
    from matplotlib.figure import Figure

    from gru._io import atomic_write

    figure = Figure(figsize=(12, 5.5), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1.4))
    times = np.asarray(times)
    top.plot(times, values, color="0.3", lw=0.7, label=column)
    if labels is not None:
        for s, e in _runs(labels):
            top.axvspan(times[s], times[min(e, len(times) - 1)], color="gold", alpha=0.35, lw=0)
    flags = scored["anomaly"].to_numpy()
    top.scatter(times[flags], values[flags], s=14, color="tab:red", label="GRU flags", zorder=3)
    if base_flags is not None:
        top.scatter(
            times[base_flags],
            values[base_flags],
            s=30,
            facecolors="none",
            edgecolors="tab:blue",
            label="rolling z-score flags",
            zorder=3,
        )
    top.set_title(
        f"{column}, {title}" + (" (planted anomalies shaded)" if labels is not None else "")
    )
    top.legend(fontsize=8, loc="upper left")
    top.grid(alpha=0.3)
    bottom.plot(times, np.abs(scored["score"].to_numpy()), color="tab:red", lw=0.7)
    bottom.set_ylabel("|score|")
    bottom.set_yscale("symlog")
    bottom.grid(alpha=0.3)
    atomic_write(path, lambda f: figure.savefig(f, format="png", dpi=90))


def plot_flags(path, frame: pd.DataFrame, column: str) -> None:
    """The scored series of `AnomalyDetector.detect` with its flagged points, as a PNG."""
    times = frame.index.to_numpy()
    _plot_detection(path, times, frame["value"].to_numpy(), frame, None, None, column, "detect")
