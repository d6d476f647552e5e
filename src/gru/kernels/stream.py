"""One time step of a stack of unidirectional layers, for streaming: no allocation per step.

`pack` lays a stack's weights out once in the flat arrays that `step` reads (see
`gru.kernels.rows.step_stack`): per layer W_ihᵀ, W_hhᵀ, the folded bias b_x and b_hn
(`gru.kernels.padding.fold_biases`). H is not padded: a step is one row per batch element,
and copies would cost more than the loops' scalar remainder.

Shapes: L layers, B batch, I input features (of the first layer), H hidden units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gru.kernels.compiling import first_call, ready
from gru.kernels.padding import fold_biases
from gru.kernels.rows import step_stack

__all__ = ["PackedStack", "pack", "step"]


@dataclass
class PackedStack:
    """A stack's weights and state as `step` reads them.

    ``weights`` the flat weights; ``work`` h (L, B, H), then the outputs (L, B, H), then the
    scratch; ``layout`` [L, B, H, then per layer the offsets of W_ihᵀ, W_hhᵀ, b_x, b_hn in
    ``weights`` and its input size]; ``state`` and ``output`` views of ``work``: h of every
    layer (L, B, H), updated in place, and the top layer's output (B, H), overwritten by the
    next step.
    """

    weights: np.ndarray
    work: np.ndarray
    layout: np.ndarray
    state: np.ndarray
    output: np.ndarray
    reset_after: bool


def pack(layers, batch_size: int, *, reset_after: bool, dtype) -> PackedStack:
    """``layers``: per layer ``(w_ih (3H, I_k), w_hh (3H, H), b_ih, b_hh)`` as stored (biases
    None without bias). The state starts at zeros."""
    L, B = len(layers), batch_size
    H = layers[0][1].shape[1]
    blocks, layout = [], [L, B, H]
    offset = 0
    for w_ih, w_hh, b_ih, b_hh in layers:
        b_x, b_hn = fold_biases(b_ih, b_hh, reset_after, dtype)
        parts = [
            np.asarray(w_ih).T,  # (I_k, 3H)
            np.asarray(w_hh).T,  # (H, 3H)
            np.zeros(3 * H, dtype) if b_x is None else b_x,
            np.zeros(H, dtype) if b_hn is None else b_hn,
        ]
        for part in parts:
            layout.append(offset)
            blocks.append(np.ascontiguousarray(part, dtype=dtype).ravel())
            offset += part.size
        layout.append(w_ih.shape[1])
    work = np.zeros(2 * L * B * H + 8 * B * H, dtype)  # h, outputs, then scratch
    state = work[: L * B * H].reshape(L, B, H)
    output = work[L * B * H : 2 * L * B * H].reshape(L, B, H)[-1]
    weights, layout = np.concatenate(blocks), np.asarray(layout, np.int64)
    key = ("step", np.dtype(dtype))
    if not ready(key):  # compile the step where a stream starts, not inside its first step
        x = np.zeros((B, layers[0][0].shape[1]), dtype)
        first_call(key, "streaming", step_stack, x, weights, work.copy(), layout, reset_after)
    return PackedStack(weights, work, layout, state, output, reset_after)


step = step_stack
"""``step(x, weights, work, layout, reset_after)``: advance every layer of a `PackedStack` by
one step from x (B, I) (C-contiguous, the stack's dtype), in place; the top layer's output is
then in ``PackedStack.output``. The arrays are passed apart, not as the PackedStack: a step is
a few microseconds, and a compiled call costs more the more it has to unpack."""
