"""Keras GRU layers and models ↔ `gru.GRU` and PyTorch modules, exactly, without Keras installed.

A Keras layer or model object is read through ``get_config()`` and ``get_weights()``; a file
(``.keras``, ``.weights.h5``, Keras 2 ``.h5``) through `gru.interop.keras_files`, which
`save_keras` also writes. Each layer's settings are checked by `gru.interop.keras_config`.

Shapes: B batch, T time, I input features, H hidden units, D directions (2 if bidirectional).
Keras packs the gates ``z, r, h`` along the last axis of its weights, per direction:

    kernel (I, 3H)   recurrent_kernel (H, 3H)   bias (3H,), or (2, 3H) when reset_after
                                                 (row 0 the input bias, row 1 the recurrent one)

`keras_to_packed` and `packed_to_keras` (written in `gru.interop.layout`, beside the gate table
and ONNX's packing, and exported here) convert one direction exactly: Keras ``reset_after=True``
is ``gru.GRU(reset_after=True)`` with b_ih = bias[0], b_hh = bias[1]; Keras
``reset_after=False`` is ``gru.GRU(reset_after=False)`` with b_ih = bias, b_hh = 0 (every bias
sits outside r in that convention). ``use_bias=False`` is ``bias=False``.

Keras ``go_backwards=True`` reads the sequence from its last step to its first and, with
``return_sequences``, returns the outputs in that reversed order. `GoBackwards` computes exactly
this around a `gru.GRU`: it flips the input in time and returns the outputs as computed.

Anything that cannot be represented exactly is refused with a ValueError naming the layer and
the setting: the settings `gru.interop.keras_config` lists, a layer type that is not
Embedding, GRU, Bidirectional(GRU), Dense or Dropout, and an Embedding ``mask_zero=True`` whose
mask reaches the model's output or a go_backwards GRU (see `KerasModel` for the masks that are
reproduced).
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from gru.interop.keras_config import (
    DTYPES,
    check_dtype,
    dense_activation,
    gru_settings,
    layer_config,
)
from gru.interop.keras_files import KerasLayer, malformed, read_file, write_file
from gru.interop.layout import (
    gru_from_packed,
    keras_to_packed,
    packed_to_keras,
    packed_weights,
    refuse_variants,
)
from gru.interop.modules import GoBackwards, KerasModel, Recurrent
from gru.nn import GRU

__all__ = [
    "GoBackwards",
    "KerasModel",
    "from_keras",
    "keras_to_packed",
    "load_model",
    "packed_to_keras",
    "read_keras",
    "save_keras",
    "to_keras_weights",
]

_RECURRENT = ("GRU", "Bidirectional")

# --- Keras GRU layers, checked and packed -----------------------------------------------------


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


def _recurrent(layer: KerasLayer, where: str, reset_after: bool | None = None) -> _Recurrent:
    """Check a GRU or Bidirectional(GRU) layer and convert its weights to packed order."""
    where = f"{where}: layer {layer.name!r}"
    settings = gru_settings(where, layer, reset_after)
    n = settings.per_direction
    directions = [
        keras_to_packed(
            *layer.weights[d * n : (d + 1) * n],
            reset_after=settings.reset_after,
            where=where + (" (backward)" if d else ""),
        )
        for d in range(2 if settings.bidirectional else 1)
    ]
    I, H = directions[0][0].shape[1], directions[0][1].shape[1]
    units = settings.config.get("units", H)
    if int(units) != H:
        raise ValueError(f"{where}: units={units} but the weights have H={H}")
    if settings.bidirectional and directions[1][0].shape != directions[0][0].shape:
        raise ValueError(
            f"{where}: the backward kernel is {layer.weights[n].shape}, the forward "
            f"one {layer.weights[0].shape}; both directions must have the same shapes"
        )
    return _Recurrent(
        name=layer.name,
        input_size=I,
        hidden_size=H,
        bias=settings.bias,
        reset_after=settings.reset_after,
        bidirectional=settings.bidirectional,
        go_backwards=settings.go_backwards,
        return_sequences=settings.config.get("return_sequences"),
        directions=directions,
    )


def _as_tensor(array: np.ndarray, dtype: torch.dtype) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).to(dtype)


def _weights_dtype(stack: list[_Recurrent], where: str) -> torch.dtype:
    dtype = np.result_type(*[w for r in stack for d in r.directions for w in d if w is not None])
    if dtype.name not in DTYPES:
        raise ValueError(
            f"{where}: the weights are {dtype.name}; gru converts float32 and float64 exactly"
        )
    return DTYPES[dtype.name]


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


def _stack_problem(layers: list[KerasLayer], stack: list[_Recurrent]) -> str | None:
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


def _select(
    layers: list[KerasLayer], layer: str | None, where: str, reset_after
) -> list[_Recurrent]:
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


# --- from and to Keras -----------------------------------------------------------------------


def _layer_from_object(obj) -> KerasLayer:
    config = obj.get_config()
    return KerasLayer(config.get("name", obj.name), type(obj).__name__, config, obj.get_weights())


def _layers_from_object(obj) -> list[KerasLayer]:
    if not (hasattr(obj, "get_config") and hasattr(obj, "get_weights")):
        raise TypeError(
            "from_keras: source must be a Keras GRU, Bidirectional or model object, a list of "
            f"weight arrays, or a path to a Keras file, got {type(obj).__name__}"
        )
    if hasattr(obj, "layers") and type(obj).__name__ not in _RECURRENT:
        return [_layer_from_object(sub) for sub in obj.layers if type(sub).__name__ != "InputLayer"]
    return [_layer_from_object(obj)]


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
        layers, _, where = read_file(source, "from_keras")
        with malformed(where):
            return _build(_select(layers, layer, where, reset_after), where)
    if isinstance(source, (list, tuple)):
        if reset_after is None:
            raise ValueError(
                "from_keras: a list of weights does not say which convention it follows; "
                "pass reset_after= (the Keras layer's reset_after)"
            )
        if layer is not None:
            raise ValueError("from_keras: layer= picks a layer of a model, not of a weight list")
        kind = "GRU" if len(source) in (2, 3) else "Bidirectional"
        layers = [KerasLayer("weights", kind, {"reset_after": bool(reset_after)}, list(source))]
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
    """Per Keras layer (one per gru layer), the arrays of its get_weights(): each direction's
    kernel, recurrent_kernel (and bias), forward first."""
    D = 2 if gru.bidirectional else 1
    packed = packed_weights(gru)  # L·D tuples, layer-major
    return [
        [
            array
            for weights in packed[layer * D : (layer + 1) * D]
            for array in packed_to_keras(*weights, reset_after=gru.reset_after)
        ]
        for layer in range(gru.num_layers)
    ]


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


def save_keras(module: GRU | GoBackwards, path) -> Path:
    """Write a `gru.GRU` as a Keras 3 file Keras loads: ``.keras`` (a Sequential model of its
    layers, each with return_sequences=True, so its output is the GRU's output batch first) or
    ``.weights.h5`` (the weights of that model, for ``model.load_weights``). Written atomically.
    """
    gru, go_backwards = _module_layers(module, "save_keras")
    if gru.weight_ih_l0.dtype not in (torch.float32, torch.float64):
        raise ValueError(
            f"save_keras: Keras files hold float32 or float64, got {gru.weight_ih_l0.dtype}"
        )
    layers = []
    for index, arrays in enumerate(_keras_arrays(gru)):
        kind, config = layer_config(gru, index, go_backwards)
        layers.append(KerasLayer(config["name"], kind, config, arrays))
    return write_file(path, layers, "save_keras")


# --- whole models -----------------------------------------------------------------------------


def _dense(layer: KerasLayer, where: str) -> list[nn.Module]:
    config = layer.config
    where = f"{where}: layer {layer.name!r}"
    make = dense_activation(where, config)
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
    dtype = DTYPES.get(kernel.dtype.name, torch.float32)
    linear = nn.Linear(n_in, n_out, bias=use_bias, dtype=dtype, device="meta")
    state = {"weight": _as_tensor(kernel.T, dtype)}  # (units, in)
    if use_bias:
        state["bias"] = _as_tensor(layer.weights[1], dtype)
    linear.load_state_dict(state, assign=True)
    return [linear] if make is None else [linear, make()]


def _embedding(layer: KerasLayer, where: str) -> nn.Module:
    config = layer.config
    where = f"{where}: layer {layer.name!r}"
    check_dtype(where, config)
    if len(layer.weights) != 1 or np.ndim(layer.weights[0]) != 2:
        raise ValueError(
            f"{where}: an Embedding has one (input_dim, output_dim) table, got shapes "
            f"{[np.shape(w) for w in layer.weights]}"
        )
    table = np.asarray(layer.weights[0])
    dtype = DTYPES.get(table.dtype.name, torch.float32)
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
    layers, configured, where = read_file(path, "load_model")
    if not configured:
        raise ValueError(
            f"{where}: holds weights only, without the model's configuration; load_model needs "
            "a .keras archive or a Keras 2 .h5 model (use from_keras for a single GRU)"
        )
    with malformed(where):
        return _model(layers, where)


def read_keras(path, *, layer: str | None = None, owner: str = "read"):
    """The whole of what a Keras file computes, never less: with ``layer``, that GRU layer
    (`from_keras`); else a file of GRU layers only as `from_keras` reads it, and a model with
    any other layer (Embedding, Dense, Dropout) as a `KerasModel` (`load_model`). A weights
    file holds no configuration to rebuild other layers from: with any, it is refused, naming
    them. ``owner`` names the caller in messages."""
    layers, configured, where = read_file(path, owner)
    others = [f"{c.name!r} ({c.kind})" for c in layers if c.kind not in _RECURRENT]
    with malformed(where):
        if layer is not None or not others:
            return _build(_select(layers, layer, where, None), where)
        if not configured:
            raise ValueError(
                f"{where}: holds {', '.join(others)} besides its GRU layers, and a weights "
                "file has no configuration to rebuild them from; convert the model's .keras "
                "file, or the GRU alone with layer=NAME (gru convert --layer NAME)"
            )
        return _model(layers, where)


def _model(layers: list[KerasLayer], where: str) -> KerasModel:
    """The `KerasModel` of a model file's ``layers`` (`load_model`)."""
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


def _check_masked(layer: KerasLayer, where: str) -> None:
    """Refuse what the masked part of a model (after Embedding mask_zero=True, up to the GRU
    that consumes the mask) does not compute exactly by moving the padding to the end."""
    if layer.kind == "GRU" and layer.config.get("go_backwards", False):
        raise ValueError(
            f"{where}: layer {layer.name!r} has go_backwards=True after an Embedding with "
            "mask_zero=True, which is not supported; refusing to convert approximately"
        )
