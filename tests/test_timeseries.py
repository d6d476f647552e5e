"""gru.data.timeseries: reading and checking, split arithmetic, train-only scaling, windows."""

import numpy as np
import pandas as pd
import pytest
import torch

from gru.data import timeseries
from gru.data.timeseries import Scaler, detect_season, future_times, prepare, split_rows


def frame(n=10, **columns):
    data = {"date": pd.date_range("2024-01-01", periods=n, freq="h").astype(str)}
    data.update(columns or {"x": np.arange(n, dtype=float), "y": np.arange(n) * 10.0})
    return pd.DataFrame(data)


# --- reading and checking ----------------------------------------------------------------------


def test_prepare_finds_the_time_column_and_orders_the_channels():
    series = prepare(frame(), target="y", features="M")
    assert series.columns == ["x", "y"] and series.target == 1 and series.time_column == "date"
    assert series.time[1] - series.time[0] == pd.Timedelta(hours=1)
    np.testing.assert_array_equal(series.values[:, 1], np.arange(10) * 10.0)
    assert series.channels("S") == ([1], [1])
    assert series.channels("M") == ([0, 1], [0, 1])
    assert series.channels("MS") == ([0, 1], [1])
    alone = prepare(frame(), target="y", features="S")
    assert alone.columns == ["y"] and alone.values.shape == (10, 1)


def test_a_datetime_index_or_no_time_at_all():
    indexed = frame().set_index("date")
    indexed.index = pd.to_datetime(indexed.index)
    assert prepare(indexed, target="x").time[0] == pd.Timestamp("2024-01-01")
    plain = pd.DataFrame({"x": np.arange(5.0), "y": np.ones(5)})
    series = prepare(plain, target="x")
    assert series.time is None and series.columns == ["x", "y"]
    assert list(future_times(None, 3, 5)) == [5, 6, 7]


def test_future_times_continue_the_frequency():
    hourly = pd.DatetimeIndex(pd.date_range("2024-01-01", periods=30, freq="h"))
    assert list(future_times(hourly, 2, 30)) == [
        pd.Timestamp("2024-01-02 06:00"),
        pd.Timestamp("2024-01-02 07:00"),
    ]
    monthly = pd.DatetimeIndex(pd.date_range("1949-01-01", periods=24, freq="MS"))
    assert future_times(monthly, 1, 24)[0] == pd.Timestamp("1951-01-01")


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("ffill", [1.0, 1.0, 1.0, 4.0, 4.0]),
        ("interpolate", [1.0, 2.0, 3.0, 4.0, 4.0]),
        ("zero", [1.0, 0.0, 0.0, 4.0, 0.0]),
    ],
)
def test_fillna_fills_gaps_as_asked(method, expected):
    data = frame(5, x=[1.0, None, np.nan, 4.0, None])
    series = prepare(data, target="x", fillna=method)
    np.testing.assert_array_equal(series.values[:, 0], expected)


def test_bad_data_is_named_with_its_line(tmp_path):
    with pytest.raises(
        ValueError,
        match=r"data: the DataFrame has no column 'z' \(the target\); its columns are 'x', 'y' \(and the time column 'date'\)",
    ):
        prepare(frame(), target="z")
    with pytest.raises(
        ValueError,
        match=r"column 'x' of 'f.csv' holds a value that is not a number: 'oops' on line 4",
    ):
        prepare(frame(5, x=["1", "2", "oops", "4", "5"]), target="x", source="f.csv")
    with pytest.raises(
        ValueError,
        match=r"column 'x' of the DataFrame has 2 missing values \(row 1, row 3\); fill them with --fillna ffill\|interpolate\|zero",
    ):
        prepare(frame(5, x=[1.0, None, 3.0, None, 5.0]), target="x")
    bad_dates = frame(4, x=np.arange(4.0))
    bad_dates.loc[2, "date"] = "not a date"
    with pytest.raises(
        ValueError,
        match=r"cannot read the time column 'date' of 'f.csv' as dates: 'not a date' on line 4",
    ):
        prepare(bad_dates, target="x", source="f.csv", time_column="date")
    backwards = frame(4, x=np.arange(4.0)).iloc[[0, 2, 1, 3]]
    with pytest.raises(
        ValueError,
        match=r"must increase row by row: row 2 \(2024-01-01 01:00:00\) does not come after row 1",
    ):
        prepare(backwards, target="x")
    with pytest.raises(
        ValueError,
        match=r"with --features M every column is read \(--features S reads only the target\)",
    ):
        prepare(frame(3, x=[1.0, 2.0, 3.0], kind=["a", "b", "c"]), target="x")
    assert prepare(frame(3, x=[1.0, 2.0, 3.0], kind=["a", "b", "c"]), target="x", features="S")


def test_read_csv_refuses_empty_and_non_utf8_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data: '.*nowhere.csv' does not exist"):
        timeseries.read_csv(tmp_path / "nowhere.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match=r"data: '.*empty.csv' is empty"):
        timeseries.read_csv(tmp_path / "empty.csv")
    (tmp_path / "latin.csv").write_bytes("date,x\n2024-01-01,caf\xe9\n".encode("latin-1"))
    # "date,x\n" is 7 bytes and "2024-01-01,caf" 14 more: the é is byte 21, counted from 0.
    with pytest.raises(ValueError, match=r"is not UTF-8 text \(byte 21\); save it as UTF-8 CSV"):
        timeseries.read_csv(tmp_path / "latin.csv")
    (tmp_path / "header.csv").write_text("date,x\n")
    with pytest.raises(ValueError, match=r"has a header but no rows"):
        timeseries.read_csv(tmp_path / "header.csv")


# --- splits, scaling and windows ---------------------------------------------------------------


def test_split_arithmetic():
    parts = split_rows(100)
    assert (parts.train, parts.validation, parts.test) == ((0, 70), (70, 80), (80, 100))
    parts = split_rows(101)  # ⌊70.7⌋ train, ⌊20.2⌋ test, the rest validation
    assert (parts.train, parts.validation, parts.test) == ((0, 70), (70, 81), (81, 101))
    ett = split_rows(17_420, "ett", per_day=24)  # ETTh1: 12/4/4 months of 30 days
    assert (ett.train, ett.validation, ett.test) == ((0, 8640), (8640, 11520), (11520, 14400))
    assert split_rows(69_680, "ett", per_day=96).test == (46_080, 57_600)  # ETTm1
    with pytest.raises(
        ValueError,
        match=r"split='ett' needs 20 months of rows \(14400 rows at 24 rows a day\), got 1000",
    ):
        split_rows(1000, "ett", per_day=24)
    with pytest.raises(ValueError, match=r"needs a time column"):
        split_rows(1000, "ett")
    assert (
        timeseries.rows_per_day(pd.DatetimeIndex(pd.date_range("2024", periods=5, freq="15min")))
        == 96
    )


def test_minimum_length_is_the_shortest_series_that_splits():
    for lookback, horizon in ((4, 2), (96, 96), (10, 1)):
        n = timeseries.minimum_length(lookback, horizon)
        for length, ok in ((n, True), (n - 1, False)):
            parts = split_rows(length)
            counts = [
                p[1] - max(p[0], lookback) - horizon + 1
                for p in (parts.train, parts.validation, parts.test)
            ]
            assert (min(counts) >= 1) == ok, (lookback, horizon, length)


def test_windows_belong_to_the_part_of_their_forecast_rows():
    values = torch.arange(100, dtype=torch.float32).view(100, 1)  # the row number as value
    parts = split_rows(100)
    x, y = timeseries.windows(values, parts.train, 8, 3, [0], [0])
    assert len(x) == 70 - 8 - 3 + 1  # forecasts start at rows 8 … 67
    assert x[torch.tensor([0])].flatten().tolist() == list(range(0, 8))
    assert y[torch.tensor([len(y) - 1])].flatten().tolist() == [67.0, 68.0, 69.0]
    x, y = timeseries.windows(values, parts.validation, 8, 3, [0], [0])
    assert len(x) == 10 - 3 + 1
    # The first validation window reads training rows 62-69 and forecasts rows 70-72.
    assert x[torch.tensor([0])].flatten().tolist() == list(range(62, 70))
    assert y.all()[:, :, 0].min() == 70 and y.all()[:, :, 0].max() == 79  # no row outside
    both = timeseries.Windows(torch.arange(20.0).view(10, 2), torch.tensor([0, 3]), 2, [1])
    assert both.all().tolist() == [[[1.0], [3.0]], [[7.0], [9.0]]]


def test_scaling_statistics_come_from_the_training_rows_only():
    values = np.concatenate([np.full((70, 1), 2.0), np.full((30, 1), 1000.0)])
    values[:35] = 0.0  # train rows: half 0, half 2 -> mean 1, std 1
    scaler = Scaler.fit(values[: split_rows(100).train[1]])
    assert scaler.mean.tolist() == [1.0] and scaler.std.tolist() == [1.0]
    np.testing.assert_array_equal(scaler.transform(values)[-1], [999.0])
    np.testing.assert_array_equal(scaler.inverse(scaler.transform(values)), values)
    flat = Scaler.fit(np.ones((5, 2)))
    assert flat.std.tolist() == [1.0, 1.0]  # a constant channel is left unscaled
    assert Scaler.from_dict(scaler.to_dict()).mean.tolist() == [1.0]


def test_season_detection():
    t = np.arange(2000)
    rng = np.random.default_rng(0)
    assert (
        detect_season(np.sin(2 * np.pi * t / 12) + 0.01 * t + 0.1 * rng.normal(size=2000), 48) == 12
    )
    assert detect_season(rng.normal(size=2000), 48) is None
    assert detect_season(np.sin(2 * np.pi * t / 24), 12) is None  # beyond max_lag


def test_an_infinite_value_is_named_as_one_not_as_missing(tmp_path):
    with pytest.raises(ValueError, match=r"column 'x' of 'f\.csv' holds an infinite value: -inf on line 3 \(2 such values\); replace it, or fill it as a missing value with --fillna ffill\|interpolate\|zero"):  # fmt: skip
        prepare(frame(5, x=[1.0, -np.inf, 3.0, np.inf, 5.0]), target="x", source="f.csv")
    csv = tmp_path / "inf.csv"
    csv.write_text("x,y\n1,2\ninf,3\n4,5\n")
    with pytest.raises(ValueError, match=r"column 'x' of '.*inf\.csv' holds an infinite value: inf on line 3; replace it"):  # fmt: skip
        prepare(timeseries.read_csv(csv), target="x", source=str(csv))
    filled = prepare(frame(5, x=[1.0, -np.inf, 3.0, np.inf, 5.0]), target="x", fillna="ffill")
    assert filled.values[:, filled.target].tolist() == [1.0, 1.0, 3.0, 3.0, 5.0]  # as before


def test_a_folder_given_as_the_csv_is_named_as_a_folder(tmp_path):
    with pytest.raises(IsADirectoryError, match=r"data: '.*' is a folder; give the CSV file"):
        timeseries.read_csv(tmp_path)


def test_minimum_length_of_a_huge_lookback_is_found_at_once():
    def shortest(lookback, horizon):  # the definition, counted up from lookback + horizon
        n = lookback + horizon
        while True:
            parts = split_rows(n)
            counts = [p[1] - max(p[0], lookback) - horizon + 1 for p in (parts.train, parts.validation, parts.test)]  # fmt: skip
            if min(counts) >= 1:
                return n
            n += 1

    for lookback in range(1, 41):
        for horizon in range(1, 41):
            assert timeseries.minimum_length(lookback, horizon) == shortest(lookback, horizon)
    # It counted up one row at a time: --lookback 1000000000 hung for minutes in a message.
    assert timeseries.minimum_length(10**9, 6) == 1_428_571_438
    parts = split_rows(1_428_571_438)
    assert parts.train[1] - 10**9 - 6 + 1 == 1
