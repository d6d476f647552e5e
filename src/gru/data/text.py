"""Text to token ids, the way `keras.datasets.imdb` encodes reviews, and padding.

A word index maps each word to its frequency rank (1 = most frequent). A text becomes
``[START] + [rank + INDEX_FROM for each word]``, unknown words become OOV, and with a
``num_words`` cut-off every id ≥ num_words becomes OOV too:

    0 = PAD, 1 = START, 2 = OOV, 3 unused, rank r ↦ id r + 3

Tokenizing follows Keras's ``text_to_word_sequence``: lower-case, ``<br />`` line breaks
removed, the ASCII punctuation of Keras's default filters (everything but the apostrophe)
replaced by spaces, split on spaces.

Shapes: N sequences, T = maxlen.
"""

from __future__ import annotations

import collections
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "INDEX_FROM",
    "OOV",
    "PAD",
    "START",
    "Sequences",
    "build_word_index",
    "encode",
    "limit_vocabulary",
    "load_word_index",
    "pad_sequences",
    "tokenize",
]

PAD, START, OOV = 0, 1, 2
INDEX_FROM = 3  # id = rank + INDEX_FROM, so rank 1 ("the" in IMDB) is id 4

# Keras's default `filters` of text_to_word_sequence: ASCII punctuation except "'", tab, newline.
_KERAS_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n\r'
_TRANSLATE = str.maketrans(dict.fromkeys(_KERAS_FILTERS, " "))


def tokenize(text: str) -> list[str]:
    """Split ``text`` into lower-case words: ``"It's <br />GREAT!"`` -> ``["it's", "great"]``."""
    text = text.lower().replace("<br />", " ").replace("<br/>", " ").replace("<br>", " ")
    return [word for word in text.translate(_TRANSLATE).split(" ") if word]


def build_word_index(texts: Iterable[str]) -> dict[str, int]:
    """A word index of ``texts``: each word's frequency rank, 1 = most frequent.

    Ties are broken alphabetically, so the index depends only on the multiset of words.
    """
    counts = collections.Counter(word for text in texts for word in tokenize(text))
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return {word: rank for rank, (word, _) in enumerate(ordered, start=1)}


def load_word_index(path: str | os.PathLike) -> dict[str, int]:
    """Read a word index saved as a JSON object ``{word: rank}`` (Keras's imdb_word_index.json).

    Raises FileNotFoundError if the file is missing and ValueError if it is not such an object
    with distinct positive integer ranks.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"word index: {str(path)!r} is a folder, not a JSON file")
    if not path.is_file():
        raise FileNotFoundError(f"word index: {str(path)!r} does not exist")
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"word index: cannot read {str(path)!r} as JSON: {error}") from None
    if not isinstance(index, dict) or not index:
        raise ValueError(
            f"word index: {str(path)!r} must hold a non-empty JSON object {{word: rank}}, "
            f"got {type(index).__name__}"
        )
    for word, rank in index.items():
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ValueError(
                f"word index: {str(path)!r} maps {word!r} to {rank!r}; every rank must be a "
                "positive integer"
            )
    if len(set(index.values())) != len(index):
        raise ValueError(f"word index: {str(path)!r} gives the same rank to several words")
    return index


def encode(text: str, word_index: dict[str, int], *, start: bool = True) -> np.ndarray:
    """Token ids (L,) int32 of ``text``: START, then rank + 3 per word, OOV for unknown words."""
    ids = [word_index.get(word, OOV - INDEX_FROM) + INDEX_FROM for word in tokenize(text)]
    if start:
        ids.insert(0, START)
    return np.asarray(ids, dtype=np.int32)


def limit_vocabulary(ids: np.ndarray, num_words: int) -> np.ndarray:
    """``ids`` with every id ≥ ``num_words`` replaced by OOV, as Keras's ``num_words``."""
    return np.where(ids < num_words, ids, OOV).astype(ids.dtype, copy=False)


class Sequences:
    """N variable-length int sequences stored flat: ``tokens[offsets[i]:offsets[i + 1]]``.

    tokens (sum of lengths,) int32; offsets (N + 1,) int64, starting at 0 and non-decreasing.
    """

    def __init__(self, tokens: np.ndarray, offsets: np.ndarray) -> None:
        self.tokens = np.ascontiguousarray(tokens, dtype=np.int32)
        self.offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        if (
            self.offsets.ndim != 1
            or len(self.offsets) == 0
            or self.offsets[0] != 0
            or self.offsets[-1] != len(self.tokens)
            or np.any(np.diff(self.offsets) < 0)
        ):
            raise ValueError(
                "Sequences: offsets must rise from 0 to len(tokens) "
                f"= {len(self.tokens)}, got {len(self.offsets)} offsets"
            )

    @classmethod
    def from_lists(cls, sequences: Iterable[Sequence[int] | np.ndarray]) -> Sequences:
        """Pack a list of int sequences."""
        arrays = [np.asarray(s, dtype=np.int64).reshape(-1) for s in sequences]
        lengths = np.array([len(a) for a in arrays], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        tokens = np.concatenate(arrays) if arrays else np.zeros(0, np.int64)
        return cls(tokens.astype(np.int32), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.tokens[self.offsets[i] : self.offsets[i + 1]]

    @property
    def lengths(self) -> np.ndarray:
        """(N,) int64: the length of each sequence."""
        return np.diff(self.offsets)

    def subset(self, index: np.ndarray) -> Sequences:
        """The sequences at ``index`` (an int array), in that order."""
        index = np.asarray(index, dtype=np.int64)
        lengths = self.lengths[index]
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        starts = self.offsets[index]
        # Gather every token at once: position j of the output reads starts[k] + (j - offsets[k]).
        owner = np.repeat(np.arange(len(index)), lengths)  # (sum of lengths,)
        positions = starts[owner] + (np.arange(offsets[-1]) - offsets[:-1][owner])
        return Sequences(self.tokens[positions], offsets)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequences):
            return NotImplemented
        return np.array_equal(self.tokens, other.tokens) and np.array_equal(
            self.offsets, other.offsets
        )

    __hash__ = None  # mutable arrays inside

    def __repr__(self) -> str:
        return f"Sequences(n={len(self)}, tokens={len(self.tokens)})"


def pad_sequences(
    sequences: Sequences | Iterable[Sequence[int] | np.ndarray],
    maxlen: int | None = None,
    *,
    padding: str = "pre",
    truncating: str = "pre",
    value: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Pad or cut every sequence to ``maxlen`` ids, as Keras's ``pad_sequences`` defaults.

    ``truncating="pre"`` keeps the last ``maxlen`` ids of a longer sequence, ``"post"`` the
    first; ``padding="pre"`` puts the ``value`` fill before a shorter sequence, ``"post"``
    after it. ``maxlen=None`` uses the longest sequence.

    Returns ``(x (N, T) int64, lengths (N,) int64)``, lengths counting the ids kept (a
    sequence of length 0 keeps length 0).
    """
    if padding not in ("pre", "post"):
        raise ValueError(f"pad_sequences: padding must be 'pre' or 'post', got {padding!r}")
    if truncating not in ("pre", "post"):
        raise ValueError(f"pad_sequences: truncating must be 'pre' or 'post', got {truncating!r}")
    if not isinstance(sequences, Sequences):
        sequences = Sequences.from_lists(sequences)
    lengths_all = sequences.lengths
    if maxlen is None:
        maxlen = int(lengths_all.max()) if len(sequences) else 0
    if maxlen < 1:
        raise ValueError(f"pad_sequences: maxlen must be at least 1, got {maxlen}")
    N = len(sequences)
    kept = np.minimum(lengths_all, maxlen)  # (N,)
    x = np.full((N, maxlen), value, dtype=np.int64)
    for i in range(N):
        seq = sequences[i]
        part = seq[len(seq) - kept[i] :] if truncating == "pre" else seq[: kept[i]]
        if padding == "pre":
            x[i, maxlen - kept[i] :] = part
        else:
            x[i, : kept[i]] = part
    return x, kept.astype(np.int64)
