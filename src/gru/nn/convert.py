"""`torch.nn.GRU` / `torch.nn.GRUCell` ↔ `gru.GRU` / `gru.GRUCell`, behind their ``from_torch``
and ``to_torch`` methods.

Both sides use the same parameter names, shapes and gate packing (rows ``[r | z | n]``), so a
conversion is a copy of the state dict. Only the reset-after convention exists in torch.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["cell_config", "gru_config", "rebuild", "refuse_for_torch", "refuse_variants"]

_NO_RESET_BEFORE = (
    "{owner}: torch.nn.{cls} computes only the reset-after convention, "
    "n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)); this layer has reset_after=False, "
    "n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn), which no torch.nn.{cls} can compute. "
    "Keep using gru.{cls}, or export it to ONNX (linear_before_reset=0) or Keras "
    "(reset_after=False), which have this convention."
)


def gru_config(module) -> tuple:
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


def cell_config(module) -> tuple:
    """Constructor arguments shared by torch.nn.GRUCell and gru.GRUCell."""
    return (module.input_size, module.hidden_size, module.bias)


def refuse_for_torch(owner: str, cls: str, reset_after: bool, variants: list[str]) -> None:
    """ValueError unless torch.nn.``cls`` computes the same: reset after, and no variants."""
    if not reset_after:
        raise ValueError(_NO_RESET_BEFORE.format(owner=owner, cls=cls))
    refuse_variants(owner, variants)


def refuse_variants(owner: str, variants: list[str]) -> None:
    """ValueError naming ``variants`` (`gru.GRU.variant_settings`) that a target lacks."""
    if variants:
        raise ValueError(
            f"{owner}: the target has no GRU with {', '.join(variants)}; converting would "
            "change what the layer computes, so it is refused"
        )


def rebuild(source: nn.Module, cls: type, config: tuple) -> nn.Module:
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
