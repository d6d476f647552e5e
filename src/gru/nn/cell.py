"""`GRUCell`: a drop-in replacement for `torch.nn.GRUCell`, one step of the GRU's equations.

Shapes: B batch, I input features, H hidden units.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gru import ops
from gru.nn import convert, script
from gru.nn._base import (
    EQUATIONS,
    autocast_input,
    check_features,
    check_float_input,
    check_probability,
    check_size,
)

__all__ = ["GRUCell"]


class GRUCell(nn.Module):
    __doc__ = (
        r"""A gated recurrent unit cell, a drop-in replacement for `torch.nn.GRUCell`.

It computes one step
"""
        + EQUATIONS
        + r"""
Args:
    input_size: I, the number of features of x.
    hidden_size: H, the number of features of h.
    bias: if False, the cell has no b_ih and b_hh. Default True.
    device, dtype: where and as what the parameters are created.
    reset_after: which convention computes n (see above). Default True, as torch.nn.GRUCell.
    layer_norm, zoneout: as in `GRU` (zoneout's d drawn at every call in training). Recurrent
        dropout needs one mask for a whole sequence, which a cell cannot keep: use `GRU`.

Parameters, gates packed in rows ``[r | z | n]``, initialized from U(−1/√H, 1/√H):
    weight_ih: (3H, I), weight_hh: (3H, H), bias_ih: (3H,), bias_hh: (3H,)
With ``layer_norm``: ln_ih_weight, ln_ih_bias, ln_hh_weight, ln_hh_bias (3H,), 1 and 0.

Inputs: ``input, hx=None`` with input (B, I) or (I,), hx (B, H) or (H,) (zeros when None).
Output: h' of the same batch shape as hx, (B, H) or (H,).
"""
    )

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device=None,
        dtype=None,
        *,
        reset_after: bool = True,
        layer_norm: bool = False,
        zoneout: float = 0.0,
    ) -> None:
        super().__init__()
        self.input_size = check_size("GRUCell", "input_size", input_size)
        self.hidden_size = check_size("GRUCell", "hidden_size", hidden_size)
        self.bias = bool(bias)
        self.reset_after = bool(reset_after)
        self.layer_norm = bool(layer_norm)
        self.zoneout = check_probability("GRUCell", "zoneout", zoneout)
        if self.layer_norm and not self.reset_after:
            raise ValueError("GRUCell: layer_norm=True is defined for reset_after=True")
        factory = {"device": device, "dtype": dtype}
        H = self.hidden_size
        self.weight_ih = nn.Parameter(torch.empty(3 * H, self.input_size, **factory))
        self.weight_hh = nn.Parameter(torch.empty(3 * H, H, **factory))
        if self.bias:
            self.bias_ih = nn.Parameter(torch.empty(3 * H, **factory))
            self.bias_hh = nn.Parameter(torch.empty(3 * H, **factory))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self._ln_names = []
        if self.layer_norm:
            self._ln_names = ["ln_ih_weight", "ln_ih_bias", "ln_hh_weight", "ln_hh_bias"]
            for name in self._ln_names:
                self.register_parameter(name, nn.Parameter(torch.empty(3 * H, **factory)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw every parameter from U(−1/√H, 1/√H), in torch.nn.GRUCell's order."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            if getattr(self, name) is not None:
                nn.init.uniform_(getattr(self, name), -bound, bound)
        for name in self._ln_names:  # gains 1, biases 0
            nn.init.constant_(getattr(self, name), 1.0 if "_weight" in name else 0.0)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if not self.reset_after:
            s += ", reset_after=False"
        if self.layer_norm:
            s += ", layer_norm=True"
        if self.zoneout:
            s += f", zoneout={self.zoneout}"
        return s

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        if torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export():
            return self.__prepare_scriptable__()(input, hx)  # sizes read from the input
        if not isinstance(input, Tensor):
            raise TypeError(
                f"GRUCell.forward: input must be a torch.Tensor, got {type(input).__name__}"
            )
        if autocast_input(input, self.weight_ih) or autocast_input(hx, self.weight_ih):
            # From an autocast product: computed in float32, returned in hx's dtype (the
            # input's without hx).
            dtype = (hx if isinstance(hx, Tensor) else input).dtype
            h = self.forward(input.float(), hx.float() if isinstance(hx, Tensor) else hx)
            return h.to(dtype)
        check_float_input("GRUCell.forward", "input", input, self.weight_ih)
        if input.dim() not in (1, 2):
            raise ValueError(
                "GRUCell.forward: input must be 2-D (B, I) or 1-D (I,) unbatched, "
                f"got {input.dim()}-D with shape {tuple(input.shape)}; for sequences use gru.GRU"
            )
        check_features("GRUCell.forward", input, self.input_size, "(B, I)")
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)
        expected = (x.shape[0], self.hidden_size) if batched else (self.hidden_size,)
        if hx is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)
        else:
            if not isinstance(hx, Tensor):
                raise TypeError(
                    f"GRUCell.forward: hx must be a torch.Tensor, got {type(hx).__name__}"
                )
            check_float_input("GRUCell.forward", "hx", hx, self.weight_ih)
            if tuple(hx.shape) != expected:
                raise ValueError(
                    f"GRUCell.forward: hx must have shape {expected} to match input of shape "
                    f"{tuple(input.shape)}, got {tuple(hx.shape)}"
                )
            h = hx if batched else hx.unsqueeze(0)
        zoneout = None
        if self.zoneout and self.training:  # d ~ Bernoulli(p)
            zoneout = torch.bernoulli(torch.full_like(h, self.zoneout))
        elif self.zoneout:  # evaluation: its expectation p
            zoneout = self.zoneout
        h_new = ops.gru_cell(
            x,
            h,
            self.weight_ih,
            self.weight_hh,
            self.bias_ih,
            self.bias_hh,
            reset_after=self.reset_after,
            layer_norm=tuple(getattr(self, n) for n in self._ln_names) or None,
            zoneout=zoneout,
        )
        return h_new if batched else h_new.squeeze(0)

    def __prepare_scriptable__(self) -> script.ScriptableGRUCell:
        """What ``torch.jit.script`` compiles in place of this cell (see `gru.nn.script`)."""
        return script.ScriptableGRUCell(self)

    @classmethod
    def from_torch(cls, module: nn.GRUCell) -> GRUCell:
        """A `gru.GRUCell` with the configuration and a copy of the weights of a torch one."""
        if not isinstance(module, nn.GRUCell):
            raise TypeError(
                f"cell_from_torch: module must be a torch.nn.GRUCell, got {type(module).__name__}"
            )
        return convert.rebuild(module, cls, convert.cell_config(module))

    def to_torch(self) -> nn.GRUCell:
        """A `torch.nn.GRUCell` copy; ValueError for ``reset_after=False`` or the variants."""
        convert.refuse_for_torch("GRUCell.to_torch", "GRUCell", self.reset_after, [])
        if self.layer_norm or self.zoneout:
            raise ValueError(
                "GRUCell.to_torch: torch.nn.GRUCell has no layer_norm or zoneout; converting "
                "would change what the cell computes, so it is refused"
            )
        return convert.rebuild(self, nn.GRUCell, convert.cell_config(self))
