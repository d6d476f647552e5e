"""Derive the IMDB sample shipped in the package (src/gru/data/samples/imdb_sample.npz).

A seeded, class-balanced random choice of reviews from each split of the Large Movie Review
Dataset (Maas et al., ACL 2011), encoded as `keras.datasets.imdb` does with the Keras word
index, ``num_words`` = 10,000 (rarer words become the out-of-vocabulary id 2) and cut to their
last 100 ids, as ``pad_sequences(maxlen=100)`` would cut them. Stored without pickle:

    {train,test}_tokens   uint16, every review's ids one after another
    {train,test}_offsets  int64, review i is tokens[offsets[i]:offsets[i + 1]]
    {train,test}_labels   uint8, 1 = positive
    words                 the 9,996 words with ids 4..9999 (id = rank + 3), most frequent first

    python scripts/make_imdb_sample.py [--data ../shared/data/imdb/aclImdb_v1_labeled.tar.xz]
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np

from gru._io import atomic_write
from gru.data.imdb import read_review_folder
from gru.data.text import Sequences, encode, limit_vocabulary, load_word_index

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "imdb"
OUT = ROOT / "src" / "gru" / "data" / "samples" / "imdb_sample.npz"
NUM_WORDS, MAXLEN = 10_000, 100


def choose(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n indices, half of each label, in random order."""
    picks = [rng.choice(np.flatnonzero(labels == y), n // 2, replace=False) for y in (0, 1)]
    return rng.permutation(np.concatenate(picks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=DATA / "aclImdb_v1_labeled.tar.xz", type=Path)
    parser.add_argument("--word-index", default=DATA / "imdb_word_index.json", type=Path)
    parser.add_argument("--train", type=int, default=10_000, help="training reviews")
    parser.add_argument("--test", type=int, default=5_000, help="test reviews")
    parser.add_argument("--out", default=OUT, type=Path)
    args = parser.parse_args()

    word_index = load_word_index(args.word_index)
    splits = read_review_folder(args.data)
    rng = np.random.default_rng(2011)
    arrays = {}
    for split, n in (("train", args.train), ("test", args.test)):
        data = splits[split]
        index = choose(data.labels, n, rng)
        rows = []
        for i in index:
            ids = limit_vocabulary(encode(data.texts[i], word_index), NUM_WORDS)
            rows.append(ids[-MAXLEN:])  # pad_sequences' default truncating="pre"
        seqs = Sequences.from_lists(rows)
        arrays[f"{split}_tokens"] = seqs.tokens.astype(np.uint16)
        arrays[f"{split}_offsets"] = seqs.offsets
        arrays[f"{split}_labels"] = data.labels[index].astype(np.uint8)
    by_rank = sorted(word_index, key=word_index.get)
    arrays["words"] = np.array(by_rank[: NUM_WORDS - 4])  # ids 4..NUM_WORDS-1

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out, lambda f: f.write(buffer.getvalue()))
    print(f"{args.out.relative_to(ROOT)}: {len(buffer.getvalue()) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
