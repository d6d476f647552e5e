"""The pictures of a run and of an explanation, drawn with matplotlib (Agg) as PNG bytes.

Each function returns a `matplotlib.figure.Figure` made without pyplot (no global state, no
display needed); `png` renders one on the Agg canvas. The same bytes are written beside the
report and embedded in it, so the PNG and the page show the same picture.

Shapes: T time steps, H hidden units, F features, P forecast steps.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from gru._io import atomic_write
from gru.viz.labels import label
from gru.viz.recording import GateRecording

__all__ = [
    "anomaly_detection",
    "class_gates",
    "confusion_matrix",
    "forecast_examples",
    "forecast_figure",
    "future_forecast",
    "gate_heatmaps",
    "learning_curves",
    "plain",
    "png",
    "probability_curve",
    "save_png",
    "spectrogram_gates",
    "training_curves",
]

TICK_ROOM = 0.45  # inches of axis per labeled step: the labels a reader can tell apart
TICK_FONT = 10  # points
ROW_STEPS = 20  # a probability curve over more steps wraps into rows of this many
DIRECTIONS = ("forward", "reverse")


def png(figure: Figure, dpi: int = 100) -> bytes:
    """The PNG bytes of ``figure``, rendered by the Agg backend."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # A word in a script DejaVu Sans lacks is drawn as a box; that is no reason to fail.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font")
        figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def save_png(figure: Figure, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Write ``figure`` to ``path`` as a PNG, atomically (`gru._io`); return the path."""
    data = png(figure, dpi)
    return atomic_write(path, lambda f: f.write(data))


def plain(text: str) -> str:
    """``text`` as matplotlib should print it: a "$" starts no formula."""
    return str(text).replace("$", r"\$")


def _time_ticks(ax, labels: Sequence[str] | None, T: int, *, room: float) -> str:
    """Label the time axis with ``labels`` (one per step), or number the steps: one label per
    `TICK_ROOM` inches of the axis's ``room`` (its width in inches), every k-th step, so that
    a long text's 100 tokens get a readable few rather than 100 unreadable ones. Returns what
    to add to the axis's title: which steps are labeled ("" when all are)."""
    most = max(2, int(room / TICK_ROOM))
    every = max(1, int(np.ceil(T / most)))
    ticks = np.arange(0, T, every)
    ax.set_xticks(ticks)
    if labels is None:
        ax.set_xticklabels([str(t + 1) for t in ticks], fontsize=TICK_FONT)
    else:
        ax.set_xticklabels([plain(labels[t]) for t in ticks], rotation=90, fontsize=TICK_FONT)
    return f" (every {_ordinal(every)} labeled)" if every > 1 else ""


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def training_curves(history: Sequence[dict[str, float]]) -> Figure:
    """The curves of a training ``history`` (one dict per epoch, `gru.training.fit`'s): the
    losses left, the other metrics right, each over the epochs."""
    epochs = [h["epoch"] for h in history]
    keys = [k for k in history[-1] if k not in ("epoch", "seconds", "lr")]
    losses = [k for k in keys if k.endswith("loss")]
    others = [k for k in keys if k not in losses]
    figure = Figure(figsize=(10, 4) if others else (5, 4), layout="constrained")
    axes = figure.subplots(1, 2 if others else 1, squeeze=False)[0]
    panels = [(axes[0], losses, "loss")] + ([(axes[1], others, "metric")] if others else [])
    for ax, names, what in panels:
        for name in names:
            values = [h.get(name, math.nan) for h in history]
            ax.plot(epochs, values, marker="o", label=plain(label(name)))
        ax.set_xlabel("epoch")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
        ax.legend()
        # Epochs are whole: integer ticks only, and room around a run of one epoch.
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if len(epochs) == 1:
            ax.set_xlim(epochs[0] - 1, epochs[0] + 1)
            ax.set_xticks([epochs[0]])
    return figure


def gate_heatmaps(
    recording: GateRecording,
    labels: Sequence[str] | None = None,
    *,
    steps: slice = slice(None),
    title: str | None = None,
    units: Sequence[int] | None = None,
) -> Figure:
    """Heatmaps of the reset gate r and the update gate z, units × time, for every layer and
    direction of an unbatched ``recording`` (one row each), over ``steps``.

    ``labels`` names each step shown (tokens, dates); without it the steps are numbered.
    ``units`` picks the units shown (rows labeled with their numbers); all by default.
    Colors run from 0 to 1 on one scale for every panel.
    """
    rows = [g for directions in recording.layers for g in directions]
    T = len(range(*steps.indices(rows[0].r.shape[0])))
    units = np.arange(rows[0].r.shape[-1]) if units is None else np.asarray(units)
    H = len(units)
    if labels is not None and len(labels) != T:
        raise ValueError(f"gate_heatmaps: {len(labels)} labels for {T} steps")
    width = float(np.clip(2.5 + 0.16 * T, 7.0, 14.0))
    per_unit = 0.13 if H <= 32 else 0.03  # up to 32 units, each row labeled with its number
    row_height = float(np.clip(0.9 + per_unit * H, 1.6, 4.5)) + (0.6 if labels else 0.2)
    figure = Figure(figsize=(width, 0.6 + row_height * len(rows)), layout="constrained")
    axes = figure.subplots(len(rows), 2, squeeze=False, sharex=True)
    image = None
    for row, gates in zip(axes, rows, strict=True):
        where = f"layer {gates.layer + 1}"
        if len(recording.layers[gates.layer]) == 2:
            where += f", {DIRECTIONS[gates.direction]}"
        for ax, name, values in (
            (row[0], "reset gate r", gates.r[steps][:, units]),
            (row[1], "update gate z", gates.z[steps][:, units]),
        ):
            image = ax.imshow(
                values.T,  # (H, T): units down, time across
                aspect="auto",
                interpolation="nearest",
                cmap="viridis",
                vmin=0.0,
                vmax=1.0,
            )
            ax.set_title(f"{name} ({where})", fontsize=10)
            ax.set_ylabel("unit")
            if H <= 32:  # name the rows by their units, which need not be 0 … H − 1
                ax.set_yticks(np.arange(H), [str(u) for u in units], fontsize=8)
            thinned = _time_ticks(ax, labels, T, room=0.4 * width)  # two panels, a color bar
    for ax in axes[-1]:
        ax.set_xlabel(("step" if labels is None else "step read") + thinned)
    figure.colorbar(image, ax=axes, shrink=0.8, label="gate value")
    if title:
        figure.suptitle(plain(title))
    return figure


def probability_curve(
    probabilities: Sequence[float], labels: Sequence[str], *, ylabel: str = "P(positive)"
) -> Figure:
    """The predicted probability after each step (a line over ``labels``), with 0.5 marked.

    A long text is wrapped into rows of `ROW_STEPS` steps, read left to right and top to
    bottom like the text itself, so that every token keeps a readable label and the picture
    stays narrow enough for a phone.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    T = len(p)
    n_rows = -(-T // ROW_STEPS)  # ceil
    per_row = min(T, ROW_STEPS)
    width = float(np.clip(2.5 + 0.22 * per_row, 6.0, 8.0))
    figure = Figure(figsize=(width, 0.8 + 2.4 * n_rows), layout="constrained")
    axes = figure.subplots(n_rows, 1, squeeze=False)[:, 0]
    for row, ax in enumerate(axes):
        steps = np.arange(row * ROW_STEPS, min(T, (row + 1) * ROW_STEPS))  # the row's steps
        q = p[steps]
        ax.axhline(0.5, color="0.5", linestyle="--", linewidth=1)
        ax.plot(steps, q, marker="o", markersize=3, color="#c2410c")
        ax.fill_between(
            steps, 0.5, q, where=q >= 0.5, color="#2563eb", alpha=0.12, interpolate=True
        )
        ax.fill_between(steps, 0.5, q, where=q < 0.5, color="#dc2626", alpha=0.12, interpolate=True)
        ax.set_ylim(0.0, 1.0)
        ax.set_xlim(steps[0] - 0.5, steps[0] + per_row - 0.5)  # rows aligned, step under step
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.set_xticks(steps)
        ax.set_xticklabels([plain(labels[t]) for t in steps], rotation=90, fontsize=TICK_FONT)
        if n_rows > 1:
            ax.set_title(f"tokens {steps[0] + 1}–{steps[-1] + 1} of {T}", fontsize=TICK_FONT)
    axes[-1].set_xlabel("token read")
    return figure


def forecast_figure(
    history: np.ndarray,
    forecast: np.ndarray,
    actual: np.ndarray | None,
    *,
    history_labels: Sequence[str] | None = None,
    forecast_labels: Sequence[str] | None = None,
    name: str = "value",
) -> Figure:
    """The input window (T,) followed by the forecast (P,) and, when known, the actual values.

    ``history_labels`` and ``forecast_labels`` name the steps (dates); the steps are counted
    from the first forecast otherwise (−T + 1 … 0, then 1 … P).
    """
    history = np.asarray(history, dtype=np.float64).reshape(-1)
    forecast = np.asarray(forecast, dtype=np.float64).reshape(-1)
    T, P = len(history), len(forecast)
    figure = Figure(figsize=(9.0, 3.8), layout="constrained")
    ax = figure.subplots()
    past, future = np.arange(-T + 1, 1), np.arange(1, P + 1)
    ax.plot(past, history, color="0.3", label="input window")
    ax.plot(
        np.r_[0, future], np.r_[history[-1], forecast], color="#c2410c", marker="o", markersize=3,
        label="forecast",
    )  # fmt: skip
    if actual is not None:
        actual = np.asarray(actual, dtype=np.float64).reshape(-1)
        ax.plot(
            np.r_[0, future[: len(actual)]], np.r_[history[-1], actual], color="#2563eb",
            marker="s", markersize=3, linestyle="--", label="actual",
        )  # fmt: skip
    ax.axvline(0.5, color="0.6", linewidth=1)
    ax.set_ylabel(plain(name))
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    if history_labels is not None or forecast_labels is not None:
        labels = list(history_labels or [""] * T) + list(forecast_labels or [""] * P)
        steps = np.r_[past, future]
        every = max(1, int(np.ceil(len(steps) / 12)))
        ax.set_xticks(steps[::every])
        ax.set_xticklabels([plain(s) for s in labels[::every]], rotation=30, ha="right")
    else:
        ax.set_xlabel("step (0 = the last input, 1 = the first forecast)")
    return figure


# --- the tasks' own pictures ---------------------------------------------------------------------


def forecast_examples(
    examples: Sequence[dict], target: str, *, lookback: int, horizon: int, model: str
) -> Figure:
    """Forecast against actual for a few test windows of ``target``, one panel each: every
    example holds the window's "history" (W,), the "actual" and "forecast" (F,) values, the
    "times" of its W + F steps, and the "linear" and "seasonal_naive" baselines when known."""
    figure = Figure(figsize=(12, 2.6 * len(examples)), layout="constrained")
    axes = figure.subplots(len(examples), 1, squeeze=False)[:, 0]
    W = lookback
    for ax, example in zip(axes, examples, strict=True):
        steps = np.arange(-W, horizon)
        ax.plot(steps[:W], example["history"], color="0.4", lw=1, label="history")
        ax.plot(steps[W:], example["actual"], color="black", lw=1.2, label="actual")
        ax.plot(steps[W:], example["forecast"], color="tab:red", lw=1.4, label=label(model))
        for name, style in (("linear", "tab:blue"), ("seasonal_naive", "tab:green")):
            if name in example:
                ax.plot(steps[W:], example[name], color=style, lw=0.9, ls="--", label=label(name))
        ax.axvline(0, color="0.7", lw=0.8)
        ax.set_title(f"{target}, test window from {example['times'][W]}", fontsize=9)
        ax.set_xlabel("steps from the forecast start")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, ncol=5, loc="upper left")
    return figure


def future_forecast(history, forecast, title: str) -> Figure:
    """The end of a series and its forecast (two pandas Series indexed by time or row)."""
    figure = Figure(figsize=(10, 3.5), layout="constrained")
    ax = figure.subplots()
    ax.plot(history.index, history.to_numpy(), color="black", lw=1, label="history")
    ax.plot(forecast.index, forecast.to_numpy(), color="tab:red", lw=1.4, label="forecast")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return figure


def anomaly_detection(
    times,
    values: np.ndarray,
    flags: np.ndarray,
    scores: np.ndarray,
    *,
    column: str,
    title: str,
    shaded: Sequence[tuple[int, int]] | None = None,
    baseline_flags: np.ndarray | None = None,
) -> Figure:
    """A series (T,) over ``times`` with the points a detector ``flags`` (T,) bool, the
    [start, end) runs of known anomalies ``shaded`` and a baseline's flags when given, and
    below it the detector's |score| (T,)."""
    figure = Figure(figsize=(12, 5.5), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1.4))
    times = np.asarray(times)
    top.plot(times, values, color="0.3", lw=0.7, label=column)
    for s, e in shaded or ():
        top.axvspan(times[s], times[min(e, len(times) - 1)], color="gold", alpha=0.35, lw=0)
    top.scatter(times[flags], values[flags], s=14, color="tab:red", label="GRU flags", zorder=3)
    if baseline_flags is not None:
        top.scatter(
            times[baseline_flags],
            values[baseline_flags],
            s=30,
            facecolors="none",
            edgecolors="tab:blue",
            label="rolling z-score flags",
            zorder=3,
        )
    top.set_title(
        f"{column}, {title}" + (" (planted anomalies shaded)" if shaded is not None else "")
    )
    top.legend(fontsize=8, loc="upper left")
    top.grid(alpha=0.3)
    bottom.plot(times, np.abs(scores), color="tab:red", lw=0.7)
    bottom.set_ylabel("|score|")
    bottom.set_yscale("symlog")
    bottom.grid(alpha=0.3)
    return figure


def learning_curves(
    curves: dict[str, dict[str, Sequence[tuple[int, float]]]],
    metrics: dict[str, str],
    labels: dict[str, str],
) -> Figure:
    """Validation metric against training steps, one panel per task side by side, one line
    per model: ``curves`` {task: {model: [(steps, value), …]}}, ``metrics`` {task: "mse" or
    "accuracy"} (MSE on a log scale), ``labels`` {model: its name in the legend}."""
    n = len(curves)
    figure = Figure(figsize=(4.5 * n, 3.6))
    axes = figure.subplots(1, n, squeeze=False)
    for ax, (task, by_model) in zip(axes[0], curves.items(), strict=True):
        for model, curve in by_model.items():
            steps, values = zip(*curve, strict=True) if curve else ((), ())
            ax.plot(steps, values, marker="o", markersize=3, label=labels[model])
        ax.set_title(task)
        ax.set_xlabel("training steps")
        ax.set_ylabel(f"validation {metrics[task]}")
        if metrics[task] == "mse":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    figure.tight_layout()
    return figure


def confusion_matrix(counts: np.ndarray, classes: Sequence[str], *, title: str) -> Figure:
    """The counts (C, C) of a classifier's answers: row = the true class, column = the
    predicted one, each cell its count, shaded by the share of its row (so a small class's
    errors show as plainly as a large one's)."""
    counts = np.asarray(counts)
    C = len(classes)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = float(np.clip(1.5 + 0.55 * C, 4.0, 10.0))
    figure = Figure(figsize=(side + 1.2, side), layout="constrained")
    ax = figure.subplots()
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(C):
        for j in range(C):
            if counts[i, j]:
                color = "white" if share[i, j] > 0.6 else "black"
                ax.text(j, i, str(int(counts[i, j])), ha="center", va="center", color=color)
    names = [plain(c) for c in classes]
    ax.set_xticks(range(C), names, rotation=45 if max(map(len, names)) > 3 else 0, ha="right")
    ax.set_yticks(range(C), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(plain(title), fontsize=10)
    figure.colorbar(image, ax=ax, shrink=0.8, label="share of the true class's sequences")
    return figure


def class_gates(recordings: dict[str, GateRecording], *, title: str) -> Figure:
    """The update gate z and the reset gate r of the last layer over time, units down, for one
    sequence of each class (``recordings`` {class: an unbatched recording}): one row per class,
    a bidirectional layer's forward units above its reverse ones. Colors run from 0 to 1."""
    rows = len(recordings)
    T = max(rec.top[0].z.shape[0] for rec in recordings.values())
    H = sum(g.z.shape[-1] for g in next(iter(recordings.values())).top)
    width = float(np.clip(4.0 + 0.18 * T, 8.0, 14.0))
    height = float(np.clip(0.8 + 0.012 * H, 1.3, 2.6))
    figure = Figure(figsize=(width, 0.8 + height * rows), layout="constrained")
    axes = figure.subplots(rows, 2, squeeze=False)
    image = None
    for row, (class_name, rec) in zip(axes, recordings.items(), strict=True):
        for ax, gate in zip(row, ("z", "r"), strict=True):
            values = np.concatenate([getattr(g, gate) for g in rec.top], axis=-1)  # (T, D·H)
            image = ax.imshow(
                values.T, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0, vmax=1
            )
            name = "update gate z" if gate == "z" else "reset gate r"
            ax.set_title(f"class {plain(class_name)}: {name}", fontsize=9)
            ax.set_ylabel("unit")
            ax.set_xlim(-0.5, T - 0.5)
            if len(rec.top) == 2:
                ax.axhline(rec.top[0].z.shape[-1] - 0.5, color="white", linewidth=0.8)
        for ax in row:  # at most ~10 labelled steps: the panels are narrow
            ticks = np.arange(0, T, max(1, int(np.ceil(T / 10))))
            ax.set_xticks(ticks, [str(t + 1) for t in ticks])
    for ax in axes[-1]:
        ax.set_xlabel("time step")
    figure.colorbar(image, ax=axes, shrink=0.6, label="gate value")
    figure.suptitle(plain(title))
    return figure


def spectrogram_gates(words: Sequence[tuple[str, np.ndarray, np.ndarray]], hop_ms: float) -> Figure:
    """For each (title, log-mel frames (T, M), update gates z (T, H) of the top layer): the
    spectrogram above the update gate of every unit over the same frames (1 − z is the share
    of a unit's state replaced at that frame)."""
    figure = Figure(figsize=(3.2 * len(words) + 1.0, 5.2), layout="constrained")
    axes = figure.subplots(2, len(words), squeeze=False)
    gate = None
    for k, (title, frames, z) in enumerate(words):
        T = len(frames)
        extent = (0.0, T * hop_ms / 1000, 0, frames.shape[1])
        axes[0, k].imshow(frames.T, aspect="auto", origin="lower", cmap="magma", extent=extent)
        axes[0, k].set_title(plain(title), fontsize=9)
        extent = (0.0, T * hop_ms / 1000, 0, z.shape[1])
        gate = axes[1, k].imshow(z.T, aspect="auto", origin="lower", cmap="viridis", vmin=0.0,
                                 vmax=1.0, extent=extent)  # fmt: skip
        axes[1, k].set_xlabel("seconds")
    axes[0, 0].set_ylabel("mel band")
    axes[1, 0].set_ylabel("unit (update gate z)")
    figure.colorbar(gate, ax=axes[1, :], shrink=0.8, label="z")
    return figure
