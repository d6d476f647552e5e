"""Small layers without gradients: projection and recurrence in one compiled call.

For a short sequence of a small layer (S1: T 5, B 32, I 10, H 20) the GEMM of the input
projection and the dozen array calls around it cost more than the work; one compiled call
that computes the projection in its own loop and then runs the rows is about twice as fast.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gru.kernels import rows
from gru.kernels.compiling import first_use
from gru.kernels.padding import fold_biases
from gru.kernels.products import ENTRY, STACK_HIDDEN
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
        and H <= STACK_HIDDEN
        and not uses_blas(H)
        and shard_count(B, T, H, threads) == 1
    )


@njit(**ENTRY)
def _forward_small(x, w_ih, w_hh, b_x, b_hn, h0, lengths, reverse, reset_after, save, start):
    T, B, I = x.shape
    H = w_hh.shape[1]
    w_ih_t = np.ascontiguousarray(w_ih.T)  # (I, 3H): the projection's inner loop runs over 3H
    w_hh_t = np.ascontiguousarray(w_hh.T)
    gx = np.empty((T, B, 3 * H), x.dtype)
    for t in range(T):
        for b in range(B):
            for j in range(3 * H):
                gx[t, b, j] = b_x[j]
            for i in range(I):
                xi = x[t, b, i]
                for j in range(3 * H):
                    gx[t, b, j] += xi * w_ih_t[i, j]
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
    weights costs more than the scalar remainder of the loops).
    """
    T, B, _ = x.shape
    H = w_hh.shape[1]
    dtype = x.dtype
    b_x, b_hn = fold_biases(b_ih, b_hh, reset_after, dtype)
    arrays = (
        np.ascontiguousarray(x),
        np.ascontiguousarray(w_ih, dtype=dtype),
        np.ascontiguousarray(w_hh, dtype=dtype),
        np.zeros(3 * H, dtype) if b_x is None else b_x,
        np.zeros(H, dtype) if b_hn is None else np.ascontiguousarray(b_hn),
        np.zeros((B, H), dtype) if h0 is None else np.ascontiguousarray(h0, dtype=dtype),
        lengths_array(lengths, T, B),
    )
    # save (False) and the first row (0) are passed in, not written as constants in the
    # compiled call: constants there would compile `rows.forward_rows` a second time for them.
    with first_use(("small", dtype), "inference"):
        return _forward_small(*arrays, bool(reverse), bool(reset_after), False, 0)
