"""The engine's own width and the bias convention: the two things the rest of the package
never sees.

The engine runs H padded to Hp, a multiple of `LANES`, and folds into the input projection
every recurrent bias that sits outside the reset gate. Both happen here, on the way in, and
are undone here on the way out, so `gru.kernels.layer` takes and returns a layer's arrays as
stored (w_ih (3H, I), w_hh (3H, H), b_ih and b_hh (3H,), gates in rows [r | z | n]).

Which recurrent biases fold (the convention, `gru.reference`):
    reset after   n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)): b_hr and b_hz fold into the
                  input side; b_hn is multiplied by r, so it stays with the recurrence.
    reset before  n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn): all three fold.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "LANES",
    "fold_biases",
    "pad_hidden",
    "padded_size",
    "recurrent_bias_grads",
    "unpad_hidden",
]

LANES = 8
"""The engine runs H rounded up to a multiple of this (a float32 AVX2 vector): the loops of
the row kernels then have no scalar remainder, which at H = 50 cost as much as H = 64."""


def padded_size(hidden_size: int) -> int:
    """H rounded up to a multiple of `LANES`."""
    return -(-hidden_size // LANES) * LANES


def pad_hidden(a: np.ndarray, H: int, Hp: int, *, axis: int = -1, blocks: int = 1) -> np.ndarray:
    """Widen each of ``blocks`` consecutive blocks of size H along ``axis`` (0 or -1) to Hp,
    with zeros.

    Zero weights, biases and initial states in the added units keep those units at exactly 0
    forward and backward (r = z = 1/2 and n = 0 there), so they change no result.
    """
    if Hp == H:
        return a
    if axis == 0:
        out = np.zeros((blocks * Hp, *a.shape[1:]), a.dtype)
        for g in range(blocks):
            out[g * Hp : g * Hp + H] = a[g * H : (g + 1) * H]
    else:
        out = np.zeros((*a.shape[:-1], blocks * Hp), a.dtype)
        for g in range(blocks):
            out[..., g * Hp : g * Hp + H] = a[..., g * H : (g + 1) * H]
    return out


def unpad_hidden(a: np.ndarray, H: int, Hp: int, *, axis: int = -1, blocks: int = 1) -> np.ndarray:
    """The inverse of `pad_hidden`: the first H of each block of Hp (a new contiguous array)."""
    if Hp == H:
        return a
    if axis == 0:
        return np.concatenate([a[g * Hp : g * Hp + H] for g in range(blocks)])
    if blocks == 1:
        return np.ascontiguousarray(a[..., :H])
    return np.concatenate([a[..., g * Hp : g * Hp + H] for g in range(blocks)], axis=-1)


def fold_biases(
    b_ih, b_hh, reset_after: bool, dtype
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(b_x, b_hn): b_x (3H,) = b_ih plus the recurrent biases outside r, added to the input
    projection; b_hn (H,) the one that stays inside (reset after), else None. Both None
    without bias.

    Computed on every call: weights can change without their version counter moving (through
    ``.data``, as gradcheck does), so nothing derived from them is cached.
    """
    if b_ih is None:
        return None, None
    b_i = np.asarray(b_ih, dtype)
    b_h = np.asarray(b_hh, dtype)
    if not reset_after:
        return b_i + b_h, None
    H = b_h.shape[0] // 3
    b_x = b_i.copy()  # (3H,)
    b_x[: 2 * H] += b_h[: 2 * H]
    return b_x, b_h[2 * H :]


def recurrent_bias_grads(db_x: np.ndarray, db_hn: np.ndarray | None) -> np.ndarray:
    """∂L/∂b_hh (3H,) from ∂L/∂b_x (3H,), the gradient of the folded bias, and ∂L/∂b_hn (H,)
    (reset after) or None (reset before): a folded bias has the gradient of b_x."""
    if db_hn is None:
        return db_x.copy()
    H = db_hn.shape[0]
    return np.concatenate([db_x[: 2 * H], db_hn])
