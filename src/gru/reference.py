"""The GRU in NumPy float64: the equations line by line, forward and back-propagation through time.

This module is the oracle every fast path is tested against. It is deliberately plain: one
loop over time, one line per equation, no fusion, and no import from anything else in `gru`.

Shapes: T time steps, B batch, I input features, H hidden units.

Gate packing (the PyTorch layout, rows ``[r | z | n]``)::

    w_ih (3H, I)   w_hh (3H, H)   b_ih (3H,)   b_hh (3H,)

Equations, for each step t::

    r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)                    reset gate
    z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)                    update gate
    n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))         reset after  (PyTorch, cuDNN)
    n_t = tanh(W_in x_t + b_in + W_hn (r_t ⊙ h_{t-1}) + b_hn)         reset before (Cho et al. 2014)
    h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}

With per-sequence ``lengths``, sequence b is updated only for t < lengths[b]: after its end its
state stays fixed and its outputs are zero (what packed sequences do).

The seeds' notation (Cho et al. 2014; Chung et al. 2014) writes the same model with weights acting
on the concatenation ``[h_{t-1}, x_t]`` and the update gate the other way round::

    z_t = σ(W_z [h_{t-1}, x_t] + b_z)
    r_t = σ(W_r [h_{t-1}, x_t] + b_r)
    h~_t = tanh(W_h [r_t ⊙ h_{t-1}, x_t] + b_h)
    h_t = (1 − z_t) ⊙ h_{t-1} + z_t ⊙ h~_t

Their z is our 1 − z. Since σ(−a) = 1 − σ(a), negating the update gate's weights and bias turns
one into the other; `seeds_to_packed` and `packed_to_seeds` do exactly that (reset before).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "GATES",
    "GATE_ORDERS",
    "LN_EPS",
    "GRUCache",
    "GRUGradients",
    "VariantCache",
    "VariantGradients",
    "active_mask",
    "gru_backward",
    "gru_forward",
    "gru_step",
    "layer_norm_backward",
    "layer_norm_forward",
    "min_gru_forward",
    "min_gru_g",
    "min_gru_step",
    "packed_to_seeds",
    "seeds_forward",
    "seeds_step",
    "seeds_to_packed",
    "sigmoid",
    "variant_backward",
    "variant_forward",
]

GATES = ("r", "z", "n")
"""Order of the gate blocks along the 3H axis of every packed weight and bias."""

GATE_ORDERS: dict[str, tuple[str, str, str]] = {
    "gru": GATES,
    "torch": ("r", "z", "n"),
    "keras": ("z", "r", "n"),
    "onnx": ("z", "r", "n"),
}
"""Order of the gate blocks along the 3H axis, per framework: the one gate-order table (Keras and
ONNX call n the candidate h). It lives here, the lowest layer, so that `gru.interop.layout`
(which converts weights with it, as ``ORDER``) and `gru.ops.export` (which writes ONNX nodes
from inside the layer) read the same table."""


def sigmoid(a: np.ndarray) -> np.ndarray:
    """σ(a) = 1 / (1 + e^−a), written so that no exponent overflows."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _split(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split the last axis of a packed (…, 3H) array into its r, z, n blocks."""
    H = v.shape[-1] // 3
    return v[..., :H], v[..., H : 2 * H], v[..., 2 * H :]


def _biases(b_ih, b_hh, H: int) -> tuple[np.ndarray, np.ndarray]:
    zero = np.zeros(3 * H)
    return (zero if b_ih is None else b_ih), (zero if b_hh is None else b_hh)


def gru_step(x_t, h_prev, w_ih, w_hh, b_ih=None, b_hh=None, *, reset_after: bool = True):
    """One GRU step. Returns ``h_t`` and the gate values ``(r, z, n, hn)``, each (B, H).

    ``hn`` is ``W_hn h_{t-1} + b_hn`` when reset_after (backward needs it) and ``r ⊙ h_{t-1}``
    when reset before (the vector W_hn acts on).
    """
    H = w_hh.shape[1]
    b_ih, b_hh = _biases(b_ih, b_hh, H)
    W_ir, W_iz, W_in = _split(w_ih.T)  # each (I, H)
    W_hr, W_hz, W_hn = _split(w_hh.T)  # each (H, H)
    b_ir, b_iz, b_in = _split(b_ih)
    b_hr, b_hz, b_hn = _split(b_hh)

    r = sigmoid(x_t @ W_ir + b_ir + h_prev @ W_hr + b_hr)  # (B, H)
    z = sigmoid(x_t @ W_iz + b_iz + h_prev @ W_hz + b_hz)  # (B, H)
    if reset_after:
        hn = h_prev @ W_hn + b_hn  # (B, H)
        n = np.tanh(x_t @ W_in + b_in + r * hn)  # (B, H)
    else:
        hn = r * h_prev  # (B, H)
        n = np.tanh(x_t @ W_in + b_in + hn @ W_hn + b_hn)  # (B, H)
    h_t = (1.0 - z) * n + z * h_prev  # (B, H)
    return h_t, (r, z, n, hn)


@dataclass
class GRUCache:
    """What `gru_forward` keeps for `gru_backward`: inputs, every state and every gate."""

    x: np.ndarray  # (T, B, I)
    h: np.ndarray  # (T + 1, B, H): h[0] = h0, h[t + 1] = state after step t
    r: np.ndarray  # (T, B, H)
    z: np.ndarray  # (T, B, H)
    n: np.ndarray  # (T, B, H)
    hn: np.ndarray  # (T, B, H): W_hn h + b_hn (reset after) or r ⊙ h (reset before)
    active: np.ndarray  # (T, B, 1): 1.0 where step t belongs to sequence b, else 0.0
    w_ih: np.ndarray
    w_hh: np.ndarray
    has_bias: bool
    reset_after: bool


@dataclass
class GRUGradients:
    """Gradients of a scalar loss with respect to every input of `gru_forward`."""

    x: np.ndarray  # (T, B, I)
    h0: np.ndarray  # (B, H)
    w_ih: np.ndarray  # (3H, I)
    w_hh: np.ndarray  # (3H, H)
    b_ih: np.ndarray | None  # (3H,), None when the forward had no bias
    b_hh: np.ndarray | None  # (3H,)


def active_mask(lengths, T: int, B: int) -> np.ndarray:
    """(T, B, 1): 1.0 where step t is within sequence b's length (all ones for None), 0.0 past
    its end, where the state is kept and the output is zero."""
    if lengths is None:
        return np.ones((T, B, 1))
    lengths = np.asarray(lengths)
    return (np.arange(T)[:, None] < lengths[None, :]).astype(np.float64)[..., None]  # (T, B, 1)


def gru_forward(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, *, reset_after: bool = True, lengths=None):
    """Run one GRU layer, one direction, over x of shape (T, B, I) from state h0 (B, H).

    Returns ``(output, h_n, cache)``: output (T, B, H) holds h_t (zero past a sequence's
    length), h_n (B, H) is each sequence's last state, and ``cache`` is what `gru_backward`
    needs. Biases may be None (a layer built with ``bias=False``). Everything is float64.
    """
    x = np.asarray(x, dtype=np.float64)
    h0 = np.asarray(h0, dtype=np.float64)
    w_ih = np.asarray(w_ih, dtype=np.float64)
    w_hh = np.asarray(w_hh, dtype=np.float64)
    has_bias = b_ih is not None
    b_ih = None if b_ih is None else np.asarray(b_ih, dtype=np.float64)
    b_hh = None if b_hh is None else np.asarray(b_hh, dtype=np.float64)
    T, B, _ = x.shape
    H = w_hh.shape[1]
    active = active_mask(lengths, T, B)

    h = np.zeros((T + 1, B, H))
    r, z, n, hn = (np.zeros((T, B, H)) for _ in range(4))
    h[0] = h0
    for t in range(T):
        h_new, (r[t], z[t], n[t], hn[t]) = gru_step(
            x[t], h[t], w_ih, w_hh, b_ih, b_hh, reset_after=reset_after
        )
        h[t + 1] = active[t] * h_new + (1.0 - active[t]) * h[t]  # a finished sequence keeps h
    output = active * h[1:]  # (T, B, H)
    cache = GRUCache(x, h, r, z, n, hn, active, w_ih, w_hh, has_bias, reset_after)
    return output, h[T].copy(), cache


def gru_backward(d_output, d_h_n, cache: GRUCache) -> GRUGradients:
    """Back-propagation through time for `gru_forward`, derived by hand from the equations.

    ``d_output`` (T, B, H) and ``d_h_n`` (B, H) are the gradients of the loss with respect to
    the forward's outputs (either may be None for zero). Walking from t = T − 1 down to 0 with
    dh = ∂L/∂h_t, at an active step::

        dn = dh ⊙ (1 − z)                 dz = dh ⊙ (h_{t-1} − n)      dh_{t-1} ⊇ dh ⊙ z
        da_n = dn ⊙ (1 − n²)              da_z = dz ⊙ z ⊙ (1 − z)
        reset after:  dr = da_n ⊙ (W_hn h_{t-1} + b_hn)     d(W_hn h_{t-1} + b_hn) = da_n ⊙ r
        reset before: d(r ⊙ h) = da_n W_hn   dr = d(r ⊙ h) ⊙ h_{t-1}   dh_{t-1} ⊇ d(r ⊙ h) ⊙ r
        da_r = dr ⊙ r ⊙ (1 − r)

    and the pre-activation gradients flow into x_t, h_{t-1} and the weights through the same
    matrix products as the forward. At an inactive step (past a sequence's end) h_t = h_{t-1},
    so dh passes through unchanged.
    """
    c = cache
    T, B, _ = c.x.shape
    H = c.w_hh.shape[1]
    d_output = np.zeros((T, B, H)) if d_output is None else np.asarray(d_output, np.float64)
    dh = np.zeros((B, H)) if d_h_n is None else np.asarray(d_h_n, np.float64).copy()

    W_ir, W_iz, W_in = _split(c.w_ih.T)  # each (I, H)
    W_hr, W_hz, W_hn = _split(c.w_hh.T)  # each (H, H)
    dx = np.zeros_like(c.x)
    dw_ih = np.zeros_like(c.w_ih)  # (3H, I)
    dw_hh = np.zeros_like(c.w_hh)  # (3H, H)
    db_ih = np.zeros(3 * H)
    db_hh = np.zeros(3 * H)
    dW_ir, dW_iz, dW_in = _split(dw_ih.T)  # views into dw_ih, each (I, H)
    dW_hr, dW_hz, dW_hn = _split(dw_hh.T)  # views into dw_hh, each (H, H)
    db_ir, db_iz, db_in = _split(db_ih)
    db_hr, db_hz, db_hn = _split(db_hh)

    for t in reversed(range(T)):
        m = c.active[t]  # (B, 1)
        dh = dh + m * d_output[t]  # ∂L/∂h_t (only active steps emit an output)
        x_t, h_prev = c.x[t], c.h[t]
        r, z, n, hn = c.r[t], c.z[t], c.n[t], c.hn[t]
        dh_step = m * dh  # the part of dh that reaches this step's gates

        dn = dh_step * (1.0 - z)
        dz = dh_step * (h_prev - n)
        da_n = dn * (1.0 - n * n)  # tanh' = 1 − n²
        da_z = dz * z * (1.0 - z)  # σ' = σ (1 − σ)
        dh_prev = dh_step * z
        if c.reset_after:
            dr = da_n * hn
            da_hn = da_n * r  # gradient of W_hn h_{t-1} + b_hn
            dW_hn += h_prev.T @ da_hn
            db_hn += da_hn.sum(0)
            dh_prev += da_hn @ W_hn.T
        else:
            d_rh = da_n @ W_hn.T  # gradient of r ⊙ h_{t-1}
            dr = d_rh * h_prev
            dh_prev += d_rh * r
            dW_hn += hn.T @ da_n
            db_hn += da_n.sum(0)
        da_r = dr * r * (1.0 - r)

        dx[t] = da_r @ W_ir.T + da_z @ W_iz.T + da_n @ W_in.T
        dW_ir += x_t.T @ da_r
        dW_iz += x_t.T @ da_z
        dW_in += x_t.T @ da_n
        db_ir += da_r.sum(0)
        db_iz += da_z.sum(0)
        db_in += da_n.sum(0)
        dW_hr += h_prev.T @ da_r
        dW_hz += h_prev.T @ da_z
        db_hr += da_r.sum(0)
        db_hz += da_z.sum(0)
        dh_prev += da_r @ W_hr.T + da_z @ W_hz.T

        dh = dh_prev + (1.0 - m) * dh  # an inactive step passes dh through: h_t = h_{t-1}

    if not c.has_bias:
        db_ih = db_hh = None
    return GRUGradients(dx, dh, dw_ih, dw_hh, db_ih, db_hh)


# --- variants: layer normalization, zoneout, recurrent dropout -------------------------------
#
# The same layer with three optional changes, all off by default (then it equals `gru_forward`):
#
#   layer normalization (Ba et al. 2016, as haste's LayerNormGRU), over each 3H projection:
#       a_x = LN(W_ih x_t; g_ih, c_ih),   a_h = LN(W_hh h̄_{t-1}; g_hh, c_hh)
#       LN(a; g, c) = g ⊙ (a − mean(a)) / √(var(a) + ε) + c     (mean, var over the 3H values)
#     then the gates as usual: r = σ(a_x,r + b_ir + a_h,r + b_hr), … n = tanh(a_x,n + b_in +
#     r ⊙ (a_h,n + b_hn)). Defined for the reset-after convention only.
#   recurrent dropout (Gal & Ghahramani 2016, Keras's recurrent_dropout): one mask m (B, H) per
#     sequence, the same at every step, on the state as the recurrent products read it:
#       h̄_{t-1} = m ⊙ h_{t-1}     (W_hh h̄ above; reset before: W_h{r,z} h̄ and W_hn (r ⊙ h̄))
#   zoneout (Krueger et al. 2017): each unit keeps its previous value with probability p,
#       h_t = d_t ⊙ h_{t-1} + (1 − d_t) ⊙ h̃_t,    h̃_t = (1 − z) ⊙ n + z ⊙ h_{t-1}
#     with d_t ∈ {0, 1} drawn per step in training and d_t = p in evaluation.

LN_EPS = 1e-5
"""ε of the layer normalization."""


def layer_norm_forward(a, gain, bias, eps: float = LN_EPS):
    """LN over the last axis: returns (g ⊙ â + c, â, s) with â = (a − mean) / s."""
    mean = a.mean(axis=-1, keepdims=True)
    s = np.sqrt(a.var(axis=-1, keepdims=True) + eps)
    a_hat = (a - mean) / s
    return gain * a_hat + bias, a_hat, s


def layer_norm_backward(dy, a_hat, s, gain):
    """Gradients of `layer_norm_forward` for dy = ∂L/∂y: (∂L/∂a, ∂L/∂g, ∂L/∂c), summed over rows.

    With u = dy ⊙ g: ∂L/∂a = (u − mean(u) − â ⊙ mean(u ⊙ â)) / s.
    """
    u = dy * gain
    da = (u - u.mean(axis=-1, keepdims=True) - a_hat * (u * a_hat).mean(axis=-1, keepdims=True)) / s
    return da, (dy * a_hat).sum(axis=0), dy.sum(axis=0)


@dataclass
class VariantCache:
    """What `variant_forward` keeps for `variant_backward`."""

    x: np.ndarray  # (T, B, I)
    h: np.ndarray  # (T + 1, B, H): h[0] = h0, h[t + 1] = state after step t
    r: np.ndarray  # (T, B, H)
    z: np.ndarray  # (T, B, H)
    n: np.ndarray  # (T, B, H)
    hn: np.ndarray  # (T, B, H): a_h,n + b_hn (reset after) or r ⊙ h̄ (reset before)
    ln: tuple | None  # per step (â_x, s_x, â_h, s_h) stacked over T, or None
    active: np.ndarray  # (T, B, 1)
    w_ih: np.ndarray
    w_hh: np.ndarray
    params: dict  # b_ih, b_hh, layer_norm gains/biases (float64 arrays or None)
    zoneout: np.ndarray | None  # (T, B, H)
    mask: np.ndarray | None  # (B, H)
    reset_after: bool


@dataclass
class VariantGradients(GRUGradients):
    """`GRUGradients` plus the layer normalization's gains and biases (None when off)."""

    ln_gain_ih: np.ndarray | None = None
    ln_bias_ih: np.ndarray | None = None
    ln_gain_hh: np.ndarray | None = None
    ln_bias_hh: np.ndarray | None = None


def variant_forward(
    x, h0, w_ih, w_hh, b_ih=None, b_hh=None, *, reset_after=True, layer_norm=None,
    zoneout=None, recurrent_mask=None, lengths=None,
):  # fmt: skip
    """`gru_forward` with the variants above. ``layer_norm`` is (g_ih, c_ih, g_hh, c_hh), each
    (3H,), or None; ``zoneout`` (T, B, H) holds d_t or None; ``recurrent_mask`` (B, H) holds m
    or None. Returns ``(output, h_n, cache)``."""
    f64 = lambda a: None if a is None else np.asarray(a, dtype=np.float64)
    x, h0, w_ih, w_hh = f64(x), f64(h0), f64(w_ih), f64(w_hh)
    T, B, _ = x.shape
    H = w_hh.shape[1]
    if layer_norm is not None and not reset_after:
        raise ValueError("variant_forward: layer_norm is defined for reset_after=True only")
    b_ih, b_hh = _biases(f64(b_ih), f64(b_hh), H)
    ln = None if layer_norm is None else tuple(f64(p) for p in layer_norm)
    d, m = f64(zoneout), f64(recurrent_mask)
    active = active_mask(lengths, T, B)
    W_hr, W_hz, W_hn = _split(w_hh.T)  # each (H, H)

    h = np.zeros((T + 1, B, H))
    r, z, n, hn = (np.zeros((T, B, H)) for _ in range(4))
    norms = [
        np.zeros((T, B, 3 * H)),
        np.zeros((T, B, 1)),
        np.zeros((T, B, 3 * H)),
        np.zeros((T, B, 1)),
    ]
    h[0] = h0
    for t in range(T):
        h_prev = h[t]
        h_bar = h_prev if m is None else m * h_prev  # what the recurrent products read
        a_x = x[t] @ w_ih.T  # (B, 3H)
        if ln is not None:
            a_x, norms[0][t], norms[1][t] = layer_norm_forward(a_x, ln[0], ln[1])
        a_xr, a_xz, a_xn = _split(a_x + b_ih)
        b_hr, b_hz, b_hn = _split(b_hh)
        if reset_after:
            a_h = h_bar @ w_hh.T  # (B, 3H)
            if ln is not None:
                a_h, norms[2][t], norms[3][t] = layer_norm_forward(a_h, ln[2], ln[3])
            a_hr, a_hz, a_hn = _split(a_h + b_hh)
            r[t] = sigmoid(a_xr + a_hr)
            z[t] = sigmoid(a_xz + a_hz)
            hn[t] = a_hn
            n[t] = np.tanh(a_xn + r[t] * hn[t])
        else:
            r[t] = sigmoid(a_xr + h_bar @ W_hr + b_hr)
            z[t] = sigmoid(a_xz + h_bar @ W_hz + b_hz)
            hn[t] = r[t] * h_bar
            n[t] = np.tanh(a_xn + hn[t] @ W_hn + b_hn)
        h_new = (1.0 - z[t]) * n[t] + z[t] * h_prev  # h̃_t
        if d is not None:
            h_new = d[t] * h_prev + (1.0 - d[t]) * h_new  # zoneout
        h[t + 1] = active[t] * h_new + (1.0 - active[t]) * h_prev
    params = {"b_ih": b_ih, "b_hh": b_hh, "ln": ln, "has_bias": b_ih is not None}
    cache = VariantCache(
        x, h, r, z, n, hn, None if ln is None else tuple(norms), active, w_ih, w_hh, params, d, m,
        reset_after,
    )  # fmt: skip
    return active * h[1:], h[T].copy(), cache


def variant_backward(d_output, d_h_n, cache: VariantCache):
    """Back-propagation through time for `variant_forward` (the same derivation as
    `gru_backward`, plus: zoneout splits ∂L/∂h_t into d_t ⊙ (to h_{t-1}) and (1 − d_t) ⊙ (to
    h̃_t); the recurrent products' gradient reaches h_{t-1} through m; the layer norms' through
    `layer_norm_backward`). Returns `VariantGradients`."""
    c = cache
    T, B, _ = c.x.shape
    H = c.w_hh.shape[1]
    d_output = np.zeros((T, B, H)) if d_output is None else np.asarray(d_output, np.float64)
    dh = np.zeros((B, H)) if d_h_n is None else np.asarray(d_h_n, np.float64).copy()
    W_hr, W_hz, W_hn = _split(c.w_hh.T)
    dx = np.zeros_like(c.x)
    dw_ih, dw_hh = np.zeros_like(c.w_ih), np.zeros_like(c.w_hh)
    db_ih, db_hh = np.zeros(3 * H), np.zeros(3 * H)
    dln = [np.zeros(3 * H) for _ in range(4)]
    for t in reversed(range(T)):
        act = c.active[t]
        dh = dh + act * d_output[t]
        h_prev = c.h[t]
        h_bar = h_prev if c.mask is None else c.mask * h_prev
        r, z, n, hn = c.r[t], c.z[t], c.n[t], c.hn[t]
        dh_step = act * dh
        if c.zoneout is None:
            dh_tilde, dh_prev = dh_step, np.zeros_like(dh)
        else:
            dh_tilde, dh_prev = dh_step * (1.0 - c.zoneout[t]), dh_step * c.zoneout[t]
        da_n = dh_tilde * (1.0 - z) * (1.0 - n * n)
        da_z = dh_tilde * (h_prev - n) * z * (1.0 - z)
        dh_prev += dh_tilde * z
        d_hbar = np.zeros_like(dh)
        if c.reset_after:
            da_r = da_n * hn * r * (1.0 - r)
            da_h = np.concatenate([da_r, da_z, da_n * r], axis=1)  # ∂L/∂(a_h + b_hh)
            db_hh += da_h.sum(0)
            if c.ln is not None:
                da_h, dg, dc = layer_norm_backward(da_h, c.ln[2][t], c.ln[3][t], c.params["ln"][2])
                dln[2] += dg
                dln[3] += dc
            dw_hh += da_h.T @ h_bar
            d_hbar += da_h @ c.w_hh
        else:
            d_rh = da_n @ W_hn.T  # ∂L/∂(r ⊙ h̄)
            da_r = d_rh * h_bar * r * (1.0 - r)
            d_hbar += d_rh * r
            dw_hh += np.concatenate([da_r.T @ h_bar, da_z.T @ h_bar, da_n.T @ hn])
            db_hh += np.concatenate([da_r.sum(0), da_z.sum(0), da_n.sum(0)])
            d_hbar += da_r @ W_hr.T + da_z @ W_hz.T
        da_x = np.concatenate([da_r, da_z, da_n], axis=1)  # ∂L/∂(a_x + b_ih)
        db_ih += da_x.sum(0)
        if c.ln is not None:
            da_x, dg, dc = layer_norm_backward(da_x, c.ln[0][t], c.ln[1][t], c.params["ln"][0])
            dln[0] += dg
            dln[1] += dc
        dw_ih += da_x.T @ c.x[t]
        dx[t] = da_x @ c.w_ih
        dh_prev += d_hbar if c.mask is None else d_hbar * c.mask
        dh = dh_prev + (1.0 - act) * dh
    has_bias = c.params["has_bias"]
    ln_grads = dln if c.ln is not None else [None] * 4
    return VariantGradients(
        dx, dh, dw_ih, dw_hh, db_ih if has_bias else None, db_hh if has_bias else None, *ln_grads
    )


# --- the seeds' notation -------------------------------------------------------------------


def seeds_step(x_t, h_prev, w_z, w_r, w_h, b_z=None, b_r=None, b_h=None):
    """One step in the seeds' notation: each W_* is (H, H + I) acting on ``[h_{t-1}, x_t]``.

    ``h_t = (1 − z_t) ⊙ h_{t-1} + z_t ⊙ h~_t``: here z is the fraction of the new candidate
    taken, the opposite of the packed layout's z.
    """
    H = h_prev.shape[-1]
    b_z, b_r, b_h = (np.zeros(H) if b is None else b for b in (b_z, b_r, b_h))
    hx = np.concatenate([h_prev, x_t], axis=-1)  # (B, H + I)
    z = sigmoid(hx @ w_z.T + b_z)  # (B, H)
    r = sigmoid(hx @ w_r.T + b_r)  # (B, H)
    rhx = np.concatenate([r * h_prev, x_t], axis=-1)  # (B, H + I)
    h_tilde = np.tanh(rhx @ w_h.T + b_h)  # (B, H)
    return (1.0 - z) * h_prev + z * h_tilde  # (B, H)


def seeds_forward(x, h0, w_z, w_r, w_h, b_z=None, b_r=None, b_h=None):
    """Run `seeds_step` over x (T, B, I); returns (output (T, B, H), h_n (B, H))."""
    x = np.asarray(x, dtype=np.float64)
    h = np.asarray(h0, dtype=np.float64)
    output = np.zeros((x.shape[0], *h.shape))
    for t in range(x.shape[0]):
        h = seeds_step(x[t], h, w_z, w_r, w_h, b_z, b_r, b_h)
        output[t] = h
    return output, h


def seeds_to_packed(w_z, w_r, w_h, b_z=None, b_r=None, b_h=None):
    """Convert seeds' weights to the packed layout (reset before): ``(w_ih, w_hh, b_ih, b_hh)``.

    The columns acting on h_{t-1} go to w_hh and those acting on x_t to w_ih; the update gate
    is negated (their z_t = our 1 − z_t). All biases go to b_ih and b_hh is zero: with the
    reset gate before the product every bias sits outside r, so only their sum matters.
    """
    H = w_z.shape[0]
    b_z, b_r, b_h = (
        np.zeros(H) if b is None else np.asarray(b, np.float64) for b in (b_z, b_r, b_h)
    )
    w_ih = np.concatenate([w_r[:, H:], -w_z[:, H:], w_h[:, H:]])  # (3H, I)
    w_hh = np.concatenate([w_r[:, :H], -w_z[:, :H], w_h[:, :H]])  # (3H, H)
    b_ih = np.concatenate([b_r, -b_z, b_h])  # (3H,)
    return w_ih, w_hh, b_ih, np.zeros(3 * H)


def packed_to_seeds(w_ih, w_hh, b_ih=None, b_hh=None):
    """Inverse of `seeds_to_packed` for a reset-before GRU: ``(w_z, w_r, w_h, b_z, b_r, b_h)``.

    A reset-after GRU has no such form (its b_hn sits inside the reset gate), which is why
    this takes only reset-before weights.
    """
    H = w_hh.shape[1]
    b_ih, b_hh = _biases(b_ih, b_hh, H)
    W_r, W_z, W_h = (
        np.concatenate([wh, wi], axis=1)
        for wh, wi in zip(np.split(w_hh, 3), np.split(w_ih, 3), strict=True)
    )
    b_r, b_z, b_h = np.split(b_ih + b_hh, 3)
    return -W_z, W_r, W_h, -b_z, b_r, b_h


# --- minGRU (Feng et al. 2024) -------------------------------------------------------------
#
# "Were RNNs All We Needed?" (arXiv 2410.01201) drops the GRU's dependence of its gates on
# h_{t-1}, so that the recurrence becomes linear in h and a sequence can be computed by a
# parallel scan. Weights act on x_t only:  w_z, w_h (H, I)   b_z, b_h (H,)
#
#     z_t = σ(W_z x_t + b_z)                      update gate
#     h~_t = g(W_h x_t + b_h)                     candidate state
#     h_t = (1 − z_t) ⊙ h_{t-1} + z_t ⊙ h~_t
#     g(a) = a + 1/2 for a ≥ 0,  σ(a) for a < 0   (positive, so that log h~_t exists)
#
# As in the seeds' notation, z is the fraction of the candidate taken (the packed layout's
# 1 − z). The oracle is the sequential loop; `gru.MinGRU` computes the same by a scan.


def min_gru_g(a: np.ndarray) -> np.ndarray:
    """g(a) = a + 1/2 for a ≥ 0 and σ(a) for a < 0: continuous, increasing, always positive."""
    return np.where(a >= 0, a + 0.5, sigmoid(a))


def min_gru_step(x_t, h_prev, w_z, b_z, w_h, b_h):
    """One minGRU step: x_t (B, I), h_prev (B, H) -> h_t (B, H). Biases may be None."""
    H = w_z.shape[0]
    b_z = np.zeros(H) if b_z is None else b_z
    b_h = np.zeros(H) if b_h is None else b_h
    z = sigmoid(x_t @ w_z.T + b_z)  # (B, H)
    h_tilde = min_gru_g(x_t @ w_h.T + b_h)  # (B, H)
    return (1.0 - z) * h_prev + z * h_tilde  # (B, H)


def min_gru_forward(x, h0, w_z, b_z, w_h, b_h):
    """Run one minGRU layer over x (T, B, I) from state h0 (B, H), one step at a time.

    Returns ``(output, h_n)``: output (T, B, H) holds h_t for every step and h_n (B, H) the
    last state. Biases may be None (a layer built with ``bias=False``). Everything is float64.
    """
    x = np.asarray(x, dtype=np.float64)
    h = np.asarray(h0, dtype=np.float64)
    w_z = np.asarray(w_z, dtype=np.float64)
    w_h = np.asarray(w_h, dtype=np.float64)
    b_z = None if b_z is None else np.asarray(b_z, dtype=np.float64)
    b_h = None if b_h is None else np.asarray(b_h, dtype=np.float64)
    output = np.zeros((x.shape[0], *h.shape))
    for t in range(x.shape[0]):
        h = min_gru_step(x[t], h, w_z, b_z, w_h, b_h)
        output[t] = h
    return output, h.copy()
