"""The oracle itself: against torch.nn.GRU, finite differences, a case worked on paper, and the
seeds' notation."""

import math

import numpy as np
import pytest
import torch

from checks import assert_close, reverse_padded
from gru import reference as R


def random_weights(rng, I, H, scale=0.5):
    return (
        rng.normal(0, scale, (3 * H, I)),
        rng.normal(0, scale, (3 * H, H)),
        rng.normal(0, scale, 3 * H),
        rng.normal(0, scale, 3 * H),
    )


@pytest.mark.parametrize(
    ("T", "B", "I", "H"), [(1, 1, 1, 1), (5, 3, 4, 6), (17, 2, 9, 3), (40, 4, 3, 8)]
)
@pytest.mark.parametrize("with_h0", [True, False])
def test_forward_and_backward_match_torch(T, B, I, H, with_h0):
    torch.manual_seed(T * 100 + H)
    module = torch.nn.GRU(I, H).double()
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(1, B, H, dtype=torch.float64) if with_h0 else torch.zeros(1, B, H).double()
    h0.requires_grad_(True)
    output, h_n = module(x, h0)
    d_output, d_h_n = torch.randn_like(output), torch.randn_like(h_n)
    ((output * d_output).sum() + (h_n * d_h_n).sum()).backward()

    weights = [p.detach().numpy() for p in module.parameters()]
    ref_output, ref_h_n, cache = R.gru_forward(x.detach().numpy(), h0[0].detach().numpy(), *weights)
    assert_close(ref_output, output, torch.float64, what="output")
    assert_close(ref_h_n, h_n[0], torch.float64, what="h_n")

    g = R.gru_backward(d_output.numpy(), d_h_n[0].numpy(), cache)
    assert_close(g.x, x.grad, torch.float64, what="dx")
    assert_close(g.h0, h0.grad[0], torch.float64, what="dh0")
    for mine, (name, p) in zip(
        (g.w_ih, g.w_hh, g.b_ih, g.b_hh), module.named_parameters(), strict=True
    ):
        assert_close(mine, p.grad, torch.float64, what=name)


def test_lengths_match_torch_packed():
    """Per-sequence lengths in the oracle equal torch.nn.GRU on a PackedSequence."""
    torch.manual_seed(3)
    T, B, I, H = 9, 4, 3, 5
    lengths = torch.tensor([9, 2, 6, 1])
    module = torch.nn.GRU(I, H).double()
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(1, B, H, dtype=torch.float64, requires_grad=True)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
    out_packed, h_n = module(packed, h0)
    output, _ = torch.nn.utils.rnn.pad_packed_sequence(out_packed, total_length=T)
    d_output, d_h_n = torch.randn_like(output), torch.randn_like(h_n)
    ((output * d_output).sum() + (h_n * d_h_n).sum()).backward()

    weights = [p.detach().numpy() for p in module.parameters()]
    ref_output, ref_h_n, cache = R.gru_forward(
        x.detach().numpy(), h0[0].detach().numpy(), *weights, lengths=lengths.numpy()
    )
    assert_close(ref_output, output, torch.float64, what="output")
    assert_close(ref_h_n, h_n[0], torch.float64, what="h_n")
    g = R.gru_backward(d_output.numpy(), d_h_n[0].numpy(), cache)
    assert_close(g.x, x.grad, torch.float64, what="dx")
    assert_close(g.h0, h0.grad[0], torch.float64, what="dh0")
    for mine, p in zip((g.w_ih, g.w_hh, g.b_ih, g.b_hh), module.parameters(), strict=True):
        assert_close(mine, p.grad, torch.float64)


def numerical_gradient(f, a, eps=1e-6):
    """Central differences of the scalar f() with respect to every element of array a."""
    grad = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        old = a[i]
        a[i] = old + eps
        up = f()
        a[i] = old - eps
        down = f()
        a[i] = old
        grad[i] = (up - down) / (2 * eps)
    return grad


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("lengths", [None, [4, 1, 3]])
@pytest.mark.parametrize("bias", [True, False])
def test_backward_matches_finite_differences(reset_after, lengths, bias):
    """The hand-derived BPTT, checked without torch: the only check of reset-before's backward
    that does not go through our own layer."""
    rng = np.random.default_rng(7)
    T, B, I, H = 4, 3, 2, 3
    x = rng.normal(size=(T, B, I))
    h0 = rng.normal(size=(B, H))
    w_ih, w_hh, b_ih, b_hh = random_weights(rng, I, H, scale=0.8)
    if not bias:
        b_ih = b_hh = None
    d_output = rng.normal(size=(T, B, H))
    d_h_n = rng.normal(size=(B, H))

    def loss():
        output, h_n, _ = R.gru_forward(
            x, h0, w_ih, w_hh, b_ih, b_hh, reset_after=reset_after, lengths=lengths
        )
        return float((output * d_output).sum() + (h_n * d_h_n).sum())

    _, _, cache = R.gru_forward(
        x, h0, w_ih, w_hh, b_ih, b_hh, reset_after=reset_after, lengths=lengths
    )
    g = R.gru_backward(d_output, d_h_n, cache)
    checks = {"x": (g.x, x), "h0": (g.h0, h0), "w_ih": (g.w_ih, w_ih), "w_hh": (g.w_hh, w_hh)}
    if bias:
        checks |= {"b_ih": (g.b_ih, b_ih), "b_hh": (g.b_hh, b_hh)}
    else:
        assert g.b_ih is None and g.b_hh is None
    for name, (analytic, array) in checks.items():
        # Central differences with eps=1e-6 are accurate to about 1e-9 here, not to float64's
        # 1e-15, so this comparison uses the float32 tolerance.
        np.testing.assert_allclose(
            analytic, numerical_gradient(loss, array), rtol=1e-5, atol=1e-7, err_msg=name
        )


def test_a_case_worked_on_paper():
    """One step, I = H = 1, B = 1, with x = 1 and h_0 = 0.5 and every weight zero except
    W_in = 1, W_hn = 2, b_hn = 1. Then both gates see 0 and r = z = σ(0) = 1/2.

    reset after:  n = tanh(W_in x + r (W_hn h_0 + b_hn)) = tanh(1 + ½ (2·½ + 1)) = tanh(2)
    reset before: n = tanh(W_in x + W_hn (r h_0) + b_hn) = tanh(1 + 2·(½·½) + 1) = tanh(2.5)
    h_1 = (1 − z) n + z h_0 = ½ n + ¼:
        after:  ½ · 0.9640275800758169 + ¼ = 0.7320137900379084
        before: ½ · 0.9866142981514303 + ¼ = 0.7433071490757152
    ∂h_1/∂x: the gates do not depend on x (W_ir = W_iz = 0), so ∂h_1/∂x = (1 − z)(1 − n²) W_in:
        after:  ½ (1 − tanh²2) = ½ · 0.0706508248531644 = 0.0353254124265822
    """
    x = np.array([[[1.0]]])
    h0 = np.array([[0.5]])
    w_ih = np.array([[0.0], [0.0], [1.0]])  # W_ir, W_iz, W_in
    w_hh = np.array([[0.0], [0.0], [2.0]])  # W_hr, W_hz, W_hn
    b_ih = np.zeros(3)
    b_hh = np.array([0.0, 0.0, 1.0])  # b_hr, b_hz, b_hn

    out, _, cache = R.gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh, reset_after=True)
    assert out[0, 0, 0] == pytest.approx(0.5 * math.tanh(2.0) + 0.25, rel=1e-15)
    assert out[0, 0, 0] == pytest.approx(0.7320137900379084, rel=1e-14)
    g = R.gru_backward(np.ones((1, 1, 1)), None, cache)
    assert g.x[0, 0, 0] == pytest.approx(0.0353254124265822, rel=1e-12)

    out, _, _ = R.gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh, reset_after=False)
    assert out[0, 0, 0] == pytest.approx(0.7433071490757152, rel=1e-14)

    # The layer computes the same numbers.
    import gru

    for reset_after, expected in [(True, 0.7320137900379084), (False, 0.7433071490757152)]:
        layer = gru.GRU(1, 1, reset_after=reset_after).double()
        with torch.no_grad():
            for p, v in zip(layer.parameters(), (w_ih, w_hh, b_ih, b_hh), strict=True):
                p.copy_(torch.from_numpy(v))
        xt = torch.ones(1, 1, 1, dtype=torch.float64, requires_grad=True)
        y, _ = layer(xt, torch.full((1, 1, 1), 0.5, dtype=torch.float64))
        assert y.item() == pytest.approx(expected, rel=1e-14)
        if reset_after:
            y.sum().backward()
            assert xt.grad.item() == pytest.approx(0.0353254124265822, rel=1e-12)


def test_sigmoid_is_exact_and_does_not_overflow():
    a = np.array([-1000.0, -30.0, -1.0, 0.0, 1.0, 30.0, 1000.0])
    with np.errstate(over="raise", invalid="raise"):  # underflow to 0 is exact enough
        s = R.sigmoid(a)
    exact = [math.exp(v) / (1 + math.exp(v)) if v < 0 else 1 / (1 + math.exp(-v)) for v in a]
    np.testing.assert_allclose(s, exact, rtol=1e-15, atol=0)
    assert s[3] == 0.5


@pytest.mark.parametrize("bias", [True, False])
def test_seeds_notation_equals_packed_layout(bias):
    """The seeds' step on [h, x] with h = (1 − z) h + z h~ is the packed reset-before GRU once
    the update gate is negated, in both directions of the conversion."""
    rng = np.random.default_rng(1)
    T, B, I, H = 12, 3, 4, 5
    w_z, w_r, w_h = (rng.normal(0, 0.6, (H, H + I)) for _ in range(3))
    b_z, b_r, b_h = (rng.normal(0, 0.6, H) if bias else None for _ in range(3))
    x = rng.normal(size=(T, B, I))
    h0 = rng.normal(size=(B, H))

    seeds_out, seeds_h = R.seeds_forward(x, h0, w_z, w_r, w_h, b_z, b_r, b_h)
    packed = R.seeds_to_packed(w_z, w_r, w_h, b_z, b_r, b_h)
    out, h_n, _ = R.gru_forward(x, h0, *packed, reset_after=False)
    assert_close(out, seeds_out, np.float64)
    assert_close(h_n, seeds_h, np.float64)

    # Without the negation the update gate is the other way round: the outputs differ.
    w_ih, w_hh, b_ih, b_hh = packed
    flipped = (w_ih.copy(), w_hh.copy())
    flipped[0][H : 2 * H] *= -1
    flipped[1][H : 2 * H] *= -1
    wrong, _, _ = R.gru_forward(x, h0, *flipped, b_ih, b_hh, reset_after=False)
    assert np.abs(wrong - seeds_out).max() > 0.1

    back = R.packed_to_seeds(*packed)
    for a, b in zip(back, (w_z, w_r, w_h, b_z, b_r, b_h), strict=True):
        assert_close(a, np.zeros(H) if b is None else b, np.float64)


def test_packed_to_seeds_sums_split_biases():
    rng = np.random.default_rng(2)
    T, B, I, H = 6, 2, 3, 4
    w_ih, w_hh, b_ih, b_hh = random_weights(rng, I, H)
    x, h0 = rng.normal(size=(T, B, I)), rng.normal(size=(B, H))
    out, _, _ = R.gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh, reset_after=False)
    seeds_out, _ = R.seeds_forward(x, h0, *R.packed_to_seeds(w_ih, w_hh, b_ih, b_hh))
    assert_close(seeds_out, out, np.float64)


def test_reverse_padded_helper():
    a = np.arange(8.0).reshape(4, 2, 1)
    r = reverse_padded(a, [4, 2])
    assert r[:, 0, 0].tolist() == [6.0, 4.0, 2.0, 0.0]
    assert r[:, 1, 0].tolist() == [3.0, 1.0, 5.0, 7.0]
