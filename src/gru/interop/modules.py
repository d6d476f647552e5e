"""The small PyTorch modules that a converted Keras or ONNX model is built from.

A Keras model becomes a `KerasModel`, a `torch.nn.Sequential` of `torch.nn.Embedding`,
`Recurrent`, `torch.nn.Linear` (with its activation) and `torch.nn.Dropout` steps; a Keras GRU
with ``go_backwards=True`` becomes a `GoBackwards` around a `gru.GRU`. `gru.interop.keras`
builds them and `gru.interop.onnx` exports them; nothing here knows either format.

Shapes: B batch, T time, I input features, H hidden units, L layers, D directions.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gru.nn import GRU

__all__ = ["GoBackwards", "KerasModel", "Recurrent", "unwrap"]


class GoBackwards(nn.Module):
    """A Keras GRU with ``go_backwards=True``: a `gru.GRU` run over the input reversed in time.

    ``forward(input, hx=None)`` takes what the wrapped layer takes and returns
    ``(output, h_n)``, with output in the order Keras returns it: output[:, t] is the state
    after reading input[:, T-1-t] (batch first; time is the first axis without batch_first or
    for unbatched input). h_n is the state after reading input[:, 0].
    """

    def __init__(self, gru: GRU) -> None:
        super().__init__()
        if not isinstance(gru, GRU):
            raise TypeError(f"GoBackwards: gru must be a gru.GRU, got {type(gru).__name__}")
        self.gru = gru

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        time = 1 if self.gru.batch_first and input.dim() == 3 else 0
        return self.gru(input.flip(time), hx)


def unwrap(layer: GRU | GoBackwards) -> GRU:
    """The `gru.GRU` that computes ``layer``: the layer itself, or the one a `GoBackwards`
    runs backwards."""
    return layer.gru if isinstance(layer, GoBackwards) else layer


class Recurrent(nn.Module):
    """A Keras GRU or Bidirectional(GRU) layer inside a `KerasModel`: batch-first input
    (B, T, I) to (B, T, D·H) with ``return_sequences``, else the last output (B, D·H)."""

    def __init__(self, layer: GRU | GoBackwards, return_sequences: bool) -> None:
        super().__init__()
        self.layer = layer
        self.return_sequences = bool(return_sequences)

    @property
    def gru(self) -> GRU:
        """The `gru.GRU` inside (see `unwrap`)."""
        return unwrap(self.layer)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """x (B, T, I) -> (B, T, D·H) or (B, D·H); ``lengths`` (B,) as for `gru.GRU`."""
        if lengths is None:
            output, h_n = self.layer(x)  # (B, T, D·H), (L·D, B, H)
        else:
            output, h_n = self.layer(x, lengths=lengths)
        if self.return_sequences:
            return output
        D = 2 if self.gru.bidirectional else 1
        return h_n[-D:].transpose(0, 1).reshape(x.shape[0], -1)  # (B, D·H)


class KerasModel(nn.Sequential):
    """A Keras model made of Embedding, GRU, Bidirectional(GRU), Dense and Dropout layers, as
    PyTorch modules in the same order: `torch.nn.Embedding`, `Recurrent`, `torch.nn.Linear`
    followed by its activation, `torch.nn.Dropout`. Built by `gru.interop.keras.load_model`;
    it computes what the Keras model computes on the same (batch-first) input.

    ``mask_zero=True`` is a first Embedding with Keras' ``mask_zero=True``: token id 0 is
    padding, wherever it stands, and the GRU layers skip it (a skipped step leaves the state as
    it was) until the first one without return_sequences, which consumes the mask. That equals
    moving each row's real tokens to the front, in order, and running the GRU layers with
    their count as ``lengths``, which is how it is computed here (every step in between works
    per time step, so it commutes with the move). A row of padding only gives the zero state.
    """

    def __init__(self, *steps: nn.Module, mask_zero: bool = False) -> None:
        super().__init__(*steps)
        self.mask_zero = bool(mask_zero)

    def describe(self) -> str:
        """The steps in one line, as ``Embedding(100, 8) -> gru.GRU(8, 16, batch_first=True)
        -> Linear(in_features=16, out_features=1, bias=True) -> Sigmoid()``."""
        return " -> ".join(_describe(step) for step in self)

    def besides_gru(self) -> list[str]:
        """The steps that are not GRU layers, described as in `describe`."""
        return [_describe(step) for step in self if not isinstance(step, Recurrent)]

    def forward(self, input: Tensor) -> Tensor:
        if not self.mask_zero:
            return super().forward(input)
        keep = input != 0  # (B, T)
        lengths = keep.sum(1)  # (B,)
        order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices  # (B, T)
        x = input.gather(1, order)  # each row's real tokens first, in their order
        masked = True
        for step in self:
            if masked and isinstance(step, Recurrent):
                x = step(x, lengths=lengths.clamp(min=1))
                if not step.return_sequences:  # this layer consumes the mask
                    x = x * (lengths > 0).unsqueeze(1).to(x.dtype)  # (B, D·H)
                    masked = False
            else:
                x = step(x)
        return x


def _describe(step: nn.Module) -> str:
    if isinstance(step, Recurrent):
        inner = f"gru.GRU({step.gru.extra_repr()})"
        inner = f"GoBackwards({inner})" if isinstance(step.layer, GoBackwards) else inner
        return inner if step.return_sequences else f"{inner}[last]"
    return f"{type(step).__name__}({step.extra_repr()})"
