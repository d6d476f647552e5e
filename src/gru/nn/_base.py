"""What every layer of `gru.nn` shares: argument checks with messages a person can act on, and
the contract of a stacked recurrent layer (input layouts, hx, dropout between layers, repr),
as torch's RNNBase shares them among its layers.

Shapes: T time steps, B batch, I input features, H hidden units, L layers, D directions.
"""

from __future__ import annotations

import numbers
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

__all__ = [
    "EQUATIONS",
    "RecurrentBase",
    "autocast_input",
    "check_features",
    "check_float_input",
    "check_probability",
    "check_size",
]

EQUATIONS = r"""
    r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
    z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
    n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))        reset_after=True
    n_t = tanh(W_in x_t + b_in + W_hn (r_t ⊙ h_{t-1}) + b_hn)        reset_after=False
    h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}

where x_t is the input at time t, h_t the hidden state (h_0 = ``hx`` or zeros), r_t the reset
gate, z_t the update gate, n_t the candidate state, σ the logistic sigmoid and ⊙ the elementwise
product. ``reset_after=True`` (the default) is the convention of torch.nn.GRU, cuDNN, Keras
``reset_after=True`` and ONNX ``linear_before_reset=1``; ``reset_after=False`` is the original
one of Cho et al. (2014), Keras ``reset_after=False`` and ONNX ``linear_before_reset=0``.
"""


def check_size(owner: str, name: str, value, minimum: int = 1) -> int:
    """``value`` as an int of at least ``minimum``; TypeError or ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: {name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{owner}: {name} must be at least {minimum}, got {value}")
    return int(value)


def check_probability(owner: str, name: str, value) -> float:
    """``value`` as a probability in [0, 1); TypeError or ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a float, got {type(value).__name__}")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{owner}: {name} must be a probability in [0, 1), got {value}")
    return float(value)


def autocast_input(value, weight: Tensor) -> torch.dtype | None:
    """The dtype of ``value`` when autocast made it lower than the float32 weights (a bfloat16
    or float16 tensor from an autocast Linear under ``torch.autocast`` on its device), else
    None. The layer then computes on the tensor in float32, by the autocast policy of its
    products, and returns its dtype, as torch.nn.GRU returns it there."""
    if not isinstance(value, Tensor) or weight.dtype != torch.float32:
        return None
    device = value.device.type
    if not torch.is_autocast_enabled(device) or value.dtype != torch.get_autocast_dtype(device):
        return None
    return value.dtype


def check_float_input(owner: str, name: str, value: Tensor, weight: Tensor) -> None:
    """A floating-point tensor of the weights' dtype and device, or TypeError/ValueError."""
    if not value.is_floating_point():
        raise TypeError(
            f"{owner}: {name} must be a floating-point tensor, got dtype {value.dtype}; "
            "token ids go through an nn.Embedding first, other data through .float()"
        )
    if value.dtype != weight.dtype:
        raise TypeError(
            f"{owner}: {name} has dtype {value.dtype} but the weights are {weight.dtype}; "
            f"convert one to match, e.g. {name}.to({weight.dtype}) or module.to({value.dtype})"
        )
    if value.device != weight.device:
        raise ValueError(
            f"{owner}: {name} is on {value.device} but the weights are on {weight.device}; "
            f"move one, e.g. {name}.to('{weight.device}')"
        )


def check_features(owner: str, x: Tensor, input_size: int, layout: str) -> None:
    """x.shape[-1] == input_size, or a ValueError that suggests the likely transposition."""
    if x.shape[-1] != input_size:
        hint = ""
        if input_size in tuple(x.shape[:-1]):
            hint = f"; the features must be the last dimension {layout}"
        raise ValueError(
            f"{owner}: input.shape[-1] must equal input_size={input_size}, "
            f"got {x.shape[-1]} (shape {tuple(x.shape)}){hint}"
        )


class RecurrentBase(nn.Module):
    """A stack of ``num_layers`` recurrent layers over sequences: the arguments, input layouts
    (batch_first, unbatched), hx and dropout between layers that `GRU` and `MinGRU` share.

    Subclasses set ``_hx_layers`` (how many states hx holds) and ``_hx_what`` (how to name
    its shape in a message).
    """

    _hx_layers: int
    _hx_what = "(num_layers, batch, hidden_size)"

    def _set_sizes(
        self, input_size, hidden_size, num_layers, bias, batch_first, dropout
    ) -> None:  # fmt: skip
        owner = type(self).__name__
        self.input_size = check_size(owner, "input_size", input_size)
        self.hidden_size = check_size(owner, "hidden_size", hidden_size)
        self.num_layers = check_size(owner, "num_layers", num_layers)
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real):
            raise TypeError(f"{owner}: dropout must be a float, got {type(dropout).__name__}")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{owner}: dropout must be a probability in [0, 1], got {dropout}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                f"{owner}: dropout applies between layers only, so dropout > 0 expects "
                f"num_layers > 1, got dropout={dropout} and num_layers={num_layers}",
                stacklevel=3,
            )
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)

    def _base_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        return s

    def _time_major(self, input, weight: Tensor) -> tuple[Tensor, bool]:
        """(x (T, B, I), batched) from a checked ``input`` of any layout the layer takes."""
        owner = f"{type(self).__name__}.forward"
        if not isinstance(input, Tensor):
            what = "a torch.Tensor or a PackedSequence" if self._takes_packed else "a torch.Tensor"
            raise TypeError(f"{owner}: input must be {what}, got {type(input).__name__}")
        check_float_input(owner, "input", input, weight)
        layout = "(B, T, I)" if self.batch_first else "(T, B, I)"
        if input.dim() not in (2, 3):
            raise ValueError(
                f"{owner}: input must be 3-D {layout} (batch_first={self.batch_first}) "
                f"or 2-D (T, I) unbatched, got {input.dim()}-D with shape {tuple(input.shape)}"
            )
        check_features(owner, input, self.input_size, layout)
        batched = input.dim() == 3
        x = input if batched else input.unsqueeze(1)
        if batched and self.batch_first:
            x = x.transpose(0, 1)  # (T, B, I)
        if x.shape[0] == 0:
            raise ValueError(f"{owner}: input has no time steps (shape {tuple(input.shape)})")
        return x, batched

    _takes_packed = False

    def _refuse_packed(self, input) -> None:
        if isinstance(input, PackedSequence):
            raise TypeError(
                f"{type(self).__name__}.forward: PackedSequence input is not supported; pass "
                "the padded tensor (torch.nn.utils.rnn.pad_packed_sequence) and read each "
                "sequence's output at its last step"
            )

    def _batch_major(self, output: Tensor, h_n: Tensor, batched: bool) -> tuple[Tensor, Tensor]:
        """(output, h_n) back in the layout the input came in."""
        if batched and self.batch_first:
            output = output.transpose(0, 1)
        if not batched:
            output, h_n = output.squeeze(1), h_n.squeeze(1)
        return output, h_n

    def _check_hx(self, hx, B: int, batched: bool, weight: Tensor) -> Tensor | None:
        """hx as (states, B, H), or None for zeros (made where they are needed)."""
        if hx is None:
            return None
        owner = f"{type(self).__name__}.forward"
        if not isinstance(hx, Tensor):
            raise TypeError(f"{owner}: hx must be a torch.Tensor, got {type(hx).__name__}")
        check_float_input(owner, "hx", hx, weight)
        expected = (self._hx_layers, B, self.hidden_size)
        if not batched:
            expected = (self._hx_layers, self.hidden_size)
        if tuple(hx.shape) != expected:
            what = self._hx_what
            if not batched:
                what = what.replace(", batch", "")[:-1] + ") for unbatched input"
            raise ValueError(
                f"{owner}: hx must have shape {what} = {expected}, got {tuple(hx.shape)}"
            )
        return hx if batched else hx.unsqueeze(1)

    def _between_layers(self, layer_input: Tensor, layer: int) -> Tensor:
        """The dropout between layer ``layer`` and the next one, in training."""
        if self.dropout and self.training and layer < self.num_layers - 1:
            return F.dropout(layer_input, self.dropout, training=True)
        return layer_input
