"""The GRU's math composed from torch operations: every device, every dtype, autograd by torch.

The equations of `gru.reference`, one step at a time, with the recurrent biases that sit
outside the reset gate folded into the input side once for every step. Slow on the CPU next
to the engine (`gru.ops.fused`), but it runs anywhere, and under ``torch.compile`` /
``torch.export`` for the variants.

Shapes: T time steps, B batch, I input features, H hidden units. Weights are packed in rows
``[r | z | n]``: w_ih (3H, I), w_hh (3H, H), b_ih and b_hh (3H,).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["LN_EPS", "gru_cell", "reverse_time", "sequence"]

LN_EPS = 1e-5
"""ε of the layer normalization (as `gru.reference.LN_EPS`)."""


def _folded_bias(b_ih, b_hh, reset_after: bool):
    """b_ih plus every recurrent bias that sits outside the reset gate (None without bias).

    With the reset gate after the product only b_hr and b_hz can be moved out of the time
    loop (b_hn is multiplied by r); before it, all three can. (The engine states the same
    convention for NumPy arrays in `gru.kernels.padding`.)
    """
    if b_ih is None:
        return None
    if not reset_after:
        return b_ih + b_hh
    H = b_hh.shape[0] // 3
    return b_ih + torch.cat([b_hh[: 2 * H], b_hh.new_zeros(H)])


def _input_side(x, w_ih, b_ih, b_hh, reset_after, ln_ih) -> Tensor:
    """W_ih x (or its layer norm LN(W_ih x; g_ih, c_ih), ``ln_ih`` = (g_ih, c_ih)) plus the
    folded biases: (…, 3H), computed for every step at once."""
    H3 = w_ih.shape[0]
    gx = F.linear(x, w_ih)
    if ln_ih is not None:
        gx = F.layer_norm(gx, (H3,), ln_ih[0], ln_ih[1], LN_EPS)
    folded = _folded_bias(b_ih, b_hh, reset_after)
    return gx if folded is None else gx + folded


def _step(gx, h, w_hh, b_hn, reset_after, ln_hh=None, mask=None, keep=None) -> Tensor:
    """One step from ``gx`` = the input side with the folded biases (B, 3H) and h_{t-1}
    (B, H): h_t (B, H). Only ``b_hn`` (H,) (reset after; None without bias) is still to add.

    Variants: ``ln_hh`` (gain, bias) normalizes W_hh h̄; ``mask`` (B, H) is the recurrent
    dropout mask m, h̄ = m ⊙ h; ``keep`` (B, H) or a float is zoneout's d_t.
    """
    H = h.shape[-1]
    h_bar = h if mask is None else h * mask  # what the recurrent products read
    if reset_after:
        gh = F.linear(h_bar, w_hh)  # (B, 3H)
        if ln_hh is not None:
            gh = F.layer_norm(gh, (3 * H,), ln_hh[0], ln_hh[1], LN_EPS)
        rz = torch.sigmoid(gx[:, : 2 * H] + gh[:, : 2 * H])  # (B, 2H)
        r, z = rz[:, :H], rz[:, H:]
        hn = gh[:, 2 * H :] if b_hn is None else gh[:, 2 * H :] + b_hn  # W_hn h + b_hn
        n = torch.tanh(gx[:, 2 * H :] + r * hn)  # (B, H)
        h_new = n + z * (h - n)  # (1 − z) ⊙ n + z ⊙ h, rearranged to save one operation
    else:
        h_new = reset_before_step(gx, h, w_hh, h_bar)
    if keep is not None:
        h_new = h_new + keep * (h - h_new)  # zoneout: d ⊙ h + (1 − d) ⊙ h̃
    return h_new


def reset_before_step(gx: Tensor, h: Tensor, w_hh: Tensor, h_bar: Tensor | None = None) -> Tensor:
    """One step with the reset gate before the product, from ``gx`` = the input side with every
    bias folded in (B, 3H) and h_{t-1} (B, H): h_t (B, H). ``h_bar`` (recurrent dropout's
    m ⊙ h) is what the products read, h itself by default. TorchScript compiles it (the
    scripted layer and cell of `gru.nn.script` step with it)."""
    H = h.size(-1)
    read = h if h_bar is None else h_bar
    rz = torch.sigmoid(gx[:, : 2 * H] + F.linear(read, w_hh[: 2 * H]))  # (B, 2H)
    r, z = rz[:, :H], rz[:, H:]
    n = torch.tanh(gx[:, 2 * H :] + F.linear(r * read, w_hh[2 * H :]))  # (B, H)
    return n + z * (h - n)  # (1 − z) ⊙ n + z ⊙ h, rearranged to save one operation


def reverse_time(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence of x (T, B, …) within its own length; padding stays where it is."""
    if lengths is None:
        return x.flip(0)
    T = x.shape[0]
    t = torch.arange(T).unsqueeze(1)  # (T, 1)
    L = lengths.unsqueeze(0)  # (1, B)
    index = torch.where(t < L, L - 1 - t, t).to(x.device)  # (T, B)
    return x.gather(0, index.unsqueeze(-1).expand_as(x))


def sequence(
    x, h0, w_ih, w_hh, b_ih, b_hh, reset_after, reverse, lengths,
    layer_norm=None, zoneout=None, recurrent_mask=None,
):  # fmt: skip
    """One layer in one direction over x (T, B, I): (output (T, B, H), h_n (B, H)); the
    arguments as `gru.ops.gru_sequence` takes them."""
    T, B = x.shape[:2]
    H = w_hh.shape[1]
    h = x.new_zeros(B, H) if h0 is None else h0
    if reverse:
        x = reverse_time(x, lengths)
        if isinstance(zoneout, Tensor):  # d_t belongs to position t, read in this order too
            zoneout = reverse_time(zoneout, lengths)
    ln_ih, ln_hh = (None, None) if layer_norm is None else (layer_norm[:2], layer_norm[2:])
    gx = _input_side(x, w_ih, b_ih, b_hh, reset_after, ln_ih)  # (T, B, 3H)
    b_hn = b_hh[2 * H :] if (reset_after and b_hh is not None) else None
    outputs = []
    active = None
    if lengths is not None:
        active = (torch.arange(T).unsqueeze(1) < lengths.unsqueeze(0)).to(x.device)  # (T, B)
        active = active.unsqueeze(-1)  # (T, B, 1)
    for t in range(T):
        keep = zoneout[t] if isinstance(zoneout, Tensor) else zoneout
        h_new = _step(gx[t], h, w_hh, b_hn, reset_after, ln_hh, recurrent_mask, keep)
        if active is None:
            h = h_new
            outputs.append(h)
        else:
            h = torch.where(active[t], h_new, h)  # a finished sequence keeps its state
            outputs.append(torch.where(active[t], h_new, 0.0))
    output = torch.stack(outputs)  # (T, B, H)
    if reverse:
        output = reverse_time(output, lengths)
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
    layer_norm: tuple[Tensor, Tensor, Tensor, Tensor] | None = None,
    zoneout: Tensor | float | None = None,
) -> Tensor:
    """One GRU step: x (B, I), h (B, H) -> h' (B, H).

    ``layer_norm`` (g_ih, c_ih, g_hh, c_hh) and ``zoneout`` (d (B, H) or p) as in
    `gru.ops.gru_sequence`.
    """
    ln_ih, ln_hh = (None, None) if layer_norm is None else (layer_norm[:2], layer_norm[2:])
    gx = _input_side(x, w_ih, b_ih, b_hh, reset_after, ln_ih)  # (B, 3H)
    b_hn = b_hh[2 * h.shape[-1] :] if (reset_after and b_hh is not None) else None
    return _step(gx, h, w_hh, b_hn, reset_after, ln_hh, None, zoneout)
