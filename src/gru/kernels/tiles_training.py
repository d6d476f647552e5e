"""Training a float32 layer under 64 units on register tiles: the forward that saves, and the
whole backward in one compiled call.

`forward` is `gru.kernels.tiles.forward` keeping what backward reads, in the layout of
`gru.kernels.recurrence.forward` (so either backward takes it). `backward` runs each shard of
the batch (one per thread) from the last step to the first: the gates' gradients of all its
rows, then on tiles (`gru.kernels.products.tiled_product`) ∂L/∂h_{t-1} = dG W_hh, ∂L/∂x_t =
dG W_ih (when x needs it), and the shard's sums dW_hhᵀ += h_{t-1}ᵀ dG and dW_ihᵀ += x_tᵀ dG (a
read transposed, added in place, over the rows of several steps at once). The GEMMs the row
kernels leave to the BLAS around their loop (x W_ihᵀ before; dX, dW_ih, dW_hh over all T·B
rows after) are gone: each step's share runs while its rows are in cache.

The reset gate after the product (PyTorch's convention) only (`shards`): the tiled forward
could save for both, the backward takes this one. Widths: Hq, H padded to a multiple of 16
(the tiles'); Hs, the engine's width (`gru.kernels.padding.padded_size`), at which saved is
kept.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from gru.kernels import tiles
from gru.kernels.activations import FASTMATH
from gru.kernels.compiling import first_call
from gru.kernels.padding import padded_size
from gru.kernels.products import INLINE, WIDTH, float32s, position, tiled_product
from gru.kernels.recurrence import cpu_count, lengths_array, saved_width
from gru.kernels.small import call_arrays

__all__ = ["backward", "forward", "shards"]

_F32 = np.dtype(np.float32)  # in the compile kinds' keys, as the other calls write them
_SUM_ROWS = 64  # rows of several steps that the weights' sums take at once
_HALF = WIDTH // 2  # saved's width Hs is a multiple of 8 (`gru.kernels.padding.LANES`)
_JIT = {"nogil": True, "fastmath": FASTMATH, "error_model": "numpy", "cache": True}


def shards(B: int, H: int, dtype, reset_after: bool, threads: int | None) -> int:
    """Shards of the batch for `forward` and `backward` (`gru.kernels.tiles.shards`); 0 where
    the row kernels or the packed loops train this layer instead (float64, reset before, 64
    units and more, under 4 rows)."""
    if np.dtype(dtype) != np.float32 or not reset_after or H >= tiles.MAX_TILED:
        return 0
    return tiles.shards(B, H, cpu_count() if threads is None else threads)


def _c(a: np.ndarray | None, shape=None) -> np.ndarray:
    """``a`` C-contiguous in float32, or zeros of ``shape`` for None."""
    return np.zeros(shape, np.float32) if a is None else np.ascontiguousarray(a, np.float32)


def forward(x, w_ih, w_hh, b_ih, b_hh, h0, lengths, *, reset_after, reverse, shards):
    """(output (T, B, H), h_n (B, H), saved (T, B, 4Hs or 3Hs)) of a float32 layer as stored
    (b_ih, b_hh, h0 None for none), in ``shards`` shards; saved as the row kernels keep it."""
    T, B, _ = x.shape
    H = w_hh.shape[1]
    saved = np.empty((T, B, saved_width(padded_size(H), reset_after)), np.float32)
    arrays = call_arrays(x, w_ih, w_hh, b_ih, b_hh, h0, lengths)
    out, h_n = first_call(
        ("tiles", _F32), "training", tiles.forward, *arrays, bool(reverse),
        bool(reset_after), shards, saved,
    )  # fmt: skip
    return out, h_n, saved


@intrinsic
def _grad_lanes(typingctx, saved, s0, Hs, d_h, d0, hp, p0, G, g0, Hq, j0, W):
    """Units j0 ≤ j < j0 + W (W a literal, 16 or 8) of one row, in vectors: from saved[s0 +
    ·] = [r | z | n | W_hn h + b_hn] (blocks Hs wide), d_h[d0 + j] = ∂L/∂h_t and hp[p0 + j] =
    h_{t-1}, G[g0 + ·] = [c | da_r | da_z | da_n] (blocks Hq wide), and d_h[d0 + j] becomes
    its direct part d_h ⊙ z. One loop of LLVM's per row, at these widths, spent more on its
    set-up and alias checks than on the arithmetic."""
    if not isinstance(W, types.IntegerLiteral) or not float32s(saved, d_h, hp, G):
        return None
    width = W.literal_value

    def codegen(context, builder, signature, args):
        vec, i64 = ir.VectorType(ir.FloatType(), width), ir.IntType(64)
        data = [
            context.make_array(signature.args[i])(context, builder, value=args[i]).data
            for i in (0, 3, 5, 7)
        ]
        s0_, Hs_, d0_, p0_, g0_, Hq_, j0_ = (
            builder.sext(args[i], i64) if args[i].type.width < 64 else args[i]
            for i in (1, 2, 4, 6, 8, 9, 10)
        )

        def at(base, offset, block, size):
            index = builder.add(
                builder.add(offset, j0_), builder.mul(ir.Constant(i64, block), size)
            )
            return builder.bitcast(builder.gep(base, [index]), vec.as_pointer())

        r, z, n, hn = (builder.load(at(data[0], s0_, q, Hs_), align=4) for q in range(4))
        dh = builder.load(at(data[1], d0_, 0, Hs_), align=4)
        h = builder.load(at(data[2], p0_, 0, Hs_), align=4)
        one = ir.Constant(vec, [1.0] * width)
        mul, sub = builder.fmul, builder.fsub
        da_n = mul(mul(dh, sub(one, z)), sub(one, mul(n, n)))  # ∂h/∂n = 1 − z, tanh' = 1 − n²
        da_z = mul(mul(dh, sub(h, n)), mul(z, sub(one, z)))  # ∂h/∂z = h − n, σ' = σ(1 − σ)
        da_r = mul(mul(da_n, hn), mul(r, sub(one, r)))  # ∂a_n/∂r = W_hn h + b_hn
        for q, value in enumerate((mul(da_n, r), da_r, da_z, da_n)):
            builder.store(value, at(data[3], g0_, q, Hq_), align=4)
        builder.store(mul(dh, z), at(data[1], d0_, 0, Hs_), align=4)
        return context.get_dummy_value()

    return types.void(saved, s0, Hs, d_h, d0, hp, p0, G, g0, Hq, j0, W), codegen


@njit(**INLINE)
def _gate_grads(d_h, G, i, r, saved, t, b, hp, Hq):
    """Row i (batch row b at step t): G[r] = [c | da_r | da_z | da_n] (each Hq wide) from d_h[i]
    = ∂L/∂h_t, hp[r] = h_{t-1} and saved[t, b] (`_grad_lanes`); d_h[i] becomes d_h ⊙ z. Units
    past Hs (a multiple of 8) are left as they are (zeros)."""
    Hs = saved.shape[2] // 4
    s0 = (t * saved.shape[1] + b) * saved.shape[2]
    j0 = 0
    while j0 + WIDTH <= Hs:
        _grad_lanes(saved, s0, Hs, d_h, i * Hq, hp, r * Hq, G, r * 4 * Hq, Hq, j0, WIDTH)
        j0 += WIDTH
    if j0 < Hs:
        _grad_lanes(saved, s0, Hs, d_h, i * Hq, hp, r * Hq, G, r * 4 * Hq, Hq, j0, _HALF)


@njit(**INLINE)
def _load_step(d_out, x, h0, out, lengths, reverse, b0, m, s, d_h, hp, xs, G, r0):
    """Each row's state before step s (hp[r0 + i]), input (xs[r0 + i]), and ∂L/∂out added to
    d_h[i]; rows whose sequence ended before s get zeros in hp, xs and G (nothing flows
    through them)."""
    H, I = d_out.shape[2], x.shape[2]
    for i in range(m):
        b, L, r = b0 + i, lengths[b0 + i], r0 + i
        if s >= L:
            hp[r, :] = 0.0
            xs[r, :] = 0.0
            G[r, :] = 0.0
            continue
        t = position(s, L, reverse)
        if s == 0:
            for j in range(H):
                hp[r, j] = h0[b, j]
        else:
            tp = t + 1 if reverse else t - 1
            for j in range(H):
                hp[r, j] = out[tp, b, j]
        for j in range(H):
            d_h[i, j] += d_out[t, b, j]
        for k in range(I):
            xs[r, k] = x[t, b, k]


@njit(**INLINE)
def _shard(
    d_out, d_hn, x, h0, out, saved, lengths, reverse, w_hh_p, w_ih_p, need_x, need_weights,
    dx, dh0, dwhh, dwih, db, b0, b1, q,
):  # fmt: skip
    """Rows b0 ≤ b < b1 back through the whole sequence; shard q's sums into dwhh[q] (Hq, 3Hq),
    dwih[q] (I, 3Hq), db[q] (4Hq). G, hp and xs keep `_SUM_ROWS` rows of the last steps (or
    one step's), and the weights' sums run over them all at once: over one step's rows, the
    tiles spent as long loading and storing their sums as adding to them."""
    T, I, H = x.shape[0], x.shape[2], d_out.shape[2]
    Hq, Ip = w_hh_p.shape[1], w_ih_p.shape[1]
    m, G4 = b1 - b0, 4 * w_hh_p.shape[1]
    Hs = saved.shape[2] // 4
    S = max(1, _SUM_ROWS // m)  # steps a sum takes
    rows = (S * m, m, m, S * m, S * m, m)
    G, d_h, dhh, hp, xs, dxs = tiles.scratch_rows(rows, (G4, Hq, Hq, Hq, I, Ip))
    longest = 0
    for i in range(m):
        longest = max(longest, lengths[b0 + i])
        for j in range(H):
            d_h[i, j] = d_hn[b0 + i, j]
    for s in range(longest - 1, -1, -1):
        slot = (longest - 1 - s) % S
        r0 = slot * m
        _load_step(d_out, x, h0, out, lengths, reverse, b0, m, s, d_h, hp, xs, G, r0)
        for i in range(m):
            if s < lengths[b0 + i]:
                t = position(s, lengths[b0 + i], reverse)
                _gate_grads(d_h, G, i, r0 + i, saved, t, b0 + i, hp, Hq)
        # ∂L/∂h_{t-1} = d_h ⊙ z + [c | da_r | da_z] [W_hn; W_hr; W_hz]
        tiled_product(G, r0 * G4, G4, 1, m, 3 * Hq, w_hh_p, 0, Hq, Hq, dhh, 0, Hq, 0)
        for i in range(m):
            for j in range(Hs):
                d_h[i, j] += dhh[i, j]
        if need_x:  # ∂L/∂x_t = [da_r | da_z | da_n] W_ih
            tiled_product(G, r0 * G4 + Hq, G4, 1, m, 3 * Hq, w_ih_p, 0, Ip, Ip, dxs, 0, Ip, 0)
            for i in range(m):
                if s < lengths[b0 + i]:
                    t = position(s, lengths[b0 + i], reverse)
                    for k in range(I):
                        dx[t, b0 + i, k] = dxs[i, k]
        if need_weights and (slot == S - 1 or s == 0):
            # the shard's sums over the kept rows, a (h_{t-1}, x_t) read transposed
            K = r0 + m
            tiled_product(hp, 0, 1, Hq, H, K, G, 0, G4, 3 * Hq, dwhh, q * Hq * 3 * Hq, 3 * Hq, 1)
            tiled_product(xs, 0, 1, I, I, K, G, Hq, G4, 3 * Hq, dwih, q * I * 3 * Hq, 3 * Hq, 1)
            for i in range(K):
                for j in range(G4):
                    db[q, j] += G[i, j]
    for i in range(m):
        for j in range(H):
            dh0[b0 + i, j] = d_h[i, j]
        if need_x:
            for t in range(lengths[b0 + i], T):  # the steps past its end: zeros
                for k in range(I):
                    dx[t, b0 + i, k] = 0.0


@njit(parallel=True, **_JIT)
def _sharded(
    d_out, d_hn, x, h0, out, saved, lengths, reverse, w_hh_p, w_ih_p, need_x, need_weights,
    dx, dh0, dwhh, dwih, db, shards,
):  # fmt: skip
    B = x.shape[1]
    for q in prange(shards):
        _shard(
            d_out, d_hn, x, h0, out, saved, lengths, reverse, w_hh_p, w_ih_p, need_x,
            need_weights, dx, dh0, dwhh, dwih, db, q * B // shards, (q + 1) * B // shards, q,
        )  # fmt: skip


@njit(**_JIT)
def _backward(d_out, d_hn, x, h0, w_ih, w_hh, out, saved, lengths, reverse, need_x, need_weights,
              shards):  # fmt: skip
    T, B, I = x.shape
    H = w_hh.shape[1]
    Hq = -(-H // WIDTH) * WIDTH
    Ip = -(-I // WIDTH) * WIDTH
    # W_hh with its gate blocks as [n | r | z] (what [c | da_r | da_z] multiplies), W_ih as
    # stored; both at width Hq, W_ih's inputs padded to Ip: the tiles' products run over them.
    w_hh_p = np.zeros((3 * Hq, Hq), np.float32)
    w_ih_p = np.zeros((3 * Hq, Ip), np.float32)
    order = (1, 2, 0)  # W_hh's block g (r, z, n) goes to order[g]
    for g in range(3):
        for j in range(H):
            for k in range(H):
                w_hh_p[order[g] * Hq + j, k] = w_hh[g * H + j, k]
            for k in range(I):
                w_ih_p[g * Hq + j, k] = w_ih[g * H + j, k]
    dx = np.empty((T, B, I) if need_x else (0, 0, 0), np.float32)
    dh0 = np.empty((B, H), np.float32)
    dwhh = np.zeros((shards, Hq, 3 * Hq), np.float32)  # dW_hhᵀ, columns [n | r | z]
    dwih = np.zeros((shards, I, 3 * Hq), np.float32)  # dW_ihᵀ, columns [r | z | n]
    db = np.zeros((shards, 4 * Hq), np.float32)  # [c | r | z | n]
    _sharded(
        d_out, d_hn, x, h0, out, saved, lengths, reverse, w_hh_p, w_ih_p, need_x, need_weights,
        dx, dh0, dwhh, dwih, db, shards,
    )  # fmt: skip
    dw_hh = np.zeros((3 * H, H), np.float32)
    dw_ih = np.zeros((3 * H, I), np.float32)
    db_out = np.zeros(4 * H, np.float32)
    for q in range(shards):
        for g in range(3):
            for j in range(H):
                for k in range(H):
                    dw_hh[g * H + j, k] += dwhh[q, k, order[g] * Hq + j]
                for k in range(I):
                    dw_ih[g * H + j, k] += dwih[q, k, g * Hq + j]
        for p in range(4):
            for j in range(H):
                db_out[p * H + j] += db[q, p * Hq + j]
    return dx, dh0, dw_ih, dw_hh, db_out


def backward(d_output, d_h_n, x, h0, w_ih, w_hh, output, saved, *, lengths, reverse, need_x,
             need_weights, shards):  # fmt: skip
    """Back through `forward` (reset after; the same arrays, and what it returned): (dx (T, B,
    I) or None, dh0 (B, H), dw_ih (3H, I), dw_hh (3H, H), db (4H,) = the sums of [c | da_r |
    da_z | da_n] as `gru.kernels.recurrence.backward` gives them), the weights' None without
    ``need_weights``. d_output, d_h_n, h0 None for zeros."""
    T, B, _ = x.shape
    H = w_hh.shape[1]
    arrays = (
        _c(d_output, (T, B, H)), _c(d_h_n, (B, H)), _c(x), _c(h0, (B, H)), _c(w_ih), _c(w_hh),
        _c(output), saved, lengths_array(lengths, T, B),
    )  # fmt: skip
    dx, dh0, dw_ih, dw_hh, db = first_call(
        ("tiles backward", _F32), "training", _backward, *arrays, bool(reverse),
        bool(need_x), bool(need_weights), shards,
    )  # fmt: skip
    if not need_weights:
        return (dx if need_x else None), dh0, None, None, None
    return (dx if need_x else None), dh0, dw_ih, dw_hh, db
