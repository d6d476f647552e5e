"""`GRUStream`: a `GRU` run one time step at a time, for generation and online use.

A step on the CPU engine is a few microseconds of work, so the call's own Python is kept to a
few attribute reads and checks when x_t is what the engine reads as it is (a C-contiguous NumPy
array of the stack's dtype and shape); anything else takes the general way, with its errors.

Shapes: B batch, I input features, H hidden units, L layers.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from gru import ops
from gru.nn._base import RecurrentBase, check_size

__all__ = ["GRUStream"]


class GRUStream:
    """Runs a `GRU` (``module``) one time step at a time, keeping its state between calls.

    ``stream(x_t)`` takes x_t of shape (batch_size, I), or (I,) when batch_size is 1, as a
    torch tensor or a NumPy array, advances every layer by one step and returns the top
    layer's h_t (batch_size, H) (or (H,)) of the same kind. No autograd; on the CPU engine a
    step allocates nothing, and the returned array is a buffer that the next step overwrites
    (copy it to keep it). ``state`` is h (num_layers, batch_size, H); ``reset()`` zeroes it.
    A bidirectional GRU cannot stream: its reverse direction needs the whole sequence.
    """

    def __init__(self, module: RecurrentBase, batch_size: int = 1) -> None:
        if module.bidirectional:
            raise ValueError(
                "GRU.stream: a bidirectional GRU cannot run one step at a time (its reverse "
                "direction reads the sequence from the end); run it on whole sequences"
            )
        self.batch_size = check_size("GRU.stream", "batch_size", batch_size)
        self.input_size = module.input_size
        weight = module.weight_ih_l0
        with torch.no_grad():
            state = weight.new_zeros(module.num_layers, batch_size, module.hidden_size)
        L = module.num_layers
        layer_norms = [module.layer_norm_weights(i) for i in range(L)] if module.layer_norm else []
        # Evaluation semantics: zoneout keeps p of the state, no recurrent dropout.
        self._stepper = ops.Stepper(
            [module.layer_weights(i) for i in range(L)], state, reset_after=module.reset_after,
            backend=module.backend, layer_norms=layer_norms, zoneout=module.zoneout,
        )  # fmt: skip
        self._dtype = weight.dtype
        fused = self._stepper.fused
        # The short way's x_t: exactly this shape and dtype (None: no engine, no short way).
        self._shape = (batch_size, module.input_size)
        self._np_dtype = self._stepper.out_np.dtype if fused else None
        self._out_np = self._stepper.out_np if fused else None
        self._out_torch = self._stepper.out if fused else None
        self._entry = self._stepper.entry  # takes the arrays as they are: only for a checked x
        self._weights, self._work = self._stepper.arguments if fused else (None, None)

    @property
    def state(self) -> Tensor:
        """h of every layer, (num_layers, batch_size, H); assign to it to set the state."""
        return self._stepper.state

    @state.setter
    def state(self, value) -> None:
        value = torch.as_tensor(value, dtype=self._dtype)
        if tuple(value.shape) != tuple(self._stepper.state.shape):
            raise ValueError(
                f"GRUStream.state must have shape {tuple(self._stepper.state.shape)}, "
                f"got {tuple(value.shape)}"
            )
        with torch.no_grad():
            self._stepper.state.copy_(value)

    def reset(self) -> None:
        """Zero the state of every layer."""
        with torch.no_grad():
            self._stepper.state.zero_()

    def __call__(self, x):
        if (
            x.__class__ is np.ndarray
            and x.dtype is self._np_dtype
            and x.shape == self._shape
            and x.flags.c_contiguous
        ):  # the short way: what the engine reads as it is, in one compiled call
            self._entry(x, self._weights, self._work)
            return self._out_np
        return self._step(x)

    def _step(self, x):
        """The general way: torch tensors, (I,) vectors, other layouts, no engine; the errors."""
        stepper = self._stepper
        is_numpy = isinstance(x, np.ndarray)
        shape = x.shape
        B, I = self._shape
        if shape != (B, I) and not (B == 1 and shape == (I,)):
            raise ValueError(
                f"GRUStream: x_t must have shape ({B}, {I})"
                + (f" or ({I},)" if B == 1 else "")
                + f", got {tuple(shape)}"
            )
        if not stepper.fused:
            xt = torch.as_tensor(x, dtype=self._dtype, device=stepper.state.device)
            out = stepper.step(xt.reshape(B, I))
            if is_numpy:
                out = out.cpu().numpy()
            return out if len(shape) == 2 else out[0]
        expected = self._np_dtype if is_numpy else self._dtype
        if x.dtype != expected:
            raise TypeError(f"GRUStream: x_t must have dtype {expected}, got {x.dtype}")
        xn = x if is_numpy else x.detach().numpy()
        if len(shape) == 1 or not xn.flags.c_contiguous:
            xn = np.ascontiguousarray(xn).reshape(B, I)
        out = stepper.step(xn)  # one compiled call, no allocation
        if is_numpy:
            return out if len(shape) == 2 else out[0]
        return self._out_torch if len(shape) == 2 else self._out_torch[0]
