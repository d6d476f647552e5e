"""Labeled sequences from files, for classification: sktime's ``.ts`` (`gru.data.uea`), CSV in
long format and NumPy's ``.npz``.

    CSV, long format   one row per step: ``id, time, channel…, label`` (a header line names
                       them); the rows of one id are one sequence, in the order of ``time``
                       (file order without a time column); every other column is a channel.
    .npz               ``X`` (N, T, C) or (N, T) float, ``y`` (N,) labels, and optionally
                       ``lengths`` (N,): sequence i is X[i, :lengths[i]] (the rest is padding,
                       never read). Arrays of objects are refused: NumPy reads them only by
                       unpickling, which can run code.

Labels are read as text (``"1"``, ``"Walking"``), so every format gives the same classes.
Every error names the file and the line (CSV, .ts) or the case (.npz): channels of different
lengths, a missing label, a label that changes within a sequence, a value that is not a number,
NaN or infinite values; `check_split` refuses a test label the training data never shows.

Shapes: N sequences, T_i steps of sequence i, C channels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gru.data.uea import read_ts

__all__ = ["FORMATS", "LabeledSequences", "check_split", "load", "read_csv", "read_npz"]

FORMATS = (".ts", ".csv", ".npz")


@dataclass
class LabeledSequences:
    """N sequences ``X`` (arrays (T_i, C) float64, finite) with their ``labels`` (N,) str (None
    for unlabeled data); ``source`` (the file) and ``where`` (each sequence's place in it: "line
    17", "id 'a7' (line 40)", "case 3") name them in messages; ``classes`` the labels a header
    declares in its order (.ts), ``channels`` the channels' names."""

    X: list[np.ndarray]
    labels: np.ndarray | None
    source: str
    where: list[str]
    channels: list[str]
    classes: list[str] | None = None
    problem: str | None = None

    def __len__(self) -> int:
        return len(self.X)

    @property
    def lengths(self) -> np.ndarray:
        """(N,) the number of steps of each sequence."""
        return np.array([len(x) for x in self.X], dtype=np.int64)

    def locate(self, i: int) -> str:
        """Where sequence ``i`` is, for a message: "'file.ts' line 17"."""
        return f"{self.source!r} {self.where[i]}"

    def subset(self, index) -> LabeledSequences:
        """The sequences ``index`` (indices), in that order."""
        index = [int(i) for i in index]
        labels = None if self.labels is None else self.labels[index]
        where = [self.where[i] for i in index]
        X = [self.X[i] for i in index]
        return LabeledSequences(X, labels, self.source, where, self.channels, self.classes)


def _check_file(path: Path) -> None:
    if path.is_dir():
        raise IsADirectoryError(f"data: {str(path)!r} is a folder; give a {'/'.join(FORMATS)} file")
    if not path.is_file():
        raise FileNotFoundError(f"data: {str(path)!r} does not exist")


def load(path: str | os.PathLike, *, labels: bool = True, **csv_columns) -> LabeledSequences:
    """The sequences of ``path``, a .ts, .csv (long format) or .npz file (by its suffix).
    ``labels=True`` requires a label for every sequence, ``False`` reads data with or without
    them (new sequences to classify). ``csv_columns`` (id_column, time_column, label_column)
    name the CSV's columns."""
    path = Path(path)
    _check_file(path)
    suffix = path.suffix.lower()
    if suffix == ".ts":
        data = read_ts(path)
        labels_read = None if data.labels is None else np.array(data.labels, dtype=str)
        C = data.X[0].shape[1]
        channels = [f"dimension {k + 1}" for k in range(C)]
        where = [f"line {n}" for n in data.lines]
        found = LabeledSequences(data.X, labels_read, str(path), where, channels, data.classes)
        found.problem = data.problem
    elif suffix == ".csv":
        found = read_csv(path, **csv_columns)
    elif suffix == ".npz":
        found = read_npz(path)
    else:
        raise ValueError(
            f"data: {str(path)!r} is not a file classify reads; give a .ts (sktime), .csv "
            "(long format: id, time, channels…, label) or .npz (X, y, lengths) file"
        )
    if labels and found.labels is None:
        raise ValueError(f"data: {str(path)!r} has no class labels; training needs them")
    return found


def check_split(train: LabeledSequences, test: LabeledSequences) -> None:
    """ValueError unless ``test`` has the channels of ``train`` and only labels it shows: a class
    met only in the test data could never be predicted."""
    if len(test.channels) != len(train.channels):
        raise ValueError(
            f"data: {test.source!r} has {len(test.channels)} channels, but the training data "
            f"{train.source!r} has {len(train.channels)}"
        )
    if test.labels is None:
        return
    known = set(train.labels.tolist())
    for i, label in enumerate(test.labels.tolist()):
        if label not in known:
            raise ValueError(
                f"data: {test.locate(i)}: class label {label!r} is not in the training data "
                f"{train.source!r} (its classes: {sorted(known)}); a class the model never saw "
                "cannot be predicted"
            )


# --- CSV, long format ----------------------------------------------------------------------------


def read_csv(
    path: str | os.PathLike,
    *,
    id_column: str = "id",
    time_column: str | None = "time",
    label_column: str = "label",
) -> LabeledSequences:
    """The sequences of a long-format CSV (see the module docstring). The time and label columns
    are optional; without the label column the sequences are unlabeled."""
    import pandas as pd

    path = Path(path)
    _check_file(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise ValueError(f"data: cannot read {str(path)!r} as CSV: {error}") from None
    where = f"data: {str(path)!r}"
    if id_column not in frame.columns:
        raise ValueError(
            f"{where} has no id column {id_column!r} (long format: id, time, channels…, label); "
            f"its columns are {list(frame.columns)}"
        )
    if frame.empty:
        raise ValueError(f"{where} has a header but no rows")
    time = time_column if time_column in frame.columns else None
    label = label_column if label_column in frame.columns else None
    channels = [c for c in frame.columns if c not in (id_column, time, label)]
    if not channels:
        raise ValueError(f"{where} has no channel columns besides {id_column}, time and label")
    line = np.arange(len(frame)) + 2  # the file line of each row (the header is line 1)
    values = _numbers(frame, channels, line, where)
    steps = (
        _numbers(frame, [time], line, where)[:, 0] if time else np.arange(len(frame), dtype=float)
    )
    ids = frame[id_column].to_numpy()
    if label is not None:
        missing = np.flatnonzero(frame[label].str.strip().to_numpy() == "")
        if len(missing):
            raise ValueError(f"{where} line {line[missing[0]]}: the label is missing")
    X, labels, places = [], [], []
    for key, rows in pd.Series(np.arange(len(frame))).groupby(ids, sort=False):
        rows = rows.to_numpy()
        rows = rows[np.argsort(steps[rows], kind="stable")]
        if time and len(np.unique(steps[rows])) < len(rows):
            twice = rows[np.flatnonzero(np.diff(steps[rows]) == 0)[0] + 1]
            raise ValueError(
                f"{where} line {line[twice]}: id {key!r} has time {steps[twice]:g} twice"
            )
        if label is not None:
            names = frame[label].to_numpy()[rows]
            other = np.flatnonzero(names != names[0])
            if len(other):
                raise ValueError(
                    f"{where} line {line[rows[other[0]]]}: id {key!r} changes its label from "
                    f"{names[0]!r} to {names[other[0]]!r}; a sequence has one label"
                )
            labels.append(names[0].strip())
        X.append(values[rows])
        places.append(f"id {key!r} (line {line[rows].min()})")
    found = np.array(labels, dtype=str) if label is not None else None
    return LabeledSequences(X, found, str(path), places, channels)


def _numbers(frame, columns: list[str], line: np.ndarray, where: str) -> np.ndarray:
    """The ``columns`` of ``frame`` (text) as finite float64 (rows, len(columns))."""
    import pandas as pd

    out = np.empty((len(frame), len(columns)))
    for k, column in enumerate(columns):
        text = frame[column].str.strip()
        numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(numbers))
        if len(bad):
            i = bad[0]
            what = "empty" if text.iloc[i] == "" else f"{text.iloc[i]!r}"
            kind = "not a number" if np.isnan(numbers[i]) and what != "'nan'" else "not finite"
            raise ValueError(
                f"{where} line {line[i]}: column {column!r} is {what}, {kind} (missing, NaN and "
                "infinite values are not allowed; fill or drop them first)"
            )
        out[:, k] = numbers
    return out


# --- .npz ----------------------------------------------------------------------------------------


def read_npz(path: str | os.PathLike) -> LabeledSequences:
    """The sequences of an .npz file with ``X``, ``y`` (optional for unlabeled data) and
    ``lengths`` (optional) (see the module docstring)."""
    path = Path(path)
    _check_file(path)
    where = f"data: {str(path)!r}"
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise ValueError(
                f"{where} holds an array of objects, which NumPy reads only by unpickling "
                "(refused: it can run code); save X padded to (N, T, C) float with lengths (N,) "
                "and y as numbers or text"
            ) from None
        raise ValueError(f"{where} is not a readable .npz: {error}") from None
    except (OSError, EOFError) as error:
        raise ValueError(f"{where} is not a readable .npz: {error}") from None
    if "X" not in arrays:
        raise ValueError(f"{where} has no array 'X'; its arrays are {sorted(arrays)}")
    X = arrays["X"]
    if X.dtype.kind not in "iuf" or X.ndim not in (2, 3) or 0 in X.shape:
        raise ValueError(
            f"{where}: X must be a non-empty (N, T, C) or (N, T) array of numbers, got shape "
            f"{X.shape} dtype {X.dtype}"
        )
    X = X.astype(np.float64)
    X = X[:, :, None] if X.ndim == 2 else X
    N, T = X.shape[:2]
    lengths = _npz_lengths(arrays.get("lengths"), N, T, where)
    cases = [X[i, : lengths[i]] for i in range(N)]
    for i, x in enumerate(cases):
        if not np.isfinite(x).all():
            step, channel = np.argwhere(~np.isfinite(x))[0]
            raise ValueError(
                f"{where} case {i}: X[{i}, {step}, {channel}] is {x[step, channel]} (NaN and "
                "infinite values are not allowed; fill or drop them first)"
            )
    labels = None
    if "y" in arrays:
        y = arrays["y"]
        if y.shape != (N,):
            raise ValueError(f"{where}: y must be (N,) = ({N},), one label per case, got {y.shape}")
        labels = np.array([str(v).strip() for v in y.tolist()], dtype=str)
        empty = np.flatnonzero(labels == "")
        if len(empty):
            raise ValueError(f"{where} case {empty[0]}: the label is missing (empty)")
    channels = [f"channel {k + 1}" for k in range(X.shape[2])]
    return LabeledSequences(cases, labels, str(path), [f"case {i}" for i in range(N)], channels)


def _npz_lengths(lengths, N: int, T: int, where: str) -> np.ndarray:
    if lengths is None:
        return np.full(N, T)
    if lengths.shape != (N,) or lengths.dtype.kind not in "iu":
        raise ValueError(
            f"{where}: lengths must be (N,) = ({N},) integers, got shape {lengths.shape} dtype "
            f"{lengths.dtype}"
        )
    bad = np.flatnonzero((lengths < 1) | (lengths > T))
    if len(bad):
        raise ValueError(
            f"{where} case {bad[0]}: lengths[{bad[0]}] = {lengths[bad[0]]} is not a length in "
            f"[1, T = {T}]"
        )
    return lengths.astype(np.int64)
