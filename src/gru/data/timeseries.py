"""Time series from CSV files and DataFrames: reading and checking, chronological splits,
scaling fitted on the training rows only, and sliding windows.

A series is T rows in time order of C numeric channels. A forecasting window at row t reads
the W rows [t − W, t) (the lookback) and forecasts the F rows [t, t + F) (the horizon). The
rows are split in time order into train, validation and test parts; a window belongs to the
part that holds all F of its forecast rows, and its lookback may reach back into the previous
part. This is how the ETT benchmark code (Informer, Autoformer and the papers that reuse their
loaders) cuts ETTh1: train windows forecast rows [W, 8640), validation windows rows
[8640, 11520), test windows rows [11520, 14400), the first test window reading rows
[11520 − W, 11520) of the validation part. Every window of a part is used (none dropped).

Shapes: T rows, C channels, W lookback steps, F horizon steps, N windows, K channels read or
forecast by a window.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor

__all__ = [
    "FEATURES",
    "FILLNA",
    "SPLITS",
    "Scaler",
    "Split",
    "TimeSeries",
    "Windows",
    "detect_season",
    "future_times",
    "minimum_length",
    "prepare",
    "read_csv",
    "split_rows",
    "windows",
]

FEATURES = ("S", "M", "MS")  # the target alone; all channels predict all; all predict the target
SPLITS = ("ratio", "ett")
FILLNA = ("ffill", "interpolate", "zero")
RATIOS = (0.7, 0.1, 0.2)  # train / validation / test
ETT_MONTHS = (12, 4, 4)  # months of 30 days
TIME_NAMES = ("date", "datetime", "time", "timestamp", "month", "day", "week", "year", "ds")


# --- reading and checking ----------------------------------------------------------------------


def read_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV file with a header row as text columns' own types (pandas' inference).

    Raises FileNotFoundError if it does not exist and ValueError if it is empty, not UTF-8 or
    not a CSV table.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"data: {str(path)!r} is a folder; give the CSV file")
    if not path.is_file():
        raise FileNotFoundError(f"data: {str(path)!r} does not exist")
    raw = path.read_bytes()
    if not raw.strip():
        raise ValueError(f"data: {str(path)!r} is empty")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"data: {str(path)!r} is not UTF-8 text (byte {error.start}); save it as UTF-8 CSV"
        ) from None
    try:
        frame = pd.read_csv(path, encoding="utf-8")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as error:
        raise ValueError(f"data: cannot read {str(path)!r} as CSV: {error}") from None
    if frame.empty:
        raise ValueError(f"data: {str(path)!r} has a header but no rows")
    return frame


@dataclass
class TimeSeries:
    """A checked series: ``values`` (T, C) float64 of the ``columns`` in that order, ``time``
    (T,) increasing timestamps (None when the data has no time column), the index of the
    ``target`` column, and ``source``, how messages name the data."""

    values: np.ndarray
    columns: list[str]
    time: pd.DatetimeIndex | None
    target: int
    source: str
    time_column: str | None = None

    def __len__(self) -> int:
        return len(self.values)

    def channels(self, features: str) -> tuple[list[int], list[int]]:
        """(channels a window reads, channels it forecasts) for ``features`` S, M or MS."""
        every = list(range(len(self.columns)))
        if features == "S":
            return [self.target], [self.target]
        if features == "M":
            return every, every
        return every, [self.target]


def _where(source_is_file: bool, i: int) -> str:
    """Row i (0-based among data rows) as a person finds it: a file line or a frame row."""
    return f"line {i + 2}" if source_is_file else f"row {i}"


def _find_time_column(frame: pd.DataFrame, time_column: str | None, source: str) -> str | None:
    if time_column is not None:
        if time_column not in frame.columns:
            raise ValueError(
                f"data: {source} has no time column {time_column!r}; its columns are "
                + ", ".join(repr(str(c)) for c in frame.columns)
            )
        return time_column
    for column in frame.columns:
        if str(column).strip().lower() in TIME_NAMES:
            return column
    first = frame.columns[0]
    if len(frame.columns) > 1 and not pd.api.types.is_numeric_dtype(frame[first]):
        parsed = pd.to_datetime(frame[first], errors="coerce")
        if parsed.notna().all():
            return first
    return None


def _first_bad(column: pd.Series, bad: np.ndarray, is_file: bool) -> str:
    """The first of the ``bad`` rows of ``column`` for a message: its value, where it is, and
    how many such values there are when more than one."""
    i = int(bad[0])
    many = f" ({len(bad)} such values)" if len(bad) > 1 else ""
    return f"{column.iloc[i]!r} on {_where(is_file, i)}{many}"


def _parse_time(column: pd.Series, name: str, source: str, is_file: bool) -> pd.DatetimeIndex:
    if pd.api.types.is_datetime64_any_dtype(column):
        parsed = pd.DatetimeIndex(column)
    else:
        text = column.astype(str) if pd.api.types.is_numeric_dtype(column) else column
        year_like = pd.api.types.is_integer_dtype(column)
        parsed = pd.DatetimeIndex(
            pd.to_datetime(text, errors="coerce", format="%Y" if year_like else None)
        )
    bad = np.flatnonzero(np.asarray(parsed.isna()))
    if len(bad):
        raise ValueError(
            f"data: cannot read the time column {name!r} of {source} as dates: "
            + _first_bad(column, bad, is_file)
        )
    if parsed.tz is not None:
        parsed = parsed.tz_convert(None)
    parsed = parsed.as_unit("ns")  # pandas may parse to s or µs; asi8 below counts ns
    steps = np.diff(parsed.asi8)
    if np.any(steps <= 0):
        i = int(np.flatnonzero(steps <= 0)[0]) + 1
        raise ValueError(
            f"data: the time column {name!r} of {source} must increase row by row: "
            f"{_where(is_file, i)} ({parsed[i]}) does not come after {_where(is_file, i - 1)} "
            f"({parsed[i - 1]}); sort the rows and remove duplicates"
        )
    return parsed


def _numeric(
    frame: pd.DataFrame, name: str, source: str, is_file: bool, fillna: str | None, hint: str
) -> np.ndarray:
    column = frame[name]
    values = pd.to_numeric(column, errors="coerce")
    missing_before = column.isna().to_numpy()
    not_numbers = np.flatnonzero(values.isna().to_numpy() & ~missing_before)
    if len(not_numbers):
        raise ValueError(
            f"data: column {name!r} of {source} holds a value that is not a number: "
            + _first_bad(column, not_numbers, is_file)
            + hint
        )
    values = values.to_numpy(dtype=np.float64, copy=True)
    infinite = np.flatnonzero(np.isinf(values))
    if len(infinite) and fillna is None:
        i, many = int(infinite[0]), f" ({len(infinite)} such values)" if len(infinite) > 1 else ""
        raise ValueError(
            f"data: column {name!r} of {source} holds an infinite value: {float(values[i])} on "
            f"{_where(is_file, i)}{many}; replace it, or fill it as a missing value with "
            f"--fillna {'|'.join(FILLNA)} (fillna= in Python)"
        )
    values[infinite] = np.nan  # filled as the missing values are
    missing = np.flatnonzero(np.isnan(values))
    if len(missing) and fillna is None:
        shown = ", ".join(_where(is_file, int(i)) for i in missing[:5])
        raise ValueError(
            f"data: column {name!r} of {source} has {len(missing)} missing value"
            f"{'s' if len(missing) > 1 else ''} ({shown}{', ...' if len(missing) > 5 else ''}); "
            f"fill them with --fillna {'|'.join(FILLNA)} (fillna= in Python) or clean the data"
        )
    if len(missing):
        if len(missing) == len(values):
            raise ValueError(f"data: column {name!r} of {source} has no values at all")
        filled = pd.Series(values)
        if fillna == "ffill":
            filled = filled.ffill().bfill()  # the leading gap takes the first value
        elif fillna == "interpolate":
            filled = filled.interpolate(limit_direction="both")
        else:
            filled = filled.fillna(0.0)
        values = filled.to_numpy(dtype=np.float64)
    return values


def prepare(
    data: pd.DataFrame,
    *,
    target: str,
    features: str = "M",
    time_column: str | None = None,
    fillna: str | None = None,
    source: str | None = None,
    columns: list[str] | None = None,
) -> TimeSeries:
    """Check ``data`` and turn it into a `TimeSeries` of numeric channels.

    The time column is ``time_column``, else one named like a date (date, time, timestamp,
    month, ...), else a first column that parses entirely as dates, else the DataFrame's
    DatetimeIndex; a series without one is allowed (no ETT split, future steps numbered).
    The channels are the ``target`` alone (``features="S"``) or every other column (M, MS),
    or exactly ``columns`` when given (to read new data as a trained model was). Missing values
    raise, unless ``fillna`` says how to fill them: "ffill" (the last value before the gap),
    "interpolate" (linear) or "zero". ``source`` names the data in messages (a file's path:
    rows are then counted as lines of the file).

    Raises ValueError naming the column and line of the first problem.
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
    if features not in FEATURES:
        raise ValueError(f"features must be one of {FEATURES}, got {features!r}")
    if fillna is not None and fillna not in FILLNA:
        raise ValueError(f"fillna must be one of {FILLNA}, got {fillna!r}")
    is_file = source is not None
    source = repr(source) if source is not None else "the DataFrame"
    if len(data) == 0:
        raise ValueError(f"data: {source} has no rows")
    frame = data.copy()
    frame.columns = [str(c) for c in frame.columns]
    name = _find_time_column(frame, time_column, source)
    if name is not None:
        time = _parse_time(frame[name], name, source, is_file)
        frame = frame.drop(columns=[name])
    elif isinstance(frame.index, pd.DatetimeIndex):
        time = _parse_time(frame.index.to_series(), "(index)", source, is_file)
        name = None
    else:
        time = None
    if target not in frame.columns:
        raise ValueError(
            f"data: {source} has no column {target!r} (the target); its columns are "
            + ", ".join(repr(c) for c in frame.columns)
            + (f" (and the time column {name!r})" if name is not None else "")
        )
    if columns is not None:
        absent = [c for c in columns if c not in frame.columns]
        if absent:
            raise ValueError(
                f"data: {source} lacks the column{'s' if len(absent) > 1 else ''} "
                + ", ".join(repr(c) for c in absent)
                + " that the model reads; its columns are "
                + ", ".join(repr(c) for c in frame.columns)
            )
        chosen = list(columns)
    elif features == "S":
        chosen = [target]
    else:
        chosen = list(frame.columns)
    values = np.empty((len(frame), len(chosen)), dtype=np.float64)
    for k, column in enumerate(chosen):
        hint = ""
        if column != target and columns is None:
            hint = (
                f"; with --features {features} every column is read "
                "(--features S reads only the target)"
            )
        values[:, k] = _numeric(frame, column, source, is_file, fillna, hint)
    return TimeSeries(values, chosen, time, chosen.index(target), source, name)


# --- splits and scaling ------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """Row ranges [start, end) of the train, validation and test parts (the rows forecast)."""

    train: tuple[int, int]
    validation: tuple[int, int]
    test: tuple[int, int]

    def as_dict(self) -> dict[str, list[int]]:
        return {
            "train": list(self.train),
            "validation": list(self.validation),
            "test": list(self.test),
        }


def rows_per_day(time: pd.DatetimeIndex | None) -> float | None:
    """Rows per day from the median step of ``time`` (24 for hourly data), None without time."""
    if time is None or len(time) < 2:
        return None
    step = float(np.median(np.diff(time.as_unit("ns").asi8)))  # nanoseconds
    return 86_400e9 / step


def split_rows(n: int, split: str = "ratio", *, per_day: float | None = None) -> Split:
    """Cut ``n`` rows in time order into train, validation and test.

    ``"ratio"``: 70/10/20 as the Autoformer loaders do (train ⌊0.7n⌋ rows, test ⌊0.2n⌋, the
    rest validation). ``"ett"``: the ETT benchmark's 12/4/4 months of 30 days, counted in rows
    from ``per_day`` (24 for ETTh, 96 for ETTm); the rows after month 20 are not used.
    """
    if split == "ratio":
        n_train, n_test = int(n * RATIOS[0]), int(n * RATIOS[2])
        n_val = n - n_train - n_test
        return Split((0, n_train), (n_train, n_train + n_val), (n - n_test, n))
    if split != "ett":
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if per_day is None:
        raise ValueError(
            "split='ett' counts months of rows, so the data needs a time column to tell how "
            "many rows make a day"
        )
    month = round(30 * per_day)
    a, b, c = (month * sum(ETT_MONTHS[: k + 1]) for k in range(3))
    if n < c:
        raise ValueError(
            f"data: split='ett' needs 20 months of rows ({c} rows at {per_day:g} rows a day), "
            f"got {n}; use split='ratio'"
        )
    return Split((0, a), (a, b), (b, c))


def minimum_length(lookback: int, horizon: int, split: str = "ratio") -> int:
    """The fewest rows a ratio split needs to give every part one window (for ``"ett"`` the
    20 months decide)."""
    # No shorter series can do: the train part needs lookback + horizon rows of its 70%, the
    # validation part horizon rows of its 10% (plus what rounding gives it), the test part
    # horizon rows of its 20%; counting up from there is a few steps, not lookback / 0.7.
    bound = max((lookback + horizon) / RATIOS[0], (horizon - 2) / RATIOS[1], horizon / RATIOS[2])
    n = max(lookback + horizon, math.floor(bound) - 1)
    while True:
        parts = split_rows(n, "ratio")
        counts = [
            part[1] - max(part[0], lookback) - horizon + 1
            for part in (parts.train, parts.validation, parts.test)
        ]
        if min(counts) >= 1:
            return n
        n += 1


@dataclass
class Scaler:
    """Standardization per channel: (x − mean) / std, fitted on the training rows only.

    ``mean`` and ``std`` are (C,); a constant channel gets std 1, as sklearn's
    StandardScaler does (std is the population one, ddof 0, also as sklearn).
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray) -> Scaler:
        """Statistics of ``values`` (T, C), the training rows."""
        mean = values.mean(axis=0)  # (C,)
        std = values.std(axis=0)  # (C,)
        return cls(mean, np.where(std > 0, std, 1.0))

    def transform(self, values: np.ndarray, channels: list[int] | None = None) -> np.ndarray:
        """(values − mean) / std over the last axis, of ``channels`` (all by default)."""
        c = slice(None) if channels is None else channels
        return (values - self.mean[c]) / self.std[c]

    def inverse(self, values: np.ndarray, channels: list[int] | None = None) -> np.ndarray:
        """values · std + mean over the last axis, of ``channels`` (all by default)."""
        c = slice(None) if channels is None else channels
        return values * self.std[c] + self.mean[c]

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, values: dict) -> Scaler:
        return cls(np.asarray(values["mean"], np.float64), np.asarray(values["std"], np.float64))


# --- windows -----------------------------------------------------------------------------------


class Windows:
    """Windows of a series, cut on demand: ``windows[index]`` is (len(index), length, K).

    ``values`` (T, C) tensor; window i reads rows [starts[i], starts[i] + length) of the
    ``channels`` (K of the C). Indexing with a LongTensor (as `gru.training.fit` does) gathers
    only those windows, so overlapping windows are never stored.
    """

    def __init__(self, values: Tensor, starts: Tensor, length: int, channels: list[int]) -> None:
        self.values = values
        self.starts = starts
        self.length = length
        self.channels = torch.as_tensor(channels, dtype=torch.int64)
        self._steps = torch.arange(length)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index) -> Tensor:
        starts = self.starts[index]  # (B,)
        rows = starts.unsqueeze(-1) + self._steps  # (B, length)
        return self.values[rows][..., self.channels]  # (B, length, K)

    def all(self) -> Tensor:
        """Every window at once, (N, length, K)."""
        return self[torch.arange(len(self))]


def windows(
    values: Tensor,
    part: tuple[int, int],
    lookback: int,
    horizon: int,
    inputs: list[int],
    outputs: list[int],
) -> tuple[Windows, Windows]:
    """(lookbacks (N, W, K_in), forecasts (N, F, K_out)) of the windows whose F forecast rows
    lie in ``part`` [start, end): forecast starts t = max(start, W) … end − F, one per row."""
    start, end = part
    first = max(start, lookback)
    t = torch.arange(first, end - horizon + 1, dtype=torch.int64)  # (N,)
    return Windows(values, t - lookback, lookback, inputs), Windows(values, t, horizon, outputs)


# --- seasons and time steps ----------------------------------------------------------------------


def detect_season(x: np.ndarray, max_lag: int) -> int | None:
    """The season of ``x`` (T,) in rows, or None when it has none up to ``max_lag``.

    The season is the lag in [2, max_lag] of the highest local maximum of the autocorrelation
    of the first differences x[t] − x[t − 1] (differencing removes trends, which otherwise
    make every short lag look alike), if that maximum exceeds max(0.1, 3/√T), well above
    the ±2/√T band of a series without one. Hourly ETTh1 gives 24, monthly airline
    passengers 12; monthly sunspots (an 11-year cycle of uneven length) give None.
    """
    d = np.diff(np.asarray(x, dtype=np.float64))
    max_lag = min(max_lag, len(d) // 2 - 1)
    if max_lag < 2:
        return None
    d = d - d.mean()
    variance = float(d @ d)
    if variance == 0:
        return None
    acf = np.array([d[: len(d) - k] @ d[k:] / variance for k in range(max_lag + 2)])
    best, lag = max(0.1, 3 / np.sqrt(len(d))), None
    for k in range(2, max_lag + 1):
        if acf[k] > acf[k - 1] and acf[k] >= acf[k + 1] and acf[k] > best:
            best, lag = acf[k], k
    return lag


def future_times(time: pd.DatetimeIndex | None, steps: int, rows: int) -> pd.Index:
    """The ``steps`` timestamps after the end of ``time``, at its frequency (pandas' inferred
    one, else the median step); row positions rows, rows + 1, ... when there is no time."""
    if time is None:
        return pd.RangeIndex(rows, rows + steps)
    freq = None
    if len(time) >= 3:
        with pd.option_context("future.infer_freq_returns_offset", True):  # an offset, no warning
            freq = pd.infer_freq(time[-min(len(time), 50) :])
    if freq is not None:
        return pd.date_range(time[-1], periods=steps + 1, freq=freq)[1:]
    step = pd.Timedelta(int(np.median(np.diff(time.as_unit("ns").asi8))), unit="ns")
    return pd.DatetimeIndex([time[-1] + step * (k + 1) for k in range(steps)])
