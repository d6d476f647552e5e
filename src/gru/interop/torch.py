"""`torch.nn.GRU` / `torch.nn.GRUCell` ↔ `gru.GRU` / `gru.GRUCell`.

Both sides use the same parameter names, shapes and gate packing (rows ``[r | z | n]``), so a
conversion is a copy of the state dict. Only the reset-after convention exists in torch.
"""

from __future__ import annotations

import torch
from torch import nn

from gru.nn import GRU, GRUCell

__all__ = ["cell_from_torch", "cell_to_torch", "from_torch", "to_torch"]

_NO_RESET_BEFORE = (
    "{owner}: torch.nn.{cls} computes only the reset-after convention, "
    "n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)); this layer has reset_after=False, "
    "n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn), which no torch.nn.{cls} can compute. "
    "Keep using gru.{cls}, or export it to ONNX (linear_before_reset=0) or Keras "
    "(reset_after=False), which have this convention."
)


def _factory(module: nn.Module) -> dict:
    p = next(module.parameters())
    return {"device": p.device, "dtype": p.dtype}


def _copy_weights(source: nn.Module, target: nn.Module) -> nn.Module:
    """Load a copy of source's parameters into target, which was built on the meta device."""
    state = {k: v.detach().clone() for k, v in source.state_dict().items()}
    target.load_state_dict(state, assign=True)
    for p_src, p_dst in zip(source.parameters(), target.parameters(), strict=True):
        p_dst.requires_grad_(p_src.requires_grad)
    return target.train(source.training)


def from_torch(module: nn.GRU) -> GRU:
    """A `gru.GRU` with the configuration and a copy of the weights of a `torch.nn.GRU`."""
    if not isinstance(module, nn.GRU):
        raise TypeError(f"from_torch: module must be a torch.nn.GRU, got {type(module).__name__}")
    with torch.device("meta"):  # no memory and no random numbers for weights about to be replaced
        target = GRU(
            module.input_size,
            module.hidden_size,
            module.num_layers,
            module.bias,
            module.batch_first,
            float(module.dropout),
            module.bidirectional,
            dtype=_factory(module)["dtype"],
        )
    return _copy_weights(module, target)


def to_torch(module: GRU) -> nn.GRU:
    """A `torch.nn.GRU` with the configuration and a copy of the weights of a `gru.GRU`."""
    if not isinstance(module, GRU):
        raise TypeError(f"to_torch: module must be a gru.GRU, got {type(module).__name__}")
    if not module.reset_after:
        raise ValueError(_NO_RESET_BEFORE.format(owner="GRU.to_torch", cls="GRU"))
    with torch.device("meta"):
        target = nn.GRU(
            module.input_size,
            module.hidden_size,
            module.num_layers,
            module.bias,
            module.batch_first,
            module.dropout,
            module.bidirectional,
            dtype=_factory(module)["dtype"],
        )
    return _copy_weights(module, target)


def cell_from_torch(module: nn.GRUCell) -> GRUCell:
    """A `gru.GRUCell` with the configuration and a copy of the weights of a torch one."""
    if not isinstance(module, nn.GRUCell):
        raise TypeError(
            f"cell_from_torch: module must be a torch.nn.GRUCell, got {type(module).__name__}"
        )
    with torch.device("meta"):
        target = GRUCell(
            module.input_size, module.hidden_size, module.bias, dtype=_factory(module)["dtype"]
        )
    return _copy_weights(module, target)


def cell_to_torch(module: GRUCell) -> nn.GRUCell:
    """A `torch.nn.GRUCell` with the configuration and a copy of the weights of a gru one."""
    if not isinstance(module, GRUCell):
        raise TypeError(f"cell_to_torch: module must be a gru.GRUCell, got {type(module).__name__}")
    if not module.reset_after:
        raise ValueError(_NO_RESET_BEFORE.format(owner="GRUCell.to_torch", cls="GRUCell"))
    with torch.device("meta"):
        target = nn.GRUCell(
            module.input_size, module.hidden_size, module.bias, dtype=_factory(module)["dtype"]
        )
    return _copy_weights(module, target)
