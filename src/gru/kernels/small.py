"""Small layers without gradients: projection and recurrence in one compiled call.

For a short sequence of a small layer (S1: T 5, B 32, I 10, H 20) the GEMM of the input
projection and the dozen array calls around it cost more than the work; one compiled call
that computes the projection in its own loop and then runs the rows is about twice as fast.
"""

from __future__ import annotations

import numpy as np
from numba import carray, njit

from gru.kernels import rows
from gru.kernels.compiling import first_use
from gru.kernels.products import ENTRY, STACK_HIDDEN, TWO_ROWS, TWO_ROWS_3H, matvec_t, scratch
from gru.kernels.recurrence import lengths_array, shard_count, uses_blas

__all__ = ["SMALL_PROJECTION", "forward_small", "is_small"]

SMALL_PROJECTION = 300_000
"""Multiply-adds of the input projection up to which `forward_small` computes it in its own
loop: below this, the separate GEMM and the NumPy and torch calls around it cost more than
the projection itself (S1, 5 × 32 × 10 → 60: 96,000)."""


def is_small(T: int, B: int, I: int, H: int, threads: int | None = None) -> bool:
    """Whether `forward_small` is the faster way to run this layer without saving: a
    projection under `SMALL_PROJECTION`, a recurrence one thread runs anyway, no BLAS."""
    return (
        T * B * I * 3 * H <= SMALL_PROJECTION
        and I <= STACK_HIDDEN  # x's rows go through stack scratch
        and H <= STACK_HIDDEN
        and not uses_blas(H)
        and shard_count(B, T, H, threads) == 1
    )


@njit(**ENTRY)
def _forward_small(x, w_ih, w_hh, b_ih, b_hh, h0, lengths, reverse, reset_after, save, start):
    T, B, I = x.shape
    H = w_hh.shape[1]
    # The biases folded here as `gru.kernels.padding.fold_biases` folds them (the same sums,
    # so the same bits): b_x (3H,) added to the projection, b_hn (H,) inside r (reset after).
    b_x = np.zeros(3 * H, x.dtype)
    b_hn = np.zeros(H, x.dtype)
    if b_ih.shape[0] != 0:  # (0,) without bias
        for j in range(3 * H):
            b_x[j] = b_ih[j]
        for j in range(2 * H):
            b_x[j] += b_hh[j]
        for j in range(H):
            if reset_after:
                b_hn[j] = b_hh[2 * H + j]
            else:
                b_x[2 * H + j] += b_hh[2 * H + j]
    w_ih_t = np.ascontiguousarray(w_ih.T)  # (I, 3H): the projection's inner loop runs over 3H
    w_hh_t = np.ascontiguousarray(w_hh.T)
    gx = np.empty((T, B, 3 * H), x.dtype)
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
            matvec_t(v, 0, 1, w_ih_t, 0, 3 * H, acc, pair)
            for j in range(3 * H):
                gx[t, b, j] = acc[0, j] + b_x[j]
            if pair:
                for j in range(3 * H):
                    gx[t, bb, j] = acc[1, j] + b_x[j]
    out = np.empty((T, B, H), x.dtype)
    h_n = np.empty((B, H), x.dtype)
    unused = np.empty((1, 1, 1), x.dtype)
    rows.forward_rows(
        gx, h0, w_hh_t, b_hn, lengths, reverse, reset_after, save, out, h_n, unused, start, B
    )
    return out, h_n


def forward_small(x, w_ih, w_hh, b_ih, b_hh, h0, lengths=None, *, reset_after=True, reverse=False):
    """A whole layer without saving for backward, in one compiled call: for `is_small` sizes.

    x (T, B, I); the layer's weights as stored, w_ih (3H, I), w_hh (3H, H), b_ih and b_hh (3H,)
    or None; h0 (B, H) or None for zeros; lengths as in `gru.kernels.recurrence.forward`.
    Returns (output (T, B, H), h_n (B, H)). H is not padded (at these sizes copying padded
    weights costs more than the scalar remainder of the loops). Nothing is copied or derived
    ahead of the call (the biases are folded inside it): arrays already C-contiguous in x's
    dtype go in as they are.
    """
    T, B, I = x.shape
    H = w_hh.shape[1]
    if I > STACK_HIDDEN or H > STACK_HIDDEN:  # the compiled call's scratch is on the stack
        raise ValueError(
            f"forward_small: input and hidden sizes up to {STACK_HIDDEN}, got I={I}, H={H}"
        )
    dtype = x.dtype
    arrays = (
        np.ascontiguousarray(x),
        np.ascontiguousarray(w_ih, dtype=dtype),
        np.ascontiguousarray(w_hh, dtype=dtype),
        _NO_BIAS[dtype] if b_ih is None else np.ascontiguousarray(b_ih, dtype=dtype),
        _NO_BIAS[dtype] if b_hh is None else np.ascontiguousarray(b_hh, dtype=dtype),
        np.zeros((B, H), dtype) if h0 is None else np.ascontiguousarray(h0, dtype=dtype),
        lengths_array(lengths, T, B),
    )
    # save (False) and the first row (0) are passed in, not written as constants in the
    # compiled call: constants there would compile `rows.forward_rows` a second time for them.
    with first_use(("small", dtype), "inference"):
        return _forward_small(*arrays, bool(reverse), bool(reset_after), False, 0)


_NO_BIAS = {np.dtype(t): np.zeros(0, t) for t in (np.float32, np.float64)}
"""What the compiled call takes for a layer without bias: an empty array of the dtype."""
