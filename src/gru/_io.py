"""Atomic file writes: a destination is either left as it was or replaced by a complete file.

Every file the package writes goes through `atomic_write`: the content is written to a temporary
file ``.NAME.XXXXXXXX.tmp`` in the destination's folder, flushed and fsynced, then moved over the
destination with `os.replace` (atomic on POSIX and Windows). If writing fails, the temporary file
is removed and an existing destination is untouched, so a crash never leaves a half-written
checkpoint. A new file gets the mode a plain ``open(path, "w")`` would give it (0666 less the
umask); a replaced file keeps its mode.

A process killed inside a write (``kill -9``, a power cut) cannot remove its temporary file:
`leftovers` finds such files of a folder and `remove_leftovers` deletes them, and only them.

Test hook: with the environment variable GRU_TEST_STOP_IN_WRITE set to ``NAME:N``, the process
stops itself (SIGSTOP) inside its N-th write of a file named NAME, after the content is in the
temporary file and before it replaces NAME, so that a test can kill it there. Nothing else
reads it; leave it unset.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import stat
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["STOP_IN_WRITE", "atomic_write", "leftovers", "remove_leftovers"]

STOP_IN_WRITE = "GRU_TEST_STOP_IN_WRITE"
"""The test hook's environment variable (see the module's docstring)."""

# ".NAME.XXXXXXXX.tmp": 8 hex digits here, 8 of [a-z0-9_] from tempfile in earlier versions.
_TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")
_writes: Counter[str] = Counter()  # writes per file name in this process, for the test hook


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(file)`` on a temporary binary file, then move it to ``path`` atomically.

    The temporary file lives in ``path``'s folder (``os.replace`` cannot cross file systems)
    and is removed if ``write`` raises, which re-raises. Returns ``path`` as a `Path`.
    Raises FileNotFoundError when the destination's folder does not exist.
    """
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"atomic_write: the folder of {str(path)!r} does not exist")
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            _keep_mode(path, file.fileno())
            os.fsync(file.fileno())
            _stop_if_asked(path.name)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new file ``.NAME.XXXXXXXX.tmp`` beside ``path``, opened for writing, created with mode
    0666 so that the umask applies as it does to ``open`` (`tempfile.mkstemp` gives 0600)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


def _keep_mode(path: Path, fd: int) -> None:
    """Give the temporary file ``fd`` the mode of the destination it replaces, if any."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)


def _stop_if_asked(name: str) -> None:
    """The test hook: stop this process inside the N-th write of ``name`` (module docstring)."""
    wanted = os.environ.get(STOP_IN_WRITE)
    if not wanted:
        return
    _writes[name] += 1
    target, _, count = wanted.rpartition(":")
    if target == name and count == str(_writes[name]):
        os.kill(os.getpid(), signal.SIGSTOP)


def leftovers(folder: str | os.PathLike) -> list[Path]:
    """The temporary files `atomic_write` left in ``folder`` when its process was killed
    (files named ``.NAME.XXXXXXXX.tmp``), in name order; none if ``folder`` does not exist."""
    try:
        entries = sorted(Path(folder).iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [p for p in entries if _TEMPORARY.fullmatch(p.name) and p.is_file()]


def remove_leftovers(folder: str | os.PathLike) -> list[str]:
    """Delete the `leftovers` of ``folder``; return their names. Call it only where no other
    process writes into ``folder`` at the same time (a run folder, from its one writer)."""
    removed = []
    for path in leftovers(folder):
        path.unlink(missing_ok=True)
        removed.append(path.name)
    return removed
