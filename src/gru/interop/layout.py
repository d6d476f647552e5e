"""The one gate-order table, and every framework's packing of a GRU's weights converted to ours.

Every weight and bias of a GRU stacks the blocks of its three gates along one axis of size 3H.
The frameworks agree on the gates but not on their order:

    framework   order        weights
    gru, torch  r, z, n      weight_ih (3H, I), weight_hh (3H, H), bias_ih (3H,), bias_hh (3H,)
    keras       z, r, h      kernel (I, 3H), recurrent_kernel (H, 3H), bias (3H,) or (2, 3H)
    onnx        z, r, h      W (D, 3H, I), R (D, 3H, H), B (D, 6H) = [Wb | Rb]

Keras and ONNX call the candidate state h (h~ in the papers) where torch calls it n; it is the
same gate, written ``n`` in this table. Every converter reorders blocks with `reorder` and
nothing else, so a gate can only be misplaced here, in one line, and a test reads this table.

The packed layout is gru's (and torch's): one ``(w_ih (3H, I), w_hh (3H, H), b_ih (3H,),
b_hh (3H,))`` tuple per layer and direction, biases None without bias. `gru_from_packed` builds a
`gru.GRU` from such tuples and `packed_weights` reads them out of one; `keras_to_packed` /
`packed_to_keras` and `onnx_to_packed` / `packed_to_onnx` convert the other frameworks' arrays,
and `refuse_variants` says what none of them computes.

Shapes: I input features, H hidden units, L layers, D directions (2 if bidirectional).
"""

from __future__ import annotations

import numpy as np
import torch

from gru.nn import GRU, convert
from gru.reference import GATE_ORDERS

__all__ = [
    "ORDER",
    "gru_from_packed",
    "keras_to_packed",
    "onnx_to_packed",
    "packed_to_keras",
    "packed_to_onnx",
    "packed_weights",
    "refuse_variants",
    "reorder",
]

ORDER: dict[str, tuple[str, str, str]] = GATE_ORDERS
"""Order of the gate blocks along the 3H axis, per framework (the table is
`gru.reference.GATE_ORDERS`, where `gru.ops.export` reads it too)."""


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


# --- Keras: kernel (I, 3H), recurrent_kernel (H, 3H), bias (3H,) or (2, 3H) per direction -----


def keras_to_packed(
    kernel, recurrent_kernel, bias=None, *, reset_after: bool, where: str = "keras_to_packed"
) -> tuple:
    """One Keras GRU direction's weights in `gru.GRU`'s packing.

    Takes kernel (I, 3H), recurrent_kernel (H, 3H) and bias (2, 3H) when ``reset_after`` or
    (3H,) when not, or None (``use_bias=False``), gates in Keras order ``z, r, h``. Returns
    ``(w_ih (3H, I), w_hh (3H, H), b_ih (3H,), b_hh (3H,))`` in order ``r, z, n``; the biases
    are None without a bias, and b_hh is zero for ``reset_after=False``. Shapes are checked;
    ``where`` starts the error messages (the function, file and layer being read).

    Keras ``reset_after=True`` keeps b_ih = bias[0] and b_hh = bias[1]. Keras
    ``reset_after=False`` has one bias, added with the input projection: b_ih = bias, b_hh = 0
    (in the reset-before convention every bias sits outside r, so only b_ih + b_hh matters).
    """
    reset_after = bool(reset_after)
    kernel, recurrent = np.asarray(kernel), np.asarray(recurrent_kernel)
    bias = None if bias is None else np.asarray(bias)
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


# --- ONNX: W (D, 3H, I), R (D, 3H, H), B (D, 6H) = [Wb | Rb] per GRU node (one layer) ---------


def onnx_to_packed(W: np.ndarray, R: np.ndarray, B: np.ndarray | None) -> list[tuple]:
    """One ONNX GRU node's W (D, 3H, I), R (D, 3H, H) and B (D, 6H) (None without bias), shapes
    already checked, as D packed ``(w_ih, w_hh, b_ih, b_hh)`` tuples, forward first."""
    H = R.shape[-1]
    directions = []
    for d in range(W.shape[0]):
        w_ih = reorder(W[d], "onnx", "gru")  # (3H, I)
        w_hh = reorder(R[d], "onnx", "gru")  # (3H, H)
        if B is None:
            directions.append((w_ih, w_hh, None, None))
        else:
            b_ih = reorder(B[d, : 3 * H], "onnx", "gru")  # (3H,)
            b_hh = reorder(B[d, 3 * H :], "onnx", "gru")  # (3H,)
            directions.append((w_ih, w_hh, b_ih, b_hh))
    return directions


def packed_to_onnx(directions: list[tuple]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The inverse of `onnx_to_packed`: one layer's D packed tuples as the W (D, 3H, I),
    R (D, 3H, H) and B (D, 6H) of its ONNX GRU node (B None without bias)."""
    W = np.stack([reorder(w_ih, "gru", "onnx") for w_ih, _, _, _ in directions])  # (D, 3H, I)
    R = np.stack([reorder(w_hh, "gru", "onnx") for _, w_hh, _, _ in directions])  # (D, 3H, H)
    if directions[0][2] is None:
        return W, R, None
    B = np.stack(
        [
            np.concatenate([reorder(b_ih, "gru", "onnx"), reorder(b_hh, "gru", "onnx")])
            for _, _, b_ih, b_hh in directions
        ]
    )  # (D, 6H)
    return W, R, B


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


def packed_weights(module: GRU) -> list[tuple]:
    """The inverse of `gru_from_packed`: one ``(w_ih (3H, I), w_hh (3H, H), b_ih (3H,),
    b_hh (3H,))`` tuple of NumPy arrays per layer and direction of ``module`` (L·D tuples,
    layer-major, forward first), biases None without bias."""
    return [
        tuple(None if w is None else w.detach().cpu().numpy() for w in module.layer_weights(i))
        for i in range(len(module.all_weights))
    ]


def refuse_variants(owner: str, module: GRU, *, inference_only: bool) -> None:
    """Refuse a `gru.GRU` whose variants the target format cannot represent exactly.

    No other framework's GRU has a layer norm or zoneout (which also changes evaluation: it
    keeps p of the previous state). Recurrent dropout acts in training only, so a format that
    only runs inference (``inference_only``) represents the layer exactly; a training module
    (torch.nn.GRU) would silently lose it.
    """
    convert.refuse_variants(owner, module.variant_settings(inference_only=inference_only))
