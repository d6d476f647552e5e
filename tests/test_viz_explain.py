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


def test_token_shades_are_on_one_fixed_scale_with_the_texts_range_marked(tmp_path):
    import re

    from gru.viz import TextExplanation, write_text_explanation

    torch.manual_seed(0)
    recording = record_gates(gru.GRU(2, 4), torch.randn(3, 2))
    update = np.array([0.437, 0.452, 0.467])  # a 0.03 range must look like one
    e = TextExplanation(
        text="a fine film", tokens=["a", "fine", "film"], kinds=["word"] * 3, update=update,
        reset=np.array([0.9, 0.5, 0.1]), probabilities=np.array([0.5, 0.6, 0.7]),
        prediction=0.7, recording=recording, steps=slice(0, 3), method="m", maxlen=10,
    )  # fmt: skip
    page = write_text_explanation(e, tmp_path / "t.html").read_text()
    opacities = [
        float(a) for a in re.findall(r"background-color: rgba\(234, 88, 12, ([0-9.]+)\)", page)
    ]
    np.testing.assert_allclose(opacities, 0.06 + 0.64 * update, atol=1e-3)  # not 0.06 … 0.7
    # Each bar runs 0 to 1, labeled, with a box at this text's range and the range in words.
    assert page.count('<span class="scale">0<span class="swatch"') == 2
    assert page.count("</span></span>1</span> (this text:") == 2
    assert '<span class="range" style="left: 43.7%; width: 3.0%">' in page
    assert "1</span> (this text: 0.437–0.467)" in page
    assert '<span class="range" style="left: 10.0%; width: 80.0%">' in page  # 1 − r̄: 0.1 … 0.9


def test_a_wide_forecasters_heatmaps_show_the_units_that_move_most(tmp_path):
    from gru.viz import ForecastExplanation, write_forecast_explanation
    from gru.viz.explain import UNITS_SHOWN, moving_units

    torch.manual_seed(0)
    W = 4
    recording = record_gates(gru.GRU(1, 64), torch.randn(W, 1))
    units, top, rest = moving_units(recording)
    gates = recording.layers[0][0]
    move = np.maximum(np.ptp(gates.r, axis=0), np.ptp(gates.z, axis=0))  # (64,)
    assert len(units) == UNITS_SHOWN and list(units) == sorted(units)
    assert set(units) == set(np.argsort(-move)[:UNITS_SHOWN])
    assert top == pytest.approx(move.max()) and rest == pytest.approx(
        np.sort(move)[-UNITS_SHOWN - 1]
    )
    e = ForecastExplanation(
        window=np.arange(W, dtype=float)[:, None], columns=["y"], target="y",
        forecast=np.array([1.0, 2.0]), actual=None, recording=recording,
        labels=[str(t) for t in range(W)], forecast_labels=["4", "5"],
        gate_labels=[f"segment {i}" for i in range(W)],
    )  # fmt: skip
    page = write_forecast_explanation(e, tmp_path / "f.html").read_text()
    assert f"for the {UNITS_SHOWN} of its 64 units whose gates moved most over them" in page
    assert f"by up to {top:.3f}; no other unit&#x27;s gate moved more than {rest:.3f}" in page
    assert top < 0.2 and "the gates change little from step to step" in page
    lively = gru.GRU(1, 64)
    with torch.no_grad():
        for weight in lively.parameters():
            weight.mul_(30)  # gates that swing between 0 and 1
    e.recording = record_gates(lively, torch.randn(W, 1))
    assert moving_units(e.recording)[1] > 0.2
    assert "change little" not in write_forecast_explanation(e, tmp_path / "f.html").read_text()
    small = record_gates(gru.GRU(1, 5), torch.randn(W, 1))  # few units: every one is shown
    assert len(moving_units(small)[0]) == 5
