"""gru.viz.explain: the forecast page from a hand-made explanation (the review's page, from a
real model's explanation: test_explanations.py)."""

import numpy as np
import pytest
import torch

import gru
from gru.viz import record_gates


def test_a_forecast_page_shows_the_window_forecast_actual_and_gates(tmp_path):
    from gru.viz import ForecastExplanation, write_forecast_explanation
    from viz_runs import assert_self_contained

    torch.manual_seed(0)
    W, F = 12, 4
    window = np.stack([np.sin(np.arange(W) / 2), np.arange(W) * 0.1], axis=1)  # (W, 2)
    recording = record_gates(gru.GRU(2, 5), torch.from_numpy(window))
    e = ForecastExplanation(
        window=window, columns=["load", "OT <°C>"], target="OT <°C>",
        forecast=np.array([1.2, 1.3, 1.4, 1.5]), actual=np.array([1.0, 1.5]),
        recording=recording, labels=[f"row {t}" for t in range(W)],
        forecast_labels=[f"row {W + h}" for h in range(F)], gate_labels=[f"row {t}" for t in range(W)],
        notes=["Only the first 2 forecast steps have actual values."],
    )  # fmt: skip
    page = write_forecast_explanation(e, tmp_path / "f.html").read_text()
    assert_self_contained(page)
    assert "<h1>What the gates did: forecasting OT &lt;°C&gt;</h1>" in page
    assert "mean absolute error (2 steps)" in page and ">0.2<" in page  # (|0.2| + |0.2|) / 2
    assert "Only the first 2 forecast steps have actual values." in page
    assert page.count("<img ") == 2 and "over the 12 steps the GRU read" in page
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.html", "f_forecast.png", "f_gates.png"]
    e.actual = None
    page = write_forecast_explanation(e, tmp_path / "f.html").read_text()
    assert "The data ends with the window: there are no actual values to compare." in page
    # Python's words from Python: the argument is out, not --out.
    with pytest.raises(ValueError, match=r"^write_forecast_explanation: out '.*' is a folder; name the HTML file to write$"):  # fmt: skip
        write_forecast_explanation(e, tmp_path)
