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
    "GRUCache",
    "GRUGradients",
    "gru_backward",
    "gru_forward",
    "gru_step",
    "packed_to_seeds",
    "seeds_forward",
    "seeds_step",
    "seeds_to_packed",
    "sigmoid",
]

GATES = ("r", "z", "n")
"""Order of the gate blocks along the 3H axis of every packed weight and bias."""


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


def _active_mask(lengths, T: int, B: int) -> np.ndarray:
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
    active = _active_mask(lengths, T, B)

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
