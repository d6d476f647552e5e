"""One GRU layer in one direction on the engine, with the weights as the layer stores them.

Everything that is not sequential is one large GEMM around the compiled time loop
(`gru.kernels.recurrence`): the input projection before it; dX, dW_ih and dW_hh after it.
Float32 training under 64 units with the reset gate after the product runs whole on register
tiles instead (`gru.kernels.tiles_training`: the projections and the weights' sums inside
each step, where their rows are in cache).
The engine's own width and the folding of the biases stay inside (`gru.kernels.padding`):
callers pass and get back w_ih (3H, I), w_hh (3H, H), b_ih and b_hh (3H,) (gates in rows
[r | z | n]) and their gradients in the same shapes.

The GEMMs go through ``matmul(a, b, bias)``, a new array ``a @ b`` (plus ``bias`` on every
row, when not None), of 2-D arrays that may be transposed views. The default is NumPy's;
`gru.ops` passes the BLAS torch carries, which is faster here, and lets torch allocate the
result (a separate pass to add the bias, or writing into arrays NumPy allocated, cost 5-10%
of a training step).

Shapes: T time steps, B batch, I input features, H hidden units, Hp the padded width.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gru.kernels import recurrence, tiles_training
from gru.kernels.padding import (
    fold_biases,
    pad_hidden,
    padded_size,
    recurrent_bias_grads,
    unpad_hidden,
)
from gru.kernels.small import forward_small, is_small

__all__ = [
    "Matmul",
    "VariantState",
    "backward",
    "backward_variants",
    "forward",
    "forward_variants",
    "numpy_matmul",
    "saved_shape",
]

Matmul = Callable[[np.ndarray, np.ndarray, "np.ndarray | None"], np.ndarray]


def numpy_matmul(a: np.ndarray, b: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """``a @ b``, plus ``bias`` on every row when given, by NumPy's BLAS."""
    out = a @ b
    if bias is not None:
        out += bias
    return out


def saved_shape(T: int, B: int, H: int, reset_after: bool) -> tuple[int, int, int]:
    """The shape of what `forward` keeps for `backward` (at the engine's width)."""
    return T, B, recurrence.saved_width(padded_size(H), reset_after)


def _padded_weights(w_hh: np.ndarray, H: int, Hp: int) -> np.ndarray:
    """W_hh (3H, H) at the engine's width (3Hp, Hp), zeros in the added units."""
    return pad_hidden(pad_hidden(w_hh, H, Hp), H, Hp, axis=0, blocks=3)


def _pad(a: np.ndarray | None, H: int, Hp: int) -> np.ndarray | None:
    return None if a is None else pad_hidden(a, H, Hp)


def forward(
    x: np.ndarray,
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    b_ih: np.ndarray | None,
    b_hh: np.ndarray | None,
    h0: np.ndarray | None,
    *,
    lengths: np.ndarray | None = None,
    reset_after: bool = True,
    reverse: bool = False,
    save: bool = True,
    threads: int | None = None,
    matmul: Matmul = numpy_matmul,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Run the layer over x (T, B, I) from h0 (B, H) (None: zeros).

    ``lengths`` (B,) ints in [1, T] or None for all T: steps past a sequence's length leave it
    unchanged and output zeros; ``reverse`` reads each sequence backwards within its length;
    ``save`` keeps what `backward` needs; ``threads`` caps the threads (default: the CPUs).
    Returns ``(output (T, B, H), h_n (B, H), saved)``, saved of `saved_shape` or None.
    """
    T, B, I = x.shape
    H = w_hh.shape[1]
    dtype = x.dtype
    if not save and is_small(T, B, I, H, threads, dtype):
        output, h_n = forward_small(
            x, w_ih, w_hh, b_ih, b_hh, h0, lengths, reset_after=reset_after, reverse=reverse,
            threads=threads,
        )  # fmt: skip
        return output, h_n, None
    shards = tiles_training.shards(B, H, dtype, reset_after, threads) if save else 0
    if shards:
        return tiles_training.forward(
            x, w_ih, w_hh, b_ih, b_hh, h0, lengths, reset_after=reset_after, reverse=reverse,
            shards=shards,
        )  # fmt: skip
    Hp = padded_size(H)
    b_x, b_hn = fold_biases(b_ih, b_hh, reset_after, dtype)
    w_ih_p = pad_hidden(w_ih, H, Hp, axis=0, blocks=3)  # (3Hp, I)
    b_x = None if b_x is None else pad_hidden(b_x, H, Hp, blocks=3)
    gx = matmul(x.reshape(T * B, I), w_ih_p.T, b_x)  # x W_ihᵀ + b_x (T·B, 3Hp): every step
    output, h_n, saved = recurrence.forward(
        gx.reshape(T, B, 3 * Hp),
        _pad(h0, H, Hp),
        _padded_weights(w_hh, H, Hp),
        _pad(b_hn, H, Hp),
        reset_after=reset_after,
        reverse=reverse,
        lengths=lengths,
        save=save,
        threads=threads,
    )
    return unpad_hidden(output, H, Hp), unpad_hidden(h_n, H, Hp), saved


def _recurrent_weight_grads(dG, h_bar, d_recurrent, Hp, reset_after, matmul) -> np.ndarray:
    """∂L/∂W_hh (3Hp, Hp) from backward's dG (T·B, 4Hp) and h̄_{t-1} (T·B, Hp).

    ``d_recurrent`` (T·B, 3Hp), when given, is ∂L/∂(W_hh h̄) itself (the recurrent layer
    norm's backward gives it). Otherwise dG = [c | da_r | da_z | da_n] holds its parts
    (`gru.kernels.recurrence.backward`): reset after, dW_hh = [da_r | da_z | c]ᵀ h̄, one
    GEMM with the n block first, then reordered; reset before, dW_h{r,z} = [da_r | da_z]ᵀ h̄
    and dW_hn = da_nᵀ c with c = r ⊙ h̄.
    """
    if d_recurrent is not None:
        return matmul(d_recurrent.T, h_bar, None)
    if reset_after:
        dw = matmul(dG[:, : 3 * Hp].T, h_bar, None)  # rows n, r, z
        return np.concatenate([dw[Hp:], dw[:Hp]])
    dw_rz = matmul(dG[:, Hp : 3 * Hp].T, h_bar, None)  # (2Hp, Hp)
    return np.concatenate([dw_rz, matmul(dG[:, 3 * Hp :].T, dG[:, :Hp], None)])


def _bias_grads(db: np.ndarray, H: int, Hp: int, reset_after: bool):
    """(∂L/∂b_ih, ∂L/∂b_hh) from backward's db (4Hp,) = [c | r | z | n] summed."""
    db = unpad_hidden(db, H, Hp, blocks=4)  # (4H,)
    db_ih = np.ascontiguousarray(db[H:])
    return db_ih, recurrent_bias_grads(db_ih, db[:H] if reset_after else None)


def backward(
    d_output: np.ndarray | None,
    d_h_n: np.ndarray | None,
    x: np.ndarray,
    h0: np.ndarray | None,
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    output: np.ndarray,
    saved: np.ndarray,
    *,
    has_bias: bool,
    lengths: np.ndarray | None = None,
    reset_after: bool = True,
    reverse: bool = False,
    need_x: bool = True,
    need_weights: bool = True,
    threads: int | None = None,
    matmul: Matmul = numpy_matmul,
):
    """Back-propagate through the layer that `forward` ran (same arguments, and what it
    returned); ``d_output`` (T, B, H) and ``d_h_n`` (B, H) are ∂L/∂output and ∂L/∂h_n (None
    for zeros).

    Returns ``(dx (T, B, I), dh0 (B, H), dw_ih (3H, I), dw_hh (3H, H), db_ih, db_hh (3H,))``:
    dx is None unless ``need_x``, the weight and bias gradients None unless ``need_weights``,
    the bias gradients None without bias.
    """
    T, B, I = x.shape
    H = w_hh.shape[1]
    shards = tiles_training.shards(B, H, x.dtype, reset_after, threads)
    if shards:
        dx, dh0, dw_ih, dw_hh, db = tiles_training.backward(
            d_output, d_h_n, x, h0, w_ih, w_hh, output, saved, lengths=lengths, reverse=reverse,
            need_x=need_x, need_weights=need_weights, shards=shards,
        )  # fmt: skip
        if not need_weights or not has_bias:
            return dx, dh0, dw_ih, dw_hh, None, None
        return dx, dh0, dw_ih, dw_hh, *_bias_grads(db, H, H, reset_after)
    Hp = padded_size(H)
    w_ih_p = pad_hidden(w_ih, H, Hp, axis=0, blocks=3)  # (3Hp, I)
    dg, h_prev, dh0, db = recurrence.backward(
        _pad(d_output, H, Hp),
        _pad(d_h_n, H, Hp),
        pad_hidden(output, H, Hp),
        _pad(h0, H, Hp),
        saved,
        _padded_weights(w_hh, H, Hp),
        reset_after=reset_after,
        reverse=reverse,
        lengths=lengths,
        threads=threads,
    )
    dh0 = unpad_hidden(dh0, H, Hp)
    dG = dg.reshape(T * B, 4 * Hp)  # [c | da_r | da_z | da_n] of every step
    dGX = dG[:, Hp:]  # ∂L/∂gx, in W_ih's gate order; the padded units hold zeros throughout
    dx = None
    if need_x:
        dx = matmul(dGX, w_ih_p, None).reshape(T, B, I)
    if not need_weights:
        return dx, dh0, None, None, None, None
    dw_ih = matmul(dGX.T, x.reshape(T * B, I), None)  # (3Hp, I)
    dw_ih = unpad_hidden(dw_ih, H, Hp, axis=0, blocks=3)  # (3H, I)
    dw_hh = _recurrent_weight_grads(dG, h_prev.reshape(T * B, Hp), None, Hp, reset_after, matmul)
    dw_hh = unpad_hidden(unpad_hidden(dw_hh, H, Hp, axis=0, blocks=3), H, Hp)  # (3H, H)
    if not has_bias:
        return dx, dh0, dw_ih, dw_hh, None, None
    return dx, dh0, dw_ih, dw_hh, *_bias_grads(db, H, Hp, reset_after)


# --- with the variants ------------------------------------------------------------------------


@dataclass
class VariantState:
    """What `forward_variants` keeps for `backward_variants`, at the engine's width."""

    saved: np.ndarray  # (T, B, 4Hp or 3Hp), as `gru.kernels.recurrence.forward` keeps
    ln_saved: np.ndarray | None  # (T, B, 3Hp + 1): the normalized W_hh h̄ and its scale
    mask: np.ndarray | None  # (B, Hp) m
    keep: np.ndarray | None  # (T, B, Hp) d_t
    recurrent_ln: np.ndarray | None  # (2, 3Hp) [g_hh | c_hh]


def _variant_inputs(T, B, H, Hp, dtype, mask, zoneout, recurrent_ln):
    """The variants at the engine's width: m (B, Hp), d (T, B, Hp), [g_hh | c_hh] (2, 3Hp)."""
    if isinstance(zoneout, float):  # evaluation: d_t = p everywhere
        zoneout = np.full((T, B, H), zoneout, dtype)
    ln = None
    if recurrent_ln is not None:
        ln = np.stack([pad_hidden(np.asarray(p, dtype), H, Hp, blocks=3) for p in recurrent_ln])
    return _pad(mask, H, Hp), _pad(zoneout, H, Hp), ln


def forward_variants(
    a, h0, w_hh, b_ih, b_hh, *, lengths=None, reset_after=True, reverse=False, save=True,
    threads=None, mask=None, zoneout=None, recurrent_ln=None,
):  # fmt: skip
    """The recurrence of a layer with the variants of `gru.reference`, from the input side's
    pre-activation ``a`` (T, B, 3H) = x W_ihᵀ (or its layer norm, which the caller computes),
    without biases: they are added here.

    ``mask`` (B, H) the recurrent dropout mask m; ``zoneout`` (T, B, H) d_t by position, or
    p (a float: evaluation); ``recurrent_ln`` (g_hh, c_hh), each (3H,), the recurrent layer
    norm (reset after only). Returns ``(output (T, B, H), h_n (B, H), state)``, state a
    `VariantState` for `backward_variants`, or None without ``save``.
    """
    T, B, _ = a.shape
    H = w_hh.shape[1]
    Hp = padded_size(H)
    dtype = a.dtype
    b_x, b_hn = fold_biases(b_ih, b_hh, reset_after, dtype)
    gx = a if b_x is None else a + b_x
    gx = pad_hidden(gx, H, Hp, blocks=3)  # (T, B, 3Hp)
    m, keep, ln = _variant_inputs(T, B, H, Hp, dtype, mask, zoneout, recurrent_ln)
    out, h_n, saved, ln_saved = recurrence.forward_variants(
        gx, _pad(h0, H, Hp), _padded_weights(w_hh, H, Hp), _pad(b_hn, H, Hp),
        reset_after=reset_after, reverse=reverse, lengths=lengths, save=save, threads=threads,
        mask=m, zoneout=keep, recurrent_ln=ln, real_hidden=H,
    )  # fmt: skip
    state = VariantState(saved, ln_saved, m, keep, ln) if save else None
    return unpad_hidden(out, H, Hp), unpad_hidden(h_n, H, Hp), state


def backward_variants(
    d_output, d_h_n, h0, w_hh, output, state: VariantState, *, has_bias, lengths=None,
    reset_after=True, reverse=False, threads=None, matmul: Matmul = numpy_matmul,
):  # fmt: skip
    """Back-propagate through `forward_variants` (same arguments, and what it returned).

    Returns ``(d_a (T·B, 3H), dh0 (B, H), dw_hh (3H, H), db_ih, db_hh, dg_hh, dc_hh)``: d_a
    = ∂L/∂a, from which the caller finishes the input side (its layer norm, dX, dW_ih); the
    bias gradients None without bias, the recurrent layer norm's None without it.
    """
    T, B, H = output.shape
    Hp = padded_size(H)
    dg, h_prev, dh0, db, dgh, dln = recurrence.backward_variants(
        _pad(d_output, H, Hp), _pad(d_h_n, H, Hp), pad_hidden(output, H, Hp), _pad(h0, H, Hp),
        state.saved, _padded_weights(w_hh, H, Hp), reset_after=reset_after, reverse=reverse,
        lengths=lengths, threads=threads, mask=state.mask, zoneout=state.keep,
        recurrent_ln=state.recurrent_ln, real_hidden=H, ln_saved=state.ln_saved,
    )  # fmt: skip
    d_a = unpad_hidden(dg[..., Hp:], H, Hp, blocks=3).reshape(T * B, 3 * H)
    h_bar = h_prev if state.mask is None else h_prev * state.mask  # h̄_{t-1} (T, B, Hp)
    d_recurrent = None if dgh is None else dgh.reshape(T * B, 3 * Hp)
    dw_hh = _recurrent_weight_grads(
        dg.reshape(T * B, 4 * Hp), h_bar.reshape(T * B, Hp), d_recurrent, Hp, reset_after, matmul
    )
    dw_hh = unpad_hidden(unpad_hidden(dw_hh, H, Hp, axis=0, blocks=3), H, Hp)  # (3H, H)
    db_ih = db_hh = dg_hh = dc_hh = None
    if has_bias:
        db_ih, db_hh = _bias_grads(db, H, Hp, reset_after)
    if dln is not None:
        dg_hh, dc_hh = (unpad_hidden(d, H, Hp, blocks=3) for d in dln)
    return d_a, unpad_hidden(dh0, H, Hp), dw_hh, db_ih, db_hh, dg_hh, dc_hh
