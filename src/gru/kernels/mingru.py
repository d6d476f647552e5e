"""One minGRU step in NumPy, in place on buffers made once: the streaming step of `gru.MinGRU`.

    z_t = σ(k_t),  h̃_t = g(a_t),  h_t = (1 − z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t
    with [k_t | a_t] = x_t [W_z | W_h]ᵀ + [b_z | b_h] and g(a) = a + 1/2 (a ≥ 0), σ(a) (a < 0)

Shapes: L layers, B batch, I input features, H hidden units.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MinGRUBuffers", "min_gru_step", "sigmoid"]


def sigmoid(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    """σ(a) = (1 + tanh(a / 2)) / 2 into ``out``: no exponent, so nothing overflows."""
    np.multiply(a, 0.5, out=out)
    np.tanh(out, out=out)
    np.multiply(out, 0.5, out=out)
    return np.add(out, 0.5, out=out)


class MinGRUBuffers:
    """The scratch of `min_gru_step` for a batch of B rows of H units."""

    def __init__(self, B: int, H: int, dtype) -> None:
        self.gx = np.empty((B, 2 * H), dtype)  # [k | a]
        self.z = np.empty((B, H), dtype)
        self.h_tilde = np.empty((B, H), dtype)
        self.mask = np.empty((B, H), bool)
        self.out = np.empty((B, H), dtype)  # the top layer's h_t, overwritten by the next step


def min_gru_step(x: np.ndarray, layers, state: np.ndarray, buffers: MinGRUBuffers) -> np.ndarray:
    """Advance every layer by one step from x (B, I), in place: ``layers`` holds per layer
    ([W_z | W_h]ᵀ (I_k, 2H), [b_z | b_h] (2H,)), ``state`` h (L, B, H). Returns
    ``buffers.out``, the top layer's h_t."""
    H = state.shape[-1]
    gx, z, h_tilde, mask = buffers.gx, buffers.z, buffers.h_tilde, buffers.mask
    layer_input = x  # (B, I_k)
    for layer, (w_t, b) in enumerate(layers):
        np.matmul(layer_input, w_t, out=gx)  # (B, 2H)
        np.add(gx, b, out=gx)
        k, a = gx[:, :H], gx[:, H:]  # (B, H) each
        sigmoid(k, out=z)  # z_t
        np.greater_equal(a, 0.0, out=mask)
        sigmoid(a, out=h_tilde)  # g(a) = σ(a) for a < 0 ...
        np.add(a, 0.5, out=a)
        np.copyto(h_tilde, a, where=mask)  # ... and a + 1/2 for a ≥ 0
        h = state[layer]  # (B, H), updated in place
        np.subtract(h_tilde, h, out=h_tilde)
        np.multiply(h_tilde, z, out=h_tilde)
        np.add(h, h_tilde, out=h)  # h + z ⊙ (h̃ − h) = (1 − z) ⊙ h + z ⊙ h̃
        layer_input = h
    np.copyto(buffers.out, layer_input)
    return buffers.out
