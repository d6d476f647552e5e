"""The one gate-order table: how each framework orders the three gate blocks along its 3H axis.

Every weight and bias of a GRU stacks the blocks of its three gates along one axis of size 3H.
The frameworks agree on the gates but not on their order:

    framework   order        weights
    gru, torch  r, z, n      weight_ih (3H, I), weight_hh (3H, H), bias_ih (3H,), bias_hh (3H,)
    keras       z, r, h      kernel (I, 3H), recurrent_kernel (H, 3H), bias (3H,) or (2, 3H)
    onnx        z, r, h      W (D, 3H, I), R (D, 3H, H), B (D, 6H) = [Wb | Rb]

Keras and ONNX call the candidate state h (h~ in the papers) where torch calls it n; it is the
same gate, written ``n`` in this table. Every converter reorders blocks with `reorder` and
nothing else, so a gate can only be misplaced here, in one line, and a test reads this table.
`gru_from_packed` then builds the layer from arrays in this packing, for every converter.
"""

from __future__ import annotations

import numpy as np
import torch

from gru.nn import GRU
from gru.reference import GATES

__all__ = ["ORDER", "gru_from_packed", "refuse_variants", "reorder"]

ORDER: dict[str, tuple[str, str, str]] = {
    "gru": GATES,  # ("r", "z", "n"), the packing of gru.GRU
    "torch": ("r", "z", "n"),
    "keras": ("z", "r", "n"),
    "onnx": ("z", "r", "n"),
}
"""Order of the gate blocks along the 3H axis, per framework."""


def reorder(array: np.ndarray, source: str, target: str, axis: int = 0) -> np.ndarray:
    """Permute the three gate blocks of ``array`` along ``axis`` from ``source``'s order to
    ``target``'s (names of `ORDER`). ``array.shape[axis]`` must be 3H. Returns a new array."""
    array = np.asarray(array)
    if source not in ORDER or target not in ORDER:
        raise ValueError(
            f"reorder: source and target must be among {sorted(ORDER)}, got {source!r} and "
            f"{target!r}"
        )
    size = array.shape[axis]
    if size % 3:
        raise ValueError(
            f"reorder: axis {axis} must hold three gate blocks (a multiple of 3), got size "
            f"{size} in shape {array.shape}"
        )
    blocks = np.split(array, 3, axis=axis)
    by_gate = dict(zip(ORDER[source], blocks, strict=True))
    return np.concatenate([by_gate[gate] for gate in ORDER[target]], axis=axis)


def gru_from_packed(
    weights: list[tuple],
    *,
    input_size: int,
    hidden_size: int,
    num_layers: int,
    bias: bool,
    batch_first: bool,
    bidirectional: bool,
    reset_after: bool,
    dtype: torch.dtype,
) -> GRU:
    """A `gru.GRU` holding ``weights``, one ``(w_ih (3H, I), w_hh (3H, H), b_ih, b_hh)`` tuple of
    packed NumPy arrays per layer and direction (layer-major, forward first), biases None when
    ``bias`` is False. Built on the meta device, so no random numbers are drawn."""
    with torch.device("meta"):
        module = GRU(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first=batch_first,
            bidirectional=bidirectional,
            reset_after=reset_after,
            dtype=dtype,
        )
    names_per_layer = [module.layer_weight_names(i) for i in range(len(module.all_weights))]
    if len(weights) != len(names_per_layer):
        raise ValueError(
            f"gru_from_packed: expected {len(names_per_layer)} (layer, direction) weight "
            f"tuples, got {len(weights)}"
        )
    state = {}
    for names, arrays in zip(names_per_layer, weights, strict=True):
        for name, array in zip(names, arrays, strict=False):
            expected = tuple(getattr(module, name).shape)
            if np.shape(array) != expected:
                raise ValueError(
                    f"gru_from_packed: {name} must have shape {expected}, got {np.shape(array)}"
                )
            state[name] = torch.from_numpy(np.ascontiguousarray(array)).to(dtype)
    module.load_state_dict(state, assign=True)
    return module.requires_grad_(True)


def refuse_variants(owner: str, module: GRU, *, inference_only: bool) -> None:
    """Refuse a `gru.GRU` whose variants the target format cannot represent exactly.

    No other framework's GRU has a layer norm or zoneout (which also changes evaluation: it
    keeps p of the previous state). Recurrent dropout acts in training only, so a format that
    only runs inference (``inference_only``) represents the layer exactly; a training module
    (torch.nn.GRU) would silently lose it.
    """
    found = []
    if module.layer_norm:
        found.append("layer_norm=True")
    if module.zoneout:
        found.append(f"zoneout={module.zoneout}")
    if module.recurrent_dropout and not inference_only:
        found.append(f"recurrent_dropout={module.recurrent_dropout}")
    if found:
        raise ValueError(
            f"{owner}: the target has no GRU with {', '.join(found)}; converting would change "
            "what the layer computes, so it is refused"
        )
