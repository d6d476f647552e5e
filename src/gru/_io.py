"""Atomic file writes: a destination is either left as it was or replaced by a complete file.

Every file the package writes goes through `atomic_write`: the content is written to a temporary
file in the destination's folder, flushed and fsynced, then moved over the destination with
`os.replace` (atomic on POSIX and Windows). If writing fails, the temporary file is removed and
an existing destination is untouched, so a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write"]


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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
