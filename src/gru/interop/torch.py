"""`torch.nn.GRU` / `torch.nn.GRUCell` ↔ `gru.GRU` / `gru.GRUCell`.

Both sides use the same parameter names, shapes and gate packing (rows ``[r | z | n]``), so a
conversion is a copy of the state dict. Only the reset-after convention exists in torch.
"""

from __future__ import annotations

import torch
from torch import nn

from gru.interop.gates import refuse_variants
from gru.nn import GRU, GRUCell

__all__ = ["cell_from_torch", "cell_to_torch", "from_torch", "to_torch"]

_NO_RESET_BEFORE = (
    "{owner}: torch.nn.{cls} computes only the reset-after convention, "
    "n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)); this layer has reset_after=False, "
    "n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn), which no torch.nn.{cls} can compute. "
    "Keep using gru.{cls}, or export it to ONNX (linear_before_reset=0) or Keras "
    "(reset_after=False), which have this convention."
)


def _gru_config(module) -> tuple:
    """Constructor arguments shared by torch.nn.GRU and gru.GRU, in their common order."""
    return (
        module.input_size,
        module.hidden_size,
        module.num_layers,
        module.bias,
        module.batch_first,
        float(module.dropout),
        module.bidirectional,
    )


def _cell_config(module) -> tuple:
    return (module.input_size, module.hidden_size, module.bias)


def _rebuild(source: nn.Module, cls: type, config: tuple) -> nn.Module:
    """``cls(*config)`` holding a copy of source's parameters, with its dtype and device.

    The target is built on the meta device (no memory, no random numbers drawn for weights
    about to be replaced), then given copies of the source's tensors.
    """
    with torch.device("meta"):
        target = cls(*config, dtype=next(source.parameters()).dtype)
    state = {k: v.detach().clone() for k, v in source.state_dict().items()}
    target.load_state_dict(state, assign=True)
    for p_src, p_dst in zip(source.parameters(), target.parameters(), strict=True):
        p_dst.requires_grad_(p_src.requires_grad)
    return target.train(source.training)


def from_torch(module: nn.GRU) -> GRU:
    """A `gru.GRU` with the configuration and a copy of the weights of a `torch.nn.GRU`."""
    if not isinstance(module, nn.GRU):
        raise TypeError(f"from_torch: module must be a torch.nn.GRU, got {type(module).__name__}")
    return _rebuild(module, GRU, _gru_config(module))


def to_torch(module: GRU) -> nn.GRU:
    """A `torch.nn.GRU` with the configuration and a copy of the weights of a `gru.GRU`."""
    if not isinstance(module, GRU):
        raise TypeError(f"to_torch: module must be a gru.GRU, got {type(module).__name__}")
    if not module.reset_after:
        raise ValueError(_NO_RESET_BEFORE.format(owner="GRU.to_torch", cls="GRU"))
    refuse_variants("GRU.to_torch", module, inference_only=False)
    return _rebuild(module, nn.GRU, _gru_config(module))


def cell_from_torch(module: nn.GRUCell) -> GRUCell:
    """A `gru.GRUCell` with the configuration and a copy of the weights of a torch one."""
    if not isinstance(module, nn.GRUCell):
        raise TypeError(
            f"cell_from_torch: module must be a torch.nn.GRUCell, got {type(module).__name__}"
        )
    return _rebuild(module, GRUCell, _cell_config(module))


def cell_to_torch(module: GRUCell) -> nn.GRUCell:
    """A `torch.nn.GRUCell` with the configuration and a copy of the weights of a gru one."""
    if not isinstance(module, GRUCell):
        raise TypeError(f"cell_to_torch: module must be a gru.GRUCell, got {type(module).__name__}")
    if not module.reset_after:
        raise ValueError(_NO_RESET_BEFORE.format(owner="GRUCell.to_torch", cls="GRUCell"))
    if module.layer_norm or module.zoneout:
        raise ValueError(
            "GRUCell.to_torch: torch.nn.GRUCell has no layer_norm or zoneout; converting would "
            "change what the cell computes, so it is refused"
        )
    return _rebuild(module, nn.GRUCell, _cell_config(module))
