"""The fused CPU engine: a GRU layer's recurrence compiled with Numba, on NumPy arrays (no torch).

The entry points take and return a layer's arrays as the layer stores them (gates in rows
[r | z | n]); the engine's padded width and the folding of the biases stay inside.

    forward / backward                     one layer, one direction (`gru.kernels.layer`)
    forward_variants / backward_variants   with layer norm, zoneout, recurrent dropout
    pack / step                            one step of a stack of layers (`gru.kernels.stream`)
    min_gru_step                           one step of a minGRU stack (`gru.kernels.mingru`)
    blas.bind(library)                     give the engine a BLAS for large hidden sizes
    packed.bind(library)                   and its packed GEMM (float32 from 64 units)
    bf16.forward                           a layer without gradients with bfloat16 products
                                           (float32 gates and state), on a bound bf16 GEMM

Inside: `layer` (the GEMMs around the loop), `padding` (the width and the bias convention),
`recurrence` (the time loop: rows or BLAS, sharded over threads), `small` (small layers in
one call), `rows` / `variants` / `blas` / `packed` / `bf16` (the compiled loops), `products` (their
vector–matrix products and scratch), `activations` (σ and tanh in float32, with their
accuracy).
"""

import hashlib
import os
from pathlib import Path

from gru.kernels import bf16, blas, packed, rows
from gru.kernels.layer import (
    Matmul,
    VariantState,
    backward,
    backward_variants,
    forward,
    forward_variants,
    numpy_matmul,
    saved_shape,
)
from gru.kernels.mingru import MinGRUBuffers, min_gru_step
from gru.kernels.recurrence import supports
from gru.kernels.stream import PackedStack, pack, step


def _drop_stale_cache() -> None:
    """Drop compiled kernels cached from an older version of any kernel source file.

    Numba keys a cached function on its own file only, but the kernels inline helpers from
    the sibling modules; a change to any of them must recompile every kernel. The cache is
    wherever Numba put it for these files: beside them, under ``NUMBA_CACHE_DIR``, or in the
    user's cache directory when the install is read-only. Its stamp there records a digest of
    every kernel source; a cache without the current stamp is emptied before its first use.
    """
    here = Path(__file__).parent
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(here.glob("*.py"))))
    try:
        cache = Path(rows.forward_rows._cache._cache_path)  # the directory Numba chose
    except AttributeError:  # a Numba that keeps it elsewhere: assume the default place
        cache = here / "__pycache__"
    stamp = cache / "kernels.sources"
    try:
        if stamp.read_text() == digest.hexdigest():
            return
    except OSError:
        pass  # no stamp yet
    try:
        for old in cache.glob("*.nb[ic]"):
            old.unlink(missing_ok=True)
        cache.mkdir(parents=True, exist_ok=True)
        fresh = cache / f"kernels.sources.{os.getpid()}"
        fresh.write_text(digest.hexdigest())
        os.replace(fresh, stamp)  # whole or not at all, when two processes start at once
    except OSError:
        pass  # an unwritable cache: Numba cannot write there either


__all__ = [
    "Matmul",
    "MinGRUBuffers",
    "PackedStack",
    "VariantState",
    "backward",
    "backward_variants",
    "bf16",
    "blas",
    "forward",
    "forward_variants",
    "min_gru_step",
    "numpy_matmul",
    "pack",
    "packed",
    "saved_shape",
    "step",
    "supports",
]

# Importing compiles nothing; the cache is checked before any kernel is first called.
_drop_stale_cache()
