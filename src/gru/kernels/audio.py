"""The front end of streaming speech in one compiled call: the log-mel frames of a piece of
audio (`gru.data.speech.FrameStream`).

A 20 ms piece completes two frames; in NumPy their window-DFT, power, mel product and log are
a dozen calls of a microsecond or more each, more than the arithmetic (~90k multiply-adds).
`log_mel` does them in one loop over the frames.

Shapes: N samples a frame (n_fft), F = N // 2 + 1 frequency bins, M mel bands.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gru.kernels.compiling import first_call, ready
from gru.kernels.products import ENTRY

__all__ = ["log_mel", "prepare"]


@njit(**ENTRY)
def log_mel(buffer, hop, dft, basis, floor, out):
    """out (k, M) ← log(power_i @ basis + floor) for the k frames i of ``buffer`` (S,) that
    start ``hop`` samples apart, where power_i (F,) = re² + im² of the frame's product with
    ``dft`` (N, 2F) (its real parts, then its imaginary parts; the window folded in) and
    ``basis`` (F, M) is the mel filter bank. float32 throughout."""
    k, M = out.shape
    N, F2 = dft.shape
    F = F2 // 2
    spectrum = np.empty(F2, dft.dtype)
    for i in range(k):
        spectrum[:] = 0
        start = i * hop
        for n in range(N):
            sample = buffer[start + n]
            for j in range(F2):
                spectrum[j] += sample * dft[n, j]
        out[i, :] = 0
        for j in range(F):
            power = spectrum[j] * spectrum[j] + spectrum[F + j] * spectrum[F + j]
            for m in range(M):
                out[i, m] += power * basis[j, m]
        for m in range(M):
            out[i, m] = np.log(out[i, m] + floor)


def prepare() -> None:
    """Compile `log_mel` (announced if it keeps the caller waiting; see `first_call`), so a
    stream's first piece does not wait for it."""
    key = ("audio", np.dtype(np.float32))
    if ready(key):
        return
    f = np.float32
    first_call(
        key, "streaming audio",
        log_mel, np.zeros(4, f), 2, np.zeros((2, 4), f), np.zeros((2, 1), f), f(1e-6),
        np.zeros((2, 1), f),
    )  # fmt: skip
