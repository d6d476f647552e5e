"""One time step of a stack of unidirectional layers, for streaming: no allocation per step.

`pack` lays a stack's weights out once in the flat array that the compiled step reads (see
`step_after`): per layer W_ihᵀ, W_hhᵀ, the folded bias b_x and b_hn
(`gru.kernels.padding.fold_biases`). H is not padded: a step is one row per batch element,
and copies would cost more than the loops' scalar remainder.

Shapes: L layers, B batch, I input features (of the first layer), H hidden units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import carray, njit, typeof

from gru.kernels.compiling import first_call, ready
from gru.kernels.padding import fold_biases
from gru.kernels.products import ENTRY, INLINE, matvec_t, pointer
from gru.kernels.rows import gates_after, gates_before_n, gates_before_rz

__all__ = ["STEP_SCRATCH", "PackedStack", "pack", "step", "step_after", "step_before"]


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


# --- one step -----------------------------------------------------------------------------
# A step is about a microsecond of work, so its views are pointer views (`pointer`): no reference
# counts, no reshape calls, which cost a third of the step as ordinary slices.

STEP_SCRATCH = 8
"""Rows of (B, H) after a stack's state and outputs in its ``work``: gx and gh (three each), r ⊙ h
and z."""


@njit(**INLINE)
def _step_layer(v, I, weights, o, work, layer, reset_after):
    """Layer ``layer`` of a stack from v (B, I), its weights from ``weights[o:]``; returns the
    offset of the next layer's weights."""
    n_rows, B, H = work.shape
    L = (n_rows - STEP_SCRATCH) // 2
    N = 3 * H
    w_ih_t = carray(pointer(weights, o), (I, N))
    w_hh_t = carray(pointer(weights, o + I * N), (H, N))
    b_x = carray(pointer(weights, o + (I + H) * N), (N,))
    b_hn = carray(pointer(weights, o + (I + H + 1) * N), (H,))
    h = carray(pointer(work, layer * B * H), (B, H))
    out = carray(pointer(work, (L + layer) * B * H), (1, B, H))
    s = 2 * L * B * H
    gx = carray(pointer(work, s), (1, B, N))  # as the gate helpers read it
    gx2 = carray(pointer(work, s), (B, N))  # as the products write it
    gh = carray(pointer(work, s + B * N), (B, N))
    rh = carray(pointer(work, s + 2 * B * N), (B, H))
    z_ = carray(pointer(work, s + 2 * B * N + B * H), (B, H))
    for b in range(B):
        matvec_t(v, b, b, w_ih_t, 0, N, gx2, False)
        for j in range(N):
            gx2[b, j] += b_x[j]
        if reset_after:
            matvec_t(h, b, b, w_hh_t, 0, N, gh, False)
            gates_after(gx, 0, b, gh, b_hn, h, b, out, gx, False)
        else:
            matvec_t(h, b, b, w_hh_t, 0, 2 * H, gh, False)
            gates_before_rz(gx, 0, b, gh, h, b, rh, z_, gx, False)
            matvec_t(rh, b, b, w_hh_t, 2 * H, H, gh, False)
            gates_before_n(gx, 0, b, gh, h, b, z_, out, gx, False)
    return o + (I + H + 1) * N + H


@njit(**INLINE)
def _step_stack(x, weights, work, reset_after):
    n_rows, B, H = work.shape
    L = (n_rows - STEP_SCRATCH) // 2
    o = _step_layer(x, x.shape[1], weights, 0, work, 0, reset_after)
    for layer in range(1, L):
        v = carray(pointer(work, (L + layer - 1) * B * H), (B, H))
        o = _step_layer(v, H, weights, o, work, layer, reset_after)


@njit(**ENTRY)
def step_after(x, weights, work):
    """One step, reset after, of a stack of layers for every row of x (B, I), without allocating.

    ``weights`` holds per layer W_ihᵀ (I_k, 3H), W_hhᵀ (H, 3H), b_x (3H: b_ih plus the recurrent
    biases outside r) and b_hn (H), flat, one layer after another (I_k = H above the first);
    ``work`` (2L + STEP_SCRATCH, B, H) holds the state h of every layer, then their outputs,
    then the scratch. Three arguments, nothing returned: a compiled call costs more the more it
    unpacks and boxes, and the step itself is about a microsecond. The top layer's output is
    ``work[2L − 1]``, a view the caller keeps.
    """
    _step_stack(x, weights, work, True)


@njit(**ENTRY)
def step_before(x, weights, work):
    """`step_after` with the reset gate before the recurrent product."""
    _step_stack(x, weights, work, False)
