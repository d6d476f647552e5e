"""Synthetic sequence tasks with a known answer, for demos, tests and comparisons."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["adding_problem"]


def adding_problem(n: int, seq_len: int, *, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """The adding problem (Hochreiter & Schmidhuber 1997, in the form of Le et al. 2015).

    Each of the ``n`` sequences has ``seq_len`` steps of two features: a value drawn from
    U(0, 1) and a marker that is 1 at exactly two steps, one in each half of the sequence, and
    0 elsewhere. The target is the sum of the two marked values. Predicting the mean, 1, gives
    an MSE of Var(U + U') = 2/12 ≈ 0.167, the baseline a model must beat by remembering.

    Returns ``x`` (n, seq_len, 2) float32 and ``y`` (n,) float32.
    """
    if seq_len < 2:
        raise ValueError(f"adding_problem: seq_len must be at least 2, got {seq_len}")
    values = torch.rand(n, seq_len, generator=generator)  # (n, T)
    half = seq_len // 2
    first = torch.randint(0, half, (n,), generator=generator)
    second = torch.randint(half, seq_len, (n,), generator=generator)
    markers = torch.zeros(n, seq_len)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = torch.stack([values, markers], dim=-1)  # (n, T, 2)
    y = (values * markers).sum(dim=1)  # (n,)
    return x, y
