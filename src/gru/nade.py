"""NADE: K binary variables modelled jointly given a context vector, with their exact NLL.

The neural autoregressive distribution estimator (Larochelle and Murray 2011) as the output
layer of RNN-NADE (Boulanger-Lewandowski, Bengio and Vincent 2012): a recurrent layer's
state at a step is the context c, and the K notes v of that step are drawn one after another in
a fixed order (index 0 first: for a piano roll, low to high), each given the context and the
notes before it:

    b_v = A c + a                        visible biases (K,), one per note
    b_h = B c + b                        hidden biases (U,)
    h_d = σ(b_h + W[:, <d] v_<d)         the hidden units that see the notes before note d (U,)
    p(v_d = 1 | v_<d, c) = σ(b_v,d + V_d · h_d)
    −log p(v | c) = Σ_d BCE(v_d, p_d)    exact: the chain rule, no approximation

A (K, C), a (K,): ``visible``; B (U, C), b (U,): ``hidden`` (both `torch.nn.Linear`); W (U, K),
V (K, U): the NADE's own weights, shared by every context. With W = 0 and V = 0 the K notes
are independent Bernoullis at σ(b_v), the output of an independent-note model.

Teacher forcing (`NADE.forward`, training and scoring): the known notes give every h_d at
once, W[:, <d] v_<d being the cumulative sum over notes of v_j W[:, j] shifted by one, so no
loop over the K notes runs; the logits it returns are those of each p(v_d = 1 | v_<d, c), and
the summed binary cross-entropy of those logits against v is the exact NLL (`NADE.nll`).
Sampling (`NADE.sample`) draws the notes in order, one at a time.

Shapes: N rows (any leading dimensions), C context size, K notes, U hidden units of the NADE.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["NADE"]


class NADE(nn.Module):
    """p(v | c) of ``keys`` binary notes v given a context c of ``context_size``, through
    ``hidden_size`` hidden units (the module docstring's equations)."""

    def __init__(self, context_size: int, keys: int, hidden_size: int) -> None:
        super().__init__()
        for name, value in (("context_size", context_size), ("keys", keys),
                            ("hidden_size", hidden_size)):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"NADE: {name} must be a positive int, got {value!r}")
        self.keys, self.hidden_size = keys, hidden_size
        self.visible = nn.Linear(context_size, keys)  # c -> b_v
        self.hidden = nn.Linear(context_size, hidden_size)  # c -> b_h
        self.W = nn.Parameter(torch.empty(hidden_size, keys))  # (U, K)
        self.V = nn.Parameter(torch.empty(keys, hidden_size))  # (K, U)
        # torch.nn.Linear's initialization: uniform within ±1/√(fan in)
        nn.init.uniform_(self.W, -1 / math.sqrt(keys), 1 / math.sqrt(keys))
        nn.init.uniform_(self.V, -1 / math.sqrt(hidden_size), 1 / math.sqrt(hidden_size))

    def forward(self, context: Tensor, notes: Tensor) -> Tensor:
        """The logit of each p(v_d = 1 | v_<d, c) (..., K), ``notes`` (..., K) 0/1 the known
        notes v (teacher forcing), ``context`` (..., C)."""
        v = notes.to(context.dtype)
        b_v = self.visible(context)  # (..., K)
        b_h = self.hidden(context)  # (..., U)
        seen = v.unsqueeze(-1) * self.W.T  # v_j W[:, j]  (..., K, U)
        # W[:, <d] v_<d: the cumulative sum over notes, shifted one note later (0 for d = 0)
        before = torch.cumsum(seen, dim=-2)
        before = torch.cat([torch.zeros_like(before[..., :1, :]), before[..., :-1, :]], -2)
        h = torch.sigmoid(b_h.unsqueeze(-2) + before)  # h_d  (..., K, U)
        return b_v + (h * self.V).sum(-1)  # b_v,d + V_d · h_d  (..., K)

    def nll(self, context: Tensor, notes: Tensor) -> Tensor:
        """−log p(notes | context) (...,) in nats: the K binary cross-entropies summed."""
        logits = self(context, notes)
        return nn.functional.binary_cross_entropy_with_logits(
            logits, notes.to(logits.dtype), reduction="none"
        ).sum(-1)

    @torch.no_grad()
    def sample(self, context: Tensor, *, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> Tensor:  # fmt: skip
        """Notes (N, K) 0/1 as float, drawn note after note given ``context`` (N, C), each at
        the probability of its logit divided by ``temperature``."""
        b_v = self.visible(context)  # (N, K)
        before = self.hidden(context)  # b_h + W[:, <d] v_<d, for d = 0  (N, U)
        notes = torch.zeros_like(b_v)
        for d in range(self.keys):
            logit = b_v[:, d] + torch.sigmoid(before) @ self.V[d]  # (N,)
            p = torch.sigmoid(logit.double() / temperature)
            notes[:, d] = torch.bernoulli(p, generator=generator).to(notes.dtype)
            before = before + notes[:, d, None] * self.W[:, d]  # (N, U)
        return notes
