"""Saying what the engine compiles while a first use waits for it, and compiling ahead of time.

Numba compiles a kernel the first time it is called with a new kind of argument, and caches
the result on disk (``cache=True``), so a machine compiles each kernel once. The first call
of a kind therefore waits seconds with an empty cache and milliseconds after. Every entry
point of the engine runs inside `first_use`: once a kind of call (its key) has returned in
this process it is a set lookup and nothing more; until then Numba's compile events are
watched, and a compile that keeps the call waiting over `PATIENCE` seconds is announced on
stderr while it runs, then timed:

    gru: compiling the CPU engine for training, float32 (once per machine, ~16 s)... done in 15.2 s

The estimate comes from `ESTIMATE_SECONDS`, measured with an empty cache on a 2-core
machine. `compile_all` compiles every kind ahead of time (``gru compile``), for images and CI.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

import numpy as np
from numba.core import event

__all__ = [
    "ESTIMATE_SECONDS",
    "PATIENCE",
    "TARGETS",
    "compile_all",
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
    "step": 4,
    "variants forward": 14,
    "variants forward sharded": 18,
    "variants backward": 16,
    "variants backward sharded": 20,
    "blas forward": 6,
    "blas backward": 8,
    "blas variants forward": 8,
    "blas variants backward": 10,
}
"""Seconds of CPU one kind of call spent compiling with an empty cache (float32; float64
takes about as long), measured on a 2-core machine: the ``~N s`` of the message."""

_ready: set[tuple] = set()  # the keys of the kinds of call that have returned in this process
_lock = threading.Lock()
_announce: list[bool] = [True]  # False while `compile_all` reports for itself


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


def ready(key: tuple) -> bool:
    """Whether a call of kind ``key`` (as in `first_use`) has returned in this process."""
    return key in _ready


# --- ahead of time ----------------------------------------------------------------------------

TARGETS = ("inference", "training", "variants", "blas", "streaming")
"""What `compile_all` compiles, each for float32 and float64: the plain layer without and
with gradients, the variants (layer norm, zoneout, recurrent dropout), the loops of large
layers on the bound BLAS, the streaming step. Both conventions, both directions, lengths and
every batch sharding are in each (they are arguments of the same compiled code)."""


def _layers(dtype, T: int, B: int, H: int, I: int = 4):
    rng = np.random.default_rng(0)

    def a(*shape):
        return rng.standard_normal(shape).astype(dtype) * 0.1

    return a(T, B, I), a(3 * H, I), a(3 * H, H), a(3 * H), a(3 * H)


def _inference(dtype) -> None:
    from gru.kernels import layer

    for T, B in ((100, 2), (100, 1), (2, 2)):  # sharded, one thread, one small call
        x, w_ih, w_hh, b_ih, b_hh = _layers(dtype, T, B, 64)
        layer.forward(x, w_ih, w_hh, b_ih, b_hh, None, save=False, threads=2)


def _training(dtype, H: int = 64) -> None:
    from gru.kernels import layer

    for B in (2, 1):  # sharded and one thread
        x, w_ih, w_hh, b_ih, b_hh = _layers(dtype, 100, B, H)
        out, h_n, saved = layer.forward(x, w_ih, w_hh, b_ih, b_hh, None, threads=2)
        args = (x, None, w_ih, w_hh, out, saved)
        layer.backward(out, h_n, *args, has_bias=True, threads=2)


def _variants(dtype, H: int = 64) -> None:
    from gru.kernels import layer

    for B in (2, 1):
        x, w_ih, w_hh, b_ih, b_hh = _layers(dtype, 100, B, H)
        a = x @ w_ih.T  # (T, B, 3H)
        ln = (np.ones(3 * H, dtype), np.zeros(3 * H, dtype))
        options = {"threads": 2, "mask": np.ones((B, H), dtype), "recurrent_ln": ln}
        out, h_n, state = layer.forward_variants(a, None, w_hh, b_ih, b_hh, **options)
        layer.backward_variants(out, h_n, None, w_hh, out, state, has_bias=True, threads=2)


def _blas(dtype) -> bool:
    from gru.kernels import blas
    from gru.kernels.recurrence import BLAS_MIN_HIDDEN

    if not blas.available():
        return False
    _training(dtype, BLAS_MIN_HIDDEN)
    _variants(dtype, BLAS_MIN_HIDDEN)
    return True


def _streaming(dtype) -> None:
    from gru.kernels import stream

    _, w_ih, w_hh, b_ih, b_hh = _layers(dtype, 1, 1, 8)
    stream.pack([(w_ih, w_hh, b_ih, b_hh)], 1, reset_after=True, dtype=dtype)


_COMPILE = {
    "inference": _inference,
    "training": _training,
    "variants": _variants,
    "blas": _blas,
    "streaming": _streaming,
}


def compile_all(
    only: list[str] | None = None, say: Callable[[str], None] = print
) -> dict[str, float]:
    """Compile every kernel the engine can use (or ``only`` some: names "TARGET-DTYPE" of
    `TARGETS` and float32 / float64, e.g. "inference-float32"), into Numba's cache, saying
    each and its seconds. Returns {name: seconds}. The large layers' loops need a BLAS:
    bind one first (`gru.kernels.blas.bind`; ``gru.ops.start_engine`` binds torch's)."""
    names = [f"{t}-{d}" for t in TARGETS for d in ("float32", "float64")]
    for name in only or []:
        if name not in names:
            raise ValueError(f"compile: unknown target {name!r}; valid: {', '.join(names)}")
    seconds: dict[str, float] = {}
    _announce[0] = False
    try:
        for name in only or names:
            target, dtype = name.rsplit("-", 1)
            listener = _Watch((name, dtype), target)
            start = time.perf_counter()
            with event.install_listener("numba:compile", listener):
                done = _COMPILE[target](np.dtype(dtype))
            seconds[name] = time.perf_counter() - start
            if done is False:
                say(f"{name}: skipped (no BLAS bound for the large layers)")
            elif listener.compiles:
                say(f"{name}: compiled in {seconds[name]:.1f} s")
            else:
                say(f"{name}: already compiled (loaded in {seconds[name]:.1f} s)")
    finally:
        _announce[0] = True
    return seconds
