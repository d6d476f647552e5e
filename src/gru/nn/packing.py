"""Sequences of different lengths: ``lengths=`` and PackedSequence, checked and turned into what
the ops take, a padded (T, B, I) tensor and each sequence's length (B,).

Shapes: T time steps, B batch, I input features, N the packed rows (the sum of the lengths).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence

__all__ = ["check_lengths", "pack_like", "packed_lengths", "unpack"]


def check_lengths(lengths, T: int, B: int) -> Tensor:
    """``lengths`` as (B,) int64 on the CPU, each in [1, T]; TypeError/ValueError otherwise."""
    if not isinstance(lengths, Tensor):
        lengths = torch.as_tensor(lengths)
    if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
        raise TypeError(f"GRU.forward: lengths must hold integers, got dtype {lengths.dtype}")
    if tuple(lengths.shape) != (B,):
        raise ValueError(
            f"GRU.forward: lengths must have shape (batch,) = ({B},), got {tuple(lengths.shape)}"
        )
    lengths = lengths.to(device="cpu", dtype=torch.int64)
    if B and (int(lengths.min()) < 1 or int(lengths.max()) > T):
        raise ValueError(
            f"GRU.forward: every length must be in [1, T={T}], "
            f"got min {int(lengths.min())} and max {int(lengths.max())}"
        )
    return lengths


def packed_lengths(batch_sizes: Tensor, n_rows: int) -> Tensor:
    """Each sequence's length (B,), from a PackedSequence's batch_sizes, checked for consistency."""
    if batch_sizes.dim() != 1 or len(batch_sizes) == 0:
        raise ValueError(
            "GRU.forward: a PackedSequence's batch_sizes must be a non-empty 1-D tensor, "
            f"got shape {tuple(batch_sizes.shape)}"
        )
    if bool((batch_sizes < 1).any()) or bool((batch_sizes[1:] > batch_sizes[:-1]).any()):
        raise ValueError(
            "GRU.forward: a PackedSequence's batch_sizes must be positive and non-increasing "
            f"(sequences sorted longest first), got {batch_sizes.tolist()}"
        )
    if int(batch_sizes.sum()) != n_rows:
        raise ValueError(
            f"GRU.forward: a PackedSequence's batch_sizes sum to {int(batch_sizes.sum())} "
            f"but its data has {n_rows} rows; build it with pack_padded_sequence"
        )
    B = int(batch_sizes[0])
    return (torch.arange(B).unsqueeze(0) < batch_sizes.unsqueeze(1)).sum(0)  # (B,)


def _rows(batch_sizes: Tensor, device: torch.device) -> Tensor:
    """Where each packed row sits in a flattened (T·B) padded tensor: row j of the packed data
    (time-major, the longest sequences first) is the j-th True of the (T, B) mask."""
    B = int(batch_sizes[0])
    mask = torch.arange(B).unsqueeze(0) < batch_sizes.unsqueeze(1)  # (T, B)
    return mask.flatten().nonzero().squeeze(1).to(device)  # (N,)


def unpack(data: Tensor, batch_sizes: Tensor) -> Tensor:
    """The packed rows (N, I) scattered into a zero-padded (T, B, I) tensor."""
    T, B = len(batch_sizes), int(batch_sizes[0])
    x = data.new_zeros(T * B, data.shape[1]).index_copy(0, _rows(batch_sizes, data.device), data)
    return x.view(T, B, -1)


def pack_like(output: Tensor, packed: PackedSequence) -> PackedSequence:
    """A padded (T, B, F) output gathered back into the rows of ``packed``."""
    T, B = output.shape[:2]
    rows = _rows(packed.batch_sizes, output.device)
    data = output.reshape(T * B, -1).index_select(0, rows)  # (N, F)
    return PackedSequence(data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices)
