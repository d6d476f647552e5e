"""σ and tanh for the compiled kernels, written so that LLVM vectorizes the loops that call them.

A loop that calls libm's ``expf`` or ``tanhf`` stays scalar (no vector math library is linked),
so in float32 both functions are built here from plain arithmetic on an exp(x) of our own:

    exp(x) = 2^k · p(r),  k = round(x / ln 2),  r = x − k ln 2 (Cody–Waite, ln 2 split in two)

with p the degree-7 Taylor polynomial of e^r on |r| ≤ ln2/2 and 2^k assembled from its bits.
Then σ(x) = 1 / (1 + exp(−x)); tanh(x) = x·q(x²) (its Taylor series to x⁹) for |x| < 1/4 and
sign(x) · (1 − 2 / (exp(2|x|) + 1)) above. NaN stays NaN; ±inf gives the right limits.

Accuracy over every float32 input, as measured by tests/test_kernels.py over all 2³² bit
patterns against float64 references (GRU_FULL_ACTIVATION_SCAN=1; the suite scans every 16th)
(the largest errors seen, rounded up):
    exp32:     relative error ≤ 1.35 ulp (7.9e-8) for −87 ≤ x ≤ 88 (clamped outside)
    sigmoid32: absolute error ≤ 9.0e-8 everywhere; relative error ≤ 1.6e-7 for x ≥ −87
    tanh32:    absolute error ≤ 9.5e-8 everywhere; relative error ≤ 3.4e-7 everywhere; exactly 0
               where tanh is 0

float64 uses libm (exact to the last ulp); it is the precision path, not the speed path.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

__all__ = ["FASTMATH", "exp32", "sigmoid", "tanh"]

# Reassociation and contraction let LLVM vectorize and fuse; no 'nnan'/'ninf', so NaN and inf
# keep their IEEE meaning (a NaN input gives a NaN output, as in torch).
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

_F = np.float32


@intrinsic
def _bits_to_float32(typingctx, bits):
    """Reinterpret the low 32 bits of an integer as a float32 (a register move, vectorizable)."""
    if not isinstance(bits, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        low = args[0]
        if bits.bitwidth != 32:
            low = builder.trunc(low, ir.IntType(32))
        return builder.bitcast(low, ir.FloatType())

    return types.float32(bits), codegen


@njit(fastmath=FASTMATH, error_model="numpy")
def exp32(x):
    """e^x in float32, vectorizable; clamped to [e^−87, e^88]."""
    xc = min(max(x, _F(-87.0)), _F(88.0))
    k = np.floor(xc * _F(1.4426950408889634) + _F(0.5))  # round(x / ln 2)
    r = xc - k * _F(0.693359375)  # ln 2 = 0.693359375 − 2.12194440e-4, exact in the first
    r = r + k * _F(2.12194440e-4)
    p = _F(1.0 / 5040.0)
    p = p * r + _F(1.0 / 720.0)
    p = p * r + _F(1.0 / 120.0)
    p = p * r + _F(1.0 / 24.0)
    p = p * r + _F(1.0 / 6.0)
    p = p * r + _F(0.5)
    p = p * r + _F(1.0)
    p = p * r + _F(1.0)
    two_k = _bits_to_float32((np.int32(k) + 127) << 23)  # 2^k from its exponent bits
    return p * two_k


@njit(fastmath=FASTMATH, error_model="numpy")
def _sigmoid32(x):
    s = _F(1.0) / (_F(1.0) + exp32(-x))
    return s if x == x else x  # NaN in, NaN out


@njit(fastmath=FASTMATH, error_model="numpy")
def _tanh32(x):
    a = abs(x)
    a2 = a * a
    # tanh a = a − a³/3 + 2a⁵/15 − 17a⁷/315 + 62a⁹/2835 − …  (next term < 3e-9 relative at 1/4)
    q = _F(62.0 / 2835.0)
    q = q * a2 - _F(17.0 / 315.0)
    q = q * a2 + _F(2.0 / 15.0)
    q = q * a2 - _F(1.0 / 3.0)
    small = a + a * a2 * q
    large = _F(1.0) - _F(2.0) / (exp32(_F(2.0) * a) + _F(1.0))
    t = small if a < _F(0.25) else large
    t = t if x >= _F(0.0) else -t
    return t if x == x else x


@njit(error_model="numpy")
def _sigmoid64(x):
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@njit(error_model="numpy")
def _tanh64(x):
    return math.tanh(x)


def sigmoid(x):
    """σ(x) for one float32 or float64 scalar inside compiled code (see the module docstring)."""
    return 1.0 / (1.0 + math.exp(-x))


def tanh(x):
    """tanh(x) for one float32 or float64 scalar inside compiled code."""
    return math.tanh(x)


@overload(sigmoid)
def _sigmoid_overload(x):
    if x == types.float32:
        return lambda x: _sigmoid32(x)
    if x == types.float64:
        return lambda x: _sigmoid64(x)
    return None


@overload(tanh)
def _tanh_overload(x):
    if x == types.float32:
        return lambda x: _tanh32(x)
    if x == types.float64:
        return lambda x: _tanh64(x)
    return None
