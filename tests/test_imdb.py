"""gru.data.imdb: every reader on the shared raw data and on small files the tests build."""

import io
import os
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from gru.data import imdb
from gru.data.text import OOV, START, Sequences, encode, limit_vocabulary, tokenize

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


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test gets its own empty cache and Keras home."""
    monkeypatch.setenv("GRU_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))


def make_aclimdb(root: Path) -> Path:
    for (split, label, name), text in REVIEWS.items():
        folder = root / "aclImdb" / split / label
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    (root / "aclImdb" / "README").write_text("not a review")
    return root / "aclImdb"


def object_array(items) -> np.ndarray:
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


def save_keras_npz(path: Path, **overrides) -> dict:
    """A file in the layout of Keras's download: each review as its words' frequency ranks."""
    arrays = {
        "x_train": object_array([[11, 19, 13], [191, 1150], [2]]),
        "y_train": np.array([1, 0, 1]),
        "x_test": object_array([[588, 199, 11, 28], [11]]),
        "y_test": np.array([0, 1]),
    }
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return arrays


# --- the shared raw data --------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_sample():
    """Three reviews per split and label from the shared archive (one pass through it)."""
    return imdb.read_review_folder(ARCHIVE, limit=3)


def test_reads_the_shared_archive_and_the_keras_index_covers_its_words(shared_sample):
    assert set(shared_sample) == {"train", "test"}
    index = imdb.load_word_index(WORD_INDEX)
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
    from_folder = imdb.read_review_folder(folder)
    assert from_folder["train"].texts == [
        REVIEWS["train", "neg", "2_1.txt"],  # review ids in numeric order: 2 before 10
        REVIEWS["train", "neg", "10_2.txt"],
        REVIEWS["train", "pos", "5_9.txt"],
        REVIEWS["train", "pos", "7_10.txt"],
    ]
    assert from_folder["train"].labels.tolist() == [0, 0, 1, 1]
    assert from_folder["test"].labels.tolist() == [0, 1]
    assert imdb.read_review_folder(folder.parent)["test"].texts == from_folder["test"].texts
    for suffix, mode in ((".tar.gz", "w:gz"), (".tar.xz", "w:xz")):
        archive = tmp_path / f"aclImdb_v1{suffix}"
        with tarfile.open(archive, mode) as tar:
            tar.add(folder, arcname="aclImdb")
        from_archive = imdb.read_review_folder(archive)
        for split in ("train", "test"):
            assert from_archive[split].texts == from_folder[split].texts
            assert from_archive[split].labels.tolist() == from_folder[split].labels.tolist()


def test_load_encodes_with_the_index_beside_the_data_and_caches(tmp_path):
    folder = make_aclimdb(tmp_path)
    (tmp_path / "imdb_word_index.json").write_text('{"film": 1, "great": 2, "the": 3}')
    assert imdb.find_word_index(tmp_path) == tmp_path / "imdb_word_index.json"
    messages = []
    data = imdb.load(tmp_path, log=messages.append)
    assert data.vocabulary_origin == "keras" and data.raw
    assert data.word_index == {"film": 1, "great": 2, "the": 3}
    # "Great acting; great story." -> START, great, OOV, great, OOV
    assert data.train.sequences[3].tolist() == [START, 5, OOV, 5, OOV]
    assert not any("cached" in m for m in messages)
    cached = list((tmp_path / "cache").glob("imdb-*.npz"))
    assert len(cached) == 1
    again = imdb.load(folder.parent, log=messages.append)
    assert "cached" in messages[-1]
    assert again.train.sequences == data.train.sequences
    assert again.test.labels.tolist() == data.test.labels.tolist()


def test_without_an_index_the_vocabulary_is_built_from_the_training_reviews(tmp_path):
    make_aclimdb(tmp_path)
    data = imdb.load(tmp_path / "aclImdb", cache=False)
    assert data.vocabulary_origin == "data"
    assert data.word_index["film"] == 1  # the most frequent training word ("film" x2, ties)
    assert data.word_index.get("kids") is None  # a test-only word is unknown


# --- your own texts ---------------------------------------------------------------------------


def test_csv_with_and_without_a_split_column(tmp_path):
    csv = tmp_path / "reviews.csv"
    csv.write_text(
        'review,sentiment,split\n"Loved it, really",positive,train\nAwful,NEG,test\n'
        "Fine film,1,train\n"
    )
    splits = imdb.read_csv(csv, text_column="review", label_column="sentiment")
    assert splits["train"].texts == ["Loved it, really", "Fine film"]
    assert splits["train"].labels.tolist() == [1, 1]
    assert splits["test"].labels.tolist() == [0]
    plain = tmp_path / "plain.csv"
    plain.write_text("text,label\ngood,1\nbad,0\n")
    data = imdb.load(plain)
    assert data.test is None and data.vocabulary_origin == "data"
    assert data.train.labels.tolist() == [1, 0]


def test_a_folder_of_your_own_pos_and_neg_texts_is_the_train_split(tmp_path):
    for label, text in (("pos", "so good"), ("neg", "so bad")):
        (tmp_path / label).mkdir()
        (tmp_path / label / "a.txt").write_text(text)
    data = imdb.load(tmp_path, cache=False)
    assert data.test is None and data.train.labels.tolist() == [0, 1]
    assert data.vocabulary_origin == "data"  # no Keras index for your own texts


# --- Keras's imdb.npz -------------------------------------------------------------------------


def test_keras_npz_round_trip_and_default_location(tmp_path):
    home = tmp_path / "keras-home" / "datasets"
    home.mkdir(parents=True)
    arrays = save_keras_npz(home / "imdb.npz")
    splits = imdb.read_keras_npz()  # ~/.keras/datasets/imdb.npz, here under KERAS_HOME
    for split in ("train", "test"):
        got = splits[split]
        loaded = [[START] + [rank + 3 for rank in x] for x in arrays[f"x_{split}"]]
        assert [got.sequences[i].tolist() for i in range(len(got))] == loaded
        assert got.labels.tolist() == arrays[f"y_{split}"].tolist()
    data = imdb.load("keras")
    assert not data.raw and data.word_index is None and data.vocabulary_origin == "unknown"
    (home / "imdb_word_index.json").write_text('{"the": 1}')
    assert imdb.load("keras").word_index == {"the": 1}


def test_keras_npz_with_numpy_integers_and_arrays_inside(tmp_path):
    path = tmp_path / "imdb.npz"
    save_keras_npz(
        path,
        x_train=object_array([[np.int64(1), np.int32(7)], np.array([1, 9], np.int16), []]),
    )
    got = imdb.read_keras_npz(path)["train"].sequences
    assert [got[i].tolist() for i in range(3)] == [[START, 4, 10], [START, 4, 12], [START]]


def test_keras_npz_reads_as_the_real_keras_loader_returns_it(tmp_path, monkeypatch):
    """keras.datasets.imdb.load_data on the same file (its download replaced by the file)."""
    os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras on torch: no TensorFlow needed
    keras_imdb = pytest.importorskip("keras.src.datasets.imdb")
    path = tmp_path / "imdb.npz"
    save_keras_npz(path)
    monkeypatch.setattr(keras_imdb, "get_file", lambda *args, **kwargs: str(path))
    (x_train, y_train), (x_test, y_test) = keras_imdb.load_data(num_words=1000)
    ours = imdb.read_keras_npz(path)
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        got = ours[split]
        ids = Sequences(limit_vocabulary(got.sequences.tokens, 1000), got.sequences.offsets)
        theirs = sorted(zip([list(map(int, r)) for r in x], y.tolist(), strict=True))
        mine = [(ids[i].tolist(), int(got.labels[i])) for i in range(len(got))]
        assert sorted(mine) == theirs  # Keras shuffles (seed 113); the content is the same


class Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_a_malicious_pickle_is_refused_and_never_runs(tmp_path):
    exploit = Exploit()
    exploit.target = tmp_path / "pwned"
    path = tmp_path / "imdb.npz"
    save_keras_npz(path, x_train=object_array([exploit, [1, 2], [1]]))
    assert not exploit.target.exists()
    with pytest.raises(
        ValueError, match=r"refusing x_train of .*imdb.npz.*needs (posix|os)\.system"
    ):
        imdb.read_keras_npz(path)
    assert not exploit.target.exists()


def test_a_hand_written_pickle_calling_eval_is_refused_and_a_corrupt_one_named(tmp_path):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|O", "fortran_order": False, "shape": (1,)}
    )
    path = tmp_path / "imdb.npz"
    save_keras_npz(tmp_path / "base.npz")
    for payload, message in (
        (b"cbuiltins\neval\n(S'1+1'\ntR.", r"refusing x_test of .* needs builtins.eval"),
        (b"cnumpy\nndarray\n(", r"x_test of .* holds an unreadable pickle"),
    ):
        with zipfile.ZipFile(tmp_path / "base.npz") as src, zipfile.ZipFile(path, "w") as dst:
            for name in src.namelist():
                data = src.read(name)
                dst.writestr(name, header.getvalue() + payload if name == "x_test.npy" else data)
        with pytest.raises(ValueError, match=message):
            imdb.read_keras_npz(path)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"x_test": None},
            r"has arrays x_train, y_test, y_train; expected x_train, y_train, x_test, y_test .* missing x_test",
        ),
        (
            {"x_train": object_array(["a review", [1], [1]])},
            r"x_train of .* must be a 1-D array of token-id lists .*; item 0 is a str",
        ),
        (
            {"x_train": object_array([[1, 2.5], [1], [1]])},
            r"x_train of .*\[0\] must hold ints, got float, int",
        ),
        (
            {"x_train": np.zeros((3, 4), np.int64)},
            r"x_train of .* must be a 1-D array of token-id lists .* got a int64 array of shape \(3, 4\)",
        ),
        (
            {"y_train": np.array([0, 1, 2])},
            r"labels in y_train of .* must be binary \(0 or 1\), got values \[0, 1, 2\]",
        ),
        ({"y_train": np.array([0, 1])}, r"y_train of .* must be 3 integer labels"),
        ({"x_train": object_array([{"ids": 1}, [1], [1]])}, r"x_train of .* item 0 is a dict"),
    ],
)
def test_bad_keras_npz_files_are_refused_with_a_message(tmp_path, overrides, message):
    path = tmp_path / "imdb.npz"
    save_keras_npz(path, **overrides)
    with pytest.raises(ValueError, match=message):
        imdb.read_keras_npz(path)


# --- bad input --------------------------------------------------------------------------------


def test_missing_unreadable_and_unknown_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data: .*nowhere.tar.gz' does not exist"):
        imdb.load(tmp_path / "nowhere.tar.gz")
    truncated = tmp_path / "aclImdb_v1.tar.xz"
    truncated.write_bytes(ARCHIVE.read_bytes()[:5000])
    with pytest.raises(ValueError, match=r"cannot read .*aclImdb_v1.tar.xz' as a .tar.gz/.tar.xz"):
        imdb.load(truncated)
    not_zip = tmp_path / "imdb.npz"
    not_zip.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match=r"cannot read .*imdb.npz' as an .npz \(zip\) file"):
        imdb.load(not_zip)
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(ValueError, match=r"is not an aclImdb folder, a .tar.gz/.tar.xz of one"):
        imdb.load(other)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"no reviews in .*empty'; expected \{train,test\}"):
        imdb.load(tmp_path / "empty")


def test_empty_review_files_and_non_utf8_are_named(tmp_path):
    folder = make_aclimdb(tmp_path)
    (folder / "train" / "pos" / "9_7.txt").write_text("  \n")
    with pytest.raises(
        ValueError, match=r"empty text in .*9_7.txt'; every review needs some words"
    ):
        imdb.read_review_folder(folder)
    (folder / "train" / "pos" / "9_7.txt").write_bytes(b"caf\xe9")
    with pytest.raises(ValueError, match=r"9_7.txt' is not UTF-8 text"):
        imdb.read_review_folder(folder)


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
        imdb.read_csv(path)


# --- the packaged sample ----------------------------------------------------------------------


def test_the_packaged_sample_is_small_balanced_and_cited():
    splits, index = imdb.read_sample()
    assert (len(splits["train"]), len(splits["test"])) == (10_000, 5_000)
    for data in splits.values():
        assert data.labels.mean() == 0.5
        assert data.sequences.lengths.max() == 100
        assert data.sequences.tokens.max() < 10_000 and data.sequences.tokens.min() >= 1
    assert index["the"] == 1 and len(index) == 9_996
    samples = Path(imdb.__file__).parent / "samples"
    assert (samples / "imdb_sample.npz").stat().st_size <= 5_000_000
    assert "Maas" in (samples / "README.md").read_text() and "Maas" in imdb.CITATION
