"""The building blocks of the compiled loops: compile options, scratch on the stack, the position
of a step, and the vector–matrix products that `gru.kernels.rows` and `gru.kernels.variants`
run around their gate math.

The products are bound by loads, not arithmetic: rows go in pairs that share every load of W_hh,
the inner loops run over contiguous memory and are unrolled four deep (a lone row's eight), so
LLVM vectorizes them. Products of several rows at once whose columns are a multiple of 16 run on
register tiles instead (`tiled_product`), which reach about three times their rate.
Shapes as in `gru.kernels.rows`.
"""

from __future__ import annotations

import llvmlite.binding as llvm
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from gru.kernels.activations import FASTMATH

__all__ = [
    "ENTRY",
    "FOUR_ROWS",
    "INLINE",
    "STACK_HIDDEN",
    "TILE_ROWS",
    "TILE_VECTORS",
    "TWO_ROWS",
    "TWO_ROWS_3H",
    "WIDTH",
    "float32s",
    "matvec_t",
    "pointer",
    "position",
    "scratch",
    "tile",
    "tiled_product",
    "vecmat_add",
]

ENTRY = {"nogil": True, "fastmath": FASTMATH, "error_model": "numpy", "cache": True}
INLINE = {"inline": "always", "fastmath": FASTMATH, "error_model": "numpy"}

STACK_HIDDEN = 512
"""Largest H the row kernels take (their scratch is on the stack); beyond it, BLAS does."""
TWO_ROWS = 2 * STACK_HIDDEN  # stack sizes must be literals where `scratch` is called
TWO_ROWS_3H = 6 * STACK_HIDDEN
FOUR_ROWS = 4 * STACK_HIDDEN


@intrinsic
def scratch(typingctx, size, dtype):
    """A pointer to ``size`` (a literal) uninitialized values on the caller's stack."""
    if not isinstance(size, types.IntegerLiteral) or not isinstance(dtype, types.DType):
        return None
    count = size.literal_value

    def codegen(context, builder, signature, args):
        return cgutils.alloca_once(builder, context.get_value_type(dtype.dtype), size=count)

    return types.CPointer(dtype.dtype)(size, dtype), codegen


@intrinsic
def pointer(typingctx, array, offset):
    """A pointer to ``array``'s element ``offset`` of its flat data (C order). With
    ``numba.carray`` it makes a view that costs no reference counting and no reshape call, for
    loops that make a few views per call and are themselves only a microsecond long."""
    if not isinstance(array, types.Array) or not isinstance(offset, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, value=args[0]).data
        return builder.gep(data, [args[1]])

    return types.CPointer(array.dtype)(array, offset), codegen


@njit(**INLINE)
def position(s, L, reverse):
    return L - 1 - s if reverse else s


# --- vector–matrix products -------------------------------------------------------------------
# v and acc are rows of 2-D scratch: v[va, :] (and v[vb, :] when ``pair``).


@njit(**INLINE)
def matvec_t(v, va, vb, w_t, j0, n, acc, pair):
    """acc[i, j] = Σ_k v[i, k] w_t[k, j0 + j] for j < n, rows i = va (and vb when ``pair``)."""
    H = w_t.shape[0]
    for j in range(n):
        acc[va, j] = 0.0
        acc[vb, j] = 0.0
    k = 0
    # One row: eight deep, half the passes over acc (LONG, a batch-1 sequence at 128 units,
    # 1.15x in alternating processes; a pair eight deep was no faster, 0.94-1.19x).
    while not pair and k + 8 <= H:
        a0, a1, a2, a3 = v[va, k], v[va, k + 1], v[va, k + 2], v[va, k + 3]
        a4, a5, a6, a7 = v[va, k + 4], v[va, k + 5], v[va, k + 6], v[va, k + 7]
        for j in range(n):
            acc[va, j] += (
                a0 * w_t[k, j0 + j]
                + a1 * w_t[k + 1, j0 + j]
                + a2 * w_t[k + 2, j0 + j]
                + a3 * w_t[k + 3, j0 + j]
                + a4 * w_t[k + 4, j0 + j]
                + a5 * w_t[k + 5, j0 + j]
                + a6 * w_t[k + 6, j0 + j]
                + a7 * w_t[k + 7, j0 + j]
            )
        k += 8
    while pair and k + 4 <= H:  # (one row's last few, under eight, go one at a time below)
        a0, a1, a2, a3 = v[va, k], v[va, k + 1], v[va, k + 2], v[va, k + 3]
        b0, b1, b2, b3 = v[vb, k], v[vb, k + 1], v[vb, k + 2], v[vb, k + 3]
        for j in range(n):
            c0, c1 = w_t[k, j0 + j], w_t[k + 1, j0 + j]
            c2, c3 = w_t[k + 2, j0 + j], w_t[k + 3, j0 + j]
            acc[va, j] += a0 * c0 + a1 * c1 + a2 * c2 + a3 * c3
            acc[vb, j] += b0 * c0 + b1 * c1 + b2 * c2 + b3 * c3
        k += 4
    while k < H:
        a0, b0 = v[va, k], v[vb, k]
        for j in range(n):
            acc[va, j] += a0 * w_t[k, j0 + j]
        if pair:
            for j in range(n):
                acc[vb, j] += b0 * w_t[k, j0 + j]
        k += 1


@njit(**INLINE)
def vecmat_add(v, va_t, va_b, vb_t, vb_b, v0, w, j0, n, acc, ia, ib, pair):
    """acc[i, k] += Σ_j v[t, b, v0 + j] w[j0 + j, k] for j < n, (t, b) = (va_t, va_b) → i = ia,
    and (vb_t, vb_b) → i = ib when ``pair``. v is a (T, B, ·) array of gradients."""
    H = w.shape[1]
    j = 0
    while not pair and j + 8 <= n:  # one row: eight deep, as `matvec_t`
        p, q = v0 + j, j0 + j
        a0, a1 = v[va_t, va_b, p], v[va_t, va_b, p + 1]
        a2, a3 = v[va_t, va_b, p + 2], v[va_t, va_b, p + 3]
        a4, a5 = v[va_t, va_b, p + 4], v[va_t, va_b, p + 5]
        a6, a7 = v[va_t, va_b, p + 6], v[va_t, va_b, p + 7]
        for k in range(H):
            acc[ia, k] += (
                a0 * w[q, k]
                + a1 * w[q + 1, k]
                + a2 * w[q + 2, k]
                + a3 * w[q + 3, k]
                + a4 * w[q + 4, k]
                + a5 * w[q + 5, k]
                + a6 * w[q + 6, k]
                + a7 * w[q + 7, k]
            )
        j += 8
    while pair and j + 4 <= n:  # (one row's last few, under eight, go one at a time below)
        p, q = v0 + j, j0 + j
        a0, a1, a2, a3 = (
            v[va_t, va_b, p],
            v[va_t, va_b, p + 1],
            v[va_t, va_b, p + 2],
            v[va_t, va_b, p + 3],
        )
        b0, b1, b2, b3 = (
            v[vb_t, vb_b, p],
            v[vb_t, vb_b, p + 1],
            v[vb_t, vb_b, p + 2],
            v[vb_t, vb_b, p + 3],
        )
        for k in range(H):
            c0, c1, c2, c3 = w[q, k], w[q + 1, k], w[q + 2, k], w[q + 3, k]
            acc[ia, k] += a0 * c0 + a1 * c1 + a2 * c2 + a3 * c3
            acc[ib, k] += b0 * c0 + b1 * c1 + b2 * c2 + b3 * c3
        j += 4
    while j < n:
        a0, b0 = v[va_t, va_b, v0 + j], v[vb_t, vb_b, v0 + j]
        for k in range(H):
            acc[ia, k] += a0 * w[j0 + j, k]
        if pair:
            for k in range(H):
                acc[ib, k] += b0 * w[j0 + j, k]
        j += 1


# --- register tiles ---------------------------------------------------------------------------
# A product of several rows: see `tile`. Measured on a 2-core Xeon (one thread, 16 rows × 32 ×
# 96, 100 steps of products): 77–80 GMAC/s on tiles, 25–33 GMAC/s on vectorized loops over the
# same rows (those load and store their accumulators at every pass, and a remainder of columns
# runs scalar).

WIDTH = 16
"""Vector width of a tile (float32 lanes): every product's columns are a multiple of it."""
TILE_ROWS = 4
"""Rows of a tile: each load of W serves this many rows."""
TILE_VECTORS = 6
"""Vectors of 16 columns a tile accumulates: 4 × 6 accumulators and 6 loads of W fit in the 32
vector registers of AVX-512 (on AVX2 LLVM splits them)."""

_AVX512 = "+avx512f" in llvm.get_host_cpu_features().flatten().split(",")
"""Whether a function that calls `tile` asks LLVM for 512-bit vectors in all its loops. LLVM
prefers 256 bits on these CPUs; for the gates of a 16-row shard 512 were 1.1–1.2× faster a
layer (2-core Xeon, one thread: S2's shard 336 → 276 µs, S3's 802 → 681 µs, the same bits)."""


def float32s(*arrays) -> bool:
    """Whether Numba types ``arrays`` are all arrays of float32 (what the tiles take)."""
    return all(isinstance(a, types.Array) and a.dtype == types.float32 for a in arrays)


@intrinsic
def tile(typingctx, a, a0, lda, ka, w, w0, ldw, c, c0, ldc, K, R, V, ACC):
    """c[c0 + r·ldc + j] (+)= Σ_{k<K} a[a0 + r·lda + k·ka] · w[w0 + k·ldw + j] for rows r < R
    and columns j < 16·V, over the flat data of C-contiguous float32 arrays; R, V and ACC are
    literals: ACC 1 adds to c, 0 overwrites it. ``ka`` is 1 for a's rows as they lie, the
    row length for a transposed a (a weight gradient's sum over a batch: a[k, r])."""
    if not all(isinstance(n, types.IntegerLiteral) for n in (R, V, ACC)) or not float32s(a, w, c):
        return None  # literals only; the tiles are float32's
    rows, vectors, add = (n.literal_value for n in (R, V, ACC))

    def codegen(context, builder, signature, args):
        i64, vec = ir.IntType(64), ir.VectorType(ir.FloatType(), WIDTH)
        if _AVX512:  # the function's other loops (the gates) vectorize 16 wide too
            for attribute in ('"prefer-vector-width"="512"', '"min-legal-vector-width"="512"'):
                set.add(builder.function.attributes, attribute)  # llvmlite knows no such name
        a_p, w_p, c_p = (
            context.make_array(signature.args[i])(context, builder, value=args[i]).data
            for i in (0, 4, 7)
        )
        wide = [
            builder.sext(args[i], i64) if args[i].type.width < 64 else args[i]
            for i in (1, 2, 3, 5, 6, 8, 9, 10)
        ]
        a0_, lda_, ka_, w0_, ldw_, c0_, ldc_, K_ = wide
        fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vec, [vec, vec, vec]), "llvm.fma.v16f32"
        )
        const = lambda n: ir.Constant(i64, n)

        def c_at(r, v):
            at = builder.add(builder.add(c0_, builder.mul(const(r), ldc_)), const(WIDTH * v))
            return builder.bitcast(builder.gep(c_p, [at]), vec.as_pointer())

        zero = ir.Constant(vec, [0.0] * WIDTH)
        first = [[builder.load(c_at(r, v), align=4) if add else zero for v in range(vectors)]
                 for r in range(rows)]  # fmt: skip
        start = builder.block
        head = builder.append_basic_block("tile.head")
        body = builder.append_basic_block("tile.body")
        done = builder.append_basic_block("tile.done")
        builder.branch(head)
        builder.position_at_end(head)
        k = builder.phi(i64)
        acc = [[builder.phi(vec) for _ in range(vectors)] for _ in range(rows)]
        k.add_incoming(const(0), start)
        for r in range(rows):
            for v in range(vectors):
                acc[r][v].add_incoming(first[r][v], start)
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
            at = builder.add(builder.add(a0_, builder.mul(const(r), lda_)), builder.mul(k, ka_))
            p = builder.gep(a_p, [at])
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
                builder.store(acc[r][v], c_at(r, v), align=4)
        return context.get_dummy_value()

    return types.void(a, a0, lda, ka, w, w0, ldw, c, c0, ldc, K, R, V, ACC), codegen


@njit(**INLINE)
def _tiles_of_rows(a, a0, lda, ka, w, w0, ldw, n, c, c0, ldc, K, R, ACC):
    """One block of R rows (a literal) over n columns: tiles of 6 vectors, then of 3, then of
    one (3H at widths of a multiple of 16 is a multiple of 3 vectors). Few tile shapes: each is
    compiled into every loop that calls this, and 24 of them made the stream step's compile
    take minutes."""
    j = 0
    while j + WIDTH * TILE_VECTORS <= n:
        tile(a, a0, lda, ka, w, w0 + j, ldw, c, c0 + j, ldc, K, R, TILE_VECTORS, ACC)
        j += WIDTH * TILE_VECTORS
    if j + 3 * WIDTH <= n:
        tile(a, a0, lda, ka, w, w0 + j, ldw, c, c0 + j, ldc, K, R, 3, ACC)
        j += 3 * WIDTH
    while j < n:
        tile(a, a0, lda, ka, w, w0 + j, ldw, c, c0 + j, ldc, K, R, 1, ACC)
        j += WIDTH


@njit(**INLINE)
def tiled_product(a, a0, lda, ka, m, K, w, w0, ldw, n, c, c0, ldc, ACC):
    """c[c0 + i·ldc + j] (+)= Σ_{k<K} a[a0 + i·lda + k·ka] · w[w0 + k·ldw + j] for i < m,
    j < n (n a multiple of `WIDTH`; ACC a literal, 1 to add to c), on tiles of 4 rows and the
    last 1–3 rows one at a time. ka = 1, lda = a's row length: a as it lies; lda = 1, ka = its
    row length: a transposed."""
    i = 0
    while i + TILE_ROWS <= m:
        _tiles_of_rows(
            a, a0 + i * lda, lda, ka, w, w0, ldw, n, c, c0 + i * ldc, ldc, K, TILE_ROWS, ACC
        )
        i += TILE_ROWS
    while i < m:
        _tiles_of_rows(a, a0 + i * lda, lda, ka, w, w0, ldw, n, c, c0 + i * ldc, ldc, K, 1, ACC)
        i += 1
