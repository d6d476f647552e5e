"""Saying what the engine compiles while a first use waits for it, and compiling ahead of time.

Numba compiles a kernel the first time it is called with a new kind of argument, and caches
the result on disk (``cache=True``), so a machine compiles each kernel once. The first call
of a kind therefore waits seconds with an empty cache and milliseconds after. Every entry
point of the engine is called through `first_call`: once a kind of call (its key) has returned
in this process it is a set lookup and the call; until then the call runs on a thread of its
own while Numba's compile events are watched, and a compile that keeps the call waiting over
`PATIENCE` seconds is announced on stderr while it runs, then timed:

    gru: compiling the CPU engine for training, float32 (once per machine, ~16 s)... done in 15.2 s

The estimate comes from `ESTIMATE_SECONDS`, measured with an empty cache on a 2-core
machine. `gru.kernels.precompile` compiles every kind ahead of time (``gru compile``).

Why a thread of its own: Numba's compiler recurses deeply (it deep-copies the IR of every
inlined function), and CPython 3.11 keeps its frames in 16 KiB chunks that it maps and unmaps
as a recursion crosses a chunk's edge. Called from deep inside a training run, the first
compile of the forward loop crossed an edge 2.4 million times: 2.4 million mmap/munmap pairs,
10 s of system time, 26 s for a compile that takes 13 s from a shallow stack. A new thread
starts with a stack of its own, so every compile starts from the same shallow depth.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator

import numba
import numpy as np
from numba.core import event

__all__ = [
    "ESTIMATE_SECONDS",
    "PATIENCE",
    "counted",
    "first_call",
    "first_use",
    "ready",
]

PATIENCE = 1.0
"""Seconds a compile may keep a first call waiting before it is announced."""

ESTIMATE_SECONDS = {
    "forward": 11,
    "forward sharded": 15,
    "backward": 12,
    "backward sharded": 16,
    "small": 11,
    "tiles": 8,
    "tiles backward": 14,
    "step": 4,
    "audio": 1,
    "variants forward": 14,
    "variants forward sharded": 18,
    "variants backward": 16,
    "variants backward sharded": 20,
    "blas forward": 6,
    "blas backward": 8,
    "packed forward": 6,
    "packed forward sharded": 7,
    "packed backward": 8,
    "packed backward sharded": 9,
    "packed variants forward": 8,
    "packed variants forward sharded": 9,
    "packed variants backward": 10,
    "packed variants backward sharded": 11,
    "blas variants forward": 8,
    "blas variants backward": 10,
}
"""Seconds of CPU one kind of call spent compiling with an empty cache (float32; float64
takes about as long), measured on a 2-core machine: the ``~N s`` of the message."""

_ready: set[tuple] = set()  # the keys of the kinds of call that have returned in this process
_lock = threading.Lock()
_announce: list[bool] = [True]  # False while `counted` (the caller reports for itself)


class _Nothing:
    """The context of a kind of call that has run before: nothing to watch."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc) -> None:
        return None


_NOTHING = _Nothing()


class _Watch(event.Listener):
    """The first call of a kind: counts Numba's compiles while it runs and announces them once
    they have kept it waiting `PATIENCE` seconds."""

    def __init__(self, key: tuple, purpose: str) -> None:
        self.key, self.purpose = key, purpose
        self.compiles = 0
        self.started: float | None = None
        self.announced = False
        self.timer: threading.Timer | None = None

    def on_start(self, ev) -> None:
        if self.started is None:
            self.started = time.perf_counter()
            if _announce[0]:
                self.timer = threading.Timer(PATIENCE, self._say)
                self.timer.daemon = True
                self.timer.start()
        self.compiles += 1

    def on_end(self, ev) -> None:
        return None

    def _say(self) -> None:
        path, dtype = self.key[0], self.key[-1]
        estimate = ESTIMATE_SECONDS.get(path)
        about = f", ~{estimate} s" if estimate else ""
        with _lock:
            if self.announced is None:  # the call ended first
                return
            print(
                f"gru: compiling the CPU engine for {self.purpose}, {np.dtype(dtype).name} "
                f"(once per machine{about})...",
                end="",
                file=sys.stderr,
                flush=True,
            )
            self.announced = True

    def __enter__(self) -> _Watch:
        event.register("numba:compile", self)
        return self

    def __exit__(self, kind, error, tb) -> None:
        event.unregister("numba:compile", self)
        if self.timer is not None:
            self.timer.cancel()
        with _lock:
            if self.announced:
                seconds = time.perf_counter() - self.started
                print(f" done in {seconds:.1f} s", file=sys.stderr, flush=True)
            self.announced = None
        if kind is None:
            _ready.add(self.key)


def first_use(key: tuple, purpose: str) -> _Watch | _Nothing:
    """The context to run an engine call of kind ``key`` in: (what it compiles: a name of
    `ESTIMATE_SECONDS`, ..., its dtype last). ``purpose`` ("training", "inference", ...) is
    what the message says the compile is for. Costs a set lookup once the kind has run."""
    if key in _ready:
        return _NOTHING
    return _Watch(key, purpose)


def first_call(key: tuple, purpose: str, kernel, *args):
    """``kernel(*args)``, an engine call of kind ``key`` (as in `first_use`). Once that kind has
    returned in this process: a set lookup and the call. Before: the call runs inside
    `first_use`'s watch, on a thread of its own (from a shallow stack; see the module's
    docstring) with the caller's count of Numba threads, and its result or error comes back."""
    if key in _ready:
        return kernel(*args)
    with first_use(key, purpose):
        return _on_own_thread(kernel, args)


def _on_own_thread(kernel, args):
    threads = numba.get_num_threads()  # a per-thread setting: the new thread starts at all
    outcome: list = []

    def run() -> None:
        try:
            numba.set_num_threads(threads)
            outcome.append((True, kernel(*args)))
        except BaseException as error:  # re-raised in the caller's thread
            outcome.append((False, error))

    thread = threading.Thread(target=run, name="gru-first-call", daemon=True)
    thread.start()
    thread.join()
    returned, value = outcome[0]
    if not returned:
        raise value
    return value


def ready(key: tuple) -> bool:
    """Whether a call of kind ``key`` (as in `first_use`) has returned in this process."""
    return key in _ready


class _Count(event.Listener):
    def __init__(self) -> None:
        self.compiles = 0

    def on_start(self, ev) -> None:
        self.compiles += 1

    def on_end(self, ev) -> None:
        return None


@contextlib.contextmanager
def counted() -> Iterator[_Count]:
    """Inside the block no compile is announced (the caller reports for itself); the object
    it gives counts Numba's compiles there (``.compiles``)."""
    count = _Count()
    _announce[0] = False
    try:
        with event.install_listener("numba:compile", count):
            yield count
    finally:
        _announce[0] = True
