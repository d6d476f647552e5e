"""Compiling the whole engine ahead of time, for images and CI (``gru compile``).

Each target runs the engine's entry points once on tiny arrays, in the ways that reach each
compiled loop, so Numba compiles them into its cache (`gru.kernels.compiling`); a machine
with that cache never waits for a compile.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from gru.kernels import audio, bf16, blas, layer, packed, stream
from gru.kernels.compiling import counted
from gru.kernels.recurrence import BLAS_MIN_HIDDEN

__all__ = ["TARGETS", "compile_all"]


TARGETS = (
    "inference",
    "training",
    "backward",
    "packed-backward",
    "tiles-backward",
    "variants",
    "blas",
    "bf16",
    "streaming",
)
"""What `compile_all` compiles, each for float32 and float64: the plain layer without and
with gradients, the row kernels' backward loops alone, the packed backward loops alone and
the tiles' backward alone (float32; parts of "training": a training run compiles the ones its
first backward calls in a second process while it compiles the forward, `gru.ops.aside`), the
variants (layer
norm, zoneout, recurrent dropout), the loops of large layers on the bound BLAS, bfloat16
products (float32 only, where a bfloat16 GEMM is bound), the streaming step (and streaming
speech's front end). Both conventions, both directions, lengths and every batch sharding are
in each (they are arguments of the same compiled code)."""


def _layers(dtype, T: int, B: int, H: int, I: int = 4):
    rng = np.random.default_rng(0)

    def a(*shape):
        return rng.standard_normal(shape).astype(dtype) * 0.1

    return a(T, B, I), a(3 * H, I), a(3 * H, H), a(3 * H), a(3 * H)


# (batch, threads): the rows sharded and on one thread; float32's packed loop (at H = 64)
# sharded and on one thread (a loop that a parallel loop calls is cached apart from the same
# loop called alone)
_CASES = ((2, 2), (1, 2), (4, 2), (4, 1))


def _inference(dtype) -> None:
    for T, B, threads in ((2, 2, 2), *((100, B, n) for B, n in _CASES)):
        x, w_ih, w_hh, b_ih, b_hh = _layers(dtype, T, B, 64)  # T 2: one small call
        layer.forward(x, w_ih, w_hh, b_ih, b_hh, None, save=False, threads=threads)
    x, w_ih, w_hh, b_ih, b_hh = _layers(dtype, 5, 32, 20)  # S1: float32's tiles
    layer.forward(x, w_ih, w_hh, b_ih, b_hh, None, save=False, threads=2)


def _training(dtype, H: int = 64, cases: tuple[tuple[int, int], ...] = _CASES) -> None:
    for B, threads in cases:
        x, w_ih, w_hh, b_ih, b_hh = _layers(dtype, 100, B, H)
        out, h_n, saved = layer.forward(x, w_ih, w_hh, b_ih, b_hh, None, threads=threads)
        args = (x, None, w_ih, w_hh, out, saved)
        layer.backward(out, h_n, *args, has_bias=True, threads=threads)


def _plain_training(dtype) -> None:
    _training(dtype)
    _tiles_backward(dtype)  # under 64 units (their forward is inference's S1 kernel)


def _backward(dtype, H: int = 64, cases: tuple[tuple[int, int], ...] = _CASES[:2]) -> None:
    """The row kernels' backward loops alone (or those of ``cases``), on made-up values of
    what the forward keeps (only their types and shapes matter to the compile)."""
    rng = np.random.default_rng(0)
    for B, threads in cases:
        x, w_ih, w_hh, _, _ = _layers(dtype, 100, B, H)
        out = np.tanh(rng.standard_normal((100, B, H))).astype(dtype)
        saved = rng.random((100, B, 4 * H)).astype(dtype)  # reset after: [r | z | n | W_hn h]
        args = (x, None, w_ih, w_hh, out, saved)
        layer.backward(out, out[-1], *args, has_bias=True, threads=threads)


def _packed_backward(dtype) -> bool:
    """float32's packed backward loops alone, sharded and on one thread."""
    if not packed.available() or dtype != np.float32:
        return False
    _backward(dtype, 64, _CASES[2:])
    return True


def _tiles_backward(dtype) -> bool:
    """float32's tiled backward (`gru.kernels.tiles_training`) alone, sharded and on one
    thread."""
    if dtype != np.float32:
        return False
    _backward(dtype, 32, _CASES[2:3])  # shards are an argument: one case compiles them all
    return True


def _variants(dtype, H: int = 64, cases: tuple[tuple[int, int], ...] = _CASES[:2]) -> None:
    for B, threads in cases:
        x, w_ih, w_hh, b_ih, b_hh = _layers(dtype, 100, B, H)
        a = x @ w_ih.T  # (T, B, 3H)
        ln = (np.ones(3 * H, dtype), np.zeros(3 * H, dtype))
        options = {"threads": threads, "mask": np.ones((B, H), dtype), "recurrent_ln": ln}
        out, h_n, state = layer.forward_variants(a, None, w_hh, b_ih, b_hh, **options)
        args = (out, h_n, None, w_hh, out, state)
        layer.backward_variants(*args, has_bias=True, threads=threads)


def _blas(dtype) -> bool:
    if not blas.available():
        return False
    _training(dtype, BLAS_MIN_HIDDEN, ((2, 2), (1, 2)))  # unpacked (float32 packs from 3 rows)
    _variants(dtype, BLAS_MIN_HIDDEN, _CASES)  # float32 packs from 3 rows, on the BLAS widths
    return True


def _bf16(dtype) -> bool:
    """Layers with bfloat16 products (float32 gates), where a bfloat16 GEMM is bound."""
    if not bf16.available():
        return False
    H = BLAS_MIN_HIDDEN
    x, w_ih, w_hh, b_ih, b_hh = _layers(np.float32, 4, 2, H)
    bf16.forward(bf16.to_bf16(x), bf16.to_bf16(w_ih), bf16.to_bf16(w_hh), b_ih, b_hh, None)
    return True


def _streaming(dtype) -> None:
    _, w_ih, w_hh, b_ih, b_hh = _layers(dtype, 1, 1, 8)
    for reset_after in (True, False):
        stream.pack([(w_ih, w_hh, b_ih, b_hh)], 1, reset_after=reset_after, dtype=dtype)
    audio.prepare()  # the front end of streaming speech (float32 whatever the layer's dtype)


_SKIPPED = {
    "blas": "no BLAS bound for the large layers",
    "packed-backward": "no packed GEMM bound",
    "tiles-backward": "the tiles are float32's",
    "bf16": "no bfloat16 GEMM bound",
}

_COMPILE = {
    "inference": _inference,
    "training": _plain_training,
    "backward": _backward,
    "packed-backward": _packed_backward,
    "tiles-backward": _tiles_backward,
    "variants": _variants,
    "blas": _blas,
    "bf16": _bf16,
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
    names.remove("bf16-float64")  # bfloat16 layers compute in float32
    names.remove("packed-backward-float64")  # torch's BLAS packs float32 only
    names.remove("tiles-backward-float64")  # the tiles are float32's
    for name in only or []:
        if name not in names:
            raise ValueError(f"compile: unknown target {name!r}; valid: {', '.join(names)}")
    seconds: dict[str, float] = {}
    for name in only or names:
        target, dtype = name.rsplit("-", 1)
        start = time.perf_counter()
        with counted() as count:
            done = _COMPILE[target](np.dtype(dtype))
        seconds[name] = time.perf_counter() - start
        if done is False:
            say(f"{name}: skipped ({_SKIPPED[target]})")
        elif count.compiles:
            say(f"{name}: compiled in {seconds[name]:.1f} s")
        else:
            say(f"{name}: already compiled (loaded in {seconds[name]:.1f} s)")
    return seconds
