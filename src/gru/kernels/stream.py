"""One time step of a stack of unidirectional layers, for streaming: no allocation per step.

`pack` lays a stack's weights out once in the flat array that the compiled step reads (see
`gru.kernels.rows.step_after`): per layer W_ihᵀ, W_hhᵀ, the folded bias b_x and b_hn
(`gru.kernels.padding.fold_biases`). H is not padded: a step is one row per batch element,
and copies would cost more than the loops' scalar remainder.

Shapes: L layers, B batch, I input features (of the first layer), H hidden units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import typeof

from gru.kernels.compiling import first_call, ready
from gru.kernels.padding import fold_biases
from gru.kernels.rows import STEP_SCRATCH, step_after, step_before

__all__ = ["PackedStack", "pack", "step"]


@dataclass
class PackedStack:
    """A stack's weights and state as its compiled step reads them.

    ``kernel(x, weights, work)`` advances every layer by one step from x (B, I) (C-contiguous,
    the stack's dtype), in place: the step of the stack's convention, called with the arrays
    apart, not as the PackedStack (a compiled call costs more the more it has to unpack).
    ``entry`` is the same step's compiled entry point for exactly these types, without Numba's
    type resolution (~0.15 µs of a ~2 µs step): it checks nothing, so a caller passes it only
    an x it has checked (a C-contiguous ndarray of the stack's dtype and shape (B, I)).
    ``weights`` the flat weights; ``work`` (2L + 8, B, H): h of every layer, their outputs,
    then the scratch; ``state`` (L, B, H) and ``output`` (B, H), the top layer's output
    (overwritten by the next step), are views of ``work``.
    """

    kernel: object
    entry: object
    weights: np.ndarray
    work: np.ndarray
    state: np.ndarray
    output: np.ndarray
    reset_after: bool
    input_size: int


def pack(layers, batch_size: int, *, reset_after: bool, dtype) -> PackedStack:
    """``layers``: per layer ``(w_ih (3H, I_k), w_hh (3H, H), b_ih, b_hh)`` as stored (biases
    None without bias), I_k = H above the first layer. The state starts at zeros."""
    L, B = len(layers), batch_size
    H = layers[0][1].shape[1]
    blocks = []
    for w_ih, w_hh, b_ih, b_hh in layers:
        b_x, b_hn = fold_biases(b_ih, b_hh, reset_after, dtype)
        parts = [
            np.asarray(w_ih).T,  # (I_k, 3H)
            np.asarray(w_hh).T,  # (H, 3H)
            np.zeros(3 * H, dtype) if b_x is None else b_x,
            np.zeros(H, dtype) if b_hn is None else b_hn,
        ]
        blocks += [np.ascontiguousarray(part, dtype=dtype).ravel() for part in parts]
    work = np.zeros((2 * L + STEP_SCRATCH, B, H), dtype)  # h, outputs, then scratch
    weights = np.concatenate(blocks)
    kernel = step_after if reset_after else step_before
    key = ("step", reset_after, np.dtype(dtype))
    x = np.zeros((B, layers[0][0].shape[1]), dtype)
    if not ready(key):  # compile the step where a stream starts, not inside its first step
        first_call(key, "streaming", kernel, x, weights, work.copy())
    compiled = kernel.overloads.get(tuple(typeof(a) for a in (x, weights, work)))
    entry = kernel if compiled is None else compiled.entry_point
    state, output = work[:L], work[2 * L - 1]
    return PackedStack(kernel, entry, weights, work, state, output, reset_after, x.shape[1])


def step(x: np.ndarray, stack: PackedStack) -> None:
    """Advance every layer of ``stack`` by one step from x (B, I) (C-contiguous, the stack's
    dtype), in place; the top layer's output is then in ``stack.output``. A stream that steps
    often calls ``stack.kernel(x, stack.weights, stack.work)`` itself, as `gru.ops.Stepper`
    does: the same, without this call's checks (the step reads x by the stack's sizes, so an x
    of another shape would be read out of bounds)."""
    expected = (stack.work.shape[1], stack.input_size)
    if not isinstance(x, np.ndarray) or x.shape != expected or x.dtype != stack.weights.dtype:
        got = f"{type(x).__name__} {getattr(x, 'shape', '')} {getattr(x, 'dtype', '')}".strip()
        raise ValueError(
            f"kernels.step: x must be an ndarray of shape {expected} and dtype "
            f"{stack.weights.dtype}, got {got}"
        )
    stack.kernel(x, stack.weights, stack.work)
