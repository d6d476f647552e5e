"""Small models built from the recurrent layers.

Shapes: B batch, T time steps, I input features, E embedding size, H hidden units,
D directions (1 or 2), L layers.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from gru.nn import GRU

__all__ = ["SequenceRegressor", "TextClassifier"]

FEATURES = ("last", "pool")


class SequenceRegressor(nn.Module):
    """A GRU reads a sequence; a linear layer maps its last state to ``output_size`` values.

    Input (B, T, I), output (B, output_size), or (B,) when output_size is 1.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int = 1,
        num_layers: int = 1,
        *,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        self.rnn = GRU(input_size, hidden_size, num_layers, batch_first=True, backend=backend)
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x: Tensor) -> Tensor:
        _, h_n = self.rnn(x)  # h_n (L, B, H)
        y = self.head(h_n[-1])  # (B, output_size)
        return y.squeeze(-1) if y.shape[-1] == 1 else y


class TextClassifier(nn.Module):
    """Token ids -> Embedding -> GRU -> features -> Linear: the logit of the positive class.

    With the defaults this is Keras's ``Embedding(num_words, E) -> GRU(H) -> Dense(1)``; the
    Dense layer's sigmoid is left to the loss (``binary_cross_entropy_with_logits``, the same
    model computed stably) and to `probabilities`.

    ``features`` is what the head sees: "last", the final state of the last layer (both
    directions' concatenated), D·H values; or "pool", that state beside the maximum and the
    mean over time of the last layer's outputs, 3·D·H values. ``embedding_dropout`` drops
    whole embedding channels of a sequence (spatial dropout); ``dropout`` acts on the
    features, and between layers when L > 1. ``torch_layer=True`` builds the same model on
    `torch.nn.GRU` (only ``reset_after=True``), with the same parameter names.

    Input ``x`` (B, T) int64 ids, 0 = padding, and optionally ``lengths`` (B,) ≥ 1: with
    lengths the ids come first and padding after ('post'), the batch is cut to its longest
    sequence and the GRU stops at each length, as packing does; without, every step is read
    (Keras with 'pre' padding). Output (B,) logits.
    """

    def __init__(
        self,
        num_words: int,
        embedding_dim: int,
        hidden_size: int,
        *,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        embedding_dropout: float = 0.0,
        features: str = "last",
        reset_after: bool = True,
        torch_layer: bool = False,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        if features not in FEATURES:
            raise ValueError(
                f"TextClassifier: features must be one of {FEATURES}, got {features!r}"
            )
        if torch_layer and not reset_after:
            raise ValueError(
                "TextClassifier: torch_layer=True computes only reset_after=True (torch.nn.GRU's "
                "convention), got reset_after=False"
            )
        self.features = features
        self.torch_layer = torch_layer
        self.embedding = nn.Embedding(num_words, embedding_dim)
        self.embedding_dropout = nn.Dropout1d(embedding_dropout)
        layer_dropout = dropout if num_layers > 1 else 0.0
        if torch_layer:
            self.rnn = nn.GRU(
                embedding_dim,
                hidden_size,
                num_layers,
                batch_first=True,
                dropout=layer_dropout,
                bidirectional=bidirectional,
            )
        else:
            self.rnn = GRU(
                embedding_dim,
                hidden_size,
                num_layers,
                batch_first=True,
                dropout=layer_dropout,
                bidirectional=bidirectional,
                reset_after=reset_after,
                backend=backend,
            )
        self.directions = 2 if bidirectional else 1
        width = self.directions * hidden_size * (3 if features == "pool" else 1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, 1)

    @torch.no_grad()
    def keras_init_(self) -> TextClassifier:
        """Initialize as Keras does: embedding U(−0.05, 0.05); GRU input weights Glorot
        uniform, recurrent weights orthogonal, biases zero; Dense Glorot uniform, bias zero."""
        nn.init.uniform_(self.embedding.weight, -0.05, 0.05)
        for name, weight in self.rnn.named_parameters():
            if name.startswith("weight_ih"):
                nn.init.xavier_uniform_(weight)  # (3H, I): limit √(6 / (I + 3H)), as Keras's
            elif name.startswith("weight_hh"):
                nn.init.orthogonal_(weight)  # (3H, H): orthonormal columns = Keras's rows
            else:
                nn.init.zeros_(weight)
        nn.init.xavier_uniform_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        return self

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        B = x.shape[0]
        if lengths is not None:
            x = x[:, : int(lengths.max())]  # (B, T) with T the longest length
        e = self.embedding(x)  # (B, T, E)
        e = self.embedding_dropout(e.transpose(1, 2)).transpose(1, 2)  # drops whole channels
        if lengths is None:
            out, h_n = self.rnn(e)  # (B, T, D·H), (L·D, B, H)
        elif self.torch_layer:
            packed = pack_padded_sequence(e, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, h_n = self.rnn(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        else:
            out, h_n = self.rnn(e, lengths=lengths)
        last = h_n[-self.directions :].transpose(0, 1).reshape(B, -1)  # (B, D·H)
        if self.features == "pool":
            if lengths is None:
                top, mean = out.amax(dim=1), out.mean(dim=1)  # (B, D·H) each
            else:
                steps = torch.arange(x.shape[1], device=x.device)
                valid = (steps.unsqueeze(0) < lengths.to(x.device).unsqueeze(1)).unsqueeze(-1)
                top = out.masked_fill(~valid, float("-inf")).amax(dim=1)  # (B, D·H)
                mean = out.sum(dim=1) / lengths.to(out).unsqueeze(1)  # padding outputs are 0
            last = torch.cat([last, top, mean], dim=-1)  # (B, 3·D·H)
        return self.head(self.dropout(last)).squeeze(-1)  # (B,)

    def probabilities(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """P(positive) (B,) = σ(logit)."""
        return torch.sigmoid(self.forward(x, lengths))
