"""A GRU from any supported file to any other, chosen by file extension, and a Keras model
with more than GRU layers whole to ONNX.

This is what ``gru convert SOURCE DEST`` runs. What a source computes is converted whole or not
at all: a Keras model that holds an Embedding, Dense or Dropout layer besides its GRU becomes a
`KerasModel` and is written as ONNX (the GRU alone only when ``layer`` names it); the formats
that hold GRU layers only refuse it, naming the layers they lack; an ONNX model that computes
more than GRU layers is refused when read. Formats, by the end of the file name:

    .keras        Keras 3 archive (read and written: a Sequential model of the GRU layers)
    .weights.h5   Keras 3 weights (read and written)
    .h5           Keras 2 model or weights (read only)
    .onnx         ONNX model with GRU nodes (read and written; written for a whole Keras model)
    .safetensors  the state dict of a gru.GRU, every constructor setting in the metadata
    .pt           a torch.nn.GRU state dict, loaded with torch.load(weights_only=True): no
                  pickled code runs. gru records the settings a state dict does not hold
                  (batch_first, dropout, ...) in its _metadata, where torch keeps versions;
                  without them it is read as a torch.nn.GRU (reset after, not batch first)

Every file is written atomically: on any error nothing is written and an existing destination
is left as it was. `convert` never writes over its source, nor over an existing file unless
asked (``overwrite=True``, ``gru convert --overwrite``); `write` and the ``save_*`` functions
replace an existing file, as ``torch.save`` does.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch

from gru._extras import require
from gru._io import atomic_write, check_destination, check_zip_member
from gru.interop.keras import read_keras, save_keras
from gru.interop.modules import GoBackwards, KerasModel, unwrap
from gru.interop.onnx import export_onnx, load_onnx
from gru.nn import GRU

__all__ = ["Conversion", "convert", "load_safetensors", "read", "save_safetensors", "write"]

_CONFIG_KEYS = (
    "input_size",
    "hidden_size",
    "num_layers",
    "bias",
    "batch_first",
    "bidirectional",
    "reset_after",
)
# The other constructor settings, by their type and the value a file without them means (files
# written before they were recorded, and torch.nn.GRU state dicts).
_SETTINGS = {
    "batch_first": (bool, False),
    "reset_after": (bool, True),
    "dropout": (float, 0.0),
    "layer_norm": (bool, False),
    "zoneout": (float, 0.0),
    "recurrent_dropout": (float, 0.0),
    "backend": (str, "auto"),
}
_PT_KEY = "gru"  # a .pt state dict's _metadata[""][_PT_KEY]: the settings its shapes do not say
_FORMATS = {
    ".keras": "Keras 3 archive",
    ".weights.h5": "Keras 3 weights",
    ".h5": "Keras 2 HDF5",
    ".onnx": "ONNX",
    ".safetensors": "safetensors",
    ".pt": "PyTorch state dict",
}
_WRITTEN = (".keras", ".weights.h5", ".onnx", ".safetensors", ".pt")


def _format(owner: str, path: Path, allowed) -> str:
    name = path.name.lower()
    for ext in _FORMATS:  # .weights.h5 is tried before .h5
        if name.endswith(ext):
            if ext not in allowed:
                raise ValueError(
                    f"{owner}: {str(path)!r}: {_FORMATS[ext]} files are read, not written; "
                    f"write one of {', '.join(allowed)}"
                )
            return ext
    raise ValueError(
        f"{owner}: {str(path)!r} has no known extension; expected one of {', '.join(allowed)}"
    )


# --- safetensors and .pt ------------------------------------------------------------------


def _recorded(module: GRU) -> dict:
    """Every constructor setting of ``module`` (but device and dtype, which its tensors say)."""
    return {key: getattr(module, key) for key in (*_CONFIG_KEYS, *_SETTINGS)}


def save_safetensors(module: GRU, path) -> Path:
    """Write a `gru.GRU`'s parameters (names as in its state dict) to a ``.safetensors`` file,
    with every constructor setting in the header's metadata, atomically."""
    from safetensors.torch import save

    if not isinstance(module, GRU):
        raise TypeError(f"save_safetensors: module must be a gru.GRU, got {type(module).__name__}")
    metadata = {key: json.dumps(value) for key, value in _recorded(module).items()}
    metadata["format"] = "pt"
    tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    data = save(tensors, metadata=metadata)
    return atomic_write(path, lambda file: file.write(data))


def load_safetensors(path) -> GRU:
    """The `gru.GRU` written by `save_safetensors`, with the settings its metadata records (a
    setting that files of earlier versions do not record takes its default)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    where = f"load_safetensors: {str(path)!r}"
    if path.is_dir():
        raise IsADirectoryError(f"{where}: is a folder, not a safetensors file")
    if not path.is_file():
        raise FileNotFoundError(f"load_safetensors: no such file {str(path)!r}")
    try:
        with safe_open(os.fspath(path), framework="pt") as file:
            metadata = file.metadata() or {}
            tensors = {key: file.get_tensor(key) for key in file.keys()}
    except SafetensorError as error:
        raise ValueError(f"{where}: is not a safetensors file ({error})") from None
    missing = [key for key in _CONFIG_KEYS if key not in metadata]
    if missing:
        raise ValueError(
            f"{where}: its metadata lacks {', '.join(missing)}; it was not written by "
            "gru (save_safetensors), so the layer's configuration is unknown"
        )
    try:
        recorded = {
            key: json.loads(metadata[key]) for key in (*_CONFIG_KEYS, *_SETTINGS) if key in metadata
        }
    except json.JSONDecodeError as error:
        raise ValueError(f"{where}: unreadable metadata ({error})") from None
    config = {key: recorded[key] for key in _CONFIG_KEYS} | _settings(recorded, where)
    return _from_state_dict(tensors, config, where)


def _settings(recorded, where: str) -> dict:
    """The settings of `_SETTINGS` that a file records, each checked to be of its type, and
    the default of each it does not record."""
    if not isinstance(recorded, dict):
        raise ValueError(f"{where}: its recorded settings must be a dict, got {recorded!r}")
    settings = {}
    for key, (kind, default) in _SETTINGS.items():
        value = recorded.get(key, default)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise ValueError(
                f"{where}: its recorded {key} must be a {kind.__name__}, got {value!r}"
            )
        settings[key] = value
    return settings


def _from_state_dict(tensors: dict, config: dict, where: str) -> GRU:
    dtypes = {t.dtype for t in tensors.values()}
    if len(dtypes) != 1 or not next(iter(dtypes)).is_floating_point:
        raise ValueError(f"{where}: the tensors must share one floating dtype, got {dtypes}")
    try:
        with torch.device("meta"):
            module = GRU(**config, dtype=next(iter(dtypes)))
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: records settings no gru.GRU has ({error})") from None
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != got:
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        wrong = sorted(k for k in set(got) & set(expected) if got[k] != expected[k])
        raise ValueError(
            f"{where}: does not hold the parameters of gru.GRU({module.extra_repr()}): "
            f"missing {missing}, unexpected {extra}, wrong shape "
            f"{[(k, got[k], expected[k]) for k in wrong]}"
        )
    module.load_state_dict(tensors, assign=True)
    return module.requires_grad_(True)


def _load_pt(path: Path) -> GRU:
    where = f"read: {str(path)!r}"
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{where}: is not a PyTorch file (torch.save writes a zip archive)")
    with zipfile.ZipFile(path) as archive:  # what each member declares, before torch reads it
        for info in archive.infolist():
            check_zip_member(info, where)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        first = str(error).strip().splitlines()[0]
        raise ValueError(
            f"{where}: cannot be loaded with weights_only=True, so it needs pickle to run code "
            f"from the file, which gru refuses ({first}); save model.state_dict() instead"
        ) from None
    except (RuntimeError, EOFError) as error:
        raise ValueError(f"{where}: is not a PyTorch file ({error})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(
            f"{where}: must hold a state dict (names to tensors), got {type(state).__name__}"
        )
    if "weight_ih_l0" not in state or "weight_hh_l0" not in state:
        raise ValueError(
            f"{where}: is not the state dict of a torch.nn.GRU (no weight_ih_l0 / weight_hh_l0; "
            f"keys {sorted(state)[:6]})"
        )
    config = {
        "input_size": state["weight_ih_l0"].shape[1],
        "hidden_size": state["weight_hh_l0"].shape[1],
        "num_layers": sum(
            1 for key in state if key.startswith("weight_ih_l") and "_reverse" not in key
        ),
        "bias": "bias_ih_l0" in state,
        "bidirectional": "weight_ih_l0_reverse" in state,
    }
    # The other settings as gru recorded them; else those of a torch.nn.GRU (reset after, not
    # batch first), with the layer norms that the parameters show.
    recorded = _pt_recorded(state, where) | {"layer_norm": "ln_ih_weight_l0" in state}
    config |= _settings(recorded, where)
    return _from_state_dict(dict(state), config, where)


def _pt_recorded(state: dict, where: str) -> dict:
    """The settings that `_save_pt` records in a state dict's ``_metadata`` (where torch keeps
    each module's version; torch.nn.GRU.load_state_dict reads past them), or {}."""
    metadata = getattr(state, "_metadata", None)
    top = metadata.get("", {}) if isinstance(metadata, dict) else {}
    recorded = top.get(_PT_KEY, {}) if isinstance(top, dict) else {}
    if not isinstance(recorded, dict):
        raise ValueError(f"{where}: its recorded settings must be a dict, got {recorded!r}")
    unknown = sorted(set(recorded) - set(_SETTINGS))
    if unknown:
        raise ValueError(
            f"{where}: records settings this version of gru does not know: {unknown}; "
            "refusing to convert approximately"
        )
    return recorded


def _save_pt(module: GRU, path: Path) -> Path:
    if not module.reset_after:
        raise ValueError(
            f"write: {str(path)!r}: a .pt state dict is read as a torch.nn.GRU, which computes "
            "only reset_after=True; this layer has reset_after=False (write .safetensors, "
            ".onnx or .keras instead)"
        )
    state = module.state_dict()
    metadata = copy.deepcopy(state._metadata)  # each module's version, as torch.save keeps it
    state = OrderedDict((k, v.detach().cpu().clone()) for k, v in state.items())
    metadata[""] = {**metadata.get("", {}), _PT_KEY: {k: getattr(module, k) for k in _SETTINGS}}
    state._metadata = metadata
    return atomic_write(path, lambda file: torch.save(state, file))


# --- any format ---------------------------------------------------------------------------


def read(path, *, layer: str | None = None) -> GRU | GoBackwards | KerasModel:
    """What a file of any supported format computes, whole: its GRU, or for a Keras model with
    other layers (Embedding, Dense, Dropout) the whole model as a `KerasModel`; ``layer``
    picks one GRU layer of a Keras file. A file that computes more than can be read (an ONNX
    model with other operators, a Keras weights file with other layers) is refused, naming
    what would be lost."""
    path = Path(path)
    ext = _format("read", path, _FORMATS)
    if path.is_dir():
        raise IsADirectoryError(f"read: {str(path)!r} is a folder; give the file to read")
    if not path.is_file():
        raise FileNotFoundError(f"read: no such file {str(path)!r}")
    if layer is not None and ext not in (".keras", ".weights.h5", ".h5"):
        raise ValueError(f"read: layer= picks a layer of a Keras file, not of {str(path)!r}")
    if ext in (".keras", ".weights.h5", ".h5"):
        return read_keras(path, layer=layer)
    if ext == ".onnx":
        return load_onnx(path)
    if ext == ".safetensors":
        return load_safetensors(path)
    return _load_pt(path)


def write(module: GRU | GoBackwards | KerasModel, path) -> Path:
    """Write what `read` gives in the format its file name says (atomically); return the path.

    A `KerasModel` (a Keras model with more than GRU layers) is written whole, as ONNX; the
    other formats hold GRU layers only, so it is refused there, naming the layers they lack.
    """
    path = Path(path)
    ext = _format("write", path, _WRITTEN)
    if isinstance(module, KerasModel):
        if ext == ".onnx":
            return export_onnx(module, path)
        raise ValueError(
            f"write: {str(path)!r}: the model holds {', '.join(module.besides_gru())} besides "
            f"its GRU layers, which a {_FORMATS[ext]} file does not hold; write .onnx to keep "
            "the whole model, or convert the GRU alone with layer=NAME (gru convert --layer NAME)"
        )
    if ext in (".keras", ".weights.h5"):
        return save_keras(module, path)
    if isinstance(module, GoBackwards):
        raise ValueError(
            f"write: {str(path)!r}: this is a Keras GRU with go_backwards=True, which only a "
            "Keras file represents; write .keras or .weights.h5"
        )
    if ext == ".onnx":
        return export_onnx(module, path)
    if ext == ".safetensors":
        return save_safetensors(module, path)
    return _save_pt(module, path)


@dataclass
class Conversion:
    """What `convert` did: ``module`` is what it read and wrote, ``layer`` the Keras layer
    picked (None: the whole of the source)."""

    source: Path
    dest: Path
    module: GRU | GoBackwards | KerasModel
    layer: str | None = None

    def __str__(self) -> str:
        formats = (
            f"converted {self.source} ({_FORMATS[_format('convert', self.source, _FORMATS)]}) "
            f"to {self.dest} ({_FORMATS[_format('convert', self.dest, _WRITTEN)]})"
        )
        if isinstance(self.module, KerasModel):
            return f"{formats}: the whole model, {self.module.describe()}"
        gru = f"gru.GRU({unwrap(self.module).extra_repr()})"
        gru = f"GoBackwards({gru})" if isinstance(self.module, GoBackwards) else gru
        picked = f"layer {self.layer!r} alone, " if self.layer is not None else ""
        return f"{formats}: {picked}{gru}"


def convert(source, dest, *, layer: str | None = None, overwrite: bool = False) -> Conversion:
    """Read what ``source`` computes and write it to ``dest``, each format chosen by extension:
    a GRU to any format, a Keras model with more than GRU layers whole to ONNX (refused by the
    other formats, naming its other layers), or with ``layer`` that one GRU layer alone.

    The destination is checked before anything is read: its format; that it is not ``source``;
    that it does not exist yet, unless ``overwrite``; and that the packages an ONNX file needs
    are installed (the 'onnx' extra). Nothing is written unless the whole conversion succeeds.
    """
    source, dest = Path(source), Path(dest)
    _format("convert", dest, _WRITTEN)
    inputs = {"the source": source}
    check_destination(dest, "convert: dest", inputs=inputs, overwrite=overwrite)
    for path, doing in ((source, "reading"), (dest, "writing")):
        if path.name.lower().endswith(".onnx"):
            require("onnx", "onnx", f"convert: {doing} {str(path)!r} (ONNX)")
    module = read(source, layer=layer)
    write(module, dest)
    return Conversion(source, dest, module, layer)
