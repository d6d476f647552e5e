"""The compiled recurrence over a range of batch rows: forward, backward and a single step.

Each entry point walks whole sequences for the rows ``b0 <= b < b1`` it is given, so a batch is
sharded over threads by giving each thread a range of rows: no thread waits for another
between time steps. Rows go in pairs that share every load of W_hh (the products are
vector–matrix products, bound by loads, not by arithmetic); the inner loops run over contiguous
memory and are unrolled four deep, so LLVM vectorizes them and the gate math after them.

Three rules keep the loops fast, and the code is written around them:
- no array views inside the time loop (each view costs two atomic reference-count updates):
  helpers take whole arrays and indices;
- scratch lives on the stack (`_stack`), where LLVM can see that it aliases nothing;
- a flag tested inside a loop stops LLVM from vectorizing it, so loop bodies are inlined with
  their flags as constants.

Shapes: T time steps, B batch, H hidden units. Arrays are C-contiguous, all of one float dtype.

    gx      (T, B, 3H)  W_ih x_t + b_ih, plus b_hr and b_hz (and b_hn when reset before)
    w_hh_t  (H, 3H)     W_hhᵀ (forward);  w_hh (3H, H) as stored (backward)
    b_hn    (H,)        the recurrent bias of n, kept apart: reset after multiplies it by r
    lengths (B,)        int64 in [1, T]; steps s >= lengths[b] leave row b untouched
    saved   (T, B, 4H)  [r | z | n | W_hn h + b_hn] (reset after) or (T, B, 3H) [r | z | n]
    dg      (T, B, 4H)  backward's output: [c | da_r | da_z | da_n], see `gate_grads`

Step s of row b reads position t = s, or t = lengths[b] − 1 − s when ``reverse``.
"""

from __future__ import annotations

from numba import carray, njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from gru.kernels.activations import FASTMATH, sigmoid, tanh

_ENTRY = {"nogil": True, "fastmath": FASTMATH, "error_model": "numpy", "cache": True}
_INLINE = {"inline": "always", "fastmath": FASTMATH, "error_model": "numpy"}

STACK_HIDDEN = 512
"""Largest H the row kernels take (their scratch is on the stack); beyond it, BLAS does."""
_TWO_ROWS = 2 * STACK_HIDDEN  # stack sizes must be literals where `_stack` is called
_TWO_ROWS_3H = 6 * STACK_HIDDEN
_FOUR_ROWS = 4 * STACK_HIDDEN


@intrinsic
def _stack(typingctx, size, dtype):
    """A pointer to ``size`` (a literal) uninitialized values on the caller's stack."""
    if not isinstance(size, types.IntegerLiteral) or not isinstance(dtype, types.DType):
        return None
    count = size.literal_value

    def codegen(context, builder, signature, args):
        return cgutils.alloca_once(builder, context.get_value_type(dtype.dtype), size=count)

    return types.CPointer(dtype.dtype)(size, dtype), codegen


@njit(**_INLINE)
def _position(s, L, reverse):
    return L - 1 - s if reverse else s


# --- vector–matrix products -------------------------------------------------------------------
# v and acc are rows of 2-D scratch: v[va, :] (and v[vb, :] when ``pair``).


@njit(**_INLINE)
def _matvec_t(v, va, vb, w_t, j0, n, acc, pair):
    """acc[i, j] = Σ_k v[i, k] w_t[k, j0 + j] for j < n, rows i = va (and vb when ``pair``)."""
    H = w_t.shape[0]
    for j in range(n):
        acc[va, j] = 0.0
        acc[vb, j] = 0.0
    k = 0
    while k + 4 <= H:
        a0, a1, a2, a3 = v[va, k], v[va, k + 1], v[va, k + 2], v[va, k + 3]
        if pair:
            b0, b1, b2, b3 = v[vb, k], v[vb, k + 1], v[vb, k + 2], v[vb, k + 3]
            for j in range(n):
                c0, c1 = w_t[k, j0 + j], w_t[k + 1, j0 + j]
                c2, c3 = w_t[k + 2, j0 + j], w_t[k + 3, j0 + j]
                acc[va, j] += a0 * c0 + a1 * c1 + a2 * c2 + a3 * c3
                acc[vb, j] += b0 * c0 + b1 * c1 + b2 * c2 + b3 * c3
        else:
            for j in range(n):
                acc[va, j] += (
                    a0 * w_t[k, j0 + j]
                    + a1 * w_t[k + 1, j0 + j]
                    + a2 * w_t[k + 2, j0 + j]
                    + a3 * w_t[k + 3, j0 + j]
                )
        k += 4
    while k < H:
        a0, b0 = v[va, k], v[vb, k]
        for j in range(n):
            acc[va, j] += a0 * w_t[k, j0 + j]
        if pair:
            for j in range(n):
                acc[vb, j] += b0 * w_t[k, j0 + j]
        k += 1


@njit(**_INLINE)
def _vecmat_add(v, va_t, va_b, vb_t, vb_b, v0, w, j0, n, acc, ia, ib, pair):
    """acc[i, k] += Σ_j v[t, b, v0 + j] w[j0 + j, k] for j < n, (t, b) = (va_t, va_b) → i = ia,
    and (vb_t, vb_b) → i = ib when ``pair``. v is a (T, B, ·) array of gradients."""
    H = w.shape[1]
    j = 0
    while j + 4 <= n:
        p = v0 + j
        a0, a1, a2, a3 = (
            v[va_t, va_b, p],
            v[va_t, va_b, p + 1],
            v[va_t, va_b, p + 2],
            v[va_t, va_b, p + 3],
        )
        q = j0 + j
        if pair:
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
        else:
            for k in range(H):
                acc[ia, k] += a0 * w[q, k] + a1 * w[q + 1, k] + a2 * w[q + 2, k] + a3 * w[q + 3, k]
        j += 4
    while j < n:
        a0, b0 = v[va_t, va_b, v0 + j], v[vb_t, vb_b, v0 + j]
        for k in range(H):
            acc[ia, k] += a0 * w[j0 + j, k]
        if pair:
            for k in range(H):
                acc[ib, k] += b0 * w[j0 + j, k]
        j += 1


# --- the gate math of one row ---------------------------------------------------------------
# gx, out, saved are (T, B, ·) arrays read at (t, b); h, gh, rh, z are 2-D scratch read at row i.
# Each public helper tests its flag once and inlines a loop body with the flag as a constant.


@njit(**_INLINE)
def _gates_after(gx, t, b, gh, b_hn, h, i, out, saved, save):
    H = gx.shape[2] // 3  # scratch rows are wider than H
    for k in range(H):
        r = sigmoid(gx[t, b, k] + gh[i, k])
        z = sigmoid(gx[t, b, H + k] + gh[i, H + k])
        hn = gh[i, 2 * H + k] + b_hn[k]
        n = tanh(gx[t, b, 2 * H + k] + r * hn)
        h_new = n + z * (h[i, k] - n)  # (1 − z) n + z h, one multiply fewer
        if save:
            saved[t, b, k] = r
            saved[t, b, H + k] = z
            saved[t, b, 2 * H + k] = n
            saved[t, b, 3 * H + k] = hn
        out[t, b, k] = h_new
        h[i, k] = h_new


@njit(**_INLINE)
def gates_after(gx, t, b, gh, b_hn, h, i, out, saved, save):
    """Reset after: gates of row b at t from gh[i] = W_hh h (3H); h[i] and out[t, b] get h_t."""
    if save:
        _gates_after(gx, t, b, gh, b_hn, h, i, out, saved, True)
    else:
        _gates_after(gx, t, b, gh, b_hn, h, i, out, saved, False)


@njit(**_INLINE)
def _gates_before_rz(gx, t, b, gh, h, i, rh, z_, saved, save):
    H = gx.shape[2] // 3
    for k in range(H):
        r = sigmoid(gx[t, b, k] + gh[i, k])
        z = sigmoid(gx[t, b, H + k] + gh[i, H + k])
        rh[i, k] = r * h[i, k]
        z_[i, k] = z
        if save:
            saved[t, b, k] = r
            saved[t, b, H + k] = z


@njit(**_INLINE)
def gates_before_rz(gx, t, b, gh, h, i, rh, z_, saved, save):
    """Reset before, first half: r, z from gh[i] = W_h{r,z} h (2H); rh[i] = r ⊙ h, z_[i] = z."""
    if save:
        _gates_before_rz(gx, t, b, gh, h, i, rh, z_, saved, True)
    else:
        _gates_before_rz(gx, t, b, gh, h, i, rh, z_, saved, False)


@njit(**_INLINE)
def _gates_before_n(gx, t, b, ghn, h, i, z_, out, saved, save):
    H = gx.shape[2] // 3
    for k in range(H):
        n = tanh(gx[t, b, 2 * H + k] + ghn[i, k])
        z = z_[i, k]
        h_new = n + z * (h[i, k] - n)
        if save:
            saved[t, b, 2 * H + k] = n
        out[t, b, k] = h_new
        h[i, k] = h_new


@njit(**_INLINE)
def gates_before_n(gx, t, b, ghn, h, i, z_, out, saved, save):
    """Reset before, second half: n from ghn[i] = W_hn (r ⊙ h) (H); h[i], out[t, b] get h_t."""
    if save:
        _gates_before_n(gx, t, b, ghn, h, i, z_, out, saved, True)
    else:
        _gates_before_n(gx, t, b, ghn, h, i, z_, out, saved, False)


@njit(**_INLINE)
def _gate_grads(d_h, i, saved, h_prev, dg, t, b, db, reset_after):
    H = h_prev.shape[2]
    for k in range(H):
        r = saved[t, b, k]
        z = saved[t, b, H + k]
        n = saved[t, b, 2 * H + k]
        hp = h_prev[t, b, k]
        dh = d_h[i, k]
        da_n = dh * (1.0 - z) * (1.0 - n * n)  # ∂h/∂n = 1 − z, then tanh' = 1 − n²
        da_z = dh * (hp - n) * z * (1.0 - z)  # ∂h/∂z = h − n, then σ' = σ(1 − σ)
        dg[t, b, 2 * H + k] = da_z
        dg[t, b, 3 * H + k] = da_n
        db[2 * H + k] += da_z
        db[3 * H + k] += da_n
        d_h[i, k] = dh * z
        if reset_after:
            hn = saved[t, b, 3 * H + k]
            da_r = da_n * hn * r * (1.0 - r)  # ∂a_n/∂r = W_hn h + b_hn
            c = da_n * r  # the gradient of W_hn h + b_hn
            dg[t, b, H + k] = da_r
            dg[t, b, k] = c
            db[H + k] += da_r
            db[k] += c
        else:
            dg[t, b, k] = r * hp  # what W_hn multiplies


@njit(**_INLINE)
def gate_grads(d_h, i, saved, h_prev, dg, t, b, db, reset_after):
    """Back through the gates of row b at t, from d_h[i] = ∂L/∂h_t (H).

    Writes dg[t, b] = [c | da_r | da_z | da_n]: the gradients of the gates' pre-activations on
    the input side, after c = da_n ⊙ r (reset after: the gradient of W_hn h + b_hn) or
    c = r ⊙ h_{t-1} (reset before: what W_hn multiplies), and adds the gradients to db (4H,).
    Replaces d_h[i] by its direct part d_h ⊙ z; the recurrent products are added by the
    caller. Reset before leaves da_r to `reset_before_dr` (it needs da_n W_hn first).
    """
    if reset_after:
        _gate_grads(d_h, i, saved, h_prev, dg, t, b, db, True)
    else:
        _gate_grads(d_h, i, saved, h_prev, dg, t, b, db, False)


@njit(**_INLINE)
def reset_before_dr(d_rh, i, saved, h_prev, dg, t, b, d_h, db):
    """Reset before: from d_rh[i] = da_n W_hn, finish da_r and add d_rh ⊙ r to d_h[i]."""
    H = h_prev.shape[2]
    for k in range(H):
        r = saved[t, b, k]
        da_r = d_rh[i, k] * h_prev[t, b, k] * r * (1.0 - r)
        dg[t, b, H + k] = da_r
        db[H + k] += da_r
        d_h[i, k] += d_rh[i, k] * r


# --- forward ------------------------------------------------------------------------------


@njit(**_INLINE)
def _forward_step(
    gx, w_hh_t, b_hn, reset_after, save, out, saved, ba, ta, ia, bb, tb, ib, pair, h, gh, rh, z_
):
    """Advance row ba (at position ta, scratch row ia), and bb (tb, ib) when ``pair``."""
    H = w_hh_t.shape[0]
    if reset_after:
        _matvec_t(h, ia, ib, w_hh_t, 0, 3 * H, gh, pair)
        gates_after(gx, ta, ba, gh, b_hn, h, ia, out, saved, save)
        if pair:
            gates_after(gx, tb, bb, gh, b_hn, h, ib, out, saved, save)
    else:
        _matvec_t(h, ia, ib, w_hh_t, 0, 2 * H, gh, pair)
        gates_before_rz(gx, ta, ba, gh, h, ia, rh, z_, saved, save)
        if pair:
            gates_before_rz(gx, tb, bb, gh, h, ib, rh, z_, saved, save)
        _matvec_t(rh, ia, ib, w_hh_t, 2 * H, H, gh, pair)
        gates_before_n(gx, ta, ba, gh, h, ia, z_, out, saved, save)
        if pair:
            gates_before_n(gx, tb, bb, gh, h, ib, z_, out, saved, save)


@njit(**_INLINE)
def _forward_impl(
    gx,
    h0,
    w_hh_t,
    b_hn,
    lengths,
    reverse,
    reset_after,
    save,
    out,
    h_n,
    saved,
    b0,
    b1,
    h,
    gh,
    rh,
    z_,
):
    T = gx.shape[0]
    H = h0.shape[1]
    for ba in range(b0, b1, 2):
        pair = ba + 1 < b1
        bb = ba + 1 if pair else ba
        La = lengths[ba]
        Lb = lengths[bb] if pair else 0
        for k in range(H):
            h[0, k] = h0[ba, k]
            h[1, k] = h0[bb, k]
        for s in range(max(La, Lb)):
            # Both rows advance together while both run; then the longer one alone.
            a_runs = s < La
            first, i_first = (ba, 0) if a_runs else (bb, 1)
            t_first = _position(s, La if a_runs else Lb, reverse)
            tb = _position(s, Lb, reverse)
            _forward_step(
                gx,
                w_hh_t,
                b_hn,
                reset_after,
                save,
                out,
                saved,
                first,
                t_first,
                i_first,
                bb,
                tb,
                1,
                a_runs and s < Lb,
                h,
                gh,
                rh,
                z_,
            )
        for s in range(La, T):
            for k in range(H):
                out[s, ba, k] = 0.0  # past the end of the sequence: padding
        for k in range(H):
            h_n[ba, k] = h[0, k]
        if pair:
            for s in range(Lb, T):
                for k in range(H):
                    out[s, bb, k] = 0.0
            for k in range(H):
                h_n[bb, k] = h[1, k]


@njit(**_ENTRY)
def forward_rows(
    gx, h0, w_hh_t, b_hn, lengths, reverse, reset_after, save, out, h_n, saved, b0, b1
):
    """Run rows b0 <= b < b1 over the whole sequence; fills out, h_n and (if save) saved.

    Needs H <= STACK_HIDDEN (its scratch is on the stack).
    """
    M = STACK_HIDDEN
    h = carray(_stack(_TWO_ROWS, gx.dtype), (2, M))
    gh = carray(_stack(_TWO_ROWS_3H, gx.dtype), (2, 3 * M))
    rh = carray(_stack(_TWO_ROWS, gx.dtype), (2, M))
    z_ = carray(_stack(_TWO_ROWS, gx.dtype), (2, M))
    _forward_impl(
        gx,
        h0,
        w_hh_t,
        b_hn,
        lengths,
        reverse,
        reset_after,
        save,
        out,
        h_n,
        saved,
        b0,
        b1,
        h,
        gh,
        rh,
        z_,
    )


# --- backward -----------------------------------------------------------------------------


@njit(**_INLINE)
def _start_backward_step(
    d_out, out, h0, saved, reverse, reset_after, dg, h_prev, b, t, s, d_h, i, db
):
    """Record h_{t-1} of row b at t, add ∂L/∂out_t to d_h[i] and go back through the gates."""
    H = h0.shape[1]
    if s == 0:
        for k in range(H):
            h_prev[t, b, k] = h0[b, k]
    else:
        tp = t + 1 if reverse else t - 1
        for k in range(H):
            h_prev[t, b, k] = out[tp, b, k]
    for k in range(H):
        d_h[i, k] += d_out[t, b, k]
    gate_grads(d_h, i, saved, h_prev, dg, t, b, db, reset_after)


@njit(**_INLINE)
def _backward_step(
    d_out, out, h0, saved, w_hh, reverse, reset_after, dg, h_prev, s,
    ba, ta, ia, bb, tb, ib, pair, d_h, d_rh, db,
):  # fmt: skip
    """Take row ba (at ta, scratch ia), and bb (tb, ib) when ``pair``, back through step s."""
    H = w_hh.shape[1]
    _start_backward_step(
        d_out, out, h0, saved, reverse, reset_after, dg, h_prev, ba, ta, s, d_h, ia, db
    )
    if pair:
        _start_backward_step(
            d_out, out, h0, saved, reverse, reset_after, dg, h_prev, bb, tb, s, d_h, ib, db
        )
    if reset_after:
        # d_h += [da_r | da_z | da_n ⊙ r] @ W_hh
        _vecmat_add(dg, ta, ba, tb, bb, H, w_hh, 0, 2 * H, d_h, ia, ib, pair)
        _vecmat_add(dg, ta, ba, tb, bb, 0, w_hh, 2 * H, H, d_h, ia, ib, pair)
        return
    for k in range(H):
        d_rh[ia, k] = 0.0
        d_rh[ib, k] = 0.0
    _vecmat_add(dg, ta, ba, tb, bb, 3 * H, w_hh, 2 * H, H, d_rh, ia, ib, pair)  # da_n W_hn
    reset_before_dr(d_rh, ia, saved, h_prev, dg, ta, ba, d_h, db)
    if pair:
        reset_before_dr(d_rh, ib, saved, h_prev, dg, tb, bb, d_h, db)
    _vecmat_add(dg, ta, ba, tb, bb, H, w_hh, 0, 2 * H, d_h, ia, ib, pair)  # [da_r | da_z] W


@njit(**_INLINE)
def _backward_impl(
    d_out, d_hn, out, h0, saved, w_hh, lengths, reverse, reset_after, dg, h_prev, dh0, db_out,
    b0, b1, d_h, d_rh, db,
):  # fmt: skip
    T = d_out.shape[0]
    H = h0.shape[1]
    for k in range(4 * H):
        db[k] = 0.0
    for ba in range(b0, b1, 2):
        pair = ba + 1 < b1
        bb = ba + 1 if pair else ba
        La = lengths[ba]
        Lb = lengths[bb] if pair else 0
        for s in range(La, T):  # padding: nothing flows
            dg[s, ba, :] = 0.0
            h_prev[s, ba, :] = 0.0
        for s in range(Lb, T if pair else 0):
            dg[s, bb, :] = 0.0
            h_prev[s, bb, :] = 0.0
        for k in range(H):
            d_h[0, k] = d_hn[ba, k]
            d_h[1, k] = d_hn[bb, k]
        for s in range(max(La, Lb) - 1, -1, -1):
            # The longer row alone back to where the shorter one ends, then both together.
            a_runs = s < La
            first, i_first = (ba, 0) if a_runs else (bb, 1)
            t_first = _position(s, La if a_runs else Lb, reverse)
            tb = _position(s, Lb, reverse)
            _backward_step(
                d_out, out, h0, saved, w_hh, reverse, reset_after, dg, h_prev, s,
                first, t_first, i_first, bb, tb, 1, a_runs and s < Lb, d_h, d_rh, db,
            )  # fmt: skip
        for k in range(H):
            dh0[ba, k] = d_h[0, k]
        if pair:
            for k in range(H):
                dh0[bb, k] = d_h[1, k]
    for k in range(4 * H):
        db_out[k] = db[k]


@njit(**_ENTRY)
def backward_rows(
    d_out, d_hn, out, h0, saved, w_hh, lengths, reverse, reset_after, dg, h_prev, dh0, db, b0, b1
):
    """Back-propagate rows b0 <= b < b1 through the whole sequence.

    Fills dg (T, B, 4H) (see `gate_grads`), h_prev (T, B, H) (the state each step started
    from; zero, like dg, at steps past a sequence's end), dh0 (B, H) and db (4H,), the sums of
    dg over these rows' steps. Needs H <= STACK_HIDDEN.
    """
    M = STACK_HIDDEN
    d_h = carray(_stack(_TWO_ROWS, d_out.dtype), (2, M))
    d_rh = carray(_stack(_TWO_ROWS, d_out.dtype), (2, M))
    acc = carray(_stack(_FOUR_ROWS, d_out.dtype), (_FOUR_ROWS,))
    _backward_impl(
        d_out, d_hn, out, h0, saved, w_hh, lengths, reverse, reset_after, dg, h_prev, dh0, db,
        b0, b1, d_h, d_rh, acc,
    )  # fmt: skip


# --- one step -----------------------------------------------------------------------------


@njit(**_ENTRY)
def step_stack(x, weights, work, layout, reset_after):
    """One step of a stack of layers for every row of x (B, I), without allocating.

    Everything a step touches lives in two flat arrays so that a call passes five arguments
    (a compiled call's cost grows with its argument count, and a step is only ~1 µs of work):
    ``weights`` holds each layer's W_ihᵀ, W_hhᵀ, b_x (b_ih plus the recurrent biases outside r)
    and b_hn; ``work`` holds the state h (L, B, H), the outputs (L, B, H) and the scratch.
    ``layout`` is [L, B, H, then per layer: offsets of W_ihᵀ, W_hhᵀ, b_x, b_hn and its input
    size]; the offsets of the state and outputs are 0 and L·B·H. Returns nothing: the top
    layer's output is ``work[(2L − 1)·B·H : 2L·B·H]`` (B, H), a view the caller keeps (handing
    a new array object back to Python would cost as much as a third of the step).
    """
    L, B, H = layout[0], layout[1], layout[2]
    LBH = L * B * H
    state = work[:LBH].reshape((L, B, H))
    outs = work[LBH : 2 * LBH].reshape((L, B, H))
    s = 2 * LBH
    gx = work[s : s + B * 3 * H].reshape((B, 3 * H))
    gh = work[s + B * 3 * H : s + 2 * B * 3 * H].reshape((B, 3 * H))
    s += 2 * B * 3 * H
    rh = work[s : s + B * H].reshape((B, H))
    z_ = work[s + B * H : s + 2 * B * H].reshape((B, H))
    v = x
    for layer in range(L):
        o = 3 + 5 * layer
        I = layout[o + 4]
        w_ih_t = weights[layout[o] : layout[o] + I * 3 * H].reshape((I, 3 * H))
        w_hh_t = weights[layout[o + 1] : layout[o + 1] + H * 3 * H].reshape((H, 3 * H))
        b_x = weights[layout[o + 2] : layout[o + 2] + 3 * H]
        b_hn = weights[layout[o + 3] : layout[o + 3] + H]
        h = state[layer]
        out = outs[layer]
        gx3 = gx.reshape((1, B, 3 * H))
        out3 = out.reshape((1, B, H))
        for b in range(B):
            _matvec_t(v, b, b, w_ih_t, 0, 3 * H, gx, False)
            for j in range(3 * H):
                gx[b, j] += b_x[j]
            if reset_after:
                _matvec_t(h, b, b, w_hh_t, 0, 3 * H, gh, False)
                gates_after(gx3, 0, b, gh, b_hn, h, b, out3, gx3, False)
            else:
                _matvec_t(h, b, b, w_hh_t, 0, 2 * H, gh, False)
                gates_before_rz(gx3, 0, b, gh, h, b, rh, z_, gx3, False)
                _matvec_t(rh, b, b, w_hh_t, 2 * H, H, gh, False)
                gates_before_n(gx3, 0, b, gh, h, b, z_, out3, gx3, False)
        v = out
