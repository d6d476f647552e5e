"""Stacks of layers advanced one time step at a time, without autograd: the math behind
`gru.GRU.stream` and `gru.MinGRU.stream`.

Each stepper copies the weights when it is made and keeps every buffer a step needs, so on the
CPU a step allocates nothing: the engine's compiled step for a GRU (`gru.kernels.pack` /
`gru.kernels.step`), NumPy for a minGRU (`gru.kernels.min_gru_step`); elsewhere composed torch
operations.

Shapes: L layers, B batch, I input features, H hidden units.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from gru import kernels
from gru.ops.composed import gru_cell
from gru.ops.dispatch import stream_backend
from gru.ops.scan import min_gru_step

__all__ = ["MinGRUStepper", "Stepper"]


def _np(t: Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().numpy()


class Stepper:
    """Advances a stack of unidirectional GRU layers one time step at a time.

    ``layers`` is a list of ``(w_ih, w_hh, b_ih, b_hh)`` per layer (biases None without
    bias); ``state`` (L, B, H) is updated in place (on the engine it becomes a view of the
    engine's own buffer: read the stepper's ``state``). ``layer_norms`` (g_ih, c_ih, g_hh,
    c_hh) per layer and ``zoneout`` p have their evaluation semantics.
    """

    def __init__(
        self, layers, state: Tensor, *, reset_after: bool, backend: str, layer_norms=None,
        zoneout: float = 0.0,
    ) -> None:  # fmt: skip
        self.reset_after = reset_after
        L = state.shape[0]
        variants = bool(layer_norms) or bool(zoneout)
        self.fused = stream_backend(backend, state, variants) == "fused"
        # On the engine a step is ``kernel(x, *arguments)``, or ``entry(x, *arguments)`` for an x
        # already checked (`gru.kernels.PackedStack`); else None.
        self.kernel, self.entry, self.arguments = None, None, ()
        if not self.fused:
            self.state = state
            self.layers = [tuple(None if w is None else w.detach() for w in ws) for ws in layers]
            self.layer_norms = [tuple(p.detach() for p in ln) for ln in layer_norms or []]
            self.layer_norms = self.layer_norms or [None] * L
            self.zoneout = zoneout or None
            return
        arrays = [tuple(_np(w) for w in ws) for ws in layers]
        stack = kernels.pack(
            arrays, state.shape[1], reset_after=reset_after, dtype=_np(state).dtype
        )
        self.state = torch.from_numpy(stack.state)  # shares memory with the engine's buffer
        self.out_np = stack.output  # what `step` returns, overwritten by the next step
        self.out = torch.from_numpy(stack.output)
        self.kernel, self.entry = stack.kernel, stack.entry
        self.arguments = (stack.weights, stack.work)

    def step(self, x):
        """Advance every layer by one step from x (B, I); returns the top layer's output (B, H).

        On the CPU engine x is a C-contiguous NumPy array of the stack's dtype, and the result
        is a buffer that the next step overwrites.
        """
        if self.fused:
            self.kernel(x, *self.arguments)
            return self.out_np
        with torch.no_grad():
            h = x
            for i, (w_ih, w_hh, b_ih, b_hh) in enumerate(self.layers):
                h = gru_cell(
                    h, self.state[i], w_ih, w_hh, b_ih, b_hh, reset_after=self.reset_after,
                    layer_norm=self.layer_norms[i], zoneout=self.zoneout,
                )  # fmt: skip
                self.state[i] = h
        return h


class MinGRUStepper:
    """Advances a stack of minGRU layers one time step at a time.

    ``layers`` is a list of ``(w_z, b_z, w_h, b_h)`` per layer (biases None without bias);
    ``state`` (L, B, H) is updated in place. For float32 and float64 CPU tensors a step runs in
    NumPy on buffers made once (``numpy`` is True, `step_numpy` takes and returns arrays);
    elsewhere it runs torch operations (`step`).
    """

    def __init__(self, layers, state: Tensor) -> None:
        _, B, H = state.shape
        self.state = state
        with torch.no_grad():
            # Per layer, both projections in one matrix: rows [z | h], (2H, I_k), and (2H,).
            self.layers = []
            for w_z, b_z, w_h, b_h in layers:
                w = torch.cat([w_z, w_h]).detach().clone()  # (2H, I_k)
                b = state.new_zeros(2 * H) if b_z is None else torch.cat([b_z, b_h]).detach()
                self.layers.append((w, b.clone()))
        self.numpy = state.device.type == "cpu" and state.dtype in (torch.float32, torch.float64)
        if self.numpy:
            self.np_layers = [(w.numpy().T.copy(), b.numpy()) for w, b in self.layers]
            self.state_np = state.numpy()  # shares memory with the state tensor
            self.buffers = kernels.MinGRUBuffers(B, H, self.state_np.dtype)
            self.out = torch.from_numpy(self.buffers.out)  # the top h_t, as a tensor

    def step_numpy(self, x: np.ndarray) -> np.ndarray:
        """Advance every layer from x (B, I) in NumPy; the top h_t, overwritten next step."""
        return kernels.min_gru_step(x, self.np_layers, self.state_np, self.buffers)

    @torch.no_grad()
    def step(self, x: Tensor) -> Tensor:
        """Advance every layer from x (B, I) with torch operations; returns the top h_t."""
        H = self.state.shape[-1]
        layer_input = x  # (B, I_k)
        for layer, (w, b) in enumerate(self.layers):
            gx = torch.addmm(b, layer_input, w.T)  # (B, 2H)
            h = min_gru_step(gx[:, :H], gx[:, H:], self.state[layer])  # (B, H)
            self.state[layer].copy_(h)
            layer_input = h
        return layer_input
