"""gru.data.keras_imdb: Keras's imdb.npz read as Keras reads it, and never a pickle run."""

import importlib
import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from gru.data import imdb
from gru.data.keras_imdb import read_keras_npz
from gru.data.text import START, Sequences, limit_vocabulary


@pytest.fixture(autouse=True)
def private_keras_home(tmp_path, monkeypatch):
    """Every test gets its own empty cache and Keras home."""
    monkeypatch.setenv("GRU_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))


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


def test_keras_npz_round_trip_and_default_location(tmp_path):
    home = tmp_path / "keras-home" / "datasets"
    home.mkdir(parents=True)
    arrays = save_keras_npz(home / "imdb.npz")
    splits = read_keras_npz()  # ~/.keras/datasets/imdb.npz, here under KERAS_HOME
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
    got = read_keras_npz(path)["train"].sequences
    assert [got[i].tolist() for i in range(3)] == [[START, 4, 10], [START, 4, 12], [START]]


def test_keras_npz_reads_as_the_real_keras_loader_returns_it(tmp_path, monkeypatch):
    """keras.datasets.imdb.load_data on the same file (its download replaced by the file)."""
    os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras on torch: no TensorFlow needed
    # Keras is in the dev extras: missing, this test fails instead of skipping.
    keras_imdb = importlib.import_module("keras.src.datasets.imdb")
    path = tmp_path / "imdb.npz"
    save_keras_npz(path)
    monkeypatch.setattr(keras_imdb, "get_file", lambda *args, **kwargs: str(path))
    (x_train, y_train), (x_test, y_test) = keras_imdb.load_data(num_words=1000)
    ours = read_keras_npz(path)
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
        read_keras_npz(path)
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
            read_keras_npz(path)


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
        read_keras_npz(path)


def test_a_zip_bomb_member_is_refused_before_it_is_inflated(tmp_path):
    import tracemalloc

    path = tmp_path / "imdb.npz"
    save_keras_npz(path)
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path) as good, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as out:
        for name in ("x_train.npy", "y_train.npy", "x_test.npy"):
            out.writestr(name, good.read(name))
        with out.open("y_test.npy", "w") as member:
            for _ in range(64):
                member.write(bytes(1 << 20))  # 64 MiB of zeros, about 64 KB packed
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"data: '.*bomb\.npz': its member 'y_test\.npy' would inflate [\d,]+ bytes to 67,108,864 \([\d,]+ times, more than 100\): refused as a zip bomb"):  # fmt: skip
            read_keras_npz(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak


def test_a_folder_is_named_as_one(tmp_path):
    with pytest.raises(IsADirectoryError, match=r"data: '.*' is a folder, not a Keras imdb\.npz"):
        read_keras_npz(tmp_path)
