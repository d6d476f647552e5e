"""The GRU's math for the PyTorch layers: one layer, one direction, one place.

`gru.nn` validates its arguments and then calls only the functions here, so every way of
computing a GRU plugs in at this boundary:

- ``fused``: CPU float32/float64 tensors go to the compiled engine (`gru.kernels`) through the
  custom operators ``gru::sequence_forward`` and ``gru::sequence_backward``, registered with
  autograd and with fake (meta) kernels, so they work in eager mode, under ``torch.compile``
  and with ``torch.export``. The parts that are not sequential are single large GEMMs here:
  the input projection before the time loop; dX, dW_ih, dW_hh and the bias gradients after it.
- ``torch``: the same math composed from torch operations, for every device and dtype.
- ``auto``: ``fused`` where it applies (CPU, float32/float64), else ``torch``; on CUDA with the
  reset gate after the product `gru.nn` hands whole stacks to cuDNN (`cudnn_stack`).

Shapes: T time steps, B batch, I input features, H hidden units, L layers, D directions.
Weights use the packed layout of `gru.reference` (rows ``[r | z | n]``): w_ih (3H, I),
w_hh (3H, H), b_ih and b_hh (3H,).
"""

from __future__ import annotations

import ctypes
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gru import kernels

__all__ = [
    "BACKENDS",
    "Stepper",
    "cudnn_stack",
    "gru_cell",
    "gru_sequence",
    "resolve_backend",
]

BACKENDS = ("auto", "fused", "torch")
_FUSED_DTYPES = (torch.float32, torch.float64)


def _bind_torch_blas() -> bool:
    """Give the engine the BLAS that torch carries (MKL on x86-64 Linux), if it exports one."""
    lib = os.path.join(os.path.dirname(torch.__file__), "lib")
    for name in ("libtorch_cpu.so", "libtorch_cpu.dylib", "torch_cpu.dll"):
        path = os.path.join(lib, name)
        if os.path.exists(path) and kernels.blas.bind(path):
            return True
    return False


_bind_torch_blas()


def _keep_freed_memory() -> None:
    """Ask glibc to keep large freed blocks for reuse instead of returning them to the OS.

    By default glibc serves every block above a few hundred KB with a fresh mmap and unmaps it
    on free, so each training step touches its sequence-sized arrays anew: one page fault per
    4 KB (about 1,000 per step of a 32-unit layer over 100 steps, and a fault costs
    microseconds in a virtual machine). This slowed torch.nn.GRU as much as the engine.
    Set GRU_MALLOC_DEFAULTS=1 to leave the allocator as it is.
    """
    if os.environ.get("GRU_MALLOC_DEFAULTS") == "1" or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 128 << 20)  # M_MMAP_THRESHOLD: blocks up to 128 MB from the heap
        libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD: keep up to 256 MB of freed heap
    except (OSError, AttributeError):
        pass  # not glibc


_keep_freed_memory()


def resolve_backend(backend: str, x: Tensor, hidden_size: int) -> str:
    """The backend that computes a layer on ``x``: "fused" or "torch" (ValueError if unable)."""
    fused_ok = x.device.type == "cpu" and x.dtype in _FUSED_DTYPES
    if backend == "fused" and not fused_ok:
        raise ValueError(
            "backend='fused' runs on CPU tensors of float32 or float64, got a "
            f"{x.dtype} tensor on {x.device}; use backend='auto' (or 'torch') for it"
        )
    if hidden_size > kernels.rows.STACK_HIDDEN and not kernels.blas.available():
        if backend == "fused":
            raise ValueError(
                f"backend='fused' needs a BLAS for hidden_size={hidden_size} > "
                f"{kernels.rows.STACK_HIDDEN} and found none in torch; use backend='auto'"
            )
        fused_ok = False
    if backend == "torch" or not fused_ok:
        return "torch"
    return "fused"


# --- composed torch operations ----------------------------------------------------------------


def _folded_bias(b_ih, b_hh, reset_after: bool):
    """b_ih plus every recurrent bias that sits outside the reset gate (None without bias).

    With the reset gate after the product only b_hr and b_hz can be moved out of the time
    loop (b_hn is multiplied by r); before it, all three can.
    """
    if b_ih is None:
        return None
    if not reset_after:
        return b_ih + b_hh
    H = b_hh.shape[0] // 3
    return b_ih + torch.cat([b_hh[: 2 * H], b_hh.new_zeros(H)])


LN_EPS = 1e-5
"""ε of the layer normalization (as `gru.reference.LN_EPS`)."""


def _step(gx, h, w_hh, b_hn, reset_after, ln_hh=None, mask=None, keep=None) -> Tensor:
    """One recurrence step given ``gx`` = the input projection with the folded biases (B, 3H).

    Variants: ``ln_hh`` (gain, bias) normalizes W_hh h̄; ``mask`` (B, H) is the recurrent
    dropout mask m, h̄ = m ⊙ h; ``keep`` (B, H) or a float is zoneout's d_t.
    """
    H = h.shape[-1]
    h_bar = h if mask is None else h * mask  # what the recurrent products read
    if reset_after:
        gh = F.linear(h_bar, w_hh)  # (B, 3H)
        if ln_hh is not None:
            gh = F.layer_norm(gh, (3 * H,), ln_hh[0], ln_hh[1], LN_EPS)
        rz = torch.sigmoid(gx[:, : 2 * H] + gh[:, : 2 * H])  # (B, 2H)
        r, z = rz[:, :H], rz[:, H:]
        hn = gh[:, 2 * H :] if b_hn is None else gh[:, 2 * H :] + b_hn  # W_hn h + b_hn
        n = torch.tanh(gx[:, 2 * H :] + r * hn)  # (B, H)
    else:
        rz = torch.sigmoid(gx[:, : 2 * H] + F.linear(h_bar, w_hh[: 2 * H]))  # (B, 2H)
        r, z = rz[:, :H], rz[:, H:]
        n = torch.tanh(gx[:, 2 * H :] + F.linear(r * h_bar, w_hh[2 * H :]))  # (B, H)
    h_new = n + z * (h - n)  # (1 − z) ⊙ n + z ⊙ h, rearranged to save one operation
    if keep is not None:
        h_new = h_new + keep * (h - h_new)  # zoneout: d ⊙ h + (1 − d) ⊙ h̃
    return h_new


def _reverse_time(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence within its own length; padding stays where it is."""
    if lengths is None:
        return x.flip(0)
    T = x.shape[0]
    t = torch.arange(T).unsqueeze(1)  # (T, 1)
    L = lengths.unsqueeze(0)  # (1, B)
    index = torch.where(t < L, L - 1 - t, t).to(x.device)  # (T, B)
    return x.gather(0, index.unsqueeze(-1).expand_as(x))


def _composed_sequence(
    x, h0, w_ih, w_hh, b_ih, b_hh, reset_after, reverse, lengths,
    layer_norm=None, zoneout=None, recurrent_mask=None,
):  # fmt: skip
    T, B = x.shape[:2]
    H = w_hh.shape[1]
    if h0 is None:
        h0 = x.new_zeros(B, H)
    if reverse:
        x = _reverse_time(x, lengths)
        if isinstance(zoneout, Tensor):  # d_t belongs to position t, read in this order too
            zoneout = _reverse_time(zoneout, lengths)
    gx = F.linear(x, w_ih)  # (T, B, 3H)
    if layer_norm is not None:
        gx = F.layer_norm(gx, (3 * H,), layer_norm[0], layer_norm[1], LN_EPS)
    folded = _folded_bias(b_ih, b_hh, reset_after)
    if folded is not None:
        gx = gx + folded
    b_hn = b_hh[2 * H :] if (reset_after and b_hh is not None) else None
    ln_hh = None if layer_norm is None else layer_norm[2:]
    h = h0
    outputs = []
    active = None
    if lengths is not None:
        active = (torch.arange(T).unsqueeze(1) < lengths.unsqueeze(0)).to(x.device)  # (T, B)
        active = active.unsqueeze(-1)  # (T, B, 1)
    for t in range(T):
        keep = zoneout[t] if isinstance(zoneout, Tensor) else zoneout
        h_new = _step(gx[t], h, w_hh, b_hn, reset_after, ln_hh, recurrent_mask, keep)
        if active is None:
            h = h_new
            outputs.append(h)
        else:
            h = torch.where(active[t], h_new, h)  # a finished sequence keeps its state
            outputs.append(torch.where(active[t], h_new, 0.0))
    output = torch.stack(outputs)  # (T, B, H)
    if reverse:
        output = _reverse_time(output, lengths)
    return output, h


# --- the fused engine -------------------------------------------------------------------------
# The work is done by two plain functions on CPU tensors. Eager code calls them directly (no
# gradient needed) or through `_FusedGRU` (an autograd.Function); while torch.compile or
# torch.export traces, the same functions run as the custom operators gru::sequence_forward and
# gru::sequence_backward, which have fake kernels and autograd registered. Going through the
# dispatcher costs tens of microseconds per call, as much as a short sequence takes.


def _np(t: Tensor) -> np.ndarray:
    return t.detach().numpy()


def _folded_bias_np(b_ih: Tensor | None, b_hh: Tensor | None, reset_after: bool):
    """`_folded_bias` and b_hn (reset after) as NumPy arrays, cheaper than torch ops here.

    Computed on every call: weights can change without their version counter moving (through
    ``.data``, as gradcheck does), so nothing derived from them is cached.
    """
    if b_ih is None:
        return None, None
    b_i, b_h = _np(b_ih), _np(b_hh)
    if not reset_after:
        return b_i + b_h, None
    H = b_h.shape[0] // 3
    folded = b_i.copy()
    folded[: 2 * H] += b_h[: 2 * H]
    return folded, b_h[2 * H :]


def _forward_impl(x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reset_after, reverse, save):
    """Returns (output (T, B, H), h_n (B, H), saved (T, B, S), or an empty tensor).

    The engine runs H padded to Hp (`kernels.padded_size`): the padded weights give a padded
    input projection straight from the GEMM, and ``saved`` stays padded for the backward.
    """
    T, B, I = x.shape
    H = w_hh.shape[1]
    Hp = kernels.padded_size(H)
    folded, b_hn = _folded_bias_np(b_ih, b_hh, reset_after)
    w_ih_np, w_hh_np = _np(w_ih), _np(w_hh)
    if Hp != H:
        w_ih_np = kernels.pad_hidden(w_ih_np, H, Hp, axis=0, blocks=3)  # (3Hp, I)
        w_hh_np = kernels.pad_hidden(kernels.pad_hidden(w_hh_np, H, Hp), H, Hp, axis=0, blocks=3)
        folded = None if folded is None else kernels.pad_hidden(folded, H, Hp, blocks=3)
        b_hn = None if b_hn is None else kernels.pad_hidden(b_hn, H, Hp)
    x2 = x.detach().reshape(T * B, I)
    w_ih_t = torch.from_numpy(w_ih_np).T
    if folded is None:
        gx = torch.mm(x2, w_ih_t)  # (T·B, 3Hp), one GEMM for every step
    else:
        gx = torch.addmm(torch.from_numpy(folded), x2, w_ih_t)
    h0_np = None if h0 is None else kernels.pad_hidden(_np(h0), H, Hp)
    output, h_n, saved = kernels.forward(
        gx.numpy().reshape(T, B, 3 * Hp),
        h0_np,
        w_hh_np,
        b_hn,
        reset_after=reset_after,
        reverse=reverse,
        lengths=None if lengths is None else lengths.numpy(),
        save=save,
        threads=torch.get_num_threads(),
    )
    output, h_n = kernels.unpad_hidden(output, H, Hp), kernels.unpad_hidden(h_n, H, Hp)
    saved_t = torch.from_numpy(saved) if save else x.new_empty(0)
    return torch.from_numpy(output), torch.from_numpy(h_n), saved_t


def _backward_impl(
    d_output, d_h_n, x, h0, w_ih, w_hh, output, saved, lengths, reset_after, reverse, has_bias,
    need_x=True, need_weights=True,
):  # fmt: skip
    """Returns (dx, dh0, dw_ih, dw_hh, db_ih, db_hh); the bias gradients are empty if no bias,
    dx is None unless ``need_x`` and the weight gradients None unless ``need_weights``."""
    T, B, I = x.shape
    H = w_hh.shape[1]
    Hp = kernels.padded_size(H)

    def padded(t):  # (…, H) -> (…, Hp) NumPy, zeros in the added units
        return None if t is None else kernels.pad_hidden(_np(t), H, Hp)

    w_ih_np, w_hh_np = _np(w_ih), _np(w_hh)
    if Hp != H:
        w_ih_np = kernels.pad_hidden(w_ih_np, H, Hp, axis=0, blocks=3)
        w_hh_np = kernels.pad_hidden(kernels.pad_hidden(w_hh_np, H, Hp), H, Hp, axis=0, blocks=3)
    dg, h_prev, dh0, db = kernels.backward(
        padded(d_output),
        padded(d_h_n),
        padded(output),
        padded(h0),
        _np(saved),
        w_hh_np,
        reset_after=reset_after,
        reverse=reverse,
        lengths=None if lengths is None else lengths.numpy(),
        threads=torch.get_num_threads(),
    )
    dh0 = torch.from_numpy(kernels.unpad_hidden(dh0, H, Hp))
    dG = torch.from_numpy(dg).view(T * B, 4 * Hp)  # [c | da_r | da_z | da_n] of every step
    dGX = dG[:, Hp:]  # ∂L/∂gx, whose gate order is W_ih's: [da_r | da_z | da_n]
    # One GEMM over all T·B rows for each gradient; the padded units hold zeros throughout.
    dx = (dGX @ torch.from_numpy(w_ih_np)).view(T, B, I) if need_x else None
    if not need_weights:
        return dx, dh0, None, None, None, None
    Hprev = torch.from_numpy(h_prev).view(T * B, Hp)  # h_{t-1} of every step

    def unpad(g, axis_blocks):  # a (3Hp, ·) or (·, Hp) gradient back to the layer's shape
        return torch.from_numpy(kernels.unpad_hidden(g.numpy(), H, Hp, axis=0, blocks=axis_blocks))

    dw_ih = unpad(dGX.T @ x.detach().reshape(T * B, I), 3)  # (3H, I)
    if reset_after:
        # [c | da_r | da_z]ᵀ h_prev is dW_hh with its n block first: one GEMM, then reorder.
        g = dG[:, : 3 * Hp].T @ Hprev  # (3Hp, Hp): rows n, r, z
        dw_hh = torch.cat([g[Hp:], g[:Hp]])
    else:
        dw_hh = torch.cat([dG[:, Hp : 3 * Hp].T @ Hprev, dG[:, 3 * Hp :].T @ dG[:, :Hp]])
    dw_hh = torch.from_numpy(kernels.unpad_hidden(unpad(dw_hh, 3).numpy(), H, Hp))  # (3H, H)
    if not has_bias:
        empty = x.new_empty(0)
        return dx, dh0, dw_ih, dw_hh, empty, empty.clone()
    db = torch.from_numpy(kernels.unpad_hidden(db, H, Hp, blocks=4))  # [c | r | z | n], 4H
    db_ih = db[H:]
    if reset_after:
        db_hh = torch.cat([db[H : 3 * H], db[:H]])
    else:
        db_hh = db_ih.clone()  # every recurrent bias sits outside r: same gradient as b_ih
    return dx, dh0, dw_ih, dw_hh, db_ih, db_hh


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
    """The engine's forward: (output (T, B, H), h_n (B, H), saved (T, B, S) or (0,))."""
    output, h_n, saved = _forward_impl(
        x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reset_after, reverse, save
    )
    return output, h_n, saved


@_sequence_forward.register_fake
def _(x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reset_after, reverse, save):
    T, B, _ = x.shape
    H = w_hh.shape[1]
    width = kernels.saved_width(kernels.padded_size(H), reset_after)
    saved = x.new_empty((T, B, width)) if save else x.new_empty(0)
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
    return _backward_impl(
        d_output, d_h_n, x, h0, w_ih, w_hh, output, saved, lengths, reset_after, reverse, has_bias
    )


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


def _check_saved(saved: Tensor, out: Tensor) -> None:
    if saved.numel() == 0 and out.numel() != 0:
        raise RuntimeError(
            "gru: this forward ran without keeping what backward needs (no input required "
            "a gradient when it ran); run it again with gradients enabled"
        )


def _custom_op_backward(ctx, d_output, d_h_n, _d_saved):
    x, h0, w_ih, w_hh, out, saved, lengths = ctx.saved_tensors
    reset_after, reverse, has_bias = ctx.flags
    _check_saved(saved, out)
    d_output = torch.zeros_like(out) if d_output is None else d_output
    d_h_n = torch.zeros_like(h0) if d_h_n is None else d_h_n
    dx, dh0, dw_ih, dw_hh, db_ih, db_hh = _sequence_backward(
        d_output, d_h_n, x, h0, w_ih, w_hh, out, saved, lengths, reset_after, reverse, has_bias
    )
    if not has_bias:
        db_ih = db_hh = None
    return dx, dh0, dw_ih, dw_hh, db_ih, db_hh, None, None, None, None


_sequence_forward.register_autograd(_custom_op_backward, setup_context=_setup_context)


class _FusedGRU(torch.autograd.Function):
    """The eager-mode autograd node of the engine (same functions as the custom operators)."""

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reset_after, reverse):
        output, h_n, saved = _forward_impl(
            x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reset_after, reverse, True
        )
        ctx.save_for_backward(x, h0, w_ih, w_hh, output, saved, lengths)
        ctx.flags = (reset_after, reverse, b_ih is not None)
        return output, h_n

    @staticmethod
    def backward(ctx, d_output, d_h_n):
        x, h0, w_ih, w_hh, out, saved, lengths = ctx.saved_tensors
        reset_after, reverse, has_bias = ctx.flags
        need = ctx.needs_input_grad
        dx, dh0, dw_ih, dw_hh, db_ih, db_hh = _backward_impl(
            d_output, d_h_n, x, h0, w_ih, w_hh, out, saved, lengths, reset_after, reverse,
            has_bias, need_x=need[0], need_weights=any(need[2:6]),
        )  # fmt: skip
        if not has_bias:
            db_ih = db_hh = None
        if h0 is None:
            dh0 = None
        return dx, dh0, dw_ih, dw_hh, db_ih, db_hh, None, None, None


def _fused_sequence(x, h0, w_ih, w_hh, b_ih, b_hh, reset_after, reverse, lengths):
    tensors = (x, h0, w_ih, w_hh, b_ih, b_hh)
    needs_grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)
    if torch.compiler.is_compiling():
        if h0 is None:
            h0 = x.new_zeros(x.shape[1], w_hh.shape[1])
        output, h_n, _ = _sequence_forward(
            x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reset_after, reverse, needs_grad
        )
        return output, h_n
    if needs_grad:
        return _FusedGRU.apply(x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reset_after, reverse)
    T, B, I = x.shape
    if kernels.is_small(T, B, I, w_hh.shape[1], torch.get_num_threads()):
        output, h_n = kernels.forward_small(
            _np(x), _np(w_ih), _np(w_hh),
            None if b_ih is None else _np(b_ih), None if b_hh is None else _np(b_hh),
            None if h0 is None else _np(h0), None if lengths is None else lengths.numpy(),
            reset_after=reset_after, reverse=reverse,
        )  # fmt: skip
        return torch.from_numpy(output), torch.from_numpy(h_n)
    output, h_n, _ = _forward_impl(
        x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reset_after, reverse, False
    )
    return output, h_n


# --- the fused engine with the variants ---------------------------------------------------------


def _pad_gates(t: Tensor | None, H: int, Hp: int) -> np.ndarray | None:
    return None if t is None else kernels.pad_hidden(_np(t), H, Hp, axis=0, blocks=3)


class _FusedVariantGRU(torch.autograd.Function):
    """The engine's autograd node for a layer with variants (eager mode).

    The input layer norm, outside the time loop, normalizes a = x W_ihᵀ over its 3H values
    with torch's own kernels; training keeps a (T·B, 3H) and its mean and 1/σ (T·B, 1 each)
    for their backward (3·T·B·H + 2·T·B values beyond the recurrence's), so backward needs no
    second product with W_ih. The recurrence, with the recurrent layer norm, zoneout and recurrent
    dropout, is `kernels.forward_variants` / `kernels.backward_variants`.
    """

    @staticmethod
    def forward(
        ctx, x, h0, w_ih, w_hh, b_ih, b_hh, g_ih, c_ih, g_hh, c_hh, keep, mask, lengths,
        reset_after, reverse, save,
    ):  # fmt: skip
        T, B, I = x.shape
        H = w_hh.shape[1]
        Hp = kernels.padded_size(H)
        a = torch.mm(x.detach().reshape(T * B, I), w_ih.detach().T)  # (T·B, 3H)
        a_pre = mean = rstd = None
        if g_ih is not None:  # torch's kernel, which also gives the statistics backward needs
            a_pre = a
            a, mean, rstd = torch.native_layer_norm(
                a, (3 * H,), g_ih.detach(), c_ih.detach(), LN_EPS
            )  # (T·B, 3H), (T·B, 1), (T·B, 1)
        folded, b_hn = _folded_bias_np(b_ih, b_hh, reset_after)
        gx = a.numpy() if folded is None else a.numpy() + folded
        gx = kernels.pad_hidden(gx, H, Hp, blocks=3).reshape(T, B, 3 * Hp)
        recurrent_ln = None
        if g_hh is not None:
            recurrent_ln = np.stack([_pad_gates(g_hh, H, Hp), _pad_gates(c_hh, H, Hp)])
        out, h_n, saved, ln_saved = kernels.forward_variants(
            gx,
            None if h0 is None else kernels.pad_hidden(_np(h0), H, Hp),
            kernels.pad_hidden(kernels.pad_hidden(_np(w_hh), H, Hp), H, Hp, axis=0, blocks=3),
            None if b_hn is None else kernels.pad_hidden(b_hn, H, Hp),
            reset_after=reset_after,
            reverse=reverse,
            lengths=None if lengths is None else lengths.numpy(),
            save=save,
            threads=torch.get_num_threads(),
            mask=None if mask is None else kernels.pad_hidden(_np(mask), H, Hp),
            zoneout=None if keep is None else kernels.pad_hidden(_np(keep), H, Hp),
            recurrent_ln=recurrent_ln,
            real_hidden=H,
        )
        output = torch.from_numpy(kernels.unpad_hidden(out, H, Hp))
        if save:
            ctx.save_for_backward(
                x, h0, w_ih, w_hh, g_ih, c_ih, g_hh, c_hh, keep, mask, lengths, output,
                torch.from_numpy(saved), None if ln_saved is None else torch.from_numpy(ln_saved),
                a_pre, mean, rstd,
            )  # fmt: skip
        ctx.flags = (reset_after, reverse, b_ih is not None, recurrent_ln)
        return output, torch.from_numpy(kernels.unpad_hidden(h_n, H, Hp))

    @staticmethod
    def backward(ctx, d_output, d_h_n):
        (x, h0, w_ih, w_hh, g_ih, c_ih, _g_hh, _c_hh, keep, mask, lengths, output, saved,
         ln_saved, a_pre, mean, rstd) = ctx.saved_tensors  # fmt: skip
        reset_after, reverse, has_bias, recurrent_ln = ctx.flags
        T, B, I = x.shape
        H = w_hh.shape[1]
        Hp = kernels.padded_size(H)

        def padded(t):  # (…, H) -> (…, Hp) NumPy, zeros in the added units
            return None if t is None else kernels.pad_hidden(_np(t), H, Hp)

        w_hh_p = kernels.pad_hidden(padded(w_hh), H, Hp, axis=0, blocks=3)
        mask_p = padded(mask)
        dg, h_prev, dh0, db, dgh, dln = kernels.backward_variants(
            padded(d_output),
            padded(d_h_n),
            padded(output),
            padded(h0),
            _np(saved),
            w_hh_p,
            reset_after=reset_after,
            reverse=reverse,
            lengths=None if lengths is None else lengths.numpy(),
            threads=torch.get_num_threads(),
            mask=mask_p,
            zoneout=padded(keep),
            recurrent_ln=recurrent_ln,
            real_hidden=H,
            ln_saved=None if ln_saved is None else _np(ln_saved),
        )

        def unpad3(a):  # (3Hp, …) -> (3H, …)
            return torch.from_numpy(kernels.unpad_hidden(np.asarray(a), H, Hp, axis=0, blocks=3))

        need = ctx.needs_input_grad
        dG = torch.from_numpy(dg).view(T * B, 4 * Hp)  # [c | da_r | da_z | da_n]
        dGX = torch.from_numpy(kernels.unpad_hidden(dg[..., Hp:], H, Hp, blocks=3))
        dGX = dGX.view(T * B, 3 * H)  # ∂L/∂gx: the input side, after its layer norm
        X = x.detach().reshape(T * B, I)
        dx = dw_ih = dg_ih = dc_ih = None
        if g_ih is not None:  # back through the input layer norm, by torch's kernel
            dGX, dg_ih, dc_ih = torch.ops.aten.native_layer_norm_backward(
                dGX, a_pre, (3 * H,), mean, rstd, g_ih.detach(), c_ih.detach(), [True] * 3
            )  # ∂L/∂(x W_ihᵀ) (T·B, 3H), then the gain's and the bias's gradients
        dw_ih = dGX.T @ X
        dx = (dGX @ w_ih.detach()).view(T, B, I) if need[0] else None
        Hbar = torch.from_numpy(h_prev if mask_p is None else h_prev * mask_p)  # h̄_{t-1}
        Hbar = Hbar.view(T * B, Hp)
        dg_hh = dc_hh = None
        if dgh is not None:  # the recurrent layer norm: dW_hh = (∂L/∂(W_hh h̄))ᵀ h̄
            dW = torch.from_numpy(dgh).view(T * B, 3 * Hp).T @ Hbar
            dg_hh, dc_hh = unpad3(dln[0]), unpad3(dln[1])
        elif reset_after:
            g = dG[:, : 3 * Hp].T @ Hbar  # rows c, r, z
            dW = torch.cat([g[Hp:], g[:Hp]])
        else:
            dW = torch.cat([dG[:, Hp : 3 * Hp].T @ Hbar, dG[:, 3 * Hp :].T @ dG[:, :Hp]])
        dw_hh = torch.from_numpy(kernels.unpad_hidden(unpad3(dW).numpy(), H, Hp))
        db_ih = db_hh = None
        if has_bias:
            db_ih = unpad3(db[Hp:])
            if reset_after:
                db_hh = torch.cat([db_ih[: 2 * H], torch.from_numpy(db[:H].copy())])
            else:
                db_hh = db_ih.clone()
        dh0 = None if h0 is None else torch.from_numpy(kernels.unpad_hidden(dh0, H, Hp))
        return (
            dx, dh0, dw_ih, dw_hh, db_ih, db_hh, dg_ih, dc_ih, dg_hh, dc_hh,
            None, None, None, None, None, None,
        )  # fmt: skip


def _fused_variant_sequence(
    x, h0, w_ih, w_hh, b_ih, b_hh, reset_after, reverse, lengths, layer_norm, zoneout, mask
):
    T, B = x.shape[:2]
    H = w_hh.shape[1]
    if isinstance(zoneout, float):  # evaluation: d_t = p everywhere
        zoneout = x.new_full((T, B, H), zoneout)
    ln = (None,) * 4 if layer_norm is None else layer_norm
    tensors = (x, h0, w_ih, w_hh, b_ih, b_hh, *ln)
    save = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)
    return _FusedVariantGRU.apply(
        x, h0, w_ih, w_hh, b_ih, b_hh, *ln, zoneout, mask, lengths, reset_after, reverse, save,
    )  # fmt: skip


# --- the layer's entry points -----------------------------------------------------------------


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
    fused = resolve_backend(backend, x, w_hh.shape[1]) == "fused"
    if fused and not variants:
        return _fused_sequence(*args)
    if fused:  # beyond rows.STACK_HIDDEN, "fused" means a BLAS is bound: the variants run too
        if not torch.compiler.is_compiling():  # traced graphs take the composed operations
            return _fused_variant_sequence(*args, layer_norm, zoneout, recurrent_mask)
    return _composed_sequence(*args, layer_norm, zoneout, recurrent_mask)


def cudnn_stack(x, hx, weights, *, num_layers, bias, dropout, training, bidirectional, lengths):
    """A whole reset-after stack through torch's native GRU (cuDNN on CUDA).

    x (T, B, I) and hx (L·D, B, H) or None; ``weights`` the flat list in torch.nn.GRU's order.
    Returns (output (T, B, D·H), h_n (L·D, B, H)).
    """
    if hx is None:
        D = 2 if bidirectional else 1
        hx = x.new_zeros(num_layers * D, x.shape[1], weights[1].shape[1])
    if lengths is None:
        output, h_n = torch._VF.gru(
            x, hx, weights, bias, num_layers, dropout, training, bidirectional, False
        )
        return output, h_n
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
    hx = hx.index_select(1, packed.sorted_indices)
    data, h_n = torch._VF.gru(
        packed.data,
        packed.batch_sizes,
        hx,
        weights,
        bias,
        num_layers,
        dropout,
        training,
        bidirectional,
    )
    output, _ = torch.nn.utils.rnn.pad_packed_sequence(
        torch.nn.utils.rnn.PackedSequence(
            data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices
        ),
        total_length=x.shape[0],
    )
    return output, h_n.index_select(1, packed.unsorted_indices)


def gru_cell(
    x: Tensor,
    h: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None,
    b_hh: Tensor | None,
    *,
    reset_after: bool = True,
    layer_norm: tuple[Tensor, Tensor, Tensor, Tensor] | None = None,
    zoneout: Tensor | float | None = None,
) -> Tensor:
    """One GRU step: x (B, I), h (B, H) -> h' (B, H), composed from torch operations.

    ``layer_norm`` (g_ih, c_ih, g_hh, c_hh) and ``zoneout`` (d (B, H) or p) as in
    `gru_sequence`.
    """
    H = h.shape[-1]
    gx = F.linear(x, w_ih)  # (B, 3H)
    if layer_norm is not None:
        gx = F.layer_norm(gx, (3 * H,), layer_norm[0], layer_norm[1], LN_EPS)
    folded = _folded_bias(b_ih, b_hh, reset_after)
    if folded is not None:
        gx = gx + folded
    b_hn = b_hh[2 * H :] if (reset_after and b_hh is not None) else None
    ln_hh = None if layer_norm is None else layer_norm[2:]
    return _step(gx, h, w_hh, b_hn, reset_after, ln_hh, None, zoneout)


# --- streaming ------------------------------------------------------------------------------------


class Stepper:
    """Advances a stack of unidirectional layers one time step at a time, without autograd.

    Holds its own copy of the weights (taken when it is made) and every buffer a step needs,
    so `step` allocates nothing on the CPU engine. ``layers`` is a list of
    ``(w_ih, w_hh, b_ih, b_hh)`` per layer; ``state`` (L, B, H) is updated in place.
    """

    def __init__(
        self, layers, state: Tensor, *, reset_after: bool, backend: str, layer_norms=None,
        zoneout: float = 0.0,
    ) -> None:  # fmt: skip
        self.reset_after = reset_after
        L, B, H = state.shape
        backend = "auto" if backend == "fused" else backend  # a stream runs on any device
        self.fused = resolve_backend(backend, state, 0) == "fused"
        if layer_norms or zoneout:  # the variants step on composed operations (evaluation)
            self.fused = False
        if not self.fused:
            self.state = state
            self.layers = [tuple(None if w is None else w.detach() for w in ws) for ws in layers]
            self.layer_norms = [
                tuple(p.detach() for p in ln) for ln in layer_norms or [None] * L if ln
            ] or [None] * L
            self.zoneout = zoneout or None
            return
        dt = _np(state).dtype
        blocks, layout = [], [L, B, H]
        offset = 0
        for w_ih, w_hh, b_ih, b_hh in layers:
            folded, b_hn = _folded_bias_np(b_ih, b_hh, reset_after)
            parts = [
                _np(w_ih).T,  # (I, 3H)
                _np(w_hh).T,  # (H, 3H)
                np.zeros(3 * H, dt) if folded is None else folded,
                np.zeros(H, dt) if b_hn is None else b_hn,
            ]
            for part in parts:
                layout.append(offset)
                blocks.append(np.ascontiguousarray(part, dtype=dt).ravel())
                offset += part.size
            layout.append(w_ih.shape[1])
        self.weights = np.concatenate(blocks)
        self.layout = np.asarray(layout, dtype=np.int64)
        self.work = np.zeros(2 * L * B * H + 8 * B * H, dt)  # h, outputs, then scratch
        self.state = torch.from_numpy(self.work[: L * B * H].reshape(L, B, H))  # shares memory
        top = self.work[L * B * H : 2 * L * B * H].reshape(L, B, H)[-1]
        self.out_np = top  # what `step` returns, overwritten by the next step
        self.out = torch.from_numpy(top)

    def step(self, x):
        """Advance every layer by one step from x (B, I); returns the top layer's output (B, H).

        On the CPU engine the result is a buffer that the next step overwrites.
        """
        if self.fused:
            kernels.step(x, self.weights, self.work, self.layout, self.reset_after)
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
