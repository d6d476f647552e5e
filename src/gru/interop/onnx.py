"""`gru.GRU` ↔ the ONNX ``GRU`` operator, both conventions, written node by node.

The graph is written with ``onnx.helper`` rather than traced by ``torch.onnx.export``, whose
exporters have written ``linear_before_reset=0`` for ``torch.nn.GRU`` (the wrong convention,
pytorch/pytorch#189225). Here the attribute is the layer's convention: 1 for reset after, 0 for
reset before.

Shapes: T time, B batch, I input features, H hidden units, L layers, D directions. ONNX packs
the gates ``z, r, h`` (`gru.interop.layout` converts them):

    W (D, 3H, I)   R (D, 3H, H)   B (D, 6H) = [Wb | Rb]   Y (T, D, B, H)   Y_h (D, B, H)

A layer of a `gru.GRU` is one ``GRU`` node (``direction="bidirectional"`` for D = 2); between
layers Y (T, D, B, H) becomes (T, B, D·H). The exported model has the inputs ``input``
((T, B, I), or (B, T, I) with batch_first, through Transpose nodes), optionally ``lengths``
(B,) int64 (the ``sequence_lens`` of every node) and ``h0`` (L·D, B, H), and the outputs
``output`` and ``h_n`` of `gru.GRU.forward`; batch and time are dynamic axes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gru._extras import require
from gru._io import atomic_write
from gru.interop.layout import (
    gru_from_packed,
    onnx_to_packed,
    packed_to_onnx,
    packed_weights,
    refuse_variants,
)
from gru.interop.modules import GoBackwards, KerasModel, Recurrent
from gru.interop.onnx_graph import extra_computation
from gru.nn import GRU

__all__ = ["DEFAULT_OPSET", "export_onnx", "load_onnx"]

DEFAULT_OPSET = 17
"""Opset written by default: supported by every ONNX Runtime since 1.11 (the GRU operator has
had its current meaning since opset 7; opset 13 fixed Softmax's axis semantics)."""
_MIN_OPSET = 13
_ACTIVATIONS = {nn.Sigmoid: "Sigmoid", nn.Tanh: "Tanh", nn.ReLU: "Relu"}
_PASS_THROUGH = ("Transpose", "Reshape", "Squeeze", "Identity")
_WRITING, _READING = "export_onnx: writing ONNX", "load_onnx: reading ONNX"


def _onnx(feature: str):
    """The onnx package, or `gru._extras.MissingExtra` naming the 'onnx' extra."""
    return require("onnx", "onnx", feature)


class _Graph:
    """Nodes, initializers and unique names of the graph being written."""

    def __init__(self) -> None:
        onnx = _onnx(_WRITING)
        self.helper, self.numpy_helper = onnx.helper, onnx.numpy_helper
        self.TensorProto = onnx.TensorProto
        self.nodes, self.initializers = [], []
        self.count = 0

    def name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}_{self.count}"

    def constant(self, stem: str, array) -> str:
        name = self.name(stem)
        self.initializers.append(self.numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], n_outputs: int = 1, **attrs) -> list[str]:
        outputs = [self.name(op.lower()) for _ in range(n_outputs)]
        self.nodes.append(self.helper.make_node(op, inputs, outputs, **attrs))
        return outputs

    def one(self, op: str, inputs: list[str], **attrs) -> str:
        return self.node(op, inputs, **attrs)[0]


def _gru_nodes(
    g: _Graph, gru: GRU, x: str, *, lengths: str | None, h0: str | None
) -> tuple[str, list[str]]:
    """GRU nodes for every layer of ``gru`` over x (T, B, I); returns (Y as (T, B, D·H), the
    Y_h (D, B, H) of every layer)."""
    D = 2 if gru.bidirectional else 1
    H = gru.hidden_size
    packed = packed_weights(gru)  # L·D tuples, layer-major
    y_h = []
    for layer in range(gru.num_layers):
        W, R, B = packed_to_onnx(packed[layer * D : (layer + 1) * D])  # (D, 3H, I), (D, 3H, H)
        inputs = [x, g.constant("W", W), g.constant("R", R)]
        inputs.append("" if B is None else g.constant("B", B))  # (D, 6H)
        inputs.append(lengths or "")
        if h0 is not None:
            starts, ends = g.constant("start", [layer * D]), g.constant("end", [(layer + 1) * D])
            inputs.append(g.one("Slice", [h0, starts, ends, g.constant("axis", [0])]))
        y, h = g.node(
            "GRU",
            inputs,
            2,
            hidden_size=H,
            direction="bidirectional" if D == 2 else "forward",
            linear_before_reset=int(gru.reset_after),
        )
        y = g.one("Transpose", [y], perm=[0, 2, 1, 3])  # (T, B, D, H)
        x = g.one("Reshape", [y, g.constant("shape", np.array([0, 0, -1], np.int64))])
        y_h.append(h)  # (D, B, H)
    return x, y_h  # (T, B, D·H)


def _check_gru(owner: str, gru: GRU) -> None:
    refuse_variants(owner, gru, inference_only=True)
    if gru.weight_ih_l0.dtype != torch.float32:
        raise ValueError(
            f"{owner}: ONNX Runtime's GRU computes in float32 and the layer is "
            f"{gru.weight_ih_l0.dtype}; export module.float()"
        )


def _export_gru(g: _Graph, gru: GRU, lengths: bool, initial_state: bool):
    helper, TensorProto = g.helper, g.TensorProto
    D = 2 if gru.bidirectional else 1
    LD = gru.num_layers * D
    x_dims = (
        ["batch", "time", gru.input_size] if gru.batch_first else ["time", "batch", gru.input_size]
    )
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, x_dims)]
    x = "input"
    if gru.batch_first:
        x = g.one("Transpose", [x], perm=[1, 0, 2])  # (T, B, I)
    seq = None
    if lengths:
        inputs.append(helper.make_tensor_value_info("lengths", TensorProto.INT64, ["batch"]))
        seq = g.one("Cast", ["lengths"], to=TensorProto.INT32)
    if initial_state:
        dims = [LD, "batch", gru.hidden_size]
        inputs.append(helper.make_tensor_value_info("h0", TensorProto.FLOAT, dims))
    y, y_h = _gru_nodes(g, gru, x, lengths=seq, h0="h0" if initial_state else None)
    if gru.batch_first:
        y = g.one("Transpose", [y], perm=[1, 0, 2])  # (B, T, D·H)
    g.nodes.append(helper.make_node("Identity", [y], ["output"]))
    g.nodes.append(
        helper.make_node("Concat", y_h, ["h_n"], axis=0)
        if len(y_h) > 1
        else helper.make_node("Identity", y_h, ["h_n"])
    )
    out_dims = [*x_dims[:2], D * gru.hidden_size]
    outputs = [
        helper.make_tensor_value_info("output", TensorProto.FLOAT, out_dims),
        helper.make_tensor_value_info("h_n", TensorProto.FLOAT, [LD, "batch", gru.hidden_size]),
    ]
    return inputs, outputs


def _recurrent_step(g: _Graph, step: Recurrent, x: str, dims: list) -> tuple[str, list]:
    """GRU nodes for a `Recurrent` step over x (B, T, I): returns (B, T, D·H) with
    return_sequences, else the last state (B, D·H), and the output's dims."""
    gru = step.gru
    _check_gru("export_onnx", gru)
    x = g.one("Transpose", [x], perm=[1, 0, 2])  # (T, B, I)
    if isinstance(step.layer, GoBackwards):  # Keras go_backwards: last step to first
        big = np.iinfo(np.int64).max
        start, end = g.constant("start", [-1]), g.constant("end", [-big])
        axis, stride = g.constant("axis", [0]), g.constant("step", [-1])
        x = g.one("Slice", [x, start, end, axis, stride])  # (T, B, I) reversed in time
    y, y_h = _gru_nodes(g, gru, x, lengths=None, h0=None)
    D = 2 if gru.bidirectional else 1
    if step.return_sequences:
        y = g.one("Transpose", [y], perm=[1, 0, 2])  # (B, T, D·H)
        return y, [*dims[:2], D * gru.hidden_size]
    last = g.one("Transpose", [y_h[-1]], perm=[1, 0, 2])  # (B, D, H)
    x = g.one("Reshape", [last, g.constant("shape", np.array([0, -1], np.int64))])
    return x, [dims[0], D * gru.hidden_size]  # (B, D·H)


def _export_keras_model(g: _Graph, model: KerasModel):
    """A `KerasModel` chain: Gather for Embedding, GRU nodes, MatMul + Add for Linear."""
    helper, TensorProto = g.helper, g.TensorProto
    if model.mask_zero:
        raise ValueError(
            "export_onnx: this KerasModel masks token 0 (Keras mask_zero=True), which the "
            "exported graph does not compute"
        )
    steps = list(model)
    if isinstance(steps[0], nn.Embedding):
        dims = ["batch", "time"]
        inputs = [helper.make_tensor_value_info("input", TensorProto.INT64, dims)]
    else:
        gru = steps[0].gru if isinstance(steps[0], Recurrent) else None
        if not isinstance(gru, GRU):
            raise ValueError(
                "export_onnx: a KerasModel must start with an Embedding or a GRU layer, "
                f"got {type(steps[0]).__name__}"
            )
        dims = ["batch", "time", gru.input_size]
        inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, dims)]
    x = "input"
    for step in steps:
        if isinstance(step, nn.Embedding):
            x = g.one("Gather", [g.constant("embedding", step.weight.detach().numpy()), x], axis=0)
            dims = [*dims, step.embedding_dim]  # (B, T, E)
        elif isinstance(step, Recurrent):
            x, dims = _recurrent_step(g, step, x, dims)
        elif isinstance(step, nn.Linear):
            x = g.one("MatMul", [x, g.constant("kernel", step.weight.detach().numpy().T)])
            if step.bias is not None:
                x = g.one("Add", [x, g.constant("bias", step.bias.detach().numpy())])
            dims = [*dims[:-1], step.out_features]
        elif isinstance(step, nn.Softmax):
            x = g.one("Softmax", [x], axis=-1)
        elif type(step) in _ACTIVATIONS:
            x = g.one(_ACTIVATIONS[type(step)], [x])
        elif isinstance(step, nn.Dropout):
            continue  # the identity at inference
        else:
            raise ValueError(f"export_onnx: cannot export a {type(step).__name__} step")
    g.nodes.append(helper.make_node("Identity", [x], ["output"]))
    return inputs, [helper.make_tensor_value_info("output", TensorProto.FLOAT, dims)]


def export_onnx(
    module: nn.Module,
    path,
    *,
    opset: int = DEFAULT_OPSET,
    lengths: bool = False,
    initial_state: bool = False,
) -> Path:
    """Write ``module`` as an ONNX model at ``path`` (atomically) and return the path.

    ``module`` is a `gru.GRU` (float32) or a `gru.interop.modules.KerasModel`. For a `gru.GRU`
    the model's inputs are ``input`` (as the layer takes it), ``lengths`` (B,) int64 when
    ``lengths=True`` (the layer's ``lengths=``), ``h0`` (L·D, B, H) when
    ``initial_state=True``, and its outputs ``output`` and ``h_n``, as `gru.GRU.forward`.
    A KerasModel takes ``input`` (token ids (B, T) or features (B, T, I)) and gives ``output``.
    The model passes ``onnx.checker.check_model``. Needs the 'onnx' extra.
    """
    onnx = _onnx(_WRITING)

    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not _MIN_OPSET <= opset <= newest:
        raise ValueError(
            f"export_onnx: opset must be an int in [{_MIN_OPSET}, {newest}], got {opset!r}"
        )
    g = _Graph()
    if isinstance(module, GRU):
        _check_gru("export_onnx", module)
        inputs, outputs = _export_gru(g, module, lengths, initial_state)
        name = "gru"
    elif isinstance(module, KerasModel):
        if lengths or initial_state:
            raise ValueError("export_onnx: lengths and initial_state apply to a gru.GRU only")
        inputs, outputs = _export_keras_model(g, module)
        name = "keras_model"
    else:
        raise TypeError(
            f"export_onnx: module must be a gru.GRU or a KerasModel, got {type(module).__name__}"
        )
    graph = g.helper.make_graph(g.nodes, name, inputs, outputs, g.initializers)
    opsets = [g.helper.make_opsetid("", opset)]
    model = g.helper.make_model(
        graph,
        opset_imports=opsets,
        ir_version=g.helper.find_min_ir_version_for(opsets),
        producer_name="gru",
    )
    onnx.checker.check_model(model, full_check=True)
    data = model.SerializeToString()
    return atomic_write(path, lambda file: file.write(data))


# --- reading ------------------------------------------------------------------------------


def _attributes(node) -> dict:
    helper = _onnx(_READING).helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _check_node(where: str, node, attrs: dict) -> None:
    """Refuse a GRU node whose computation gru.GRU does not have."""
    for key in ("clip", "activation_alpha", "activation_beta"):
        if key in attrs:
            raise ValueError(
                f"{where}: GRU node {node.name or node.output[0]!r} sets {key}={attrs[key]!r}, "
                "which gru.GRU does not compute; refusing to convert approximately"
            )
    if "activations" in attrs:
        D = 2 if _text(attrs.get("direction", "forward")) == "bidirectional" else 1
        given = [_text(a) for a in attrs["activations"]]
        if [a.lower() for a in given] != ["sigmoid", "tanh"] * D:
            raise ValueError(
                f"{where}: GRU node {node.name or node.output[0]!r} has activations={given}; "
                f"gru.GRU computes only {['Sigmoid', 'Tanh'] * D}"
            )


def load_onnx(path) -> GRU:
    """The `gru.GRU` computed by the GRU node(s) of an ONNX model.

    One node gives a one-layer GRU; several give a multi-layer GRU when each reads the
    previous one's Y (through Transpose/Reshape/Squeeze) and all share hidden_size,
    direction, linear_before_reset and the presence of B. W, R and B must be initializers or
    Constants. ``batch_first`` is True when the first node has layout=1 or reads a graph input
    through a (1, 0, 2) Transpose. Raises ValueError for a file that is not ONNX, a model
    without a GRU node, or attributes gru.GRU does not compute (clip, other activations,
    direction="reverse"), and for a model that computes more than its GRU layers (an
    embedding, a dense layer, ...: see `gru.interop.onnx_graph`), which one `gru.GRU` would
    cut down. Needs the 'onnx' extra.
    """
    graph, where = _read_graph(path)
    values, producers = _values_and_producers(graph)
    nodes = [node for node in graph.node if node.op_type == "GRU"]
    if not nodes:
        ops = sorted({node.op_type for node in graph.node})
        raise ValueError(f"{where}: has no GRU node (its operators: {', '.join(ops)})")
    extra = extra_computation(graph, values)
    if extra:
        raise ValueError(
            f"{where}: computes more than GRU layers ({', '.join(extra[:6])}"
            f"{', ...' if len(extra) > 6 else ''}: {len(extra)} nodes), which reading it as a "
            "gru.GRU would drop; only an ONNX model of GRU layers converts to one"
        )
    layers = []
    for index, node in enumerate(nodes):
        attrs, W, R, B = _node_weights(where, node, values)
        if index > 0 and _source(node.input[0], producers) is not nodes[index - 1]:
            raise ValueError(
                f"{where}: holds {len(nodes)} GRU nodes and node {index} does not read the "
                f"output of node {index - 1}; only a stack of GRU layers converts"
            )
        layers.append(_node_layer(where, node, attrs, W, R, B))
    _check_stack(where, layers)
    first = layers[0]
    return gru_from_packed(
        [w for layer in layers for w in layer.weights],
        input_size=int(first.input_size),
        num_layers=len(layers),
        batch_first=_batch_first(graph, nodes[0], first.attrs, producers),
        dtype={"float32": torch.float32, "float64": torch.float64}[first.dtype.name],
        **first.config,
    )


def _read_graph(path) -> tuple:
    """(the graph of the ONNX model at ``path``, the file's name for errors), checked to be one."""
    onnx = _onnx(_READING)
    path = Path(path)
    where = f"load_onnx: {str(path)!r}"
    if path.is_dir():
        raise IsADirectoryError(f"{where}: is a folder, not an ONNX file")
    if not path.is_file():
        raise FileNotFoundError(f"load_onnx: no such file {str(path)!r}")
    try:
        model = onnx.load(os.fspath(path))
    except Exception as error:  # protobuf raises its own DecodeError, onnx others
        raise ValueError(
            f"{where}: is not an ONNX model ({type(error).__name__}: {error})"
        ) from None
    if not model.graph.node:
        raise ValueError(f"{where}: is not an ONNX model (its graph has no nodes)")
    return model.graph, where


def _values_and_producers(graph) -> tuple[dict, dict]:
    """({name: array} of every initializer and Constant, {tensor name: the node computing it})."""
    numpy_helper = _onnx(_READING).numpy_helper
    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    producers = {}
    for node in graph.node:
        if node.op_type == "Constant":
            values[node.output[0]] = numpy_helper.to_array(_attributes(node)["value"])
        for output in node.output:
            producers[output] = node
    return values, producers


def _source(name: str, producers: dict):
    """Follow Transpose/Reshape/Squeeze/Identity back to the node that computed ``name``."""
    node = producers.get(name)
    while node is not None and node.op_type in _PASS_THROUGH:
        node = producers.get(node.input[0])
    return node


def _node_weights(where: str, node, values: dict) -> tuple:
    """(attributes, W, R, B or None) of a GRU node that gru.GRU computes, weights stored."""
    attrs = _attributes(node)
    _check_node(where, node, attrs)
    direction = _text(attrs.get("direction", "forward"))
    if direction not in ("forward", "bidirectional"):
        raise ValueError(
            f"{where}: GRU node {node.name or node.output[0]!r} has direction={direction!r}; "
            "gru.GRU has forward and bidirectional layers (flip the input for reverse)"
        )
    inputs = list(node.input) + [""] * (6 - len(node.input))
    for slot, what in ((1, "W"), (2, "R"), (3, "B")):
        if inputs[slot] and inputs[slot] not in values:
            raise ValueError(
                f"{where}: GRU node {node.name or node.output[0]!r} computes {what}; only "
                "weights stored as initializers or Constants can be read"
            )
    B = values[inputs[3]] if inputs[3] else None
    return attrs, values[inputs[1]], values[inputs[2]], B


@dataclass
class _NodeLayer:
    """One GRU node as a layer of `gru.GRU`: its configuration and packed weights."""

    config: dict  # hidden_size, bidirectional, reset_after, bias
    weights: list  # D packed (w_ih, w_hh, b_ih, b_hh) tuples
    input_size: int
    dtype: np.dtype
    attrs: dict


def _node_layer(where: str, node, attrs: dict, W, R, B) -> _NodeLayer:
    """A GRU node's weights W (D, 3H, I), R (D, 3H, H), B (D, 6H), checked and packed."""
    D = 2 if _text(attrs.get("direction", "forward")) == "bidirectional" else 1
    H = int(attrs.get("hidden_size", R.shape[-1] if R.ndim == 3 else 0))
    if R.shape != (D, 3 * H, H) or W.ndim != 3 or W.shape[:2] != (D, 3 * H):
        raise ValueError(
            f"{where}: GRU node {node.name or node.output[0]!r} with D={D}, hidden_size={H} "
            f"needs W (D, 3H, I) and R {(D, 3 * H, H)}, got W {W.shape} and R {R.shape}"
        )
    if B is not None and B.shape != (D, 6 * H):
        raise ValueError(f"{where}: B must have shape {(D, 6 * H)}, got {B.shape}")
    config = {
        "hidden_size": H,
        "bidirectional": D == 2,
        "reset_after": bool(attrs.get("linear_before_reset", 0)),
        "bias": B is not None,
    }
    return _NodeLayer(config, onnx_to_packed(W, R, B), W.shape[2], W.dtype, attrs)


def _check_stack(where: str, layers: list[_NodeLayer]) -> None:
    """Refuse GRU nodes that are not the layers of one `gru.GRU`: one configuration, each
    taking the features the one before gives, in float32 or float64."""
    first = layers[0]
    for index, layer in enumerate(layers[1:], start=1):
        if layer.config != first.config:
            raise ValueError(
                f"{where}: GRU node {index} has {layer.config} but node 0 has {first.config}; "
                "gru.GRU's layers share one configuration"
            )
        D = 2 if layer.config["bidirectional"] else 1
        if layer.input_size != D * layer.config["hidden_size"]:
            raise ValueError(
                f"{where}: GRU node {index} takes {layer.input_size} features, node "
                f"{index - 1} gives {D * layer.config['hidden_size']}"
            )
    if first.dtype.name not in ("float32", "float64"):
        raise ValueError(
            f"{where}: the weights are {first.dtype.name}; expected float32 or float64"
        )


def _batch_first(graph, first_node, attrs: dict, producers: dict) -> bool:
    """Whether the first GRU node reads batch-first input: layout=1, or a graph input through
    a (1, 0, 2) Transpose."""
    producer = producers.get(first_node.input[0])
    return bool(attrs.get("layout", 0)) or (
        producer is not None
        and producer.op_type == "Transpose"
        and list(_attributes(producer).get("perm", [])) == [1, 0, 2]
        and producer.input[0] in {i.name for i in graph.input}
    )
