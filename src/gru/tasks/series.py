"""What the tasks on CSV series (`gru.tasks.forecast`, `gru.tasks.anomaly`) share: how a series
is read, and the settings of that reading.

Both read a CSV path or a pandas DataFrame through `gru.data.timeseries.prepare`, with a time
column (``time_column``, else found by name), missing values refused or filled (``fillna``),
and a chronological split (``split``: 70/10/20 of the rows, or the ETT benchmark's months).
"""

from __future__ import annotations

import os

import pandas as pd
import torch
from torch import Tensor

from gru.data import timeseries
from gru.data.timeseries import Scaler, Split, TimeSeries
from gru.tasks.runs import check_numbers

__all__ = ["check_reading", "read_series", "scaled", "short_part", "split_series"]


def read_series(
    data: pd.DataFrame | str | os.PathLike,
    *,
    target: str,
    features: str,
    time_column: str | None,
    fillna: str | None,
    columns: list[str] | None = None,
    limit: int | None = None,
) -> TimeSeries:
    """The checked `TimeSeries` of ``data`` (a CSV path or a DataFrame): its ``target`` alone
    or every column (``features``), or exactly ``columns`` when given (new data read as a
    trained model reads it); only its first ``limit`` rows when given (quick runs)."""
    if isinstance(data, (str, os.PathLike)):
        frame, source = timeseries.read_csv(data), str(data)
    elif isinstance(data, pd.DataFrame):
        frame, source = data, None
    else:
        raise TypeError(f"data must be a pandas DataFrame or a CSV path, got {type(data).__name__}")
    return timeseries.prepare(
        frame if limit is None else frame.iloc[:limit],
        target=target,
        features=features,
        time_column=time_column,
        fillna=fillna,
        source=source,
        columns=columns,
    )


def check_reading(owner: str, config) -> None:
    """ValueError unless ``config``'s ``split`` and ``fillna`` are ones `read_series` and
    `gru.data.timeseries.split_rows` know, and its ``dropout`` is in [0, 1)."""
    if config.split not in timeseries.SPLITS:
        raise ValueError(f"{owner}: split must be one of {timeseries.SPLITS}, got {config.split!r}")
    if config.fillna is not None and config.fillna not in timeseries.FILLNA:
        raise ValueError(
            f"{owner}: fillna must be one of {timeseries.FILLNA} or None, got {config.fillna!r}"
        )
    check_numbers(owner, config, ("dropout",))
    if not 0.0 <= config.dropout < 1.0:
        raise ValueError(f"{owner}: dropout must be in [0, 1), got {config.dropout}")


def split_series(series: TimeSeries, split: str) -> Split:
    """The chronological train/validation/test rows of ``series`` (``split``: "ratio" or
    "ett", whose months need the time column's rows per day)."""
    return timeseries.split_rows(len(series), split, per_day=timeseries.rows_per_day(series.time))


def short_part(parts: Split, lookback: int, horizon: int) -> tuple[str, tuple[int, int]] | None:
    """(name, [start, end)) of the first part that holds no window of ``horizon`` rows with
    ``lookback`` rows before it, or None when each holds one."""
    for name, part in (
        ("train", parts.train),
        ("validation", parts.validation),
        ("test", parts.test),
    ):
        if part[1] - max(part[0], lookback) < horizon:
            return name, part
    return None


def scaled(series: TimeSeries, parts: Split) -> tuple[Scaler, Tensor]:
    """(the scaler fitted on the training rows only, every row scaled by it (T, C) float32)."""
    scaler = Scaler.fit(series.values[: parts.train[1]])
    return scaler, torch.from_numpy(scaler.transform(series.values)).float()
