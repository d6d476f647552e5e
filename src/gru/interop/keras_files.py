"""Keras files, read and written with zipfile and h5py, without Keras installed.

A Keras file is read as a chain of `KerasLayer` records (class name, config, weights in the
order of ``get_weights()``); what the layers mean is `gru.interop.keras`'s business. Formats:

    .keras        Keras 3 archive: a zip of ``config.json`` (the model) and
                  ``model.weights.h5`` (under ``layers/<name>/``: ``vars/0, 1, …``, or
                  ``cell/vars/…`` for a GRU, ``forward_layer/`` and ``backward_layer/`` for a
                  Bidirectional)
    .weights.h5   Keras 3 weights, that h5 file alone: no configuration, so a GRU is told by
                  its group's name (``gru``, ``gru_1``, ``bidirectional``, …)
    .h5           Keras 2: ``model_weights`` (or the root, for ``save_weights``) lists
                  ``layer_names``, each layer's group lists ``weight_names``; a whole model
                  also has the ``model_config`` attribute (JSON)

A model's configuration must describe a Sequential model or a functional chain (every layer
reading the one before it, one output). `write_file` writes ``.keras`` (a Sequential model of
the given layers) and ``.weights.h5``, atomically; Keras 2 files are read only.
"""

from __future__ import annotations

import io
import itertools
import json
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gru._io import atomic_write, read_zip_member

__all__ = ["KerasLayer", "malformed", "read_file", "write_file"]

_KERAS_VERSION = "3.15.1"  # written into a .keras archive's metadata.json
_CONFIG_LIMIT = 64 << 20  # bytes of a model's config.json: a configuration, not data


@dataclass
class KerasLayer:
    """One Keras layer: its class name, its config (empty when the file has none) and weights."""

    name: str
    kind: str
    config: dict
    weights: list = field(default_factory=list)
    inbound: str | None = None  # the layer it reads from, in a functional model


# --- reading ------------------------------------------------------------------------------


def read_file(path, owner: str) -> tuple[list[KerasLayer], bool, str]:
    """The layers of a Keras file, whether it holds the model's configuration, and the file's
    name for errors (``"owner: 'path'"``). ``owner`` is the public function reading it."""
    path = Path(path)
    where = f"{owner}: {str(path)!r}"
    if path.is_dir():
        raise IsADirectoryError(f"{owner}: {str(path)!r} is a folder, not a Keras file")
    if not path.is_file():
        raise FileNotFoundError(f"{owner}: no such file {str(path)!r}")
    with malformed(where):
        return _read_layers(path, where)


@contextmanager
def malformed(where: str) -> Iterator[None]:
    """Inside this block a file's content is interpreted: what its content makes fail (a
    setting of the wrong kind, a missing entry) becomes a ValueError naming the file."""
    try:
        yield
    except (AttributeError, KeyError, IndexError, TypeError) as error:
        raise ValueError(
            f"{where}: its model configuration or weights are not laid out as Keras writes "
            f"them ({type(error).__name__}: {error})"
        ) from None
    except ValueError as error:
        if str(error).startswith(where):
            raise
        raise ValueError(f"{where}: {error}") from None


def _read_layers(path: Path, where: str) -> tuple[list[KerasLayer], bool, str]:
    name = path.name.lower()
    if name.endswith(".keras"):
        model_config, blob = _read_archive(path, where)
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


def _read_archive(path: Path, where: str) -> tuple[dict, io.BytesIO]:
    """(the model's config.json, the bytes of model.weights.h5) of a ``.keras`` archive, each
    member's declared size checked before it is read (`gru._io.read_zip_member`)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = set(archive.namelist())
            for member in ("config.json", "model.weights.h5"):
                if member not in members:
                    raise ValueError(
                        f"{where}: the .keras archive has no {member} (it holds {sorted(members)})"
                    )
            text = read_zip_member(archive, "config.json", where, _CONFIG_LIMIT)
            weights = io.BytesIO(read_zip_member(archive, "model.weights.h5", where))
    except zipfile.BadZipFile:
        raise ValueError(f"{where}: is not a .keras archive (not a zip file)") from None
    return _model_config(text, f"{where}: its config.json"), weights


def _model_config(text: str | bytes, where: str) -> dict:
    """A model's configuration (JSON): an object, or ValueError naming it (``where``)."""
    try:
        config = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{where} is not JSON ({error})") from None
    if not isinstance(config, dict):
        raise ValueError(
            f"{where} must be a JSON object (a Keras model's configuration), got "
            f"{type(config).__name__}"
        )
    return config


def _open_h5(data, where: str):
    import h5py

    try:
        return h5py.File(data, "r")
    except OSError as error:
        raise ValueError(f"{where}: is not an HDF5 file ({error})") from None


def _text(value) -> str:
    """An h5 attribute (bytes in files Keras 2 wrote) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


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


def _model_layers(model_config: dict, where: str, weights: dict[str, list]) -> list[KerasLayer]:
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
        kind_of = entry.get("class_name")
        arrays = [] if kind_of == "InputLayer" else weights.get(name, [])
        layers.append(KerasLayer(name, kind_of, layer_config, arrays, inbound))
    if kind != "Sequential":
        _check_chain(layers, config, where)
    return [layer for layer in layers if layer.kind != "InputLayer"]


def _check_chain(layers: list[KerasLayer], config: dict, where: str) -> None:
    """Refuse a functional model that is not a chain: each layer reads the one before it, and
    the last one is the only output."""
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


def _numbered(group) -> list[np.ndarray]:
    """The datasets "0", "1", … of an h5 group, in that order."""
    return [group[key][()] for key in sorted(group, key=int)]


def _keras3_weights(root, where: str) -> dict[str, tuple[str, list]]:
    """{layer name: (group key, weights in get_weights() order)} of a Keras 3 weights file."""
    if "layers" not in root:
        raise ValueError(f"{where}: holds no Keras weights (no 'layers' group)")
    found = {}
    for key, group in root["layers"].items():
        name = _text(group["vars"].attrs.get("name", key) if "vars" in group else key)
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


def _keras3_weights_only(root, where: str) -> list[KerasLayer]:
    """The layers of a Keras 3 ``.weights.h5`` file, which holds no configuration: its GRU
    layers, then the others (so that a reader can name what it leaves out).

    Keras names each layer's group after its class (``gru``, ``gru_1``, ``bidirectional``,
    ``dense``), so that is what tells a GRU here, and the kind of the others (``Dense``); the
    GRU groups come in the order Keras numbered them.
    """

    def number(key: str) -> int:
        tail = key.rsplit("_", 1)[-1]
        return int(tail) if "_" in key and tail.isdigit() else 0

    layers, others = [], []
    for name, (key, arrays) in _keras3_weights(root, where).items():
        if re.fullmatch(r"gru(_\d+)?", key):
            layers.append((number(key), 0, KerasLayer(name, "GRU", {}, arrays)))
        elif re.fullmatch(r"bidirectional(_\d+)?", key) and _looks_like_gru(
            arrays[: len(arrays) // 2]
        ):
            layers.append((number(key), 1, KerasLayer(name, "Bidirectional", {}, arrays)))
        else:
            kind = "".join(word.title() for word in re.sub(r"_\d+$", "", key).split("_"))
            others.append(KerasLayer(name, kind, {}, arrays))
    return [layer for *_, layer in sorted(layers, key=lambda item: item[:2])] + others


def _looks_like_gru(arrays: list) -> bool:
    """Whether ``arrays`` are one GRU direction's: a kernel, a recurrent_kernel (H, 3H) and
    perhaps a bias."""
    return (
        len(arrays) in (2, 3)
        and np.ndim(arrays[1]) == 2
        and np.shape(arrays[1])[1] == 3 * np.shape(arrays[1])[0]
    )


def _legacy_weights(root, where: str) -> dict[str, list[tuple[str, np.ndarray]]]:
    """{layer name: [(weight name, array)]} of a Keras 2 weights group, in the file's order."""
    if "layer_names" not in root.attrs:
        raise ValueError(f"{where}: its model_weights group has no layer_names attribute")
    weights = {}
    for layer_name in root.attrs["layer_names"]:
        layer_name = _text(layer_name)
        if layer_name not in root:
            raise ValueError(f"{where}: layer_names lists {layer_name!r} but it has no group")
        group = root[layer_name]
        arrays = []
        for weight_name in group.attrs.get("weight_names", []):
            weight_name = _text(weight_name)
            if weight_name not in group:
                raise ValueError(
                    f"{where}: layer {layer_name!r} lists weight {weight_name!r} but has none"
                )
            arrays.append((weight_name, group[weight_name][()]))
        weights[layer_name] = arrays
    return weights


def _legacy_layers(h5, where: str) -> tuple[list[KerasLayer], bool]:
    """The layers of a Keras 2 ``.h5`` file (a whole model or save_weights), and whether it has
    the model's configuration. Without one, a GRU is told by its weights' names and shapes, and
    the other layers follow the GRU layers, of an unknown class (so that a reader can name what
    it leaves out)."""
    weights = _legacy_weights(h5["model_weights"] if "model_weights" in h5 else h5, where)
    if "model_config" in h5.attrs:
        model_config = _model_config(_text(h5.attrs["model_config"]), f"{where}: model_config")
        plain = {name: [a for _, a in arrays] for name, arrays in weights.items()}
        return _model_layers(model_config, where, plain), True
    layers, others = [], []
    for name, arrays in weights.items():
        names = [n for n, _ in arrays]
        values = [a for _, a in arrays]
        backward = any("backward" in n for n in names) and any("forward" in n for n in names)
        if backward and _looks_like_gru(values[: len(values) // 2]):
            layers.append(KerasLayer(name, "Bidirectional", {}, values))
        elif _looks_like_gru(values) and any("recurrent_kernel" in n for n in names):
            layers.append(KerasLayer(name, "GRU", {}, values))
        else:
            others.append(KerasLayer(name, "unknown class", {}, values))
    return layers + others, False


# --- writing ------------------------------------------------------------------------------


def write_file(path, layers: list[KerasLayer], owner: str) -> Path:
    """Write GRU and Bidirectional(GRU) ``layers`` (configs as Keras 3 writes them, weights in
    ``get_weights()`` order) as a Keras 3 file Keras loads: ``.keras``, a Sequential model of
    them, or ``.weights.h5``, that model's weights. Written atomically; returns the path."""
    path = Path(path)
    name = path.name.lower()
    if not name.endswith((".keras", ".weights.h5")):
        raise ValueError(
            f"{owner}: {str(path)!r} must end in .keras or .weights.h5 (Keras 2 .h5 files "
            "are not written)"
        )
    if name.endswith(".weights.h5"):
        return atomic_write(path, lambda file: _write_weights(file, layers))
    model = json.dumps(_sequential_config(layers))

    def write_archive(file) -> None:
        weights = io.BytesIO()
        _write_weights(weights, layers)
        with zipfile.ZipFile(file, "w") as archive:
            archive.writestr("metadata.json", json.dumps({"keras_version": _KERAS_VERSION}))
            archive.writestr("config.json", model)
            archive.writestr("model.weights.h5", weights.getvalue())

    return atomic_write(path, write_archive)


def _input_size(layer: KerasLayer) -> int:
    """The features a GRU layer reads: the I of its (first) kernel (I, 3H)."""
    return int(np.shape(layer.weights[0])[0])


def _sequential_config(layers: list[KerasLayer]) -> dict:
    """The config.json of a Sequential model of ``layers``, batch first, any batch and time."""
    dtype = layers[0].config["dtype"]
    input_size = _input_size(layers[0])
    entries = [
        {
            "module": "keras.layers",
            "class_name": layer.kind,
            "config": layer.config,
            "registered_name": None,
            "build_config": {"input_shape": [None, None, _input_size(layer)]},
        }
        for layer in layers
    ]
    first = {
        "module": "keras.layers",
        "class_name": "InputLayer",
        "config": {"batch_shape": [None, None, input_size], "dtype": dtype, "name": "input_layer"},
        "registered_name": None,
    }
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": "sequential",
            "trainable": True,
            "dtype": dtype,
            "layers": [first, *entries],
        },
        "registered_name": None,
        "build_config": {"input_shape": [None, None, input_size]},
    }


def _write_weights(file, layers: list[KerasLayer]) -> None:
    """The model.weights.h5 of a Sequential model of ``layers``, as Keras 3 lays it out."""
    import h5py

    sides = [("forward_layer", "forward_gru"), ("backward_layer", "backward_gru")]
    with h5py.File(file, "w") as h5:
        h5.create_group("vars").attrs["name"] = "sequential"
        for layer in layers:
            group = h5.create_group(f"layers/{layer.name}")
            group.create_group("vars").attrs["name"] = layer.name
            parts = (
                [(group.create_group(side), label) for side, label in sides]
                if layer.kind == "Bidirectional"
                else [(group, None)]
            )
            half = len(layer.weights) // len(parts)
            for i, (part, label) in enumerate(parts):
                if label is not None:
                    part.create_group("vars").attrs["name"] = label
                cell = part.create_group("cell/vars")
                cell.attrs["name"] = "gru_cell"
                for j, array in enumerate(layer.weights[i * half : (i + 1) * half]):
                    cell.create_dataset(str(j), data=array)
