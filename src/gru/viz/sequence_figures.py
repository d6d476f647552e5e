"""Figures of the tasks that read and write sequences of symbols: piano rolls (music) and the
attention and decoder gates of a translation. The helpers they share with every other figure
(`png`, `save_png`, `plain`) are `gru.viz.figures`'s; the rule is the same: every matplotlib
call of the package is in these two modules.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from gru.viz.figures import plain

__all__ = ["attention_map", "decoder_gates", "piano_rolls", "roll_gates"]


def _roll(ax, roll: np.ndarray, lowest: int = 21) -> None:
    """A piano roll (T, 88) of 0/1 on ``ax``: time across, MIDI note up."""
    extent = (0, len(roll), lowest, lowest + roll.shape[1])
    ax.imshow(roll.T, aspect="auto", origin="lower", cmap="Greys", vmin=0, vmax=1,
              extent=extent, interpolation="nearest")  # fmt: skip
    notes = np.flatnonzero(roll.any(0))
    if len(notes):
        ax.set_ylim(lowest + notes[0] - 2, lowest + notes[-1] + 3)
    ax.set_ylabel("MIDI note")


def piano_rolls(rolls: Sequence[tuple[str, np.ndarray]], prime: int) -> Figure:
    """(title, roll (T, 88)) one above the other over the same steps, a line after the
    first ``prime`` steps (what primed a continuation)."""
    figure = Figure(figsize=(9, 2.4 * len(rolls)), layout="constrained")
    axes = figure.subplots(len(rolls), 1, squeeze=False, sharex=True)[:, 0]
    for ax, (title, roll) in zip(axes, rolls, strict=True):
        _roll(ax, roll)
        ax.axvline(prime, color="tab:red", linewidth=1.5)
        ax.set_title(plain(title), fontsize=10)
    axes[-1].set_xlabel("step")
    return figure


def roll_gates(roll: np.ndarray, z: np.ndarray) -> Figure:
    """A piano roll (T, 88) above the update gate z (T, H) of every unit at its steps."""
    figure = Figure(figsize=(9, 5), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True)
    _roll(top, roll)
    gate = bottom.imshow(z.T, aspect="auto", origin="lower", cmap="viridis", vmin=0, vmax=1,
                         extent=(0, len(z), 0, z.shape[1]), interpolation="nearest")  # fmt: skip
    bottom.set_ylabel("unit (update gate z)")
    bottom.set_xlabel("step")
    figure.colorbar(gate, ax=(top, bottom), shrink=0.4, label="z")  # both axes equally wide
    return figure


def attention_map(weights: np.ndarray, source: Sequence[str], output: Sequence[str]) -> Figure:
    """The attention weights (T, S) of a translation: a row per output subword, a column per
    source subword, each row's weights summing to 1 (shaded from 0 to 1)."""
    weights = np.asarray(weights)
    T, S = weights.shape
    figure = Figure(figsize=(2.0 + 0.32 * S, 1.6 + 0.3 * T), layout="constrained")
    ax = figure.subplots()
    image = ax.imshow(weights, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(S), [plain(p) for p in source], rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(T), [plain(p) for p in output][:T], fontsize=8)
    ax.set_xlabel("source subword")
    ax.set_ylabel("output subword")
    figure.colorbar(image, ax=ax, shrink=0.8, label="attention weight")
    return figure


def decoder_gates(z1: np.ndarray, z2: np.ndarray, output: Sequence[str]) -> Figure:
    """The update gates z (T, K) of two decoder layers as heatmaps, units down, one column per
    output subword (0 dark, 1 light)."""
    T = len(z1)
    figure = Figure(figsize=(2.5 + 0.3 * T, 6.0), layout="constrained")
    axes = figure.subplots(2, 1, sharex=True)
    for ax, z, name in zip(axes, (z1, z2), ("decoder layer 1", "decoder layer 2"), strict=True):
        image = ax.imshow(np.asarray(z).T, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        ax.set_ylabel(f"{name}: unit")
    axes[-1].set_xticks(range(T), [plain(p) for p in output][:T], rotation=60, ha="right")
    axes[-1].set_xlabel("output subword")
    figure.colorbar(image, ax=axes, shrink=0.8, label="update gate z")
    return figure
