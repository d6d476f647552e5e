"""Mixed precision of a training step (`TrainConfig.precision`).

``"fp32"`` computes everything in float32. ``"bf16"`` runs each step's forward under
``torch.autocast`` to bfloat16 on the training device: the matrix products of Linear, Conv and
attention layers take bfloat16 inputs with float32 accumulation, while the weights, their
gradients and the optimizer's state stay float32 (the master weights), and the loss is computed
in float32 from the model's output. `gru.GRU` under autocast trains on the engine in float32
(its recurrent products need the precision over hundreds of steps) and returns the dtype it was
given. Evaluation (validation and test scores) runs in float32 on the float32 weights, so a run's
reported scores are those of the weights it saves.
"""

from __future__ import annotations

import contextlib
import warnings

import torch
from torch import Tensor

from gru.ops import bf16_hardware

__all__ = ["PRECISIONS", "autocast", "in_float32", "say_without_hardware"]

PRECISIONS = ("fp32", "bf16")


def autocast(precision: str, device: str) -> contextlib.AbstractContextManager:
    """The context of a training step's forward: autocast to bfloat16 for "bf16", else none."""
    if precision == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def in_float32(output):
    """``output`` (a tensor, or a tuple of them) with every lower-precision float tensor
    converted to float32: what the loss and the metrics are computed from."""
    if isinstance(output, Tensor):
        return output.float() if output.dtype in (torch.bfloat16, torch.float16) else output
    if isinstance(output, tuple | list):
        return type(output)(in_float32(o) for o in output)
    return output


def say_without_hardware(precision: str, device: str) -> None:
    """Warn (once per process) that "bf16" on a CPU without bfloat16 matrix units (AMX) trains
    with bfloat16's rounding but no speed-up: torch's bfloat16 products are no faster than
    float32 there (converted to float32, or at most avx512_bf16's rate)."""
    if precision == "bf16" and torch.device(device).type == "cpu" and not bf16_hardware():
        warnings.warn(
            "gru: --precision bf16 on a CPU without bfloat16 matrix units (amx_bf16): the "
            "products are rounded to bfloat16 but run no faster than float32 here, so "
            "training is no faster than fp32 (and may be slower)",
            RuntimeWarning,
            stacklevel=3,
        )
