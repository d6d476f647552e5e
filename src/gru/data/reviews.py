"""Labeled reviews as text, in the layouts people keep them, and the same reviews encoded.

- the Large Movie Review Dataset (Maas et al., ACL 2011) as released: an ``aclImdb`` folder
  or its ``.tar.gz`` / ``.tar.xz`` archive, ``{train,test}/{pos,neg}/<id>_<rating>.txt``;
- your own texts: a folder of ``pos/`` and ``neg/`` text files, or a CSV with text and label
  columns (optionally a ``split`` column of train/test).

Each reader returns {split: LabeledTexts}; `LabeledSequences` holds them once encoded
(`gru.data.imdb.load`).

Shapes: N reviews.
"""

from __future__ import annotations

import csv
import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gru.data.text import Sequences

__all__ = ["LabeledSequences", "LabeledTexts", "read_csv", "read_review_folder"]

_REVIEW = re.compile(r"(?:^|/)(train|test)/(pos|neg)/([^/]+\.txt)$")
REVIEW_LIMIT = 16 << 20  # bytes of one review: aclImdb's longest is 14 KB
_LABELS = {"0": 0, "1": 1, "neg": 0, "pos": 1, "negative": 0, "positive": 1}


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


# --- aclImdb folders and archives, folders of pos/ and neg/ ----------------------------------


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


def _check_size(size: int, where: str) -> None:
    if size > REVIEW_LIMIT:
        raise ValueError(
            f"data: {where} holds {size:,} bytes, more than a review may ({REVIEW_LIMIT:,}); "
            "refused before reading it"
        )


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
                    _check_size(file.stat().st_size, repr(str(file)))
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
                    where = f"{member.name!r} of {str(path)!r}"
                    _check_size(member.size, where)  # before reading: no tar bombs
                    raw = archive.extractfile(member).read(REVIEW_LIMIT + 1)
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


# --- CSV files -------------------------------------------------------------------------------


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
    if path.is_dir():
        raise IsADirectoryError(f"data: {str(path)!r} is a folder; give the CSV file")
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
