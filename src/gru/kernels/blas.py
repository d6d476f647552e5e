"""The recurrence for large hidden sizes: one BLAS GEMM per time step, over the whole batch.

At large H the step is dominated by h @ W_hhᵀ (B × H × 3H multiply-adds), and a tuned GEMM
beats any loop written here. The compiled time loop therefore calls an external Fortran
``sgemm_`` / ``dgemm_`` (LP64: 32-bit integers) through a symbol registered with LLVM, so the
loop stays compiled (no Python per step) and the code stays cacheable on disk. Whoever owns a
fast BLAS (``gru.ops`` binds the MKL that torch carries) calls `bind` once; until then
`available()` is False and the row kernels serve every size.

bfloat16: where the library also exports MKL's ``gemm_bf16bf16f32_`` (the arguments of
``sgemm_``, with A and B bfloat16 stored as 16-bit integers and alpha, beta and C float32:
bf16 products, float32 accumulation), `bind` registers it too and `bf16_available()` is True;
`gemm_bf16` calls it from compiled code, and `gru.kernels.bf16` runs its layers on it.

Shapes and the meaning of every array are those of `gru.kernels.rows`.
"""

from __future__ import annotations

import ctypes
import os

import llvmlite.binding as llvm
import numpy as np
from numba import njit, types

from gru.kernels.activations import FASTMATH
from gru.kernels.products import INLINE
from gru.kernels.rows import gate_grads, gates_after, gates_before_n, gates_before_rz
from gru.kernels.variants import gate_grads as gate_grads_v
from gru.kernels.variants import gates_after as gates_after_v
from gru.kernels.variants import gates_before_n as gates_before_n_v
from gru.kernels.variants import gates_before_rz as gates_before_rz_v
from gru.kernels.variants import layer_norm_backward_row, layer_norm_row

__all__ = [
    "available",
    "backward",
    "backward_variants",
    "bf16_available",
    "bind",
    "forward",
    "forward_variants",
    "gates_of_step",
    "gemm_bf16",
    "grads_of_step",
    "n_of_step",
    "product",
    "reset_gate_grads",
]

_SIGNATURE = types.void(*([types.intp] * 13))  # every Fortran argument is a pointer
_sgemm = types.ExternalFunction("gru_kernels_sgemm", _SIGNATURE)
_dgemm = types.ExternalFunction("gru_kernels_dgemm", _SIGNATURE)
_gemm_bf16 = types.ExternalFunction("gru_kernels_gemm_bf16", _SIGNATURE)
_compute = types.ExternalFunction(  # cblas_sgemm_compute, bound by `gru.kernels.packed.bind`
    "gru_kernels_sgemm_compute",
    types.void(*[types.int32] * 6, types.intp, types.int32, types.intp, types.int32,
               types.float32, types.intp, types.int32),
)  # fmt: skip
_bound: list[str] = []
_bound_bf16: list[str] = []


def bind(library: str | os.PathLike) -> bool:
    """Use the ``sgemm_`` and ``dgemm_`` of a shared library; False if it has none. Its
    ``gemm_bf16bf16f32_``, where it has one, is bound too (see `bf16_available`)."""
    try:
        lib = ctypes.CDLL(os.fspath(library))
        sgemm, dgemm = lib.sgemm_, lib.dgemm_
    except (OSError, AttributeError):
        return False
    llvm.add_symbol("gru_kernels_sgemm", ctypes.cast(sgemm, ctypes.c_void_p).value)
    llvm.add_symbol("gru_kernels_dgemm", ctypes.cast(dgemm, ctypes.c_void_p).value)
    _bound[:] = [os.fspath(library)]
    bf16 = getattr(lib, "gemm_bf16bf16f32_", None)
    if bf16 is not None:
        llvm.add_symbol("gru_kernels_gemm_bf16", ctypes.cast(bf16, ctypes.c_void_p).value)
        _bound_bf16[:] = [os.fspath(library)]
    return True


def available() -> bool:
    """Whether `bind` has given the kernels a BLAS."""
    return bool(_bound)


def bf16_available() -> bool:
    """Whether `bind` has given the kernels a bfloat16 GEMM (``gemm_bf16bf16f32_``)."""
    return bool(_bound_bf16)


_JIT = {"nogil": True, "fastmath": FASTMATH, "error_model": "numpy", "cache": True}


@njit(**_JIT)
def _gemm(args, scalars, transposed_w, m, n, k, w, w_offset, ldw, x, ldx, beta, c, c_offset, ldc):
    """Row-major ``c[:, :m] = x[:, :k] @ op(w)`` (+ beta·c) with n rows, via column-major BLAS.

    transposed_w: c = x @ W[rows]ᵀ with W (…, k) row-major (m rows from w_offset);
    otherwise c = x @ W with W (k, m) row-major. ``args`` (int32 scratch, 8) and ``scalars``
    (dtype scratch, 2) hold the values BLAS takes by address.
    """
    args[0] = ord("T") if transposed_w else ord("N")
    args[1] = ord("N")
    args[2] = m
    args[3] = n
    args[4] = k
    args[5] = ldw
    args[6] = ldx
    args[7] = ldc
    scalars[0] = 1.0
    scalars[1] = beta
    p = args.ctypes.data
    size = c.itemsize
    call = (
        p,
        p + 4,
        p + 8,
        p + 12,
        p + 16,
        scalars.ctypes.data,
        w.ctypes.data + w_offset * size,
        p + 20,
        x.ctypes.data,
        p + 24,
        scalars.ctypes.data + size,
        c.ctypes.data + c_offset * size,
        p + 28,
    )
    if size == 4:
        _sgemm(*call)
    else:
        _dgemm(*call)


@njit(**_JIT)
def gemm_bf16(
    args, scalars, transposed_w, m, n, k, w, w_offset, ldw, x, ldx, beta, c, c_offset, ldc
):
    """`_gemm` with w and x bfloat16 (uint16 arrays of their bits; offsets in elements), c and
    ``scalars`` float32: ``c[:, :m] = x[:, :k] @ op(w)`` (+ beta·c), accumulated in float32."""
    args[0] = ord("T") if transposed_w else ord("N")
    args[1] = ord("N")
    args[2] = m
    args[3] = n
    args[4] = k
    args[5] = ldw
    args[6] = ldx
    args[7] = ldc
    scalars[0] = 1.0
    scalars[1] = beta
    p = args.ctypes.data
    _gemm_bf16(
        p,
        p + 4,
        p + 8,
        p + 12,
        p + 16,
        scalars.ctypes.data,
        w.ctypes.data + w_offset * 2,
        p + 20,
        x.ctypes.data,
        p + 24,
        scalars.ctypes.data + 4,
        c.ctypes.data + c_offset * 4,
        p + 28,
    )


@njit(**INLINE)
def product(
    args, scalars, transposed_w, m, n, k, w, w_offset, ldw, x, x_offset, ldx, beta, c, ldc, packed
):
    """`_gemm`'s ``c[:, :m] = x[:, offset: offset + k] @ op(w)`` (+ beta·c) for the n rows of x
    and c, on ``packed`` (op(w) packed by `gru.kernels.packed`, float32) unless it is empty."""
    if packed.shape[0] == 0:
        xs = x if x_offset == 0 else x[:, x_offset:]
        _gemm(args, scalars, transposed_w, m, n, k, w, w_offset, ldw, xs, ldx, beta, c, 0, ldc)
    else:
        _compute(101, 111, 151, n, m, k, x.ctypes.data + x_offset * x.itemsize, ldx,
                 packed.ctypes.data, m, beta, c.ctypes.data, ldc)  # fmt: skip


# The per-step work around the products, for the rows b0 + i of the batch whose state and
# scratch are rows i of h, gh, rh, zbuf, d_h, dgs and d_rh (b0 = 0 here; `gru.kernels.packed`
# runs a shard of rows from b0).


@njit(**INLINE)
def gates_of_step(
    s, gx, gh, b_hn, h, lengths, reverse, reset_after, out, rh, zbuf, saved, save, b0
):  # fmt: skip
    """Step s of rows b0 … b0 + len(h) − 1, given gh = h W_hhᵀ: reset after, the new h; reset
    before, r and z (r ⊙ h into rh, for the product `n_of_step` needs). Rows past their
    length write zeros. The arrays are those of `gru.kernels.rows`."""
    for i in range(h.shape[0]):
        b = b0 + i
        L = lengths[b]
        if s >= L:
            for k in range(h.shape[1]):
                out[s, b, k] = 0.0
                rh[i, k] = 0.0
            continue
        t = L - 1 - s if reverse else s
        if reset_after:
            gates_after(gx, t, b, gh, b_hn, h, i, out, saved, save)
        else:
            gates_before_rz(gx, t, b, gh, h, i, rh, zbuf, saved, save)


@njit(**INLINE)
def n_of_step(s, gx, gh, h, lengths, reverse, zbuf, out, saved, save, b0):
    """Reset before: step s's candidate and new h of the rows, given gh[:, 2H:] = W_hn (r ⊙ h)."""
    for i in range(h.shape[0]):
        L = lengths[b0 + i]
        if s < L:
            t = L - 1 - s if reverse else s
            gates_before_n(gx, t, b0 + i, gh, h, i, zbuf, out, saved, save)


@njit(**INLINE)
def row_of_step(s, b, i, lengths, reverse, h0, out, d_out, d_h, dgs, dg, h_prev):
    """Backward step s of batch row b (scratch row i): its position t, with h_prev[t, b] filled
    and ∂L/∂h_t added to d_h[i]; or −1 past its length, where dgs[i], dg[s, b] and
    h_prev[s, b] are zeroed (padding: nothing flows)."""
    H = h0.shape[1]
    L = lengths[b]
    if s >= L:
        for k in range(3 * H):
            dgs[i, k] = 0.0
        for k in range(4 * H):
            dg[s, b, k] = 0.0
        for k in range(H):
            h_prev[s, b, k] = 0.0
        return -1
    t = L - 1 - s if reverse else s
    tp = t + 1 if reverse else t - 1
    for k in range(H):
        h_prev[t, b, k] = h0[b, k] if s == 0 else out[tp, b, k]
        d_h[i, k] += d_out[t, b, k]
    return t


@njit(**INLINE)
def product_row(dg, t, b, dgs, i, reset_after):
    """dgs[i], row b's row for the recurrent products at t: [da_r | da_z | da_n ⊙ r] (reset
    after) or [· | da_z | da_n] (reset before)."""
    H = dgs.shape[1] // 3
    for k in range(2 * H):
        dgs[i, k] = dg[t, b, H + k]
    for k in range(H):
        dgs[i, 2 * H + k] = dg[t, b, k] if reset_after else dg[t, b, 3 * H + k]


@njit(**INLINE)
def grads_of_step(
    s, d_out, out, h0, saved, lengths, reverse, reset_after, dg, h_prev, d_h, dgs, db, b0
):  # fmt: skip
    """Backward step s of the rows (d_h holds ∂L/∂h_t of each): h_prev, dg and db, and dgs,
    the rows of the recurrent products (`product_row`). Rows past their length write zeros."""
    for i in range(d_h.shape[0]):
        b = b0 + i
        t = row_of_step(s, b, i, lengths, reverse, h0, out, d_out, d_h, dgs, dg, h_prev)
        if t >= 0:
            gate_grads(d_h, i, saved, h_prev, dg, t, b, db, reset_after)
            product_row(dg, t, b, dgs, i, reset_after)


@njit(**INLINE)
def reset_gate_grads(s, d_rh, saved, h_prev, lengths, reverse, dg, db, dgs, d_h, b0):
    """Reset before, given d_rh = ∂L/∂(r ⊙ h) of the rows: da_r into dg, db and dgs[:, :H],
    and d_rh ⊙ r added to d_h."""
    H = d_rh.shape[1]
    for i in range(d_rh.shape[0]):
        b = b0 + i
        L = lengths[b]
        if s >= L:
            continue
        t = L - 1 - s if reverse else s
        for k in range(H):
            r = saved[t, b, k]
            da_r = d_rh[i, k] * h_prev[t, b, k] * r * (1.0 - r)
            dg[t, b, H + k] = da_r
            db[H + k] += da_r
            dgs[i, k] = da_r
            d_h[i, k] += d_rh[i, k] * r


@njit(**_JIT)
def forward(
    gx, h0, w_hh, b_hn, lengths, reverse, reset_after, save, out, h_n, saved, b0, b1, w_first, w_n
):  # fmt: skip
    """Rows b0 ≤ b < b1 step by step, h @ W_hhᵀ by BLAS; fills their out, h_n and (if save)
    saved. ``w_first`` (W_hh's rows that multiply h: all, or r and z before the product) and
    ``w_n`` (W_hn, reset before) packed by `gru.kernels.packed`, or empty arrays for BLAS calls
    on W_hh as it is."""
    T, H, m = gx.shape[0], h0.shape[1], b1 - b0
    args = np.empty(8, np.int32)
    scalars = np.empty(2, gx.dtype)
    h = h0[b0:b1].copy()  # (m, H)
    gh = np.empty((m, 3 * H), gx.dtype)
    rh = np.zeros((m, H), gx.dtype)
    zbuf = np.empty((m, H), gx.dtype)
    n = 3 * H if reset_after else 2 * H
    for s in range(T):
        product(args, scalars, True, n, m, H, w_hh, 0, H, h, 0, H, 0.0, gh, 3 * H, w_first)
        gates_of_step(
            s, gx, gh, b_hn, h, lengths, reverse, reset_after, out, rh, zbuf, saved, save, b0
        )
        if not reset_after:  # n from W_hn (r ⊙ h)    (m, H) @ (H, H)
            product(args, scalars, True, H, m, H, w_hh, 2 * H * H, H, rh, 0, H, 0.0, gh, 3 * H, w_n)
            n_of_step(s, gx, gh, h, lengths, reverse, zbuf, out, saved, save, b0)
    h_n[b0:b1] = h


@njit(**_JIT)
def backward(
    d_out, d_hn, out, h0, saved, w_hh, lengths, reverse, reset_after, dg, h_prev, dh0, db,
    b0, b1, w_all, w_rz, w_n,
):  # fmt: skip
    """Back-propagation through rows b0 ≤ b < b1 step by step, the recurrent products by BLAS:
    fills what `gru.kernels.rows.backward_rows` fills for them, db with the sums over these
    rows. ``w_all`` (W_hh), ``w_rz`` (its r and z rows) and ``w_n`` (W_hn) as B of
    ``dgs @ W`` packed by `gru.kernels.packed` (reset after: w_all; before: the others), or
    empty arrays for BLAS calls on W_hh as it is."""
    T, H, m = d_out.shape[0], h0.shape[1], b1 - b0
    args = np.empty(8, np.int32)
    scalars = np.empty(2, d_out.dtype)
    d_h = d_hn[b0:b1].copy()  # (m, H): ∂L/∂h at the current step
    dgs = np.empty((m, 3 * H), d_out.dtype)  # this step's rows for the recurrent products
    d_rh = np.empty((m, H), d_out.dtype)
    db[:] = 0.0
    for s in range(T - 1, -1, -1):
        grads_of_step(
            s, d_out, out, h0, saved, lengths, reverse, reset_after, dg, h_prev, d_h, dgs, db, b0
        )
        if reset_after:  # d_h += [da_r | da_z | da_n ⊙ r] @ W_hh     (m, 3H) @ (3H, H)
            product(args, scalars, False, H, m, 3 * H, w_hh, 0, H, dgs, 0, 3 * H, 1.0, d_h, H,
                    w_all)  # fmt: skip
            continue
        # d(r ⊙ h) = da_n @ W_hn, then da_r, then d_h += [da_r | da_z] @ W_h{r,z}
        product(args, scalars, False, H, m, H, w_hh, 2 * H * H, H, dgs, 2 * H, 3 * H, 0.0, d_rh,
                H, w_n)  # fmt: skip
        reset_gate_grads(s, d_rh, saved, h_prev, lengths, reverse, dg, db, dgs, d_h, b0)
        product(args, scalars, False, H, m, 2 * H, w_hh, 0, H, dgs, 0, 3 * H, 1.0, d_h, H, w_rz)
    dh0[b0:b1] = d_h


# --- the variants ---------------------------------------------------------------------------
# The same loops around the per-row helpers of `gru.kernels.variants`, whose docstring defines
# mask, keep, ln, layer_norm, H_real and ln_saved: h̄ = m ⊙ h for the whole batch, then one GEMM.


@njit(**_JIT)
def forward_variants(
    gx, h0, w_hh, b_hn, lengths, reverse, reset_after, save, out, h_n, saved,
    mask, keep, ln, layer_norm, H_real, ln_saved, b0, b1, w_first, w_n,
):  # fmt: skip
    """`forward` with the variants, rows b0 ≤ b < b1: fills what
    `gru.kernels.variants.forward_rows` fills. ``w_first`` (W_hh's rows that multiply h̄:
    all, or r and z before the product) and ``w_n`` (W_hn, reset before) packed by
    `gru.kernels.packed`, or empty arrays for BLAS calls on W_hh as it is."""
    T, H, m = gx.shape[0], h0.shape[1], b1 - b0
    args = np.empty(8, np.int32)
    scalars = np.empty(2, gx.dtype)
    h = h0[b0:b1].copy()  # (m, H)
    hbar = np.empty((m, H), gx.dtype)  # m ⊙ h
    gh = np.empty((m, 3 * H), gx.dtype)
    rh = np.zeros((m, H), gx.dtype)
    zbuf = np.empty((m, H), gx.dtype)
    n = 3 * H if reset_after else 2 * H
    for s in range(T):
        for i in range(m):
            for k in range(H):
                hbar[i, k] = h[i, k] * mask[b0 + i, k]
        product(args, scalars, True, n, m, H, w_hh, 0, H, hbar, 0, H, 0.0, gh, 3 * H, w_first)
        for i in range(m):
            b = b0 + i
            L = lengths[b]
            if s >= L:
                for k in range(H):
                    out[s, b, k] = 0.0
                    rh[i, k] = 0.0
                continue
            t = L - 1 - s if reverse else s
            if reset_after:
                if layer_norm:
                    layer_norm_row(gh, i, ln, H_real, ln_saved, t, b, save)
                gates_after_v(gx, t, b, gh, b_hn, h, i, out, saved, save, keep)
            else:
                gates_before_rz_v(gx, t, b, gh, hbar, i, rh, zbuf, saved, save)
        if not reset_after:  # n from W_hn (r ⊙ h̄)    (m, H) @ (H, H)
            product(args, scalars, True, H, m, H, w_hh, 2 * H * H, H, rh, 0, H, 0.0, gh, 3 * H, w_n)
            for i in range(m):
                L = lengths[b0 + i]
                if s < L:
                    t = L - 1 - s if reverse else s
                    gates_before_n_v(gx, t, b0 + i, gh, h, i, zbuf, out, saved, save, keep)
    h_n[b0:b1] = h


@njit(**_JIT)
def backward_variants(
    d_out, d_hn, out, h0, saved, w_hh, lengths, reverse, reset_after, dg, h_prev, dh0, db,
    mask, keep, ln, layer_norm, H_real, ln_saved, dgh, dln, b0, b1, w_all, w_rz, w_n,
):  # fmt: skip
    """`backward` for `forward_variants`, rows b0 ≤ b < b1: fills what
    `gru.kernels.variants.backward_rows` fills, db (4H) and dln (2, 3H) with the sums over
    these rows. ``w_all`` (W_hh), ``w_rz`` (its r and z rows) and ``w_n`` (W_hn) as B of
    ``dgs @ W`` packed by `gru.kernels.packed` (reset after: w_all; before: the others), or
    empty arrays for BLAS calls on W_hh as it is."""
    T, H, m = d_out.shape[0], h0.shape[1], b1 - b0
    args = np.empty(8, np.int32)
    scalars = np.empty(2, d_out.dtype)
    d_h = d_hn[b0:b1].copy()  # (m, H): ∂L/∂h at the current step
    dgs = np.empty((m, 3 * H), d_out.dtype)  # this step's rows for the recurrent products
    d_rh = np.empty((m, H), d_out.dtype)
    d_hbar = np.empty((m, H), d_out.dtype)  # ∂L/∂h̄
    db[:] = 0.0
    dln[:, :] = 0.0
    for s in range(T - 1, -1, -1):
        for i in range(m):
            b = b0 + i
            t = row_of_step(s, b, i, lengths, reverse, h0, out, d_out, d_h, dgs, dg, h_prev)
            if t < 0:  # padding
                if layer_norm:
                    for k in range(3 * H):
                        dgh[s, b, k] = 0.0
                continue
            gate_grads_v(d_h, i, saved, h_prev, dg, t, b, db, reset_after, keep, mask)
            if reset_after and layer_norm:  # ∂L/∂(W_hh h̄) through the layer norm
                layer_norm_backward_row(dg, t, b, ln, H_real, ln_saved, dgh, dln)
                for k in range(3 * H):
                    dgs[i, k] = dgh[t, b, k]
                continue
            product_row(dg, t, b, dgs, i, reset_after)
        if reset_after:  # ∂L/∂h̄ = dgs @ W_hh     (m, 3H) @ (3H, H)
            product(args, scalars, False, H, m, 3 * H, w_hh, 0, H, dgs, 0, 3 * H, 0.0, d_hbar,
                    H, w_all)  # fmt: skip
        else:
            # d(r ⊙ h̄) = da_n @ W_hn, then da_r, then ∂L/∂h̄ = d(r ⊙ h̄) ⊙ r + [da_r | da_z] @ W
            product(args, scalars, False, H, m, H, w_hh, 2 * H * H, H, dgs, 2 * H, 3 * H, 0.0,
                    d_rh, H, w_n)  # fmt: skip
            for i in range(m):
                b = b0 + i
                L = lengths[b]
                if s >= L:
                    for k in range(H):
                        d_hbar[i, k] = 0.0
                    continue
                t = L - 1 - s if reverse else s
                for k in range(H):
                    r = saved[t, b, k]
                    da_r = d_rh[i, k] * h_prev[t, b, k] * mask[b, k] * r * (1.0 - r)
                    dg[t, b, H + k] = da_r
                    db[H + k] += da_r
                    dgs[i, k] = da_r
                    d_hbar[i, k] = d_rh[i, k] * r
            product(args, scalars, False, H, m, 2 * H, w_hh, 0, H, dgs, 0, 3 * H, 1.0, d_hbar,
                    H, w_rz)  # fmt: skip
        for i in range(m):  # rows past their end have d_hbar = 0
            for k in range(H):
                d_h[i, k] += d_hbar[i, k] * mask[b0 + i, k]
    dh0[b0:b1] = d_h
