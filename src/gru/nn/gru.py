"""`GRU`: a drop-in replacement for `torch.nn.GRU` (`GRUStream`, in `gru.nn.stream`, runs it a
step at a time). The contract lives here (validation, parameters, layouts, layers, directions,
dropout); the math of one layer in one direction is `gru.ops`.

Shapes: T time steps, B batch, I input features, H hidden units, L layers, D directions.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from gru import ops
from gru.nn import convert, packing, script
from gru.nn._base import (
    EQUATIONS,
    RecurrentBase,
    autocast_input,
    check_features,
    check_float_input,
    check_probability,
)
from gru.nn.fastpath import small_inference
from gru.nn.stream import GRUStream

__all__ = ["GRU"]


class GRU(RecurrentBase):
    __doc__ = (
        r"""A multi-layer gated recurrent unit, a drop-in replacement for `torch.nn.GRU`.

For each layer and each element of the input sequence, it computes
"""
        + EQUATIONS
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

Inputs: ``input, hx=None, lengths=None``
    input: (T, B, I), (B, T, I) with batch_first, (T, I) unbatched, or a PackedSequence.
    hx: (D·L, B, H), or (D·L, H) for unbatched input; zeros when None.
    lengths: optional (B,) ints in [1, T] for padded batched input, an alternative to packing:
        outputs past a sequence's length are zero and h_n holds each sequence's last state.

Outputs: ``(output, h_n)``
    output: (T, B, D·H) (batch first if asked), (T, D·H) unbatched, or a PackedSequence.
    h_n: (D·L, B, H), or (D·L, H) unbatched: the final state of every layer and direction.
"""
    )

    _takes_packed = True
    _hx_what = "(num_layers * num_directions, batch, hidden_size)"

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
        self.zoneout = check_probability("GRU", "zoneout", zoneout)
        self.recurrent_dropout = check_probability("GRU", "recurrent_dropout", recurrent_dropout)
        self.layer_norm = bool(layer_norm)
        if self.layer_norm and not reset_after:
            raise ValueError(
                "GRU: layer_norm=True is defined for reset_after=True (the normalized recurrent "
                "projection W_hh h_{t-1} includes W_hn h_{t-1}, which reset_after=False never "
                "computes); use reset_after=True with layer_norm"
            )
        self._set_sizes(input_size, hidden_size, num_layers, bias, batch_first, dropout)
        self.bidirectional = bool(bidirectional)
        self.reset_after = bool(reset_after)
        self._register_parameters({"device": device, "dtype": dtype})
        self.reset_parameters()

    @property
    def _hx_layers(self) -> int:
        return self.num_layers * (2 if self.bidirectional else 1)

    def _register_parameters(self, factory: dict) -> None:
        """The parameters of every layer and direction, named and shaped as torch.nn.GRU's."""
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
        s = self._base_repr()
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

    def variant_settings(self, *, inference_only: bool) -> list[str]:
        """The settings (``"layer_norm=True"``, ``"zoneout=0.1"``, …) that a plain GRU lacks.

        Recurrent dropout acts in training only: with ``inference_only`` it is not listed.
        """
        found = []
        if self.layer_norm:
            found.append("layer_norm=True")
        if self.zoneout:
            found.append(f"zoneout={self.zoneout}")
        if self.recurrent_dropout and not inference_only:
            found.append(f"recurrent_dropout={self.recurrent_dropout}")
        return found

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

    def layer_norm_weights(self, index: int) -> tuple[Tensor, Tensor, Tensor, Tensor] | None:
        """(g_ih, c_ih, g_hh, c_hh) of layer/direction ``index``, or None without layer_norm."""
        if not self.layer_norm:
            return None
        return tuple(getattr(self, name) for name in self._ln_names[index])

    # --- forward ---------------------------------------------------------------------------

    def forward(self, input, hx: Tensor | None = None, lengths=None):
        """See the class docstring for shapes: returns ``(output, h_n)``. ``lengths`` may be
        given by position: torch.onnx.export(..., dynamo=False) passes every argument with a
        default by position (a keyword-only one broke a bare layer's export there)."""
        if (small := small_inference(self, input, hx, lengths)) is not None:  # `gru.nn.fastpath`
            return self._batch_major(*small, batched=input.dim() == 3)
        if torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export():  # ONNX has its own
            return self._forward_traced(input, hx, lengths)
        if isinstance(input, PackedSequence):
            if lengths is not None:
                raise ValueError(
                    "GRU.forward: lengths must be None for a PackedSequence, which carries its "
                    "own lengths"
                )
            return self._forward_packed(input, hx)
        weight = self.weight_ih_l0
        if isinstance(input, Tensor) and (
            autocast_input(input, weight) or autocast_input(hx, weight)
        ):
            # From an autocast product: computed in float32, returned in hx's dtype (the
            # input's without hx), as torch.nn.GRU returns under autocast.
            dtype = (hx if isinstance(hx, Tensor) else input).dtype
            hx = hx.float() if isinstance(hx, Tensor) else hx
            output, h_n = self.forward(input.float(), hx, lengths)
            return output.to(dtype), h_n.to(dtype)
        x, batched = self._time_major(input, weight)
        T, B = x.shape[:2]
        h0 = self._check_hx(hx, B, batched, weight)
        if ops.exporting_to_onnx():  # native ONNX GRU nodes instead of the engine
            return self._batch_major(*self._onnx_stack(x, h0, lengths), batched)
        if lengths is not None:
            if not batched:
                raise ValueError("GRU.forward: lengths needs batched input, got 2-D input")
            lengths = packing.check_lengths(lengths, T, B)
        output, h_n = self._run(x, h0, lengths)
        return self._batch_major(output, h_n, batched)

    def _forward_traced(self, input, hx, lengths):
        """Under ``torch.jit.trace``: the operations of `ScriptableGRU`, which a trace records
        with the sizes read from the input (the eager path would record constants)."""
        if isinstance(input, PackedSequence) or lengths is not None:
            script.refuse_scripting(
                "GRU", "a PackedSequence or lengths=", "a trace would fix the lengths it saw",
                "trace with the padded tensor alone and read each sequence's output at its "
                "last step",
            )  # fmt: skip
        return self.__prepare_scriptable__()(input, hx)

    def __prepare_scriptable__(self) -> script.ScriptableGRU:
        """What ``torch.jit.script`` compiles in place of this layer: a `ScriptableGRU` with
        the same Parameters (see `gru.nn.script`)."""
        return script.ScriptableGRU(self)

    def _onnx_stack(self, x: Tensor, h0: Tensor | None, lengths) -> tuple[Tensor, Tensor]:
        """What `_run` computes in evaluation mode, as ONNX GRU nodes (`gru.ops.export`)."""
        refused = self.variant_settings(inference_only=not self.training)
        if self.training and self.dropout and self.num_layers > 1:
            refused.append(f"dropout={self.dropout}")
        ops.refuse_for_onnx("GRU", refused)
        weights = [self.layer_weights(i) for i in range(len(self._all_weights))]
        return ops.onnx_stack(
            x, h0, lengths, weights, hidden_size=self.hidden_size, num_layers=self.num_layers,
            bidirectional=self.bidirectional, reset_after=self.reset_after,
        )  # fmt: skip

    def _forward_packed(self, packed: PackedSequence, hx):
        if ops.exporting_to_onnx():
            raise ValueError(
                "GRU.forward: a PackedSequence cannot be exported to ONNX; give the padded "
                "tensor and its lengths (GRU(x, lengths=lengths)), which export as the GRU "
                "nodes' sequence_lens"
            )
        data, batch_sizes, sorted_indices, unsorted_indices = packed
        weight = self.weight_ih_l0
        check_float_input("GRU.forward", "input.data", data, weight)
        if data.dim() != 2:
            raise ValueError(
                "GRU.forward: a PackedSequence's data must be 2-D (sum of lengths, I), "
                f"got shape {tuple(data.shape)}"
            )
        check_features("GRU.forward", data, self.input_size, "(sum of lengths, I)")
        lengths = packing.packed_lengths(batch_sizes, data.shape[0])
        h0 = self._check_hx(hx, int(batch_sizes[0]), True, weight)
        if sorted_indices is not None and h0 is not None:
            h0 = h0.index_select(1, sorted_indices)
        output, h_n = self._run(packing.unpack(data, batch_sizes), h0, lengths)
        if unsorted_indices is not None:
            h_n = h_n.index_select(1, unsorted_indices)
        return packing.pack_like(output, packed), h_n

    def _run(self, x: Tensor, h0: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor]:
        """Every layer and direction over x (T, B, I) -> (output (T, B, D·H), h_n (D·L, B, H))."""
        if ops.uses_cudnn(x.device, self.backend, self.reset_after, self.has_variants):
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
            layer_input = self._between_layers(layer_input, layer)
        return layer_input, torch.stack(h_n)

    def _variant_inputs(self, index: int, T: int, B: int, x: Tensor) -> dict:
        """The variants' inputs to `ops.gru_sequence` for one layer and direction: the layer
        norms' parameters, and the masks drawn now (training) or their expectations (eval)."""
        if not self.has_variants:
            return {}
        H = self.hidden_size
        inputs = {}
        if self.layer_norm:
            inputs["layer_norm"] = self.layer_norm_weights(index)
        if self.zoneout:
            if self.training:  # d_t ~ Bernoulli(p): 1 keeps the unit's previous value
                inputs["zoneout"] = torch.bernoulli(x.new_full((T, B, H), self.zoneout))
            else:
                inputs["zoneout"] = self.zoneout  # the expectation
        if self.recurrent_dropout and self.training:
            keep = 1.0 - self.recurrent_dropout
            inputs["recurrent_mask"] = torch.bernoulli(x.new_full((B, H), keep)) / keep
        return inputs

    # --- streaming and conversion ----------------------------------------------------------

    def stream(self, batch_size: int = 1) -> GRUStream:
        """A stateful one-step-at-a-time runner of this GRU, for generation and online use.

        ``stream(x_t)`` advances every layer by one step and returns the top layer's output;
        see `GRUStream`. The stream copies the weights now: make a new one after training.
        """
        return GRUStream(self, batch_size)

    @classmethod
    def from_torch(cls, module: nn.GRU) -> GRU:
        """A `gru.GRU` with the configuration and a copy of the weights of a `torch.nn.GRU`."""
        if not isinstance(module, nn.GRU):
            raise TypeError(
                f"from_torch: module must be a torch.nn.GRU, got {type(module).__name__}"
            )
        return convert.rebuild(module, cls, convert.gru_config(module))

    def to_torch(self) -> nn.GRU:
        """A `torch.nn.GRU` with this layer's configuration and a copy of its weights.

        Raises ValueError for ``reset_after=False`` or variants, which torch.nn.GRU cannot
        compute.
        """
        variants = self.variant_settings(inference_only=False)
        convert.refuse_for_torch("GRU.to_torch", "GRU", self.reset_after, variants)
        return convert.rebuild(self, nn.GRU, convert.gru_config(self))
