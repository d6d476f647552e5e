"""gru.viz.figures: what a reader reads off the axes (the pictures themselves are looked at in
the browser tests and by people)."""

import numpy as np
import pytest
import torch

import gru
from gru.viz import figures, record_gates


def shown_ticks(ax) -> list[str]:
    """The x tick labels inside the axis's view, once drawn."""
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


def test_a_long_text_gets_a_readable_few_step_labels_and_says_which():
    tokens = [f"word{t}" for t in range(100)]
    figure = figures.probability_curve(np.linspace(0.2, 0.8, 100), tokens)
    ax = figure.axes[0]
    ticks = shown_ticks(ax)
    # One label per TICK_ROOM inches of the axis at the most: 26 on a 14-inch figure, not 100.
    assert 10 <= len(ticks) <= 0.85 * figure.get_figwidth() / figures.TICK_ROOM
    assert ticks[:3] == ["word0", "word4", "word8"]
    assert ax.get_xlabel() == "token read (every 4th labeled)"
    assert all(t.get_fontsize() >= 9 for t in ax.get_xticklabels())
    short = figures.probability_curve([0.4, 0.6, 0.7], ["a", "b", "c"]).axes[0]
    assert shown_ticks(short) == ["a", "b", "c"] and short.get_xlabel() == "token read"


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
