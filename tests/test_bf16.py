"""bfloat16 inference on the engine (`gru.kernels.bf16`, `gru.ops.fused.bf16_sequence`): against
the float64 oracle and composed torch operations, under autocast, and without bf16 hardware.

Tolerances come from bfloat16's 8-bit significand (7 bits stored): rounding a value to
bfloat16 (to nearest, ties to even) errs by at most u = 2⁻⁸ of it. A product over K terms whose
operands were both rounded errs by at most 2u = 2⁻⁷ of each |w_k a_k|, and with independent
signs by about 2⁻⁷ · √K · max|w| · max|a| in all (the float32 accumulation adds ~2⁻²⁴·K,
nothing next to it). torch's initialization draws |w| ≤ 1/√H, the state has |h| ≤ max(1, |h0|)
and the inputs here are N(0, 1) (|x| ≲ 4), so one pre-activation errs by about
e = 2⁻⁷ · √(K/H) · A, A the largest input or state magnitude. σ' ≤ 1/4 and tanh' ≤ 1 pass at
most e on to h_t; an error in h_{t-1} is carried on by z ⊙ h_{t-1} (z < 1) and the next
products, so over the steps the errors add like a damped random walk: we allow 2e (atol), plus
u relative (rtol) for the output's own rounding to bfloat16. A second layer reads the first's
rounded outputs, so its allowance is added to the first's. (Seen on this suite's problems: at
most about a tenth of the allowance; a wrong gate or product is off by 0.1 to 1.)
"""

import copy
import math

import numpy as np
import pytest
import torch

import gru
import gru.kernels.recurrence as recurrence
from checks import reference_stack
from gru import kernels
from gru.ops import dispatch

U8 = 2.0**-8  # u, bfloat16's unit roundoff: 8 significant bits


def bf16_tolerance(I: int, H: int, num_layers: int, D: int, amplitude: float):
    """(rtol, atol) of a bfloat16 stack against the float64 oracle (module docstring)."""
    atol = 0.0
    for layer in range(num_layers):
        K = max(I if layer == 0 else D * H, H)
        atol += 2 * (2 * U8) * math.sqrt(K / H) * amplitude
    return U8, atol


@pytest.fixture
def gemm_path(monkeypatch):
    """Every size on the bf16 GEMM (not only the BLAS sizes), as on a CPU with bf16
    instructions (MKL computes bf16 GEMMs on any x86-64 CPU, only slower without them)."""
    gru.ops.start_engine()
    assert kernels.bf16.available(), "torch's MKL exports gemm_bf16bf16f32_"
    monkeypatch.setattr(recurrence, "BLAS_MIN_HIDDEN", 1)
    monkeypatch.setattr(dispatch, "bf16_hardware", lambda: True)


@pytest.fixture
def calls(monkeypatch):
    """Counts the calls that reach the bf16 GEMM layer."""
    count = {"bf16": 0}
    inner = kernels.bf16.forward

    def counted(*args, **kwargs):
        count["bf16"] += 1
        return inner(*args, **kwargs)

    monkeypatch.setattr(kernels.bf16, "forward", counted)
    return count


def make_problem(seed, *, I=10, H=20, T=12, B=5, num_layers=1, bidirectional=False,
                 reset_after=True, with_lengths=False):  # fmt: skip
    """A float32 gru.GRU, the same in bfloat16, x (T, B, I), h0 and lengths (or None)."""
    torch.manual_seed(seed)
    kwargs = {"num_layers": num_layers, "bidirectional": bidirectional, "reset_after": reset_after}
    module = gru.GRU(I, H, **kwargs)
    D = 2 if bidirectional else 1
    x = torch.randn(T, B, I)
    h0 = torch.randn(num_layers * D, B, H).clamp(-2, 2)
    lengths = None
    if with_lengths:
        lengths = torch.randint(1, T + 1, (B,))
        lengths[0] = T
    return module, x, h0, lengths


def as_bf16(module):
    """A bfloat16 copy of a module (``.to`` alone converts the module itself)."""
    return copy.deepcopy(module).to(torch.bfloat16)


def oracle(module, x, h0, lengths, *, rounded: bool):
    """The float64 oracle of a module's stack; ``rounded``: on bfloat16-rounded x, h0, weights
    (what a bfloat16 module holds)."""
    D = 2 if module.bidirectional else 1

    def f64(t):
        return (t.bfloat16() if rounded else t).detach().double().numpy()

    weights = [[f64(p) for p in module.all_weights[i]] for i in range(module.num_layers * D)]
    out, h_n, _ = reference_stack(
        f64(x), f64(h0), weights, num_layers=module.num_layers,
        bidirectional=module.bidirectional, reset_after=module.reset_after,
        lengths=None if lengths is None else lengths.numpy(),
    )  # fmt: skip
    return out, h_n


def assert_bf16_close(actual, expected, tolerance, what):
    rtol, atol = tolerance
    np.testing.assert_allclose(
        actual.double().numpy(), expected, rtol=rtol, atol=atol, err_msg=what
    )


# --- the rounding -----------------------------------------------------------------------------


def test_rounding_to_bf16_is_torchs_nearest_even():
    rng = np.random.default_rng(0)
    values = rng.normal(0, 10, 10_000).astype(np.float32)
    ties = (np.arange(1, 200, dtype=np.uint32) << 16 | 0x8000).view(np.float32)  # halfway
    special = np.array([0.0, -0.0, np.inf, -np.inf, 3.3895314e38, 1e-40], np.float32)
    a = np.concatenate([values, ties, -ties, special])
    expected = torch.from_numpy(a).bfloat16().view(torch.int16).numpy().view(np.uint16)
    np.testing.assert_array_equal(kernels.bf16.to_bf16(a), expected)
    np.testing.assert_array_equal(
        kernels.bf16.from_bf16(expected), torch.from_numpy(a).bfloat16().float().numpy()
    )
    assert np.isnan(kernels.bf16.from_bf16(kernels.bf16.to_bf16(np.array([np.nan], np.float32))))


def r16(a) -> np.ndarray:
    """a rounded to bfloat16, as float64."""
    bits = kernels.bf16.to_bf16(np.asarray(a, np.float32))
    return kernels.bf16.from_bf16(bits).astype(np.float64)


def emulated_bf16_layer(x, w_ih, w_hh, b_ih, b_hh, h0, reset_after):
    """The engine's bfloat16 scheme in float64: x, W and h_{t-1} (reset before: r ⊙ h_{t-1})
    rounded to bfloat16 before each product, everything else exact. (T, B, H)."""
    H = w_hh.shape[1]
    sigmoid = lambda a: 1.0 / (1.0 + np.exp(-a))
    gx = r16(x) @ r16(w_ih).T + b_ih  # (T, B, 3H)
    w = r16(w_hh)
    h = h0.astype(np.float64)
    out = []
    for t in range(x.shape[0]):
        gh = r16(h) @ w.T + b_hh  # (B, 3H)
        r = sigmoid(gx[t, :, :H] + gh[:, :H])
        z = sigmoid(gx[t, :, H : 2 * H] + gh[:, H : 2 * H])
        if reset_after:
            n = np.tanh(gx[t, :, 2 * H :] + r * gh[:, 2 * H :])
        else:
            n = np.tanh(gx[t, :, 2 * H :] + r16(r * h) @ w[2 * H :].T + b_hh[2 * H :])
        h = (1 - z) * n + z * h
        out.append(h)
    return np.stack(out)


@pytest.mark.parametrize("H", [20, 200])
@pytest.mark.parametrize("reset_after", [True, False])
def test_the_bf16_layer_rounds_where_it_says(H, reset_after):
    """Against the scheme emulated in float64 only float32's errors are left, and where a
    value computed in float32 lies next to a rounding boundary, its rounding one ulp off:
    2⁻⁸ · |a| · |w| ≤ 2⁻⁸/√H in one product for |a| ≤ 1 (seen: 1.1e-4 at H = 200). A product
    that skipped a rounding, or rounded by truncation, is off by about 2⁻⁸ in every value."""
    gru.ops.start_engine()
    rng = np.random.default_rng(H)
    T, B, I, k = 30, 6, 16, H**-0.5
    x = rng.normal(size=(T, B, I)).astype(np.float32)
    h0 = rng.normal(size=(B, H)).astype(np.float32)
    w_ih, w_hh = (rng.uniform(-k, k, (3 * H, n)).astype(np.float32) for n in (I, H))
    b_ih, b_hh = (rng.uniform(-k, k, 3 * H).astype(np.float32) for _ in range(2))
    bits = kernels.bf16.to_bf16
    out, h_n = kernels.bf16.forward(
        bits(x), bits(w_ih), bits(w_hh), b_ih, b_hh, h0, reset_after=reset_after
    )
    expected = emulated_bf16_layer(x, w_ih, w_hh, b_ih, b_hh, h0, reset_after)
    atol = U8 / math.sqrt(H)  # one rounding one ulp off (docstring)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=atol)
    np.testing.assert_allclose(h_n, expected[-1], rtol=1e-5, atol=atol)


# --- bfloat16 modules against the oracle ----------------------------------------------------------

STACKS = {
    "one layer": {},
    "reverse (bidirectional)": {"bidirectional": True},
    "two layers": {"num_layers": 2},
}


@pytest.mark.parametrize("stack", list(STACKS))
@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_bf16_module_equals_the_oracle(gemm_path, calls, stack, reset_after, with_lengths):
    module, x, h0, lengths = make_problem(
        1, reset_after=reset_after, with_lengths=with_lengths, **STACKS[stack]
    )
    module_bf16 = as_bf16(module)
    with torch.no_grad():
        out, h_n = module_bf16(x.bfloat16(), h0.bfloat16(), lengths=lengths)
    assert out.dtype == h_n.dtype == torch.bfloat16
    D = 2 if module.bidirectional else 1
    assert calls["bf16"] == module.num_layers * D
    r_out, r_h = oracle(module_bf16, x, h0, lengths, rounded=True)
    tol = bf16_tolerance(10, 20, module.num_layers, D, amplitude=4.0)
    assert_bf16_close(out, r_out, tol, "output")
    assert_bf16_close(h_n, r_h, tol, "h_n")
    if lengths is not None:  # padding outputs are exactly zero
        for b, L in enumerate(lengths.tolist()):
            assert not out[L:, b].any()


@pytest.mark.parametrize("reset_after", [True, False])
def test_small_layers_take_float32_products_and_match_too(monkeypatch, calls, reset_after):
    """Below the BLAS sizes bf16 values run on the float32 row kernels (exact inputs), even on
    a CPU with bf16 instructions (pretended here: without them it is so anyway, with a
    warning, tested below)."""
    monkeypatch.setattr(dispatch, "bf16_hardware", lambda: True)
    module, x, h0, _ = make_problem(2, reset_after=reset_after)
    module_bf16 = as_bf16(module)
    with torch.no_grad():
        out, _ = module_bf16(x.bfloat16(), h0.bfloat16())
    assert calls["bf16"] == 0
    r_out, _ = oracle(module_bf16, x, h0, None, rounded=True)
    # Products in float32: only the output's rounding to bfloat16 is left (u relative).
    assert_bf16_close(out, r_out, (U8, 1e-6), "output")


def test_a_blas_sized_layer_takes_the_bf16_gemm(monkeypatch, calls):
    """At the BLAS sizes (padded H >= 192) the bf16 GEMM serves by default (here as on a CPU
    with bf16 instructions, whatever this one has)."""
    gru.ops.start_engine()
    monkeypatch.setattr(dispatch, "bf16_hardware", lambda: True)
    assert dispatch.bf16_products()
    module, x, h0, _ = make_problem(3, I=24, H=200, T=6, B=3)
    module_bf16 = as_bf16(module)
    with torch.no_grad():
        out, _ = module_bf16(x.bfloat16(), h0.bfloat16())
    assert calls["bf16"] == 1
    r_out, _ = oracle(module_bf16, x, h0, None, rounded=True)
    assert_bf16_close(out, r_out, bf16_tolerance(24, 200, 1, 1, amplitude=4.0), "output")


@pytest.mark.parametrize("reset_after", [True, False])
def test_bf16_equals_composed_torch_operations_in_bf16(gemm_path, calls, reset_after):
    module, x, h0, lengths = make_problem(4, reset_after=reset_after, num_layers=2,
                                          bidirectional=True, with_lengths=True)  # fmt: skip
    module_bf16 = as_bf16(module)
    composed = gru.GRU(10, 20, num_layers=2, bidirectional=True, reset_after=reset_after,
                       backend="torch", dtype=torch.bfloat16)  # fmt: skip
    composed.load_state_dict(module_bf16.state_dict())
    with torch.no_grad():
        out, h_n = module_bf16(x.bfloat16(), h0.bfloat16(), lengths=lengths)
        c_out, c_h = composed(x.bfloat16(), h0.bfloat16(), lengths=lengths)
    assert calls["bf16"] == 4
    # The composed operations also round every gate and state to bfloat16: two allowances.
    rtol, atol = bf16_tolerance(10, 20, 2, 2, amplitude=4.0)
    assert_bf16_close(out, c_out.double().numpy(), (2 * rtol, 2 * atol), "output")
    assert_bf16_close(h_n, c_h.double().numpy(), (2 * rtol, 2 * atol), "h_n")


# --- autocast ---------------------------------------------------------------------------------


def test_autocast_runs_bf16_products_and_returns_float32_like_torch(gemm_path, calls):
    module, x, h0, _ = make_problem(5, num_layers=2)
    reference_module = torch.nn.GRU(10, 20, num_layers=2)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out, h_n = module(x, h0)
        torch_out, _ = reference_module(x, h0)
    assert out.dtype == h_n.dtype == torch_out.dtype == torch.float32
    assert calls["bf16"] == 2
    r_out, r_h = oracle(module, x, h0, None, rounded=False)
    # float32 weights and inputs are rounded here too: 2⁻⁸ more on every operand is within
    # the same allowance's 2⁻⁸ per product (both operands), so the tolerance is unchanged.
    tol = bf16_tolerance(10, 20, 2, 1, amplitude=4.0)
    assert_bf16_close(out, r_out, tol, "output")
    assert_bf16_close(h_n, r_h, tol, "h_n")
    assert np.abs(out.double().numpy() - r_out).max() > 0  # bf16 products, not float32


def test_autocast_with_gradients_runs_float32_and_trains():
    """With gradients autocast keeps the float32 engine (bf16 training is not built yet)."""
    module, x, h0, _ = make_problem(6)
    x.requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = module(x, h0)
    assert out.dtype == torch.float32
    out.sum().backward()
    r_out, _ = oracle(module, x.detach(), h0, None, rounded=False)
    np.testing.assert_allclose(out.detach().double().numpy(), r_out, rtol=1e-5, atol=1e-6)
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize(
    "variant", [{"layer_norm": True}, {"zoneout": 0.2}, {"recurrent_dropout": 0.3}]
)
@pytest.mark.parametrize("grad", [False, True])
def test_autocast_runs_the_variants_in_float32(monkeypatch, variant, grad):
    """A layer with variants under autocast computes what it computes in float32 (its input
    projection was a bfloat16 product inside the engine's autograd node, which NumPy refused).
    As on a CPU with bf16 instructions (without them, a plain layer in evaluation warns)."""
    monkeypatch.setattr(dispatch, "bf16_hardware", lambda: True)
    torch.manual_seed(9)
    module = gru.GRU(10, 20, **variant).train(grad)
    x = torch.randn(5, 3, 10)
    torch.manual_seed(1)  # the same zoneout / dropout masks in both runs
    with torch.set_grad_enabled(grad), torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = module(x)
        if grad:
            out.sum().backward()
    torch.manual_seed(1)
    with torch.set_grad_enabled(grad):
        expected, _ = module(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-7)  # the same float32 kernels
    if grad:
        assert all(torch.isfinite(p.grad).all() for p in module.parameters())


def test_bf16_with_gradients_keeps_composed_operations(gemm_path, calls):
    module, x, h0, _ = make_problem(7)
    module_bf16 = as_bf16(module)
    out, _ = module_bf16(x.bfloat16(), h0.bfloat16())
    out.float().sum().backward()
    assert calls["bf16"] == 0
    assert module_bf16.weight_hh_l0.grad.dtype == torch.bfloat16


# --- without bf16 hardware ------------------------------------------------------------------------


def test_without_bf16_hardware_the_call_works_and_says_so_once(monkeypatch, calls):
    gru.ops.start_engine()
    monkeypatch.setattr(recurrence, "BLAS_MIN_HIDDEN", 1)  # would take the bf16 GEMM
    monkeypatch.setattr(dispatch, "bf16_hardware", lambda: False)
    monkeypatch.setattr(dispatch, "_said_no_bf16", [])
    module, x, h0, _ = make_problem(8)
    module_bf16 = as_bf16(module)
    with torch.no_grad():
        with pytest.warns(RuntimeWarning, match="no bfloat16 matrix units.*float32 products"):
            out, _ = module_bf16(x.bfloat16(), h0.bfloat16())
        with torch.autocast("cpu", dtype=torch.bfloat16):
            module(x, h0)  # no second warning (warnings are errors in this suite)
    assert calls["bf16"] == 0
    assert out.dtype == torch.bfloat16
    r_out, _ = oracle(module_bf16, x, h0, None, rounded=True)
    assert_bf16_close(out, r_out, (U8, 1e-6), "output")  # float32 products: exact inputs


def test_the_hardware_check_reads_the_cpu_flags():
    dispatch.bf16_hardware.cache_clear()
    try:
        with open("/proc/cpuinfo") as f:
            lines = [line for line in f if line.startswith("flags")]
    except OSError:  # not Linux: torch's capability decides
        capability = torch.backends.cpu.get_cpu_capability().upper()
        assert dispatch.bf16_hardware() == ("AMX" in capability)
        return
    flags = set(lines[0].split(":", 1)[1].split())
    assert dispatch.bf16_hardware() == ("amx_bf16" in flags)  # avx512_bf16 alone: not faster
