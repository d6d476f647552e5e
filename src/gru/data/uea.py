"""A strict reader of sktime's ``.ts`` format, the files of the UEA & UCR time-series
classification archives.

A ``.ts`` file holds comment lines (``#``), a header of ``@key value`` lines, ``@data``, then one
case per line: its dimensions (channels) separated by ``:``, the values of each separated by
``,``, and the class label last when ``@classLabel true``::

    @problemName BasicMotions
    @timeStamps false
    @missing false
    @univariate false
    @dimensions 6
    @equalLength true
    @seriesLength 100
    @classLabel true Standing Running Walking Badminton
    @data
    0.08,0.39,...:0.30,...:...:Standing

The reader checks every case against the header and the header against the data: a header that
lies (``@dimensions``, ``@seriesLength``, ``@equalLength``, ``@univariate``, ``@missing`` or the
labels of ``@classLabel`` disagreeing with a case), channels of different lengths within a case,
a missing label, a value that is not a number, missing values (``?``) and NaN or infinite values
are errors (ValueError) naming the file and the line. Time stamps (``@timeStamps true``) and
regression targets (``@targetLabel``) are refused: the classification archives use neither.

Shapes: N cases, T_i steps of case i, C channels (dimensions).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["TsFile", "read_ts"]

_BOOLEANS = ("timestamps", "missing", "univariate", "equallength")
_INTS = ("dimensions", "dimension", "serieslength")
_KEYS = ("problemname", *_BOOLEANS, *_INTS, "classlabel", "targetlabel", "data")


@dataclass
class TsFile:
    """What a ``.ts`` file holds: its cases ``X`` (N arrays (T_i, C) float64), their labels
    (N str, or None when ``@classLabel false``), the file line of each case, the labels the
    header declares (in its order; None without labels) and its problem name."""

    X: list[np.ndarray]
    labels: list[str] | None
    lines: list[int]
    classes: list[str] | None
    problem: str | None


class _Reader:
    """One file being read: its name for messages, the header so far."""

    def __init__(self, path: Path) -> None:
        self.path, self.header = path, {}

    def error(self, number: int, message: str) -> ValueError:
        return ValueError(f"data: {str(self.path)!r} line {number}: {message}")

    def key(self, number: int, line: str) -> bool:
        """Read the header line ``line``; True when it is ``@data``."""
        key, _, value = line[1:].partition(" ")
        key, value = key.lower(), value.strip()
        if key not in _KEYS:
            raise self.error(
                number,
                f"unknown header @{line[1:].split()[0]}; a .ts header knows "
                "@problemName, @timeStamps, @missing, @univariate, @dimensions, "
                "@equalLength, @seriesLength, @classLabel and @data",
            )
        if key in self.header:
            raise self.error(number, f"@{key} is given twice")
        if key in _BOOLEANS:
            if value.lower() not in ("true", "false"):
                raise self.error(number, f"@{key} must be true or false, got {value!r}")
            self.header[key] = value.lower() == "true"
        elif key in _INTS:
            if not value.isdigit() or int(value) < 1:
                raise self.error(number, f"@{key} must be a positive integer, got {value!r}")
            self.header["dimensions" if key == "dimension" else key] = int(value)
        elif key == "classlabel":
            flag, *names = value.split()
            if flag.lower() not in ("true", "false"):
                raise self.error(
                    number, f"@classLabel must start with true or false, got {value!r}"
                )
            if flag.lower() == "true" and not names:
                raise self.error(number, "@classLabel true must list the class labels")
            self.header[key] = names if flag.lower() == "true" else None
        elif key == "targetlabel":
            raise self.error(
                number,
                "@targetLabel (a regression problem) is not supported; "
                "classify reads class labels (@classLabel)",
            )
        else:
            self.header[key] = value
        if self.header.get("timestamps"):
            raise self.error(number, "@timeStamps true is not supported; give the values alone")
        return key == "data"

    def case(self, number: int, line: str) -> tuple[np.ndarray, str | None]:
        """One data line: its (T, C) values and its label (None without labels)."""
        h = self.header
        fields = line.split(":")
        label = None
        if h["classlabel"] is not None:
            numbers_last = _is_number(fields[-1].split(",")[0].strip())  # values, no label
            if len(fields) < 2 or (len(fields) == h.get("dimensions", 0) and numbers_last):
                raise self.error(
                    number,
                    "the case has no class label after its last ':' (the "
                    f"header says @classLabel true), only {len(fields)} dimension(s)",
                )
            *fields, label = fields
            label = label.strip()
            if not label:
                raise self.error(number, "the class label is missing (empty after the last ':')")
            if label not in h["classlabel"]:
                raise self.error(
                    number,
                    f"class label {label!r} is not one of those @classLabel "
                    f"declares {h['classlabel']}",
                )
        channels = [self.values(number, k, f) for k, f in enumerate(fields)]
        self.check_shape(number, channels)
        return np.stack(channels, axis=1), label

    def values(self, number: int, k: int, field: str) -> np.ndarray:
        """The values of dimension ``k`` of a case."""
        tokens = [t.strip() for t in field.split(",")]
        if tokens == [""]:
            raise self.error(number, f"dimension {k + 1} has no values")
        if "?" in tokens:
            said = "; the header says @missing false" if self.header.get("missing") is False else ""
            raise self.error(
                number,
                f"dimension {k + 1} has a missing value ('?', step "
                f"{tokens.index('?') + 1}){said}; fill or drop it first",
            )
        try:
            values = np.array(tokens, dtype=np.float64)
        except ValueError:
            bad = next(  # the first token float() refuses
                t for t in tokens if not _is_number(t)
            )
            what = "a time stamp" if bad.startswith("(") else "not a number"
            raise self.error(  # noqa: B904 (the message says all)
                number, f"dimension {k + 1}, step {tokens.index(bad) + 1}: {bad!r} is {what}"
            )
        if not np.isfinite(values).all():
            step = int(np.flatnonzero(~np.isfinite(values))[0])
            raise self.error(
                number,
                f"dimension {k + 1}, step {step + 1} is {values[step]} (NaN "
                "or infinite values are not allowed); fill or drop it first",
            )
        return values

    def check_shape(self, number: int, channels: list[np.ndarray]) -> None:
        """Channels of one length, and the number of channels and steps the header says."""
        h = self.header
        lengths = [len(c) for c in channels]
        if len(set(lengths)) > 1:
            raise self.error(
                number,
                f"ragged channels: the dimensions have {lengths} values; "
                "every dimension of a case needs the same number of steps",
            )
        C, T = len(channels), lengths[0]
        if h.get("univariate") and C != 1:
            raise self.error(
                number, f"the header says @univariate true, but the case has {C} dimensions"
            )
        if "dimensions" in h and C != h["dimensions"]:
            raise self.error(
                number,
                f"the header says @dimensions {h['dimensions']}, but the case has {C} dimensions",
            )
        h.setdefault("dimensions", C)  # the first case sets it when the header does not
        if h.get("equallength") and "serieslength" in h and T != h["serieslength"]:
            raise self.error(
                number,
                f"the header says @seriesLength {h['serieslength']}, but the case has {T} steps",
            )
        if h.get("equallength"):
            first = h.setdefault("first_length", (T, number))
            if first[0] != T:
                raise self.error(
                    number,
                    f"the header says @equalLength true, but the case has {T} "
                    f"steps and the case of line {first[1]} has {first[0]}",
                )


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def read_ts(path: str | os.PathLike) -> TsFile:
    """The cases of the ``.ts`` file ``path``, every line checked (see the module docstring).
    Raises FileNotFoundError for a file that is not there, ValueError naming the file and the
    line for anything else."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"data: {str(path)!r} is a folder; give the .ts file")
    if not path.is_file():
        raise FileNotFoundError(f"data: {str(path)!r} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"data: {str(path)!r} is not UTF-8 text (byte {error.start})") from None
    reader, data = _Reader(path), False
    X, labels, lines = [], [], []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not data:
            if not line.startswith("@"):
                raise reader.error(
                    number,
                    f"expected a header line (@key value) or @data before "
                    f"the cases, got {line[:40]!r}",
                )
            data = reader.key(number, line)
            if data and "classlabel" not in reader.header:
                raise reader.error(
                    number,
                    "the header has no @classLabel line (true with the "
                    "labels, or false), so a case's last field is ambiguous",
                )
            continue
        if line.startswith("@"):
            raise reader.error(number, f"a header line after @data: {line[:40]!r}")
        values, label = reader.case(number, line)
        X.append(values)
        labels.append(label)
        lines.append(number)
    if not data:
        raise ValueError(f"data: {str(path)!r} has no @data line; is it a .ts file?")
    if not X:
        raise ValueError(f"data: {str(path)!r} has no cases after @data")
    h = reader.header
    if "serieslength" in h and not h.get("equallength"):
        longest = max(len(x) for x in X)
        if longest > h["serieslength"]:
            line = lines[int(np.argmax([len(x) for x in X]))]
            raise reader.error(
                line,
                f"the header says @seriesLength {h['serieslength']}, but "
                f"the case has {longest} steps",
            )
    classes = h["classlabel"]
    return TsFile(X, labels if classes is not None else None, lines, classes, h.get("problemname"))
