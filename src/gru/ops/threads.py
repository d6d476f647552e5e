"""How many threads compute: torch's pool and the engine's, set together.

The engine shards a batch over at most ``torch.get_num_threads()`` threads
(`gru.kernels.recurrence.shard_count`, which `gru.ops.fused` hands that number), on Numba's
pool, which shares torch's OpenMP runtime; torch's own operations and the GEMMs around the
engine's loop run on torch's pool. `set_threads` sets both, so one number rules every
computation of the process: fewer threads than cores keep a busy machine from slowing every
step down while threads wait for each other.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numba
import torch

__all__ = ["set_threads", "threads"]


def set_threads(n: int) -> None:
    """Compute on ``n`` threads from now on: torch's and the engine's (Numba's pool is capped
    at the threads it started with, one per CPU)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_threads: n must be an int, got {type(n).__name__} {n!r}")
    if n < 1:
        raise ValueError(f"set_threads: n must be a positive int, got {n}")
    torch.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


@contextlib.contextmanager
def threads(n: int | None) -> Iterator[None]:
    """Compute on ``n`` threads inside the block (None: as before), restored after it."""
    if n is None:
        yield
        return
    before = torch.get_num_threads(), numba.get_num_threads()
    set_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        numba.set_num_threads(before[1])
