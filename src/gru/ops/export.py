"""`gru.GRU` under ``torch.onnx.export``: native ONNX ``GRU`` nodes, one per layer.

The engine is NumPy behind a custom op that no exporter can translate, so while
`torch.onnx.is_in_onnx_export()` is true the layer's forward calls `onnx_stack` instead, which
writes what ONNX Runtime, OpenVINO and every other ONNX backend run natively. torch 2.13 has
two exporters, and each needs its own way to put an arbitrary node in the graph:

    dynamo=True (the default)   traces the forward with torch.export (FX):
                                `torch.onnx.ops.symbolic_multi_out` is an FX op that the
                                exporter writes as the ONNX node it names
    dynamo=False                traces the forward with torch.jit (`torch.jit.is_tracing()`
                                is true): an autograd Function whose ``symbolic`` writes the
                                node; the TorchScript exporter translates no FX symbolic op

In both, the node's outputs are placeholders (zeros) while tracing: the exporter needs their
shapes, not their values. Eager, ``torch.compile`` and ``torch.export`` never come here.

The ONNX ``GRU`` operator computes both conventions (``linear_before_reset`` = 1 is reset
after, 0 reset before: ONNX's h_t = tanh(W_h x_t + W_bh + R_h (r_t ⊙ h_{t-1}) + R_bh) is the
reset-before equation) and packs the gates ``z, r, h`` (`gru.reference.GATE_ORDERS`):

    X (T, B, I)   W (D, 3H, I)   R (D, 3H, H)   B (D, 6H) = [b_ih | b_hh]
    sequence_lens (B,) int32   initial_h (D, B, H)   →   Y (T, D, B, H)   Y_h (D, B, H)

Shapes: T time steps, B batch, I input features, H hidden units, L layers, D directions.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gru.reference import GATE_ORDERS

__all__ = ["exporting_to_onnx", "onnx_stack", "refuse_for_onnx"]

_TO_ONNX = [GATE_ORDERS["gru"].index(gate) for gate in GATE_ORDERS["onnx"]]
"""For each block of ONNX's packing, the block of ours that goes there."""

_REASONS = {
    "layer_norm": "ONNX's GRU operator has no layer normalization",
    "zoneout": "zoneout keeps p of the previous state at inference too, which ONNX's GRU "
    "operator does not compute",
    "recurrent_dropout": "recurrent dropout acts in training mode only; call model.eval() "
    "before exporting",
    "dropout": "dropout between layers acts in training mode only; call model.eval() before "
    "exporting",
}


@torch.compiler.assume_constant_result
def exporting_to_onnx() -> bool:
    """Whether ``torch.onnx.export`` is tracing the model now.

    Dynamo reads `torch.onnx.is_in_onnx_export()` as False while it traces, and the default
    exporter falls back to ``torch.export(strict=True)`` (Dynamo) when its first try fails:
    there a layer that ONNX cannot compute would have taken the composed operations, for
    the traced length only, instead of being refused. Called here, Dynamo evaluates the
    function as it stands (False under torch.compile and torch.export, True under
    torch.onnx.export) and keeps the answer as a constant.
    """
    return torch.onnx.is_in_onnx_export()


def refuse_for_onnx(owner: str, settings: list[str]) -> None:
    """Refuse to export a layer with ``settings`` (``"zoneout=0.1"``, …) that ONNX's GRU does
    not compute: a ValueError naming the first one and why."""
    if settings:
        name = settings[0].split("=")[0]
        raise ValueError(
            f"{owner}: cannot export {settings[0]} to ONNX: {_REASONS[name]}; export a layer "
            f"without {name} (all options that stop it: {', '.join(settings)})"
        )


def _reorder(w: Tensor) -> Tensor:
    """The three gate blocks of w (3H, …) from our order to ONNX's."""
    H = w.shape[0] // 3
    return torch.cat([w[i * H : (i + 1) * H] for i in _TO_ONNX])  # (3H, …)


def _node_weights(directions: list[tuple]) -> tuple[Tensor, Tensor, Tensor | None]:
    """One layer's (w_ih, w_hh, b_ih, b_hh) per direction as the node's W, R and B."""
    W = torch.stack([_reorder(w_ih) for w_ih, _, _, _ in directions])  # (D, 3H, I)
    R = torch.stack([_reorder(w_hh) for _, w_hh, _, _ in directions])  # (D, 3H, H)
    if directions[0][2] is None:
        return W, R, None
    biases = [torch.cat([_reorder(b_ih), _reorder(b_hh)]) for _, _, b_ih, b_hh in directions]
    return W, R, torch.stack(biases)  # B (D, 6H)


def _attributes(hidden_size: int, bidirectional: bool, reset_after: bool) -> dict:
    return {
        "hidden_size": hidden_size,
        "direction": "bidirectional" if bidirectional else "forward",
        "linear_before_reset": int(reset_after),
    }


class _TracedNode(torch.autograd.Function):
    """The GRU node for the TorchScript exporter (dynamo=False): its ``symbolic`` writes it."""

    @staticmethod
    def forward(ctx, x, W, R, B, seq, h0, hidden_size, bidirectional, reset_after):
        T, batch, D = x.shape[0], x.shape[1], W.shape[0]
        return x.new_zeros(T, D, batch, hidden_size), x.new_zeros(D, batch, hidden_size)

    @staticmethod
    def symbolic(g, x, W, R, B, seq, h0, hidden_size, bidirectional, reset_after):
        def given(value):  # an absent optional input of an ONNX node
            if value is not None:
                return value
            missing = g.op("prim::Constant")
            missing.setType(torch._C.OptionalType.ofTensor())
            return missing

        attrs = _attributes(hidden_size, bidirectional, reset_after)
        return g.op(
            "GRU", x, W, R, given(B), given(seq), given(h0),
            hidden_size_i=attrs["hidden_size"], direction_s=attrs["direction"],
            linear_before_reset_i=attrs["linear_before_reset"], outputs=2,
        )  # fmt: skip


def _node(x, W, R, B, seq, h0, *, hidden_size, bidirectional, reset_after):
    """One ONNX GRU node over x (T, B, I): (Y (T, D, B, H), Y_h (D, B, H))."""
    if torch.jit.is_tracing():
        return _TracedNode.apply(x, W, R, B, seq, h0, hidden_size, bidirectional, reset_after)
    T, batch, D = x.shape[0], x.shape[1], W.shape[0]
    y, h = torch.onnx.ops.symbolic_multi_out(
        "GRU",
        [x, W, R, B, seq, h0],
        _attributes(hidden_size, bidirectional, reset_after),
        dtypes=[x.dtype, x.dtype],
        shapes=[[T, D, batch, hidden_size], [D, batch, hidden_size]],
    )
    return y, h


def onnx_stack(
    x: Tensor,
    h0: Tensor | None,
    lengths,
    weights: list[tuple],
    *,
    hidden_size: int,
    num_layers: int,
    bidirectional: bool,
    reset_after: bool,
) -> tuple[Tensor, Tensor]:
    """A stack of GRU layers over x (T, B, I) as ONNX GRU nodes, one per layer, chained.

    ``weights`` holds (w_ih, w_hh, b_ih, b_hh) per layer and direction (layer-major, forward
    first, biases None without bias), packed ``[r | z | n]``; ``h0`` is (L·D, B, H) or None;
    ``lengths`` (B,) integers or None becomes every node's ``sequence_lens``. Returns
    (output (T, B, D·H), h_n (L·D, B, H)), as `gru.GRU` computes them in evaluation mode
    (no dropout between layers).
    """
    D = 2 if bidirectional else 1
    seq = None if lengths is None else torch.as_tensor(lengths).to(torch.int32)  # (B,)
    h_n = []
    for layer in range(num_layers):
        W, R, B = _node_weights(weights[layer * D : (layer + 1) * D])
        start = None if h0 is None else h0[layer * D : (layer + 1) * D]  # (D, B, H)
        y, h = _node(
            x, W, R, B, seq, start,
            hidden_size=hidden_size, bidirectional=bidirectional, reset_after=reset_after,
        )  # fmt: skip
        x = y.permute(0, 2, 1, 3).flatten(2)  # (T, D, B, H) -> (T, B, D·H)
        h_n.append(h)
    return x, torch.cat(h_n)  # (T, B, D·H), (L·D, B, H)
