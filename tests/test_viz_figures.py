"""gru.viz.figures: what a reader reads off the axes (the pictures themselves are looked at in
the browser tests and by people)."""

import numpy as np
import pytest
import torch

import gru
from gru.viz import figures, record_gates


def shown_ticks(ax, *, draw: bool = True) -> list[str]:
    """The x tick labels inside the axis's view, once drawn (``draw=False``: drawn already)."""
    if draw:
        figures.png(ax.figure)
    low, high = sorted(ax.get_xlim())
    return [t.get_text() for t in ax.get_xticklabels() if low <= t.get_position()[0] <= high]


@pytest.mark.parametrize("epochs", [1, 2, 3, 12, 150])
def test_training_curves_label_whole_epochs_with_readable_names(epochs):
    history = [
        {"epoch": e + 1, "train_loss": 1 / (e + 1), "val_loss": 1.2 / (e + 1),
         "val_mae_original": 2.0 - e / 100, "lr": 1e-3, "seconds": 0.5}
        for e in range(epochs)
    ]  # fmt: skip
    figure = figures.training_curves(history)
    for ax in figure.axes:
        ticks = shown_ticks(ax)
        assert ticks and all(t.replace("−", "-").lstrip("-").isdigit() for t in ticks), ticks
        if epochs == 1:
            assert ticks == ["1"]  # not 0.96 … 1.04
    assert [ax.get_ylabel() for ax in figure.axes] == ["loss", "metric"]
    losses = figures.training_curves([{k: h[k] for k in ("epoch", "train_loss")} for h in history])
    assert [ax.get_ylabel() for ax in losses.axes] == ["loss"]  # one panel: the losses
    legends = [t.get_text() for ax in figure.axes for t in ax.get_legend().get_texts()]
    assert legends == [
        "training loss",
        "validation loss",
        "validation MAE in the target's units",
    ]


def test_a_long_text_wraps_into_rows_with_every_token_labeled():
    tokens = [f"w{t}" for t in range(100)]
    figure = figures.probability_curve(np.linspace(0.2, 0.8, 100), tokens)
    rows = figure.axes
    # 100 tokens: 5 rows of 20, read like the text, every token labeled at a readable size,
    # on a figure narrow enough for a phone (not 100 labels across 14 inches).
    assert len(rows) == 5 and figure.get_figwidth() <= 8
    figures.png(figure)
    assert [shown_ticks(ax, draw=False) for ax in rows] == [
        tokens[i : i + 20] for i in range(0, 100, 20)
    ]
    assert all(t.get_fontsize() >= 9 for ax in rows for t in ax.get_xticklabels())
    assert [ax.get_title() for ax in rows][::4] == ["tokens 1–20 of 100", "tokens 81–100 of 100"]
    assert all(np.ptp(ax.get_xlim()) == 20 for ax in rows)  # step under step in every row
    assert all(ax.get_ylim() == (0.0, 1.0) for ax in rows)  # one honest scale
    short = figures.probability_curve([0.4, 0.6, 0.7], ["a", "b", "c"])
    assert len(short.axes) == 1 and shown_ticks(short.axes[0]) == ["a", "b", "c"]
    assert short.axes[0].get_title() == "" and short.axes[0].get_xlabel() == "token read"


def test_a_long_heatmap_labels_a_readable_few_steps_and_says_which():
    torch.manual_seed(0)
    recording = record_gates(gru.GRU(2, 3), torch.randn(100, 2))
    figure = figures.gate_heatmaps(recording, [f"w{t}" for t in range(100)])
    reset = figure.axes[0]
    ticks = shown_ticks(reset)
    assert 5 <= len(ticks) <= 0.4 * figure.get_figwidth() / figures.TICK_ROOM
    every = int(ticks[1][1:]) - int(ticks[0][1:])
    assert reset.get_xlabel() == f"step read (every {every}th labeled)"


def test_heatmaps_of_chosen_units_name_their_rows_by_unit():
    torch.manual_seed(0)
    recording = record_gates(gru.GRU(3, 40), torch.randn(5, 3))
    figure = figures.gate_heatmaps(recording, units=[2, 7, 30])
    reset = figure.axes[0]
    figures.png(figure)
    assert [t.get_text() for t in reset.get_yticklabels()] == ["2", "7", "30"]
    assert reset.images[0].get_array().shape == (3, 5)  # (units, steps)
    np.testing.assert_array_equal(
        reset.images[0].get_array(), recording.layers[0][0].r[:, [2, 7, 30]].T
    )
    assert reset.images[0].get_clim() == (0.0, 1.0)  # one honest scale for every panel


def test_the_forecast_examples_legend_names_models_in_words():
    W, F = 6, 3
    example = {
        "history": np.zeros(W), "actual": np.ones(F), "forecast": np.ones(F),
        "linear": np.ones(F), "seasonal_naive": np.ones(F), "times": [str(t) for t in range(W + F)],
    }  # fmt: skip
    figure = figures.forecast_examples([example], "y", lookback=W, horizon=F, model="segrnn")
    legend = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert legend == ["history", "actual", "SegRNN", "linear", "seasonal naive"]
