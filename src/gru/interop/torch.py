"""`torch.nn.GRU` / `torch.nn.GRUCell` ↔ `gru.GRU` / `gru.GRUCell`, as functions.

The conversions themselves are the layers' own ``from_torch`` / ``to_torch`` (a drop-in
replacement converts both ways; see `gru.nn.convert`); these functions check what they are
given and call them.
"""

from __future__ import annotations

from torch import nn

from gru.nn import GRU, GRUCell

__all__ = ["cell_from_torch", "cell_to_torch", "from_torch", "to_torch"]


def from_torch(module: nn.GRU) -> GRU:
    """A `gru.GRU` with the configuration and a copy of the weights of a `torch.nn.GRU`."""
    return GRU.from_torch(module)


def to_torch(module: GRU) -> nn.GRU:
    """A `torch.nn.GRU` with the configuration and a copy of the weights of a `gru.GRU`."""
    if not isinstance(module, GRU):
        raise TypeError(f"to_torch: module must be a gru.GRU, got {type(module).__name__}")
    return module.to_torch()


def cell_from_torch(module: nn.GRUCell) -> GRUCell:
    """A `gru.GRUCell` with the configuration and a copy of the weights of a torch one."""
    return GRUCell.from_torch(module)


def cell_to_torch(module: GRUCell) -> nn.GRUCell:
    """A `torch.nn.GRUCell` with the configuration and a copy of the weights of a gru one."""
    if not isinstance(module, GRUCell):
        raise TypeError(f"cell_to_torch: module must be a gru.GRUCell, got {type(module).__name__}")
    return module.to_torch()
