"""gru._io.atomic_write: complete files or nothing."""

import os
import signal
import stat
import subprocess
import sys

import pytest

from gru._io import STOP_IN_WRITE, atomic_write, leftovers, remove_leftovers


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


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_a_new_file_gets_the_mode_a_plain_open_gives_it(tmp_path, umask):
    old = os.umask(umask)
    try:
        atomic_write(tmp_path / "atomic", lambda f: f.write(b"x"))
        with open(tmp_path / "plain", "w"):
            pass
    finally:
        os.umask(old)
    assert mode(tmp_path / "atomic") == mode(tmp_path / "plain") == 0o666 & ~umask


def test_replacing_a_file_keeps_its_mode(tmp_path):
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"old")
    dest.chmod(0o640)
    atomic_write(dest, lambda f: f.write(b"new"))
    assert dest.read_bytes() == b"new" and mode(dest) == 0o640


def test_leftovers_are_the_writers_temporaries_only(tmp_path):
    names = [
        ".config.json.k3_x9q0a.tmp",  # what earlier versions left (tempfile's names)
        ".model.safetensors.0f3a9c1e.tmp",
        ".hidden",
        "notes.tmp",
        ".x.tmp",
        ".config.json.short.tmp",
        "config.json",
    ]
    for name in names:
        (tmp_path / name).write_text("x")
    (tmp_path / ".dir.abcdefgh.tmp").mkdir()  # not a file: kept
    assert sorted(p.name for p in leftovers(tmp_path)) == sorted(names[:2])
    assert remove_leftovers(tmp_path) == sorted(names[:2])
    assert sorted(os.listdir(tmp_path)) == sorted([*names[2:], ".dir.abcdefgh.tmp"])
    assert remove_leftovers(tmp_path / "missing") == []


def test_a_kill_inside_a_write_leaves_the_old_file_and_a_leftover(tmp_path):
    """The test hook stops the process inside its second write of out.bin, after the content
    is in the temporary file and before it replaces out.bin; then it is killed."""
    script = (
        "import sys; from gru._io import atomic_write\n"
        "for text in (b'one', b'two'):\n"
        "    atomic_write(sys.argv[1], lambda f: f.write(text))\n"
    )
    env = {**os.environ, STOP_IN_WRITE: "out.bin:2"}
    dest = tmp_path / "out.bin"
    victim = subprocess.Popen([sys.executable, "-c", script, str(dest)], env=env)
    _, status = os.waitpid(victim.pid, os.WUNTRACED)  # returns once it has stopped itself
    assert os.WIFSTOPPED(status)
    os.kill(victim.pid, signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    assert dest.read_bytes() == b"one"
    (left,) = leftovers(tmp_path)
    assert left.read_bytes() == b"two"
    assert remove_leftovers(tmp_path) == [left.name] and os.listdir(tmp_path) == ["out.bin"]
