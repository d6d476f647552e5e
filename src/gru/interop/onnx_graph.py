"""What an ONNX graph computes besides its GRU nodes.

`gru.interop.onnx.load_onnx` reads the GRU layers of a graph. A graph that computes anything
else on the data's way from its inputs to its outputs (an embedding's Gather, a Dense layer's
MatMul and Add, an activation) is a larger model, which one `gru.GRU` would silently cut down;
`extra_computation` names those nodes so that the reader can refuse it.

A tensor is data when it is a graph input (not an initializer) or is computed from data.
``Shape`` and ``Size`` give a tensor's shape, not its values, so what an exporter computes from
the batch size (the zeros of an initial state) is not data. On the data's way only GRU nodes
and the operators that move values without computing new ones are allowed; a ``Slice`` that
runs backwards (Keras' go_backwards reverses time that way) computes another model and counts
as extra too. Nothing here imports onnx: the nodes are read through their fields.
"""

from __future__ import annotations

import numpy as np

__all__ = ["extra_computation"]

_LAYOUT = frozenset(
    {"GRU", "Transpose", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Cast", "Concat", "Slice"}
)
_SHAPE_ONLY = frozenset({"Shape", "Size"})


def extra_computation(graph, values: dict) -> list[str]:
    """The nodes of ``graph`` on the data's way that are neither a GRU node nor a layout
    operator, each as ``"OpType 'name'"``, in the graph's order. ``values`` holds the
    initializers and Constants by name."""
    data = {tensor.name for tensor in graph.input} - set(values)
    extra = []
    for node in graph.node:  # an ONNX graph lists its nodes in topological order
        if node.op_type in _SHAPE_ONLY or not any(name in data for name in node.input):
            continue
        data.update(name for name in node.output if name)
        if node.op_type not in _LAYOUT or _runs_backwards(node, values):
            extra.append(f"{node.op_type} {node.name or node.output[0]!r}")
    return extra


def _runs_backwards(node, values: dict) -> bool:
    """Whether ``node`` is a Slice whose steps (its fifth input) may be negative."""
    if node.op_type != "Slice" or len(node.input) < 5 or not node.input[4]:
        return False
    steps = values.get(node.input[4])
    return steps is None or bool((np.asarray(steps) < 0).any())
