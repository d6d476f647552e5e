"""Run folders: what a trained model needs to be used again, and what a run needs to resume.

A run folder holds

    config.json             everything needed to rebuild the model and its preprocessing
    model.safetensors       the trained weights
    checkpoint.safetensors  the resumable state: weights, optimizer, scheduler, RNG, counters
    metrics.json            the per-epoch history and final results
    training_curves.png     the history drawn (`gru.training.plot_history`)

No file is ever pickled: tensors go into safetensors, everything else into JSON (the
checkpoint's JSON rides in its safetensors header). Every write is atomic (`gru._io`), so a
crash leaves the previous version of each file intact. Each safetensors file records a SHA-256
of its tensors, one of its metadata (the training state, the checksum of the config.json it
belongs to) and so of every byte that is loaded, so a truncated or altered file, or a
config.json changed after training, is refused with a message instead of loading silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path

import numpy as np
import safetensors.torch
import torch
from torch import Tensor

from gru._io import atomic_write

__all__ = [
    "CHECKPOINT_FILE",
    "CONFIG_FILE",
    "CURVES_FILE",
    "FORMAT",
    "METRICS_FILE",
    "MODEL_FILE",
    "check_run_dir",
    "config_digest",
    "from_json",
    "get_rng_state",
    "load_config",
    "load_model_state",
    "load_tensors",
    "load_training_state",
    "metadata_digest",
    "optimizer_from_flat",
    "optimizer_to_flat",
    "save_config",
    "save_model",
    "save_tensors",
    "save_training_state",
    "set_rng_state",
    "tensors_digest",
    "to_json",
    "write_json",
]

FORMAT = "gru-run/1"
CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
CHECKPOINT_FILE = "checkpoint.safetensors"
METRICS_FILE = "metrics.json"
CURVES_FILE = "training_curves.png"


# --- JSON ------------------------------------------------------------------------------------


def write_json(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def config_digest(config: dict) -> str:
    """SHA-256 of ``config`` in canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_run_dir(run_dir: str | os.PathLike) -> Path:
    """``run_dir`` as a Path if it is a run folder (a folder with config.json), else raise.

    Raises FileNotFoundError if it does not exist and ValueError if it is not a run folder.
    """
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise FileNotFoundError(f"run: {str(run_dir)!r} does not exist")
    if not run_dir.is_dir() or not (run_dir / CONFIG_FILE).is_file():
        raise ValueError(
            f"run: {str(run_dir)!r} is not a run folder: it has no {CONFIG_FILE} (a run folder "
            f"is what `gru train` writes: {CONFIG_FILE}, {MODEL_FILE}, {METRICS_FILE})"
        )
    return run_dir


def save_config(run_dir: str | os.PathLike, config: dict) -> None:
    """Write ``config`` (a JSON-able dict with a "task" key) as the run's config.json."""
    if "task" not in config:
        raise ValueError("save_config: config must name its task under 'task'")
    write_json(Path(run_dir) / CONFIG_FILE, {"format": FORMAT, **config})


def load_config(run_dir: str | os.PathLike) -> dict:
    """The config.json of a run folder, checked to be one this package wrote."""
    path = check_run_dir(run_dir) / CONFIG_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(
            f"run: {str(path)!r} is not valid JSON (truncated or altered?): {error}"
        ) from None
    if not isinstance(config, dict) or config.get("format") != FORMAT or "task" not in config:
        raise ValueError(
            f"run: {str(path)!r} is not a gru run configuration (expected an object with "
            f"'format': {FORMAT!r} and 'task')"
        )
    return config


# --- safetensors with checksums --------------------------------------------------------------


def tensors_digest(tensors: dict[str, Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def metadata_digest(metadata: dict[str, str]) -> str:
    """SHA-256 of a safetensors file's string ``metadata`` in canonical JSON, its checksums
    left out."""
    rest = {k: v for k, v in metadata.items() if k not in _CHECKSUMS}
    return hashlib.sha256(json.dumps(rest, sort_keys=True).encode("utf-8")).hexdigest()


_TENSORS_SUM, _METADATA_SUM = "gru.tensors_sha256", "gru.metadata_sha256"
_CHECKSUMS = (_TENSORS_SUM, _METADATA_SUM)
# The metadata of a model.safetensors written before the metadata had a checksum: loaded as
# before, since the config's checksum is itself checked against config.json.
_UNSUMMED_MODEL_KEYS = {"format", "gru.format", "gru.config_sha256", _TENSORS_SUM}


def save_tensors(path: str | os.PathLike, tensors: dict[str, Tensor], metadata: dict) -> None:
    """Write ``tensors`` and string ``metadata`` to a safetensors file, atomically, with
    checksums of the tensors and of the metadata added to the metadata."""
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    meta = {
        **metadata,
        _TENSORS_SUM: tensors_digest(tensors),
        _METADATA_SUM: metadata_digest(metadata),
    }
    blob = safetensors.torch.save(tensors, metadata=meta)
    atomic_write(path, lambda f: f.write(blob))


def load_tensors(path: str | os.PathLike) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Read a file written by `save_tensors`: (tensors, metadata), its checksum verified.

    Raises FileNotFoundError if missing and ValueError if it is truncated, not safetensors, or
    its tensors or metadata do not match the checksums stored with them.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"run: {str(path)!r} does not exist")
    blob = path.read_bytes()
    try:
        tensors = safetensors.torch.load(blob)
        header_size = int.from_bytes(blob[:8], "little")
        metadata = json.loads(blob[8 : 8 + header_size]).get("__metadata__") or {}
    except Exception as error:  # safetensors raises its own error types, all of them this one
        raise ValueError(
            f"run: {str(path)!r} is truncated or not a safetensors file: {error}"
        ) from None
    expected = metadata.get(_TENSORS_SUM)
    if expected is None:
        raise ValueError(f"run: {str(path)!r} was not written by gru (it has no checksum)")
    if tensors_digest(tensors) != expected:
        raise ValueError(
            f"run: {str(path)!r} was altered: its tensors do not match the checksum saved with them"
        )
    unsummed = _METADATA_SUM not in metadata and set(metadata) <= _UNSUMMED_MODEL_KEYS
    if not unsummed and metadata.get(_METADATA_SUM) != metadata_digest(metadata):
        raise ValueError(
            f"run: {str(path)!r} was altered: its metadata (the training state, the checksum of "
            f"{CONFIG_FILE}) does not match the checksum saved with it; restore it or train again"
        )
    return tensors, metadata


def _check_config(path: Path, metadata: dict, config: dict) -> None:
    if metadata.get("gru.config_sha256") != config_digest(config):
        raise ValueError(
            f"run: {CONFIG_FILE} of {str(path.parent)!r} does not match {path.name} (it was "
            "changed after the weights were saved); restore it or train again"
        )


def save_model(run_dir: str | os.PathLike, state_dict: dict[str, Tensor], config: dict) -> None:
    """Write the weights ``state_dict`` as model.safetensors, tied to ``config``'s checksum."""
    metadata = {"format": "pt", "gru.format": FORMAT, "gru.config_sha256": config_digest(config)}
    save_tensors(Path(run_dir) / MODEL_FILE, state_dict, metadata)


def load_model_state(run_dir: str | os.PathLike, config: dict | None = None) -> dict[str, Tensor]:
    """The weights of a run, checked against its checksum and its config.json."""
    run_dir = check_run_dir(run_dir)
    config = load_config(run_dir) if config is None else config
    path = run_dir / MODEL_FILE
    if not path.is_file():
        raise ValueError(
            f"run: {str(run_dir)!r} has no {MODEL_FILE} yet (no epoch finished); continue it "
            "with --resume"
        )
    tensors, metadata = load_tensors(path)
    _check_config(path, metadata, config)
    return tensors


# --- optimizer, RNG and the resumable state --------------------------------------------------


def optimizer_to_flat(optimizer: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict]:
    """An optimizer's state_dict as (tensors named "optimizer/<param>/<key>", JSON rest)."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, Tensor):
                tensors[f"optimizer/{index}/{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_flat(
    optimizer: torch.optim.Optimizer, tensors: dict[str, Tensor], info: dict
) -> None:
    """Load what `optimizer_to_flat` wrote into ``optimizer``."""
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer/"):
            _, index, key = name.split("/", 2)
            state.setdefault(int(index), {})[key] = value
    for index, entries in info["scalars"].items():
        state.setdefault(int(index), {}).update(entries)
    groups = [
        {k: (tuple(v) if isinstance(v, list) and k != "params" else v) for k, v in g.items()}
        for g in info["param_groups"]
    ]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def get_rng_state() -> tuple[Tensor, dict]:
    """(torch's CPU generator state as a uint8 tensor, Python's and NumPy's states as JSON)."""
    version, internal, gauss = random.getstate()
    # NumPy's legacy global generator, which callbacks such as `evaluate` may draw from.
    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    info = {
        "python": [version, list(internal), gauss],
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
    }
    return torch.get_rng_state(), info


def set_rng_state(torch_state: Tensor, info: dict) -> None:
    """Restore what `get_rng_state` returned."""
    torch.set_rng_state(torch_state)
    version, internal, gauss = info["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = info["numpy"]
    np.random.set_state((name, np.asarray(keys, np.uint32), pos, has_gauss, cached))  # noqa: NPY002


def save_training_state(
    run_dir: str | os.PathLike, tensors: dict[str, Tensor], state: dict, config: dict
) -> None:
    """Write checkpoint.safetensors: ``tensors`` plus the JSON ``state``, atomically."""
    metadata = {
        "gru.format": FORMAT,
        "gru.config_sha256": config_digest(config),
        "gru.state": json.dumps(state, separators=(",", ":")),
    }
    save_tensors(Path(run_dir) / CHECKPOINT_FILE, tensors, metadata)


def load_training_state(
    run_dir: str | os.PathLike, config: dict
) -> tuple[dict[str, Tensor], dict] | None:
    """(tensors, state) from a run's checkpoint.safetensors, or None if it has none yet."""
    path = Path(run_dir) / CHECKPOINT_FILE
    if not path.is_file():
        return None
    tensors, metadata = load_tensors(path)
    _check_config(path, metadata, config)
    try:
        state = json.loads(metadata["gru.state"])
    except (KeyError, json.JSONDecodeError):
        raise ValueError(f"run: {str(path)!r} has no readable training state") from None
    return tensors, state


def to_json(value):
    """``value`` as JSON holds it: a NumPy array as {"array": its values, "dtype"}, a NumPy
    scalar as a Python number; anything else as it is (`from_json` reads it back)."""
    if isinstance(value, np.ndarray):
        return {"array": value.tolist(), "dtype": value.dtype.str}
    return value.item() if isinstance(value, np.generic) else value


def from_json(value):
    """The value `to_json` wrote: its arrays NumPy arrays again."""
    if isinstance(value, dict) and "array" in value:
        dtype = np.dtype(value["dtype"])
        return np.asarray(value["array"], dtype=dtype if dtype.kind != "O" else object)
    return value
