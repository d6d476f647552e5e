"""minGRU's whole-sequence scan (Feng et al. 2024) and its hand-derived backward, in torch.

Neither z_t nor h̃_t of a minGRU reads h_{t-1}, so the recurrence is linear in h,
h_t = c_t ⊙ h_{t-1} + v_t with c_t = 1 − z_t and v_t = z_t ⊙ h̃_t, and a whole sequence is a
scan over time (see `gru.nn.MinGRU` for the equations).

Shapes: T time steps, B batch, H hidden units.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from gru.ops.export import exporting_to_onnx

__all__ = [
    "SCAN_CHUNK",
    "candidate",
    "log_candidate",
    "min_gru_scan",
    "min_gru_sequential",
    "min_gru_step",
    "reverse_linear_scan",
]

SCAN_CHUNK = 32
"""Time steps per chunk of `min_gru_scan` (see there why the scan is chunked)."""


def candidate(a: Tensor) -> Tensor:
    """g(a) = a + 1/2 for a ≥ 0, σ(a) for a < 0."""
    return torch.where(a >= 0, a + 0.5, torch.sigmoid(a))


def log_candidate(a: Tensor) -> Tensor:
    """log g(a) = log(a + 1/2) for a ≥ 0, log σ(a) = −softplus(−a) for a < 0.

    relu keeps the branch that `where` discards finite, so its gradient is never NaN.
    """
    return torch.where(a >= 0, torch.log(F.relu(a) + 0.5), -F.softplus(-a))


def min_gru_scan(k: Tensor, a: Tensor, h0: Tensor | None) -> Tensor:
    """Every h_t (T, B, H) of one minGRU layer, from its pre-activations k = W_z x + b_z and
    a = W_h x + b_h (T, B, H each) and the state h0 (B, H) (zeros when None), by a scan.

    The forward is the paper's log-space scan (`_log_space_scan`); the backward is derived by
    hand (`_MinGRUScan`), because autograd through the log-space scan is not accurate enough
    in float32. Under ``torch.onnx.export`` the scan is `_scan_for_export`.
    """
    if exporting_to_onnx():
        return _scan_for_export(k, a, h0)
    return _MinGRUScan.apply(k, a, h0)


_EXPORT_ROUNDS = 24
"""Doubling rounds over the chunks in `_scan_for_export`: any T up to 2^24 chunks."""


def _scan_for_export(k: Tensor, a: Tensor, h0: Tensor | None) -> Tensor:
    """h (T, B, H) of `min_gru_scan` as ONNX operations that hold for every T of the file.

    The log-space scan cannot go into an ONNX file: its chunks are a Python loop that
    torch.export guards to the length it traced (the file would drop the guard and return
    32 steps for 33), and ONNX's logcumsumexp (onnxscript's) subtracts the sequence's global
    maximum, so once the terms span ~88 nats the early ones underflow (T = 100 was off by
    0.8). Here in linear space, products and sums only, like `reverse_linear_scan`: the
    sequence is padded to chunks of `SCAN_CHUNK` steps, each chunk scans its pairs
    (c_t, v_t) in log2(SCAN_CHUNK) doubling rounds (Hillis and Steele 1986), the chunks'
    totals scan in `_EXPORT_ROUNDS` rounds, and each chunk starts from the state the
    chunks before it leave.
    """
    T, B, H = k.shape
    C = SCAN_CHUNK
    pad = (C - T % C) % C
    c = F.pad(torch.sigmoid(-k), (0, 0, 0, 0, 0, pad), value=1.0).reshape(-1, C, B, H)
    v = F.pad(torch.sigmoid(k) * candidate(a), (0, 0, 0, 0, 0, pad)).reshape(-1, C, B, H)
    c, v = _doubling_scan(c, v, dim=1, rounds=C.bit_length() - 1)  # within chunks
    c_end, v_end = _doubling_scan(c[:, -1], v[:, -1], dim=0, rounds=_EXPORT_ROUNDS)
    h_end = v_end if h0 is None else v_end + c_end * h0  # (n, B, H): each chunk's last state
    h_start = torch.cat([torch.zeros_like(h_end[:1]) if h0 is None else h0[None], h_end[:-1]])
    h = v + c * h_start[:, None]  # (n, C, B, H)
    return h.reshape(-1, B, H)[:T]


def _doubling_scan(c: Tensor, v: Tensor, dim: int, rounds: int) -> tuple[Tensor, Tensor]:
    """The inclusive scan of the maps h ↦ c_t ⊙ h + v_t along ``dim``: each t's composition
    of the maps up to t, exact for up to 2^rounds entries along ``dim``."""
    n = c.shape[dim]
    for j in range(rounds):
        s = 2**j
        spec = [0, 0] * (c.dim() - dim - 1) + [s, 0]  # s entries of the identity map first
        v = v + c * F.pad(v, spec).narrow(dim, 0, n)
        c = c * F.pad(c, spec, value=1.0).narrow(dim, 0, n)
    return c, v


def _log_space_scan(k: Tensor, a: Tensor, h0: Tensor | None) -> Tensor:
    """h (T, B, H) of `min_gru_scan` by the paper's log-space scan.

    With log c_t = log(1 − z_t) = −softplus(k_t), log v_t = log z_t + log h̃_t
    = −softplus(−k_t) + log g(a_t) and A_t = Σ_{s ≤ t} log c_s,

        h_t = exp(A_t) ⊙ h_0 + exp(A_t + log Σ_{s ≤ t} exp(log v_s − A_s))

    (a cumsum and a logcumsumexp over time). h_0 enters linearly rather than as the log-space
    sum's first term (the paper's code), so it may have any sign, and zeros need no log 0.

    The time axis is scanned in chunks of `SCAN_CHUNK` steps, each starting from the last
    state of the one before. In float32 the sum A_t + log Σ(…) loses about ε·|A_t| of
    relative precision, and |A_t| grows with the length scanned: over 4096 steps one scan was
    off from the float64 loop by 4e-5 (median, relative) and up to 8e-4, chunks of 32 steps
    by 4e-7 and up to 1.4e-5. Chunks cost little: a few more operations per 32 steps.
    """
    log_c = -F.softplus(k)  # log(1 − z_t), (T, B, H)
    log_v = -F.softplus(-k) + log_candidate(a)  # log(z_t ⊙ h̃_t), (T, B, H)
    outputs = []
    h = h0
    for log_c_c, log_v_c in zip(log_c.split(SCAN_CHUNK), log_v.split(SCAN_CHUNK), strict=True):
        A = torch.cumsum(log_c_c, dim=0)  # (C, B, H)
        h_c = torch.exp(A + torch.logcumsumexp(log_v_c - A, dim=0))  # (C, B, H)
        if h is not None:
            h_c = h_c + torch.exp(A) * h  # the state carried in, decayed by Π c_s
        outputs.append(h_c)
        h = h_c[-1]  # (B, H)
    return outputs[0] if len(outputs) == 1 else torch.cat(outputs)  # (T, B, H)


def reverse_linear_scan(c_next: Tensor, u: Tensor) -> Tensor:
    """g (T, …) with g_t = u_t + c_next_t ⊙ g_{t+1} and g_T = 0, from c_next, u (T, …).

    A parallel scan in linear space: within chunks of `SCAN_CHUNK` steps, log2(C) rounds in
    which each g_t takes in the partial sum 2^j steps ahead of it and the product of the
    coefficients that lead there (Hillis and Steele 1986); the chunks then pass their carries
    back by the same scan over one entry per chunk, recursively. Only products and sums of
    the c's and u's, no division, exp or log: a product of coefficients in (0, 1) that
    underflows to 0 stands for a contribution below the smallest float, and each g_t comes
    out with a rounding error of a few ε times Σ_s |Π c| |u_s| — that of the sequential loop
    (over 4096 steps, float32 against the float64 loop: at most 9e-7 absolute where |u| ~ 1).
    """
    T, rest = u.shape[0], u.shape[1:]
    C = min(SCAN_CHUNK, T)
    n = -(-T // C)  # chunks
    pad = n * C - T
    if pad:  # zeros after the end: nothing to add and no link to it
        c_next = torch.cat([c_next, c_next.new_zeros(pad, *rest)])
        u = torch.cat([u, u.new_zeros(pad, *rest)])
    c = c_next.reshape(n, C, *rest)  # (n, C, …): Π c_next from step i to the chunk's end
    g = u.reshape(n, C, *rest)  # (n, C, …): Σ within the chunk from step i on
    step = 1
    while step < C:
        g = torch.cat([torch.addcmul(g[:, :-step], c[:, :-step], g[:, step:]), g[:, -step:]], 1)
        c = torch.cat([c[:, :-step] * c[:, step:], c[:, -step:]], 1)
        step *= 2
    if n > 1:
        # The full g at the start of each chunk: G_j = g[j, 0] + c[j, 0] G_{j+1}, this scan
        # again over n entries; every step of chunk j then adds c[j, i] G_{j+1}.
        G = reverse_linear_scan(c[:, 0], g[:, 0])  # (n, …)
        g = torch.cat([torch.addcmul(g[:-1], c[:-1], G[1:].unsqueeze(1)), g[-1:]])
    return g.reshape(n * C, *rest)[:T]


class _MinGRUScan(torch.autograd.Function):
    """`min_gru_scan` with its backward derived by hand.

    Autograd through the log-space scan differentiates exp(A_t + log Σ …) into two large terms
    (through A and through the sum) that cancel to a small gradient of k, which in float32
    kept too little of it (1.7% of the elements of a 4096-step test off by over 10× the float32
    tolerance). The backward instead follows h_t = c_t ⊙ h_{t-1} + z_t ⊙ h̃_t directly. With
    g_t = ∂L/∂h_t in total and ĝ_t the gradient that reaches h_t from outside (the output):

        g_T = ĝ_T,  g_{t-1} = ĝ_{t-1} + c_t ⊙ g_t                       (`reverse_linear_scan`)
        ∂L/∂k_t = g_t ⊙ z_t (1 − z_t) ⊙ (h̃_t − h_{t-1})                 (dz/dk = z (1 − z))
        ∂L/∂a_t = g_t ⊙ z_t ⊙ g'(a_t),  g'(a) = 1 for a ≥ 0, σ(a) σ(−a) for a < 0
        ∂L/∂h_0 = c_1 ⊙ g_1

    It keeps k, a, h_0 and the output h for backward. Not differentiable twice.
    """

    @staticmethod
    def forward(ctx, k: Tensor, a: Tensor, h0: Tensor | None) -> Tensor:
        h = _log_space_scan(k, a, h0)  # (T, B, H)
        ctx.save_for_backward(k, a, h0, h)
        return h

    @staticmethod
    @once_differentiable
    def backward(ctx, d_h: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        k, a, h0, h = ctx.saved_tensors
        z = torch.sigmoid(k)  # (T, B, H)
        c = torch.sigmoid(-k)  # 1 − z without the cancellation where z → 1, (T, B, H)
        # g_t = ĝ_t + c_{t+1} ⊙ g_{t+1}; the last step has no successor.
        g = reverse_linear_scan(torch.cat([c[1:], torch.zeros_like(c[:1])]), d_h)  # (T, B, H)
        h_prev = torch.cat([torch.zeros_like(h[:1]) if h0 is None else h0.unsqueeze(0), h[:-1]])
        g_z = g * z  # (T, B, H)
        d_k = g_z * c * (candidate(a) - h_prev)  # (T, B, H)
        s = torch.sigmoid(a)  # (T, B, H)
        d_a = torch.where(a >= 0, g_z, g_z * s * (1 - s))  # 1 − σ(a) > 1/2 for a < 0: exact enough
        d_h0 = None if h0 is None or not ctx.needs_input_grad[2] else c[0] * g[0]  # (B, H)
        return d_k, d_a, d_h0


def min_gru_step(k_t: Tensor, a_t: Tensor, h: Tensor) -> Tensor:
    """One minGRU step from the pre-activations k_t, a_t (B, H) and h_{t-1} (B, H)."""
    z = torch.sigmoid(k_t)  # (B, H)
    h_tilde = candidate(a_t)  # (B, H)
    return h + z * (h_tilde - h)  # (1 − z) ⊙ h + z ⊙ h̃, rearranged: one product fewer


def min_gru_sequential(k: Tensor, a: Tensor, h0: Tensor | None) -> Tensor:
    """What `min_gru_scan` computes, one step after another: (T, B, H)."""
    h = torch.zeros_like(k[0]) if h0 is None else h0
    outputs = []
    for t in range(k.shape[0]):
        h = min_gru_step(k[t], a[t], h)
        outputs.append(h)
    return torch.stack(outputs)  # (T, B, H)
