"""gru.data.sequences: labeled sequences from long-format CSV and .npz (the .ts reader has
test_uea.py), the split check, and bad input named by file and line or case."""

import numpy as np
import pytest

from gru.data.sequences import check_split, load, read_csv, read_npz

CSV = """id,time,a,b,label
s1,2,3.0,30,up
s1,1,2.0,20,up
s2,1,-1,0,down
s1,3,4.0,40,up
s2,2,-2,0,down
"""


def write(tmp_path, text: str, name: str = "data.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_long_csv_groups_rows_by_id_in_time_order(tmp_path):
    found = load(write(tmp_path, CSV))
    assert found.channels == ["a", "b"] and found.labels.tolist() == ["up", "down"]
    np.testing.assert_array_equal(found.X[0], [[2, 20], [3, 30], [4, 40]])
    np.testing.assert_array_equal(found.lengths, [3, 2])
    assert found.locate(1) == f"{str(tmp_path / 'data.csv')!r} id 's2' (line 4)"
    unlabeled = read_csv(write(tmp_path, "id,x\n1,0.5\n1,0.7\n", "new.csv"))
    assert unlabeled.labels is None and unlabeled.X[0].shape == (2, 1)
    with pytest.raises(ValueError, match="has no class labels; training needs them"):
        load(tmp_path / "new.csv")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("s2,2,-2,0,down", "s2,2,,0,down"), "line 6: column 'a' is empty, not a number"),
        (("s2,2,-2,0,down", "s2,2,NaN,0,down"), "line 6: column 'a' is 'NaN', not a number"),
        (("s2,2,-2,0,down", "s2,2,-2,inf,down"), "line 6: column 'b' is 'inf', not finite"),
        (("s2,2,-2,0,down", "s2,2,-2,0,"), "line 6: the label is missing"),
        (("s1,3,4.0,40,up", "s1,3,4.0,40,down"), "line 5: id 's1' changes its label"),
        (("s1,3,4.0,40,up", "s1,2,4.0,40,up"), "id 's1' has time 2 twice"),
        (("id,", "key,"), "has no id column 'id'"),
    ],
)
def test_bad_csv_rows_are_named_by_file_and_line(tmp_path, change, message):
    path = write(tmp_path, CSV.replace(*change))
    with pytest.raises(ValueError, match="data: ") as error:
        load(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_npz_padded_with_lengths_reads_no_padding(tmp_path):
    X = np.arange(24, dtype=np.float32).reshape(2, 4, 3)
    X[0, 2:] = np.nan  # padding past length 2: never read, so never refused
    np.savez(tmp_path / "d.npz", X=X, y=np.array([3, 7]), lengths=np.array([2, 4]))
    found = load(tmp_path / "d.npz")
    assert found.labels.tolist() == ["3", "7"] and found.lengths.tolist() == [2, 4]
    np.testing.assert_array_equal(found.X[1], X[1])
    np.savez(tmp_path / "u.npz", X=np.ones((3, 5)))
    assert read_npz(tmp_path / "u.npz").labels is None


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"X": np.array([np.ones((2, 1)), np.ones((3, 1))], dtype=object)}, "array of objects"),
        ({"X": np.array([[1.0, np.nan]]), "y": np.array([1])}, "case 0: X[0, 1, 0] is nan"),
        ({"X": np.ones((2, 3)), "y": np.array([1])}, "y must be (N,) = (2,)"),
        ({"X": np.ones((2, 3)), "lengths": np.array([1, 4])}, "case 1: lengths[1] = 4"),
        ({"Z": np.ones(3)}, "has no array 'X'"),
        ({"X": np.ones(3)}, "X must be a non-empty (N, T, C) or (N, T) array"),
        ({"X": np.ones((1, 2)), "y": np.array([""])}, "case 0: the label is missing"),
    ],
)
def test_bad_npz_is_named_by_file_and_case(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="data: ") as error:
        load(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_a_label_only_in_the_test_data_is_refused_with_its_line(tmp_path):
    train = load(write(tmp_path, CSV))
    test = load(write(tmp_path, CSV.replace("down", "left"), "t.csv"))
    with pytest.raises(ValueError, match=r"t.csv' id 's2' \(line 4\): class label 'left' is not"):
        check_split(train, test)
    other = load(write(tmp_path, "id,a,label\n1,0,up\n", "one.csv"))
    with pytest.raises(ValueError, match="has 1 channels, but the training data"):
        check_split(train, other)


def test_unknown_suffixes_and_missing_files(tmp_path):
    with pytest.raises(ValueError, match=r"give a .ts \(sktime\), .csv"):
        load(write(tmp_path, "x", "data.txt"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load(tmp_path / "none.ts")
