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

The readers live beside this module: `gru.data.reviews` (aclImdb folders and archives, your
folders and CSV files) and `gru.data.keras_imdb` (Keras's files); this module ties them to one
`load`, the shipped sample and the cache, and re-exports their names.

Shapes: N reviews.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gru._io import atomic_write
from gru.data.keras_imdb import find_word_index, keras_datasets_dir, read_keras_npz
from gru.data.reviews import LabeledSequences, LabeledTexts, read_csv, read_review_folder
from gru.data.text import Sequences, build_word_index, encode, load_word_index

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
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tar")
_CACHE_VERSION = 1  # bump when tokenizing or encoding changes


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
    if not isinstance(data, str | os.PathLike):
        raise TypeError(
            f"data: must be a path, 'sample' or 'keras', got {type(data).__name__} {data!r}"
        )
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
