"""gru.data.reviews: aclImdb folders and archives, your own folders and CSV files, read as
labeled texts (on the shared raw data and on small files the tests build)."""

import tarfile
from pathlib import Path

import numpy as np
import pytest

from gru.data import imdb
from gru.data.reviews import read_csv, read_review_folder
from gru.data.text import OOV, START, encode, load_word_index, tokenize

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "imdb"
ARCHIVE = SHARED / "aclImdb_v1_labeled.tar.xz"
WORD_INDEX = SHARED / "imdb_word_index.json"

REVIEWS = {
    ("train", "neg", "10_2.txt"): "Dull. <br /><br />I left after an hour.",
    ("train", "neg", "2_1.txt"): "The worst film I have seen this year!",
    ("train", "pos", "5_9.txt"): "A wonderful, moving film.",
    ("train", "pos", "7_10.txt"): "Great acting; great story.",
    ("test", "neg", "1_3.txt"): "Boring and too long.",
    ("test", "pos", "3_8.txt"): "I loved it, and so did my kids.",
}


def make_aclimdb(root: Path) -> Path:
    for (split, label, name), text in REVIEWS.items():
        folder = root / "aclImdb" / split / label
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    (root / "aclImdb" / "README").write_text("not a review")
    return root / "aclImdb"


@pytest.fixture(scope="module")
def shared_sample():
    """Three reviews per split and label from the shared archive (one pass through it)."""
    return read_review_folder(ARCHIVE, limit=3)


def test_reads_the_shared_archive_and_the_keras_index_covers_its_words(shared_sample):
    assert set(shared_sample) == {"train", "test"}
    index = load_word_index(WORD_INDEX)
    for data in shared_sample.values():
        assert data.labels.tolist() == [0, 0, 0, 1, 1, 1]
        assert all(len(tokenize(text)) > 5 for text in data.texts)
        ids = np.concatenate([encode(text, index) for text in data.texts])
        # Tokenized as Keras tokenized it, almost every word is in Keras's index (a mismatch,
        # say keeping punctuation, would make most of them OOV).
        assert np.mean(ids == OOV) < 0.02
        assert np.sum(ids == START) == len(data.texts)


def test_folder_and_its_archives_read_the_same(tmp_path):
    folder = make_aclimdb(tmp_path / "unpacked")
    from_folder = read_review_folder(folder)
    assert from_folder["train"].texts == [
        REVIEWS["train", "neg", "2_1.txt"],  # review ids in numeric order: 2 before 10
        REVIEWS["train", "neg", "10_2.txt"],
        REVIEWS["train", "pos", "5_9.txt"],
        REVIEWS["train", "pos", "7_10.txt"],
    ]
    assert from_folder["train"].labels.tolist() == [0, 0, 1, 1]
    assert from_folder["test"].labels.tolist() == [0, 1]
    assert read_review_folder(folder.parent)["test"].texts == from_folder["test"].texts
    for suffix, mode in ((".tar.gz", "w:gz"), (".tar.xz", "w:xz")):
        archive = tmp_path / f"aclImdb_v1{suffix}"
        with tarfile.open(archive, mode) as tar:
            tar.add(folder, arcname="aclImdb")
        from_archive = read_review_folder(archive)
        for split in ("train", "test"):
            assert from_archive[split].texts == from_folder[split].texts
            assert from_archive[split].labels.tolist() == from_folder[split].labels.tolist()


def test_csv_with_and_without_a_split_column(tmp_path):
    csv = tmp_path / "reviews.csv"
    csv.write_text(
        'review,sentiment,split\n"Loved it, really",positive,train\nAwful,NEG,test\n'
        "Fine film,1,train\n"
    )
    splits = read_csv(csv, text_column="review", label_column="sentiment")
    assert splits["train"].texts == ["Loved it, really", "Fine film"]
    assert splits["train"].labels.tolist() == [1, 1]
    assert splits["test"].labels.tolist() == [0]
    plain = tmp_path / "plain.csv"
    plain.write_text("text,label\ngood,1\nbad,0\n")
    data = imdb.load(plain)
    assert data.test is None and data.vocabulary_origin == "data"
    assert data.train.labels.tolist() == [1, 0]


def test_empty_review_files_and_non_utf8_are_named(tmp_path):
    folder = make_aclimdb(tmp_path)
    (folder / "train" / "pos" / "9_7.txt").write_text("  \n")
    with pytest.raises(
        ValueError, match=r"empty text in .*9_7.txt'; every review needs some words"
    ):
        read_review_folder(folder)
    (folder / "train" / "pos" / "9_7.txt").write_bytes(b"caf\xe9")
    with pytest.raises(ValueError, match=r"9_7.txt' is not UTF-8 text"):
        read_review_folder(folder)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "review,score\ngood,1\n",
            r"has no column 'text', 'label'; its columns are 'review', 'score'; name yours with --text-column",
        ),
        ("text,label\ngood,1\n   ,0\n", r"empty text in row 3 of .* \(column 'text'\)"),
        (
            "text,label\ngood,1\nmeh,2\nok,maybe\nfine,2\n",
            r"labels in column 'label' of .* must be binary, 0/1 or neg/pos \(negative/positive\), got '2' \(row 3\), 'maybe' \(row 4\)",
        ),
        (
            "text,label,split\ngood,1,dev\n",
            r"row 2 of .* has split='dev'; expected 'train' or 'test'",
        ),
        ("text,label\n", r"has a header but no rows"),
        ("", r"is empty; expected a header row"),
    ],
)
def test_bad_csv_files_are_refused_with_a_message(tmp_path, content, message):
    path = tmp_path / "mine.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_csv(path)


def test_a_review_larger_than_any_review_is_refused_before_it_is_read(tmp_path, monkeypatch):
    import io
    import tracemalloc

    from gru.data import reviews

    archive = tmp_path / "bomb.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("aclImdb/train/pos/1_10.txt")
        info.size = 20 << 20  # 20 MiB of zeros: about 20 KB packed
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    assert archive.stat().st_size < 100_000
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"data: 'aclImdb/train/pos/1_10\.txt' of '.*bomb\.tar\.gz' holds 20,971,520 bytes, more than a review may \(16,777,216\); refused before reading it"):  # fmt: skip
            read_review_folder(archive)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak
    folder = make_aclimdb(tmp_path / "unpacked")
    monkeypatch.setattr(reviews, "REVIEW_LIMIT", 10)  # the same rule for a folder's files
    with pytest.raises(ValueError, match=r"data: '.*\.txt' holds \d+ bytes, more than a review may \(10\)"):  # fmt: skip
        read_review_folder(folder)


def test_a_folder_given_as_a_csv_is_named_as_one(tmp_path):
    with pytest.raises(IsADirectoryError, match=r"data: '.*' is a folder; give the CSV file"):
        read_csv(tmp_path)
