"""The building blocks of the compiled loops: compile options, scratch on the stack, the position
of a step, and the vector–matrix products that `gru.kernels.rows` and `gru.kernels.variants`
run around their gate math.

The products are bound by loads, not arithmetic: rows go in pairs that share every load of W_hh,
the inner loops run over contiguous memory and are unrolled four deep (a lone row's eight), so
LLVM vectorizes them.
Shapes as in `gru.kernels.rows`.
"""

from __future__ import annotations

from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from gru.kernels.activations import FASTMATH

__all__ = [
    "ENTRY",
    "FOUR_ROWS",
    "INLINE",
    "STACK_HIDDEN",
    "TWO_ROWS",
    "TWO_ROWS_3H",
    "matvec_t",
    "pointer",
    "position",
    "scratch",
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
