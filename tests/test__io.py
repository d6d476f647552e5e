"""gru._io.atomic_write: complete files or nothing."""

import os

import pytest

from gru._io import atomic_write


def test_writes_the_content_and_leaves_no_temporary_file(tmp_path):
    dest = tmp_path / "out.bin"
    result = atomic_write(dest, lambda f: f.write(b"hello"))
    assert result == dest
    assert dest.read_bytes() == b"hello"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_replaces_an_existing_file(tmp_path):
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"old")
    atomic_write(str(dest), lambda f: f.write(b"new"))
    assert dest.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_a_failing_writer_leaves_the_destination_and_the_folder_as_they_were(tmp_path):
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"old")

    def fail(f):
        f.write(b"half of it")
        raise ValueError("disk on fire")

    with pytest.raises(ValueError, match="disk on fire"):
        atomic_write(dest, fail)
    assert dest.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_a_failing_writer_creates_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "new.bin", lambda f: (_ for _ in ()).throw(KeyboardInterrupt))
    assert os.listdir(tmp_path) == []


def test_a_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"atomic_write: the folder of .*nope.* does not exist"
    ):
        atomic_write(tmp_path / "nope" / "out.bin", lambda f: f.write(b""))
