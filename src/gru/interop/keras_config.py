"""Keras layer configurations: the settings gru represents exactly, and the ones it writes.

Reading, every setting a Keras layer's config holds is checked against what gru computes, and
anything else is refused with a ValueError naming the layer and the setting: an activation
other than tanh, a recurrent activation other than sigmoid, ``time_major``, a dtype policy other
than float32/float64, a Bidirectional merge mode other than concat or around anything but a
GRU, ``return_state``, and a Dense activation gru has no module for. A setting the config does
not hold (a weights-only file) is Keras' default, except the convention: reset_after is then
read from the bias's shape, or must be given.

Writing, `layer_config` gives the config Keras 3 writes for each layer of a `gru.GRU`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from gru.interop.keras_files import KerasLayer
from gru.nn import GRU

__all__ = [
    "DTYPES",
    "GRUSettings",
    "check_dtype",
    "dense_activation",
    "gru_settings",
    "layer_config",
]

DTYPES = {"float32": torch.float32, "float64": torch.float64}
"""Keras dtype policies gru computes exactly, and their torch dtypes."""

_DENSE_ACTIVATIONS = {
    "linear": None,
    "sigmoid": nn.Sigmoid,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "softmax": lambda: nn.Softmax(dim=-1),
}
"""A Dense layer's activation: what makes the module that follows its `torch.nn.Linear`."""


# --- reading ------------------------------------------------------------------------------


def _dtype_name(config: dict) -> str:
    dtype = config.get("dtype", "float32")
    if isinstance(dtype, dict):  # Keras 3 writes a DTypePolicy: {"config": {"name": ...}}
        dtype = dtype.get("config", {}).get("name", dtype.get("class_name"))
    return str(dtype)


def _check_setting(where: str, config: dict, key: str, allowed, default) -> None:
    value = config.get(key, default)
    if value != allowed:
        raise ValueError(
            f"{where}: {key}={value!r} cannot be represented exactly (gru supports only "
            f"{key}={allowed!r}); refusing to convert approximately"
        )


def check_dtype(where: str, config: dict) -> None:
    """Refuse a layer whose dtype policy is not one of `DTYPES`."""
    if _dtype_name(config) not in DTYPES:
        raise ValueError(
            f"{where}: dtype policy {_dtype_name(config)!r} cannot be represented exactly "
            f"(supported: {', '.join(DTYPES)}); refusing to convert approximately"
        )


def _check_gru_config(where: str, config: dict) -> None:
    _check_setting(where, config, "activation", "tanh", "tanh")
    _check_setting(where, config, "recurrent_activation", "sigmoid", "sigmoid")
    _check_setting(where, config, "time_major", False, False)
    check_dtype(where, config)


def _wrapped_gru_config(where: str, config: dict) -> dict:
    """The config of the GRU a Bidirectional wraps, checked with its backward_layer."""
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
    return gru_config


@dataclass
class GRUSettings:
    """What a Keras GRU or Bidirectional(GRU) layer computes, from its config and, where the
    config does not say (a weights-only file), from its weights."""

    config: dict  # the GRU's own config: the wrapped one, for a Bidirectional
    bidirectional: bool
    go_backwards: bool
    per_direction: int  # arrays per direction: kernel, recurrent_kernel (, bias)
    reset_after: bool

    @property
    def bias(self) -> bool:
        return self.per_direction == 3


def gru_settings(where: str, layer: KerasLayer, reset_after: bool | None) -> GRUSettings:
    """The settings of a GRU or Bidirectional(GRU) ``layer``, every one checked; ``reset_after``
    is the caller's, for a layer whose config does not hold it."""
    bidirectional = layer.kind == "Bidirectional"
    if bidirectional:
        gru_config = _wrapped_gru_config(where, layer.config)
        go_backwards = False
    else:
        gru_config = layer.config
        go_backwards = bool(layer.config.get("go_backwards", False))
    _check_gru_config(where, gru_config)
    if gru_config.get("return_state", False):
        raise ValueError(f"{where}: return_state=True is not supported; save it without")
    per_direction = _per_direction(where, layer, gru_config, 2 if bidirectional else 1)
    reset_after = _convention(where, layer, gru_config, per_direction == 3, reset_after)
    return GRUSettings(gru_config, bidirectional, go_backwards, per_direction, reset_after)


def _per_direction(where: str, layer: KerasLayer, gru_config: dict, D: int) -> int:
    """2 (kernel, recurrent_kernel) or 3 (and a bias): the arrays each of the D directions of
    ``layer`` holds, checked against its use_bias."""
    n = len(layer.weights)
    if n not in (2 * D, 3 * D):
        raise ValueError(
            f"{where}: expected {2 * D} or {3 * D} weight arrays for a "
            f"{'Bidirectional(GRU)' if D == 2 else 'GRU'}, got {n} with shapes "
            f"{[np.shape(w) for w in layer.weights]}"
        )
    per_direction = n // D
    if "use_bias" in gru_config and bool(gru_config["use_bias"]) != (per_direction == 3):
        raise ValueError(
            f"{where}: use_bias={gru_config['use_bias']} but the file holds "
            f"{per_direction} weights per direction"
        )
    return per_direction


def _convention(
    where: str, layer: KerasLayer, gru_config: dict, has_bias: bool, reset_after: bool | None
) -> bool:
    """reset_after: the config's, else the one given, else read from the bias's shape
    ((2, 3H) only when reset_after)."""
    if "reset_after" in gru_config:
        config_reset_after = bool(gru_config["reset_after"])
        if reset_after is not None and bool(reset_after) != config_reset_after:
            raise ValueError(
                f"{where}: reset_after={reset_after} was given but the layer has "
                f"reset_after={config_reset_after}"
            )
        return config_reset_after
    if reset_after is not None:
        return bool(reset_after)
    if not has_bias:
        raise ValueError(
            f"{where}: the convention cannot be read from weights without a bias and no "
            "configuration; pass reset_after=True or False"
        )
    return np.ndim(layer.weights[2]) == 2


def dense_activation(where: str, config: dict):
    """What makes the module after a Dense layer's `torch.nn.Linear` (None for linear),
    its dtype and activation checked."""
    check_dtype(where, config)
    activation = config.get("activation", "linear")
    if activation not in _DENSE_ACTIVATIONS:
        raise ValueError(
            f"{where}: Dense activation={activation!r} is not supported (supported: "
            f"{', '.join(_DENSE_ACTIVATIONS)}); refusing to convert approximately"
        )
    return _DENSE_ACTIVATIONS[activation]


# --- writing ------------------------------------------------------------------------------


def _gru_config(name: str, gru: GRU, go_backwards: bool) -> dict:
    dtype = {torch.float32: "float32", torch.float64: "float64"}[gru.weight_ih_l0.dtype]
    return {
        "name": name,
        "trainable": True,
        "dtype": dtype,
        "return_sequences": True,
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


def layer_config(gru: GRU, index: int, go_backwards: bool) -> tuple[str, dict]:
    """(class name, config) of the Keras layer that computes layer ``index`` of ``gru``
    (float32 or float64): a GRU, or a Bidirectional(GRU) when ``gru`` is bidirectional, named
    as Keras numbers them, with return_sequences=True."""
    suffix = f"_{index}" if index else ""
    if not gru.bidirectional:
        return "GRU", _gru_config(f"gru{suffix}", gru, go_backwards)
    inner = _gru_config(f"forward_gru{suffix}", gru, False)
    back = _gru_config(f"backward_gru{suffix}", gru, True)
    return "Bidirectional", {
        "name": f"bidirectional{suffix}",
        "trainable": True,
        "dtype": inner["dtype"],
        "merge_mode": "concat",
        "layer": {"module": "keras.layers", "class_name": "GRU", "config": inner},
        "backward_layer": {"module": "keras.layers", "class_name": "GRU", "config": back},
    }
