"""The GRU's math for the PyTorch layers: one layer, one direction, one place.

`gru.nn` validates its arguments and then calls only the two functions here, so every way of
computing a GRU step plugs in at this boundary. They are composed from torch operations, so
autograd, every device and every floating dtype work unchanged.

Shapes: T time steps, B batch, I input features, H hidden units. Weights use the packed layout
of `gru.reference` (rows ``[r | z | n]``): w_ih (3H, I), w_hh (3H, H), b_ih and b_hh (3H,).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["BACKENDS", "gru_cell", "gru_sequence"]

BACKENDS = ("auto", "fused", "torch")


def _input_projection(x: Tensor, w_ih: Tensor, b_ih, b_hh, reset_after: bool) -> Tensor:
    """``W_ih x + b_ih``, plus every recurrent bias that sits outside the reset gate.

    With the reset gate after the product only b_hr and b_hz can be moved out of the time
    loop (b_hn is multiplied by r); before it, all three can.
    """
    if b_ih is None:
        return F.linear(x, w_ih)
    if b_hh is None:
        return F.linear(x, w_ih, b_ih)
    H = b_hh.shape[0] // 3
    b_outside = torch.cat([b_hh[: 2 * H], b_hh.new_zeros(H)]) if reset_after else b_hh
    return F.linear(x, w_ih, b_ih + b_outside)  # (…, 3H)


def _step(gx: Tensor, h: Tensor, w_hh: Tensor, b_hn, reset_after: bool) -> Tensor:
    """One recurrence step given ``gx`` = the input projection with the folded biases (B, 3H)."""
    H = h.shape[-1]
    if reset_after:
        gh = F.linear(h, w_hh)  # (B, 3H)
        rz = torch.sigmoid(gx[:, : 2 * H] + gh[:, : 2 * H])  # (B, 2H)
        r, z = rz[:, :H], rz[:, H:]
        hn = gh[:, 2 * H :] if b_hn is None else gh[:, 2 * H :] + b_hn  # W_hn h + b_hn
        n = torch.tanh(gx[:, 2 * H :] + r * hn)  # (B, H)
    else:
        rz = torch.sigmoid(gx[:, : 2 * H] + F.linear(h, w_hh[: 2 * H]))  # (B, 2H)
        r, z = rz[:, :H], rz[:, H:]
        n = torch.tanh(gx[:, 2 * H :] + F.linear(r * h, w_hh[2 * H :]))  # (B, H)
    return n + z * (h - n)  # (1 − z) ⊙ n + z ⊙ h, rearranged to save one operation


def _reverse_time(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence within its own length; padding stays where it is."""
    if lengths is None:
        return x.flip(0)
    T = x.shape[0]
    t = torch.arange(T).unsqueeze(1)  # (T, 1)
    L = lengths.unsqueeze(0)  # (1, B)
    index = torch.where(t < L, L - 1 - t, t).to(x.device)  # (T, B)
    return x.gather(0, index.unsqueeze(-1).expand_as(x))


def gru_sequence(
    x: Tensor,
    h0: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None,
    b_hh: Tensor | None,
    *,
    reset_after: bool = True,
    reverse: bool = False,
    lengths: Tensor | None = None,
    backend: str = "auto",
) -> tuple[Tensor, Tensor]:
    """Run one GRU layer in one direction over x (T, B, I) from h0 (B, H).

    ``lengths`` (B,) int64 on the CPU, each in [1, T], or None for all T: sequence b is
    updated for t < lengths[b] only, its outputs past that are zero and its final state is the
    one at its last step. ``reverse`` reads each sequence backwards within its length.
    Returns ``(output (T, B, H), h_n (B, H))``. Arguments are trusted (validated by `gru.nn`).
    """
    T = x.shape[0]
    H = h0.shape[-1]
    if reverse:
        x = _reverse_time(x, lengths)
    gx = _input_projection(x, w_ih, b_ih, b_hh, reset_after)  # (T, B, 3H)
    b_hn = b_hh[2 * H :] if (reset_after and b_hh is not None) else None
    if lengths is not None and bool((lengths == T).all()):
        lengths = None  # nothing to mask

    h = h0
    outputs = []
    if lengths is None:
        for t in range(T):
            h = _step(gx[t], h, w_hh, b_hn, reset_after)
            outputs.append(h)
    else:
        active = (torch.arange(T).unsqueeze(1) < lengths.unsqueeze(0)).to(x.device)  # (T, B)
        active = active.unsqueeze(-1)  # (T, B, 1)
        for t in range(T):
            h_new = _step(gx[t], h, w_hh, b_hn, reset_after)
            h = torch.where(active[t], h_new, h)  # a finished sequence keeps its state
            outputs.append(torch.where(active[t], h_new, 0.0))
    output = torch.stack(outputs)  # (T, B, H)
    if reverse:
        output = _reverse_time(output, lengths)
    return output, h


def gru_cell(
    x: Tensor,
    h: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None,
    b_hh: Tensor | None,
    *,
    reset_after: bool = True,
) -> Tensor:
    """One GRU step: x (B, I), h (B, H) -> h' (B, H)."""
    H = h.shape[-1]
    gx = _input_projection(x, w_ih, b_ih, b_hh, reset_after)  # (B, 3H)
    b_hn = b_hh[2 * H :] if (reset_after and b_hh is not None) else None
    return _step(gx, h, w_hh, b_hn, reset_after)
