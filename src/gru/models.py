"""Small models built from the recurrent layers."""

from __future__ import annotations

from torch import Tensor, nn

from gru.nn import GRU

__all__ = ["SequenceRegressor"]


class SequenceRegressor(nn.Module):
    """A GRU reads a sequence; a linear layer maps its last state to ``output_size`` values.

    Input (B, T, I), output (B, output_size), or (B,) when output_size is 1.
    """

    def __init__(
        self, input_size: int, hidden_size: int, output_size: int = 1, num_layers: int = 1
    ) -> None:
        super().__init__()
        self.rnn = GRU(input_size, hidden_size, num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x: Tensor) -> Tensor:
        _, h_n = self.rnn(x)  # h_n (L, B, H)
        y = self.head(h_n[-1])  # (B, output_size)
        return y.squeeze(-1) if y.shape[-1] == 1 else y
