"""The recurrence with the variants of `gru.reference` (layer norm, zoneout, recurrent
dropout), compiled like `gru.kernels.rows` and sharded the same way.

These are separate entry points, compiled only when a variant is used, so the plain GRU pays
nothing for them. Each row is processed alone (no row pairs), which keeps the code close to the
equations; the products and the gate math vectorize as in `rows`. For large H,
`gru.kernels.blas` runs the same per-row helpers around one GEMM per step.

Shapes as in `gru.kernels.rows` (H here is the engine's padded width Hp; ``H_real`` the
layer's own H), plus:

    mask    (B, H)      m, the recurrent dropout mask (ones when off): h̄ = m ⊙ h
    keep    (T, B, H)   zoneout's d_t by position (zeros when zoneout is off)
    ln      (2, 3H)     [g_hh | c_hh], the recurrent layer norm's gain and bias (zeros in
                        padded units); the input layer norm is applied by the caller to gx
    ln_saved (T, B, 3H + 1)  the normalized recurrent projection â and its scale s

Reset after: gh = LN(W_hh h̄) if ``layer_norm`` else W_hh h̄. Reset before (no layer norm):
r, z from W_h{r,z} h̄ and n from W_hn (r ⊙ h̄). Then h̃ = n + z (h − n) and, with zoneout,
h_t = h̃ + d_t (h − h̃).
"""

from __future__ import annotations

import numpy as np
from numba import carray, njit

from gru.kernels.activations import sigmoid, tanh
from gru.kernels.products import (
    ENTRY,
    INLINE,
    STACK_HIDDEN,
    TWO_ROWS,
    TWO_ROWS_3H,
    matvec_t,
    position,
    scratch,
    vecmat_add,
)

__all__ = [
    "backward_rows",
    "forward_rows",
    "gate_grads",
    "gates_after",
    "gates_before_n",
    "gates_before_rz",
    "layer_norm_backward_row",
    "layer_norm_row",
]


@njit(**INLINE)
def _layer_norm_row(gh, i, ln, H_real, ln_saved, t, b, save):
    n = ln.shape[1]  # 3·Hp: gh is a scratch row of the largest size, longer than that
    count = 3 * H_real
    total = 0.0  # the statistics in float64, the elementwise pass in the array's dtype
    for j in range(n):
        total += gh[i, j]
    mean = total / count
    sq = 0.0
    for j in range(n):
        e = gh[i, j] - mean
        sq += e * e
    var = (sq - (n - count) * mean * mean) / count  # the padded zeros are not values of a
    s = np.sqrt(var + 1e-5)
    m = gh.dtype.type(mean)
    inv = gh.dtype.type(1.0 / s)
    if save:
        for j in range(n):
            a_hat = (gh[i, j] - m) * inv
            ln_saved[t, b, j] = a_hat
            gh[i, j] = ln[0, j] * a_hat + ln[1, j]
        ln_saved[t, b, n] = s
    else:
        for j in range(n):
            gh[i, j] = ln[0, j] * ((gh[i, j] - m) * inv) + ln[1, j]


@njit(**INLINE)
def layer_norm_row(gh, i, ln, H_real, ln_saved, t, b, save):
    """gh[i] (3H) ← g ⊙ â + c with â = (gh − mean) / s over the layer's 3·H_real values."""
    if save:  # ``save`` a constant in each copy of the loops, so that they vectorize
        _layer_norm_row(gh, i, ln, H_real, ln_saved, t, b, True)
    else:
        _layer_norm_row(gh, i, ln, H_real, ln_saved, t, b, False)


@njit(**INLINE)
def _gates_after(gx, t, b, gh, b_hn, h, i, out, saved, save, keep):
    H = gx.shape[2] // 3
    for k in range(H):
        r = sigmoid(gx[t, b, k] + gh[i, k])
        z = sigmoid(gx[t, b, H + k] + gh[i, H + k])
        hn = gh[i, 2 * H + k] + b_hn[k]
        n = tanh(gx[t, b, 2 * H + k] + r * hn)
        h_new = n + z * (h[i, k] - n)
        h_new = h_new + keep[t, b, k] * (h[i, k] - h_new)  # zoneout (d_t = 0 when off)
        if save:
            saved[t, b, k] = r
            saved[t, b, H + k] = z
            saved[t, b, 2 * H + k] = n
            saved[t, b, 3 * H + k] = hn
        out[t, b, k] = h_new
        h[i, k] = h_new


@njit(**INLINE)
def _gates_before_rz(gx, t, b, gh, hbar, i, rh, z_, saved, save):
    H = gx.shape[2] // 3
    for k in range(H):
        r = sigmoid(gx[t, b, k] + gh[i, k])
        z = sigmoid(gx[t, b, H + k] + gh[i, H + k])
        rh[i, k] = r * hbar[i, k]
        z_[i, k] = z
        if save:
            saved[t, b, k] = r
            saved[t, b, H + k] = z


@njit(**INLINE)
def _gates_before_n(gx, t, b, gh, h, i, z_, out, saved, save, keep):
    H = gx.shape[2] // 3
    for k in range(H):
        n = tanh(gx[t, b, 2 * H + k] + gh[i, k])
        z = z_[i, k]
        h_new = n + z * (h[i, k] - n)
        h_new = h_new + keep[t, b, k] * (h[i, k] - h_new)  # zoneout (d_t = 0 when off)
        if save:
            saved[t, b, 2 * H + k] = n
        out[t, b, k] = h_new
        h[i, k] = h_new


# The per-row helpers read and write the scratch rows h[i], gh[i], … (the row kernels use row 0;
# `gru.kernels.blas` row b of its (B, ·) buffers). The public ones test ``save`` once and
# inline the loop with it as a constant, as `gru.kernels.rows` does.


@njit(**INLINE)
def gates_after(gx, t, b, gh, b_hn, h, i, out, saved, save, keep):
    """Reset after: gates of row b at t from gh[i] (3H: W_hh h̄, layer-normed if on), with
    zoneout; h[i] and out[t, b] get h_t."""
    if save:
        _gates_after(gx, t, b, gh, b_hn, h, i, out, saved, True, keep)
    else:
        _gates_after(gx, t, b, gh, b_hn, h, i, out, saved, False, keep)


@njit(**INLINE)
def gates_before_rz(gx, t, b, gh, hbar, i, rh, z_, saved, save):
    """Reset before, first half: r, z from gh[i] = W_h{r,z} h̄ (2H); rh[i] = r ⊙ h̄[i]."""
    if save:
        _gates_before_rz(gx, t, b, gh, hbar, i, rh, z_, saved, True)
    else:
        _gates_before_rz(gx, t, b, gh, hbar, i, rh, z_, saved, False)


@njit(**INLINE)
def gates_before_n(gx, t, b, gh, h, i, z_, out, saved, save, keep):
    """Reset before, second half: n from gh[i] = W_hn (r ⊙ h̄) (H), then zoneout; h[i] and
    out[t, b] get h_t."""
    if save:
        _gates_before_n(gx, t, b, gh, h, i, z_, out, saved, True, keep)
    else:
        _gates_before_n(gx, t, b, gh, h, i, z_, out, saved, False, keep)


@njit(**INLINE)
def _forward_impl(
    gx, h0, w_hh_t, b_hn, lengths, reverse, reset_after, save, out, h_n, saved,
    mask, keep, ln, layer_norm, H_real, ln_saved, b0, b1, h, hbar, gh, rh, z_,
):  # fmt: skip
    T = gx.shape[0]
    H = h0.shape[1]
    for b in range(b0, b1):
        L = lengths[b]
        for k in range(H):
            h[0, k] = h0[b, k]
        for s in range(L):
            t = position(s, L, reverse)
            for k in range(H):
                hbar[0, k] = h[0, k] * mask[b, k]
            if reset_after:
                matvec_t(hbar, 0, 0, w_hh_t, 0, 3 * H, gh, False)
                if layer_norm:
                    layer_norm_row(gh, 0, ln, H_real, ln_saved, t, b, save)
                _gates_after(gx, t, b, gh, b_hn, h, 0, out, saved, save, keep)
            else:
                matvec_t(hbar, 0, 0, w_hh_t, 0, 2 * H, gh, False)
                _gates_before_rz(gx, t, b, gh, hbar, 0, rh, z_, saved, save)
                matvec_t(rh, 0, 0, w_hh_t, 2 * H, H, gh, False)
                _gates_before_n(gx, t, b, gh, h, 0, z_, out, saved, save, keep)
        for s in range(L, T):
            for k in range(H):
                out[s, b, k] = 0.0
        for k in range(H):
            h_n[b, k] = h[0, k]


@njit(**INLINE)
def _forward_flags(
    gx, h0, w_hh_t, b_hn, lengths, reverse, reset_after, save, out, h_n, saved,
    mask, keep, ln, layer_norm, H_real, ln_saved, b0, b1, h, hbar, gh, rh, z_,
):  # fmt: skip
    # ``save`` a constant in its own copy of the loops, so that LLVM vectorizes them.
    if save:
        _forward_impl(
            gx, h0, w_hh_t, b_hn, lengths, reverse, reset_after, True, out, h_n, saved,
            mask, keep, ln, layer_norm, H_real, ln_saved, b0, b1, h, hbar, gh, rh, z_,
        )  # fmt: skip
    else:
        _forward_impl(
            gx, h0, w_hh_t, b_hn, lengths, reverse, reset_after, False, out, h_n, saved,
            mask, keep, ln, layer_norm, H_real, ln_saved, b0, b1, h, hbar, gh, rh, z_,
        )  # fmt: skip


@njit(**ENTRY)
def forward_rows(
    gx, h0, w_hh_t, b_hn, lengths, reverse, reset_after, save, out, h_n, saved,
    mask, keep, ln, layer_norm, H_real, ln_saved, b0, b1,
):  # fmt: skip
    """`gru.kernels.rows.forward_rows` with the variants (see the module docstring)."""
    M = STACK_HIDDEN
    h = carray(scratch(TWO_ROWS, gx.dtype), (2, M))
    hbar = carray(scratch(TWO_ROWS, gx.dtype), (2, M))
    gh = carray(scratch(TWO_ROWS_3H, gx.dtype), (2, 3 * M))
    rh = carray(scratch(TWO_ROWS, gx.dtype), (2, M))
    z_ = carray(scratch(TWO_ROWS, gx.dtype), (2, M))
    _forward_flags(
        gx, h0, w_hh_t, b_hn, lengths, reverse, reset_after, save, out, h_n, saved,
        mask, keep, ln, layer_norm, H_real, ln_saved, b0, b1, h, hbar, gh, rh, z_,
    )  # fmt: skip


# --- backward -----------------------------------------------------------------------------


@njit(**INLINE)
def _gate_grads(d_h, i, saved, h_prev, dg, t, b, db, reset_after, keep, mask):
    """As `gru.kernels.rows.gate_grads`, with zoneout's split of ∂L/∂h_t and, reset before,
    c = r ⊙ h̄."""
    H = h_prev.shape[2]
    for k in range(H):
        r = saved[t, b, k]
        z = saved[t, b, H + k]
        n = saved[t, b, 2 * H + k]
        hp = h_prev[t, b, k]
        d = keep[t, b, k]  # zoneout's d_t (0 when off): h_t = h̃ + d (h_{t-1} − h̃)
        direct = d_h[i, k] * d
        dh = d_h[i, k] * (1.0 - d)  # what reaches h̃
        da_n = dh * (1.0 - z) * (1.0 - n * n)
        da_z = dh * (hp - n) * z * (1.0 - z)
        dg[t, b, 2 * H + k] = da_z
        dg[t, b, 3 * H + k] = da_n
        db[2 * H + k] += da_z
        db[3 * H + k] += da_n
        d_h[i, k] = direct + dh * z
        if reset_after:
            hn = saved[t, b, 3 * H + k]
            da_r = da_n * hn * r * (1.0 - r)
            c = da_n * r
            dg[t, b, H + k] = da_r
            dg[t, b, k] = c
            db[H + k] += da_r
            db[k] += c
        else:
            dg[t, b, k] = r * hp * mask[b, k]  # r ⊙ h̄, what W_hn multiplies


@njit(**INLINE)
def gate_grads(d_h, i, saved, h_prev, dg, t, b, db, reset_after, keep, mask):
    """`_gate_grads` with ``reset_after`` a constant in its loop."""
    if reset_after:
        _gate_grads(d_h, i, saved, h_prev, dg, t, b, db, True, keep, mask)
    else:
        _gate_grads(d_h, i, saved, h_prev, dg, t, b, db, False, keep, mask)


@njit(**INLINE)
def _layer_norm_backward_block(dg, t, b, src, j0, n, ln, ln_saved, dgh, dln):
    """dgh[t, b, j0 + k] = u = dy · g for dy = dg[t, b, src + k], k < n; dln += dy · â and dy.
    Returns Σu and Σu·â over the block."""
    sum_u = 0.0
    sum_ua = 0.0
    for k in range(n):
        j = j0 + k
        dy = dg[t, b, src + k]
        a_hat = ln_saved[t, b, j]
        u = dy * ln[0, j]
        sum_u += u
        sum_ua += u * a_hat
        dln[0, j] += dy * a_hat
        dln[1, j] += dy
        dgh[t, b, j] = u
    return sum_u, sum_ua


@njit(**INLINE)
def layer_norm_backward_row(dg, t, b, ln, H_real, ln_saved, dgh, dln):
    """dgh[t, b] = ∂L/∂(W_hh h̄) from dy = [da_r | da_z | c] through the layer norm; dln += the
    gain's and bias's gradients."""
    H = dg.shape[2] // 4
    n = 3 * H
    s = ln_saved[t, b, n]
    count = 3 * H_real
    # dy comes in two pieces of dg: the r and z blocks from dg[H:3H] (da_r, da_z), the n block
    # from dg[:H] (c); one branch-free loop over each, so that both vectorize
    u_rz, ua_rz = _layer_norm_backward_block(dg, t, b, H, 0, 2 * H, ln, ln_saved, dgh, dln)
    u_n, ua_n = _layer_norm_backward_block(dg, t, b, 0, 2 * H, H, ln, ln_saved, dgh, dln)
    inv = 1.0 / s
    mean_u = dg.dtype.type((u_rz + u_n) / count * inv)
    mean_ua = dg.dtype.type((ua_rz + ua_n) / count * inv)
    inv = dg.dtype.type(inv)
    for j in range(n):
        dgh[t, b, j] = dgh[t, b, j] * inv - mean_u - ln_saved[t, b, j] * mean_ua


@njit(**INLINE)
def _backward_impl(
    d_out, d_hn, out, h0, saved, w_hh, lengths, reverse, reset_after, dg, h_prev, dh0,
    mask, keep, ln, layer_norm, H_real, ln_saved, dgh, b0, b1, d_h, d_hbar, d_rh, db, dln,
):  # fmt: skip
    T = d_out.shape[0]
    H = h0.shape[1]
    for b in range(b0, b1):
        L = lengths[b]
        for s in range(L, T):  # padding: nothing flows
            dg[s, b, :] = 0.0
            h_prev[s, b, :] = 0.0
            if layer_norm:
                dgh[s, b, :] = 0.0
        for k in range(H):
            d_h[0, k] = d_hn[b, k]
        for s in range(L - 1, -1, -1):
            t = position(s, L, reverse)
            tp = t + 1 if reverse else t - 1
            for k in range(H):
                h_prev[t, b, k] = h0[b, k] if s == 0 else out[tp, b, k]
                d_h[0, k] += d_out[t, b, k]
            _gate_grads(d_h, 0, saved, h_prev, dg, t, b, db, reset_after, keep, mask)
            for k in range(H):
                d_hbar[0, k] = 0.0
            if reset_after:
                if layer_norm:
                    layer_norm_backward_row(dg, t, b, ln, H_real, ln_saved, dgh, dln)
                    vecmat_add(dgh, t, b, t, b, 0, w_hh, 0, 3 * H, d_hbar, 0, 0, False)
                else:  # [da_r | da_z | c] @ W_hh
                    vecmat_add(dg, t, b, t, b, H, w_hh, 0, 2 * H, d_hbar, 0, 0, False)
                    vecmat_add(dg, t, b, t, b, 0, w_hh, 2 * H, H, d_hbar, 0, 0, False)
            else:
                for k in range(H):
                    d_rh[0, k] = 0.0
                vecmat_add(dg, t, b, t, b, 3 * H, w_hh, 2 * H, H, d_rh, 0, 0, False)
                for k in range(H):
                    r = saved[t, b, k]
                    da_r = d_rh[0, k] * h_prev[t, b, k] * mask[b, k] * r * (1.0 - r)
                    dg[t, b, H + k] = da_r
                    db[H + k] += da_r
                    d_hbar[0, k] = d_rh[0, k] * r
                vecmat_add(dg, t, b, t, b, H, w_hh, 0, 2 * H, d_hbar, 0, 0, False)
            for k in range(H):
                d_h[0, k] += d_hbar[0, k] * mask[b, k]
        for k in range(H):
            dh0[b, k] = d_h[0, k]


@njit(**ENTRY)
def backward_rows(
    d_out, d_hn, out, h0, saved, w_hh, lengths, reverse, reset_after, dg, h_prev, dh0, db,
    mask, keep, ln, layer_norm, H_real, ln_saved, dgh, dln, b0, b1,
):  # fmt: skip
    """`gru.kernels.rows.backward_rows` with the variants. Also fills, with ``layer_norm``,
    dgh (T, B, 3H) = ∂L/∂(W_hh h̄) (for dW_hh = dghᵀ h̄) and dln (2, 3H), the gradients of the
    recurrent layer norm's gain and bias over these rows. h_prev holds h_{t-1}, not h̄."""
    M = STACK_HIDDEN
    d_h = carray(scratch(TWO_ROWS, d_out.dtype), (2, M))
    d_hbar = carray(scratch(TWO_ROWS, d_out.dtype), (2, M))
    d_rh = carray(scratch(TWO_ROWS, d_out.dtype), (2, M))
    acc = np.zeros(db.shape[0], d_out.dtype)
    acc_ln = np.zeros((2, dln.shape[1]), d_out.dtype)
    _backward_impl(
        d_out, d_hn, out, h0, saved, w_hh, lengths, reverse, reset_after, dg, h_prev, dh0,
        mask, keep, ln, layer_norm, H_real, ln_saved, dgh, b0, b1, d_h, d_hbar, d_rh, acc, acc_ln,
    )  # fmt: skip
    db[:] = acc
    dln[:, :] = acc_ln
