"""The float32 recurrence of large layers on MKL's packed GEMM: W_hh packed once per call.

`gru.kernels.blas` calls ``sgemm_`` at every step, and the BLAS packs W_hh into its own layout
at every call: at B = 64, H = 256 that packing and the single-threaded gate math cost a third
of the loop. Here each loop packs the blocks of W_hh it multiplies by once
(``cblas_sgemm_pack``), runs every step's product on the packed copy
(``cblas_sgemm_compute``), and takes a range of batch rows ``b0 <= b < b1``, so a batch can be
sharded over threads as `gru.kernels.rows` shards it: each thread packs its own copy, runs its
own rows from the first step to the last, GEMM and gates, and waits for no other thread. Inside
the parallel loop the BLAS sees that it is in a parallel region and runs on the calling thread.

`plan` chooses: shards over every thread while W_hh fits a core's cache (down to a row a
shard), shards of at least `MIN_SHARD_ROWS` rows while it nearly does, otherwise one loop whose
products the BLAS threads itself; for one or two rows, where MKL's own matrix-vector path is
faster than a packed product, `gru.kernels.blas`. It also beats the row kernels from
`MIN_HIDDEN` units on (and their backward on one thread from `MIN_HIDDEN_BACKWARD`), so
float32 takes it there too. Measured on a 2-core Xeon (float32, T = 50, ms, the BLAS loop /
packed shards / packed, one loop): H 256 B 64 6.98 / 4.95 / 6.28; H 256 B 16 3.55 / 1.57 /
2.01; H 1024 B 64 100.5 / 72.2 / 71.6; H 1024 B 8 35.0 / 23.7 / 12.8; H 1024 B 1 10.9 / – /
15.4. Against the row kernels (T = 100, their time over the packed loop's, inference /
training forward / backward): 2 threads, B 32: H 32 1.13 / 0.79 / 0.75, H 64 1.39 / 1.23 /
1.29, H 128 1.88 / 1.77 / 2.21; 1 thread, B 32: H 32 0.95 / 0.82 / 1.83, H 64 1.62 / 1.42 /
1.78, H 128 1.86 / 1.75 / 2.38.

Shapes and the meaning of every array are those of `gru.kernels.rows`; arrays float32.
"""

from __future__ import annotations

import ctypes
import os

import llvmlite.binding as llvm
import numpy as np
from numba import njit, prange, types

from gru.kernels.activations import FASTMATH
from gru.kernels.blas import backward as blas_backward
from gru.kernels.blas import backward_variants as blas_backward_variants
from gru.kernels.blas import forward as blas_forward
from gru.kernels.blas import forward_variants as blas_forward_variants
from gru.kernels.products import INLINE

__all__ = [
    "MIN_HIDDEN",
    "MIN_HIDDEN_BACKWARD",
    "MIN_SHARD_ROWS",
    "SHARD_WEIGHT_BYTES",
    "SMALL_WEIGHT_BYTES",
    "available",
    "backward",
    "backward_variants",
    "bind",
    "forward",
    "forward_variants",
    "plan",
]

MIN_HIDDEN = 64
"""Below this width the row kernels (`gru.kernels.rows`) run the loop as fast or faster."""
MIN_HIDDEN_BACKWARD = 32
"""The same for the backward on one thread, where the packed loop wins from this width on."""
SMALL_WEIGHT_BYTES = 1 << 20
"""W_hh up to this size (bytes) stays in a core's cache even when every shard reads all of it
at every step: the batch shards over every thread, down to one row a shard."""
SHARD_WEIGHT_BYTES = 2 << 20
"""Up to this size, shards of at least `MIN_SHARD_ROWS` rows; beyond it the shards fight for
memory and one loop, whose products the BLAS threads, is as fast."""
MIN_SHARD_ROWS = 8

_ROW_MAJOR, _NO_TRANS, _TRANS, _B_MATRIX = 101, 111, 112, 162
_i32 = types.int32
_size = types.ExternalFunction("gru_kernels_sgemm_pack_get_size", types.uintp(*[_i32] * 4))
_pack = types.ExternalFunction(
    "gru_kernels_sgemm_pack",
    types.void(*[_i32] * 6, types.float32, types.intp, _i32, types.intp),
)
_bound: list[str] = []

_JIT = {"nogil": True, "fastmath": FASTMATH, "error_model": "numpy", "cache": True}
_PARALLEL = {"parallel": True, **_JIT}


def bind(library: str | os.PathLike) -> bool:
    """Use the packed GEMM (``cblas_sgemm_pack_get_size``, ``_pack``, ``_compute``) of a shared
    library; False if it lacks one of them."""
    try:
        lib = ctypes.CDLL(os.fspath(library))
        found = [lib.cblas_sgemm_pack_get_size, lib.cblas_sgemm_pack, lib.cblas_sgemm_compute]
    except (OSError, AttributeError):
        return False
    for name, function in zip(("pack_get_size", "pack", "compute"), found, strict=True):
        llvm.add_symbol(f"gru_kernels_sgemm_{name}", ctypes.cast(function, ctypes.c_void_p).value)
    _bound[:] = [os.fspath(library)]
    return True


def available() -> bool:
    """Whether `bind` has found a packed GEMM."""
    return bool(_bound)


def plan(B: int, H: int, threads: int, *, rows_width: bool = False, backward: bool = False):
    """How to run a float32 loop of B rows and H units on ``threads`` threads: 0 for another
    loop (the unpacked `gru.kernels.blas`, or the rows at ``rows_width``, a width the row
    kernels take), 1 for one packed loop (the BLAS threads its products), n > 1 for n packed
    shards. ``backward``: the plan for the backward loop."""
    if not available() or B <= 2:
        return 0  # matrix-vector products: MKL's own path, or the rows, are faster
    if rows_width and H < (MIN_HIDDEN_BACKWARD if backward and threads == 1 else MIN_HIDDEN):
        return 0
    weight = 3 * H * H * 4
    if weight <= SMALL_WEIGHT_BYTES:
        return min(threads, B)
    if weight <= SHARD_WEIGHT_BYTES:
        return max(1, min(threads, B // MIN_SHARD_ROWS))
    return 1


@njit(**INLINE)
def _packed(w, offset, n, k, m, transposed):
    """op(W block) packed as the B of ``c (m × n) = a (m × k) @ B``: transposed, rows
    offset/k … of W (·, k) taken as (k × n); else W's rows from offset/n on as (k × n)."""
    size = _size(_B_MATRIX, m, n, k)
    packed = np.empty(size // 4 + 16, np.float32)
    trans = _TRANS if transposed else _NO_TRANS
    ld = k if transposed else n
    _pack(_ROW_MAJOR, _B_MATRIX, trans, m, n, k, 1.0, w.ctypes.data + offset * 4, ld,
          packed.ctypes.data)  # fmt: skip
    return packed


@njit(**_JIT)
def forward_rows(gx, h0, w_hh, b_hn, lengths, reverse, reset_after, save, out, h_n, saved, b0, b1):
    """Rows b0 ≤ b < b1, step by step (`gru.kernels.blas.forward` on W_hh packed): fills their
    out, h_n and (if save) saved."""
    H, m = h0.shape[1], b1 - b0
    no = np.empty(0, np.float32)
    w_first = _packed(w_hh, 0, 3 * H if reset_after else 2 * H, H, m, True)
    w_n = no if reset_after else _packed(w_hh, 2 * H * H, H, H, m, True)  # W_hnᵀ
    blas_forward(gx, h0, w_hh, b_hn, lengths, reverse, reset_after, save, out, h_n, saved,
                 b0, b1, w_first, w_n)  # fmt: skip


@njit(**_JIT)
def backward_rows(
    d_out, d_hn, out, h0, saved, w_hh, lengths, reverse, reset_after, dg, h_prev, dh0, db, b0, b1
):
    """Back-propagation through rows b0 ≤ b < b1 (`gru.kernels.blas.backward` on W_hh packed):
    fills their dg, h_prev and dh0, and db (4H,) with the sums over these rows."""
    H, m = h0.shape[1], b1 - b0
    no = np.empty(0, np.float32)
    w_all = _packed(w_hh, 0, H, 3 * H, m, False) if reset_after else no  # W_hh (3H × H)
    w_rz = no if reset_after else _packed(w_hh, 0, H, 2 * H, m, False)  # [W_hr; W_hz]
    w_n = no if reset_after else _packed(w_hh, 2 * H * H, H, H, m, False)  # W_hn
    blas_backward(d_out, d_hn, out, h0, saved, w_hh, lengths, reverse, reset_after, dg, h_prev,
                  dh0, db, b0, b1, w_all, w_rz, w_n)  # fmt: skip


@njit(**_PARALLEL)
def forward_sharded(
    gx, h0, w_hh, b_hn, lengths, reverse, reset_after, save, out, h_n, saved, shards
):
    B = gx.shape[1]
    for i in prange(shards):
        forward_rows(
            gx, h0, w_hh, b_hn, lengths, reverse, reset_after, save, out, h_n, saved,
            i * B // shards, (i + 1) * B // shards,
        )  # fmt: skip


@njit(**_PARALLEL)
def backward_sharded(
    d_out, d_hn, out, h0, saved, w_hh, lengths, reverse, reset_after, dg, h_prev, dh0, db, shards
):
    B = d_out.shape[1]
    for i in prange(shards):
        backward_rows(
            d_out, d_hn, out, h0, saved, w_hh, lengths, reverse, reset_after, dg, h_prev, dh0,
            db[i], i * B // shards, (i + 1) * B // shards,
        )  # fmt: skip


def forward(gx, h0, w_hh, b_hn, lengths, reverse, reset_after, save, out, h_n, saved, shards):
    """Fill out, h_n and saved (the arguments of `gru.kernels.blas.forward`) in ``shards``
    (≥ 1, from `plan`) shards."""
    flags = (lengths, reverse, reset_after, save, out, h_n, saved)
    if shards > 1:
        forward_sharded(gx, h0, w_hh, b_hn, *flags, shards)
    else:
        forward_rows(gx, h0, w_hh, b_hn, *flags, 0, gx.shape[1])


def backward(d_out, d_hn, out, h0, saved, w_hh, lengths, reverse, reset_after, dg, h_prev, dh0,
             db, shards):  # fmt: skip
    """Fill dg, h_prev, dh0 and db (shards, 4H), the arguments of `gru.kernels.blas.backward`
    with db one row of sums per shard, in ``shards`` (≥ 1, from `plan`) shards."""
    common = (d_out, d_hn, out, h0, saved, w_hh, lengths, reverse, reset_after, dg, h_prev, dh0)
    if shards > 1:
        backward_sharded(*common, db, shards)
    else:
        backward_rows(*common, db[0], 0, d_out.shape[1])


# --- the variants (layer norm, zoneout, recurrent dropout) ----------------------------------
# `gru.kernels.blas`'s variant loops over a shard of rows, on W_hh packed here.


@njit(**_JIT)
def _forward_variants_rows(gx, h0, w_hh, b_hn, flags, b0, b1):
    H, m, reset_after = h0.shape[1], b1 - b0, flags[2]  # flags: lengths, reverse, reset_after, ...
    no = np.empty(0, np.float32)
    w_first = _packed(w_hh, 0, 3 * H if reset_after else 2 * H, H, m, True)
    w_n = no if reset_after else _packed(w_hh, 2 * H * H, H, H, m, True)
    blas_forward_variants(gx, h0, w_hh, b_hn, *flags, b0, b1, w_first, w_n)


@njit(**_PARALLEL)
def _forward_variants_sharded(gx, h0, w_hh, b_hn, flags, shards):
    B = gx.shape[1]
    for i in prange(shards):
        _forward_variants_rows(gx, h0, w_hh, b_hn, flags, i * B // shards, (i + 1) * B // shards)


@njit(**_JIT)
def _backward_variants_rows(common, db, flags, dln, b0, b1):
    w_hh, reset_after = common[5], common[8]
    H, m = w_hh.shape[1], b1 - b0
    no = np.empty(0, np.float32)
    w_all = _packed(w_hh, 0, H, 3 * H, m, False) if reset_after else no
    w_rz = no if reset_after else _packed(w_hh, 0, H, 2 * H, m, False)
    w_n = no if reset_after else _packed(w_hh, 2 * H * H, H, H, m, False)
    blas_backward_variants(*common, db, *flags, dln, b0, b1, w_all, w_rz, w_n)


@njit(**_PARALLEL)
def _backward_variants_sharded(common, db, flags, dln, shards):
    B = common[0].shape[1]
    for i in prange(shards):
        b0, b1 = i * B // shards, (i + 1) * B // shards
        _backward_variants_rows(common, db[i], flags, dln[i], b0, b1)


def forward_variants(gx, h0, w_hh, b_hn, flags, shards):
    """`gru.kernels.blas.forward_variants` (``flags``: its arguments from lengths to
    ln_saved) in ``shards`` (≥ 1, from `plan`) shards on W_hh packed."""
    if shards > 1:
        _forward_variants_sharded(gx, h0, w_hh, b_hn, flags, shards)
    else:
        _forward_variants_rows(gx, h0, w_hh, b_hn, flags, 0, gx.shape[1])


def backward_variants(common, db, flags, dln, shards):
    """`gru.kernels.blas.backward_variants` (``common``: its arguments from d_out to dh0;
    ``flags`` from mask to dgh) in ``shards`` shards on W_hh packed: db (shards, 4H) and
    dln (shards, 2, 3H), one row of sums per shard."""
    if shards > 1:
        _backward_variants_sharded(common, db, flags, dln, shards)
    else:
        _backward_variants_rows(common, db[0], flags, dln[0], 0, common[0].shape[1])
