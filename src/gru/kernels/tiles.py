"""Float32 layers without gradients under 64 units, step by step on register tiles.

The products of a small layer are too small for a BLAS call per step (its overhead is the
product's own time) and too short for LLVM's vectorized loops to reach the CPU's rate: those
load and store their accumulators at every pass, and a remainder of columns runs scalar. Here
every product is a `tile`: up to 4 rows × 6 vectors of 16 float32 accumulated in registers over
the whole inner dimension, each load of W shared by the 4 rows, written in LLVM IR because
Numba has no vector type. Measured on a 2-core Xeon (one thread, 16 rows × 32 × 96, 100 steps
of products): 77–80 GMAC/s on tiles, 25–33 GMAC/s on vectorized loops over the same rows.

`forward` runs a batch in shards (one per thread), each shard step by step: its rows' inputs
projected on tiles, the recurrent product on tiles, then the gates of every row. A step's
product and gates take all the shard's rows at once, so a step's rows overlap in the CPU instead
of each row's steps following one another. The layer's width is padded to a multiple of 16 here
(`WIDTH`), which the tiles need; the padding units stay at zero and are cut off on the way out.
"""

from __future__ import annotations

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from gru.kernels import packed
from gru.kernels.activations import FASTMATH, sigmoid, tanh
from gru.kernels.products import INLINE, position

__all__ = [
    "MIN_BATCH",
    "MIN_ROWS",
    "TILE_ROWS",
    "TILE_VECTORS",
    "WIDTH",
    "forward",
    "product",
    "shards",
    "tile",
]

WIDTH = 16
"""Vector width of a tile (float32 lanes): every product's columns are a multiple of it."""
TILE_ROWS = 4
"""Rows of a tile: each load of W serves this many rows."""
TILE_VECTORS = 6
"""Vectors of 16 columns a tile accumulates: 4 × 6 accumulators and 6 loads of W fit in the 32
vector registers of AVX-512 (on AVX2 LLVM splits them)."""

MIN_BATCH = 4
"""Fewest batch rows `forward` takes (below, the row kernels' own call)."""
MIN_ROWS = 2
"""Fewest batch rows per shard of `forward`."""

_JIT = {"nogil": True, "fastmath": FASTMATH, "error_model": "numpy", "cache": True}
_AVX512 = "+avx512f" in llvm.get_host_cpu_features().flatten().split(",")
"""Whether a function that calls `tile` asks LLVM for 512-bit vectors in all its loops. LLVM
prefers 256 bits on these CPUs; for the gates of a 16-row shard 512 were 1.1–1.2× faster a
layer (2-core Xeon, one thread: S2's shard 336 → 276 µs, S3's 802 → 681 µs, the same bits)."""


def shards(B: int, H: int, threads: int) -> int:
    """Shards for `forward` of a batch of B rows of H units on ``threads`` threads: one per
    thread, down to `MIN_ROWS` rows a shard; 0 where it is not the way (fewer than
    `MIN_BATCH` rows, or `gru.kernels.packed.MIN_HIDDEN` units and more, where the packed
    loops run)."""
    if B < MIN_BATCH or H >= packed.MIN_HIDDEN:
        return 0
    return max(1, min(threads, B // MIN_ROWS))


@intrinsic
def tile(typingctx, a, a0, lda, w, w0, ldw, c, c0, ldc, K, R, V):
    """c[c0 + r·ldc + j] = Σ_{k<K} a[a0 + r·lda + k] · w[w0 + k·ldw + j] for rows r < R and
    columns j < 16·V (R, V literals), over the flat data of C-contiguous float32 arrays."""
    if not (isinstance(R, types.IntegerLiteral) and isinstance(V, types.IntegerLiteral)):
        return None
    rows, vectors = R.literal_value, V.literal_value

    def codegen(context, builder, signature, args):
        i64, vec = ir.IntType(64), ir.VectorType(ir.FloatType(), WIDTH)
        if _AVX512:  # the function's other loops (the gates) vectorize 16 wide too
            for attribute in ('"prefer-vector-width"="512"', '"min-legal-vector-width"="512"'):
                set.add(builder.function.attributes, attribute)  # llvmlite knows no such name
        a_p, w_p, c_p = (
            context.make_array(signature.args[i])(context, builder, value=args[i]).data
            for i in (0, 3, 6)
        )
        wide = [
            builder.sext(args[i], i64) if args[i].type.width < 64 else args[i]
            for i in (1, 2, 4, 5, 7, 8, 9)
        ]
        a0_, lda_, w0_, ldw_, c0_, ldc_, K_ = wide
        fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vec, [vec, vec, vec]), "llvm.fma.v16f32"
        )
        zero, const = ir.Constant(vec, [0.0] * WIDTH), lambda n: ir.Constant(i64, n)
        start = builder.block
        head = builder.append_basic_block("tile.head")
        body = builder.append_basic_block("tile.body")
        done = builder.append_basic_block("tile.done")
        builder.branch(head)
        builder.position_at_end(head)
        k = builder.phi(i64)
        acc = [[builder.phi(vec) for _ in range(vectors)] for _ in range(rows)]
        k.add_incoming(const(0), start)
        for row in acc:
            for v in row:
                v.add_incoming(zero, start)
        builder.cbranch(builder.icmp_signed("<", k, K_), body, done)
        builder.position_at_end(body)
        w_row = builder.add(w0_, builder.mul(k, ldw_))
        loads = []
        for v in range(vectors):
            p = builder.gep(w_p, [builder.add(w_row, const(WIDTH * v))])
            loads.append(builder.load(builder.bitcast(p, vec.as_pointer()), align=4))
        lanes = ir.Constant(ir.VectorType(ir.IntType(32), WIDTH), [0] * WIDTH)
        new = []
        for r in range(rows):
            p = builder.gep(a_p, [builder.add(builder.add(a0_, builder.mul(const(r), lda_)), k)])
            one = builder.insert_element(ir.Constant(vec, ir.Undefined), builder.load(p),
                                         ir.Constant(ir.IntType(32), 0))  # fmt: skip
            splat = builder.shuffle_vector(one, ir.Constant(vec, ir.Undefined), lanes)
            new.append([builder.call(fma, [splat, loads[v], acc[r][v]]) for v in range(vectors)])
        following = builder.add(k, const(1))
        end = builder.block
        builder.branch(head)
        k.add_incoming(following, end)
        for r in range(rows):
            for v in range(vectors):
                acc[r][v].add_incoming(new[r][v], end)
        builder.position_at_end(done)
        for r in range(rows):
            for v in range(vectors):
                at = builder.add(builder.add(c0_, builder.mul(const(r), ldc_)), const(WIDTH * v))
                p = builder.bitcast(builder.gep(c_p, [at]), vec.as_pointer())
                builder.store(acc[r][v], p, align=4)
        return context.get_dummy_value()

    return types.void(a, a0, lda, w, w0, ldw, c, c0, ldc, K, R, V), codegen


@njit(**INLINE)
def _tiles_of_rows(a, a0, lda, w, w0, ldw, n, c, c0, ldc, K, R):
    """One block of R rows (a literal) over n columns: tiles of 6 vectors, then one of fewer."""
    j = 0
    while j + WIDTH * TILE_VECTORS <= n:
        tile(a, a0, lda, w, w0 + j, ldw, c, c0 + j, ldc, K, R, TILE_VECTORS)
        j += WIDTH * TILE_VECTORS
    left = (n - j) // WIDTH
    if left == 1:
        tile(a, a0, lda, w, w0 + j, ldw, c, c0 + j, ldc, K, R, 1)
    elif left == 2:
        tile(a, a0, lda, w, w0 + j, ldw, c, c0 + j, ldc, K, R, 2)
    elif left == 3:
        tile(a, a0, lda, w, w0 + j, ldw, c, c0 + j, ldc, K, R, 3)
    elif left == 4:
        tile(a, a0, lda, w, w0 + j, ldw, c, c0 + j, ldc, K, R, 4)
    elif left == 5:
        tile(a, a0, lda, w, w0 + j, ldw, c, c0 + j, ldc, K, R, 5)


@njit(**INLINE)
def product(a, a0, lda, m, K, w, w0, ldw, n, c, c0, ldc):
    """c[c0 + i·ldc + j] = Σ_{k<K} a[a0 + i·lda + k] · w[w0 + k·ldw + j] for i < m, j < n
    (n a multiple of `WIDTH`), on tiles of 4 rows and the last 1–3 rows on their own."""
    i = 0
    while i + TILE_ROWS <= m:
        _tiles_of_rows(a, a0 + i * lda, lda, w, w0, ldw, n, c, c0 + i * ldc, ldc, K, TILE_ROWS)
        i += TILE_ROWS
    if m - i == 3:
        _tiles_of_rows(a, a0 + i * lda, lda, w, w0, ldw, n, c, c0 + i * ldc, ldc, K, 3)
    elif m - i == 2:
        _tiles_of_rows(a, a0 + i * lda, lda, w, w0, ldw, n, c, c0 + i * ldc, ldc, K, 2)
    elif m - i == 1:
        _tiles_of_rows(a, a0 + i * lda, lda, w, w0, ldw, n, c, c0 + i * ldc, ldc, K, 1)


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
def _shard(x, w_ih_t, w_hh_t, b_x, b_hn, h0, lengths, reverse, reset_after, out, h_n, b0, b1):
    """Rows b0 ≤ b < b1 of the whole sequence, step by step (arrays at the padded width)."""
    T, I, H = x.shape[0], x.shape[2], w_hh_t.shape[0]
    m, H3 = b1 - b0, 3 * H
    # One buffer for the scratch, each part starting 80 floats (5 cache lines) past a multiple
    # of 1024 floats after the last, so no two parts sit a multiple of 4 KiB apart.
    sizes = (m * I, m * H3, m * H3, m * H, m * H, m * H)
    starts = np.empty(6, np.int64)
    at = 0
    for p in range(6):
        starts[p] = at
        at += -(-sizes[p] // 1024) * 1024 + 80 * (p + 1)
    buffer = np.empty(at, np.float32)
    xs = buffer[starts[0] : starts[0] + sizes[0]].reshape((m, I))  # this step's inputs
    gx = buffer[starts[1] : starts[1] + sizes[1]].reshape((m, H3))
    gh = buffer[starts[2] : starts[2] + sizes[2]].reshape((m, H3))
    h = buffer[starts[3] : starts[3] + sizes[3]].reshape((m, H))
    rh = buffer[starts[4] : starts[4] + sizes[4]].reshape((m, H))
    z_ = buffer[starts[5] : starts[5] + sizes[5]].reshape((m, H))
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
        product(xs, 0, I, m, I, w_ih_t, 0, H3, H3, gx, 0, H3)
        for i in range(m):
            for j in range(H3):
                gx[i, j] += b_x[j]
        if reset_after:
            product(h, 0, H, m, H, w_hh_t, 0, H3, H3, gh, 0, H3)
            for i in range(m):
                if s < lengths[b0 + i]:
                    _gates(gx, gh, h, rh, z_, b_hn, i, H, True, True)
        else:
            product(h, 0, H, m, H, w_hh_t, 0, H3, 2 * H, gh, 0, H3)
            for i in range(m):
                _gates(gx, gh, h, rh, z_, b_hn, i, H, False, True)
            product(rh, 0, H, m, H, w_hh_t, 2 * H, H3, H, gh, 2 * H, H3)
            for i in range(m):
                if s < lengths[b0 + i]:
                    _gates(gx, gh, h, rh, z_, b_hn, i, H, False, False)
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
def _sharded(x, w_ih_t, w_hh_t, b_x, b_hn, h0, lengths, reverse, reset_after, out, h_n, shards):
    B = x.shape[1]
    for i in prange(shards):
        b0, b1 = i * B // shards, (i + 1) * B // shards
        _shard(x, w_ih_t, w_hh_t, b_x, b_hn, h0, lengths, reverse, reset_after, out, h_n, b0, b1)


@njit(**_JIT)
def forward(x, w_ih, w_hh, b_ih, b_hh, h0, lengths, reverse, reset_after, shards):
    """A float32 layer without saving, as `gru.kernels.small.forward_small` takes it (weights as
    stored, b_ih and b_hh empty without bias), in ``shards`` shards of the batch: (output (T, B,
    H), h_n (B, H)). Weights are transposed and padded to a multiple of `WIDTH` units here."""
    T, B, I = x.shape
    H = w_hh.shape[1]
    Hp = -(-H // WIDTH) * WIDTH
    w_ih_t = np.zeros((I, 3 * Hp), np.float32)
    w_hh_t = np.zeros((Hp, 3 * Hp), np.float32)
    b_x = np.zeros(3 * Hp, np.float32)  # folded as `gru.kernels.padding.fold_biases` folds
    b_hn = np.zeros(Hp, np.float32)
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
    h0_p = np.zeros((B, Hp), np.float32)
    for b in range(B):
        for j in range(H):
            h0_p[b, j] = h0[b, j]
    out = np.empty((T, B, H), np.float32)
    h_n = np.empty((B, H), np.float32)
    _sharded(x, w_ih_t, w_hh_t, b_x, b_hn, h0_p, lengths, reverse, reset_after, out, h_n, shards)
    return out, h_n
