"""bfloat16 layers without gradients: the products in bfloat16 on the CPU's matrix units
(MKL's ``gemm_bf16bf16f32_``, bound by `gru.kernels.blas.bind`), gates and state in float32.

The equations are those of `gru.kernels.rows`; what changes is where values are rounded to
bfloat16 (8 significant bits, round to nearest even) before a product:

    gx  = bf16(x) bf16(W_ih)ᵀ + b_x       one GEMM for every step, float32 accumulation and
                                          result                                  (T·B, 3Hp)
    gh  = bf16(h_{t-1}) bf16(W_hh)ᵀ        per step, float32 accumulation           (B, 3Hp)
          reset before: W_h{r,z} bf16(h_{t-1}), then W_hn bf16(r ⊙ h_{t-1})
    r, z, n, h_t                           float32, as in float32 layers

W_hh is rounded once per call by the caller; h_{t-1} (and r ⊙ h_{t-1}) is rounded inside the
compiled loop at every step. The biases, h0 and the state stay float32, so a bfloat16 layer
returns float32 outputs and the caller rounds them to its own dtype.

Shapes: T time steps, B batch, I input features, H hidden units, Hp the padded width.
bfloat16 arrays are uint16 arrays of the bits (the upper half of a float32's bits).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gru.kernels import blas, recurrence
from gru.kernels.compiling import first_call
from gru.kernels.padding import fold_biases, pad_hidden, padded_size, unpad_hidden
from gru.kernels.products import ENTRY, INLINE

__all__ = ["available", "forward", "from_bf16", "serves", "to_bf16"]


def available() -> bool:
    """Whether a bfloat16 GEMM is bound (`gru.kernels.blas.bf16_available`)."""
    return blas.bf16_available()


def serves(hidden_size: int) -> bool:
    """Whether a layer of this many units runs here, with bfloat16 GEMMs: where float32 layers
    run on BLAS (padded H >= `gru.kernels.recurrence.BLAS_MIN_HIDDEN`) and a bfloat16 GEMM is
    bound. Smaller layers are faster on the float32 row kernels, which take bfloat16 values
    exactly (S2, H = 32: 0.99 ms there against 1.43 ms with a bf16 GEMM per step, one thread).
    """
    return available() and padded_size(hidden_size) >= recurrence.BLAS_MIN_HIDDEN


def to_bf16(a: np.ndarray) -> np.ndarray:
    """The bfloat16 bits (uint16) of ``a`` rounded to nearest, ties to even; NaN stays NaN."""
    u = np.ascontiguousarray(a, np.float32).view(np.uint32).astype(np.uint64)
    bits = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(a)
    if nan.any():
        bits[nan] = 0x7FC0
    return bits


def from_bf16(bits: np.ndarray) -> np.ndarray:
    """float32 values of bfloat16 bits (exact)."""
    return (np.ascontiguousarray(bits, np.uint16).astype(np.uint32) << 16).view(np.float32)


@njit(**INLINE)
def _round_rows(src_bits, dst, B, H):
    """dst[b, k] = bf16(src[b, k]) for b < B, k < H: round to nearest even on the float32
    bits (src_bits a uint32 view of the float32 array; finite values)."""
    for b in range(B):
        for k in range(H):
            v = np.int64(src_bits[b, k])
            dst[b, k] = np.uint16((v + 0x7FFF + ((v >> 16) & 1)) >> 16)


@njit(**ENTRY)
def _layer(x_b, w_ih_t, w_hh_t, b_x, b_hn, h0, lengths, reverse, reset_after):
    """The whole layer: the projection as one bf16 GEMM, then the loop. Returns out, h_n.

    w_ih_t (I, 3Hp) and w_hh_t (Hp, 3Hp) are the transposed weights: MKL's bf16 GEMM took
    2.5x as long per step with W_hh as stored and its transpose flag set."""
    T, B, I = x_b.shape
    H = h0.shape[1]
    args = np.empty(8, np.int32)
    scalars = np.empty(2, np.float32)
    gx = np.empty((T, B, 3 * H), np.float32)
    for t in range(T):
        for b in range(B):
            for j in range(3 * H):
                gx[t, b, j] = b_x[j]
    # gx += bf16(x) bf16(W_ih)ᵀ     (T·B, I) @ (I, 3Hp), float32 accumulation
    blas.gemm_bf16(
        args, scalars, False, 3 * H, T * B, I, w_ih_t, 0, 3 * H, x_b, I, 1.0, gx, 0, 3 * H
    )
    out = np.empty((T, B, H), np.float32)
    h = h0.copy()  # (B, H) float32 state
    h_bits = h.view(np.uint32)
    hb = np.empty((B, H), np.uint16)  # bf16(h), what the recurrent product reads
    gh = np.empty((B, 3 * H), np.float32)
    rh = np.zeros((B, H), np.float32)
    rh_bits = rh.view(np.uint32)
    zbuf = np.empty((B, H), np.float32)
    unused = np.empty((1, 1, 1), np.float32)  # nothing is saved for backward
    for s in range(T):
        _round_rows(h_bits, hb, B, H)
        m = 3 * H if reset_after else 2 * H  # gh = bf16(h) W_h{r,z(,n)}ᵀ
        blas.gemm_bf16(args, scalars, False, m, B, H, w_hh_t, 0, 3 * H, hb, H, 0.0, gh, 0, 3 * H)
        blas.gates_of_step(
            s, gx, gh, b_hn, h, lengths, reverse, reset_after, out, rh, zbuf, unused, False, 0
        )
        if not reset_after:  # W_hn bf16(r ⊙ h)    (B, H) @ (H, H)
            _round_rows(rh_bits, hb, B, H)
            blas.gemm_bf16(
                args, scalars, False, H, B, H, w_hh_t, 2 * H, 3 * H, hb, H, 0.0, gh, 0, 3 * H
            )
            blas.n_of_step(s, gx, gh, h, lengths, reverse, zbuf, out, unused, False, 0)
    return out, h


def forward(
    x: np.ndarray,
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    b_ih: np.ndarray | None,
    b_hh: np.ndarray | None,
    h0: np.ndarray | None,
    *,
    lengths: np.ndarray | None = None,
    reset_after: bool = True,
    reverse: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Run a layer over x (T, B, I) from h0 (B, H) (None: zeros) with bfloat16 products.

    ``x``, ``w_ih`` (3H, I) and ``w_hh`` (3H, H) are bfloat16 bits (uint16, `to_bf16`);
    ``b_ih``, ``b_hh`` (3H,) or None and ``h0`` are float32. ``lengths`` and ``reverse`` as in
    `gru.kernels.forward`. Returns ``(output (T, B, H), h_n (B, H))`` in float32.
    Needs `available()`; nothing is kept for backward.
    """
    T, B, _ = x.shape
    H = w_hh.shape[1]
    Hp = padded_size(H)
    b_x, b_hn = fold_biases(b_ih, b_hh, reset_after, np.float32)
    b_x = np.zeros(3 * Hp, np.float32) if b_x is None else pad_hidden(b_x, H, Hp, blocks=3)
    b_hn = np.zeros(Hp, np.float32) if b_hn is None else pad_hidden(b_hn, H, Hp)
    w_hh_p = pad_hidden(pad_hidden(w_hh, H, Hp), H, Hp, axis=0, blocks=3)  # (3Hp, Hp)
    h0 = np.zeros((B, Hp), np.float32) if h0 is None else pad_hidden(h0, H, Hp)
    arrays = (
        np.ascontiguousarray(x, np.uint16),
        np.ascontiguousarray(pad_hidden(w_ih, H, Hp, axis=0, blocks=3).T, np.uint16),
        np.ascontiguousarray(w_hh_p.T, np.uint16),
        np.ascontiguousarray(b_x, np.float32),
        np.ascontiguousarray(b_hn, np.float32),
        np.ascontiguousarray(h0, np.float32),
        recurrence.lengths_array(lengths, T, B),
        bool(reverse),
        bool(reset_after),
    )
    key = ("bf16", np.dtype(np.float32))
    out, h_n = first_call(key, "inference with bfloat16 products", _layer, *arrays)
    return unpad_hidden(out, H, Hp), unpad_hidden(h_n, H, Hp)
