"""Keras GRU layers and models ↔ `gru.GRU` and PyTorch modules, exactly, without Keras installed.

Keras files are read with zipfile and h5py: a ``.keras`` archive (``config.json`` and
``model.weights.h5``), a Keras 3 ``.weights.h5`` file (weights only), or a Keras 2 ``.h5`` file
(``model_weights`` with ``layer_names``/``weight_names`` attributes and, for a whole model, the
``model_config`` attribute). A Keras layer or model object is read through ``get_config()`` and
``get_weights()``.

Shapes: B batch, T time, I input features, H hidden units, D directions (2 if bidirectional).
Keras packs the gates ``z, r, h`` along the last axis of its weights; `gru.interop.layout` holds
the table:

    kernel (I, 3H)   recurrent_kernel (H, 3H)   bias (3H,), or (2, 3H) when reset_after
                                                 (row 0 the input bias, row 1 the recurrent one)

Keras ``reset_after=True`` is ``gru.GRU(reset_after=True)`` with b_ih = bias[0] and
b_hh = bias[1]. Keras ``reset_after=False`` has one bias, added with the input projection: it is
``gru.GRU(reset_after=False)`` with b_ih = bias and b_hh = 0 (in the reset-before convention
every bias sits outside r, so only b_ih + b_hh matters). ``use_bias=False`` is ``bias=False``.

Keras ``go_backwards=True`` reads the sequence from its last step to its first and, with
``return_sequences``, returns the outputs in that reversed order. `GoBackwards` computes exactly
this around a `gru.GRU`: it flips the input in time and returns the outputs as computed.

Anything that cannot be represented exactly is refused with a ValueError naming the layer and
the setting: an activation other than tanh, a recurrent activation other than sigmoid, a
dtype policy other than float32/float64, a Bidirectional merge mode other than concat, a layer
type that is not Embedding, GRU, Bidirectional(GRU), Dense or Dropout, and an Embedding
``mask_zero=True`` whose mask reaches the model's output or a go_backwards GRU (see
`KerasModel` for the masks that are reproduced).
"""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from gru._io import atomic_write
from gru.interop.layout import gru_from_packed, refuse_variants, reorder
from gru.nn import GRU

__all__ = [
    "GoBackwards",
    "KerasModel",
    "from_keras",
    "keras_to_packed",
    "load_model",
    "packed_to_keras",
    "save_keras",
    "to_keras_weights",
]

_RECURRENT = ("GRU", "Bidirectional")
_DENSE_ACTIVATIONS = {
    "linear": None,
    "sigmoid": nn.Sigmoid,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "softmax": lambda: nn.Softmax(dim=-1),
}
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


# --- pure conversions of arrays ---------------------------------------------------------------


def _packed_from_keras(arrays, reset_after: bool, where: str) -> tuple:
    """Keras (kernel, recurrent_kernel[, bias]) -> packed (w_ih, w_hh, b_ih, b_hh), checked."""
    if len(arrays) not in (2, 3):
        raise ValueError(
            f"{where}: a GRU direction has 2 weights (kernel, recurrent_kernel) or 3 (with "
            f"bias), got {len(arrays)}"
        )
    kernel, recurrent = (np.asarray(a) for a in arrays[:2])
    bias = np.asarray(arrays[2]) if len(arrays) == 3 else None
    if recurrent.ndim != 2 or recurrent.shape[1] != 3 * recurrent.shape[0]:
        raise ValueError(
            f"{where}: recurrent_kernel must have shape (H, 3H), got {recurrent.shape}; "
            "is this a GRU's weights?"
        )
    H = recurrent.shape[0]
    if kernel.ndim != 2 or kernel.shape[1] != 3 * H:
        raise ValueError(
            f"{where}: kernel must have shape (I, 3H) = (I, {3 * H}) to fit recurrent_kernel "
            f"{recurrent.shape}, got {kernel.shape}"
        )
    w_ih = reorder(kernel.T, "keras", "gru")  # (3H, I)
    w_hh = reorder(recurrent.T, "keras", "gru")  # (3H, H)
    if bias is None:
        return w_ih, w_hh, None, None
    expected = (2, 3 * H) if reset_after else (3 * H,)
    if bias.shape != expected:
        hint = (
            "; a (2, 3H) bias belongs to reset_after=True"
            if bias.shape == (2, 3 * H)
            else "; a (3H,) bias belongs to reset_after=False"
            if bias.shape == (3 * H,)
            else ""
        )
        raise ValueError(
            f"{where}: bias must have shape {expected} for reset_after={reset_after} and "
            f"H={H}, got {bias.shape}{hint}"
        )
    if reset_after:
        b_ih = reorder(bias[0], "keras", "gru")  # (3H,)
        b_hh = reorder(bias[1], "keras", "gru")  # (3H,)
    else:
        b_ih = reorder(bias, "keras", "gru")  # (3H,)
        b_hh = np.zeros_like(b_ih)  # every bias sits outside r: one vector is enough
    return w_ih, w_hh, b_ih, b_hh


def keras_to_packed(kernel, recurrent_kernel, bias=None, *, reset_after: bool) -> tuple:
    """One Keras GRU direction's weights in `gru.GRU`'s packing.

    Takes kernel (I, 3H), recurrent_kernel (H, 3H) and bias (2, 3H) when ``reset_after`` or
    (3H,) when not, or None (``use_bias=False``), gates in Keras order ``z, r, h``. Returns
    ``(w_ih (3H, I), w_hh (3H, H), b_ih (3H,), b_hh (3H,))`` in order ``r, z, n``; the biases
    are None without a bias, and b_hh is zero for ``reset_after=False``.
    """
    arrays = [kernel, recurrent_kernel] + ([] if bias is None else [bias])
    return _packed_from_keras(arrays, bool(reset_after), "keras_to_packed")


def packed_to_keras(w_ih, w_hh, b_ih=None, b_hh=None, *, reset_after: bool) -> list[np.ndarray]:
    """The inverse of `keras_to_packed`: ``[kernel (I, 3H), recurrent_kernel (H, 3H)]`` plus
    the bias ((2, 3H) when ``reset_after``, else (3H,)) when the biases are given.

    For ``reset_after=False`` the Keras bias is b_ih + b_hh, which computes the same layer
    because in that convention every bias is added outside the reset gate.
    """
    w_ih, w_hh = np.asarray(w_ih), np.asarray(w_hh)
    if w_hh.ndim != 2 or w_hh.shape[0] != 3 * w_hh.shape[1]:
        raise ValueError(f"packed_to_keras: w_hh must have shape (3H, H), got {w_hh.shape}")
    H = w_hh.shape[1]
    if w_ih.ndim != 2 or w_ih.shape[0] != 3 * H:
        raise ValueError(
            f"packed_to_keras: w_ih must have shape (3H, I) = ({3 * H}, I), got {w_ih.shape}"
        )
    out = [reorder(w_ih, "gru", "keras").T, reorder(w_hh, "gru", "keras").T]  # (I, 3H), (H, 3H)
    if (b_ih is None) != (b_hh is None):
        raise ValueError("packed_to_keras: give both b_ih and b_hh, or neither")
    if b_ih is None:
        return [np.ascontiguousarray(a) for a in out]
    b_ih, b_hh = np.asarray(b_ih), np.asarray(b_hh)
    for name, b in (("b_ih", b_ih), ("b_hh", b_hh)):
        if b.shape != (3 * H,):
            raise ValueError(f"packed_to_keras: {name} must have shape ({3 * H},), got {b.shape}")
    if reset_after:
        bias = np.stack([reorder(b_ih, "gru", "keras"), reorder(b_hh, "gru", "keras")])  # (2, 3H)
    else:
        bias = reorder(b_ih + b_hh, "gru", "keras")  # (3H,)
    return [np.ascontiguousarray(a) for a in [*out, bias]]


# --- Keras layers as read from anywhere -----------------------------------------------------


@dataclass
class _Layer:
    """One Keras layer: its class name, its config (empty when the file has none) and weights."""

    name: str
    kind: str
    config: dict
    weights: list = field(default_factory=list)
    inbound: str | None = None  # the layer it reads from, in a functional model


@dataclass
class _Recurrent:
    """A checked Keras GRU or Bidirectional(GRU) layer, weights already in packed order."""

    name: str
    input_size: int
    hidden_size: int
    bias: bool
    reset_after: bool
    bidirectional: bool
    go_backwards: bool
    return_sequences: bool | None  # None when the file does not say
    directions: list  # [(w_ih, w_hh, b_ih, b_hh)] per direction


def _dtype_name(config: dict) -> str:
    dtype = config.get("dtype", "float32")
    if isinstance(dtype, dict):
        dtype = dtype.get("config", {}).get("name", dtype.get("class_name"))
    return str(dtype)


def _check_setting(where: str, config: dict, key: str, allowed, default) -> None:
    value = config.get(key, default)
    if value != allowed:
        raise ValueError(
            f"{where}: {key}={value!r} cannot be represented exactly (gru supports only "
            f"{key}={allowed!r}); refusing to convert approximately"
        )


def _check_dtype(where: str, config: dict) -> None:
    if _dtype_name(config) not in _DTYPES:
        raise ValueError(
            f"{where}: dtype policy {_dtype_name(config)!r} cannot be represented exactly "
            f"(supported: {', '.join(_DTYPES)}); refusing to convert approximately"
        )


def _check_gru_config(where: str, config: dict) -> None:
    _check_setting(where, config, "activation", "tanh", "tanh")
    _check_setting(where, config, "recurrent_activation", "sigmoid", "sigmoid")
    _check_setting(where, config, "time_major", False, False)
    _check_dtype(where, config)


def _recurrent(layer: _Layer, where: str, reset_after: bool | None = None) -> _Recurrent:
    """Check a GRU or Bidirectional(GRU) layer and convert its weights to packed order."""
    where = f"{where}: layer {layer.name!r}"
    config = layer.config
    bidirectional = layer.kind == "Bidirectional"
    go_backwards = False
    if bidirectional:
        inner = config.get("layer", {"class_name": "GRU", "config": {}})
        if inner.get("class_name") != "GRU":
            raise ValueError(
                f"{where}: Bidirectional wraps a {inner.get('class_name')}, not a GRU; only "
                "Bidirectional(GRU) converts"
            )
        _check_setting(where, config, "merge_mode", "concat", "concat")
        gru_config = inner.get("config", {})
        if gru_config.get("go_backwards", False):
            raise ValueError(
                f"{where}: the wrapped GRU has go_backwards=True, which swaps the two "
                "directions of a Bidirectional; build it with go_backwards=False"
            )
        backward = config.get("backward_layer")
        if backward is not None:
            if backward.get("class_name") != "GRU":
                raise ValueError(f"{where}: backward_layer must be a GRU")
            back = backward.get("config", {})
            _check_gru_config(f"{where} (backward_layer)", back)
            for key in ("units", "use_bias", "reset_after"):
                if key in back and key in gru_config and back[key] != gru_config[key]:
                    raise ValueError(
                        f"{where}: the backward_layer has {key}={back[key]!r} but the forward "
                        f"layer has {key}={gru_config[key]!r}; gru.GRU needs both the same"
                    )
    else:
        gru_config = config
        go_backwards = bool(config.get("go_backwards", False))
    _check_gru_config(where, gru_config)
    if gru_config.get("return_state", False):
        raise ValueError(f"{where}: return_state=True is not supported; save it without")

    D = 2 if bidirectional else 1
    n = len(layer.weights)
    if n not in (2 * D, 3 * D):
        raise ValueError(
            f"{where}: expected {2 * D} or {3 * D} weight arrays for a "
            f"{'Bidirectional(GRU)' if bidirectional else 'GRU'}, got {n} with shapes "
            f"{[np.shape(w) for w in layer.weights]}"
        )
    per_direction = n // D
    has_bias = per_direction == 3
    if "use_bias" in gru_config and bool(gru_config["use_bias"]) != has_bias:
        raise ValueError(
            f"{where}: use_bias={gru_config['use_bias']} but the file holds "
            f"{per_direction} weights per direction"
        )
    if "reset_after" in gru_config:
        config_reset_after = bool(gru_config["reset_after"])
        if reset_after is not None and bool(reset_after) != config_reset_after:
            raise ValueError(
                f"{where}: reset_after={reset_after} was given but the layer has "
                f"reset_after={config_reset_after}"
            )
        reset_after = config_reset_after
    elif reset_after is None:
        if not has_bias:
            raise ValueError(
                f"{where}: the convention cannot be read from weights without a bias and no "
                "configuration; pass reset_after=True or False"
            )
        reset_after = np.ndim(layer.weights[2]) == 2  # (2, 3H) only when reset_after

    directions = [
        _packed_from_keras(
            layer.weights[d * per_direction : (d + 1) * per_direction],
            bool(reset_after),
            where + (" (backward)" if d else ""),
        )
        for d in range(D)
    ]
    I, H = directions[0][0].shape[1], directions[0][1].shape[1]
    if "units" in gru_config and int(gru_config["units"]) != H:
        raise ValueError(f"{where}: units={gru_config['units']} but the weights have H={H}")
    if D == 2 and directions[1][0].shape != directions[0][0].shape:
        raise ValueError(
            f"{where}: the backward kernel is {layer.weights[per_direction].shape}, the forward "
            f"one {layer.weights[0].shape}; both directions must have the same shapes"
        )
    return _Recurrent(
        name=layer.name,
        input_size=I,
        hidden_size=H,
        bias=has_bias,
        reset_after=bool(reset_after),
        bidirectional=bidirectional,
        go_backwards=go_backwards,
        return_sequences=gru_config.get("return_sequences"),
        directions=directions,
    )


# --- modules ------------------------------------------------------------------------------


class GoBackwards(nn.Module):
    """A Keras GRU with ``go_backwards=True``: a `gru.GRU` run over the input reversed in time.

    ``forward(input, hx=None)`` takes what the wrapped layer takes and returns
    ``(output, h_n)``, with output in the order Keras returns it: output[:, t] is the state
    after reading input[:, T-1-t] (batch first; time is the first axis without batch_first or
    for unbatched input). h_n is the state after reading input[:, 0].
    """

    def __init__(self, gru: GRU) -> None:
        super().__init__()
        if not isinstance(gru, GRU):
            raise TypeError(f"GoBackwards: gru must be a gru.GRU, got {type(gru).__name__}")
        self.gru = gru

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        time = 1 if self.gru.batch_first and input.dim() == 3 else 0
        return self.gru(input.flip(time), hx)


def _as_tensor(array: np.ndarray, dtype: torch.dtype) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).to(dtype)


def _weights_dtype(stack: list[_Recurrent], where: str) -> torch.dtype:
    dtype = np.result_type(*[w for r in stack for d in r.directions for w in d if w is not None])
    if dtype.name not in _DTYPES:
        raise ValueError(
            f"{where}: the weights are {dtype.name}; gru converts float32 and float64 exactly"
        )
    return _DTYPES[dtype.name]


def _build(stack: list[_Recurrent], where: str) -> GRU | GoBackwards:
    """The `gru.GRU` (batch first, as Keras) holding a checked stack of Keras layers."""
    first = stack[0]
    module = gru_from_packed(
        [weights for recurrent in stack for weights in recurrent.directions],
        input_size=first.input_size,
        hidden_size=first.hidden_size,
        num_layers=len(stack),
        bias=first.bias,
        batch_first=True,
        bidirectional=first.bidirectional,
        reset_after=first.reset_after,
        dtype=_weights_dtype(stack, where),
    )
    return GoBackwards(module) if first.go_backwards else module


def _stack_problem(layers: list[_Layer], stack: list[_Recurrent]) -> str | None:
    """Why the recurrent layers in ``stack`` are not one multi-layer GRU, or None if they are."""
    position = {layer.name: i for i, layer in enumerate(layers)}
    first = stack[0]
    for prev, this in itertools.pairwise(stack):
        if position[this.name] != position[prev.name] + 1:
            return f"{prev.name!r} and {this.name!r} are not adjacent"
        inbound = layers[position[this.name]].inbound
        if inbound is not None and inbound != prev.name:
            return f"{this.name!r} reads from {inbound!r}, not from {prev.name!r}"
        if prev.return_sequences is False:
            return f"{prev.name!r} has return_sequences=False"
        D = 2 if prev.bidirectional else 1
        if this.input_size != D * prev.hidden_size:
            return (
                f"{this.name!r} takes {this.input_size} features but {prev.name!r} "
                f"gives {D * prev.hidden_size}"
            )
    for this in stack:
        if this.go_backwards:
            return f"{this.name!r} has go_backwards=True"
        for key in ("hidden_size", "bias", "reset_after", "bidirectional"):
            if getattr(this, key) != getattr(first, key):
                return (
                    f"{this.name!r} has {key}={getattr(this, key)} but {first.name!r} has "
                    f"{key}={getattr(first, key)}"
                )
    return None


def _select(layers: list[_Layer], layer: str | None, where: str, reset_after) -> list[_Recurrent]:
    """The recurrent layer named ``layer``, or the only GRU stack of the model."""
    if layer is not None:
        found = [candidate for candidate in layers if candidate.name == layer]
        if not found:
            names = ", ".join(repr(c.name) for c in layers)
            raise ValueError(f"{where}: no layer named {layer!r}; the layers are {names}")
        if found[0].kind not in _RECURRENT:
            raise ValueError(
                f"{where}: layer {layer!r} is a {found[0].kind}, not a GRU or Bidirectional(GRU)"
            )
        return [_recurrent(found[0], where, reset_after)]
    recurrent = [candidate for candidate in layers if candidate.kind in _RECURRENT]
    if not recurrent:
        kinds = ", ".join(f"{c.name!r} ({c.kind})" for c in layers) or "none"
        raise ValueError(f"{where}: holds no GRU weights (layers: {kinds})")
    stack = [_recurrent(candidate, where, reset_after) for candidate in recurrent]
    if len(stack) > 1:
        problem = _stack_problem(layers, stack)
        if problem is not None:
            names = ", ".join(repr(r.name) for r in stack)
            raise ValueError(
                f"{where}: holds {len(stack)} GRU layers ({names}) that are not one stack "
                f"({problem}); pick one with layer=NAME"
            )
    return stack


# --- reading Keras objects and files ------------------------------------------------------------


def _layer_from_object(obj) -> _Layer:
    config = obj.get_config()
    return _Layer(config.get("name", obj.name), type(obj).__name__, config, obj.get_weights())


def _layers_from_object(obj) -> list[_Layer]:
    if not (hasattr(obj, "get_config") and hasattr(obj, "get_weights")):
        raise TypeError(
            "from_keras: source must be a Keras GRU, Bidirectional or model object, a list of "
            f"weight arrays, or a path to a Keras file, got {type(obj).__name__}"
        )
    if hasattr(obj, "layers") and type(obj).__name__ not in _RECURRENT:
        return [_layer_from_object(sub) for sub in obj.layers if type(sub).__name__ != "InputLayer"]
    return [_layer_from_object(obj)]


def _inbound_name(layer_config: dict) -> str | None:
    """The name of the layer a functional-model layer reads from (Keras 3 or Keras 2 format)."""
    nodes = layer_config.get("inbound_nodes")
    if not nodes:
        return None
    node = nodes[0]
    if isinstance(node, dict):  # Keras 3: {"args": [keras tensor], "kwargs": {...}}
        args = node.get("args") or [{}]
        history = (
            args[0].get("config", {}).get("keras_history") if isinstance(args[0], dict) else None
        )
        if not history:
            raise ValueError("reads from several tensors")
        if node.get("kwargs", {}).get("mask") is not None:
            raise ValueError("is called with a mask")
        return str(history[0])
    if len(node) != 1:  # Keras 2: [[name, node_index, tensor_index, kwargs], ...]
        raise ValueError("reads from several tensors")
    return str(node[0][0])


def _model_layers(model_config: dict, where: str, weights: dict[str, list]) -> list[_Layer]:
    """The layers of a Sequential or functional model config, as a chain, with their weights."""
    kind = model_config.get("class_name")
    config = model_config.get("config", {})
    if kind not in ("Sequential", "Functional", "Model"):
        raise ValueError(f"{where}: the model is a {kind}; expected a Sequential or functional one")
    entries = config if isinstance(config, list) else config.get("layers", [])
    layers = []
    for entry in entries:
        layer_config = entry.get("config", {})
        name = layer_config.get("name", entry.get("name"))
        inbound = None
        if kind != "Sequential":
            try:
                inbound = _inbound_name(entry)
            except ValueError as error:
                raise ValueError(
                    f"{where}: layer {name!r} {error}; only a chain of layers converts"
                ) from None
        if entry.get("class_name") == "InputLayer":
            layers.append(_Layer(name, "InputLayer", layer_config, inbound=inbound))
            continue
        kind_of = entry.get("class_name")
        layers.append(_Layer(name, kind_of, layer_config, weights.get(name, []), inbound))
    if kind != "Sequential":
        for prev, this in itertools.pairwise(layers):
            if this.inbound != prev.name:
                raise ValueError(
                    f"{where}: layer {this.name!r} reads from {this.inbound!r}, not from the "
                    f"layer before it ({prev.name!r}); only a chain of layers converts"
                )
        outputs = config.get("output_layers", [])
        outputs = [outputs] if outputs and isinstance(outputs[0], str) else outputs
        if len(outputs) != 1 or outputs[0][0] != layers[-1].name:
            raise ValueError(f"{where}: the model must have one output, its last layer")
    return [layer for layer in layers if layer.kind != "InputLayer"]


def _numbered(group) -> list[np.ndarray]:
    """The datasets "0", "1", … of an h5 group, in that order."""
    return [group[key][()] for key in sorted(group, key=int)]


def _keras3_weights(root, where: str) -> dict[str, tuple[str, list]]:
    """{layer name: (group key, weights in get_weights() order)} of a Keras 3 weights file."""
    if "layers" not in root:
        raise ValueError(f"{where}: holds no Keras weights (no 'layers' group)")
    found = {}
    for key, group in root["layers"].items():
        name = group["vars"].attrs.get("name", key) if "vars" in group else key
        name = name.decode() if isinstance(name, bytes) else str(name)
        if "forward_layer" in group and "backward_layer" in group:
            arrays = []
            for side in ("forward_layer", "backward_layer"):
                inner = group[side]
                arrays += _numbered(inner["cell"]["vars"]) if "cell" in inner else []
        elif "cell" in group:
            arrays = _numbered(group["cell"]["vars"])
        else:
            arrays = _numbered(group["vars"]) if "vars" in group else []
        found[name] = (key, arrays)
    return found


def _keras3_weights_only(root, where: str) -> list[_Layer]:
    """The GRU layers of a Keras 3 ``.weights.h5`` file, which holds no configuration.

    Keras names each layer's group after its class (``gru``, ``gru_1``, ``bidirectional``), so
    that is what tells a GRU here; the groups come in the order Keras numbered them.
    """

    def number(key: str) -> int:
        tail = key.rsplit("_", 1)[-1]
        return int(tail) if "_" in key and tail.isdigit() else 0

    layers = []
    for name, (key, arrays) in _keras3_weights(root, where).items():
        if re.fullmatch(r"gru(_\d+)?", key):
            layers.append((number(key), 0, _Layer(name, "GRU", {}, arrays)))
        elif re.fullmatch(r"bidirectional(_\d+)?", key) and _looks_like_gru(
            arrays[: len(arrays) // 2]
        ):
            layers.append((number(key), 1, _Layer(name, "Bidirectional", {}, arrays)))
    return [layer for *_, layer in sorted(layers, key=lambda item: item[:2])]


def _looks_like_gru(arrays: list) -> bool:
    return (
        len(arrays) in (2, 3)
        and np.ndim(arrays[1]) == 2
        and np.shape(arrays[1])[1] == 3 * np.shape(arrays[1])[0]
    )


def _attr_text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _legacy_layers(h5, where: str) -> tuple[list[_Layer], bool]:
    """The layers of a Keras 2 ``.h5`` file (a whole model or save_weights), and whether it has
    the model's configuration."""
    root = h5["model_weights"] if "model_weights" in h5 else h5
    if "layer_names" not in root.attrs:
        raise ValueError(f"{where}: its model_weights group has no layer_names attribute")
    weights = {}
    for layer_name in root.attrs["layer_names"]:
        layer_name = _attr_text(layer_name)
        if layer_name not in root:
            raise ValueError(f"{where}: layer_names lists {layer_name!r} but it has no group")
        group = root[layer_name]
        arrays = []
        for weight_name in group.attrs.get("weight_names", []):
            weight_name = _attr_text(weight_name)
            if weight_name not in group:
                raise ValueError(
                    f"{where}: layer {layer_name!r} lists weight {weight_name!r} but has none"
                )
            arrays.append((weight_name, group[weight_name][()]))
        weights[layer_name] = arrays
    if "model_config" in h5.attrs:
        model_config = json.loads(_attr_text(h5.attrs["model_config"]))
        plain = {name: [a for _, a in arrays] for name, arrays in weights.items()}
        return _model_layers(model_config, where, plain), True
    layers = []
    for name, arrays in weights.items():
        names = [n for n, _ in arrays]
        values = [a for _, a in arrays]
        backward = any("backward" in n for n in names) and any("forward" in n for n in names)
        if backward and _looks_like_gru(values[: len(values) // 2]):
            layers.append(_Layer(name, "Bidirectional", {}, values))
        elif _looks_like_gru(values) and any("recurrent_kernel" in n for n in names):
            layers.append(_Layer(name, "GRU", {}, values))
    return layers, False


def _open_h5(data, where: str):
    import h5py

    try:
        return h5py.File(data, "r")
    except OSError as error:
        raise ValueError(f"{where}: is not an HDF5 file ({error})") from None


def _read_file(path, owner: str) -> tuple[list[_Layer], bool, str]:
    """(layers, whether the file holds the model's configuration, the file's name for errors)."""
    path = Path(path)
    where = f"{owner}: {str(path)!r}"
    if not path.is_file():
        raise FileNotFoundError(f"{owner}: no such file {str(path)!r}")
    name = path.name.lower()
    if name.endswith(".keras"):
        try:
            with zipfile.ZipFile(path) as archive:
                members = set(archive.namelist())
                for member in ("config.json", "model.weights.h5"):
                    if member not in members:
                        raise ValueError(
                            f"{where}: the .keras archive has no {member} (it holds "
                            f"{sorted(members)})"
                        )
                model_config = json.loads(archive.read("config.json"))
                blob = io.BytesIO(archive.read("model.weights.h5"))
        except zipfile.BadZipFile:
            raise ValueError(f"{where}: is not a .keras archive (not a zip file)") from None
        with _open_h5(blob, where) as h5:
            found = _keras3_weights(h5, where)
        weights = {layer_name: arrays for layer_name, (_, arrays) in found.items()}
        return _model_layers(model_config, where, weights), True, where
    if name.endswith((".h5", ".hdf5")):
        with _open_h5(path, where) as h5:
            if "model_weights" in h5 or "layer_names" in h5.attrs:
                layers, configured = _legacy_layers(h5, where)
                return layers, configured, where
            return _keras3_weights_only(h5, where), False, where
    raise ValueError(
        f"{where}: is not a Keras file; expected a name ending in .keras, .weights.h5 or .h5"
    )


# --- public API -------------------------------------------------------------------------------


def from_keras(
    source, *, layer: str | None = None, reset_after: bool | None = None
) -> GRU | GoBackwards:
    """A Keras GRU as a `gru.GRU` (batch first, as Keras) with exactly its weights.

    ``source`` is one of:
      - a Keras ``GRU`` or ``Bidirectional(GRU)`` layer, or a Keras model;
      - the list ``layer.get_weights()`` of one such layer (2 or 3 arrays for a GRU, 4 or 6 for
        a Bidirectional(GRU)), with ``reset_after`` given;
      - a path to a ``.keras`` archive, a Keras 3 ``.weights.h5`` or a Keras 2 ``.h5`` file.

    ``layer`` names the layer to convert when the model has several. Without it the model must
    hold one GRU, or several that form one stack (adjacent, same units and convention, every
    one but the last with return_sequences=True), which become one multi-layer `gru.GRU`.
    A weights-only file holds no configuration: its activations and go_backwards are Keras'
    defaults (tanh, sigmoid, False), and reset_after is read from the bias shape, or must be
    given when the layer has no bias.

    Returns a `gru.GRU`, or a `GoBackwards` around one for a GRU with ``go_backwards=True``.
    Raises ValueError for anything that cannot be converted exactly.
    """
    where = "from_keras"
    if isinstance(source, (str, os.PathLike)):
        layers, _, where = _read_file(source, "from_keras")
    elif isinstance(source, (list, tuple)):
        if reset_after is None:
            raise ValueError(
                "from_keras: a list of weights does not say which convention it follows; "
                "pass reset_after= (the Keras layer's reset_after)"
            )
        if layer is not None:
            raise ValueError("from_keras: layer= picks a layer of a model, not of a weight list")
        kind = "GRU" if len(source) in (2, 3) else "Bidirectional"
        layers = [_Layer("weights", kind, {"reset_after": bool(reset_after)}, list(source))]
        if kind == "Bidirectional":
            layers[0].config = {"layer": {"class_name": "GRU", "config": layers[0].config}}
    else:
        layers = _layers_from_object(source)
    return _build(_select(layers, layer, where, reset_after), where)


def _module_layers(module, owner: str) -> tuple[GRU, bool]:
    if isinstance(module, GoBackwards):
        if module.gru.num_layers != 1 or module.gru.bidirectional:
            raise ValueError(f"{owner}: a GoBackwards must wrap a one-layer, one-direction GRU")
        refuse_variants(owner, module.gru, inference_only=True)
        return module.gru, True
    if not isinstance(module, GRU):
        raise TypeError(
            f"{owner}: module must be a gru.GRU or GoBackwards, got {type(module).__name__}"
        )
    refuse_variants(owner, module, inference_only=True)
    return module, False


def _keras_arrays(gru: GRU) -> list[list[np.ndarray]]:
    """Per Keras layer (one per gru layer), the arrays of its get_weights()."""
    D = 2 if gru.bidirectional else 1
    out = []
    for layer in range(gru.num_layers):
        arrays = []
        for d in range(D):
            weights = [
                None if w is None else w.detach().cpu().numpy()
                for w in gru.layer_weights(layer * D + d)
            ]
            arrays += packed_to_keras(*weights, reset_after=gru.reset_after)
        out.append(arrays)
    return out


def to_keras_weights(module: GRU | GoBackwards) -> list[np.ndarray]:
    """The weights of a `gru.GRU` as Keras holds them, ready for ``set_weights``.

    For one layer: ``[kernel (I, 3H), recurrent_kernel (H, 3H), bias]`` (bias (2, 3H) when
    reset_after, (3H,) when not, absent without bias), followed by the backward direction's
    three for a bidirectional layer — the order of ``GRU.set_weights`` and
    ``Bidirectional(GRU).set_weights``. For L layers, the layers' lists one after the other,
    the order of ``set_weights`` on a model of L stacked GRU layers.

    With ``reset_after=False`` Keras has one bias, b_ih + b_hh, the same layer (every bias is
    outside the reset gate in that convention).
    """
    gru, _ = _module_layers(module, "to_keras_weights")
    return [array for layer in _keras_arrays(gru) for array in layer]


def _gru_config(name: str, gru: GRU, return_sequences: bool, go_backwards: bool) -> dict:
    dtype = {torch.float32: "float32", torch.float64: "float64"}[gru.weight_ih_l0.dtype]
    return {
        "name": name,
        "trainable": True,
        "dtype": dtype,
        "return_sequences": return_sequences,
        "return_state": False,
        "go_backwards": go_backwards,
        "stateful": False,
        "unroll": False,
        "units": gru.hidden_size,
        "activation": "tanh",
        "recurrent_activation": "sigmoid",
        "use_bias": gru.bias,
        "dropout": 0.0,
        "recurrent_dropout": 0.0,
        "reset_after": gru.reset_after,
    }


def save_keras(module: GRU | GoBackwards, path) -> Path:
    """Write a `gru.GRU` as a Keras 3 file Keras loads: ``.keras`` (a Sequential model of its
    layers, each with return_sequences=True, so its output is the GRU's output batch first) or
    ``.weights.h5`` (the weights of that model, for ``model.load_weights``). Written atomically.
    """
    import h5py

    gru, go_backwards = _module_layers(module, "save_keras")
    if gru.weight_ih_l0.dtype not in (torch.float32, torch.float64):
        raise ValueError(
            f"save_keras: Keras files hold float32 or float64, got {gru.weight_ih_l0.dtype}"
        )
    path = Path(path)
    name = path.name.lower()
    if not name.endswith((".keras", ".weights.h5")):
        raise ValueError(
            f"save_keras: {str(path)!r} must end in .keras or .weights.h5 (Keras 2 .h5 files "
            "are not written)"
        )
    layers, keys = [], []
    for index, arrays in enumerate(_keras_arrays(gru)):
        suffix = f"_{index}" if index else ""
        if gru.bidirectional:
            inner = _gru_config(f"forward_gru{suffix}", gru, True, False)
            back = _gru_config(f"backward_gru{suffix}", gru, True, True)
            config = {
                "name": f"bidirectional{suffix}",
                "trainable": True,
                "dtype": inner["dtype"],
                "merge_mode": "concat",
                "layer": {"module": "keras.layers", "class_name": "GRU", "config": inner},
                "backward_layer": {"module": "keras.layers", "class_name": "GRU", "config": back},
            }
            kind = "Bidirectional"
        else:
            config = _gru_config(f"gru{suffix}", gru, True, go_backwards)
            kind = "GRU"
        layer_input = (
            gru.input_size if index == 0 else (2 if gru.bidirectional else 1) * gru.hidden_size
        )
        layers.append(
            {
                "module": "keras.layers",
                "class_name": kind,
                "config": config,
                "registered_name": None,
                "build_config": {"input_shape": [None, None, layer_input]},
            }
        )
        keys.append((config["name"], kind, arrays))

    def write_h5(file) -> None:
        with h5py.File(file, "w") as h5:
            h5.create_group("vars").attrs["name"] = "sequential"
            for key, kind, arrays in keys:
                group = h5.create_group(f"layers/{key}")
                group.create_group("vars").attrs["name"] = key
                sides = [("forward_layer", "forward_gru"), ("backward_layer", "backward_gru")]
                parts = (
                    [(group.create_group(side), label) for side, label in sides]
                    if kind == "Bidirectional"
                    else [(group, None)]
                )
                half = len(arrays) // len(parts)
                for i, (part, label) in enumerate(parts):
                    if label is not None:
                        part.create_group("vars").attrs["name"] = label
                    cell = part.create_group("cell/vars")
                    cell.attrs["name"] = "gru_cell"
                    for j, array in enumerate(arrays[i * half : (i + 1) * half]):
                        cell.create_dataset(str(j), data=array)

    if name.endswith(".weights.h5"):
        return atomic_write(path, write_h5)
    model = {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": "sequential",
            "trainable": True,
            "dtype": layers[0]["config"]["dtype"],
            "layers": [
                {
                    "module": "keras.layers",
                    "class_name": "InputLayer",
                    "config": {
                        "batch_shape": [None, None, gru.input_size],
                        "dtype": layers[0]["config"]["dtype"],
                        "name": "input_layer",
                    },
                    "registered_name": None,
                },
                *layers,
            ],
        },
        "registered_name": None,
        "build_config": {"input_shape": [None, None, gru.input_size]},
    }

    def write_archive(file) -> None:
        weights = io.BytesIO()
        write_h5(weights)
        with zipfile.ZipFile(file, "w") as archive:
            archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
            archive.writestr("config.json", json.dumps(model))
            archive.writestr("model.weights.h5", weights.getvalue())

    return atomic_write(path, write_archive)


class Recurrent(nn.Module):
    """A Keras GRU or Bidirectional(GRU) layer inside a `KerasModel`: batch-first input
    (B, T, I) to (B, T, D·H) with ``return_sequences``, else the last output (B, D·H)."""

    def __init__(self, layer: GRU | GoBackwards, return_sequences: bool) -> None:
        super().__init__()
        self.layer = layer
        self.return_sequences = bool(return_sequences)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """x (B, T, I) -> (B, T, D·H) or (B, D·H); ``lengths`` (B,) as for `gru.GRU`."""
        if lengths is None:
            output, h_n = self.layer(x)  # (B, T, D·H), (L·D, B, H)
        else:
            output, h_n = self.layer(x, lengths=lengths)
        if self.return_sequences:
            return output
        gru = self.layer.gru if isinstance(self.layer, GoBackwards) else self.layer
        D = 2 if gru.bidirectional else 1
        return h_n[-D:].transpose(0, 1).reshape(x.shape[0], -1)  # (B, D·H)


class KerasModel(nn.Sequential):
    """A Keras model made of Embedding, GRU, Bidirectional(GRU), Dense and Dropout layers, as
    PyTorch modules in the same order: `torch.nn.Embedding`, `Recurrent`, `torch.nn.Linear`
    followed by its activation, `torch.nn.Dropout`. Built by `load_model`; it computes what the
    Keras model computes on the same (batch-first) input.

    ``mask_zero=True`` is a first Embedding with Keras' ``mask_zero=True``: token id 0 is
    padding, wherever it stands, and the GRU layers skip it (a skipped step leaves the state as
    it was) until the first one without return_sequences, which consumes the mask. That equals
    moving each row's real tokens to the front, in order, and running the GRU layers with
    their count as ``lengths``, which is how it is computed here (every step in between works
    per time step, so it commutes with the move). A row of padding only gives the zero state.
    """

    def __init__(self, *steps: nn.Module, mask_zero: bool = False) -> None:
        super().__init__(*steps)
        self.mask_zero = bool(mask_zero)

    def forward(self, input: Tensor) -> Tensor:
        if not self.mask_zero:
            return super().forward(input)
        keep = input != 0  # (B, T)
        lengths = keep.sum(1)  # (B,)
        order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices  # (B, T)
        x = input.gather(1, order)  # each row's real tokens first, in their order
        masked = True
        for step in self:
            if masked and isinstance(step, Recurrent):
                x = step(x, lengths=lengths.clamp(min=1))
                if not step.return_sequences:  # this layer consumes the mask
                    x = x * (lengths > 0).unsqueeze(1).to(x.dtype)  # (B, D·H)
                    masked = False
            else:
                x = step(x)
        return x


def _dense(layer: _Layer, where: str) -> list[nn.Module]:
    config = layer.config
    where = f"{where}: layer {layer.name!r}"
    _check_dtype(where, config)
    activation = config.get("activation", "linear")
    if activation not in _DENSE_ACTIVATIONS:
        raise ValueError(
            f"{where}: Dense activation={activation!r} is not supported (supported: "
            f"{', '.join(_DENSE_ACTIVATIONS)}); refusing to convert approximately"
        )
    use_bias = bool(config.get("use_bias", True))
    if len(layer.weights) != 1 + use_bias or np.ndim(layer.weights[0]) != 2:
        raise ValueError(
            f"{where}: a Dense with use_bias={use_bias} has a kernel (in, units)"
            f"{' and a bias (units,)' if use_bias else ''}, got shapes "
            f"{[np.shape(w) for w in layer.weights]}"
        )
    kernel = np.asarray(layer.weights[0])
    n_in, n_out = kernel.shape
    if use_bias and np.shape(layer.weights[1]) != (n_out,):
        raise ValueError(
            f"{where}: bias must have shape ({n_out},), got {np.shape(layer.weights[1])}"
        )
    dtype = _DTYPES.get(kernel.dtype.name, torch.float32)
    linear = nn.Linear(n_in, n_out, bias=use_bias, dtype=dtype, device="meta")
    state = {"weight": _as_tensor(kernel.T, dtype)}  # (units, in)
    if use_bias:
        state["bias"] = _as_tensor(layer.weights[1], dtype)
    linear.load_state_dict(state, assign=True)
    make = _DENSE_ACTIVATIONS[activation]
    return [linear] if make is None else [linear, make()]


def _embedding(layer: _Layer, where: str) -> nn.Module:
    config = layer.config
    where = f"{where}: layer {layer.name!r}"
    _check_dtype(where, config)
    if len(layer.weights) != 1 or np.ndim(layer.weights[0]) != 2:
        raise ValueError(
            f"{where}: an Embedding has one (input_dim, output_dim) table, got shapes "
            f"{[np.shape(w) for w in layer.weights]}"
        )
    table = np.asarray(layer.weights[0])
    dtype = _DTYPES.get(table.dtype.name, torch.float32)
    embedding = nn.Embedding(*table.shape, dtype=dtype, device="meta")
    embedding.load_state_dict({"weight": _as_tensor(table, dtype)}, assign=True)
    return embedding


def load_model(path) -> KerasModel:
    """A Keras model file (``.keras``, or a Keras 2 ``.h5`` model) as a `KerasModel`, in eval
    mode, with identical outputs for the same input (token ids (B, T) for a model that starts
    with an Embedding, else features (B, T, I)).

    The model must be a Sequential or a functional chain of Embedding, GRU,
    Bidirectional(GRU), Dense (linear, sigmoid, relu, tanh or softmax) and Dropout layers;
    anything else is refused with a ValueError naming the layer.
    """
    layers, configured, where = _read_file(path, "load_model")
    if not configured:
        raise ValueError(
            f"{where}: holds weights only, without the model's configuration; load_model needs "
            "a .keras archive or a Keras 2 .h5 model (use from_keras for a single GRU)"
        )
    steps: list[nn.Module] = []
    mask_zero = masked = False  # masked: between mask_zero=True and the GRU consuming it
    for layer in layers:
        if masked:
            _check_masked(layer, where)
        if layer.kind == "Embedding" and layer.config.get("mask_zero", False):
            if steps:
                raise ValueError(
                    f"{where}: layer {layer.name!r}: an Embedding with mask_zero=True must be "
                    "the model's first layer"
                )
            mask_zero = masked = True
        if layer.kind in _RECURRENT:
            recurrent = _recurrent(layer, where)
            steps.append(Recurrent(_build([recurrent], where), bool(recurrent.return_sequences)))
            masked = masked and bool(recurrent.return_sequences)
        elif layer.kind == "Embedding":
            steps.append(_embedding(layer, where))
        elif layer.kind == "Dense":
            steps.extend(_dense(layer, where))
        elif layer.kind == "Dropout":
            steps.append(nn.Dropout(float(layer.config.get("rate", 0.0))))
        else:
            raise ValueError(
                f"{where}: layer {layer.name!r} is a {layer.kind}, which load_model does not "
                "convert (it converts Embedding, GRU, Bidirectional(GRU), Dense and Dropout)"
            )
    if not steps:
        raise ValueError(f"{where}: the model has no layers")
    if masked:
        raise ValueError(
            f"{where}: the mask of Embedding mask_zero=True reaches the model's output (no GRU "
            "without return_sequences consumes it), where Keras' values at padded steps are not "
            "reproduced; refusing to convert approximately"
        )
    return KerasModel(*steps, mask_zero=mask_zero).eval()


def _check_masked(layer: _Layer, where: str) -> None:
    """Refuse what the masked part of a model (after Embedding mask_zero=True, up to the GRU
    that consumes the mask) does not compute exactly by moving the padding to the end."""
    if layer.kind == "GRU" and layer.config.get("go_backwards", False):
        raise ValueError(
            f"{where}: layer {layer.name!r} has go_backwards=True after an Embedding with "
            "mask_zero=True, which is not supported; refusing to convert approximately"
        )
