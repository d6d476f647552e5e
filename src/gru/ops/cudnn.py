"""Whole stacks through torch's native GRU: cuDNN on CUDA, for the convention it computes."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

__all__ = ["cudnn_stack"]


def cudnn_stack(
    x: Tensor, hx: Tensor | None, weights: list[Tensor], *, num_layers: int, bias: bool,
    dropout: float, training: bool, bidirectional: bool, lengths: Tensor | None,
) -> tuple[Tensor, Tensor]:  # fmt: skip
    """A whole reset-after stack through torch's native GRU (cuDNN on CUDA).

    x (T, B, I) and hx (L·D, B, H) or None; ``weights`` the flat list in torch.nn.GRU's order.
    Returns (output (T, B, D·H), h_n (L·D, B, H)).
    """
    if hx is None:
        D = 2 if bidirectional else 1
        hx = x.new_zeros(num_layers * D, x.shape[1], weights[1].shape[1])
    if lengths is None:
        output, h_n = torch._VF.gru(
            x, hx, weights, bias, num_layers, dropout, training, bidirectional, False
        )
        return output, h_n
    packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
    hx = hx.index_select(1, packed.sorted_indices)
    data, h_n = torch._VF.gru(
        packed.data, packed.batch_sizes, hx, weights, bias, num_layers, dropout, training,
        bidirectional,
    )  # fmt: skip
    output, _ = pad_packed_sequence(
        PackedSequence(data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices),
        total_length=x.shape[0],
    )
    return output, h_n.index_select(1, packed.unsorted_indices)
