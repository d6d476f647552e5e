"""How many threads compute: torch's pool, the engine's and NumPy's BLAS, set together.

The engine shards a batch over at most ``torch.get_num_threads()`` threads
(`gru.kernels.recurrence.shard_count`, which `gru.ops.fused` hands that number), on Numba's
OpenMP pool (the system's libgomp: torch's wheel carries its own copy, so the two pools are
apart); torch's own operations and the GEMMs around the engine's loop run on torch's pool.
`set_threads` sets them all, so one number rules every computation of the process: fewer
threads than cores keep a busy machine from slowing every step down while threads wait for
each other.

NumPy's BLAS pool (the small products of audio features, for one) is capped at the same
number (threadpoolctl).

`default_threads` is what a command computes on when it is given no ``--threads``: the
environment's GRU_THREADS when set (a number, or "all"), else torch's count (one per core,
or OMP_NUM_THREADS) less the CPUs other programs keep busy at that moment (`busy_cpus`), at
least one. Every step of the
engine's time loop waits for all its threads, so a thread that shares its core with another
program's makes each step wait for the scheduler: on 2 cores with one other busy process, two
threads were 20× slower than one (see benchmarks/bench_threads.py).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Iterator

import numba
import threadpoolctl
import torch

__all__ = ["busy_cpus", "default_threads", "set_threads", "threads"]


def set_threads(n: int) -> None:
    """Compute on ``n`` threads from now on: torch's and the engine's (Numba's pool is capped
    at the threads it started with, one per CPU)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_threads: n must be an int, got {type(n).__name__} {n!r}")
    if n < 1:
        raise ValueError(f"set_threads: n must be a positive int, got {n}")
    # Numba's pool starts first: where torch's pool had started on every core and was set to
    # fewer before Numba's pool started, a one-thread training step of S2's size took 36-48 ms
    # instead of 8-10 ms (torch 2.13, OpenMP threading layer, a busy 2-core machine).
    numba.get_num_threads()
    torch.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    # NumPy's BLAS (OpenBLAS) keeps its own pool: streaming speech on one thread spent 10% more
    # time with it at two threads, waking a second thread for every frame's small product.
    threadpoolctl.threadpool_limits(n, user_api="blas")


@contextlib.contextmanager
def threads(n: int | None) -> Iterator[None]:
    """Compute on ``n`` threads inside the block (None: as before), restored after it."""
    if n is None:
        yield
        return
    before = torch.get_num_threads(), numba.get_num_threads()
    blas = threadpoolctl.threadpool_limits(None, user_api="blas")  # records NumPy's BLAS limits
    set_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        numba.set_num_threads(before[1])
        blas.restore_original_limits()


def busy_cpus(samples: int = 5, pause: float = 0.002) -> int:
    """How many CPUs other programs keep busy now: Linux's runnable tasks (the fourth field of
    /proc/loadavg) less this process's own running threads, the median of ``samples`` looks
    ``pause`` seconds apart; 0 where /proc cannot tell (another system)."""
    seen = []
    for i in range(samples):
        try:
            with open("/proc/loadavg") as f:
                runnable = int(f.read().split()[3].split("/")[0])
            own = sum(_running(task) for task in os.listdir("/proc/self/task"))
        except (OSError, ValueError, IndexError):
            return 0
        seen.append(max(runnable - max(own, 1), 0))
        if i + 1 < samples:
            time.sleep(pause)
    return int(statistics.median_low(seen))


def _running(task: str) -> bool:
    """Whether thread ``task`` of this process is running (state R in its stat line)."""
    try:
        with open(f"/proc/self/task/{task}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "R"
    except (OSError, IndexError):
        return False


def default_threads() -> int:
    """The threads a command computes on without ``--threads``: GRU_THREADS when set (a
    positive int, or "all": torch's count whatever else runs), else torch's thread count less
    `busy_cpus`, at least 1."""
    given = os.environ.get("GRU_THREADS")
    if given == "all":
        return torch.get_num_threads()
    if given is not None:
        if not given.isdigit() or int(given) < 1:
            raise ValueError(f'GRU_THREADS must be a positive int or "all", got {given!r}')
        return int(given)
    return max(1, min(torch.get_num_threads(), _cpus() - busy_cpus()))


def _cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
