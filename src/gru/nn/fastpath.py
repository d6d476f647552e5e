"""`GRU.forward`'s short way for small stacks without gradients.

For a short sequence of a small layer (S1: T 5, B 32, I 10, H 20) the compiled call
(`gru.kernels.small`) takes about as long as the general path's checks, dispatch and
conversions around it (`gru.ops.gru_sequence` and the layers of `GRU.forward`). Here a plain
inference call (no gradients, no lengths, no variants, no autocast, nothing tracing or
compiling, CPU tensors of the weights' dtype, float32 or float64) goes from the tensors' memory
to one compiled call per layer and direction and back; anything else, bad input included (whose
errors the general path gives), returns None and takes the general path. Both paths compute
with the same compiled function on the same values, so their results agree bit for bit (while
the engine compiles aside, `gru.ops.aside`, both take torch operations).

The NumPy views of the weights are kept per layer (`_Plan`), found again by the Parameters'
data pointers: a view shares the Parameter's memory, so a change made in place
(an optimizer step, ``.data.copy_``, ``load_state_dict``) is read by the next call, and a
Parameter given new memory (``.data =``, ``.to``) gets new views.
"""

from __future__ import annotations

import weakref

import numpy as np
import torch
from torch import Tensor

from gru.kernels.small import forward_small, is_small
from gru.ops import aside
from gru.ops.engine import start_engine

__all__ = ["small_inference"]

_DTYPES = (torch.float32, torch.float64)
_NAMES = {torch.float32: "float32", torch.float64: "float64"}


class _Plan:
    """The weights of every layer and direction as NumPy views, and which (T, B, threads)
    are small (a cache of `is_small`, which asks the OS for the CPUs)."""

    __slots__ = ("dtype", "key", "layers", "small")

    def __init__(self, key: tuple, dtype: torch.dtype, layers: list | None) -> None:
        self.key = key
        self.dtype = dtype
        self.layers = layers  # [(w_ih, w_hh, b_ih, b_hh)] by layer · D + direction; None: never
        self.small: dict[tuple[int, int, int], bool] = {}


_plans: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _key(module) -> tuple:
    """What identifies the weights' memory: the Parameters' data pointers. The plan's views
    hold the memory they point to, so a pointer seen again is the same memory (a Parameter
    given new memory cannot get an old address while a view holds it)."""
    return tuple([p.data_ptr() for p in module._parameters.values()])


def _views(module) -> list | None:
    """The (w_ih, w_hh, b_ih, b_hh) of each layer and direction as NumPy views of the
    Parameters' memory, or None where the short way cannot take them (not CPU, not float32 or
    float64, not contiguous, mixed dtypes, computed from other Parameters)."""
    params = list(module._parameters.values())
    dtype = params[0].dtype
    if (
        not all(p.device.type == "cpu" and p.dtype == dtype and p.is_contiguous() for p in params)
        or dtype not in _DTYPES
    ):
        return None
    start_engine()  # binds the BLAS that `is_small` asks about
    layers = []
    held = {id(p) for p in params}
    for index in range(module.num_layers * (2 if module.bidirectional else 1)):
        w_ih, w_hh, b_ih, b_hh = weights = module.layer_weights(index)
        if any(w is not None and id(w) not in held for w in weights):
            return None  # computed weights (a parametrization): views of them would go stale
        layers.append(
            (
                w_ih.detach().numpy(),
                w_hh.detach().numpy(),
                None if b_ih is None else b_ih.detach().numpy(),
                None if b_hh is None else b_hh.detach().numpy(),
            )
        )
    return layers


def _plan(module) -> _Plan:
    key = _key(module)
    plan = _plans.get(module)
    if plan is None or plan.key != key:
        plan = _Plan(key, module.weight_ih_l0.dtype, _views(module))
        _plans[module] = plan
    return plan


def _all_small(module, plan: _Plan, T: int, B: int) -> bool:
    threads = torch.get_num_threads()
    known = plan.small.get((T, B, threads))
    if known is None:
        D = 2 if module.bidirectional else 1
        H = module.hidden_size
        dtype = np.float32 if plan.dtype == torch.float32 else np.float64
        known = all(
            is_small(T, B, module.input_size if layer == 0 else D * H, H, threads, dtype)
            for layer in range(module.num_layers)
        )
        plan.small[(T, B, threads)] = known
    return known


def small_inference(module, input, hx, lengths) -> tuple[Tensor, Tensor] | None:
    """(output (T, B, D·H), h_n (L·D, B, H)) of ``module`` (a `gru.GRU`) on ``input`` the short
    way, time-major and batched as `GRU._run` returns them, or None where the general path must
    run (see the module's docstring)."""
    if (
        lengths is not None
        or torch.is_grad_enabled()
        or type(input) is not Tensor  # FakeTensors and other subclasses: the general path
        or module.backend == "torch"
        or module.has_variants
        or (module.training and module.dropout and module.num_layers > 1)
        or torch.compiler.is_compiling()
        or torch.jit.is_tracing()
        or torch.is_autocast_enabled("cpu")
        or not input.is_cpu
        or input.dtype not in _DTYPES
        or input.requires_grad
    ):
        return None
    batched = input.dim() == 3
    if not batched and input.dim() != 2:
        return None
    x = input if batched else input.unsqueeze(1)
    if batched and module.batch_first:
        x = x.transpose(0, 1)
    T, B, I = x.shape
    if T == 0 or B == 0 or I != module.input_size:
        return None
    plan = _plan(module)
    layers = plan.layers
    if layers is None or plan.dtype != input.dtype:
        return None
    H = module.hidden_size
    states = len(layers)
    h0 = None
    if hx is not None:
        expected = (states, B, H) if batched else (states, H)
        if (
            type(hx) is not Tensor
            or hx.dtype != input.dtype
            or not hx.is_cpu
            or hx.requires_grad
            or tuple(hx.shape) != expected
        ):
            return None
        h0 = hx.numpy().reshape(states, B, H)
    if not _all_small(module, plan, T, B):
        return None
    if module.backend == "auto" and not aside.engine_ready(_NAMES[input.dtype]):
        return None  # the general path computes with torch operations while the engine compiles
    D = 2 if module.bidirectional else 1
    layer_input = x.numpy()
    threads = torch.get_num_threads()
    h_n = []
    for layer in range(module.num_layers):
        outputs = []
        for direction in range(D):
            index = layer * D + direction
            out, h = forward_small(
                layer_input, *layers[index], None if h0 is None else h0[index],
                reset_after=module.reset_after, reverse=direction == 1, threads=threads,
            )  # fmt: skip
            outputs.append(out)
            h_n.append(h)
        layer_input = outputs[0] if D == 1 else np.concatenate(outputs, axis=-1)
    h_n = h_n[0][None] if states == 1 else np.stack(h_n)
    return torch.from_numpy(layer_input), torch.from_numpy(h_n)
