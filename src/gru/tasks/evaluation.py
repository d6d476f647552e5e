"""How the tasks evaluate a model, and its baselines the same way: the scores, and the
anomalies planted in a series to score a detector against.

    forecast_scores     MSE and MAE of forecasts, and MAE in the data's units per column
    forecast_examples   some test windows in the data's units, beside the baselines
    forecast_table      a few steps of each, as a table
    binary_scores       accuracy and cross-entropy of a positive-class logit (`accuracy`)
    class_scores        accuracy, cross-entropy and confusion matrix of K-class logits
    edit_distance       the word errors of a recognized sequence against the true one
    inject_anomalies    spikes, level shifts and drops to zero planted at known places
    plant_anomalies     as many as asked for, or as fit, with a message when they do not
    detection_scores    precision, recall and F1 of anomaly flags, by point and by event
    quantile_threshold  a detector's threshold: a quantile of its |scores| on normal data
    recall_by_kind, planted_table, alarm_table    the evaluation as report.html shows it
    true_runs           the [start, end) runs of a mask (alarms, planted anomalies)

Shapes: N windows or cases, F horizon, K channels forecast, T points.
"""

from __future__ import annotations

import math

import numpy as np
import torch.nn.functional as F
from torch import Tensor

from gru.data.timeseries import TimeSeries

__all__ = [
    "KINDS",
    "accuracy",
    "alarm_table",
    "binary_scores",
    "class_scores",
    "detection_scores",
    "edit_distance",
    "forecast_examples",
    "forecast_scores",
    "forecast_table",
    "headline",
    "inject_anomalies",
    "plant_anomalies",
    "planted_table",
    "quantile_threshold",
    "recall_by_kind",
    "true_runs",
]

KINDS = ("spike", "level_shift", "dropout")  # dropout: a run of values dropped to zero
MAD_TO_STD = 1.4826  # the MAD of a normal sample times this is its standard deviation
DEFAULT_ANOMALIES = 15  # planted by default, or as many as fit in a shorter test part


def forecast_scores(
    pred: Tensor, true: Tensor, std: np.ndarray, names: list[str], target: str
) -> dict:
    """MSE and MAE of standardized forecasts (N, F, K) against the truth (N, F, K), and MAE
    in original units per column ``names`` (std (K,) scales each column's standardized error
    back to its units) and of the column ``target``."""
    error = pred.double() - true.double()
    per_column = error.abs().mean(dim=(0, 1)).numpy()  # (K,)
    by_column = {n: float(v * s) for n, v, s in zip(names, per_column, std, strict=True)}
    return {
        "mse": float((error**2).mean()),
        "mae": float(error.abs().mean()),
        "mae_original": by_column[target],
        "mae_original_by_column": by_column,
    }


def forecast_examples(
    series: TimeSeries,
    column: int,
    first: int,
    lookback: int,
    forecasts: dict[str, Tensor],
    units: tuple[float, float],
    count: int,
) -> list[dict]:
    """``count`` windows evenly spread over the N of ``forecasts`` {name: (N, F)
    standardized}, the truth ("actual") among them, of the ``column`` of ``series``, window i
    forecasting rows first + i …: each with its "start_row", the "times" of its W + F rows,
    its "history" (W,) and every forecast (F,), in the column's units (``units``: its mean
    and standard deviation)."""
    mean, std = units
    n, horizon = next(iter(forecasts.values())).shape
    picks = sorted({round(i * (n - 1) / max(count - 1, 1)) for i in range(count)})
    examples = []
    for i in picks:
        t = first + i
        rows = np.arange(t - lookback, t + horizon)
        times = [str(s) for s in series.time[rows]] if series.time is not None else rows.tolist()
        history = series.values[t - lookback : t, column].tolist()
        example = {"start_row": int(t), "times": times, "history": history}
        example.update(
            {name: (f[i].double().numpy() * std + mean).tolist() for name, f in forecasts.items()}
        )
        examples.append(example)
    return examples


def forecast_table(examples: list[dict], lookback: int, horizon: int, model: str) -> dict:
    """A few steps ahead of each of the ``examples`` (test windows of the target in its units:
    their "times", "actual", the ``model``'s "forecast" and the baselines') as a table, for
    report.html (a figure shows them whole)."""
    steps = sorted({1, max(1, horizon // 4), max(1, horizon // 2), horizon})
    names = [n for n in ("linear", "seasonal_naive", "persistence") if n in examples[0]]
    rows = []
    for example in examples:
        for h in steps:
            row = [example["times"][lookback + h - 1], h, example["actual"][h - 1]]
            row += [example["forecast"][h - 1], *(example[n][h - 1] for n in names)]
            rows.append(row)
    return {
        "columns": ["time", "steps ahead", "actual", model, *names],
        "rows": rows,
        "caption": f"The target at a few horizons of {len(examples)} test windows, in its units.",
    }


def headline(scores: dict | None) -> dict | None:
    """The scalar scores of `forecast_scores` (or any scores), for metrics.json's tables."""
    return None if scores is None else {k: v for k, v in scores.items() if not isinstance(v, dict)}


def accuracy(logits: Tensor, y: Tensor) -> Tensor:
    """The share of ``logits`` (N,) on the side of 0 of the labels ``y`` (N,) 0/1: a positive
    logit says 1. A tensor, as `gru.training.fit`'s metrics are."""
    return ((logits > 0).float() == y).float().mean()


def binary_scores(logits: Tensor, y: Tensor) -> dict[str, float]:
    """The binary cross-entropy and the `accuracy` of ``logits`` (N,) against the labels
    ``y`` (N,) 0/1."""
    return {
        "loss": F.binary_cross_entropy_with_logits(logits, y).item(),
        "accuracy": accuracy(logits, y).item(),
    }


def class_scores(logits: Tensor, y: Tensor) -> dict:
    """The cross-entropy, accuracy and confusion matrix (K, K) [true][predicted] counts of
    ``logits`` (N, K) against the class indices ``y`` (N,)."""
    K = logits.shape[1]
    predicted = logits.argmax(1)
    confusion = np.zeros((K, K), dtype=np.int64)
    np.add.at(confusion, (y.numpy(), predicted.numpy()), 1)
    return {
        "loss": F.cross_entropy(logits, y).item(),
        "accuracy": (predicted == y).float().mean().item(),
        "confusion": confusion.tolist(),
    }


def edit_distance(truth: list, found: list) -> int:
    """The fewest substitutions, deletions and insertions that turn ``found`` into ``truth``
    (Levenshtein): the word errors of a recognized sequence."""
    row = list(range(len(found) + 1))
    for i, a in enumerate(truth, start=1):
        previous, row[0] = row[0], i
        for j, b in enumerate(found, start=1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (a != b))
    return row[-1]


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


def plant_anomalies(
    test: np.ndarray,
    count: int | None,
    *,
    seed: int,
    magnitude: float,
    lookback: int,
    baseline_window: int,
    source: str,
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """`inject_anomalies` into the test part ``test`` (T,) of a series (named ``source`` in
    messages): ``count`` of them (None: as many as fit, at most `DEFAULT_ANOMALIES`), each with
    as many normal points before and after it as the larger of the detector's ``lookback`` and
    the baseline's window read. ValueError naming ``anomalies`` (--anomalies) when the count
    asked for does not fit, or the data when none does."""
    margin = max(lookback, baseline_window)
    asked = DEFAULT_ANOMALIES if count is None else count
    planted, labels, events = inject_anomalies(
        test,
        asked,
        rng=np.random.default_rng(seed),
        magnitude=magnitude,
        margin=margin,
        allow_fewer=True,
    )
    room = (
        f"each keeps {margin} normal points before and after it (the larger of lookback "
        f"{lookback} and baseline_window {baseline_window})"
    )
    if len(events) < asked and count is not None:
        raise ValueError(
            f"anomalies (--anomalies): {count} anomalies do not fit in the {len(test)} test "
            f"points of {source}: {room}, so {len(events)} fit; ask for at most {len(events)}, "
            "or leave --anomalies out to plant as many as fit"
        )
    if asked and not events:
        raise ValueError(
            f"data: the test part of {source} ({len(test)} points) has no room for one "
            f"planted anomaly: {room}; give a longer series or a shorter --lookback"
        )
    return planted, labels, events


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of consecutive True values of ``mask`` (T,)."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def detection_scores(flags: np.ndarray, labels: np.ndarray, events: list[dict]) -> dict:
    """How well ``flags`` find the anomalies ``labels`` (T,) bool, planted as ``events``
    (dicts with their "start" and "end").

    Point-wise: precision, recall and F1 over points. By event: "event_recall", the share of
    events with at least one flagged point; "event_precision", the share of alarms (runs of
    consecutive flagged points) that touch an anomalous point; "event_f1" of the two. With no
    anomaly to find, recall and F1 (point-wise and by event) are None: they measure nothing
    (and so is precision without alarms).
    """
    flags, labels = np.asarray(flags, bool), np.asarray(labels, bool)
    tp = int(np.sum(flags & labels))
    fp = int(np.sum(flags & ~labels))
    fn = int(np.sum(~flags & labels))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    found = [bool(flags[e["start"] : e["end"]].any()) for e in events]
    alarms = true_runs(flags)
    event_recall = float(np.mean(found)) if found else 0.0
    event_precision = float(np.mean([labels[s:e].any() for s, e in alarms])) if alarms else 0.0
    event_f1 = (
        2 * event_precision * event_recall / (event_precision + event_recall)
        if event_precision + event_recall
        else 0.0
    )
    if not labels.any() and not events:  # nothing to find: 0/0, not a score of 0
        recall = f1 = event_recall = event_f1 = None
        precision, event_precision = (0.0, 0.0) if alarms else (None, None)  # all false
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


def quantile_threshold(scores: np.ndarray, quantile: float) -> float:
    """The ``quantile`` of the finite |scores| (T,): flagging beyond it flags that share of
    the points where it was chosen (inf when there are none)."""
    finite = np.abs(scores[np.isfinite(scores)])
    return float(np.quantile(finite, quantile)) if len(finite) else math.inf


def recall_by_kind(events: list[dict], labels: np.ndarray, flagged: dict[str, np.ndarray]) -> dict:
    """{kind: {detector: the share of the planted ``events`` of that kind it found}}, for each
    kind planted and each detector's flags (T,) in ``flagged``."""
    by_kind = {}
    for kind in KINDS:
        these = [e for e in events if e["kind"] == kind]
        if these:
            by_kind[kind] = {
                name: detection_scores(flags, labels, these)["event_recall"]
                for name, flags in flagged.items()
            }
    return by_kind


def planted_table(events: list[dict], times, flagged: dict[str, np.ndarray]) -> dict:
    """The planted ``events`` as a table: kind, start time, length, size and how many of their
    points each of the two detectors ``flagged`` (the GRU's, then the rolling z-score's)."""
    rows = [
        [e["kind"], str(times[e["start"]]), e["end"] - e["start"], round(e["size_sigma"], 2)]
        + [int(flags[e["start"] : e["end"]].sum()) for flags in flagged.values()]
        for e in events
    ]
    return {
        "columns": ["kind", "starts at", "points", "size (σ)", "gru", "z-score"],
        "rows": rows,
        "caption": "The anomalies planted in the test part and how many of their points each "
        "detector flagged.",
    }


def alarm_table(flags: np.ndarray, scores: np.ndarray, events, times, most: int = 12) -> dict:
    """The GRU's alarms (runs of ``flags``) in the test part, strongest |score| first, each
    with the planted anomaly it touches or "none (false alarm)", at most ``most`` of them."""
    score = np.abs(scores)
    rows = []
    for s, e in true_runs(flags):
        touched = [v["kind"] for v in events if v["start"] < e and s < v["end"]]
        planted = ", ".join(touched) if touched else "none (false alarm)"
        rows.append([str(times[s]), e - s, float(np.nanmax(score[s:e])), planted])
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
