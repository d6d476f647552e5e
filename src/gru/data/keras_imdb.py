"""Keras's ``imdb.npz``, read without executing its pickles, and Keras's word index.

The file holds ``x_train, y_train, x_test, y_test``: object arrays of word-rank lists and
binary labels. The object arrays are pickles; `read_keras_npz` reads them with an unpickler
that builds only numpy arrays, dtypes and integer scalars and refuses every other global, so
no code in the file runs, and encodes the reviews as ``keras.datasets.imdb.load_data`` does (a
start id, then rank + 3). By default both files are where Keras keeps them
(`keras_datasets_dir`).

Shapes: N reviews.
"""

from __future__ import annotations

import ast
import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np

from gru._io import read_zip_member
from gru.data.reviews import LabeledSequences
from gru.data.text import INDEX_FROM, START, Sequences

__all__ = ["find_word_index", "keras_datasets_dir", "read_keras_npz"]

_KERAS_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _multiarray():
    try:
        from numpy._core import multiarray  # numpy 2
    except ImportError:  # numpy 1
        from numpy.core import multiarray
    return multiarray


def _integer_scalar(dtype, data=None):
    """numpy's scalar reconstructor, for integer dtypes only."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "iu":
        raise _Refused(f"a numpy scalar of dtype {dtype}")
    return _multiarray().scalar(dtype, data)


def _allowed_globals() -> dict[tuple[str, str], object]:
    _reconstruct = _multiarray()._reconstruct
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = _reconstruct
        allowed[(module, "scalar")] = _integer_scalar
    return allowed


class _Refused(pickle.UnpicklingError):
    """A pickle asked for a global outside the allowed numpy reconstructors."""


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays of plain Python values and refuses every other global."""

    _allowed = None

    def find_class(self, module: str, name: str):
        if _ArrayUnpickler._allowed is None:
            _ArrayUnpickler._allowed = _allowed_globals()
        found = self._allowed.get((module, name))
        if found is None:
            raise _Refused(f"{module}.{name}")
        return found


def _read_npy(raw: bytes, where: str) -> np.ndarray:
    """One .npy member: plain arrays through numpy, object arrays through `_ArrayUnpickler`."""
    if raw[:6] != b"\x93NUMPY" or len(raw) < 10:
        raise ValueError(f"data: {where} is not a .npy array")
    major = raw[6]
    if major == 1:
        size, start = int.from_bytes(raw[8:10], "little"), 10
    else:
        size, start = int.from_bytes(raw[8:12], "little"), 12
    try:
        header = ast.literal_eval(raw[start : start + size].decode("latin1"))
        descr = header["descr"]
    except (ValueError, SyntaxError, KeyError, TypeError):
        raise ValueError(f"data: {where} has an unreadable .npy header") from None
    if descr != "|O":
        try:
            return np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
        except (ValueError, OSError) as error:
            raise ValueError(f"data: {where} is not a readable .npy array: {error}") from None
    try:
        array = _ArrayUnpickler(io.BytesIO(raw[start + size :]), encoding="latin1").load()
    except _Refused as error:
        raise ValueError(
            f"data: refusing {where}: its pickled data needs {error}, which is not allowed; "
            "a Keras imdb.npz holds only numpy arrays of lists of ints"
        ) from None
    except Exception as error:  # a corrupt pickle can fail in many ways, all of them this one
        raise ValueError(f"data: {where} holds an unreadable pickle: {error}") from None
    if not isinstance(array, np.ndarray):
        raise ValueError(f"data: {where} must hold a numpy array, got {type(array).__name__}")
    return array


def _as_sequences(array: np.ndarray, where: str) -> Sequences:
    expected = "a 1-D array of token-id lists (the keras.datasets.imdb layout)"
    if array.ndim != 1 or array.dtype != object:
        raise ValueError(
            f"data: {where} must be {expected}, got a {array.dtype} array of shape {array.shape}"
        )
    rows = []
    for i, item in enumerate(array):
        if isinstance(item, (list, tuple)):
            if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in item):
                kinds = sorted({type(v).__name__ for v in item})
                raise ValueError(f"data: {where}[{i}] must hold ints, got {', '.join(kinds)}")
            row = np.asarray(item, dtype=np.int64)
        elif isinstance(item, np.ndarray) and item.ndim == 1 and item.dtype.kind in "iu":
            row = item.astype(np.int64)
        else:
            raise ValueError(
                f"data: {where} must be {expected}; item {i} is a {type(item).__name__}"
            )
        if row.size and (row.min() < 0 or row.max() > np.iinfo(np.int32).max - INDEX_FROM):
            raise ValueError(f"data: {where}[{i}] has word ranks outside [0, 2**31 - 4]")
        rows.append(row)
    return Sequences.from_lists(rows)


def _as_labels(array: np.ndarray, n: int, where: str) -> np.ndarray:
    if array.ndim != 1 or array.dtype.kind not in "iub" or len(array) != n:
        raise ValueError(
            f"data: {where} must be {n} integer labels (one per review), got a {array.dtype} "
            f"array of shape {array.shape}"
        )
    labels = array.astype(np.int64)
    values = np.unique(labels)
    if not np.all(np.isin(values, (0, 1))):
        raise ValueError(
            f"data: the labels in {where} must be binary (0 or 1), "
            f"got values {values[:10].tolist()}"
        )
    return labels


def keras_datasets_dir() -> Path:
    """Where Keras keeps downloaded datasets: ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``."""
    home = os.environ.get("KERAS_HOME")
    return (Path(home) if home else Path.home() / ".keras") / "datasets"


def read_keras_npz(path: str | os.PathLike | None = None) -> dict[str, LabeledSequences]:
    """Keras's ``imdb.npz``: {"train": ..., "test": ...} of encoded reviews.

    ``path`` defaults to ``~/.keras/datasets/imdb.npz``. The object arrays are pickles; they
    are read by an unpickler that builds only numpy arrays, dtypes and integer scalars and
    refuses every other global, so no code in the file runs. The file stores each word's
    frequency rank; the reviews come back as ``keras.datasets.imdb.load_data`` returns them
    (its defaults, before any ``num_words`` cut-off): START, then each rank + INDEX_FROM.

    Raises FileNotFoundError for a missing file and ValueError for a file that is not a zip of
    .npy arrays, lacks one of x_train, y_train, x_test, y_test, or holds anything but lists of
    ints and binary labels.
    """
    path = keras_datasets_dir() / "imdb.npz" if path is None else Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"data: {str(path)!r} is a folder, not a Keras imdb.npz")
    if not path.is_file():
        raise FileNotFoundError(f"data: {str(path)!r} does not exist")
    try:
        with zipfile.ZipFile(path) as archive:
            members = {name.removesuffix(".npy"): name for name in archive.namelist()}
            missing = [key for key in _KERAS_KEYS if key not in members]
            if missing:
                raise ValueError(
                    f"data: {str(path)!r} has arrays {', '.join(sorted(members)) or '(none)'}; "
                    f"expected {', '.join(_KERAS_KEYS)} (the keras.datasets.imdb layout), "
                    f"missing {', '.join(missing)}"
                )
            arrays = {  # each member's declared size checked before it is read (no zip bombs)
                key: _read_npy(
                    read_zip_member(archive, members[key], f"data: {str(path)!r}"),
                    f"{key} of {str(path)!r}",
                )
                for key in _KERAS_KEYS
            }
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(
            f"data: cannot read {str(path)!r} as an .npz (zip) file: {error}"
        ) from None
    splits = {}
    for split in ("train", "test"):
        x = _as_sequences(arrays[f"x_{split}"], f"x_{split} of {str(path)!r}")
        y = _as_labels(arrays[f"y_{split}"], len(x), f"y_{split} of {str(path)!r}")
        splits[split] = LabeledSequences(_as_loaded(x), y)
    return splits


def _as_loaded(ranks: Sequences) -> Sequences:
    """What ``load_data`` makes of the stored ranks: ``[START] + [r + INDEX_FROM for r in x]``."""
    offsets = ranks.offsets + np.arange(len(ranks) + 1)  # one more id per review
    tokens = np.empty(offsets[-1], np.int64)
    words = np.ones(offsets[-1], bool)
    words[offsets[:-1]] = False
    tokens[offsets[:-1]] = START
    tokens[words] = ranks.tokens.astype(np.int64) + INDEX_FROM
    return Sequences(tokens, offsets)


def find_word_index(path: Path) -> Path | None:
    """The Keras word index for the data at ``path``: ``imdb_word_index.json`` beside it (or in
    it), else in ``~/.keras/datasets``; None if there is none."""
    candidates = [
        path.parent / "imdb_word_index.json",
        keras_datasets_dir() / "imdb_word_index.json",
    ]
    if path.is_dir():
        candidates.insert(0, path / "imdb_word_index.json")
    return next((c for c in candidates if c.is_file()), None)
