"""Atomic file writes: a destination is either left as it was or replaced by a complete file.

Every file the package writes goes through `atomic_write`: the content is written to a temporary
file ``.NAME.XXXXXXXX.tmp`` in the destination's folder, flushed and fsynced, then moved over the
destination with `os.replace` (atomic on POSIX and Windows). If writing fails, the temporary file
is removed and an existing destination is untouched, so a crash never leaves a half-written
checkpoint. A new file gets the mode a plain ``open(path, "w")`` would give it (0666 less the
umask); a replaced file keeps its mode.

`check_destination` says whether a command may write a file where it was asked to (never over
one of its inputs, nor over an existing file unless asked); `read_zip_member` reads a member of
a zip archive only when the size it declares is believable (no zip bombs), with a cap.

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

__all__ = [
    "STOP_IN_WRITE",
    "atomic_write",
    "check_destination",
    "check_zip_member",
    "leftovers",
    "read_zip_member",
    "remove_leftovers",
]

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
    try:
        fd, tmp = _create_temporary(path)
    except OSError as error:  # name the destination, not the temporary file
        raise type(error)(error.errno, f"cannot write {str(path)!r}: {error.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            _keep_mode(path, file.fileno())
            os.fsync(file.fileno())
            _stop_if_asked(path.name)
        try:
            os.replace(tmp, path)
        except OSError as error:
            raise type(error)(
                error.errno, f"cannot write {str(path)!r}: {error.strerror}"
            ) from None
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


# --- what a command may write, and what it may read from an archive ------------------------------


def check_destination(
    path: str | os.PathLike,
    name: str,
    *,
    inputs: dict[str, object] | None = None,
    overwrite: bool = False,
    replace: str = "overwrite=True",
    what: str = "file",
) -> Path:
    """``path`` as a `Path` if a command may write the file there; else an error naming it as
    ``name`` (the argument that gave it: ``"--output"``, ``"explain: out"``).

    A destination is refused when it is one of ``inputs`` ({how an input is named: its path},
    other values ignored; compared resolved, and as the same file where both exist), whatever
    ``overwrite`` says;
    when it exists and ``overwrite`` is false (``replace`` names the way to ask: ``--overwrite``
    or ``overwrite=True``); and when it cannot be a ``what``: a folder, or a folder that does
    not exist, is a file or is not writable. Nothing is read or written.
    """
    path = Path(path)
    for label, given in (inputs or {}).items():
        if isinstance(given, str | os.PathLike) and _same_file(path, Path(given)):
            raise ValueError(
                f"{name}: {str(path)!r} is {label} {str(given)!r}, which it would overwrite; "
                "a command never replaces its input: write somewhere else"
            )
    if path.is_dir():
        raise IsADirectoryError(f"{name}: {str(path)!r} is a folder; name the {what} to write")
    folder = path.parent
    if not folder.is_dir():
        found = next((p for p in (folder, *folder.parents) if p.exists()), None)
        if found is not None and not found.is_dir():
            raise NotADirectoryError(
                f"{name}: {str(path)!r} cannot be written: {str(found)!r} is a file, not a folder"
            )
        raise FileNotFoundError(f"{name}: the folder of {str(path)!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(
            f"{name}: cannot write {str(path)!r}: its folder is not writable (permission denied)"
        )
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{name}: {str(path)!r} already exists; choose another name, or replace it with "
            f"{replace}"
        )
    return path


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name the same file: the same resolved path, or (both existing)
    the same file under two names (a link)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


# A member of a zip archive is read only when what it declares is believable: at most
# ZIP_MAX_RATIO times its compressed size (deflate reaches about 1,000 on zeros, real weights
# and data 1 to 10) once it is over ZIP_SMALL bytes, and at most the caller's limit.
ZIP_MAX_RATIO = 100
ZIP_SMALL = 1 << 20


def check_zip_member(info, where: str, limit: int | None = None) -> None:
    """ValueError naming the archive (``where``) and the member of the `zipfile.ZipInfo`
    ``info`` when it declares more than ``limit`` bytes or inflates more than
    `ZIP_MAX_RATIO` times (a zip bomb), before anything of it is read."""
    size, packed = info.file_size, info.compress_size
    if limit is not None and size > limit:
        raise ValueError(
            f"{where}: its member {info.filename!r} declares {size:,} bytes, more than the "
            f"{limit:,} such a member may hold; the file is not what it claims to be"
        )
    if size > ZIP_SMALL and size > ZIP_MAX_RATIO * max(packed, 1):
        raise ValueError(
            f"{where}: its member {info.filename!r} would inflate {packed:,} bytes to {size:,} "
            f"({size // max(packed, 1):,} times, more than {ZIP_MAX_RATIO}): refused as a zip "
            "bomb; nothing of it was read"
        )


def read_zip_member(archive, member: str, where: str, limit: int | None = None) -> bytes:
    """The bytes of ``member`` of the open `zipfile.ZipFile` ``archive``, checked first
    (`check_zip_member`) and read with a cap of the size it declares."""
    info = archive.getinfo(member)
    check_zip_member(info, where, limit)
    with archive.open(info) as file:
        data = file.read(info.file_size + 1)
    if len(data) != info.file_size:
        raise ValueError(
            f"{where}: its member {member!r} holds {len(data):,} bytes, not the "
            f"{info.file_size:,} it declares"
        )
    return data
