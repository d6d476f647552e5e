"""`GRU` and `GRUCell`: drop-in replacements for `torch.nn.GRU` and `torch.nn.GRUCell`.

These modules own the PyTorch contract: argument validation, parameters and their
initialization, batch_first, unbatched input, PackedSequence, layers, directions and dropout.
The math of one layer in one direction is delegated to `gru.ops`.

Shapes: T time steps, B batch, I input features, H hidden units, L layers, D directions.
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.nn.utils.rnn import PackedSequence

from gru import ops

__all__ = ["GRU", "GRUCell"]

_EQUATIONS = r"""
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


def _check_size(owner: str, name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: {name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{owner}: {name} must be at least {minimum}, got {value}")
    return int(value)


def _check_probability(owner: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a float, got {type(value).__name__}")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{owner}: {name} must be a probability in [0, 1), got {value}")
    return float(value)


def _check_float_input(owner: str, name: str, value: Tensor, weight: Tensor) -> None:
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


def _check_features(owner: str, x: Tensor, input_size: int, layout: str) -> None:
    if x.shape[-1] != input_size:
        hint = ""
        if input_size in tuple(x.shape[:-1]):
            hint = f"; the features must be the last dimension {layout}"
        raise ValueError(
            f"{owner}: input.shape[-1] must equal input_size={input_size}, "
            f"got {x.shape[-1]} (shape {tuple(x.shape)}){hint}"
        )


class GRU(nn.Module):
    __doc__ = (
        r"""A multi-layer gated recurrent unit, a drop-in replacement for `torch.nn.GRU`.

For each layer and each element of the input sequence, it computes
"""
        + _EQUATIONS
        + r"""
In a multi-layer GRU the input of layer l ≥ 1 is the output of layer l − 1, multiplied by a
dropout mask (probability ``dropout``) in training mode. A bidirectional GRU runs a second set
of weights over each sequence reversed and concatenates both directions' outputs.

Args:
    input_size: I, the number of features of x_t.
    hidden_size: H, the number of features of h_t.
    num_layers: L, the number of stacked layers. Default 1.
    bias: if False, the layer has no b_ih and b_hh. Default True.
    batch_first: if True, input and output are (B, T, feature) instead of (T, B, feature);
        ``hx`` and ``h_n`` are never batch first. Default False.
    dropout: probability of zeroing each output of every layer but the last in training
        mode. Default 0.
    bidirectional: if True, D = 2 directions. Default False.
    device, dtype: where and as what the parameters are created.
    reset_after: which convention computes n_t (see above). Default True, as torch.nn.GRU.
    backend: how the recurrence is computed: "fused" (the compiled CPU engine, CPU tensors
        only), "torch" (composed torch operations, any device), or "auto" (default: the engine
        for CPU tensors, torch operations elsewhere). All give the same results.
    layer_norm: if True, layer normalization (Ba et al. 2016, as haste's LayerNormGRU) of
        each projection over its 3H values before the gates, with learnable gain and bias:
        W_ih x_t becomes LN(W_ih x_t; g_ih, c_ih) and W_hh h_{t-1} becomes
        LN(W_hh h_{t-1}; g_hh, c_hh), LN(a; g, c) = g ⊙ (a − mean a) / √(var a + 1e-5) + c.
        Reset after only. Default False.
    zoneout: p in [0, 1) (Krueger et al. 2017): in training each unit keeps its previous value
        with probability p, h_t = d_t ⊙ h_{t-1} + (1 − d_t) ⊙ h̃_t with d_t ~ Bernoulli(p) per
        step and h̃_t the update above; in evaluation d_t = p. Default 0.
    recurrent_dropout: p in [0, 1) (Gal & Ghahramani 2016, Keras's ``recurrent_dropout``): in
        training one dropout mask m ~ Bernoulli(1 − p) / (1 − p) per sequence and unit, the same
        at every step, on h_{t-1} where the recurrent products read it (W_hh (m ⊙ h_{t-1})).
        Default 0.

Parameters (k = layer; the reverse direction's names end in ``_reverse``), gates packed in
rows ``[r | z | n]``, each initialized from U(−1/√H, 1/√H) as in torch.nn.GRU:
    weight_ih_l{k}: (3H, I) for k = 0, else (3H, D·H) — [W_ir | W_iz | W_in]
    weight_hh_l{k}: (3H, H) — [W_hr | W_hz | W_hn]
    bias_ih_l{k}: (3H,) — [b_ir | b_iz | b_in]
    bias_hh_l{k}: (3H,) — [b_hr | b_hz | b_hn]
With ``layer_norm``, also ln_ih_weight_l{k}, ln_ih_bias_l{k}, ln_hh_weight_l{k},
ln_hh_bias_l{k}: (3H,) — g_ih, c_ih, g_hh, c_hh, initialized to 1 (gains) and 0 (biases).

Inputs: ``input, hx=None, *, lengths=None``
    input: (T, B, I), (B, T, I) with batch_first, (T, I) unbatched, or a PackedSequence.
    hx: (D·L, B, H), or (D·L, H) for unbatched input; zeros when None.
    lengths: optional (B,) ints in [1, T] for padded batched input, an alternative to packing:
        outputs past a sequence's length are zero and h_n holds each sequence's last state.

Outputs: ``(output, h_n)``
    output: (T, B, D·H) (batch first if asked), (T, D·H) unbatched, or a PackedSequence.
    h_n: (D·L, B, H), or (D·L, H) unbatched: the final state of every layer and direction.
"""
    )

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        *,
        reset_after: bool = True,
        backend: str = "auto",
        layer_norm: bool = False,
        zoneout: float = 0.0,
        recurrent_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if backend not in ops.BACKENDS:
            raise ValueError(f"GRU: backend must be one of {ops.BACKENDS}, got {backend!r}")
        self.backend = backend
        self.zoneout = _check_probability("GRU", "zoneout", zoneout)
        self.recurrent_dropout = _check_probability("GRU", "recurrent_dropout", recurrent_dropout)
        self.layer_norm = bool(layer_norm)
        if self.layer_norm and not reset_after:
            raise ValueError(
                "GRU: layer_norm=True is defined for reset_after=True (the normalized recurrent "
                "projection W_hh h_{t-1} includes W_hn h_{t-1}, which reset_after=False never "
                "computes); use reset_after=True with layer_norm"
            )
        self.input_size = _check_size("GRU", "input_size", input_size)
        self.hidden_size = _check_size("GRU", "hidden_size", hidden_size)
        self.num_layers = _check_size("GRU", "num_layers", num_layers)
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real):
            raise TypeError(f"GRU: dropout must be a float, got {type(dropout).__name__}")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"GRU: dropout must be a probability in [0, 1], got {dropout}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "GRU: dropout applies between layers only, so dropout > 0 expects "
                f"num_layers > 1, got dropout={dropout} and num_layers={num_layers}",
                stacklevel=2,
            )
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.reset_after = bool(reset_after)

        factory = {"device": device, "dtype": dtype}
        D = 2 if self.bidirectional else 1
        H = self.hidden_size
        self._flat_weights_names: list[str] = []
        self._all_weights: list[list[str]] = []
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else D * H
            for direction in range(D):
                suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                shapes = {
                    f"weight_ih{suffix}": (3 * H, layer_input),
                    f"weight_hh{suffix}": (3 * H, H),
                }
                if self.bias:
                    shapes[f"bias_ih{suffix}"] = (3 * H,)
                    shapes[f"bias_hh{suffix}"] = (3 * H,)
                for name, shape in shapes.items():
                    self.register_parameter(name, nn.Parameter(torch.empty(shape, **factory)))
                self._flat_weights_names.extend(shapes)
                self._all_weights.append(list(shapes))
        # The layer norms' parameters per layer and direction: [g_ih, c_ih, g_hh, c_hh].
        self._ln_names: list[list[str]] = []
        if self.layer_norm:
            for names in self._all_weights:
                suffix = names[0].removeprefix("weight_ih")
                ln = [f"ln_{p}{suffix}" for p in ("ih_weight", "ih_bias", "hh_weight", "hh_bias")]
                for name in ln:
                    self.register_parameter(name, nn.Parameter(torch.empty(3 * H, **factory)))
                self._ln_names.append(ln)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw every parameter from U(−1/√H, 1/√H), in torch.nn.GRU's order.

        With the same seed, ``gru.GRU`` and ``torch.nn.GRU`` of the same configuration start
        from identical weights.
        """
        bound = 1.0 / math.sqrt(self.hidden_size)
        for name in self._flat_weights_names:
            nn.init.uniform_(getattr(self, name), -bound, bound)
        for names in self._ln_names:  # gains 1, biases 0: the normalization starts neutral
            for name in names:
                nn.init.constant_(getattr(self, name), 1.0 if "_weight" in name else 0.0)

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        """The parameters per layer and direction, as torch.nn.GRU.all_weights."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def flatten_parameters(self) -> None:
        """Kept for compatibility with torch.nn.GRU; the weights need no flattening here."""

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        if not self.reset_after:
            s += ", reset_after=False"
        if self.backend != "auto":
            s += f", backend={self.backend!r}"
        if self.layer_norm:
            s += ", layer_norm=True"
        if self.zoneout:
            s += f", zoneout={self.zoneout}"
        if self.recurrent_dropout:
            s += f", recurrent_dropout={self.recurrent_dropout}"
        return s

    @property
    def has_variants(self) -> bool:
        """Whether a layer norm, zoneout or recurrent dropout changes this layer's math."""
        return self.layer_norm or self.zoneout > 0 or self.recurrent_dropout > 0

    def layer_weight_names(self, index: int) -> list[str]:
        """The parameter names of layer/direction ``index`` (= layer · D + direction):
        ``weight_ih_l{k}``, ``weight_hh_l{k}`` and, with bias, ``bias_ih_l{k}``, ``bias_hh_l{k}``
        (``_reverse`` appended for the reverse direction), as torch.nn.GRU names them."""
        return list(self._all_weights[index])

    def layer_weights(self, index: int) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """(w_ih, w_hh, b_ih, b_hh) of layer/direction ``index`` (= layer · D + direction);
        the biases are None without bias."""
        names = self._all_weights[index]
        w_ih, w_hh = getattr(self, names[0]), getattr(self, names[1])
        if not self.bias:
            return w_ih, w_hh, None, None
        return w_ih, w_hh, getattr(self, names[2]), getattr(self, names[3])

    # --- forward ---------------------------------------------------------------------------

    def forward(self, input, hx: Tensor | None = None, *, lengths=None):
        """See the class docstring for shapes: returns ``(output, h_n)``."""
        if isinstance(input, PackedSequence):
            if lengths is not None:
                raise ValueError(
                    "GRU.forward: lengths must be None for a PackedSequence, which carries its "
                    "own lengths"
                )
            return self._forward_packed(input, hx)
        if not isinstance(input, Tensor):
            raise TypeError(
                "GRU.forward: input must be a torch.Tensor or a PackedSequence, "
                f"got {type(input).__name__}"
            )
        weight = self.weight_ih_l0
        _check_float_input("GRU.forward", "input", input, weight)
        layout = "(B, T, I)" if self.batch_first else "(T, B, I)"
        if input.dim() not in (2, 3):
            raise ValueError(
                f"GRU.forward: input must be 3-D {layout} (batch_first={self.batch_first}) or "
                f"2-D (T, I) unbatched, got {input.dim()}-D with shape {tuple(input.shape)}"
            )
        _check_features("GRU.forward", input, self.input_size, layout)
        batched = input.dim() == 3
        x = input if batched else input.unsqueeze(1)
        if batched and self.batch_first:
            x = x.transpose(0, 1)  # (T, B, I)
        T, B = x.shape[:2]
        if T == 0:
            raise ValueError(f"GRU.forward: input has no time steps (shape {tuple(input.shape)})")
        h0 = self._check_hx(hx, B, batched, weight)
        if lengths is not None:
            if not batched:
                raise ValueError("GRU.forward: lengths needs batched input, got 2-D input")
            lengths = self._check_lengths(lengths, T, B)

        output, h_n = self._run(x, h0, lengths)
        if batched and self.batch_first:
            output = output.transpose(0, 1)
        if not batched:
            output, h_n = output.squeeze(1), h_n.squeeze(1)
        return output, h_n

    def _forward_packed(self, packed: PackedSequence, hx):
        data, batch_sizes, sorted_indices, unsorted_indices = packed
        weight = self.weight_ih_l0
        _check_float_input("GRU.forward", "input.data", data, weight)
        if data.dim() != 2:
            raise ValueError(
                "GRU.forward: a PackedSequence's data must be 2-D (sum of lengths, I), "
                f"got shape {tuple(data.shape)}"
            )
        _check_features("GRU.forward", data, self.input_size, "(sum of lengths, I)")
        lengths = self._packed_lengths(batch_sizes, data.shape[0])
        T, B = len(batch_sizes), int(batch_sizes[0])
        h0 = self._check_hx(hx, B, True, weight)
        if sorted_indices is not None and h0 is not None:
            h0 = h0.index_select(1, sorted_indices)

        # Scatter the packed rows, stored time-major with the longest sequences first, into a
        # padded (T, B, I) tensor and back: row j of data is the j-th True of `mask`.
        mask = torch.arange(B).unsqueeze(0) < batch_sizes.unsqueeze(1)  # (T, B)
        rows = mask.flatten().nonzero().squeeze(1).to(data.device)  # (N,)
        x = data.new_zeros(T * B, data.shape[1]).index_copy(0, rows, data)
        output, h_n = self._run(x.view(T, B, -1), h0, lengths)
        out_data = output.reshape(T * B, -1).index_select(0, rows)  # (N, D·H)
        if unsorted_indices is not None:
            h_n = h_n.index_select(1, unsorted_indices)
        return PackedSequence(out_data, batch_sizes, sorted_indices, unsorted_indices), h_n

    def _run(self, x: Tensor, h0: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor]:
        """Every layer and direction over x (T, B, I) -> (output (T, B, D·H), h_n (D·L, B, H))."""
        if self._native_stack(x.device):
            return ops.cudnn_stack(
                x, h0, [getattr(self, n) for n in self._flat_weights_names],
                num_layers=self.num_layers, bias=self.bias, dropout=self.dropout,
                training=self.training, bidirectional=self.bidirectional, lengths=lengths,
            )  # fmt: skip
        D = 2 if self.bidirectional else 1
        T, B = x.shape[:2]
        h_n = []
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(D):
                index = layer * D + direction
                out, h = ops.gru_sequence(
                    layer_input,
                    None if h0 is None else h0[index],
                    *self.layer_weights(index),
                    reset_after=self.reset_after,
                    reverse=direction == 1,
                    lengths=lengths,
                    backend=self.backend,
                    **self._variant_inputs(index, T, B, x),
                )
                outputs.append(out)
                h_n.append(h)
            layer_input = outputs[0] if D == 1 else torch.cat(outputs, dim=-1)  # (T, B, D·H)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        return layer_input, torch.stack(h_n)

    def _native_stack(self, device: torch.device) -> bool:
        """Whether torch's native GRU (cuDNN) computes the whole stack on ``device``.

        Only on CUDA, for the convention it computes (reset after) and without variants:
        cuDNN has no layer norm, zoneout or recurrent dropout, so a layer with any of them
        runs layer by layer on composed torch operations there (`ops.gru_sequence`), which
        compute the variants on any device.
        """
        return (
            device.type == "cuda"
            and self.reset_after
            and self.backend == "auto"
            and not self.has_variants
        )

    def _variant_inputs(self, index: int, T: int, B: int, x: Tensor) -> dict:
        """The variants' inputs to `ops.gru_sequence` for one layer and direction: the layer
        norms' parameters, and the masks drawn now (training) or their expectations (eval)."""
        if not self.has_variants:
            return {}
        H = self.hidden_size
        inputs = {}
        if self.layer_norm:
            inputs["layer_norm"] = tuple(getattr(self, n) for n in self._ln_names[index])
        if self.zoneout:
            if self.training:  # d_t ~ Bernoulli(p): 1 keeps the unit's previous value
                inputs["zoneout"] = torch.bernoulli(x.new_full((T, B, H), self.zoneout))
            else:
                inputs["zoneout"] = self.zoneout  # the expectation
        if self.recurrent_dropout and self.training:
            keep = 1.0 - self.recurrent_dropout
            inputs["recurrent_mask"] = torch.bernoulli(x.new_full((B, H), keep)) / keep
        return inputs

    # --- streaming -------------------------------------------------------------------------

    def stream(self, batch_size: int = 1) -> GRUStream:
        """A stateful one-step-at-a-time runner of this GRU, for generation and online use.

        ``stream(x_t)`` advances every layer by one step and returns the top layer's output;
        see `GRUStream`. The stream copies the weights now: make a new one after training.
        """
        return GRUStream(self, batch_size)

    def _check_hx(self, hx, B: int, batched: bool, weight: Tensor) -> Tensor | None:
        D = 2 if self.bidirectional else 1
        LD = self.num_layers * D
        if hx is None:
            return None  # zeros, made where they are needed (the engine makes its own)
        if not isinstance(hx, Tensor):
            raise TypeError(f"GRU.forward: hx must be a torch.Tensor, got {type(hx).__name__}")
        _check_float_input("GRU.forward", "hx", hx, weight)
        expected = (LD, B, self.hidden_size) if batched else (LD, self.hidden_size)
        if tuple(hx.shape) != expected:
            what = "(num_layers * num_directions, batch, hidden_size)"
            if not batched:
                what = "(num_layers * num_directions, hidden_size) for unbatched input"
            raise ValueError(
                f"GRU.forward: hx must have shape {what} = {expected}, got {tuple(hx.shape)}"
            )
        return hx if batched else hx.unsqueeze(1)

    @staticmethod
    def _check_lengths(lengths, T: int, B: int) -> Tensor:
        if not isinstance(lengths, Tensor):
            lengths = torch.as_tensor(lengths)
        if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
            raise TypeError(f"GRU.forward: lengths must hold integers, got dtype {lengths.dtype}")
        if tuple(lengths.shape) != (B,):
            raise ValueError(
                f"GRU.forward: lengths must have shape (batch,) = ({B},), "
                f"got {tuple(lengths.shape)}"
            )
        lengths = lengths.to(device="cpu", dtype=torch.int64)
        if B and (int(lengths.min()) < 1 or int(lengths.max()) > T):
            raise ValueError(
                f"GRU.forward: every length must be in [1, T={T}], "
                f"got min {int(lengths.min())} and max {int(lengths.max())}"
            )
        return lengths

    @staticmethod
    def _packed_lengths(batch_sizes: Tensor, n_rows: int) -> Tensor:
        """Each sequence's length, from a PackedSequence's batch_sizes, checked for consistency."""
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

    # --- conversion ------------------------------------------------------------------------

    @classmethod
    def from_torch(cls, module: nn.GRU) -> GRU:
        """A `gru.GRU` with the configuration and a copy of the weights of a `torch.nn.GRU`."""
        from gru.interop.torch import from_torch  # interop sits above nn; imported on use

        return from_torch(module)

    def to_torch(self) -> nn.GRU:
        """A `torch.nn.GRU` with this layer's configuration and a copy of its weights.

        Raises ValueError for ``reset_after=False``, which torch.nn.GRU cannot compute.
        """
        from gru.interop.torch import to_torch

        return to_torch(self)


class GRUStream:
    """Runs a `GRU` one time step at a time, keeping its state between calls.

    ``stream(x_t)`` takes x_t of shape (batch_size, I), or (I,) when batch_size is 1, as a
    torch tensor or a NumPy array, advances every layer by one step and returns the top
    layer's h_t (batch_size, H) (or (H,)) of the same kind. No autograd; on the CPU engine a
    step allocates nothing, and the returned array is a buffer that the next step overwrites
    (copy it to keep it). ``state`` is h (num_layers, batch_size, H); ``reset()`` zeroes it.
    A bidirectional GRU cannot stream: its reverse direction needs the whole sequence.
    """

    def __init__(self, module: GRU, batch_size: int = 1) -> None:
        if module.bidirectional:
            raise ValueError(
                "GRU.stream: a bidirectional GRU cannot run one step at a time (its reverse "
                "direction reads the sequence from the end); run it on whole sequences"
            )
        self.batch_size = _check_size("GRU.stream", "batch_size", batch_size)
        self.input_size = module.input_size
        weight = module.weight_ih_l0
        with torch.no_grad():
            state = weight.new_zeros(module.num_layers, batch_size, module.hidden_size)
        layers = [module.layer_weights(i) for i in range(module.num_layers)]
        layer_norms = [
            tuple(getattr(module, n) for n in names) for names in module._ln_names
        ]  # evaluation semantics: zoneout keeps p of the state, no recurrent dropout
        self._stepper = ops.Stepper(
            layers, state, reset_after=module.reset_after, backend=module.backend,
            layer_norms=layer_norms, zoneout=module.zoneout,
        )  # fmt: skip
        self._dtype = weight.dtype
        fused = self._stepper.fused
        self._np_dtype = self._stepper.out_np.dtype if fused else None
        self._out_torch = self._stepper.out if fused else None

    @property
    def state(self) -> Tensor:
        """h of every layer, (num_layers, batch_size, H); assign to it to set the state."""
        return self._stepper.state

    @state.setter
    def state(self, value) -> None:
        value = torch.as_tensor(value, dtype=self._dtype)
        if tuple(value.shape) != tuple(self._stepper.state.shape):
            raise ValueError(
                f"GRUStream.state must have shape {tuple(self._stepper.state.shape)}, "
                f"got {tuple(value.shape)}"
            )
        with torch.no_grad():
            self._stepper.state.copy_(value)

    def reset(self) -> None:
        """Zero the state of every layer."""
        with torch.no_grad():
            self._stepper.state.zero_()

    def __call__(self, x):
        stepper = self._stepper
        is_numpy = isinstance(x, np.ndarray)
        shape = x.shape
        B, I = self.batch_size, self.input_size
        if shape != (B, I) and not (B == 1 and shape == (I,)):
            raise ValueError(
                f"GRUStream: x_t must have shape ({B}, {I})"
                + (f" or ({I},)" if B == 1 else "")
                + f", got {tuple(shape)}"
            )
        if not stepper.fused:
            xt = torch.as_tensor(x, dtype=self._dtype, device=stepper.state.device)
            out = stepper.step(xt.reshape(B, I))
            if is_numpy:
                out = out.cpu().numpy()
            return out if len(shape) == 2 else out[0]
        expected = self._np_dtype if is_numpy else self._dtype
        if x.dtype != expected:
            raise TypeError(f"GRUStream: x_t must have dtype {expected}, got {x.dtype}")
        xn = x if is_numpy else x.detach().numpy()
        if len(shape) == 1 or not xn.flags.c_contiguous:
            xn = np.ascontiguousarray(xn).reshape(B, I)
        out = stepper.step(xn)  # the fast path: one compiled call, no allocation
        if is_numpy:
            return out if len(shape) == 2 else out[0]
        return self._out_torch if len(shape) == 2 else self._out_torch[0]


class GRUCell(nn.Module):
    __doc__ = (
        r"""A gated recurrent unit cell, a drop-in replacement for `torch.nn.GRUCell`.

It computes one step
"""
        + _EQUATIONS
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
        self.input_size = _check_size("GRUCell", "input_size", input_size)
        self.hidden_size = _check_size("GRUCell", "hidden_size", hidden_size)
        self.bias = bool(bias)
        self.reset_after = bool(reset_after)
        self.layer_norm = bool(layer_norm)
        self.zoneout = _check_probability("GRUCell", "zoneout", zoneout)
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
        if not isinstance(input, Tensor):
            raise TypeError(
                f"GRUCell.forward: input must be a torch.Tensor, got {type(input).__name__}"
            )
        _check_float_input("GRUCell.forward", "input", input, self.weight_ih)
        if input.dim() not in (1, 2):
            raise ValueError(
                "GRUCell.forward: input must be 2-D (B, I) or 1-D (I,) unbatched, "
                f"got {input.dim()}-D with shape {tuple(input.shape)}; for sequences use gru.GRU"
            )
        _check_features("GRUCell.forward", input, self.input_size, "(B, I)")
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
            _check_float_input("GRUCell.forward", "hx", hx, self.weight_ih)
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

    @classmethod
    def from_torch(cls, module: nn.GRUCell) -> GRUCell:
        """A `gru.GRUCell` with the configuration and a copy of the weights of a torch one."""
        from gru.interop.torch import cell_from_torch

        return cell_from_torch(module)

    def to_torch(self) -> nn.GRUCell:
        """A `torch.nn.GRUCell` copy; ValueError for ``reset_after=False``."""
        from gru.interop.torch import cell_to_torch

        return cell_to_torch(self)


# --- minGRU (Feng et al. 2024) -------------------------------------------------------------

__all__ += ["MinGRU", "MinGRUStream"]

_MIN_GRU_EQUATIONS = r"""
    z_t = σ(W_z x_t + b_z)                        update gate
    h̃_t = g(W_h x_t + b_h)                        candidate state
    h_t = (1 − z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t
    g(a) = a + 1/2 for a ≥ 0, σ(a) for a < 0     (continuous and always positive)

where x_t is the input at time t, h_t the hidden state (h_0 = ``hx`` or zeros), σ the logistic
sigmoid and ⊙ the elementwise product. Neither z_t nor h̃_t reads h_{t-1}, so the recurrence is
linear in h, h_t = c_t ⊙ h_{t-1} + v_t with c_t = 1 − z_t and v_t = z_t ⊙ h̃_t, and a whole
sequence is computed by a scan over time instead of one step after another. As in the paper
(and the seeds' GRU), z is the fraction of the candidate taken: the packed GRU layout's 1 − z.
"""

_SCAN_CHUNK = 32
"""Time steps per chunk of `_min_gru_scan` (see there why the scan is chunked)."""


def _g(a: Tensor) -> Tensor:
    """g(a) = a + 1/2 for a ≥ 0, σ(a) for a < 0."""
    return torch.where(a >= 0, a + 0.5, torch.sigmoid(a))


def _log_g(a: Tensor) -> Tensor:
    """log g(a) = log(a + 1/2) for a ≥ 0, log σ(a) = −softplus(−a) for a < 0.

    relu keeps the branch that `where` discards finite, so its gradient is never NaN.
    """
    return torch.where(a >= 0, torch.log(F.relu(a) + 0.5), -F.softplus(-a))


def _min_gru_scan(k: Tensor, a: Tensor, h0: Tensor | None) -> Tensor:
    """Every h_t (T, B, H) of one minGRU layer, from its pre-activations k = W_z x + b_z and
    a = W_h x + b_h (T, B, H each) and the state h0 (B, H) (zeros when None), by a scan.

    The forward is the paper's log-space scan (`_log_space_scan`); the backward is derived by
    hand (`_MinGRUScan`), because autograd through the log-space scan is not accurate enough
    in float32.
    """
    return _MinGRUScan.apply(k, a, h0)


def _log_space_scan(k: Tensor, a: Tensor, h0: Tensor | None) -> Tensor:
    """h (T, B, H) of `_min_gru_scan` by the paper's log-space scan.

    With log c_t = log(1 − z_t) = −softplus(k_t), log v_t = log z_t + log h̃_t
    = −softplus(−k_t) + log g(a_t) and A_t = Σ_{s ≤ t} log c_s,

        h_t = exp(A_t) ⊙ h_0 + exp(A_t + log Σ_{s ≤ t} exp(log v_s − A_s))

    (a cumsum and a logcumsumexp over time). h_0 enters linearly rather than as the log-space
    sum's first term (the paper's code), so it may have any sign, and zeros need no log 0.

    The time axis is scanned in chunks of `_SCAN_CHUNK` steps, each starting from the last
    state of the one before. In float32 the sum A_t + log Σ(…) loses about ε·|A_t| of
    relative precision, and |A_t| grows with the length scanned: over 4096 steps one scan was
    off from the float64 loop by 4e-5 (median, relative) and up to 8e-4, chunks of 32 steps
    by 4e-7 and up to 1.4e-5. Chunks cost little: a few more operations per 32 steps.
    """
    log_c = -F.softplus(k)  # log(1 − z_t), (T, B, H)
    log_v = -F.softplus(-k) + _log_g(a)  # log(z_t ⊙ h̃_t), (T, B, H)
    outputs = []
    h = h0
    for log_c_c, log_v_c in zip(log_c.split(_SCAN_CHUNK), log_v.split(_SCAN_CHUNK), strict=True):
        A = torch.cumsum(log_c_c, dim=0)  # (C, B, H)
        h_c = torch.exp(A + torch.logcumsumexp(log_v_c - A, dim=0))  # (C, B, H)
        if h is not None:
            h_c = h_c + torch.exp(A) * h  # the state carried in, decayed by Π c_s
        outputs.append(h_c)
        h = h_c[-1]  # (B, H)
    return outputs[0] if len(outputs) == 1 else torch.cat(outputs)  # (T, B, H)


def _reverse_linear_scan(c_next: Tensor, u: Tensor) -> Tensor:
    """g (T, …) with g_t = u_t + c_next_t ⊙ g_{t+1} and g_T = 0, from c_next, u (T, …).

    A parallel scan in linear space: within chunks of `_SCAN_CHUNK` steps, log2(C) rounds in
    which each g_t takes in the partial sum 2^j steps ahead of it and the product of the
    coefficients that lead there (Hillis and Steele 1986); the chunks then pass their carries
    back by the same scan over one entry per chunk, recursively. Only products and sums of
    the c's and u's, no division, exp or log: a product of coefficients in (0, 1) that
    underflows to 0 stands for a contribution below the smallest float, and each g_t comes
    out with a rounding error of a few ε times Σ_s |Π c| |u_s| — that of the sequential loop
    (over 4096 steps, float32 against the float64 loop: at most 9e-7 absolute where |u| ~ 1).
    """
    T, rest = u.shape[0], u.shape[1:]
    C = min(_SCAN_CHUNK, T)
    n = -(-T // C)  # chunks
    pad = n * C - T
    if pad:  # zeros after the end: nothing to add and no link to it
        c_next = torch.cat([c_next, c_next.new_zeros(pad, *rest)])
        u = torch.cat([u, u.new_zeros(pad, *rest)])
    c = c_next.reshape(n, C, *rest)  # (n, C, …): Π c_next from step i to the chunk's end
    g = u.reshape(n, C, *rest)  # (n, C, …): Σ within the chunk from step i on
    step = 1
    while step < C:
        g = torch.cat([torch.addcmul(g[:, :-step], c[:, :-step], g[:, step:]), g[:, -step:]], 1)
        c = torch.cat([c[:, :-step] * c[:, step:], c[:, -step:]], 1)
        step *= 2
    if n > 1:
        # The full g at the start of each chunk: G_j = g[j, 0] + c[j, 0] G_{j+1}, this scan
        # again over n entries; every step of chunk j then adds c[j, i] G_{j+1}.
        G = _reverse_linear_scan(c[:, 0], g[:, 0])  # (n, …)
        g = torch.cat([torch.addcmul(g[:-1], c[:-1], G[1:].unsqueeze(1)), g[-1:]])
    return g.reshape(n * C, *rest)[:T]


class _MinGRUScan(torch.autograd.Function):
    """`_min_gru_scan` with its backward derived by hand.

    Autograd through the log-space scan differentiates exp(A_t + log Σ …) into two large terms
    (through A and through the sum) that cancel to a small gradient of k, which in float32
    kept too little of it (1.7% of the elements of a 4096-step test off by over 10× the float32
    tolerance). The backward instead follows h_t = c_t ⊙ h_{t-1} + z_t ⊙ h̃_t directly. With
    g_t = ∂L/∂h_t in total and ĝ_t the gradient that reaches h_t from outside (the output):

        g_T = ĝ_T,  g_{t-1} = ĝ_{t-1} + c_t ⊙ g_t                       (`_reverse_linear_scan`)
        ∂L/∂k_t = g_t ⊙ z_t (1 − z_t) ⊙ (h̃_t − h_{t-1})                 (dz/dk = z (1 − z))
        ∂L/∂a_t = g_t ⊙ z_t ⊙ g'(a_t),  g'(a) = 1 for a ≥ 0, σ(a) σ(−a) for a < 0
        ∂L/∂h_0 = c_1 ⊙ g_1

    It keeps k, a, h_0 and the output h for backward. Not differentiable twice.
    """

    @staticmethod
    def forward(ctx, k: Tensor, a: Tensor, h0: Tensor | None) -> Tensor:
        h = _log_space_scan(k, a, h0)  # (T, B, H)
        ctx.save_for_backward(k, a, h0, h)
        return h

    @staticmethod
    @once_differentiable
    def backward(ctx, d_h: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        k, a, h0, h = ctx.saved_tensors
        z = torch.sigmoid(k)  # (T, B, H)
        c = torch.sigmoid(-k)  # 1 − z without the cancellation where z → 1, (T, B, H)
        # g_t = ĝ_t + c_{t+1} ⊙ g_{t+1}; the last step has no successor.
        g = _reverse_linear_scan(torch.cat([c[1:], torch.zeros_like(c[:1])]), d_h)  # (T, B, H)
        h_prev = torch.cat([torch.zeros_like(h[:1]) if h0 is None else h0.unsqueeze(0), h[:-1]])
        g_z = g * z  # (T, B, H)
        d_k = g_z * c * (_g(a) - h_prev)  # (T, B, H)
        s = torch.sigmoid(a)  # (T, B, H)
        d_a = torch.where(a >= 0, g_z, g_z * s * (1 - s))  # 1 − σ(a) > 1/2 for a < 0: exact enough
        d_h0 = None if h0 is None or not ctx.needs_input_grad[2] else c[0] * g[0]  # (B, H)
        return d_k, d_a, d_h0


def _min_gru_step(k_t: Tensor, a_t: Tensor, h: Tensor) -> Tensor:
    """One minGRU step from the pre-activations k_t, a_t (B, H) and h_{t-1} (B, H)."""
    z = torch.sigmoid(k_t)  # (B, H)
    h_tilde = _g(a_t)  # (B, H)
    return h + z * (h_tilde - h)  # (1 − z) ⊙ h + z ⊙ h̃, rearranged: one product fewer


def _min_gru_sequential(k: Tensor, a: Tensor, h0: Tensor | None) -> Tensor:
    """What `_min_gru_scan` computes, one step after another: (T, B, H)."""
    h = torch.zeros_like(k[0]) if h0 is None else h0
    outputs = []
    for t in range(k.shape[0]):
        h = _min_gru_step(k[t], a[t], h)
        outputs.append(h)
    return torch.stack(outputs)  # (T, B, H)


class MinGRU(nn.Module):
    __doc__ = (
        r"""A multi-layer minGRU (Feng et al. 2024, "Were RNNs All We Needed?", arXiv 2410.01201).

For each layer and each element of the input sequence, it computes
"""
        + _MIN_GRU_EQUATIONS
        + r"""
``forward`` (and so training) computes each layer over the whole sequence at once with the
paper's log-space scan; `stream` runs the same equations one step at a time. This is the
recurrent layer alone: the paper's minGRU models wrap it in blocks with a residual
connection, normalization and an MLP, which belong to the model that uses the layer. In a
multi-layer MinGRU the input of layer l ≥ 1 is the output of layer l − 1, multiplied by a
dropout mask (probability ``dropout``) in training mode.

Args:
    input_size: I, the number of features of x_t.
    hidden_size: H, the number of features of h_t.
    num_layers: L, the number of stacked layers. Default 1.
    bias: if False, the layer has no b_z and b_h. Default True.
    batch_first: if True, input and output are (B, T, feature) instead of (T, B, feature);
        ``hx`` and ``h_n`` are never batch first. Default False.
    dropout: probability of zeroing each output of every layer but the last in training
        mode. Default 0.
    device, dtype: where and as what the parameters are created.

Parameters (k = layer; I_k = I for k = 0, else H), each drawn from U(−1/√I_k, 1/√I_k), the
default of torch.nn.Linear, which the paper's code uses for both projections:
    weight_z_l{k}: (H, I_k) — W_z
    bias_z_l{k}: (H,) — b_z
    weight_h_l{k}: (H, I_k) — W_h
    bias_h_l{k}: (H,) — b_h

Inputs: ``input, hx=None``
    input: (T, B, I), (B, T, I) with batch_first, or (T, I) unbatched.
    hx: (L, B, H), or (L, H) for unbatched input; zeros when None. Any real values.

Outputs: ``(output, h_n)``
    output: (T, B, H) (batch first if asked) or (T, H) unbatched: h_t of the last layer.
    h_n: (L, B, H), or (L, H) unbatched: the final state of every layer.
"""
    )

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.input_size = _check_size("MinGRU", "input_size", input_size)
        self.hidden_size = _check_size("MinGRU", "hidden_size", hidden_size)
        self.num_layers = _check_size("MinGRU", "num_layers", num_layers)
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real):
            raise TypeError(f"MinGRU: dropout must be a float, got {type(dropout).__name__}")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"MinGRU: dropout must be a probability in [0, 1], got {dropout}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "MinGRU: dropout applies between layers only, so dropout > 0 expects "
                f"num_layers > 1, got dropout={dropout} and num_layers={num_layers}",
                stacklevel=2,
            )
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)

        factory = {"device": device, "dtype": dtype}
        H = self.hidden_size
        self._all_weights: list[list[str]] = []
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else H
            shapes = {f"weight_z_l{layer}": (H, layer_input)}
            if self.bias:
                shapes[f"bias_z_l{layer}"] = (H,)
            shapes[f"weight_h_l{layer}"] = (H, layer_input)
            if self.bias:
                shapes[f"bias_h_l{layer}"] = (H,)
            for name, shape in shapes.items():
                self.register_parameter(name, nn.Parameter(torch.empty(shape, **factory)))
            self._all_weights.append(list(shapes))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw every parameter of layer k from U(−1/√I_k, 1/√I_k), as torch.nn.Linear does."""
        for layer, names in enumerate(self._all_weights):
            bound = 1.0 / math.sqrt(self.input_size if layer == 0 else self.hidden_size)
            for name in names:
                nn.init.uniform_(getattr(self, name), -bound, bound)

    def extra_repr(self) -> str:
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

    def layer_weights(self, layer: int) -> tuple[Tensor, Tensor | None, Tensor, Tensor | None]:
        """(w_z, b_z, w_h, b_h) of a layer; the biases are None without bias."""
        w_z, w_h = getattr(self, f"weight_z_l{layer}"), getattr(self, f"weight_h_l{layer}")
        if not self.bias:
            return w_z, None, w_h, None
        return w_z, getattr(self, f"bias_z_l{layer}"), w_h, getattr(self, f"bias_h_l{layer}")

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """See the class docstring for shapes: returns ``(output, h_n)``."""
        if isinstance(input, PackedSequence):
            raise TypeError(
                "MinGRU.forward: PackedSequence input is not supported; pass the padded tensor "
                "(torch.nn.utils.rnn.pad_packed_sequence) and read each sequence's output at "
                "its last step"
            )
        if not isinstance(input, Tensor):
            raise TypeError(
                f"MinGRU.forward: input must be a torch.Tensor, got {type(input).__name__}"
            )
        weight = self.weight_z_l0
        _check_float_input("MinGRU.forward", "input", input, weight)
        layout = "(B, T, I)" if self.batch_first else "(T, B, I)"
        if input.dim() not in (2, 3):
            raise ValueError(
                f"MinGRU.forward: input must be 3-D {layout} (batch_first={self.batch_first}) "
                f"or 2-D (T, I) unbatched, got {input.dim()}-D with shape {tuple(input.shape)}"
            )
        _check_features("MinGRU.forward", input, self.input_size, layout)
        batched = input.dim() == 3
        x = input if batched else input.unsqueeze(1)
        if batched and self.batch_first:
            x = x.transpose(0, 1)  # (T, B, I)
        T, B = x.shape[:2]
        if T == 0:
            raise ValueError(
                f"MinGRU.forward: input has no time steps (shape {tuple(input.shape)})"
            )
        h0 = self._check_hx(hx, B, batched, weight)

        h_n = []
        layer_input = x
        for layer in range(self.num_layers):
            w_z, b_z, w_h, b_h = self.layer_weights(layer)
            k = F.linear(layer_input, w_z, b_z)  # (T, B, H)
            a = F.linear(layer_input, w_h, b_h)  # (T, B, H)
            out = _min_gru_scan(k, a, None if h0 is None else h0[layer])  # (T, B, H)
            h_n.append(out[-1])
            layer_input = out
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        output, h_n = layer_input, torch.stack(h_n)  # (T, B, H), (L, B, H)

        if batched and self.batch_first:
            output = output.transpose(0, 1)
        if not batched:
            output, h_n = output.squeeze(1), h_n.squeeze(1)
        return output, h_n

    def _check_hx(self, hx, B: int, batched: bool, weight: Tensor) -> Tensor | None:
        if hx is None:
            return None
        if not isinstance(hx, Tensor):
            raise TypeError(f"MinGRU.forward: hx must be a torch.Tensor, got {type(hx).__name__}")
        _check_float_input("MinGRU.forward", "hx", hx, weight)
        L, H = self.num_layers, self.hidden_size
        expected = (L, B, H) if batched else (L, H)
        if tuple(hx.shape) != expected:
            what = "(num_layers, batch, hidden_size)"
            if not batched:
                what = "(num_layers, hidden_size) for unbatched input"
            raise ValueError(
                f"MinGRU.forward: hx must have shape {what} = {expected}, got {tuple(hx.shape)}"
            )
        return hx if batched else hx.unsqueeze(1)

    def stream(self, batch_size: int = 1) -> MinGRUStream:
        """A stateful one-step-at-a-time runner of this MinGRU, for generation and online use.

        ``stream(x_t)`` advances every layer by one step and returns the top layer's output;
        see `MinGRUStream`. The stream copies the weights now: make a new one after training.
        """
        return MinGRUStream(self, batch_size)


def _np_sigmoid(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    """σ(a) = (1 + tanh(a / 2)) / 2 into ``out``: no exponent, so nothing overflows."""
    np.multiply(a, 0.5, out=out)
    np.tanh(out, out=out)
    np.multiply(out, 0.5, out=out)
    return np.add(out, 0.5, out=out)


class MinGRUStream:
    """Runs a `MinGRU` one time step at a time, keeping its state between calls.

    ``stream(x_t)`` takes x_t of shape (batch_size, I), or (I,) when batch_size is 1, as a
    torch tensor or a NumPy array, advances every layer by one step (the equations of
    `MinGRU`) and returns the top layer's h_t (batch_size, H) (or (H,)) of the same kind. No
    autograd. For float32 and float64 weights on the CPU a step runs in NumPy on buffers made
    once, so it allocates nothing, and the returned array is a buffer that the next step
    overwrites (copy it to keep it); elsewhere it runs torch operations. ``state`` is h
    (num_layers, batch_size, H); ``reset()`` zeroes it.
    """

    def __init__(self, module: MinGRU, batch_size: int = 1) -> None:
        self.batch_size = _check_size("MinGRU.stream", "batch_size", batch_size)
        self.input_size = module.input_size
        self.hidden_size = H = module.hidden_size
        weight = module.weight_z_l0
        self._dtype, self._device = weight.dtype, weight.device
        with torch.no_grad():
            self._state = weight.new_zeros(module.num_layers, batch_size, H)  # (L, B, H)
            # Per layer, both projections in one matrix: rows [z | h], (2H, I_k), and (2H,).
            self._layers = []
            for layer in range(module.num_layers):
                w_z, b_z, w_h, b_h = module.layer_weights(layer)
                w = torch.cat([w_z, w_h]).detach().clone()  # (2H, I_k)
                b = weight.new_zeros(2 * H) if b_z is None else torch.cat([b_z, b_h]).detach()
                self._layers.append((w, b.clone()))
        self._numpy = self._device.type == "cpu" and self._dtype in (torch.float32, torch.float64)
        if self._numpy:
            self._np_layers = [(w.numpy().T.copy(), b.numpy()) for w, b in self._layers]
            self._state_np = self._state.numpy()  # shares memory with the state tensor
            dtype = self._state_np.dtype
            self._gx = np.empty((batch_size, 2 * H), dtype)  # (B, 2H): [k | a]
            self._z = np.empty((batch_size, H), dtype)
            self._h_tilde = np.empty((batch_size, H), dtype)
            self._mask = np.empty((batch_size, H), bool)
            self._out_np = np.empty((batch_size, H), dtype)
            self._out_torch = torch.from_numpy(self._out_np)

    @property
    def state(self) -> Tensor:
        """h of every layer, (num_layers, batch_size, H); assign to it to set the state."""
        return self._state

    @state.setter
    def state(self, value) -> None:
        value = torch.as_tensor(value, dtype=self._dtype, device=self._device)
        if tuple(value.shape) != tuple(self._state.shape):
            raise ValueError(
                f"MinGRUStream.state must have shape {tuple(self._state.shape)}, "
                f"got {tuple(value.shape)}"
            )
        with torch.no_grad():
            self._state.copy_(value)

    def reset(self) -> None:
        """Zero the state of every layer."""
        with torch.no_grad():
            self._state.zero_()

    def __call__(self, x):
        is_numpy = isinstance(x, np.ndarray)
        if not is_numpy and not isinstance(x, Tensor):
            raise TypeError(
                f"MinGRUStream: x_t must be a torch.Tensor or a NumPy array, got {type(x).__name__}"
            )
        shape = tuple(x.shape)
        B, I = self.batch_size, self.input_size
        if shape != (B, I) and not (B == 1 and shape == (I,)):
            raise ValueError(
                f"MinGRUStream: x_t must have shape ({B}, {I})"
                + (f" or ({I},)" if B == 1 else "")
                + f", got {shape}"
            )
        expected = self._state_np.dtype if (is_numpy and self._numpy) else self._dtype
        if not is_numpy and x.dtype != self._dtype:
            raise TypeError(f"MinGRUStream: x_t must have dtype {self._dtype}, got {x.dtype}")
        if is_numpy and self._numpy and x.dtype != expected:
            raise TypeError(f"MinGRUStream: x_t must have dtype {expected}, got {x.dtype}")
        if not is_numpy and x.device != self._device:
            raise ValueError(
                f"MinGRUStream: x_t is on {x.device} but the stream's weights are on "
                f"{self._device}; move it, e.g. x_t.to('{self._device}')"
            )
        if self._numpy:
            xn = x if is_numpy else x.detach().numpy()
            self._step_numpy(xn.reshape(B, I))
            out = self._out_np if is_numpy else self._out_torch
        else:
            xt = torch.as_tensor(x, dtype=self._dtype, device=self._device)
            out = self._step_torch(xt.reshape(B, I))
            if is_numpy:
                out = out.cpu().numpy()
        return out if len(shape) == 2 else out[0]

    def _step_numpy(self, x: np.ndarray) -> None:
        """Advance every layer by one step in NumPy, in place; the top h_t goes to _out_np."""
        H = self.hidden_size
        gx, z, h_tilde, mask = self._gx, self._z, self._h_tilde, self._mask
        layer_input = x  # (B, I_k)
        for layer, (w_t, b) in enumerate(self._np_layers):
            np.matmul(layer_input, w_t, out=gx)  # (B, 2H)
            np.add(gx, b, out=gx)
            k, a = gx[:, :H], gx[:, H:]  # (B, H) each
            _np_sigmoid(k, out=z)  # z_t
            np.greater_equal(a, 0.0, out=mask)
            _np_sigmoid(a, out=h_tilde)  # g(a) = σ(a) for a < 0 ...
            np.add(a, 0.5, out=a)
            np.copyto(h_tilde, a, where=mask)  # ... and a + 1/2 for a ≥ 0
            h = self._state_np[layer]  # (B, H), updated in place
            np.subtract(h_tilde, h, out=h_tilde)
            np.multiply(h_tilde, z, out=h_tilde)
            np.add(h, h_tilde, out=h)  # h + z ⊙ (h̃ − h) = (1 − z) ⊙ h + z ⊙ h̃
            layer_input = h
        np.copyto(self._out_np, layer_input)

    @torch.no_grad()
    def _step_torch(self, x: Tensor) -> Tensor:
        """Advance every layer by one step with torch operations; return the top h_t."""
        H = self.hidden_size
        layer_input = x  # (B, I_k)
        for layer, (w, b) in enumerate(self._layers):
            gx = torch.addmm(b, layer_input, w.T)  # (B, 2H)
            h = _min_gru_step(gx[:, :H], gx[:, H:], self._state[layer])  # (B, H)
            self._state[layer].copy_(h)
            layer_input = h
        return layer_input
