"""TorchScript for `GRU`: `ScriptableGRU`, the module that ``torch.jit.script`` compiles in
place of a `GRU`, and the path ``torch.jit.trace`` records.

``torch.jit.script(model)`` calls ``__prepare_scriptable__`` on every submodule and compiles
what it returns; `GRU` returns a `ScriptableGRU`, which shares its Parameters (same objects,
same names, so ``state_dict`` keys do not change) and settings. TorchScript replaces the
submodule in ``model`` itself too (torch's rule for ``__prepare_scriptable__``): a
`ScriptableGRU` called from Python runs its `GRU`, so the eager model computes what it did.

Compiled, `ScriptableGRU.forward` runs the engine through its custom operator
``torch.ops.gru.sequence_forward`` on CPU tensors of float32 or float64 (autograd included),
and elsewhere torch's native GRU (``torch._VF.gru``, reset after) or a loop of torch
operations (reset before). A scripted module saved with ``torch.jit.save`` loads in another
process once ``import gru`` has registered the operator (which starts the engine itself).

As torch.nn.GRU's, the forward has two overloads (a tensor, a PackedSequence), which
TorchScript compiles where a caller uses them: script the model that holds the layer (a layer
scripted alone has no ``forward``), or trace the layer alone.

Tracing records the same operations: the operator (not the NumPy inside it) and sizes read
from the input tensors, so a traced graph runs other batch sizes and lengths.

Shapes: T time steps, B batch, I input features, H hidden units, L layers, D directions.
"""

# No ``from __future__ import annotations``: TorchScript reads the overloads of
# `ScriptableGRU.forward` from their evaluated annotations.
from typing import overload

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from gru import ops
from gru.nn import packing
from gru.ops import composed

__all__ = ["ScriptableGRU", "ScriptableGRUCell", "refuse_scripting"]


def refuse_scripting(owner: str, what: str, why: str, fix: str) -> None:
    """Raise the error for what TorchScript cannot compile or trace: what, why, what to do."""
    raise RuntimeError(
        f"{owner}: {what} cannot be compiled by torch.jit.script or recorded by "
        f"torch.jit.trace ({why}); {fix}"
    )


def _refuse_variants(module) -> None:
    """`ScriptableGRU` computes the plain GRU, and recurrent dropout, which acts in training
    only (refused there at run time); a layer norm or zoneout is refused here."""
    variants = module.variant_settings(inference_only=True)
    if variants:
        refuse_scripting(
            "GRU",
            " and ".join(variants),
            "the engine's TorchScript operator computes the plain GRU",
            "use it in eager mode, under torch.compile or torch.export, or train a GRU "
            "without it to deploy with TorchScript",
        )


class ScriptableGRU(nn.Module):
    """A `GRU` as TorchScript compiles it: the same Parameters and settings, and a forward of
    TorchScript's types, ``forward(input, hx=None) -> (output, h_n)`` with the shapes of
    `GRU.forward` (batch_first, unbatched input, PackedSequence). ``lengths=`` is for eager
    mode (compiled, pack the sequences instead); the variants layer norm and zoneout are
    refused (`refuse_scripting`), recurrent dropout is refused in training mode.
    """

    def __init__(self, module) -> None:
        super().__init__()
        _refuse_variants(module)
        self.input_size: int = module.input_size
        self.hidden_size: int = module.hidden_size
        self.num_layers: int = module.num_layers
        self.bias: bool = module.bias
        self.batch_first: bool = module.batch_first
        self.dropout: float = module.dropout
        self.bidirectional: bool = module.bidirectional
        self.reset_after: bool = module.reset_after
        self.recurrent_dropout: float = module.recurrent_dropout
        self.recurrent_dropout_setting = f"recurrent_dropout={module.recurrent_dropout}"
        # The engine where it runs a layer of this size (with a BLAS bound beyond 512 units).
        fused = ops.resolve_backend("auto", torch.empty(0), module.hidden_size) == "fused"
        self.engine: bool = module.backend != "torch" and fused
        self.train(module.training)
        D = 2 if module.bidirectional else 1
        all_names = []  # filled before it is set: TorchScript infers list[str] from the items
        for index in range(D * self.num_layers):
            names = module.layer_weight_names(index)
            weights = [w for w in module.layer_weights(index) if w is not None]
            for name, weight in zip(names, weights, strict=True):
                self.register_parameter(name, weight)  # the same Parameter: shared, same name
            all_names.extend(names)
        self._names = all_names
        self._flat_weights = [getattr(self, n) for n in self._names]
        self._eager_module = (module,)  # not a submodule: the Parameters are registered above

    def _apply(self, fn, recurse=True):
        """Moves and casts (``.to``, ``.double()``) reach the list forward reads too."""
        result = super()._apply(fn, recurse)
        self._flat_weights = [getattr(self, n) for n in self._names]
        return result

    @torch.jit.unused
    def _eager(self, input, hx: Tensor | None, lengths: Tensor | None):
        module = self._eager_module[0]
        module.train(self.training)  # .train() and .eval() reach this module only
        return module(input, hx, lengths=lengths)

    @overload
    @torch._jit_internal._overload_method
    def forward(
        self, input: Tensor, hx: Tensor | None = None, lengths: Tensor | None = None
    ) -> tuple[Tensor, Tensor]: ...

    @overload
    @torch._jit_internal._overload_method
    def forward(
        self, input: PackedSequence, hx: Tensor | None = None, lengths: Tensor | None = None
    ) -> tuple[PackedSequence, Tensor]: ...

    def forward(self, input, hx=None, lengths=None):  # the types: the two overloads above
        """``(output, h_n)`` as `GRU.forward` (see `GRU` for the shapes), a PackedSequence
        included. ``lengths`` is taken from Python only (the `GRU` computes it); compiled, it is
        refused: pack the sequences instead."""
        if not torch.jit.is_scripting() and not torch.jit.is_tracing():
            return self._eager(input, hx, lengths)  # the GRU itself
        if lengths is not None:
            raise ValueError(
                "GRU.forward: lengths= is not supported by a scripted GRU; pack the sequences "
                "(torch.nn.utils.rnn.pack_padded_sequence) and pass the PackedSequence"
            )
        if self.training and self.recurrent_dropout > 0:
            raise RuntimeError(
                "GRU.forward: "
                + self.recurrent_dropout_setting
                + " acts in training, which neither torch.jit.script nor torch.jit.trace can "
                "compute; call .eval() first to run it for inference, or train the eager module"
            )
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        return self._forward_tensor(input, hx)

    def _forward_packed(
        self, packed: PackedSequence, hx: Tensor | None
    ) -> tuple[PackedSequence, Tensor]:
        """A PackedSequence (N, I) as padded x (T, B, I) and each sequence's length (B,), in
        the packed (sorted) order; hx and h_n in the caller's order."""
        data, batch_sizes = packed.data, packed.batch_sizes
        sorted_indices, unsorted_indices = packed.sorted_indices, packed.unsorted_indices
        if data.dim() != 2 or data.size(-1) != self.input_size:
            raise ValueError(
                "GRU.forward: a PackedSequence's data must be (sum of lengths, input_size="
                + str(self.input_size)
                + "), got shape "
                + str(data.shape)
            )
        B = int(batch_sizes[0])
        D = 2 if self.bidirectional else 1
        if hx is None:
            h0 = data.new_zeros((D * self.num_layers, B, self.hidden_size))
        else:
            self._check_hx(hx, B, True)
            h0 = hx if sorted_indices is None else hx.index_select(1, sorted_indices)
        if not self._uses_engine(data) and self.reset_after:  # torch's own packed GRU
            result = torch._VF.gru(
                data, batch_sizes, h0, self._flat_weights, self.bias, self.num_layers,
                self.dropout, self.training, self.bidirectional,
            )  # fmt: skip
            output, h_n = result[0], result[1]
        else:
            lengths = (torch.arange(B).unsqueeze(0) < batch_sizes.unsqueeze(1)).sum(0)  # (B,)
            padded, h_n = self.run(packing.unpack(data, batch_sizes), h0, lengths)
            output = packing.pack_like(padded, packed).data
        if unsorted_indices is not None:
            h_n = h_n.index_select(1, unsorted_indices)
        return PackedSequence(output, batch_sizes, sorted_indices, unsorted_indices), h_n

    def _forward_tensor(self, input: Tensor, hx: Tensor | None) -> tuple[Tensor, Tensor]:
        """A padded (or unbatched) tensor in and out, in the layer's layout."""
        batched = input.dim() == 3
        if not torch.jit.is_tracing():  # a trace keeps no Python checks: they read sizes
            self._check(input, hx)
        x = input if batched else input.unsqueeze(1)
        if batched and self.batch_first:
            x = x.transpose(0, 1)  # (T, B, I)
        D = 2 if self.bidirectional else 1
        if hx is None:
            h0 = x.new_zeros((D * self.num_layers, x.size(1), self.hidden_size))
        else:
            h0 = hx if batched else hx.unsqueeze(1)  # (D·L, B, H)
        output, h_n = self.run(x, h0, None)
        if batched and self.batch_first:
            output = output.transpose(0, 1)
        if not batched:
            output, h_n = output.squeeze(1), h_n.squeeze(1)
        return output, h_n

    def _check(self, input: Tensor, hx: Tensor | None) -> None:
        """The checks of `GRU.forward` that a scripted module can make, with its messages."""
        if not input.is_floating_point():
            raise TypeError(
                "GRU.forward: input must be a floating-point tensor, got dtype "
                + str(input.dtype)
                + "; token ids go through an nn.Embedding first"
            )
        if input.dim() != 2 and input.dim() != 3:
            raise ValueError(
                "GRU.forward: input must be 3-D (T, B, I) ((B, T, I) with batch_first) or 2-D "
                "(T, I) unbatched, got shape " + str(input.shape)
            )
        if input.size(-1) != self.input_size:
            raise ValueError(
                "GRU.forward: input.shape[-1] must equal input_size="
                + str(self.input_size)
                + ", got shape "
                + str(input.shape)
            )
        if hx is not None:
            B = input.size(0) if self.batch_first else input.size(1)
            self._check_hx(hx, B, input.dim() == 3)

    def _check_hx(self, hx: Tensor, B: int, batched: bool) -> None:
        D = 2 if self.bidirectional else 1
        expected = [D * self.num_layers, B, self.hidden_size]
        if not batched:
            expected = [D * self.num_layers, self.hidden_size]
        if hx.shape != expected:
            raise ValueError(
                "GRU.forward: hx must have shape (num_layers * num_directions, batch, "
                "hidden_size) = " + str(expected) + ", got " + str(hx.shape)
            )

    def _uses_engine(self, x: Tensor) -> bool:
        floating = x.dtype == torch.float32 or x.dtype == torch.float64
        return self.engine and x.device.type == "cpu" and floating

    def run(self, x: Tensor, h0: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor]:
        """Every layer and direction over x (T, B, I) from h0 (D·L, B, H), each sequence to
        its length (B,) (None: all T; then the engine, or torch's GRU with reset after):
        (output (T, B, D·H), h_n (D·L, B, H))."""
        engine = self._uses_engine(x)
        if not engine and self.reset_after and lengths is None:  # torch's GRU: cuDNN on CUDA
            result = torch._VF.gru(
                x, h0, self._flat_weights, self.bias, self.num_layers, self.dropout,
                self.training, self.bidirectional, False,
            )  # fmt: skip
            return result[0], result[1]
        D = 2 if self.bidirectional else 1
        per_layer = 4 if self.bias else 2
        h_n: list[Tensor] = []
        layer_input = x
        for layer in range(self.num_layers):
            outputs: list[Tensor] = []
            for direction in range(D):
                index = layer * D + direction
                w = self._flat_weights[index * per_layer : (index + 1) * per_layer]
                b_ih: Tensor | None = None
                b_hh: Tensor | None = None
                if self.bias:
                    b_ih, b_hh = w[2], w[3]
                reverse = direction == 1
                if engine:
                    out, h = _engine_layer(layer_input, h0[index], w[0], w[1], b_ih, b_hh,
                                           lengths, self.reset_after, reverse)  # fmt: skip
                else:
                    out, h = _reset_before_layer(layer_input, h0[index], w[0], w[1], b_ih,
                                                 b_hh, lengths, reverse)  # fmt: skip
                outputs.append(out)
                h_n.append(h)
            layer_input = outputs[0] if D == 1 else torch.cat(outputs, dim=-1)  # (T, B, D·H)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, True)
        return layer_input, torch.stack(h_n)


def _engine_layer(
    x: Tensor,
    h0: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None,
    b_hh: Tensor | None,
    lengths: Tensor | None,
    reset_after: bool,
    reverse: bool,
) -> tuple[Tensor, Tensor]:
    """One layer in one direction on the engine's custom operator: (output (T, B, H), h_n (B, H)).

    The operator keeps what its backward needs when a gradient may be asked for: in a trace
    that is decided once, by whether the weights require gradients (the trace records a
    constant).
    """
    if torch.jit.is_tracing():
        save = w_hh.requires_grad
    else:
        save = torch.is_grad_enabled() and (
            x.requires_grad or h0.requires_grad or w_ih.requires_grad or w_hh.requires_grad
        )
    output, h_n, _ = torch.ops.gru.sequence_forward(
        x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reset_after, reverse, save
    )
    return output, h_n


def _reset_before_layer(
    x: Tensor,
    h: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None,
    b_hh: Tensor | None,
    lengths: Tensor | None,
    reverse: bool,
) -> tuple[Tensor, Tensor]:
    """One reset-before layer in one direction from torch operations, where the engine does not
    run (other devices and dtypes), step by step as `gru.reference` writes the equations, each
    sequence to its length (B,) (None: all T): (output (T, B, H), h_n (B, H)); outputs past a
    sequence's length are zero, and its h_n is the state at its last step."""
    T = x.size(0)
    if reverse:
        x = composed.reverse_time(x, lengths)
    active: Tensor | None = None
    if lengths is not None:
        active = (torch.arange(T).unsqueeze(1) < lengths.unsqueeze(0)).to(x.device)  # (T, B)
    gx = _input_side(x, w_ih, b_ih, b_hh)  # for every step: (T, B, 3H)
    outputs: list[Tensor] = []
    for t in range(T):
        h_new = composed.reset_before_step(gx[t], h, w_hh)
        if active is None:
            h = h_new
            outputs.append(h)
        else:  # a finished sequence keeps its state and outputs zeros
            keep = active[t].unsqueeze(-1)  # (B, 1)
            h = torch.where(keep, h_new, h)
            outputs.append(torch.where(keep, h_new, torch.zeros_like(h_new)))
    output = torch.stack(outputs)  # (T, B, H)
    if reverse:
        output = composed.reverse_time(output, lengths)
    return output, h


def _input_side(x: Tensor, w_ih: Tensor, b_ih: Tensor | None, b_hh: Tensor | None) -> Tensor:
    """W_i x + b_i + b_h: with the reset gate before the product every bias sits outside it."""
    gx = F.linear(x, w_ih, b_ih)
    return gx if b_hh is None else gx + b_hh


class ScriptableGRUCell(nn.Module):
    """A `GRUCell` as TorchScript compiles it: the same Parameters, ``forward(input, hx=None)
    -> h'`` with the shapes of `GRUCell.forward`; torch's GRU cell for reset after, the step
    above for reset before. layer_norm and zoneout are refused (`refuse_scripting`)."""

    def __init__(self, module) -> None:
        super().__init__()
        found = [
            f"{n}={getattr(module, n)}" for n in ("layer_norm", "zoneout") if getattr(module, n)
        ]
        if found:
            refuse_scripting(
                "GRUCell", " and ".join(found), "the scripted cell computes the plain step",
                "use it in eager mode or under torch.compile, or a cell without it",
            )  # fmt: skip
        self.input_size: int = module.input_size
        self.hidden_size: int = module.hidden_size
        self.reset_after: bool = module.reset_after
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            self.register_parameter(name, getattr(module, name))  # the same Parameter, or None
        self.train(module.training)
        self._eager_module = (module,)  # not a submodule: the Parameters are registered above

    @torch.jit.unused
    def _eager(self, input: Tensor, hx: Tensor | None) -> Tensor:
        return self._eager_module[0](input, hx)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        if not torch.jit.is_scripting() and not torch.jit.is_tracing():
            return self._eager(input, hx)  # the GRUCell itself
        if not torch.jit.is_tracing() and (
            (input.dim() != 1 and input.dim() != 2) or input.size(-1) != self.input_size
        ):
            raise ValueError(
                "GRUCell.forward: input must be (B, input_size="
                + str(self.input_size)
                + ") or (input_size,) unbatched, got shape "
                + str(input.shape)
            )
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)
        if hx is None:
            h = x.new_zeros((x.size(0), self.hidden_size))
        else:
            h = hx if batched else hx.unsqueeze(0)
        if self.reset_after:
            h_new = torch.gru_cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        else:
            gx = _input_side(x, self.weight_ih, self.bias_ih, self.bias_hh)
            h_new = composed.reset_before_step(gx, h, self.weight_hh)
        return h_new if batched else h_new.squeeze(0)
