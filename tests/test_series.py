"""gru.tasks.series: a CSV path or a DataFrame read the same way, the reading settings checked,
and the split's parts that hold no window found."""

from types import SimpleNamespace

import numpy as np
import pytest

from gru.data import timeseries
from gru.tasks.series import check_reading, read_series, scaled, short_part, split_series
from viz_runs import series_frame


def test_a_csv_and_its_dataframe_read_alike(tmp_path):
    frame = series_frame(50)
    frame.to_csv(tmp_path / "s.csv", index=False)
    settings = {"target": "temp", "features": "M", "time_column": None, "fillna": None}
    from_file = read_series(tmp_path / "s.csv", **settings)
    from_frame = read_series(frame, **settings)
    np.testing.assert_array_equal(from_file.values, from_frame.values)
    assert from_file.columns == ["load", "temp"] and from_file.time_column == "date"
    assert read_series(frame, **settings, columns=["temp"]).columns == ["temp"]
    with pytest.raises(TypeError, match=r"data must be a pandas DataFrame or a CSV path, got list"):
        read_series([1, 2], **settings)


def test_the_reading_settings_are_checked():
    good = SimpleNamespace(split="ratio", fillna=None, dropout=0.0)
    check_reading("C", good)
    with pytest.raises(ValueError, match=r"C: split must be one of \('ratio', 'ett'\), got 'x'"):
        check_reading("C", SimpleNamespace(split="x", fillna=None, dropout=0.0))
    with pytest.raises(ValueError, match=r"C: fillna must be one of .* or None, got 'mean'"):
        check_reading("C", SimpleNamespace(split="ratio", fillna="mean", dropout=0.0))
    with pytest.raises(ValueError, match=r"C: dropout must be in \[0, 1\), got 1"):
        check_reading("C", SimpleNamespace(split="ratio", fillna=None, dropout=1))


def test_the_split_its_short_parts_and_the_scaling_on_the_training_rows():
    series = timeseries.prepare(series_frame(100), target="temp")
    parts = split_series(series, "ratio")
    assert (parts.train, parts.validation, parts.test) == ((0, 70), (70, 80), (80, 100))
    assert short_part(parts, 8, 2) is None
    assert short_part(parts, 8, 12) == ("validation", (70, 80))  # 10 rows hold no 12
    scaler, values = scaled(series, parts)
    np.testing.assert_allclose(scaler.mean, series.values[:70].mean(axis=0))
    assert values.dtype.is_floating_point and values.shape == (100, 2)
