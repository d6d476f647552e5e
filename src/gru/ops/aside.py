"""Compiling the engine aside: a cold first call of a plain layer does not wait for it.

With an empty compile cache the engine's kernels take tens of seconds of CPU to compile
(`gru.kernels.compiling`). In the default mode, "aside", the first call of a plain float32 or
float64 layer (backend "auto", no variants, a width the row kernels take) looks for the
kernels of its kind in Numba's cache: "inference" without gradients, "training" with them
(the forward that saves its gates and the backward). Found, they load (under a second) and the
call runs on the engine, as every later one does. Not found, the process starts ``gru compile
--only TARGET-DTYPE`` in a process of its own (at a lower priority: niceness 10, so that it
takes the cores the call's work leaves; for "training", two processes side by side, one for
the forward, whose kernels are inference's, and one for the backward loops the call will use:
the row kernels' or, in float32, the packed loops'), says so once on
stderr, and computes with composed torch operations (the same equations, `gru.ops.composed`;
autograd through them) until those processes have filled the cache; the next call after
they end loads the kernels and runs on the engine. The compiling processes outlive a short
script, so the next process finds the cache warm. A compile that fails leaves the process to
compile in place, as in "wait".

In mode "wait" a first call compiles in place and waits, saying so. The command line, every
training run (`gru.training.fit` warms up before its clocks start, and a run's numbers must not
depend on when a compile ends: `waiting`), the benchmarks and the tests use it. The mode
comes from the environment variable ``GRU_COMPILE`` ("aside" or "wait") and `set_mode`.
There the first call with gradients of a process whose cache lacks the backward loops it
will call starts ``gru compile --only backward-DTYPE`` (the row kernels'),
``packed-backward-float32`` (`gru.kernels.packed`'s) or ``tiles-backward-float32``
(`gru.kernels.tiles_training`'s), chosen from the call's batch, width and threads, in a second
process and compiles the forward in place meanwhile: Numba compiles one
kernel at a time in a process, so the two halves of training compile side by side on two
cores (a cold `gru train sentiment` waited 27 s for them one after the other). The first
backward waits for that process (`backward_ready`), then loads what it compiled.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time

from numba.core import event

from gru.kernels.compiling import PATIENCE
from gru.kernels.precompile import compile_all
from gru.ops.engine import start_engine

__all__ = [
    "BACKWARDS",
    "MODES",
    "backward_ready",
    "engine_ready",
    "finish",
    "mode",
    "set_mode",
    "state",
    "waiting",
]

MODES = ("aside", "wait")
_ENV = "GRU_COMPILE"

_mode: list[str] = []
_ready: set[tuple[str, str]] = set()  # (target, dtype) whose kernels this process has loaded
_jobs: dict[tuple[str, str], list[subprocess.Popen]] = {}  # the processes compiling aside
_lock = threading.Lock()


def mode() -> str:
    """The compile mode of this process: `set_mode`'s, else ``GRU_COMPILE``'s, else "aside"."""
    if not _mode:
        chosen = os.environ.get(_ENV, "aside").strip().lower() or "aside"
        if chosen not in MODES:
            raise ValueError(f"{_ENV} must be one of {', '.join(MODES)}, got {chosen!r}")
        _mode.append(chosen)
    return _mode[0]


def set_mode(chosen: str) -> None:
    """Set the compile mode of this process ("aside" or "wait")."""
    if chosen not in MODES:
        raise ValueError(f"set_mode: mode must be one of {', '.join(MODES)}, got {chosen!r}")
    _mode[:] = [chosen]


@contextlib.contextmanager
def waiting():
    """Mode "wait" inside the block, then the mode as it was: `gru.training.fit` trains in it,
    so that a run's numbers never depend on when a compile ends."""
    before = mode()
    set_mode("wait")
    try:
        yield
    finally:
        set_mode(before)


class _Cold(Exception):
    """Raised inside Numba's compile event: the kernel is not in the cache."""


class _StopAtCompile(event.Listener):
    def on_start(self, ev) -> None:
        raise _Cold

    def on_end(self, ev) -> None:
        return None


def _load(kind: tuple[str, str]) -> bool:
    """Load the kernels of ``kind`` (target, dtype) from the cache; False (nothing compiled,
    nothing loaded half) when a kernel is not there."""
    try:
        with event.install_listener("numba:compile", _StopAtCompile()):
            compile_all(["-".join(kind)], say=lambda line: None)
    except _Cold:
        return False
    return True


def _lower_priority() -> None:
    """In the compiling process, before it starts: yield the cores to the work it waits for."""
    os.nice(10)


def _spawn(kind: tuple[str, str], lower: bool) -> subprocess.Popen | None:
    command = [sys.executable, "-m", "gru", "compile", "--only", "-".join(kind)]
    try:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # it finishes the cache even if this process ends first
            preexec_fn=_lower_priority if lower and hasattr(os, "nice") else None,
        )
    except OSError:
        return None


BACKWARDS = ("backward", "packed-backward", "tiles-backward")
"""The targets of `gru.kernels.precompile` that hold a training call's backward loops: the row
kernels', the packed loops', the tiles'."""


def _parts(kind: tuple[str, str], backward: str) -> list[tuple[str, str]]:
    """The targets that compile ``kind`` (``backward`` as in `engine_ready`): for "training",
    inference's (the forward: save is an argument of the same kernels) and the backward loops
    the call will use."""
    target, dtype = kind
    if target != "training":
        return [kind]
    return [("inference", dtype), (backward, dtype)]


def _start(kind: tuple[str, str], parts: list) -> list[subprocess.Popen] | None:
    """The processes that compile ``parts`` of ``kind`` aside, started (or already running),
    said once."""
    parts = [part for part in parts if part not in _ready]
    jobs = []
    for part in parts:  # side by side: Numba compiles one kernel at a time in a process
        running = [job for job in _jobs.get(part, []) if job.poll() is None]
        if not running:
            job = _spawn(part, lower=True)
            if job is None:
                return None
            running = [job]
        jobs += running
    if not jobs:
        return None
    print(
        f"gru: compiling the CPU engine for {kind[0]}, {kind[1]}, in the background (once "
        "per machine, about a minute); until it is ready this process computes with torch "
        "operations",
        file=sys.stderr,
        flush=True,
    )
    return jobs


def engine_ready(dtype: str, target: str = "inference", backward: str = "backward") -> bool:
    """Whether a call of ``dtype`` ("float32" or "float64") for ``target`` ("inference", or
    "training" for a call with gradients) should run on the engine now: always in mode "wait";
    in mode "aside" once its kernels are loaded. Costs a set lookup once they are; until then,
    a poll of the compiling process. ``backward``: the target of `BACKWARDS` whose loops the
    call's backward runs, what a training call in mode "wait" compiles beside."""
    kind = (target, dtype)
    if kind in _ready:
        return True
    if mode() == "wait":
        if target == "training":
            _backward_beside((backward, dtype))
            _ready.add(kind)  # later calls: the lookup above (another loop compiles in place)
        return True
    with _lock:
        if kind in _ready:
            return True
        start_engine()
        jobs = _jobs.get(kind)
        if jobs is not None and any(job.poll() is None for job in jobs):
            return False  # still compiling
        parts = _parts(kind, backward)
        if jobs is not None:  # they ended: what they compiled loads; if anything failed, wait
            if any(job.returncode != 0 for job in jobs) or not all(map(_load, parts)):
                _ready.add(kind)  # the engine compiles in place on the next call, saying so
                return True
        elif not all(map(_load, parts)):
            jobs = _start(kind, parts)
            if jobs is not None:
                _jobs[kind] = jobs
                return False
        _ready.add(kind)
        return True


def _backward_beside(kind: tuple[str, str]) -> None:
    """Mode "wait", a first call with gradients: the backward loops it will call (``kind``:
    one of `BACKWARDS`, and the dtype) load from the cache, or
    start compiling in a second process (at the same priority: this one waits for them)."""
    with _lock:
        if kind in _ready or kind in _jobs:
            return
        start_engine()
        if not _load(kind):
            job = _spawn(kind, lower=False)
            if job is not None:
                _jobs[kind] = [job]
                return
        _ready.add(kind)  # loaded, or the backward compiles in place when first called


def backward_ready(dtype: str) -> None:
    """Before a backward of the engine: wait for the backward loops a second process is
    compiling (`_backward_beside`), saying so when that takes over a second, then load them.
    A set lookup once they are loaded, or when none is compiling."""
    for kind in ((backward, dtype) for backward in BACKWARDS):
        if kind not in _ready and kind in _jobs:
            _wait_backward(kind)


def _wait_backward(kind: tuple[str, str]) -> None:
    dtype = kind[1]
    with _lock:
        if kind in _ready:
            return
        (job,) = _jobs[kind]
        start = time.perf_counter()
        try:
            job.wait(PATIENCE)
        except subprocess.TimeoutExpired:
            print(
                f"gru: compiling the CPU engine for training, {dtype} (its backward, in a "
                "second process)...",
                end="",
                file=sys.stderr,
                flush=True,
            )
            job.wait()
            print(f" done in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
        if job.returncode == 0:
            _load(kind)  # a kernel it did not leave compiles in place on its first call
        _ready.add(kind)


def state(dtype: str, target: str = "inference") -> str:
    """ "ready", "compiling" (aside) or "unknown" (no call of that kind asked yet)."""
    kind = (target, dtype)
    if kind in _ready:
        return "ready"
    return "compiling" if kind in _jobs else "unknown"


def finish(timeout: float | None = None) -> bool:
    """Wait for this process's compiles aside to end (at most ``timeout`` seconds each);
    whether none is still running. A script that must leave a warm cache behind calls it."""
    for job in [job for jobs in list(_jobs.values()) for job in jobs]:
        try:
            job.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
    return True
