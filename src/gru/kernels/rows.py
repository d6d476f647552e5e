"""The compiled recurrence over a range of batch rows: forward, backward and a single step.

Each entry point walks whole sequences for the rows ``b0 <= b < b1`` it is given, so a batch is
sharded over threads by giving each thread a range of rows: no thread waits for another
between time steps. Rows go in pairs that share every load of W_hh (the products are
vector–matrix products, bound by loads, not by arithmetic); the inner loops run over contiguous
memory and are unrolled four deep (a lone row's eight), so LLVM vectorizes them and the gate
math after them.

Three rules keep the loops fast, and the code is written around them:
- no array views inside the time loop (each view costs two atomic reference-count updates):
  helpers take whole arrays and indices;
- scratch lives on the stack (`scratch`), where LLVM can see that it aliases nothing;
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

from numba import carray, njit

from gru.kernels.activations import sigmoid, tanh
from gru.kernels.products import (
    ENTRY,
    FOUR_ROWS,
    INLINE,
    STACK_HIDDEN,
    TWO_ROWS,
    TWO_ROWS_3H,
    matvec_t,
    position,
    scratch,
    vecmat_add,
)

# --- the gate math of one row ---------------------------------------------------------------
# gx, out, saved are (T, B, ·) arrays read at (t, b); h, gh, rh, z are 2-D scratch read at row i.
# Each public helper tests its flag once and inlines a loop body with the flag as a constant.


@njit(**INLINE)
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


@njit(**INLINE)
def gates_after(gx, t, b, gh, b_hn, h, i, out, saved, save):
    """Reset after: gates of row b at t from gh[i] = W_hh h (3H); h[i] and out[t, b] get h_t."""
    if save:
        _gates_after(gx, t, b, gh, b_hn, h, i, out, saved, True)
    else:
        _gates_after(gx, t, b, gh, b_hn, h, i, out, saved, False)


@njit(**INLINE)
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


@njit(**INLINE)
def gates_before_rz(gx, t, b, gh, h, i, rh, z_, saved, save):
    """Reset before, first half: r, z from gh[i] = W_h{r,z} h (2H); rh[i] = r ⊙ h, z_[i] = z."""
    if save:
        _gates_before_rz(gx, t, b, gh, h, i, rh, z_, saved, True)
    else:
        _gates_before_rz(gx, t, b, gh, h, i, rh, z_, saved, False)


@njit(**INLINE)
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


@njit(**INLINE)
def gates_before_n(gx, t, b, ghn, h, i, z_, out, saved, save):
    """Reset before, second half: n from ghn[i] = W_hn (r ⊙ h) (H); h[i], out[t, b] get h_t."""
    if save:
        _gates_before_n(gx, t, b, ghn, h, i, z_, out, saved, True)
    else:
        _gates_before_n(gx, t, b, ghn, h, i, z_, out, saved, False)


@njit(**INLINE)
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


@njit(**INLINE)
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


@njit(**INLINE)
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


@njit(**INLINE)
def _forward_step(
    gx, w_hh_t, b_hn, reset_after, save, out, saved, ba, ta, ia, bb, tb, ib, pair, h, gh, rh, z_
):
    """Advance row ba (at position ta, scratch row ia), and bb (tb, ib) when ``pair``."""
    H = w_hh_t.shape[0]
    if reset_after:
        matvec_t(h, ia, ib, w_hh_t, 0, 3 * H, gh, pair)
        gates_after(gx, ta, ba, gh, b_hn, h, ia, out, saved, save)
        if pair:
            gates_after(gx, tb, bb, gh, b_hn, h, ib, out, saved, save)
    else:
        matvec_t(h, ia, ib, w_hh_t, 0, 2 * H, gh, pair)
        gates_before_rz(gx, ta, ba, gh, h, ia, rh, z_, saved, save)
        if pair:
            gates_before_rz(gx, tb, bb, gh, h, ib, rh, z_, saved, save)
        matvec_t(rh, ia, ib, w_hh_t, 2 * H, H, gh, pair)
        gates_before_n(gx, ta, ba, gh, h, ia, z_, out, saved, save)
        if pair:
            gates_before_n(gx, tb, bb, gh, h, ib, z_, out, saved, save)


@njit(**INLINE)
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
            t_first = position(s, La if a_runs else Lb, reverse)
            tb = position(s, Lb, reverse)
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


@njit(**ENTRY)
def forward_rows(
    gx, h0, w_hh_t, b_hn, lengths, reverse, reset_after, save, out, h_n, saved, b0, b1
):
    """Run rows b0 <= b < b1 over the whole sequence; fills out, h_n and (if save) saved.

    Needs H <= STACK_HIDDEN (its scratch is on the stack).
    """
    M = STACK_HIDDEN
    h = carray(scratch(TWO_ROWS, gx.dtype), (2, M))
    gh = carray(scratch(TWO_ROWS_3H, gx.dtype), (2, 3 * M))
    rh = carray(scratch(TWO_ROWS, gx.dtype), (2, M))
    z_ = carray(scratch(TWO_ROWS, gx.dtype), (2, M))
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


@njit(**INLINE)
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


@njit(**INLINE)
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
        vecmat_add(dg, ta, ba, tb, bb, H, w_hh, 0, 2 * H, d_h, ia, ib, pair)
        vecmat_add(dg, ta, ba, tb, bb, 0, w_hh, 2 * H, H, d_h, ia, ib, pair)
        return
    for k in range(H):
        d_rh[ia, k] = 0.0
        d_rh[ib, k] = 0.0
    vecmat_add(dg, ta, ba, tb, bb, 3 * H, w_hh, 2 * H, H, d_rh, ia, ib, pair)  # da_n W_hn
    reset_before_dr(d_rh, ia, saved, h_prev, dg, ta, ba, d_h, db)
    if pair:
        reset_before_dr(d_rh, ib, saved, h_prev, dg, tb, bb, d_h, db)
    vecmat_add(dg, ta, ba, tb, bb, H, w_hh, 0, 2 * H, d_h, ia, ib, pair)  # [da_r | da_z] W


@njit(**INLINE)
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
            t_first = position(s, La if a_runs else Lb, reverse)
            tb = position(s, Lb, reverse)
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


@njit(**ENTRY)
def backward_rows(
    d_out, d_hn, out, h0, saved, w_hh, lengths, reverse, reset_after, dg, h_prev, dh0, db, b0, b1
):
    """Back-propagate rows b0 <= b < b1 through the whole sequence.

    Fills dg (T, B, 4H) (see `gate_grads`), h_prev (T, B, H) (the state each step started
    from; zero, like dg, at steps past a sequence's end), dh0 (B, H) and db (4H,), the sums of
    dg over these rows' steps. Needs H <= STACK_HIDDEN.
    """
    M = STACK_HIDDEN
    d_h = carray(scratch(TWO_ROWS, d_out.dtype), (2, M))
    d_rh = carray(scratch(TWO_ROWS, d_out.dtype), (2, M))
    acc = carray(scratch(FOUR_ROWS, d_out.dtype), (FOUR_ROWS,))
    _backward_impl(
        d_out, d_hn, out, h0, saved, w_hh, lengths, reverse, reset_after, dg, h_prev, dh0, db,
        b0, b1, d_h, d_rh, acc,
    )  # fmt: skip
