"""Float32 layers without gradients under 64 units, step by step on register tiles.

The products of a small layer are too small for a BLAS call per step (its overhead is the
product's own time) and too short for LLVM's vectorized loops to reach the CPU's rate; here
every product runs on register tiles (`gru.kernels.products.tiled_product`).

`forward` runs a batch in shards (one per thread), each shard step by step: its rows' inputs
projected on tiles, the recurrent product on tiles, then the gates of every row. A step's
product and gates take all the shard's rows at once, so a step's rows overlap in the CPU instead
of each row's steps following one another. The layer's width is padded here to a multiple of
`gru.kernels.products.WIDTH` (16), which the tiles need; the padding units stay at zero and are
cut off on the way out.
"""

from __future__ import annotations

import numpy as np
from numba import carray, njit, prange

from gru.kernels import packed
from gru.kernels.activations import FASTMATH, sigmoid, tanh
from gru.kernels.products import INLINE, WIDTH, position, scratch, tiled_product

__all__ = ["MIN_BATCH", "MIN_ROWS", "forward", "padded", "scratch_rows", "shards"]

MIN_BATCH = 4
"""Fewest batch rows `forward` takes (below, the row kernels' own call)."""
MAX_TILED = 64
"""Widths under which the tiles save for backward (their stack scratch is this wide)."""
_KEEP = 4 * MAX_TILED  # a literal for `scratch`
MIN_ROWS = 2
"""Fewest batch rows per shard of `forward`."""

_JIT = {"nogil": True, "fastmath": FASTMATH, "error_model": "numpy", "cache": True}


def shards(B: int, H: int, threads: int) -> int:
    """Shards for `forward` of a batch of B rows of H units on ``threads`` threads: one per
    thread, down to `MIN_ROWS` rows a shard; 0 where it is not the way (fewer than
    `MIN_BATCH` rows, or `gru.kernels.packed.MIN_HIDDEN` units and more, where the packed
    loops run)."""
    if B < MIN_BATCH or H >= packed.MIN_HIDDEN:
        return 0
    return max(1, min(threads, B // MIN_ROWS))


@njit(**INLINE)
def _gates(gx, gh, h, rh, z_, b_hn, i, H, reset_after, first):
    """Row i's gates from its projection gx[i] (3Hp, biases folded) and recurrent products
    gh[i]: reset after, all of them (``first`` unused); reset before, ``first``: r and z (rh[i]
    = r ⊙ h, z_[i] = z), else n and h."""
    if reset_after:
        for j in range(H):
            r = sigmoid(gx[i, j] + gh[i, j])
            z = sigmoid(gx[i, H + j] + gh[i, H + j])
            n = tanh(gx[i, 2 * H + j] + r * (gh[i, 2 * H + j] + b_hn[j]))
            h[i, j] = n + z * (h[i, j] - n)
    elif first:
        for j in range(H):
            r = sigmoid(gx[i, j] + gh[i, j])
            z_[i, j] = sigmoid(gx[i, H + j] + gh[i, H + j])
            rh[i, j] = r * h[i, j]
    else:
        for j in range(H):
            n = tanh(gx[i, 2 * H + j] + gh[i, 2 * H + j])
            h[i, j] = n + z_[i, j] * (h[i, j] - n)


@njit(**INLINE)
def _saving_gates(gx, gh, h, rh, z_, b_hn, i, H, reset_after, first, saved, t, b, keep):
    """`_gates`, keeping what backward reads in saved[t, b] (`gru.kernels.rows`' layout: [r | z
    | n | W_hn h + b_hn] or [r | z | n], at the width Hs of saved ≤ H, the units past Hs being
    padding, whose gates change nothing). The gates go to ``keep`` (4, 64) on the stack first
    and are copied from there: stored straight into saved, the loop did not vectorize."""
    Hs = saved.shape[2] // (4 if reset_after else 3)
    if reset_after:
        for j in range(Hs):
            r = sigmoid(gx[i, j] + gh[i, j])
            z = sigmoid(gx[i, H + j] + gh[i, H + j])
            hn = gh[i, 2 * H + j] + b_hn[j]
            n = tanh(gx[i, 2 * H + j] + r * hn)
            h[i, j] = n + z * (h[i, j] - n)
            keep[0, j] = r
            keep[1, j] = z
            keep[2, j] = n
            keep[3, j] = hn
        _keep(keep, saved, t, b, Hs, 0, 4)
    elif first:
        for j in range(Hs):
            r = sigmoid(gx[i, j] + gh[i, j])
            z = sigmoid(gx[i, H + j] + gh[i, H + j])
            z_[i, j] = z
            rh[i, j] = r * h[i, j]
            keep[0, j] = r
            keep[1, j] = z
        _keep(keep, saved, t, b, Hs, 0, 2)
    else:
        for j in range(Hs):
            n = tanh(gx[i, 2 * H + j] + gh[i, 2 * H + j])
            h[i, j] = n + z_[i, j] * (h[i, j] - n)
            keep[2, j] = n
        _keep(keep, saved, t, b, Hs, 2, 3)


@njit(**INLINE)
def _keep(keep, saved, t, b, Hs, low, high):
    """Blocks low ≤ q < high of ``keep`` (Hs wide) into saved[t, b]."""
    for q in range(low, high):
        for j in range(Hs):
            saved[t, b, q * Hs + j] = keep[q, j]


@njit(**INLINE)
def _row_gates(gx, gh, h, rh, z_, b_hn, i, H, reset_after, first, saved, t, b, keep):
    """Row i's gates (`_gates`), saved for backward at step t of row b when saved is not
    empty."""
    if saved.shape[0] == 0:
        _gates(gx, gh, h, rh, z_, b_hn, i, H, reset_after, first)
    else:
        _saving_gates(gx, gh, h, rh, z_, b_hn, i, H, reset_after, first, saved, t, b, keep)


@njit(**INLINE)
def scratch_rows(rows, widths):
    """Six scratch arrays, (rows[p], widths[p]) each, zeros, in one buffer: each starts 80
    floats (5 cache lines) more than a multiple of 1024 floats after the last, so no two sit a
    multiple of 4 KiB apart (4K aliasing stalled the loads after the gates' stores)."""
    starts = np.empty(7, np.int64)
    starts[0] = 0
    for p in range(6):
        starts[p + 1] = starts[p] + -(-rows[p] * widths[p] // 1024) * 1024 + 80 * (p + 1)
    buffer = np.zeros(starts[6], np.float32)

    def part(p):
        return buffer[starts[p] : starts[p] + rows[p] * widths[p]].reshape((rows[p], widths[p]))

    return part(0), part(1), part(2), part(3), part(4), part(5)


@njit(**INLINE)
def _shard(
    x, w_ih_t, w_hh_t, b_x, b_hn, h0, lengths, reverse, reset_after, out, h_n, saved, b0, b1
):
    """Rows b0 ≤ b < b1 of the whole sequence, step by step (arrays at the padded width but
    out, h_n and saved), saving for backward when saved is not empty."""
    T, I, H = x.shape[0], x.shape[2], w_hh_t.shape[0]
    m, H3 = b1 - b0, 3 * H
    keep = carray(scratch(_KEEP, x.dtype), (4, MAX_TILED))
    xs, gx, gh, h, rh, z_ = scratch_rows(
        (m, m, m, m, m, m), (I, H3, H3, H, H, H)
    )  # xs: this step's inputs
    longest = 0
    for i in range(m):
        longest = max(longest, lengths[b0 + i])
        for j in range(H):
            h[i, j] = h0[b0 + i, j]
    for s in range(longest):
        for i in range(m):
            t = position(s, lengths[b0 + i], reverse) if s < lengths[b0 + i] else 0
            for k in range(I):
                xs[i, k] = x[t, b0 + i, k]
        tiled_product(xs, 0, I, 1, m, I, w_ih_t, 0, H3, H3, gx, 0, H3, 0)
        for i in range(m):
            for j in range(H3):
                gx[i, j] += b_x[j]
        if reset_after:
            tiled_product(h, 0, H, 1, m, H, w_hh_t, 0, H3, H3, gh, 0, H3, 0)
            for i in range(m):
                if s < lengths[b0 + i]:
                    t = position(s, lengths[b0 + i], reverse)
                    _row_gates(gx, gh, h, rh, z_, b_hn, i, H, True, True, saved, t, b0 + i, keep)
        else:
            tiled_product(h, 0, H, 1, m, H, w_hh_t, 0, H3, 2 * H, gh, 0, H3, 0)
            for i in range(m):
                t = position(s, lengths[b0 + i], reverse) if s < lengths[b0 + i] else 0
                kept = saved if s < lengths[b0 + i] else saved[:0]
                _row_gates(gx, gh, h, rh, z_, b_hn, i, H, False, True, kept, t, b0 + i, keep)
            tiled_product(rh, 0, H, 1, m, H, w_hh_t, 2 * H, H3, H, gh, 2 * H, H3, 0)
            for i in range(m):
                if s < lengths[b0 + i]:
                    t = position(s, lengths[b0 + i], reverse)
                    _row_gates(gx, gh, h, rh, z_, b_hn, i, H, False, False, saved, t, b0 + i, keep)
        for i in range(m):
            if s < lengths[b0 + i]:
                t = position(s, lengths[b0 + i], reverse)
                for j in range(out.shape[2]):
                    out[t, b0 + i, j] = h[i, j]
    for i in range(m):
        for t in range(lengths[b0 + i], T):
            for j in range(out.shape[2]):
                out[t, b0 + i, j] = 0.0  # past the end of the sequence: padding
        for j in range(h_n.shape[1]):
            h_n[b0 + i, j] = h[i, j]


@njit(parallel=True, **_JIT)
def _sharded(
    x, w_ih_t, w_hh_t, b_x, b_hn, h0, lengths, reverse, reset_after, out, h_n, saved, shards
):
    B = x.shape[1]
    for i in prange(shards):
        b0, b1 = i * B // shards, (i + 1) * B // shards
        _shard(
            x, w_ih_t, w_hh_t, b_x, b_hn, h0, lengths, reverse, reset_after, out, h_n, saved,
            b0, b1,
        )  # fmt: skip


@njit(**INLINE)
def padded(w_ih, w_hh, b_ih, b_hh, h0, Hp, reset_after):
    """A layer's weights as stored, at width Hp (zeros in the added units, which stay at 0 and
    change nothing): W_ihᵀ (I, 3Hp) and W_hhᵀ (Hp, 3Hp), the products running over 3Hp; the
    biases folded as `gru.kernels.padding.fold_biases` folds them (the same sums, so the same
    bits), b_x (3Hp,) added to the projection and b_hn (Hp,) inside r (reset after); h0
    (B, Hp). b_ih and b_hh are empty without bias."""
    I, H, B = w_ih.shape[1], w_hh.shape[1], h0.shape[0]
    dtype = w_hh.dtype
    w_ih_t = np.zeros((I, 3 * Hp), dtype)
    w_hh_t = np.zeros((Hp, 3 * Hp), dtype)
    b_x = np.zeros(3 * Hp, dtype)
    b_hn = np.zeros(Hp, dtype)
    h0_p = np.zeros((B, Hp), dtype)
    for g in range(3):
        for j in range(H):
            for i in range(I):
                w_ih_t[i, g * Hp + j] = w_ih[g * H + j, i]
            for k in range(H):
                w_hh_t[k, g * Hp + j] = w_hh[g * H + j, k]
            if b_ih.shape[0] != 0:
                if g < 2 or not reset_after:
                    b_x[g * Hp + j] = b_ih[g * H + j] + b_hh[g * H + j]
                else:
                    b_x[g * Hp + j] = b_ih[g * H + j]
                    b_hn[j] = b_hh[g * H + j]
    for b in range(B):
        for j in range(H):
            h0_p[b, j] = h0[b, j]
    return w_ih_t, w_hh_t, b_x, b_hn, h0_p


@njit(**_JIT)
def forward(x, w_ih, w_hh, b_ih, b_hh, h0, lengths, reverse, reset_after, shards, saved):
    """A float32 layer as `gru.kernels.small.forward_small` takes it (weights as stored, b_ih
    and b_hh empty without bias), in ``shards`` shards of the batch: (output (T, B, H), h_n
    (B, H)). Weights are transposed and padded to a multiple of `WIDTH` units here. ``saved``
    (T, B, 4Hs or 3Hs) gets what backward reads, as `gru.kernels.recurrence.forward` keeps it
    at its width Hs; empty (0, 0, 0): nothing is saved."""
    T, B = x.shape[0], x.shape[1]
    H = w_hh.shape[1]
    Hp = -(-H // WIDTH) * WIDTH
    w_ih_t, w_hh_t, b_x, b_hn, h0_p = padded(w_ih, w_hh, b_ih, b_hh, h0, Hp, reset_after)
    out = np.empty((T, B, H), np.float32)
    h_n = np.empty((B, H), np.float32)
    _sharded(
        x, w_ih_t, w_hh_t, b_x, b_hn, h0_p, lengths, reverse, reset_after, out, h_n, saved, shards
    )
    return out, h_n
