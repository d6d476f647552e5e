"""gru.data.uea: the strict .ts reader, on files written here: a good file read case by case,
and every header that lies, ragged channels, missing labels and values, NaN, named by file and
line."""

import numpy as np
import pytest

from gru.data.uea import read_ts

HEADER = """# a comment
@problemName Toy
@timeStamps false
@missing false
@univariate false
@dimensions 2
@equalLength true
@seriesLength 3
@classLabel true up down
@data
"""


def write(tmp_path, text: str, name: str = "toy.ts"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_file_is_read_case_by_case_with_its_lines(tmp_path):
    path = write(tmp_path, HEADER + "1,2,3:4,5,6:up\n\n-1,-2,-3.5:0,0,1e-3:down\n")
    found = read_ts(path)
    assert found.problem == "Toy" and found.classes == ["up", "down"]
    assert found.labels == ["up", "down"] and found.lines == [11, 13]
    np.testing.assert_array_equal(found.X[0], [[1, 4], [2, 5], [3, 6]])  # (T, C)
    assert found.X[1].shape == (3, 2) and found.X[1][2, 1] == 1e-3


def test_variable_lengths_and_unlabeled_files(tmp_path):
    text = HEADER.replace("@equalLength true", "@equalLength false").replace(
        "@seriesLength 3\n", ""
    )
    found = read_ts(write(tmp_path, text + "1,2:3,4:up\n1,2,3,4:5,6,7,8:down\n"))
    assert [len(x) for x in found.X] == [2, 4]
    unlabeled = text.replace("@classLabel true up down", "@classLabel false")
    found = read_ts(write(tmp_path, unlabeled + "1,2:3,4\n", "new.ts"))
    assert found.labels is None and found.classes is None and found.X[0].shape == (2, 2)


@pytest.mark.parametrize(
    ("header", "row", "message"),
    [
        ("@seriesLength 3", "1,2:3,4:up", "@seriesLength 3, but the case has 2 steps"),
        ("@dimensions 2", "1,2,3:4,5,6:7,8,9:up", "@dimensions 2, but the case has 3 dimensions"),
        ("@univariate false", "1,2,3:up", "@dimensions 2, but the case has 1 dimensions"),
        ("@classLabel true up down", "1,2,3:4,5,6:left", "'left' is not one of those @classLabel"),
        ("@missing false", "1,?,3:4,5,6:up", "missing value ('?', step 2); the header says"),
    ],
)
def test_a_header_that_lies_is_named_by_file_and_line(tmp_path, header, row, message):
    path = write(tmp_path, HEADER + "1,2,3:4,5,6:up\n" + row + "\n")
    with pytest.raises(ValueError, match="line 12") as error:
        read_ts(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_equal_length_and_univariate_claims_are_checked(tmp_path):
    text = HEADER.replace("@seriesLength 3\n", "")
    with pytest.raises(
        ValueError,
        match=r"line 11: .*@equalLength true, but the case has 4 steps and the case of line 10 has 3",
    ):
        read_ts(write(tmp_path, text + "1,2,3:4,5,6:up\n1,2,3,4:4,5,6,7:up\n"))
    uni = HEADER.replace("@univariate false", "@univariate true").replace("@dimensions 2\n", "")
    with pytest.raises(ValueError, match=r"line 10: .*@univariate true, but the case has 2"):
        read_ts(write(tmp_path, uni + "1,2,3:4,5,6:up\n", "uni.ts"))


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("1,2,3:4,5:up", "ragged channels: the dimensions have [3, 2] values"),
        ("1,2,3:4,5,6:", "the class label is missing"),
        ("1,2,3:4,5,6", "the case has no class label after its last ':'"),
        ("1,2,3:4,5,6: ", "the class label is missing"),
        ("1,NaN,3:4,5,6:up", "dimension 1, step 2 is nan"),
        ("1,2,3:4,5,inf:up", "dimension 2, step 3 is inf"),
        ("1,2,x:4,5,6:up", "dimension 1, step 3: 'x' is not a number"),
        ("1,2,3:,:up", "dimension 2, step 1: '' is not a number"),
        ("@data", "a header line after @data"),
    ],
)
def test_bad_cases_are_named_by_file_and_line(tmp_path, row, message):
    path = write(tmp_path, HEADER + row + "\n")
    with pytest.raises(ValueError, match="line 11") as error:
        read_ts(path)
    assert str(path) in str(error.value) and message in str(error.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("@problemName x\n@colour red\n@data\n", "line 2: unknown header @colour"),
        ("@problemName x\n@data\n1:a\n", "line 2: the header has no @classLabel line"),
        ("@missing maybe\n", "line 1: @missing must be true or false"),
        ("@dimensions two\n", "line 1: @dimensions must be a positive integer"),
        ("@timeStamps true\n", "line 1: @timeStamps true is not supported"),
        ("@targetLabel true\n", "line 1: @targetLabel (a regression problem) is not supported"),
        ("@classLabel true\n", "line 1: @classLabel true must list the class labels"),
        ("@problemName x\n1,2:up\n", "line 2: expected a header line"),
        ("@problemName x\n@classLabel true a\n", "has no @data line"),
        ("@classLabel true a\n@data\n", "has no cases after @data"),
    ],
)
def test_bad_headers_are_named(tmp_path, text, message):
    with pytest.raises(ValueError, match="data: ") as error:
        read_ts(write(tmp_path, text))
    assert message in str(error.value)


def test_missing_files_and_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_ts(tmp_path / "nothing.ts")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        read_ts(tmp_path)
