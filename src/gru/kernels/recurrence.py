"""The time loop of one layer in one direction, forward and backward, at the engine's width.

The compiled recurrence alone, on arrays already padded and with the biases already folded
(`gru.kernels.padding`); `gru.kernels.layer` does that and the GEMMs around it. NumPy arrays
in, NumPy arrays out.

Shapes: T time steps, B batch, H hidden units (here the padded width Hp).

Two ways to run the loop, chosen by size:
- rows (`gru.kernels.rows`): each thread takes a shard of the batch and runs its sequences
  from the first step to the last with its own vector–matrix products; no barrier per step.
  For B = 1, or too little work to pay for starting a thread, one thread does it all.
- BLAS (`gru.kernels.blas`): for large H, one GEMM per step over the whole batch, threaded by
  the BLAS itself (only once a BLAS has been bound). In float32, where the BLAS has a packed
  GEMM, `gru.kernels.packed` runs it with W_hh packed once, and shards the batch as the rows do
  while W_hh fits a core's cache.

Memory kept for backward (``saved``): 4·T·B·H values per layer and direction with the reset
gate after the product (r, z, n and W_hn h + b_hn), 3·T·B·H before it (r, z, n), beyond the
outputs, which backward reads as the previous states.
"""

from __future__ import annotations

import os

import numpy as np
from numba import njit, prange

from gru.kernels import blas, packed, rows, variants
from gru.kernels.compiling import first_call
from gru.kernels.products import STACK_HIDDEN

__all__ = [
    "BLAS_MIN_HIDDEN",
    "backward",
    "backward_variants",
    "cpu_count",
    "forward",
    "forward_variants",
    "lengths_array",
    "packed_plan",
    "saved_width",
    "shard_count",
    "supports",
    "uses_blas",
]

BLAS_MIN_HIDDEN = 192
"""From this hidden size on, the per-step GEMM of a tuned BLAS beats the row kernels."""

_MIN_WORK_PER_THREAD = 2_000_000
"""Multiply-adds per thread below which starting threads costs more than it saves."""

_PARALLEL = {"parallel": True, "nogil": True, "error_model": "numpy", "cache": True}

# The shards run on Numba's OpenMP threading layer. When torch is loaded first (as gru.ops
# does) Numba's OpenMP calls bind to the runtime torch carries, so the engine and torch's own
# ops share one pool of threads: the thread that just finished torch's GEMM picks up a shard
# at once. (Two pools on two cores, each spinning after its work, slowed both sides.)


@njit(**_PARALLEL)
def _forward_sharded(
    gx, h0, w_hh_t, b_hn, lengths, reverse, reset_after, save, out, h_n, saved, shards
):
    B = gx.shape[1]
    for i in prange(shards):
        b0, b1 = i * B // shards, (i + 1) * B // shards
        rows.forward_rows(
            gx, h0, w_hh_t, b_hn, lengths, reverse, reset_after, save, out, h_n, saved, b0, b1
        )


@njit(**_PARALLEL)
def _backward_sharded(
    d_out, d_hn, out, h0, saved, w_hh, lengths, reverse, reset_after, dg, h_prev, dh0, db, shards
):
    B = d_out.shape[1]
    for i in prange(shards):
        b0, b1 = i * B // shards, (i + 1) * B // shards
        rows.backward_rows(
            d_out, d_hn, out, h0, saved, w_hh, lengths, reverse, reset_after, dg, h_prev, dh0,
            db[i], b0, b1,
        )  # fmt: skip


@njit(**_PARALLEL)
def _forward_variants_sharded(
    gx, h0, w_hh_t, b_hn, lengths, reverse, reset_after, save, out, h_n, saved,
    mask, keep, ln, layer_norm, H_real, ln_saved, shards,
):  # fmt: skip
    B = gx.shape[1]
    for i in prange(shards):
        variants.forward_rows(
            gx, h0, w_hh_t, b_hn, lengths, reverse, reset_after, save, out, h_n, saved,
            mask, keep, ln, layer_norm, H_real, ln_saved,
            i * B // shards, (i + 1) * B // shards,
        )  # fmt: skip


@njit(**_PARALLEL)
def _backward_variants_sharded(
    d_out, d_hn, out, h0, saved, w_hh, lengths, reverse, reset_after, dg, h_prev, dh0, db,
    mask, keep, ln, layer_norm, H_real, ln_saved, dgh, dln, shards,
):  # fmt: skip
    B = d_out.shape[1]
    for i in prange(shards):
        variants.backward_rows(
            d_out, d_hn, out, h0, saved, w_hh, lengths, reverse, reset_after, dg, h_prev, dh0,
            db[i], mask, keep, ln, layer_norm, H_real, ln_saved, dgh, dln[i],
            i * B // shards, (i + 1) * B // shards,
        )  # fmt: skip


def saved_width(hidden_size: int, reset_after: bool) -> int:
    """Values kept per (t, b) for backward: 4H with the reset gate after the product, else 3H."""
    return (4 if reset_after else 3) * hidden_size


def lengths_array(lengths, T: int, B: int) -> np.ndarray:
    """``lengths`` as the loops read it: (B,) int64, all T when None."""
    if lengths is None:
        return np.full(B, T, dtype=np.int64)
    return np.ascontiguousarray(lengths, dtype=np.int64)


def cpu_count() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def shard_count(B: int, T: int, H: int, threads: int | None) -> int:
    """How many threads share the batch: one per CPU (or ``threads``), but never fewer than
    `_MIN_WORK_PER_THREAD` multiply-adds each."""
    threads = cpu_count() if threads is None else threads
    work = T * B * 6 * H * H  # multiply-adds of the recurrent products
    return max(1, min(threads, B, work // _MIN_WORK_PER_THREAD))


_UNPACKED = np.empty(0, np.float32)
"""What the BLAS loops take for packed weights when they call the BLAS on W_hh as it is."""


def packed_plan(B: int, H: int, dtype, threads: int | None, backward: bool = False) -> int:
    """`gru.kernels.packed.plan` for a loop at (padded) width H in ``dtype`` (0: the rows' or
    the unpacked BLAS loop; float32 only)."""
    if dtype != np.float32:
        return 0  # the BLAS torch carries packs float32 only
    threads = cpu_count() if threads is None else threads
    rows_width = not uses_blas(H)
    return packed.plan(B, H, threads, rows_width=rows_width, backward=backward)


def supports(H: int) -> bool:
    """Whether the engine can run a layer of H units: the row kernels take H up to
    `STACK_HIDDEN`, beyond it only a bound BLAS can."""
    return H <= STACK_HIDDEN or blas.available()


def uses_blas(H: int) -> bool:
    """Whether the loop at (padded) width H runs on the bound BLAS (ValueError if it must and
    none is bound)."""
    if H > STACK_HIDDEN and not blas.available():
        raise ValueError(
            f"gru.kernels: hidden size {H} needs a BLAS (the row kernels take H <= "
            f"{STACK_HIDDEN}); call gru.kernels.blas.bind(library) first"
        )
    return blas.available() and H >= min(BLAS_MIN_HIDDEN, STACK_HIDDEN + 1)


def _forward_inputs(gx, h0, w_hh, b_hn, lengths):
    """The arrays a forward loop reads, C-contiguous in gx's dtype (zeros for None), and how
    to allocate what it keeps: with lengths np.zeros, since steps past a sequence's end keep
    nothing and zeros there make the result deterministic."""
    T, B, H3 = gx.shape
    H, dtype = H3 // 3, gx.dtype
    return (
        np.ascontiguousarray(gx),
        np.zeros((B, H), dtype) if h0 is None else np.ascontiguousarray(h0, dtype=dtype),
        np.ascontiguousarray(w_hh, dtype=dtype),
        np.zeros(H, dtype) if b_hn is None else np.ascontiguousarray(b_hn, dtype=dtype),
        lengths_array(lengths, T, B),
        np.empty if lengths is None else np.zeros,
    )


def forward(
    gx,
    h0,
    w_hh,
    b_hn=None,
    *,
    reset_after=True,
    reverse=False,
    lengths=None,
    save=True,
    threads=None,
    w_hh_t=None,
):
    """Run the recurrence of one layer in one direction.

    Args:
        gx: (T, B, 3H) input projections ``x_t W_ihᵀ + b_ih`` with b_hr and b_hz added (and
            b_hn too when ``reset_after`` is False: before the product every bias is outside r).
        h0: (B, H) initial state, or None for zeros. w_hh: (3H, H). b_hn: (H,) or None
            (reset after only). w_hh_t: W_hhᵀ (H, 3H) C-contiguous, if the caller keeps one.
        lengths: (B,) ints in [1, T] or None; steps past a sequence's length leave it unchanged
            and output zeros. reverse: read each sequence backwards within its length.
        save: keep what `backward` needs. threads: at most this many (default: the CPUs).

    Returns ``(output (T, B, H), h_n (B, H), saved)``, saved (T, B, `saved_width`) or None.
    """
    T, B, H3 = gx.shape
    H = H3 // 3
    dtype = gx.dtype
    gx, h0, w_hh, b_hn, lengths, empty = _forward_inputs(gx, h0, w_hh, b_hn, lengths)
    out = np.empty((T, B, H), dtype)
    h_n = np.empty((B, H), dtype)
    saved = empty((T, B, saved_width(H, reset_after) if save else 0), dtype)
    flags = (lengths, bool(reverse), bool(reset_after), bool(save), out, h_n, saved)
    purpose = "training" if save else "inference"
    shards = packed_plan(B, H, dtype, threads)
    if shards:
        kind = "packed forward sharded" if shards > 1 else "packed forward"
        first_call((kind, dtype), purpose, packed.forward, gx, h0, w_hh, b_hn, *flags, shards)
    elif uses_blas(H):
        none = _UNPACKED  # BLAS calls on W_hh itself
        first_call(
            ("blas forward", dtype), f"{purpose}, large layers",
            blas.forward, gx, h0, w_hh, b_hn, *flags, 0, B, none, none,
        )  # fmt: skip
    else:
        if w_hh_t is None:
            w_hh_t = np.ascontiguousarray(w_hh.T)  # (H, 3H): the rows read W_hh by columns
        shards = shard_count(B, T, H, threads)
        if shards > 1:
            first_call(
                ("forward sharded", dtype), purpose,
                _forward_sharded, gx, h0, w_hh_t, b_hn, *flags, shards,
            )  # fmt: skip
        else:
            first_call(
                ("forward", dtype), purpose, rows.forward_rows, gx, h0, w_hh_t, b_hn, *flags, 0, B
            )
    return out, h_n, (saved if save else None)


def _backward_inputs(d_out, d_hn, out, h0, w_hh, lengths):
    """The arrays a backward loop reads, C-contiguous in out's dtype (zeros for None)."""
    T, B, H = out.shape
    dtype = out.dtype
    return (
        np.zeros_like(out) if d_out is None else np.ascontiguousarray(d_out, dtype=dtype),
        np.zeros((B, H), dtype) if d_hn is None else np.ascontiguousarray(d_hn, dtype=dtype),
        np.zeros((B, H), dtype) if h0 is None else np.ascontiguousarray(h0, dtype=dtype),
        np.ascontiguousarray(w_hh, dtype=dtype),
        lengths_array(lengths, T, B),
    )


def backward(
    d_out,
    d_hn,
    out,
    h0,
    saved,
    w_hh,
    *,
    reset_after=True,
    reverse=False,
    lengths=None,
    threads=None,
):
    """Back-propagate through the recurrence that `forward` ran (same arguments).

    ``d_out`` (T, B, H) and ``d_hn`` (B, H) are ∂L/∂output and ∂L/∂h_n (None for zero), h0
    may be None for zeros; ``out`` and ``saved`` are what `forward` returned.
    Returns ``(dg, h_prev, dh0, db)``:

        dg      (T, B, 4H)  [c | da_r | da_z | da_n]: the last 3H are ∂L/∂gx, so
                            dX = dg[..., H:] W_ih and dW_ih = dg[..., H:]ᵀ X; and c is
                            reset after:  da_n ⊙ r, so dW_hh = [da_r | da_z | c]ᵀ h_prev;
                            reset before: r ⊙ h_prev, so dW_hn = da_nᵀ c and
                                          dW_h{r,z} = [da_r | da_z]ᵀ h_prev
        h_prev  (T, B, H)   h_{t-1} of each step
        dh0     (B, H)      ∂L/∂h0
        db      (4H,)       dg summed over every step and row: the bias gradients
                            (db_ih = db[H:]; reset after db_hh = [db_r | db_z | db[:H]],
                            reset before db_hh = db_ih; db[:H] is not a gradient there)

    At steps past a sequence's length dg and h_prev are zero.
    """
    T, B, H = out.shape
    dtype = out.dtype
    d_out, d_hn, h0, w_hh, lengths = _backward_inputs(d_out, d_hn, out, h0, w_hh, lengths)
    dg = np.empty((T, B, 4 * H), dtype)
    h_prev = np.empty((T, B, H), dtype)
    dh0 = np.empty((B, H), dtype)
    common = (d_out, d_hn, out, h0, saved, w_hh, lengths, bool(reverse), bool(reset_after))
    shards = packed_plan(B, H, dtype, threads, backward=True)
    if shards:
        parts = np.empty((shards, 4 * H), dtype)
        kind = "packed backward sharded" if shards > 1 else "packed backward"
        first_call(
            (kind, dtype), "training", packed.backward, *common, dg, h_prev, dh0, parts, shards
        )
        return dg, h_prev, dh0, parts.sum(axis=0)
    if uses_blas(H):
        db = np.empty(4 * H, dtype)
        none = _UNPACKED
        first_call(
            ("blas backward", dtype), "training, large layers",
            blas.backward, *common, dg, h_prev, dh0, db, 0, B, none, none, none,
        )  # fmt: skip
        return dg, h_prev, dh0, db
    shards = shard_count(B, T, H, threads)
    parts = np.empty((shards, 4 * H), dtype)
    if shards > 1:
        first_call(
            ("backward sharded", dtype), "training",
            _backward_sharded, *common, dg, h_prev, dh0, parts, shards,
        )  # fmt: skip
    else:
        first_call(
            ("backward", dtype), "training",
            rows.backward_rows, *common, dg, h_prev, dh0, parts[0], 0, B,
        )  # fmt: skip
    return dg, h_prev, dh0, parts.sum(axis=0)


def _variant_arrays(T, B, H, dtype, mask, zoneout, recurrent_ln):
    mask = np.ones((B, H), dtype) if mask is None else np.ascontiguousarray(mask, dtype=dtype)
    keep = np.zeros((T, B, H), dtype) if zoneout is None else np.ascontiguousarray(zoneout, dtype)
    if recurrent_ln is None:
        ln = np.zeros((2, 3 * H), dtype)
    else:
        ln = np.ascontiguousarray(recurrent_ln, dtype)
    return mask, keep, ln


def forward_variants(
    gx, h0, w_hh, b_hn=None, *, reset_after=True, reverse=False, lengths=None, save=True,
    threads=None, mask=None, zoneout=None, recurrent_ln=None, real_hidden=None,
):  # fmt: skip
    """`forward` with the variants of `gru.kernels.variants`: ``mask`` (B, H) the recurrent
    dropout mask m; ``zoneout`` (T, B, H) d_t by position; ``recurrent_ln`` (2, 3H) the
    recurrent layer norm's gain and bias (reset after only; the caller normalizes gx itself);
    ``real_hidden`` the layer's own H when H is padded (the norm's statistics use only it).

    Returns ``(output, h_n, saved, ln_saved)``, ln_saved (T, B, 3H + 1) or None.
    Runs on BLAS where `forward` does (and needs it beyond `gru.kernels.STACK_HIDDEN`).
    """
    T, B, H3 = gx.shape
    H = H3 // 3
    dtype = gx.dtype
    gx, h0, w_hh, b_hn, lengths, empty = _forward_inputs(gx, h0, w_hh, b_hn, lengths)
    layer_norm = recurrent_ln is not None
    m, keep, ln = _variant_arrays(T, B, H, dtype, mask, zoneout, recurrent_ln)
    out = np.empty((T, B, H), dtype)
    h_n = np.empty((B, H), dtype)
    saved = empty((T, B, saved_width(H, reset_after) if save else 0), dtype)
    ln_saved = empty((T, B, 3 * H + 1 if (save and layer_norm) else 0), dtype)
    flags = (
        lengths, bool(reverse), bool(reset_after), bool(save), out, h_n, saved,
        m, keep, ln, layer_norm, real_hidden or H, ln_saved,
    )  # fmt: skip
    purpose = ("training" if save else "inference") + " with the variants"
    shards = packed_plan(B, H, dtype, threads) if uses_blas(H) else 0
    if shards:
        kind = "packed variants forward" + (" sharded" if shards > 1 else "")
        first_call(
            (kind, dtype), f"{purpose}, large layers",
            packed.forward_variants, gx, h0, w_hh, b_hn, flags, shards,
        )  # fmt: skip
    elif uses_blas(H):
        none = _UNPACKED  # BLAS calls on W_hh itself
        first_call(
            ("blas variants forward", dtype), f"{purpose}, large layers",
            blas.forward_variants, gx, h0, w_hh, b_hn, *flags, 0, B, none, none,
        )  # fmt: skip
    else:
        w_hh_t = np.ascontiguousarray(w_hh.T)  # (H, 3H): the rows read W_hh by columns
        shards = shard_count(B, T, H, threads)
        if shards > 1:
            first_call(
                ("variants forward sharded", dtype), purpose,
                _forward_variants_sharded, gx, h0, w_hh_t, b_hn, *flags, shards,
            )  # fmt: skip
        else:
            first_call(
                ("variants forward", dtype), purpose,
                variants.forward_rows, gx, h0, w_hh_t, b_hn, *flags, 0, B,
            )  # fmt: skip
    return out, h_n, (saved if save else None), (ln_saved if save and layer_norm else None)


def backward_variants(
    d_out, d_hn, out, h0, saved, w_hh, *, reset_after=True, reverse=False, lengths=None,
    threads=None, mask=None, zoneout=None, recurrent_ln=None, real_hidden=None, ln_saved=None,
):  # fmt: skip
    """`backward` for `forward_variants` (same arguments, and what it returned). Returns
    ``(dg, h_prev, dh0, db, dgh, dln)``: as `backward` (h_prev holds h_{t-1}, so
    dW_hh = dghᵀ (m ⊙ h_prev)), and with the recurrent layer norm dgh (T, B, 3H) =
    ∂L/∂(W_hh h̄) and dln (2, 3H), the gradients of its gain and bias (else None, None)."""
    T, B, H = out.shape
    dtype = out.dtype
    d_out, d_hn, h0, w_hh, lengths = _backward_inputs(d_out, d_hn, out, h0, w_hh, lengths)
    layer_norm = recurrent_ln is not None
    m, keep, ln = _variant_arrays(T, B, H, dtype, mask, zoneout, recurrent_ln)
    ln_saved = np.zeros((T, B, 0), dtype) if ln_saved is None else ln_saved
    dg = np.empty((T, B, 4 * H), dtype)
    h_prev = np.empty((T, B, H), dtype)
    dh0 = np.empty((B, H), dtype)
    dgh = np.empty((T, B, 3 * H if layer_norm else 0), dtype)
    args = (
        d_out, d_hn, out, h0, saved, w_hh, lengths, bool(reverse), bool(reset_after), dg,
        h_prev, dh0,
    )  # fmt: skip
    flags = (m, keep, ln, layer_norm, real_hidden or H, ln_saved, dgh)
    purpose = "training with the variants"
    shards = packed_plan(B, H, dtype, threads, backward=True) if uses_blas(H) else 0
    if shards:
        db = np.empty((shards, 4 * H), dtype)
        dln = np.empty((shards, 2, 3 * H), dtype)
        kind = "packed variants backward" + (" sharded" if shards > 1 else "")
        first_call(
            (kind, dtype), f"{purpose}, large layers",
            packed.backward_variants, args, db, flags, dln, shards,
        )  # fmt: skip
    elif uses_blas(H):
        db = np.empty(4 * H, dtype)
        dln = np.empty((2, 3 * H), dtype)
        none = _UNPACKED  # BLAS calls on W_hh itself
        first_call(
            ("blas variants backward", dtype), f"{purpose}, large layers",
            blas.backward_variants, *args, db, *flags, dln, 0, B, none, none, none,
        )  # fmt: skip
        return dg, h_prev, dh0, db, (dgh if layer_norm else None), (dln if layer_norm else None)
    else:
        shards = shard_count(B, T, H, threads)
        db = np.empty((shards, 4 * H), dtype)
        dln = np.empty((shards, 2, 3 * H), dtype)
        if shards > 1:
            first_call(
                ("variants backward sharded", dtype), purpose,
                _backward_variants_sharded, *args, db, *flags, dln, shards,
            )  # fmt: skip
        else:
            first_call(
                ("variants backward", dtype), purpose,
                variants.backward_rows, *args, db[0], *flags, dln[0], 0, B,
            )  # fmt: skip
    return (
        dg, h_prev, dh0, db.sum(axis=0),
        dgh if layer_norm else None, dln.sum(axis=0) if layer_norm else None,
    )  # fmt: skip
