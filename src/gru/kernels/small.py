"""Layers without gradients at the row kernels' widths: projection and recurrence in one
compiled call.

For a short sequence of a small layer (S1: T 5, B 32, I 10, H 20) the GEMM of the input
projection and the dozen array calls around it cost more than the work; one compiled call
that computes the projection in its own loop and then runs the rows is about twice as fast.
In float32 a batch of four rows or more at those widths (under `gru.kernels.packed.MIN_HIDDEN`
units) goes this way at any length: in shards, each projecting its own rows and running them
step by step on register tiles (`gru.kernels.tiles`). Measured on a 2-core Xeon (2026-12-07,
this call's time before over after, 2 threads / 1 thread), against the shards that ran each
step's products on MKL's packed GEMM before: I/H/B/T 32/32/32/100 (S2) 1.22 / 1.12; 10/20/32/5
(S1) 1.05 / 1.33; 14/50/32/120 (S3) 1.11 / 1.00; 32/48/32/100 1.35 / 1.18; 32/32/8/100 1.86 /
1.43. Those shards were themselves 1.2–3.3× faster than the projection's GEMM followed by the
recurrence's own call.
"""

from __future__ import annotations

import numpy as np
from numba import carray, njit

from gru.kernels import rows, tiles
from gru.kernels.compiling import first_call
from gru.kernels.padding import LANES
from gru.kernels.products import ENTRY, STACK_HIDDEN, TWO_ROWS, TWO_ROWS_3H, matvec_t, scratch
from gru.kernels.recurrence import cpu_count, lengths_array, shard_count, uses_blas

__all__ = ["SMALL_PROJECTION", "call_arrays", "forward_small", "is_small"]

SMALL_PROJECTION = 300_000
"""Multiply-adds of the input projection up to which `forward_small` computes it in its own
loop: below this, the separate GEMM and the NumPy and torch calls around it cost more than
the projection itself (S1, 5 × 32 × 10 → 60: 96,000)."""


def is_small(T: int, B: int, I: int, H: int, threads: int | None = None, dtype=np.float64) -> bool:
    """Whether `forward_small` is the faster way to run this layer without saving, in
    ``dtype``: no BLAS width, and either its tiled shards (float32, `_shards`) or a projection
    under `SMALL_PROJECTION` and a recurrence one thread runs anyway."""
    if I > STACK_HIDDEN or H > STACK_HIDDEN or uses_blas(H):
        return False
    if _shards(B, H, threads, dtype):
        return True
    return T * B * I * 3 * H <= SMALL_PROJECTION and shard_count(B, T, H, threads) == 1


def _shards(B: int, H: int, threads: int | None, dtype) -> int:
    """`gru.kernels.tiles.shards` for float32 (0 for float64: the tiles are float32's)."""
    if np.dtype(dtype) != np.float32:
        return 0
    return tiles.shards(B, H, cpu_count() if threads is None else threads)


@njit(**ENTRY)
def _forward_small(x, w_ih, w_hh, b_ih, b_hh, h0, lengths, reverse, reset_after, save, start):
    T, B, I = x.shape
    H = w_hh.shape[1]
    Hp = -(-H // LANES) * LANES  # the engine's width (`gru.kernels.padding`), made here
    w_ih_t, w_hh_t, b_x, b_hn, h0_p = tiles.padded(w_ih, w_hh, b_ih, b_hh, h0, Hp, reset_after)
    gx = np.empty((T, B, 3 * Hp), x.dtype)
    # The projection two rows at a time on stack scratch (which LLVM knows aliases nothing, so
    # the product vectorizes), as the recurrence's products run.
    M = STACK_HIDDEN
    v = carray(scratch(TWO_ROWS, x.dtype), (2, M))
    acc = carray(scratch(TWO_ROWS_3H, x.dtype), (2, 3 * M))
    for t in range(T):
        for b in range(0, B, 2):
            pair = b + 1 < B
            bb = b + 1 if pair else b
            for i in range(I):
                v[0, i] = x[t, b, i]
                v[1, i] = x[t, bb, i]
            matvec_t(v, 0, 1, w_ih_t, 0, 3 * Hp, acc, pair)
            for j in range(3 * Hp):
                gx[t, b, j] = acc[0, j] + b_x[j]
            if pair:
                for j in range(3 * Hp):
                    gx[t, bb, j] = acc[1, j] + b_x[j]
    out_p = np.empty((T, B, Hp), x.dtype)
    h_n_p = np.empty((B, Hp), x.dtype)
    unused = np.empty((1, 1, 1), x.dtype)
    rows.forward_rows(
        gx, h0_p, w_hh_t, b_hn, lengths, reverse, reset_after, save, out_p, h_n_p, unused, start, B
    )
    if Hp == H:
        return out_p, h_n_p
    return np.ascontiguousarray(out_p[:, :, :H]), np.ascontiguousarray(h_n_p[:, :H])


def call_arrays(x, w_ih, w_hh, b_ih, b_hh, h0, lengths) -> tuple:
    """What a compiled call of a whole layer takes (`forward_small`'s, `gru.kernels.tiles`'):
    the arrays C-contiguous in x's dtype, an empty bias for none, zeros for no h0, lengths as
    `gru.kernels.recurrence.lengths_array` gives them."""
    T, B, _ = x.shape
    dtype = x.dtype
    return (
        np.ascontiguousarray(x),
        np.ascontiguousarray(w_ih, dtype=dtype),
        np.ascontiguousarray(w_hh, dtype=dtype),
        _NO_BIAS[dtype] if b_ih is None else np.ascontiguousarray(b_ih, dtype=dtype),
        _NO_BIAS[dtype] if b_hh is None else np.ascontiguousarray(b_hh, dtype=dtype),
        np.zeros((B, w_hh.shape[1]), dtype) if h0 is None else np.ascontiguousarray(h0, dtype),
        lengths_array(lengths, T, B),
    )


def forward_small(
    x, w_ih, w_hh, b_ih, b_hh, h0, lengths=None, *, reset_after=True, reverse=False, threads=None
):
    """A whole layer without saving for backward, in one compiled call: for `is_small` sizes.

    x (T, B, I); the layer's weights as stored, w_ih (3H, I), w_hh (3H, H), b_ih and b_hh (3H,)
    or None; h0 (B, H) or None for zeros; lengths as in `gru.kernels.recurrence.forward`.
    Returns (output (T, B, H), h_n (B, H)). The call pads H to the engine's width and folds the
    biases itself: nothing is copied or derived ahead of it, and arrays already C-contiguous in
    x's dtype go in as they are. In float32, where `gru.kernels.tiles.shards` gives shards for
    ``threads`` (default: the CPUs), shards of the batch on register tiles do it instead
    (`gru.kernels.tiles.forward`), one per thread.
    """
    _, B, I = x.shape
    H = w_hh.shape[1]
    if I > STACK_HIDDEN or H > STACK_HIDDEN:  # the compiled call's scratch is on the stack
        raise ValueError(
            f"forward_small: input and hidden sizes up to {STACK_HIDDEN}, got I={I}, H={H}"
        )
    dtype = x.dtype
    arrays = call_arrays(x, w_ih, w_hh, b_ih, b_hh, h0, lengths)
    shards = _shards(B, H, threads, dtype)
    if shards:
        return first_call(
            ("tiles", dtype), "inference", tiles.forward, *arrays, bool(reverse),
            bool(reset_after), shards, _NOTHING_SAVED,
        )  # fmt: skip
    # save (False) and the first row (0) are passed in, not written as constants in the
    # compiled call: constants there would compile `rows.forward_rows` a second time for them.
    return first_call(
        ("small", dtype), "inference",
        _forward_small, *arrays, bool(reverse), bool(reset_after), False, 0,
    )  # fmt: skip


_NO_BIAS = {np.dtype(t): np.zeros(0, t) for t in (np.float32, np.float64)}
"""What the compiled call takes for a layer without bias: an empty array of the dtype."""
_NOTHING_SAVED = np.zeros((0, 0, 0), np.float32)
"""`gru.kernels.tiles.forward`'s saved when it saves nothing."""
