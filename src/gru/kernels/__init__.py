"""The fused CPU engine: a GRU's recurrence compiled with Numba, on NumPy arrays (no torch).

`forward` and `backward` run one layer in one direction over a sequence; `step` advances one
time step for streaming. See `gru.kernels.sequence` for shapes and what the caller computes
around them, and `gru.kernels.activations` for the float32 σ and tanh and their accuracy.
"""

import hashlib
from pathlib import Path


def _drop_stale_cache() -> None:
    """Drop compiled kernels cached from an older version of any kernel source file.

    Numba keys a cached function on its own file only, but the kernels inline helpers from
    the sibling modules; a change to any of them must recompile every kernel.
    """
    here = Path(__file__).parent
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(here.glob("*.py"))))
    cache = here / "__pycache__"
    stamp = cache / "kernels.sources"
    try:
        if stamp.read_text() == digest.hexdigest():
            return
    except OSError:
        pass  # no stamp yet
    try:
        for old in cache.glob("*.nb[ic]"):
            old.unlink()
        cache.mkdir(exist_ok=True)
        stamp.write_text(digest.hexdigest())
    except OSError:
        pass  # a read-only install: Numba caches elsewhere and this check cannot help


_drop_stale_cache()

from gru.kernels import blas, rows, variants  # noqa: E402
from gru.kernels.sequence import (  # noqa: E402
    BLAS_MIN_HIDDEN,
    LANES,
    backward,
    backward_variants,
    forward,
    forward_small,
    forward_variants,
    is_small,
    pad_hidden,
    padded_size,
    saved_width,
    step,
    unpad_hidden,
)

__all__ = [
    "BLAS_MIN_HIDDEN",
    "LANES",
    "backward",
    "backward_variants",
    "blas",
    "forward",
    "forward_small",
    "forward_variants",
    "is_small",
    "pad_hidden",
    "padded_size",
    "rows",
    "saved_width",
    "step",
    "unpad_hidden",
    "variants",
]
