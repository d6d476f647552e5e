"""Movie reviews labeled positive or negative: the IMDB dataset in the forms people have.

Sources, all read into `SentimentData` (token ids, the encoding of `gru.data.text`):

- the Large Movie Review Dataset (Maas et al., ACL 2011) as released: an ``aclImdb`` folder
  or its ``.tar.gz`` / ``.tar.xz`` archive, ``{train,test}/{pos,neg}/<id>_<rating>.txt``;
  raw text is encoded with the Keras word index found beside the data (or in
  ``~/.keras/datasets``), else with a word index built from the training reviews;
- Keras's ``imdb.npz`` (``x_train, y_train, x_test, y_test``; object arrays of word-rank
  lists), read without executing pickled code and encoded as ``keras.datasets.imdb.load_data``
  encodes it (a start id, then rank + 3); by default ``~/.keras/datasets/imdb.npz``;
- your own labeled texts: a CSV with text and label columns (optionally a ``split`` column of
  train/test), or a folder of ``pos/`` and ``neg/`` text files (optionally under ``train/`` and
  ``test/``);
- the small sample of encoded reviews shipped in the package (``"sample"``).

Encoding a full raw dataset takes ~15 s, so `load` caches the encoded reviews of an archive or
folder as an ``.npz`` of int arrays in `cache_dir()` (``$GRU_CACHE_DIR``, else
``$XDG_CACHE_HOME/gru``, else ``~/.cache/gru``), keyed by the source's path, size and
modification time and by the word index.

Shapes: N reviews.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import importlib.resources
import io
import json
import os
import pickle
import re
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gru._io import atomic_write
from gru.data.text import (
    INDEX_FROM,
    START,
    Sequences,
    build_word_index,
    encode,
    load_word_index,
)

__all__ = [
    "CITATION",
    "LabeledSequences",
    "LabeledTexts",
    "SentimentData",
    "cache_dir",
    "encode_texts",
    "find_word_index",
    "load",
    "read_csv",
    "read_keras_npz",
    "read_review_folder",
    "read_sample",
]

CITATION = (
    "Andrew L. Maas, Raymond E. Daly, Peter T. Pham, Dan Huang, Andrew Y. Ng and Christopher "
    "Potts. Learning Word Vectors for Sentiment Analysis. ACL 2011, pages 142-150."
)

LABEL_NAMES = ("negative", "positive")
_KERAS_KEYS = ("x_train", "y_train", "x_test", "y_test")
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tar")
_REVIEW = re.compile(r"(?:^|/)(train|test)/(pos|neg)/([^/]+\.txt)$")
_CACHE_VERSION = 1  # bump when tokenizing or encoding changes


@dataclass(eq=False)  # arrays inside: compare fields explicitly
class LabeledTexts:
    """Raw reviews: ``texts`` (N strings) and ``labels`` (N,) int64, 1 = positive."""

    texts: list[str]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(eq=False)  # arrays inside: compare fields explicitly
class LabeledSequences:
    """Encoded reviews: ``sequences`` (N token-id sequences) and ``labels`` (N,) int64."""

    sequences: Sequences
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.sequences)

    def subset(self, index: np.ndarray) -> LabeledSequences:
        return LabeledSequences(self.sequences.subset(index), self.labels[index])


@dataclass(eq=False)  # arrays inside: compare fields explicitly
class SentimentData:
    """A dataset ready to train on: encoded splits and the word index that encoded them.

    ``train`` or ``test`` is None when the source has no such split. ``word_index`` maps each
    word to its rank (id = rank + 3) and is None when unknown (a Keras .npz without
    ``imdb_word_index.json`` beside it). ``vocabulary_origin`` says where the index came from:
    "keras" (Keras's IMDB word index), "data" (built from the training texts), "given" (passed
    to `load`) or "unknown". ``raw`` is True when the reviews were text encoded here, False
    when they came encoded (.npz, the sample).
    """

    train: LabeledSequences | None
    test: LabeledSequences | None
    word_index: dict[str, int] | None
    vocabulary_origin: str
    source: str
    raw: bool = True


# --- reading raw reviews ---------------------------------------------------------------------


def _natural_key(name: str) -> tuple:
    stem = name.rsplit("/", 1)[-1]
    head = stem.split("_", 1)[0]
    return (0, int(head), stem) if head.isdigit() else (1, 0, stem)


def _decode(raw: bytes, where: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"data: {where} is not UTF-8 text ({error})") from None
    if not text.strip():
        raise ValueError(f"data: empty text in {where}; every review needs some words")
    return text


def _collect(found: dict[tuple[str, str], list[tuple[str, str]]]) -> dict[str, LabeledTexts]:
    """{(split, label): [(name, text)]} -> {split: LabeledTexts}, neg then pos, by review id."""
    splits: dict[str, LabeledTexts] = {}
    for split in ("train", "test"):
        texts, labels = [], []
        for label_value, label in enumerate(("neg", "pos")):
            items = sorted(found.get((split, label), []), key=lambda item: _natural_key(item[0]))
            texts.extend(text for _, text in items)
            labels.extend([label_value] * len(items))
        if texts:
            splits[split] = LabeledTexts(texts, np.asarray(labels, dtype=np.int64))
    return splits


def read_review_folder(path: str | os.PathLike, *, limit: int | None = None) -> dict:
    """Reviews from a folder or archive laid out as aclImdb: ``{train,test}/{pos,neg}/*.txt``.

    ``path`` is the ``aclImdb`` folder, a folder that contains it, a ``.tar.gz``/``.tar.xz``
    (or .tgz, .tar.bz2, .tar) of it, or a folder of your own texts with ``pos/`` and ``neg/``
    (read as the train split). ``limit`` keeps at most that many reviews per split and label,
    the first in review-id order for a folder and in archive order for an archive.

    Returns {split: LabeledTexts}, split in ("train", "test"), negative reviews first.
    Raises FileNotFoundError for a missing path and ValueError for an unreadable archive, a
    folder without reviews, a file that is not UTF-8 or an empty review.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data: {str(path)!r} does not exist")
    found: dict[tuple[str, str], list[tuple[str, str]]] = {}

    def room(key) -> bool:
        return limit is None or len(found.get(key, [])) < limit

    if path.is_dir():
        roots = [path / "aclImdb", path]
        root = next((r for r in roots if (r / "train").is_dir() or (r / "test").is_dir()), None)
        if root is not None:
            folders = {
                (s, lab): root / s / lab for s in ("train", "test") for lab in ("neg", "pos")
            }
        else:  # your own texts: pos/ and neg/ directly
            folders = {("train", lab): path / lab for lab in ("neg", "pos")}
        for key, folder in folders.items():
            if not folder.is_dir():
                continue
            for file in sorted(folder.glob("*.txt"), key=lambda f: _natural_key(f.name)):
                if not room(key):
                    break
                try:
                    raw = file.read_bytes()
                except OSError as error:
                    raise ValueError(f"data: cannot read {str(file)!r}: {error}") from None
                found.setdefault(key, []).append((file.name, _decode(raw, repr(str(file)))))
    else:
        try:
            with tarfile.open(path, mode="r|*") as archive:
                for member in archive:
                    match = _REVIEW.search(member.name)
                    if not member.isfile() or match is None:
                        continue
                    key = (match.group(1), match.group(2))
                    if not room(key):
                        continue
                    raw = archive.extractfile(member).read()
                    where = f"{member.name!r} of {str(path)!r}"
                    found.setdefault(key, []).append((member.name, _decode(raw, where)))
        except (tarfile.TarError, OSError, EOFError) as error:
            raise ValueError(
                f"data: cannot read {str(path)!r} as a .tar.gz/.tar.xz archive of aclImdb: "
                f"{error or type(error).__name__}"
            ) from None
    splits = _collect(found)
    if not splits:
        raise ValueError(
            f"data: no reviews in {str(path)!r}; expected {{train,test}}/{{pos,neg}}/*.txt "
            "(the aclImdb layout) or pos/*.txt and neg/*.txt"
        )
    return splits


_LABELS = {"0": 0, "1": 1, "neg": 0, "pos": 1, "negative": 0, "positive": 1}


def read_csv(
    path: str | os.PathLike,
    *,
    text_column: str = "text",
    label_column: str = "label",
    split_column: str = "split",
) -> dict[str, LabeledTexts]:
    """Labeled texts from a CSV file with a header row.

    Labels are 0/1 or neg/pos (negative/positive), any case. With a ``split_column`` whose
    values are "train" or "test" the rows are split accordingly; without one every row is
    train. Returns {split: LabeledTexts}.

    Raises FileNotFoundError for a missing file and ValueError, naming the row, for missing
    columns (listing the columns the file has), an empty text or a label that is not binary.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data: {str(path)!r} does not exist")
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            rows = list(csv.reader(file))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"data: cannot read {str(path)!r} as a UTF-8 CSV: {error}") from None
    if not rows:
        raise ValueError(f"data: {str(path)!r} is empty; expected a header row and labeled texts")
    header = [name.strip() for name in rows[0]]
    missing = [c for c in (text_column, label_column) if c not in header]
    if missing:
        raise ValueError(
            f"data: {str(path)!r} has no column {', '.join(map(repr, missing))}; its columns are "
            f"{', '.join(map(repr, header))}; name yours with --text-column and --label-column"
        )
    t, y = header.index(text_column), header.index(label_column)
    s = header.index(split_column) if split_column in header else None
    grouped: dict[str, tuple[list[str], list[int]]] = {}
    bad: dict[str, int] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue  # a blank line
        if len(row) != len(header):
            raise ValueError(
                f"data: row {number} of {str(path)!r} has {len(row)} fields, the header "
                f"{len(header)}"
            )
        text, raw_label = row[t], row[y].strip()
        if not text.strip():
            raise ValueError(
                f"data: empty text in row {number} of {str(path)!r} (column {text_column!r})"
            )
        label = _LABELS.get(raw_label.lower())
        if label is None:
            bad.setdefault(raw_label, number)
            continue
        split = "train" if s is None else row[s].strip().lower()
        if split not in ("train", "test"):
            raise ValueError(
                f"data: row {number} of {str(path)!r} has {split_column}={row[s]!r}; "
                "expected 'train' or 'test'"
            )
        texts, labels = grouped.setdefault(split, ([], []))
        texts.append(text)
        labels.append(label)
    if bad:
        shown = ", ".join(f"{value!r} (row {row})" for value, row in list(bad.items())[:5])
        raise ValueError(
            f"data: the labels in column {label_column!r} of {str(path)!r} must be binary, 0/1 "
            f"or neg/pos (negative/positive), got {shown}"
        )
    if not grouped:
        raise ValueError(f"data: {str(path)!r} has a header but no rows")
    return {
        split: LabeledTexts(texts, np.asarray(labels, dtype=np.int64))
        for split, (texts, labels) in grouped.items()
    }


# --- Keras's imdb.npz, without executing pickles ---------------------------------------------


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
            arrays = {
                key: _read_npy(archive.read(members[key]), f"{key} of {str(path)!r}")
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


# --- the packaged sample ---------------------------------------------------------------------


def read_sample() -> tuple[dict[str, LabeledSequences], dict[str, int]]:
    """The sample shipped in the package: ({"train", "test"}, its word index).

    A few thousand reviews of each split of the Large Movie Review Dataset, encoded with the
    Keras word index, ``num_words`` = 10,000 and cut to their last 100 ids (see
    ``gru/data/samples/README.md`` and ``scripts/make_imdb_sample.py``).
    """
    resource = importlib.resources.files("gru.data").joinpath("samples/imdb_sample.npz")
    with np.load(io.BytesIO(resource.read_bytes()), allow_pickle=False) as npz:
        splits = {
            split: LabeledSequences(
                Sequences(npz[f"{split}_tokens"].astype(np.int32), npz[f"{split}_offsets"]),
                npz[f"{split}_labels"].astype(np.int64),
            )
            for split in ("train", "test")
        }
        words = npz["words"].tolist()
    return splits, {word: rank for rank, word in enumerate(words, start=1)}


# --- encoding, cache, dispatch ---------------------------------------------------------------


def encode_texts(data: LabeledTexts, word_index: dict[str, int]) -> LabeledSequences:
    """Encode every text with ``word_index`` (START, then rank + 3 per word, OOV if unknown)."""
    return LabeledSequences(
        Sequences.from_lists(encode(text, word_index) for text in data.texts), data.labels
    )


def cache_dir() -> Path:
    """``$GRU_CACHE_DIR``, else ``$XDG_CACHE_HOME/gru``, else ``~/.cache/gru``."""
    if os.environ.get("GRU_CACHE_DIR"):
        return Path(os.environ["GRU_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gru"


def _word_index_digest(word_index: dict[str, int] | None) -> str:
    if word_index is None:
        return "built"
    text = json.dumps(sorted(word_index.items(), key=lambda kv: kv[1]), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _cache_file(path: Path, word_index: dict[str, int] | None) -> Path:
    """The cache entry of ``path`` encoded with ``word_index``: it changes when the archive
    changes, or when reviews are added to or removed from a folder's pos/ and neg/ folders."""
    path = path.resolve()
    if path.is_dir():
        folders = [
            root / split / label
            for root in (path, path / "aclImdb")
            for split in ("", "train", "test")
            for label in ("pos", "neg")
        ]
        stats = [folder for folder in folders if folder.is_dir()]
    else:
        stats = [path]
    identity = [str(path), _CACHE_VERSION, _word_index_digest(word_index)]
    identity += [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in stats]
    key = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:24]
    return cache_dir() / f"imdb-{key}.npz"


def _save_cache(file: Path, splits: dict[str, LabeledSequences], word_index) -> None:
    arrays = {}
    for split, data in splits.items():
        arrays[f"{split}_tokens"] = data.sequences.tokens
        arrays[f"{split}_offsets"] = data.sequences.offsets
        arrays[f"{split}_labels"] = data.labels
    arrays["word_index"] = np.frombuffer(json.dumps(word_index).encode(), dtype=np.uint8)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(file, lambda f: np.savez(f, **arrays))
    except OSError:
        pass  # a cache that cannot be written only costs time


def _load_cache(file: Path):
    try:
        with np.load(file, allow_pickle=False) as npz:
            splits = {
                split: LabeledSequences(
                    Sequences(npz[f"{split}_tokens"], npz[f"{split}_offsets"]),
                    npz[f"{split}_labels"],
                )
                for split in ("train", "test")
                if f"{split}_tokens" in npz
            }
            word_index = json.loads(npz["word_index"].tobytes().decode())
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None  # a damaged cache entry is rebuilt
    return splits, word_index


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


def _encode_splits(texts: dict[str, LabeledTexts], word_index: dict[str, int] | None):
    if word_index is None:
        if "train" not in texts:
            raise ValueError(
                "data: without a word index the vocabulary is built from the train split, "
                "but the data has no train split; pass a word index"
            )
        word_index = build_word_index(texts["train"].texts)
    return {split: encode_texts(data, word_index) for split, data in texts.items()}, word_index


def load(
    data: str | os.PathLike,
    *,
    word_index: dict[str, int] | None = None,
    text_column: str = "text",
    label_column: str = "label",
    cache: bool = True,
    log=None,
) -> SentimentData:
    """Read and encode labeled reviews from any of the sources in the module docstring.

    ``data`` is a path, ``"sample"`` (the packaged sample) or ``"keras"``
    (``~/.keras/datasets/imdb.npz``). ``word_index`` encodes raw text; without it an aclImdb
    source uses the Keras word index beside the data or in ``~/.keras/datasets`` if there is
    one, and otherwise (and for your own CSV or folder) an index built from the training texts.
    ``log`` (a function of one string) hears where the data and the word index came from.
    """
    say = log or (lambda message: None)
    if str(data) == "sample":
        splits, index = read_sample()
        return SentimentData(splits["train"], splits["test"], index, "keras", "sample", raw=False)
    if str(data) == "keras":
        data = keras_datasets_dir() / "imdb.npz"
    path = Path(data)
    if not path.exists():
        raise FileNotFoundError(f"data: {str(path)!r} does not exist")
    name = path.name.lower()

    if name.endswith(".npz"):
        splits = read_keras_npz(path)
        origin = "keras"
        if word_index is None:
            found = find_word_index(path)
            word_index = None if found is None else load_word_index(found)
            origin = "keras" if found is not None else "unknown"
            say(f"word index: {found}" if found else "word index: none beside the .npz")
        return SentimentData(
            splits["train"], splits["test"], word_index, origin, str(path), raw=False
        )

    origin = "given" if word_index is not None else "data"
    if name.endswith(".csv"):
        texts = read_csv(path, text_column=text_column, label_column=label_column)
        splits, word_index = _encode_splits(texts, word_index)
        return SentimentData(splits.get("train"), splits.get("test"), word_index, origin, str(path))

    if not (path.is_dir() or name.endswith(_ARCHIVE_SUFFIXES)):
        raise ValueError(
            f"data: {str(path)!r} is not an aclImdb folder, a .tar.gz/.tar.xz of one, a Keras "
            ".npz or a .csv of labeled texts"
        )
    if word_index is None and _is_aclimdb(path):
        found = find_word_index(path)
        if found is not None:
            word_index, origin = load_word_index(found), "keras"
            say(f"word index: {found}")
    if word_index is None:
        say("word index: built from the training reviews")
    file = _cache_file(path, word_index) if cache else None
    cached = _load_cache(file) if file is not None and file.is_file() else None
    if cached is not None:
        splits, word_index = cached
        say(f"encoded reviews: cached in {file}")
    else:
        texts = read_review_folder(path)
        splits, word_index = _encode_splits(texts, word_index)
        if file is not None:
            _save_cache(file, splits, word_index)
    return SentimentData(splits.get("train"), splits.get("test"), word_index, origin, str(path))


def _is_aclimdb(path: Path) -> bool:
    """An archive, or a folder with train/ or test/ splits (not just your own pos/ and neg/)."""
    if not path.is_dir():
        return True
    return any(
        (root / split).is_dir() for root in (path, path / "aclImdb") for split in ("train", "test")
    )
