"""gru.data.imdb: `load` from every source (the readers are tested in test_reviews.py and
test_keras_imdb.py), the cache of encoded reviews, and the shipped sample."""

from pathlib import Path

import pytest

from gru.data import imdb
from gru.data.text import OOV, START
from test_reviews import ARCHIVE, make_aclimdb


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test gets its own empty cache and Keras home."""
    monkeypatch.setenv("GRU_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))


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


def test_a_folder_of_your_own_pos_and_neg_texts_is_the_train_split(tmp_path):
    for label, text in (("pos", "so good"), ("neg", "so bad")):
        (tmp_path / label).mkdir()
        (tmp_path / label / "a.txt").write_text(text)
    data = imdb.load(tmp_path, cache=False)
    assert data.test is None and data.train.labels.tolist() == [0, 1]
    assert data.vocabulary_origin == "data"  # no Keras index for your own texts


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
    # data=123 failed inside pathlib: "expected str, bytes or os.PathLike object, not int".
    with pytest.raises(TypeError, match=r"data: must be a path, 'sample' or 'keras', got int 123"):
        imdb.load(123)


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
