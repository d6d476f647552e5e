"""The compiled engine (`gru.kernels`) behind autograd: CPU tensors of float32 or float64,
and bfloat16 without gradients (`bf16_sequence`).

The engine works on NumPy arrays; this module hands it the tensors' memory (no copies) and
torch's BLAS for its GEMMs (`torch_matmul`), and wraps it for autograd three ways:

- eager mode: `_FusedGRU`, an autograd.Function (the dispatcher's custom-op path costs tens of
  microseconds per call, as much as a short sequence takes), or a plain call without gradients;
- ``torch.compile`` / ``torch.export``: the custom operators ``gru::sequence_forward`` and
  ``gru::sequence_backward``, with fake kernels and autograd registered;
- with the variants (eager): `_FusedVariantGRU`, whose input layer norm runs on torch's kernels;
- bfloat16 without gradients: `bf16_sequence`, products in bfloat16 on `gru.kernels.bf16`
  (or in float32 where that is faster or the CPU has no bfloat16 matrix units).

Shapes: T time steps, B batch, I input features, H hidden units.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from gru import kernels
from gru.ops.aside import backward_ready
from gru.ops.composed import LN_EPS
from gru.ops.engine import start_engine

__all__ = ["bf16_sequence", "sequence", "torch_matmul", "variant_sequence"]


def torch_matmul(a: np.ndarray, b: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """The engine's GEMMs on torch's BLAS (MKL here): ``a @ b`` (+ ``bias`` on every row), in
    the arrays' dtype even under autocast (whose bfloat16 result NumPy cannot take)."""
    if torch.is_autocast_enabled("cpu"):
        with torch.autocast("cpu", enabled=False):
            return torch_matmul(a, b, bias)
    a_t, b_t = torch.from_numpy(a), torch.from_numpy(b)
    if bias is None:
        return torch.mm(a_t, b_t).numpy()
    return torch.addmm(torch.from_numpy(bias), a_t, b_t).numpy()


def _np(t: Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().numpy()


def _tensor(a: np.ndarray | None) -> Tensor | None:
    return None if a is None else torch.from_numpy(a)


def _forward(x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reset_after, reverse, save):
    """(output (T, B, H), h_n (B, H), saved) as tensors; saved None without ``save``."""
    output, h_n, saved = kernels.forward(
        _np(x), _np(w_ih), _np(w_hh), _np(b_ih), _np(b_hh), _np(h0),
        lengths=_np(lengths), reset_after=reset_after, reverse=reverse, save=save,
        threads=torch.get_num_threads(), matmul=torch_matmul,
    )  # fmt: skip
    return torch.from_numpy(output), torch.from_numpy(h_n), _tensor(saved)


def _backward(d_output, d_h_n, saved_tensors, flags, need_x=True, need_weights=True):
    """The six gradients (dx, dh0, dw_ih, dw_hh, db_ih, db_hh) as tensors or None."""
    x, h0, w_ih, w_hh, output, saved, lengths = saved_tensors
    reset_after, reverse, has_bias = flags
    backward_ready(str(x.dtype).removeprefix("torch."))  # compiled beside the forward
    grads = kernels.backward(
        _np(d_output), _np(d_h_n), _np(x), _np(h0), _np(w_ih), _np(w_hh), _np(output),
        _np(saved), has_bias=has_bias, lengths=_np(lengths), reset_after=reset_after,
        reverse=reverse, need_x=need_x, need_weights=need_weights,
        threads=torch.get_num_threads(), matmul=torch_matmul,
    )  # fmt: skip
    return tuple(_tensor(g) for g in grads)


# --- torch.compile and torch.export: custom operators -------------------------------------------


@torch.library.custom_op("gru::sequence_forward", mutates_args=())
def _sequence_forward(
    x: Tensor,
    h0: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None,
    b_hh: Tensor | None,
    lengths: Tensor | None,
    reset_after: bool,
    reverse: bool,
    save: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """The engine's forward: (output (T, B, H), h_n (B, H), saved, or (0,) without save)."""
    start_engine()  # a TorchScript file loaded in a new process calls this op first
    output, h_n, saved = _forward(
        x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reset_after, reverse, save
    )
    return output, h_n, x.new_empty(0) if saved is None else saved


@_sequence_forward.register_fake
def _(x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reset_after, reverse, save):
    T, B, _ = x.shape
    H = w_hh.shape[1]
    saved = x.new_empty(kernels.saved_shape(T, B, H, reset_after)) if save else x.new_empty(0)
    return x.new_empty((T, B, H)), x.new_empty((B, H)), saved


@torch.library.custom_op("gru::sequence_backward", mutates_args=())
def _sequence_backward(
    d_output: Tensor,
    d_h_n: Tensor,
    x: Tensor,
    h0: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    output: Tensor,
    saved: Tensor,
    lengths: Tensor | None,
    reset_after: bool,
    reverse: bool,
    has_bias: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The engine's backward: (dx, dh0, dw_ih, dw_hh, db_ih, db_hh); empty biases if none."""
    saved_tensors = (x, h0, w_ih, w_hh, output, saved, lengths)
    grads = _backward(d_output, d_h_n, saved_tensors, (reset_after, reverse, has_bias))
    return tuple(x.new_empty(0) if g is None else g for g in grads)


@_sequence_backward.register_fake
def _(d_output, d_h_n, x, h0, w_ih, w_hh, output, saved, lengths, reset_after, reverse, has_bias):
    bias = x.new_empty(w_hh.shape[0]) if has_bias else x.new_empty(0)
    return (
        torch.empty_like(x),
        torch.empty_like(h0),
        torch.empty_like(w_ih),
        torch.empty_like(w_hh),
        bias,
        torch.empty_like(bias),
    )


def _setup_context(ctx, inputs, output):
    x, h0, w_ih, w_hh, b_ih, _b_hh, lengths, reset_after, reverse, _save = inputs
    out, _, saved = output
    ctx.save_for_backward(x, h0, w_ih, w_hh, out, saved, lengths)
    ctx.flags = (reset_after, reverse, b_ih is not None)


def _custom_op_backward(ctx, d_output, d_h_n, _d_saved):
    x, h0, w_ih, w_hh, out, saved, lengths = ctx.saved_tensors
    reset_after, reverse, has_bias = ctx.flags
    if saved.numel() == 0 and out.numel() != 0:
        raise RuntimeError(
            "gru: this forward ran without keeping what backward needs (no input required "
            "a gradient when it ran); run it again with gradients enabled"
        )
    d_output = torch.zeros_like(out) if d_output is None else d_output
    d_h_n = torch.zeros_like(h0) if d_h_n is None else d_h_n
    dx, dh0, dw_ih, dw_hh, db_ih, db_hh = _sequence_backward(
        d_output, d_h_n, x, h0, w_ih, w_hh, out, saved, lengths, reset_after, reverse, has_bias
    )
    if not has_bias:
        db_ih = db_hh = None
    return dx, dh0, dw_ih, dw_hh, db_ih, db_hh, None, None, None, None


_sequence_forward.register_autograd(_custom_op_backward, setup_context=_setup_context)


# --- eager mode -----------------------------------------------------------------------------


class _FusedGRU(torch.autograd.Function):
    """The eager-mode autograd node of the engine (same functions as the custom operators)."""

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reset_after, reverse):
        output, h_n, saved = _forward(
            x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reset_after, reverse, True
        )
        ctx.save_for_backward(x, h0, w_ih, w_hh, output, saved, lengths)
        ctx.flags = (reset_after, reverse, b_ih is not None)
        return output, h_n

    @staticmethod
    def backward(ctx, d_output, d_h_n):
        need = ctx.needs_input_grad
        dx, dh0, dw_ih, dw_hh, db_ih, db_hh = _backward(
            d_output, d_h_n, ctx.saved_tensors, ctx.flags,
            need_x=need[0], need_weights=any(need[2:6]),
        )  # fmt: skip
        if ctx.saved_tensors[1] is None:
            dh0 = None
        return dx, dh0, dw_ih, dw_hh, db_ih, db_hh, None, None, None


def _needs_grad(*tensors) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def sequence(x, h0, w_ih, w_hh, b_ih, b_hh, reset_after, reverse, lengths):
    """One layer in one direction on the engine: (output (T, B, H), h_n (B, H))."""
    needs_grad = _needs_grad(x, h0, w_ih, w_hh, b_ih, b_hh)
    if torch.compiler.is_compiling():
        if h0 is None:
            h0 = x.new_zeros(x.shape[1], w_hh.shape[1])
        output, h_n, _ = _sequence_forward(
            x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reset_after, reverse, needs_grad
        )
        return output, h_n
    if needs_grad:
        return _FusedGRU.apply(x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reset_after, reverse)
    output, h_n, _ = _forward(x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reset_after, reverse, False)
    return output, h_n


# --- bfloat16 without gradients ---------------------------------------------------------------


def _bf16_bits(t: Tensor) -> np.ndarray:
    """t rounded to bfloat16 by torch (to nearest, ties to even), as a uint16 array of bits."""
    return t.detach().to(torch.bfloat16).contiguous().view(torch.int16).numpy().view(np.uint16)


def _float32(t: Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().to(torch.float32).contiguous().numpy()


def bf16_sequence(
    x, h0, w_ih, w_hh, b_ih, b_hh, reset_after, reverse, lengths, *, out_dtype, bf16_products
):
    """One layer in one direction without gradients for bfloat16 work: (output, h_n) in
    ``out_dtype``.

    With ``bf16_products`` and where `gru.kernels.bf16.serves` the size, x, W_ih and W_hh are
    rounded to bfloat16 once and every product runs in bfloat16 with float32 accumulation
    (h_{t-1} rounded at each step); gates and state are float32. Otherwise the float32
    engine runs on the values as given (bfloat16 values are exact in float32).
    """
    H = w_hh.shape[1]
    if bf16_products and kernels.bf16.serves(H):
        output, h_n = kernels.bf16.forward(
            _bf16_bits(x), _bf16_bits(w_ih), _bf16_bits(w_hh), _float32(b_ih), _float32(b_hh),
            _float32(h0), lengths=_np(lengths), reset_after=reset_after, reverse=reverse,
        )  # fmt: skip
    else:
        output, h_n, _ = kernels.forward(
            _float32(x), _float32(w_ih), _float32(w_hh), _float32(b_ih), _float32(b_hh),
            _float32(h0), lengths=_np(lengths), reset_after=reset_after, reverse=reverse,
            save=False, threads=torch.get_num_threads(), matmul=torch_matmul,
        )  # fmt: skip
    return torch.from_numpy(output).to(out_dtype), torch.from_numpy(h_n).to(out_dtype)


# --- the variants (eager) -------------------------------------------------------------------


class _FusedVariantGRU(torch.autograd.Function):
    """The engine's autograd node for a layer with variants (eager mode).

    The input layer norm, outside the time loop, normalizes a = x W_ihᵀ over its 3H values
    with torch's own kernels; training keeps a (T·B, 3H) and its mean and 1/σ (T·B, 1 each)
    for their backward (3·T·B·H + 2·T·B values beyond the recurrence's), so backward needs no
    second product with W_ih. The recurrence, with the recurrent layer norm, zoneout and recurrent
    dropout, is `kernels.forward_variants` / `kernels.backward_variants`.
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu", cast_inputs=torch.float32)  # see variant_sequence
    def forward(
        ctx, x, h0, w_ih, w_hh, b_ih, b_hh, g_ih, c_ih, g_hh, c_hh, keep, mask, lengths,
        reset_after, reverse, save,
    ):  # fmt: skip
        T, B, I = x.shape
        H = w_hh.shape[1]
        a = torch.mm(x.detach().reshape(T * B, I), w_ih.detach().T)  # (T·B, 3H)
        a_pre = mean = rstd = None
        if g_ih is not None:  # torch's kernel, which also gives the statistics backward needs
            a_pre = a
            a, mean, rstd = torch.native_layer_norm(
                a, (3 * H,), g_ih.detach(), c_ih.detach(), LN_EPS
            )  # (T·B, 3H), (T·B, 1), (T·B, 1)
        recurrent_ln = None if g_hh is None else (_np(g_hh), _np(c_hh))
        output, h_n, state = kernels.forward_variants(
            a.numpy().reshape(T, B, 3 * H), _np(h0), _np(w_hh), _np(b_ih), _np(b_hh),
            lengths=_np(lengths), reset_after=reset_after, reverse=reverse, save=save,
            threads=torch.get_num_threads(), mask=_np(mask),
            zoneout=keep if isinstance(keep, float) else _np(keep), recurrent_ln=recurrent_ln,
        )  # fmt: skip
        output = torch.from_numpy(output)
        if save:
            ctx.save_for_backward(x, h0, w_ih, w_hh, g_ih, c_ih, lengths, output, a_pre, mean, rstd)
            ctx.state = state
        ctx.flags = (reset_after, reverse, b_ih is not None)
        return output, torch.from_numpy(h_n)

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, d_output, d_h_n):
        x, h0, w_ih, w_hh, g_ih, c_ih, lengths, output, a_pre, mean, rstd = ctx.saved_tensors
        reset_after, reverse, has_bias = ctx.flags
        T, B, I = x.shape
        H = w_hh.shape[1]
        d_a, dh0, dw_hh, db_ih, db_hh, dg_hh, dc_hh = kernels.backward_variants(
            _np(d_output), _np(d_h_n), _np(h0), _np(w_hh), _np(output), ctx.state,
            has_bias=has_bias, lengths=_np(lengths), reset_after=reset_after, reverse=reverse,
            threads=torch.get_num_threads(), matmul=torch_matmul,
        )  # fmt: skip
        dGX = torch.from_numpy(d_a)  # ∂L/∂a (T·B, 3H): the input side, after its layer norm
        dg_ih = dc_ih = None
        if g_ih is not None:  # back through the input layer norm, by torch's kernel
            dGX, dg_ih, dc_ih = torch.ops.aten.native_layer_norm_backward(
                dGX, a_pre, (3 * H,), mean, rstd, g_ih.detach(), c_ih.detach(), [True] * 3
            )  # ∂L/∂(x W_ihᵀ) (T·B, 3H), then the gain's and the bias's gradients
        dw_ih = dGX.T @ x.detach().reshape(T * B, I)
        dx = (dGX @ w_ih.detach()).view(T, B, I) if ctx.needs_input_grad[0] else None
        return (
            dx, None if h0 is None else torch.from_numpy(dh0), dw_ih, torch.from_numpy(dw_hh),
            _tensor(db_ih), _tensor(db_hh), dg_ih, dc_ih, _tensor(dg_hh), _tensor(dc_hh),
            None, None, None, None, None, None,
        )  # fmt: skip


def variant_sequence(
    x, h0, w_ih, w_hh, b_ih, b_hh, reset_after, reverse, lengths, layer_norm, zoneout, mask
):
    """One layer with variants on the engine (eager mode): (output, h_n). Under CPU autocast
    it computes in float32, as a plain layer with gradients does there (the products inside
    would otherwise come back bfloat16, which the engine's NumPy arrays cannot hold)."""
    ln = (None,) * 4 if layer_norm is None else layer_norm
    save = _needs_grad(x, h0, w_ih, w_hh, b_ih, b_hh, *ln)
    return _FusedVariantGRU.apply(
        x, h0, w_ih, w_hh, b_ih, b_hh, *ln, zoneout, mask, lengths, reset_after, reverse, save,
    )  # fmt: skip
