"""The fused engine (gru.kernels) against the oracle, every path, both conventions, with lengths;
the float32 activations against float64 libm over the whole float32 range."""

import math
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numba import njit, prange

import gru
import gru.kernels.recurrence as recurrence
from checks import assert_close, reverse_padded
from gru import kernels, ops
from gru import reference as R
from gru.kernels import packed, products, small, tiles, tiles_training
from gru.kernels.activations import FASTMATH, exp32, sigmoid, tanh

# --- activations ------------------------------------------------------------------------------


@njit(fastmath=FASTMATH, error_model="numpy")
def _activations(x, s, t, e):
    for i in range(x.shape[0]):
        s[i] = sigmoid(x[i])
        t[i] = tanh(x[i])
        e[i] = exp32(x[i])


@njit(parallel=True, error_model="numpy", fastmath=FASTMATH)
def _worst_errors(shards, stride, offset):
    """Over the finite float32 whose bit patterns are ``offset`` + k·``stride`` (stride 1: all
    2³², sharded over threads), the largest
    errors of the float32 σ, tanh and exp against float64 references, and how many inputs
    whose tanh is 0 did not get exactly 0. Columns: σ absolute, σ relative (x ≥ −87), tanh
    absolute, tanh relative, exp relative (−87 ≤ x ≤ 88), tanh zeros missed.

    One libm exp per input serves every reference: e = exp(−|x|) gives σ, exp(x) = 1/e or e
    and tanh|x| = (1 − e²)/(1 + e²), exact to a few float64 ulp for |x| ≥ 2⁻¹⁰; below that
    tanh is its series x − x³/3 + 2x⁵/15 (error under x⁷, below 10⁻²⁰ relative)."""
    out = np.zeros((shards, 6))
    count = 2**32 // stride
    for shard in prange(shards):
        lo = (shard * count) // shards
        hi = ((shard + 1) * count) // shards
        bits = np.empty(4096, np.uint32)
        worst = np.zeros(6)
        for start in range(lo, hi, 4096):
            m = min(4096, hi - start)
            for j in range(m):
                bits[j] = np.uint32((start + j) * stride + offset)
            xs = bits[:m].view(np.float32)
            for j in range(m):
                x = xs[j]
                if not (x == x) or math.isinf(x):
                    continue
                xd = np.float64(x)
                ax = abs(xd)
                e = math.exp(-ax)
                s_ref = 1.0 / (1.0 + e) if xd >= 0 else e / (1.0 + e)
                if ax < 2.0**-10:
                    x2 = xd * xd
                    t_ref = xd * (1.0 - x2 / 3.0 + 2.0 * x2 * x2 / 15.0)
                else:
                    e2 = e * e
                    t_ref = math.copysign((1.0 - e2) / (1.0 + e2), xd)
                s_err = abs(np.float64(sigmoid(x)) - s_ref)
                worst[0] = max(worst[0], s_err)
                if xd >= -87.0 and s_ref > 0.0:
                    worst[1] = max(worst[1], s_err / s_ref)
                t = np.float64(tanh(x))
                worst[2] = max(worst[2], abs(t - t_ref))
                if t_ref != 0.0:
                    worst[3] = max(worst[3], abs(t - t_ref) / abs(t_ref))
                elif t != 0.0:
                    worst[5] += 1.0
                if -87.0 <= xd <= 88.0:
                    e_ref = 1.0 / e if xd >= 0 else e
                    worst[4] = max(worst[4], abs(np.float64(exp32(x)) - e_ref) / e_ref)
        out[shard] = worst
    return out


def test_float32_activations_meet_their_stated_accuracy():
    """The bounds in gru.kernels.activations' docstring, over every 16th float32 bit pattern
    (2²⁸ inputs: every sign and exponent, 2¹⁹ mantissas of each; ~10 s on two cores). The
    docstring's numbers come from the scan of all 2³² (GRU_FULL_ACTIVATION_SCAN=1, ~2½ min)."""
    stride = 1 if os.environ.get("GRU_FULL_ACTIVATION_SCAN") == "1" else 16
    worst = _worst_errors(64, stride, 5 % stride).max(axis=0)
    assert worst[0] <= 9.0e-8  # σ absolute
    assert worst[1] <= 1.6e-7  # σ relative, x ≥ −87
    assert worst[2] <= 9.5e-8  # tanh absolute
    assert worst[3] <= 3.4e-7  # tanh relative
    assert worst[4] <= 1.35 * 2.0**-24  # exp: 1.35 ulp
    assert worst[5] == 0  # tanh(x) = 0 exactly where it is 0


def test_float32_activations_keep_nan_and_infinity():
    x = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, 0.0, -0.0], np.float32)
    s, t, e = (np.empty_like(x) for _ in range(3))
    _activations(x, s, t, e)
    assert np.isnan(s[0]) and np.isnan(t[0]) and np.isnan(e[0])
    assert s[1] == 1.0 and s[3] == 1.0 and s[5] == 0.5 and s[6] == 0.5
    assert 0.0 <= s[2] < 1e-37 and 0.0 <= s[4] < 1e-37  # σ(−88) in float32 is below 1e-38
    assert t[1:].tolist() == [1.0, -1.0, 1.0, -1.0, 0.0, 0.0]


def test_float64_activations_are_libm():
    x = np.linspace(-50, 50, 10001)
    s, t, e = (np.empty_like(x) for _ in range(3))
    _activations(x, s, t, e)
    np.testing.assert_allclose(t, np.tanh(x), rtol=1e-15, atol=0)
    exact = [math.exp(v) / (1 + math.exp(v)) if v < 0 else 1 / (1 + math.exp(-v)) for v in x]
    np.testing.assert_allclose(s, exact, rtol=1e-15, atol=0)


# --- the recurrence against the oracle --------------------------------------------------------

PATHS = ["rows", "sharded", "blas", "packed", "packed-sharded"]


@pytest.fixture(params=PATHS)
def path(request, monkeypatch):
    """Route kernels.forward/backward through one implementation. "blas" is the unpacked
    BLAS loop; float32 takes the packed loop, in one piece or sharded, on "packed" paths
    (float64 the unpacked loop there too: torch's BLAS packs float32 only)."""
    if request.param == "sharded":
        monkeypatch.setattr(recurrence, "_MIN_WORK_PER_THREAD", 1)
    if request.param in ("blas", "packed", "packed-sharded"):
        ops.start_engine()  # binds torch's BLAS
        assert kernels.blas.available() and packed.available()
        monkeypatch.setattr(recurrence, "BLAS_MIN_HIDDEN", 1)
    if request.param == "blas":
        monkeypatch.setattr(packed, "available", lambda: False)
    if request.param == "packed":  # one loop, whatever the batch
        monkeypatch.setattr(packed, "SMALL_WEIGHT_BYTES", 0)
        monkeypatch.setattr(packed, "MIN_SHARD_ROWS", 10**6)
    if request.param == "packed-sharded":  # as many shards as threads
        monkeypatch.setattr(packed, "SMALL_WEIGHT_BYTES", 10**12)
    return request.param


def engine_layer(
    x, h0, w_ih, w_hh, b_ih, b_hh, d_out, d_hn, *, reset_after, reverse, lengths, dtype, threads=2
):
    """A whole layer on the engine's time loop (`gru.kernels.recurrence`), with the GEMMs
    around it done here in NumPy float64.

    Returns (output, h_n, grads dict) as float64 arrays.
    """
    H = w_hh.shape[1]
    T, B, I = x.shape
    folded = b_ih + (np.concatenate([b_hh[: 2 * H], np.zeros(H)]) if reset_after else b_hh)
    gx = (x @ w_ih.T + folded).astype(dtype)
    b_hn = b_hh[2 * H :].astype(dtype) if reset_after else None
    out, h_n, saved = recurrence.forward(
        gx,
        h0.astype(dtype),
        w_hh.astype(dtype),
        b_hn,
        reset_after=reset_after,
        reverse=reverse,
        lengths=lengths,
        threads=threads,
    )
    dg, h_prev, dh0, db = recurrence.backward(
        d_out.astype(dtype), d_hn.astype(dtype), out, h0.astype(dtype), saved, w_hh.astype(dtype),
        reset_after=reset_after, reverse=reverse, lengths=lengths, threads=threads,
    )  # fmt: skip
    dG = dg.reshape(T * B, 4 * H).astype(np.float64)
    dGX = dG[:, H:]  # [da_r | da_z | da_n]
    c = dG[:, :H]
    Hp = h_prev.reshape(T * B, H).astype(np.float64)
    if reset_after:
        dw_hh = np.concatenate([dGX[:, : 2 * H].T @ Hp, c.T @ Hp])
        db_hh = np.concatenate([dGX[:, : 2 * H].sum(0), c.sum(0)])
    else:
        dw_hh = np.concatenate([dGX[:, : 2 * H].T @ Hp, dGX[:, 2 * H :].T @ c])
        db_hh = dGX.sum(0)
    # The kernel's own sums must agree with summing dg here. A sum's rounding error follows
    # the size of its T·B terms, not of the sum (an element that cancels to near zero carries
    # the error of large terms), so atol grows with the terms' absolute sum.
    terms = max(1.0, float(np.abs(dG).sum(0).max()))
    assert_close(db[H:], dGX.sum(0), dtype, scale=4.0, atol_scale=terms, what="db")
    if reset_after:
        assert_close(db[:H], c.sum(0), dtype, scale=4.0, atol_scale=terms, what="db_hn")
    grads = {
        "x": (dGX @ w_ih).reshape(T, B, I),
        "h0": dh0,
        "w_ih": dGX.T @ x.reshape(T * B, I),
        "w_hh": dw_hh,
        "b_ih": dGX.sum(0),
        "b_hh": db_hh,
    }
    return out.astype(np.float64), h_n.astype(np.float64), grads


def layer_api(arrays, *, lengths, reset_after, reverse, dtype, bias=True, threads=2):
    """kernels.forward / kernels.backward on the weights as stored, with NumPy's GEMMs (the
    default: the engine needs no torch); float64 out, as `engine_layer`."""
    a = {k: v.astype(dtype) for k, v in arrays.items()}
    biases = (a["b_ih"], a["b_hh"]) if bias else (None, None)
    kw = {"lengths": lengths, "reset_after": reset_after, "reverse": reverse, "threads": threads}
    out, h_n, saved = kernels.forward(a["x"], a["w_ih"], a["w_hh"], *biases, a["h0"], **kw)
    assert saved.shape == kernels.saved_shape(*a["x"].shape[:2], a["w_hh"].shape[1], reset_after)
    grads = kernels.backward(
        a["d_out"], a["d_hn"], a["x"], a["h0"], a["w_ih"], a["w_hh"], out, saved,
        has_bias=bias, **kw,
    )  # fmt: skip
    names = ("x", "h0", "w_ih", "w_hh", "b_ih", "b_hh")
    grads = {n: g.astype(np.float64) for n, g in zip(names, grads, strict=True) if g is not None}
    return out.astype(np.float64), h_n.astype(np.float64), grads


def oracle_layer(x, h0, w_ih, w_hh, b_ih, b_hh, d_out, d_hn, *, reset_after, reverse, lengths):
    """The same through gru.reference, reversing sequences within their lengths."""
    xr = reverse_padded(x, lengths) if reverse else x
    out, h_n, cache = R.gru_forward(
        xr, h0, w_ih, w_hh, b_ih, b_hh, reset_after=reset_after, lengths=lengths
    )
    g = R.gru_backward(reverse_padded(d_out, lengths) if reverse else d_out, d_hn, cache)
    grads = {
        "x": reverse_padded(g.x, lengths) if reverse else g.x,
        "h0": g.h0,
        "w_ih": g.w_ih,
        "w_hh": g.w_hh,
        "b_ih": g.b_ih,
        "b_hh": g.b_hh,
    }
    return (reverse_padded(out, lengths) if reverse else out), h_n, grads


def random_problem(seed, T, B, I, H, with_lengths, *, torch_init=False):
    """Inputs, weights and output gradients of one layer, float64; weights ~ N(0, 0.5²), or
    U(−1/√H, 1/√H) as torch.nn.GRU draws them with ``torch_init``."""
    rng = np.random.default_rng(seed)

    def weights(*shape):
        if torch_init:
            return rng.uniform(-(H**-0.5), H**-0.5, shape)
        return rng.normal(0, 0.5, shape)

    arrays = {
        "x": rng.normal(size=(T, B, I)),
        "h0": rng.normal(size=(B, H)),
        "w_ih": weights(3 * H, I),
        "w_hh": weights(3 * H, H),
        "b_ih": weights(3 * H),
        "b_hh": weights(3 * H),
        "d_out": rng.normal(size=(T, B, H)),
        "d_hn": rng.normal(size=(B, H)),
    }
    lengths = rng.integers(1, T + 1, size=B) if with_lengths else None
    if lengths is not None:
        lengths[rng.integers(B)] = T  # the longest sequence fills the batch
        for b, L in enumerate(lengths):
            arrays["d_out"][L:, b] = 0.0  # padding outputs are constant: no gradient reaches them
    return arrays, lengths


def compare(engine, oracle, dtype, what):
    (out, h_n, g), (r_out, r_h, r_g) = engine, oracle
    assert_close(out, r_out, dtype, what=f"{what} output")
    assert_close(h_n, r_h, dtype, what=f"{what} h_n")
    for name in r_g:
        # float32 gradients sum T·B products: scale the tolerance by the number of terms' root.
        scale = 1.0 if dtype == np.float64 else 4.0
        # A sum's rounding error follows the size of its terms, not of the sum: an element that
        # cancels to near zero carries the error of large terms (with exploding gradients, an
        # element of 0.16 beside others of 1,800 was 2e-8 off in float64). So atol grows with
        # the gradient's largest element.
        magnitude = max(1.0, float(np.abs(np.asarray(r_g[name])).max(initial=0.0)))
        assert_close(
            g[name], r_g[name], dtype, scale=scale, atol_scale=magnitude, what=f"{what} d{name}"
        )


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_every_path_equals_the_oracle(path, reset_after, reverse, with_lengths):
    arrays, lengths = random_problem(1, 9, 5, 4, 6, with_lengths)
    kw = {"reset_after": reset_after, "reverse": reverse, "lengths": lengths}
    oracle = oracle_layer(*arrays.values(), **kw)
    compare(engine_layer(*arrays.values(), **kw, dtype=np.float64), oracle, np.float64, path)
    compare(engine_layer(*arrays.values(), **kw, dtype=np.float32), oracle, np.float32, path)


# The shapes the issue asks for (T 1–64, B 1–9, I 1–40, H 1–70), both conventions, with lengths.
PROBLEMS = {
    "T": st.integers(1, 64),
    "B": st.integers(1, 9),
    "I": st.integers(1, 40),
    "H": st.integers(1, 70),
    "reset_after": st.booleans(),
    "reverse": st.booleans(),
    "with_lengths": st.booleans(),
    "seed": st.integers(0, 2**16),
}
HYPOTHESIS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@HYPOTHESIS
@given(**PROBLEMS, threads=st.sampled_from([1, 2]))
def test_random_shapes_equal_the_oracle(
    T, B, I, H, reset_after, reverse, with_lengths, threads, seed
):
    """The time loop alone and the layer as stored (H up to 70 crosses the engine's padding
    to multiples of 8, which its caller never sees)."""
    arrays, lengths = random_problem(seed, T, B, I, H, with_lengths)
    kw = {"reset_after": reset_after, "reverse": reverse, "lengths": lengths}
    oracle = oracle_layer(*arrays.values(), **kw)
    engine = engine_layer(*arrays.values(), **kw, dtype=np.float64, threads=threads)
    compare(engine, oracle, np.float64, "hypothesis")
    layer = layer_api(arrays, **kw, dtype=np.float64, threads=threads)
    compare(layer, oracle, np.float64, "hypothesis, layer as stored")


@HYPOTHESIS
@given(**PROBLEMS, threads=st.sampled_from([1, 2]))
def test_random_shapes_in_float32_equal_the_oracle(
    T, B, I, H, reset_after, reverse, with_lengths, threads, seed
):
    """The production dtype over the same shapes: the time loop and the layer as stored, in
    float32, against the float64 oracle, with weights of torch.nn.GRU's scale (with N(0, 0.5²)
    weights over 64 steps float32 rounding grows past float32's tolerance on any path)."""
    arrays, lengths = random_problem(seed, T, B, I, H, with_lengths, torch_init=True)
    kw = {"reset_after": reset_after, "reverse": reverse, "lengths": lengths}
    oracle = oracle_layer(*arrays.values(), **kw)
    engine = engine_layer(*arrays.values(), **kw, dtype=np.float32, threads=threads)
    compare(engine, oracle, np.float32, "float32")
    layer = layer_api(arrays, **kw, dtype=np.float32, threads=threads)
    compare(layer, oracle, np.float32, "float32, layer as stored")


@HYPOTHESIS
@given(**PROBLEMS, threads=st.sampled_from([1, 2]), sharded=st.booleans())
def test_random_shapes_on_the_packed_loop_equal_the_oracle(
    T, B, I, H, reset_after, reverse, with_lengths, threads, sharded, seed
):
    """float32's packed loop (`gru.kernels.packed`) at every width and batch of the same
    shapes, in one piece or sharded; float64, which torch's BLAS does not pack, takes the
    unpacked BLAS loop there (the "blas" path of `test_every_path_equals_the_oracle`)."""
    ops.start_engine()
    arrays, lengths = random_problem(seed, T, B, I, H, with_lengths, torch_init=True)
    kw = {"reset_after": reset_after, "reverse": reverse, "lengths": lengths}
    oracle = oracle_layer(*arrays.values(), **kw)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(recurrence, "BLAS_MIN_HIDDEN", 1)  # every width on the BLAS loops
        patch.setattr(packed, "SMALL_WEIGHT_BYTES", 10**12 if sharded else 0)
        patch.setattr(packed, "MIN_SHARD_ROWS", 1 if sharded else 10**6)
        engine = engine_layer(*arrays.values(), **kw, dtype=np.float32, threads=threads)
        for dtype in (np.float32, np.float64):
            layer = layer_api(arrays, **kw, dtype=dtype, threads=threads)
            compare(layer, oracle, dtype, f"{dtype.__name__}, layer on the BLAS loops")
    compare(engine, oracle, np.float32, "float32, packed loop")


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_layer_as_stored_on_every_path(path, reset_after, dtype):
    arrays, lengths = random_problem(5, 9, 5, 4, 13, True)  # H 13: padded to 16
    kw = {"reset_after": reset_after, "reverse": True, "lengths": lengths}
    oracle = oracle_layer(*arrays.values(), **kw)
    compare(layer_api(arrays, **kw, dtype=dtype), oracle, dtype, f"layer on {path}")


@pytest.mark.parametrize("reset_after", [True, False])
def test_the_layer_without_bias(reset_after):
    arrays, lengths = random_problem(6, 7, 3, 5, 10, True)
    arrays["b_ih"][:] = 0.0
    arrays["b_hh"][:] = 0.0
    kw = {"reset_after": reset_after, "reverse": False, "lengths": lengths}
    out, h_n, grads = layer_api(arrays, **kw, dtype=np.float64, bias=False)
    r_out, r_h, r_grads = oracle_layer(*arrays.values(), **kw)
    del r_grads["b_ih"], r_grads["b_hh"]
    assert set(grads) == set(r_grads)
    compare((out, h_n, grads), (r_out, r_h, r_grads), np.float64, "no bias")


def small_forward(
    arrays, lengths, *, reset_after, reverse, dtype, bias=True, h0=True, threads=None
):  # fmt: skip
    """small.forward_small on the problem's weights as stored, in ``dtype``; float64 out."""
    cast = {k: v.astype(dtype) for k, v in arrays.items()}
    out, h_n = small.forward_small(
        cast["x"], cast["w_ih"], cast["w_hh"],
        cast["b_ih"] if bias else None, cast["b_hh"] if bias else None,
        cast["h0"] if h0 else None, lengths, reset_after=reset_after, reverse=reverse,
        threads=threads,
    )  # fmt: skip
    assert out.dtype == dtype and h_n.dtype == dtype
    return out.astype(np.float64), h_n.astype(np.float64)


@HYPOTHESIS
@given(**PROBLEMS)
def test_the_small_call_path_equals_the_oracle(
    T, B, I, H, reset_after, reverse, with_lengths, seed
):
    """forward_small (projection, bias folding and recurrence in one call, H unpadded)."""
    arrays, lengths = random_problem(seed, T, B, I, H, with_lengths)
    kw = {"reset_after": reset_after, "reverse": reverse, "lengths": lengths}
    r_out, r_h, _ = oracle_layer(*arrays.values(), **kw)
    # float64, as the test of `forward` above: with these weights (σ 0.5, H up to 70) float32
    # rounding grows along the sequence on both paths alike (4.2e-6 on the usual path, 4.4e-6
    # here, at T 12, H 58); float32 is checked at torch's initialization in test_ops.
    out, h_n = small_forward(
        arrays, lengths, reset_after=reset_after, reverse=reverse, dtype=np.float64
    )
    assert_close(out, r_out, np.float64, what="small output")
    assert_close(h_n, r_h, np.float64, what="small h_n")


@HYPOTHESIS
@given(**PROBLEMS, bias=st.booleans(), h0=st.booleans(), threads=st.sampled_from([1, 2]))
def test_the_small_call_on_tiled_shards_equals_the_oracle(
    T, B, I, H, reset_after, reverse, with_lengths, seed, bias, h0, threads
):
    """float32's small call in shards on register tiles (`gru.kernels.tiles.forward`; S1's 32
    rows go in two shards of 16, here down to one row a shard, at every width), weights of
    torch's scale."""
    ops.start_engine()
    arrays, lengths = random_problem(seed, T, B, I, H, with_lengths, torch_init=True)
    for name, on in (("b_ih", bias), ("b_hh", bias), ("h0", h0)):
        arrays[name][:] = arrays[name] if on else 0.0
    kw = {"reset_after": reset_after, "reverse": reverse, "lengths": lengths}
    r_out, r_h, _ = oracle_layer(*arrays.values(), **kw)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tiles, "MIN_BATCH", 1)
        patch.setattr(tiles, "MIN_ROWS", 1)
        patch.setattr(packed, "MIN_HIDDEN", H + 1)
        assert tiles.shards(B, H, threads) == min(threads, B)
        out, h_n = small_forward(
            arrays, lengths, reset_after=reset_after, reverse=reverse, dtype=np.float32,
            bias=bias, h0=h0, threads=threads,
        )  # fmt: skip
    assert_close(out, r_out, np.float32, what="tiled small output")
    assert_close(h_n, r_h, np.float32, what="tiled small h_n")


@pytest.mark.parametrize("H", [5, 16, 20, 33, 63])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("reverse", [False, True])
def test_tiled_training_equals_the_oracle(H, threads, reverse):
    # Float32 under 64 units, 4 rows and more, reset after: the tiles' forward (saving) and
    # their backward, with lengths, every width class (under 8, a multiple of 16, a multiple
    # of 8 that is not, neither), one shard and two.
    T, B, I = 11, 7, 9
    arrays, lengths = random_problem(H, T, B, I, H, True, torch_init=True)
    kw = {"reset_after": True, "reverse": reverse, "lengths": lengths}
    assert tiles_training.shards(B, H, np.float32, True, threads) == threads
    compare(
        layer_api(arrays, **kw, dtype=np.float32, threads=threads),
        oracle_layer(*arrays.values(), **kw),
        np.float32,
        "tiled training",
    )


def test_tiled_training_without_bias_initial_state_or_some_gradients():
    arrays, lengths = random_problem(3, 6, 5, 4, 12, True, torch_init=True)
    arrays["b_ih"][:] = arrays["b_hh"][:] = arrays["h0"][:] = 0.0
    kw = {"reset_after": True, "reverse": False, "lengths": lengths}
    r_out, r_h, r_grads = oracle_layer(*arrays.values(), **kw)
    a = {k: v.astype(np.float32) for k, v in arrays.items()}
    out, h_n, saved = kernels.forward(a["x"], a["w_ih"], a["w_hh"], None, None, None, **kw)
    assert_close(h_n, r_h, np.float32, what="h_n")
    assert_close(out, r_out, np.float32, what="output")
    dx, dh0, dw_ih, dw_hh, db_ih, db_hh = kernels.backward(
        a["d_out"], a["d_hn"], a["x"], None, a["w_ih"], a["w_hh"], out, saved, has_bias=False,
        need_x=False, **kw,
    )  # fmt: skip
    assert dx is None and db_ih is None and db_hh is None
    for name, got in (("h0", dh0), ("w_ih", dw_ih), ("w_hh", dw_hh)):
        assert_close(got, r_grads[name], np.float32, scale=4.0, what=f"d{name}")
    # frozen weights: dx and dh0 only
    dx, dh0, *weights = kernels.backward(
        a["d_out"], a["d_hn"], a["x"], None, a["w_ih"], a["w_hh"], out, saved, has_bias=False,
        need_weights=False, **kw,
    )  # fmt: skip
    assert weights == [None] * 4
    assert_close(dx, r_grads["x"], np.float32, scale=4.0, what="dx")
    assert_close(dh0, r_grads["h0"], np.float32, scale=4.0, what="dh0")
    # the other ways to the row kernels: reset before, float64, under 4 rows, 64 units
    assert tiles_training.shards(5, 12, np.float32, False, 2) == 0
    assert tiles_training.shards(5, 12, np.float64, True, 2) == 0
    assert tiles_training.shards(3, 12, np.float32, True, 2) == 0
    assert tiles_training.shards(5, 64, np.float32, True, 2) == 0


@njit
def _tiled_product(a, a0, lda, ka, m, K, w, w0, ldw, n, c, c0, ldc):
    products.tiled_product(a, a0, lda, ka, m, K, w, w0, ldw, n, c, c0, ldc, 0)


@njit
def _tiled_add(a, a0, lda, ka, m, K, w, w0, ldw, n, c, c0, ldc):
    products.tiled_product(a, a0, lda, ka, m, K, w, w0, ldw, n, c, c0, ldc, 1)


def _check_tiled(m, vectors, transposed, add):
    rng = np.random.default_rng(m * 100 + vectors)
    K, n = 37, 16 * vectors
    # a's block: rows 1..m, columns 2..K+1 (transposed: a holds it as (K, m) at rows 2..K+1,
    # columns 1..m)
    a = rng.standard_normal((K + 3, m + 2) if transposed else (m + 2, K + 3)).astype(np.float32)
    w = rng.standard_normal((K, n + 32)).astype(np.float32)
    c = np.full((m + 1, n + 16), 7.0, np.float32)
    before = c.copy()
    lda, ldw, ldc = a.shape[1], w.shape[1], c.shape[1]
    product = _tiled_add if add else _tiled_product
    if transposed:
        product(a, 2 * lda + 1, 1, lda, m, K, w, 16, ldw, n, c, ldc, ldc)
        block = a[2 : K + 2, 1 : m + 1].T.astype(np.float64)
    else:
        product(a, lda + 2, lda, 1, m, K, w, 16, ldw, n, c, ldc, ldc)
        block = a[1 : m + 1, 2 : K + 2].astype(np.float64)
    w_block = w[:, 16 : 16 + n]
    expected = block @ w_block + (7.0 if add else 0.0)
    # A sum of K float32 products: within the standard bound K·eps·Σ|a||w| (the float32
    # tolerance alone fails where the terms cancel), plus the rounding of the added 7.
    bound = K * np.finfo(np.float32).eps * (np.abs(block) @ np.abs(w_block) + 7.0)
    assert (np.abs(c[1:, :n] - expected) <= bound).all()
    assert (c[0] == before[0]).all() and (c[1:, n:] == before[1:, n:]).all()


@pytest.mark.parametrize("m", [1, 2, 3, 4, 5, 7, 9])
@pytest.mark.parametrize("vectors", [1, 2, 3, 4, 5, 6, 7, 13])
def test_tiled_products_equal_numpy_at_every_tile_shape(m, vectors):
    # Every tile the product dispatches to (4 rows and the last 1-3; 6 vectors and the last
    # 1-5), at offsets into larger arrays, leaving everything outside the block untouched.
    _check_tiled(m, vectors, transposed=False, add=False)


@pytest.mark.parametrize("m", [1, 5, 9])
@pytest.mark.parametrize("vectors", [1, 3, 7])
@pytest.mark.parametrize(("transposed", "add"), [(True, False), (False, True), (True, True)])
def test_tiled_products_read_a_transposed_and_add_to_c(m, vectors, transposed, add):
    # The weight gradients' form: a read down its columns (k stride = row length) and the
    # product added to what c holds.
    _check_tiled(m, vectors, transposed=transposed, add=add)


@pytest.mark.parametrize("reset_after", [True, False])
def test_the_small_call_path_without_bias_or_initial_state(reset_after):
    arrays, lengths = random_problem(4, 7, 3, 5, 6, True)
    arrays["b_ih"][:] = 0.0
    arrays["b_hh"][:] = 0.0
    arrays["h0"][:] = 0.0
    kw = {"reset_after": reset_after, "reverse": False, "lengths": lengths}
    r_out, r_h, _ = oracle_layer(*arrays.values(), **kw)
    out, h_n = small_forward(
        arrays,
        lengths,
        reset_after=reset_after,
        reverse=False,
        dtype=np.float64,
        bias=False,
        h0=False,
    )
    assert_close(out, r_out, np.float64)
    assert_close(h_n, r_h, np.float64)


def test_small_means_a_cheap_projection_and_one_thread_or_float32_shards():
    ops.start_engine()  # binds torch's BLAS, which takes the large sizes, and MKL's packed GEMM
    f32, f64 = np.float32, np.float64
    assert small.is_small(5, 32, 10, 20, threads=2)  # S1
    assert small.is_small(5, 32, 10, 20, threads=2, dtype=f32)
    assert not small.is_small(100, 32, 32, 32, threads=2)  # S2 in float64: GEMM, two threads
    assert small.is_small(100, 32, 32, 32, threads=2, dtype=f32)  # float32: tiled shards
    assert small.is_small(100, 32, 32, 32, threads=1, dtype=f32)  # one shard
    assert tiles.shards(32, 32, threads=2) == 2
    assert tiles.shards(4, 32, threads=2) == 2
    assert tiles.shards(3, 32, threads=2) == 0  # fewer than MIN_BATCH rows
    assert tiles.shards(32, 64, threads=2) == 0  # the packed loops' widths
    assert not small.is_small(100, 32, 32, 64, threads=2, dtype=f32)
    assert not small.is_small(1, 1, 64, 1024, threads=1, dtype=f32)  # BLAS sizes
    assert not small.is_small(5, 64, 4, 64, threads=2)  # recurrence worth two threads
    assert small.is_small(5, 64, 4, 64, threads=1)
    assert not small.is_small(5, 64, 4, 64, threads=2, dtype=f64)


def test_save_false_keeps_nothing_and_gives_the_same_output():
    arrays, _ = random_problem(2, 6, 3, 2, 4, False)
    gx = np.ascontiguousarray(arrays["x"] @ arrays["w_ih"].T)
    a = recurrence.forward(gx, arrays["h0"], arrays["w_hh"], save=True)
    b = recurrence.forward(gx, arrays["h0"], arrays["w_hh"], save=False)
    assert b[2] is None and a[2].shape == (6, 3, 4 * 4)
    assert_close(b[0], a[0], np.float64)  # separately compiled loops: equal up to rounding
    assert_close(b[1], a[1], np.float64)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_step_of_a_stack_equals_the_oracle_steps(reset_after, dtype):
    """kernels.step on two stacked layers, packed by kernels.pack, equals gru_step twice."""
    rng = np.random.default_rng(3)
    B, I, H = 3, 5, 7
    layers = [
        [rng.normal(0, 0.5, s) for s in [(3 * H, n_in), (3 * H, H), (3 * H,), (3 * H,)]]
        for n_in in (I, H)
    ]
    x, h = rng.normal(size=(B, I)), rng.normal(size=(2, B, H))
    stack = kernels.pack(layers, B, reset_after=reset_after, dtype=dtype)
    stack.state[...] = h
    kernels.step(x.astype(dtype), stack)
    out = stack.output

    h1, _ = R.gru_step(x, h[0], *layers[0], reset_after=reset_after)
    h2, _ = R.gru_step(h1, h[1], *layers[1], reset_after=reset_after)
    assert_close(out, h2, dtype)
    assert_close(stack.state, np.stack([h1, h2]), dtype)  # the state
    with pytest.raises(ValueError, match=r"kernels.step: x must be an ndarray of shape \(3, 5\)"):
        kernels.step(x[:, :4].astype(dtype), stack)  # the step would read past each row's end
    other = np.float64 if dtype == np.float32 else np.float32
    with pytest.raises(ValueError, match=rf"and dtype {np.dtype(dtype)}, got ndarray \(3, 5\)"):
        kernels.step(x.astype(other), stack)


@pytest.mark.parametrize("k", [0, 1, 3])
def test_log_mel_of_the_streaming_front_end_equals_its_numpy_formula(k):
    """kernels.audio.log_mel: frames hop apart, |frame @ dft|² @ basis, log; in float64."""
    from gru.kernels import audio

    rng = np.random.default_rng(4)
    N, F, M, hop = 16, 9, 5, 6
    buffer = rng.standard_normal(N + 2 * hop + 1).astype(np.float32)
    dft = rng.standard_normal((N, 2 * F)).astype(np.float32)
    basis = rng.uniform(0, 1, (F, M)).astype(np.float32)
    out = np.full((k, M), np.nan, np.float32)
    audio.log_mel(buffer, hop, dft, basis, np.float32(1e-6), out)
    frames = [buffer[i * hop : i * hop + N] for i in range(k)]
    spectrum = np.array(frames, np.float64).reshape(k, N) @ dft.astype(np.float64)  # (k, 2F)
    power = spectrum[:, :F] ** 2 + spectrum[:, F:] ** 2
    assert_close(out, np.log(power @ basis.astype(np.float64) + 1e-6), np.float32)


# --- the configurations of the benchmark, and long sequences ----------------------------------

CONFIGS = {
    "S1": (10, 20, 32, 5),
    "S2": (32, 32, 32, 100),
    "S3": (14, 50, 32, 120),
    "S4": (256, 256, 64, 100),
    "S5": (1024, 1024, 64, 50),
}


def test_packed_plan_shards_cached_weights_and_leaves_one_or_two_rows_to_the_blas_loop():
    ops.start_engine()
    assert packed.available()  # torch's MKL exports the packed GEMM on x86-64 Linux
    assert packed.plan(2, 256, threads=2) == 0  # matrix-vector products: MKL's own path
    assert packed.plan(64, 256, threads=2) == 2  # S4: W_hh (786 KB) stays in each core's cache
    assert packed.plan(3, 256, threads=2) == 2  # down to a row a shard
    assert packed.plan(64, 256, threads=1) == 1
    assert packed.plan(12, 384, threads=2) == 1  # 1.8 MB: shards of 8 rows or more
    assert packed.plan(16, 384, threads=2) == 2
    assert packed.plan(64, 1024, threads=2) == 1  # S5: 12.6 MB, the BLAS threads one loop
    assert packed.plan(32, 32, threads=2, rows_width=True) == 0  # S2: the row kernels
    assert packed.plan(32, 64, threads=2, rows_width=True) == 2
    assert packed.plan(32, 32, threads=1, rows_width=True, backward=True) == 1


@pytest.mark.parametrize("name", CONFIGS)
def test_benchmark_shapes_match_torch_in_float32(name):
    """The layer on the engine (rows or BLAS path, as the size decides) against torch.nn.GRU."""
    I, H, B, T = CONFIGS[name]
    torch.manual_seed(0)
    theirs = torch.nn.GRU(I, H)
    ours = gru.GRU.from_torch(theirs)
    x = torch.randn(T, B, I, requires_grad=True)
    expected, actual = theirs(x), ours(x)
    for a, e in zip(actual, expected, strict=True):
        assert_close(a, e)
    g = torch.randn_like(expected[0])
    (gx_t,) = torch.autograd.grad(expected[0], x, g)
    (gx_o,) = torch.autograd.grad(actual[0], x, g)
    # dx sums 3H products per element in a different order than torch: loosened by 3 at H=1024.
    assert_close(gx_o, gx_t, scale=3.0 if H > 500 else 1.0)


def test_streaming_step_shape_s6_matches_torch_cell():
    torch.manual_seed(0)
    theirs = torch.nn.GRU(64, 64)
    stream = gru.GRU.from_torch(theirs).stream(batch_size=1)
    x = torch.randn(30, 1, 64)
    expected, _ = theirs(x)
    for t in range(30):
        assert_close(stream(x[t]), expected[t])


def test_twenty_thousand_steps_stay_finite_and_match_torch():
    torch.manual_seed(0)
    theirs = torch.nn.GRU(8, 16)
    ours = gru.GRU.from_torch(theirs)
    x = torch.randn(20_000, 2, 8)
    with torch.no_grad():
        (out_t, h_t), (out_o, h_o) = theirs(x), ours(x)
    assert torch.isfinite(out_o).all()
    # 20,000 float32 steps: rounding differences are carried but the state is contractive.
    assert_close(out_o, out_t, scale=10.0)
    assert_close(h_o, h_t, scale=10.0)


def test_two_threads_running_one_model_get_the_answers_of_one():
    torch.manual_seed(0)
    model = gru.GRU(6, 24, 2)
    inputs = [torch.randn(50, 8, 6) for _ in range(8)]
    with torch.no_grad():
        expected = [model(x)[0] for x in inputs]
    results: dict[int, list] = {0: [], 1: []}

    def work(i):
        with torch.no_grad():
            for _ in range(5):
                results[i].append([model(x)[0] for x in inputs])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for runs in results.values():
        assert len(runs) == 5
        for outputs in runs:
            for a, e in zip(outputs, expected, strict=True):
                assert torch.equal(a, e)


# --- the compile cache ----------------------------------------------------------------------


def test_a_changed_helper_is_recompiled_wherever_numba_caches(tmp_path):
    """Under NUMBA_CACHE_DIR (and so for a read-only install, cached in the user's directory),
    a change to a helper the kernels inline (float32 σ in activations.py) reaches the next
    process: the stale compiled kernels are dropped, not run."""
    package = tmp_path / "src" / "gru"
    shutil.copytree(
        Path(gru.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__")
    )
    env = {
        **os.environ,
        "NUMBA_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONPATH": str(package.parent),
    }
    code = (
        "import torch, gru\n"
        "torch.manual_seed(0)\n"
        "layer, x = gru.GRU(3, 4), torch.randn(5, 2, 3)\n"
        "with torch.no_grad():\n"
        "    print(repr(layer(x)[0].sum().item()))\n"
    )

    def output() -> float:
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        return float(done.stdout)

    before = output()
    assert any((tmp_path / "cache").rglob("*.nbi"))  # the kernels were cached there
    activations = package / "kernels" / "activations.py"
    text = activations.read_text()
    body = "    s = _F(1.0) / (_F(1.0) + exp32(-x))\n"
    assert body in text
    activations.write_text(text.replace(body, body + "    s = s * _F(0.5)\n"))  # σ halved
    after = output()
    assert after != pytest.approx(before, rel=1e-3)  # computed with the changed σ
