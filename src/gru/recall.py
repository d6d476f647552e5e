"""Causal attention of a recurrent layer's outputs over their own past: each step may look back
at every earlier step of its sequence, not only through the state.

For outputs o_1 … o_T (H each) of one sequence, step t reads

    q_t = W_q o_t + b_q,  k_s = W_k o_s + b_k,  v_s = W_v o_s + b_v      (D, D, H)
    a_ts = softmax_{s ≤ t}(q_t · k_s / √D)
    y_t = o_t + W_o Σ_{s ≤ t} a_ts v_s + b_o

W_o and b_o start at zero, so an untrained `Recall` passes the outputs through unchanged and
the layer under it trains as it would alone. A tune that repeats a phrase gives the step where
the repeat begins a direct look at how the phrase went on, which a state of a few hundred units
keeps only approximately.

Shapes: B sequences, T steps, H output size of the layer, D size of the queries and keys.
Padded steps after a sequence's end change nothing before them (each step looks back only).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["Recall"]


class Recall(nn.Module):
    """y = o + W_o attention(o) over each step's past (see the module docstring); ``size`` is
    H, ``keys`` is D."""

    def __init__(self, size: int, keys: int) -> None:
        super().__init__()
        for name, value in (("size", size), ("keys", keys)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Recall: {name} must be a positive int, got {value!r}")
        self.query = nn.Linear(size, keys)
        self.key = nn.Linear(size, keys)
        self.value = nn.Linear(size, size)
        self.out = nn.Linear(size, size)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.scale = 1.0 / math.sqrt(keys)

    def forward(self, o: Tensor, past: Tensor | None = None) -> Tensor:
        """y (B, T, H) for outputs ``o`` (B, T, H); with ``past`` (B, P, H), the outputs of the
        P steps before them, which every step of ``o`` also looks back at (drawing step by
        step: ``past`` is what came before the new steps)."""
        every = o if past is None else torch.cat([past, o], 1)  # (B, P + T, H)
        P, T = every.shape[1] - o.shape[1], o.shape[1]
        scores = self.query(o) @ self.key(every).transpose(1, 2) * self.scale  # (B, T, P + T)
        later = torch.ones(T, P + T, dtype=torch.bool, device=o.device).triu(P + 1)
        weights = torch.softmax(scores.masked_fill(later, float("-inf")), -1)
        return o + self.out(weights @ self.value(every))
