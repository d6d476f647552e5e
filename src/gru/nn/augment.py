"""`Augment`: random changes of a batch of sequences while a model trains, as dropout is.

Shapes: B batch, T time steps, I input features.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["Augment"]


class Augment(nn.Module):
    """In training mode, x (B, T, I) with every value plus Gaussian noise of standard
    deviation ``jitter``, every feature of a sequence times a gain 1 + N(0, ``scaling``²);
    in eval mode (or with both 0) x itself. The draws come from torch's random state, so a
    seeded run repeats them. On standardized inputs both are fractions of a feature's spread.
    """

    def __init__(self, jitter: float = 0.0, scaling: float = 0.0) -> None:
        super().__init__()
        for name, value in (("jitter", jitter), ("scaling", scaling)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ValueError(f"Augment: {name} must be a number ≥ 0, got {value!r}")
        self.jitter, self.scaling = float(jitter), float(scaling)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return x
        if self.scaling:
            x = x * (1.0 + self.scaling * torch.randn_like(x[:, :1]))  # (B, 1, I): per feature
        if self.jitter:
            x = x + self.jitter * torch.randn_like(x)
        return x

    def extra_repr(self) -> str:
        return f"jitter={self.jitter}, scaling={self.scaling}"
