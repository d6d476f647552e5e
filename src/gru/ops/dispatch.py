"""Which implementation computes a layer: the one backend decision of the package.

    "fused"   the compiled CPU engine (`gru.ops.fused`): CPU tensors of float32 or float64
    "torch"   composed torch operations (`gru.ops.composed`): any device, any dtype
    "auto"    "fused" where it applies, else "torch"; on CUDA, whole reset-after stacks
              without variants go to cuDNN (`gru.ops.cudnn`)

bfloat16 on the CPU, without gradients and variants ("auto" or "fused"): a layer whose input
and weights are bfloat16, or float32 under ``torch.autocast("cpu", dtype=torch.bfloat16)``,
runs on the engine with bfloat16 products (`gru.ops.fused.bf16_sequence`) and returns its
input's dtype (bfloat16, or float32 under autocast, as torch.nn.GRU returns there). Where the
CPU has no bfloat16 matrix units (`bf16_hardware`: AMX) the same call runs float32 products
and says so once. With gradients, bfloat16 layers take composed torch operations and float32
layers under autocast the float32 engine, as before.

The engine is started on its first use (`start_engine`), not on import: that binds the BLAS
torch carries for the engine's large layers and tunes the C allocator (see there).
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import torch
from torch import Tensor

from gru import kernels
from gru.ops import aside, composed, fused
from gru.ops.engine import start_engine

__all__ = [
    "BACKENDS",
    "bf16_hardware",
    "bf16_products",
    "gru_sequence",
    "resolve_backend",
    "start_engine",
    "stream_backend",
    "uses_cudnn",
]

BACKENDS = ("auto", "fused", "torch")
_FUSED_DTYPES = (torch.float32, torch.float64)
_NAMES = {torch.float32: "float32", torch.float64: "float64"}
_BF16 = torch.bfloat16
_said_no_bf16: list[bool] = []


@functools.cache
def bf16_hardware() -> bool:
    """Whether this CPU has bfloat16 matrix units, the ones that make bfloat16 products faster
    than float32: ``amx_bf16`` among the flags of /proc/cpuinfo (Linux), else torch's CPU
    capability naming AMX. ``avx512_bf16`` alone does not count: on two such CPUs (an AMD EPYC
    and an Intel Xeon without AMX) MKL's and oneDNN's bfloat16 GEMMs ran at 0.2–1.0× their
    float32 rate (the README's "bfloat16")."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return "amx_bf16" in flags
    except OSError:
        pass
    capability = torch.backends.cpu.get_cpu_capability().upper()
    return "AMX" in capability


def bf16_products() -> bool:
    """Whether bfloat16 layers get bfloat16 products here: the CPU has the matrix units and
    the engine a bfloat16 GEMM. If not, says once (a warning) that they run float32 products."""
    start_engine()
    if bf16_hardware() and kernels.bf16.available():
        return True
    if not _said_no_bf16:
        _said_no_bf16.append(True)
        why = (
            "this CPU has no bfloat16 matrix units (amx_bf16), without which bfloat16 GEMMs "
            "are no faster than float32"
            if not bf16_hardware()
            else "torch's BLAS has no bfloat16 GEMM (gemm_bf16bf16f32_)"
        )
        warnings.warn(
            f"gru: {why}; bfloat16 layers run with float32 products (same results within "
            "bfloat16's precision, no bfloat16 speed-up)",
            RuntimeWarning,
            stacklevel=3,
        )
    return False


def _bf16_output_dtype(x: Tensor, w: Tensor) -> torch.dtype | None:
    """The dtype a bfloat16 run on the engine returns, or None where none applies: bfloat16
    for bfloat16 input and weights; float32 for float32 ones under CPU autocast to bfloat16
    (torch.nn.GRU returns float32 there)."""
    if x.device.type != "cpu" or x.dtype != w.dtype:
        return None
    if x.dtype == torch.bfloat16:
        return torch.bfloat16
    autocast = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == _BF16
    return torch.float32 if x.dtype == torch.float32 and autocast else None


def resolve_backend(backend: str, x: Tensor, hidden_size: int) -> str:
    """The backend that computes a layer on ``x``: "fused" or "torch" (ValueError if unable)."""
    fused_ok = x.device.type == "cpu" and x.dtype in _FUSED_DTYPES
    if backend == "fused" and not fused_ok:
        raise ValueError(
            "backend='fused' runs on CPU tensors of float32 or float64, got a "
            f"{x.dtype} tensor on {x.device}; use backend='auto' (or 'torch') for it"
        )
    if backend == "torch" or not fused_ok:
        return "torch"
    start_engine()
    if not kernels.supports(hidden_size):
        if backend == "fused":
            raise ValueError(
                f"backend='fused' needs a BLAS for hidden_size={hidden_size} and found none in "
                "torch; use backend='auto'"
            )
        return "torch"
    return "fused"


def _engine_ready(x: Tensor, args) -> bool:
    """Whether the engine's kernels for this call (with gradients or not) are ready
    (`gru.ops.aside`); traced calls and layers wide enough for the BLAS loops compile in place."""
    if (
        torch.compiler.is_compiling()  # a traced graph holds the engine's operator either way
        or torch.jit.is_tracing()
        or kernels.recurrence.uses_blas(args[3].shape[1])
    ):
        return True
    grad = torch.is_grad_enabled() and any(isinstance(t, Tensor) and t.requires_grad for t in args)
    if not grad:
        return aside.engine_ready(_NAMES[x.dtype], "inference")
    name = _NAMES[x.dtype]
    if aside.state(name, "training") == "ready":
        return True  # a set lookup: the plan below is for a first call only
    B, H, threads, reset_after = x.shape[1], args[3].shape[1], torch.get_num_threads(), args[6]
    if kernels.tiles_training.shards(B, H, np.dtype(name), reset_after, threads):
        return aside.engine_ready(name, "training", "tiles-backward")
    width = kernels.padding.padded_size(H)
    plan = kernels.recurrence.packed_plan(B, width, np.dtype(name), threads, backward=True)
    return aside.engine_ready(name, "training", "packed-backward" if plan > 0 else "backward")


def uses_cudnn(device: torch.device, backend: str, reset_after: bool, variants: bool) -> bool:
    """Whether torch's native GRU (cuDNN) computes a whole stack on ``device``.

    Only on CUDA, with backend "auto", for the convention it computes (reset after) and
    without variants: cuDNN has no layer norm, zoneout or recurrent dropout, so a layer with
    any of them runs layer by layer on composed torch operations there.
    """
    return device.type == "cuda" and backend == "auto" and reset_after and not variants


def stream_backend(backend: str, state: Tensor, variants: bool) -> str:
    """The backend of a stream of ``state`` (L, B, H): "fused" (the engine's step) or "torch".

    A stream runs on any device, so "fused" means "auto" here; the variants step on composed
    operations (in evaluation they are a layer norm and zoneout's expectation).
    """
    if variants:
        return "torch"
    return resolve_backend("auto" if backend == "fused" else backend, state, 0)


def gru_sequence(
    x: Tensor,
    h0: Tensor | None,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None,
    b_hh: Tensor | None,
    *,
    reset_after: bool = True,
    reverse: bool = False,
    lengths: Tensor | None = None,
    backend: str = "auto",
    layer_norm: tuple[Tensor, Tensor, Tensor, Tensor] | None = None,
    zoneout: Tensor | float | None = None,
    recurrent_mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Run one GRU layer in one direction over x (T, B, I) from h0 (B, H) (None: zeros).

    ``lengths`` (B,) int64 on the CPU, each in [1, T], or None for all T: sequence b is
    updated for t < lengths[b] only, its outputs past that are zero and its final state is the
    one at its last step. ``reverse`` reads each sequence backwards within its length.
    The variants (see `gru.reference`): ``layer_norm`` = (g_ih, c_ih, g_hh, c_hh), each (3H,);
    ``zoneout`` = d_t (T, B, H) by position (training) or p (evaluation); ``recurrent_mask`` =
    m (B, H). Returns ``(output (T, B, H), h_n (B, H))``. Arguments are trusted (validated by
    `gru.nn`).
    """
    if lengths is not None and bool((lengths == x.shape[0]).all()):
        lengths = None  # nothing to mask
    args = (x, h0, w_ih, w_hh, b_ih, b_hh, reset_after, reverse, lengths)
    variants = layer_norm is not None or zoneout is not None or recurrent_mask is not None
    out_dtype = _bf16_output_dtype(x, w_ih)
    if (
        out_dtype is not None
        and backend != "torch"
        and not variants
        and not torch.compiler.is_compiling()
        and not (
            torch.is_grad_enabled() and any(isinstance(t, Tensor) and t.requires_grad for t in args)
        )
    ):
        products = bf16_products()
        if products or kernels.supports(w_hh.shape[1]):
            return fused.bf16_sequence(*args, out_dtype=out_dtype, bf16_products=products)
    if resolve_backend(backend, x, w_hh.shape[1]) == "fused":
        if not variants:
            if backend == "auto" and not _engine_ready(x, args):
                return composed.sequence(*args, None, None, None)  # compiling aside
            return fused.sequence(*args)
        if not torch.compiler.is_compiling():  # traced graphs take the composed operations
            return fused.variant_sequence(*args, layer_norm, zoneout, recurrent_mask)
    return composed.sequence(*args, layer_norm, zoneout, recurrent_mask)
