"""gru.MinGRU against the minGRU oracle (gru.reference.min_gru_forward), its scan against its
sequential path, its stream against the layer, and its errors."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence

import gru
from checks import assert_close
from gru import reference
from gru.ops import scan


def weights_of(module: gru.MinGRU, layer: int) -> list:
    """(w_z, b_z, w_h, b_h) of one layer as float64 arrays, None for missing biases."""
    return [None if p is None else p.detach().double().numpy() for p in module.layer_weights(layer)]


def oracle_stack(module: gru.MinGRU, x, h0):
    """The oracle run layer after layer (no dropout): (output (T, B, H), h_n (L, B, H))."""
    layer_input = np.asarray(x, np.float64)
    h_n = []
    for layer in range(module.num_layers):
        layer_input, h = reference.min_gru_forward(
            layer_input, h0[layer], *weights_of(module, layer)
        )
        h_n.append(h)
    return layer_input, np.stack(h_n)


def composed(x, h0, weights):
    """The oracle's equations as float64 torch operations, one step at a time, so that autograd
    gives the gradients the layer must have; weights[l] = (w_z, b_z, w_h, b_h), biases or None."""
    layer_input, h_n = x, []
    for (w_z, b_z, w_h, b_h), h in zip(weights, h0, strict=True):
        outputs = []
        for t in range(x.shape[0]):
            z = torch.sigmoid(F.linear(layer_input[t], w_z, b_z))
            a = F.linear(layer_input[t], w_h, b_h)
            h_tilde = torch.where(a >= 0, a + 0.5, torch.sigmoid(a))
            h = (1 - z) * h + z * h_tilde
            outputs.append(h)
        layer_input = torch.stack(outputs)
        h_n.append(h)
    return layer_input, torch.stack(h_n)


def random_grads(outputs, inputs, seed=0):
    """Gradients of Σ (fixed random weights ⊙ output) over every output, for each input."""
    g = torch.Generator().manual_seed(seed)
    # Drawn in float64 whatever the dtype, so that float32 and float64 runs get the same weights.
    weights = [torch.randn(o.shape, generator=g, dtype=torch.float64).to(o.dtype) for o in outputs]
    loss = sum((o * w).sum() for o, w in zip(outputs, weights, strict=True))
    return torch.autograd.grad(loss, inputs)


# T = 300 crosses the scan's chunk boundaries (32 steps), so the state carried between chunks
# is part of every comparison.
GRID = list(
    itertools.product(
        [1, 7, 300], [1, 2, 3], [False, True], [False, True], [torch.float32, torch.float64]
    )
)


@pytest.mark.parametrize(("T", "num_layers", "batch_first", "with_hx", "dtype"), GRID)
def test_layer_matches_oracle(T, num_layers, batch_first, with_hx, dtype):
    torch.manual_seed(T + num_layers)
    B, I, H = 3, 5, 6
    layer = gru.MinGRU(I, H, num_layers, batch_first=batch_first, dtype=dtype)
    x = torch.randn(T, B, I, dtype=dtype)
    h0 = torch.randn(num_layers, B, H, dtype=dtype)  # negative values included: any sign works
    out, h_n = layer(x.transpose(0, 1) if batch_first else x, h0 if with_hx else None)
    if batch_first:
        out = out.transpose(0, 1)
    expected_out, expected_h = oracle_stack(
        layer, x.numpy(), h0.numpy() if with_hx else np.zeros((num_layers, B, H))
    )
    assert_close(out, expected_out, what="output")
    assert_close(h_n, expected_h, what="h_n")


@pytest.mark.parametrize("bias", [True, False])
def test_no_bias_and_unbatched_match_oracle(bias):
    torch.manual_seed(1)
    layer = gru.MinGRU(4, 3, 2, bias=bias, dtype=torch.float64)
    assert len(list(layer.parameters())) == (8 if bias else 4)
    x = torch.randn(9, 4, dtype=torch.float64)
    hx = torch.randn(2, 3, dtype=torch.float64)
    out, h_n = layer(x, hx)  # unbatched: (T, I) and (L, H)
    expected_out, expected_h = oracle_stack(layer, x.numpy()[:, None], hx.numpy()[:, None])
    assert out.shape == (9, 3) and h_n.shape == (2, 3)
    assert_close(out, expected_out[:, 0], what="output")
    assert_close(h_n, expected_h[:, 0], what="h_n")


@pytest.mark.parametrize("hx_kind", ["none", "zeros", "random"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bias", [True, False])
def test_gradients_match_the_oracle_equations(hx_kind, dtype, bias, monkeypatch):
    # Chunks of 4 steps over T = 11: the gradient flows through the states carried between
    # three chunks.
    monkeypatch.setattr(scan, "SCAN_CHUNK", 4)
    torch.manual_seed(2)
    T, B, I, H, L = 11, 3, 4, 5, 2
    layer = gru.MinGRU(I, H, L, bias=bias, dtype=dtype)
    x = torch.randn(T, B, I, dtype=dtype, requires_grad=True)
    hx = {
        "none": None,
        "zeros": torch.zeros(L, B, H, dtype=dtype, requires_grad=True),  # no log 0 anywhere
        "random": torch.randn(L, B, H, dtype=dtype, requires_grad=True),
    }[hx_kind]
    params = dict(layer.named_parameters())
    inputs = [x] + ([hx] if hx is not None else [])
    actual = random_grads(layer(x, hx), [*inputs, *params.values()])

    x64 = x.detach().double().requires_grad_()
    hx64 = torch.zeros(L, B, H, dtype=torch.float64) if hx is None else hx.detach().double()
    hx64.requires_grad_(hx is not None)
    weights = [
        [
            None if p is None else p.detach().double().requires_grad_()
            for p in layer.layer_weights(k)
        ]
        for k in range(L)
    ]
    flat = [p for w in weights for p in w if p is not None]
    outputs = composed(x64, hx64, weights)
    # The composition is the oracle's forward, so its autograd gradients are the oracle's.
    expected_out, expected_h = oracle_stack(layer, x.detach().numpy(), hx64.detach().numpy())
    assert_close(outputs[0], expected_out, what="composition output")
    assert_close(outputs[1], expected_h, what="composition h_n")
    expected = random_grads(outputs, [x64] + ([hx64] if hx is not None else []) + flat)
    names = ["input"] + (["hx"] if hx is not None else []) + list(params)
    assert len(actual) == len(expected) == len(names)
    for a, e, name in zip(actual, expected, names, strict=True):
        assert torch.isfinite(a).all(), name
        assert_close(a, e, dtype=dtype, what=name)


def test_gradcheck(monkeypatch):
    monkeypatch.setattr(scan, "SCAN_CHUNK", 3)  # T = 7: three chunks
    torch.manual_seed(3)
    layer = gru.MinGRU(3, 2, 2, dtype=torch.float64)
    names = [n for n, _ in layer.named_parameters()]
    x = torch.randn(7, 2, 3, dtype=torch.float64, requires_grad=True)
    hx = torch.randn(2, 2, 2, dtype=torch.float64, requires_grad=True)
    params = [p.detach().clone().requires_grad_(True) for p in layer.parameters()]

    def f(x, hx, *params):
        return torch.func.functional_call(layer, dict(zip(names, params, strict=True)), (x, hx))

    assert torch.autograd.gradcheck(f, (x, hx, *params))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_scan_equals_sequential_over_long_sequences(dtype):
    torch.manual_seed(4)
    T, B, H = 4096, 2, 8
    k = (2 * torch.randn(T, B, H, dtype=torch.float64)).to(dtype).requires_grad_()
    a = (2 * torch.randn(T, B, H, dtype=torch.float64)).to(dtype).requires_grad_()
    h0 = torch.randn(B, H, dtype=dtype, requires_grad=True)
    scanned = scan.min_gru_scan(k, a, h0)
    # The sequential path in float64 is the reference for both dtypes.
    k64, a64, h064 = (t.detach().double().requires_grad_() for t in (k, a, h0))
    sequential = scan.min_gru_sequential(k64, a64, h064)
    # float32: the log-space sum A_t + log Σ(…) loses ε·|A_t| of relative precision, |A_t| up
    # to ~40 within a chunk of 32 steps (log(1 − z_t) ≈ −1.2 on average here), so 10× the
    # usual float32 tolerance; the gradient of k inherits it through h̃_t − h_{t-1} (measured:
    # 2.2× the usual tolerance at worst, a and h0 within it).
    scale = 10.0 if dtype == torch.float32 else 1.0
    assert_close(scanned, sequential, dtype=dtype, scale=scale, what="h over 4096 steps")
    d_scan = random_grads([scanned], [k, a, h0])
    d_sequential = random_grads([sequential], [k64, a64, h064])
    for actual, expected, name in zip(d_scan, d_sequential, ("k", "a", "h0"), strict=True):
        assert_close(actual, expected, dtype=dtype, scale=scale, what=f"gradient of {name}")


def test_scan_keeps_float32_precision_that_one_unchunked_scan_loses(monkeypatch):
    """Why the scan is chunked: over 4096 steps, one float32 scan drifts from the float64 loop
    well past the tolerance the chunked one meets (the test above)."""
    torch.manual_seed(4)
    T, B, H = 4096, 2, 8
    k, a = (
        2 * torch.randn(T, B, H, dtype=torch.float64),
        2 * torch.randn(T, B, H, dtype=torch.float64),
    )
    h0 = torch.randn(B, H, dtype=torch.float64)
    expected = scan.min_gru_sequential(k, a, h0)
    chunked = scan.min_gru_scan(k.float(), a.float(), h0.float())
    monkeypatch.setattr(scan, "SCAN_CHUNK", T)
    whole = scan.min_gru_scan(k.float(), a.float(), h0.float())
    error = lambda h: ((h.double() - expected).abs() / expected.abs()).max().item()
    assert error(chunked) < 1e-4 < error(whole)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("kind", ["torch", "numpy"])
@pytest.mark.parametrize("path", ["numpy", "torch"])
def test_stream_equals_layer(dtype, batch_size, kind, path):
    torch.manual_seed(5)
    T, I, H, L = 20, 4, 6, 2
    layer = gru.MinGRU(I, H, L, dtype=dtype)
    x = torch.randn(T, batch_size, I, dtype=dtype)
    hx = torch.randn(L, batch_size, H, dtype=dtype)
    with torch.no_grad():
        expected, expected_h = layer(x, hx)
    stream = layer.stream(batch_size)
    assert stream._stepper.numpy  # float32/float64 on the CPU run in NumPy ...
    stream._stepper.numpy = path == "numpy"  # ... and the torch path is what other devices run
    stream.state = hx
    outputs = []
    for t in range(T):
        x_t = x[t] if batch_size > 1 else x[t, 0]  # (B, I), or (I,) at batch 1
        h_t = stream(x_t.numpy() if kind == "numpy" else x_t)
        assert isinstance(h_t, np.ndarray if kind == "numpy" else torch.Tensor)
        assert tuple(h_t.shape) == ((batch_size, H) if batch_size > 1 else (H,))
        outputs.append(np.array(h_t) if kind == "numpy" else h_t.clone())
    actual = np.stack(outputs) if kind == "numpy" else torch.stack(outputs)
    if batch_size == 1:
        actual = actual[:, None]
    assert_close(actual, expected, dtype=dtype, what="stream outputs")
    assert_close(stream.state, expected_h, what="stream state")

    stream.reset()
    assert not stream.state.any()
    fresh = layer.stream(batch_size)
    x0 = x[0] if batch_size > 1 else x[0, 0]
    assert_close(stream(x0), fresh(x0), what="after reset")


def test_stream_copies_the_weights_and_needs_no_autograd():
    torch.manual_seed(6)
    layer = gru.MinGRU(3, 4)
    stream = layer.stream()
    x = torch.randn(3)
    before = stream(x).clone()
    with torch.no_grad():
        layer.weight_z_l0.add_(1.0)
    stream.reset()
    assert torch.equal(stream(x), before)
    assert not stream(x).requires_grad


def test_dropout_between_layers_in_training_only():
    torch.manual_seed(7)
    layer = gru.MinGRU(3, 4, 3, dropout=0.5, dtype=torch.float64)
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    torch.manual_seed(8)
    out, h_n = layer(x)
    # The same computation layer by layer, drawing the same masks in the same order.
    singles = []
    for k in range(3):
        single = gru.MinGRU(3 if k == 0 else 4, 4, dtype=torch.float64)
        single.load_state_dict(
            {
                n.replace(f"_l{k}", "_l0"): p
                for n, p in layer.named_parameters()
                if n.endswith(f"_l{k}")
            }
        )
        singles.append(single)
    torch.manual_seed(8)
    layer_input, states = x, []
    for k, single in enumerate(singles):
        layer_input, h = single(layer_input)
        states.append(h[0])
        if k < 2:
            layer_input = F.dropout(layer_input, 0.5, training=True)
    assert_close(out, layer_input, what="output with dropout")
    assert_close(h_n, torch.stack(states), what="h_n with dropout")

    layer.eval()
    expected, _ = oracle_stack(layer, x.numpy(), np.zeros((3, 2, 4)))
    assert_close(layer(x)[0], expected, what="eval: no dropout")


def test_parameters_names_shapes_and_initialization():
    torch.manual_seed(9)
    I, H = 50, 200
    layer = gru.MinGRU(I, H, 2)
    shapes = {n: tuple(p.shape) for n, p in layer.named_parameters()}
    assert shapes == {
        "weight_z_l0": (H, I),
        "bias_z_l0": (H,),
        "weight_h_l0": (H, I),
        "bias_h_l0": (H,),
        "weight_z_l1": (H, H),
        "bias_z_l1": (H,),
        "weight_h_l1": (H, H),
        "bias_h_l1": (H,),
    }
    for name, p in layer.named_parameters():
        bound = 1 / np.sqrt(I if name.endswith("_l0") else H)
        assert p.abs().max() <= bound, name
        assert p.abs().max() > 0.9 * bound, name  # uniform over the whole interval
    assert repr(gru.MinGRU(3, 4, 2, bias=False, batch_first=True, dropout=0.1)) == (
        "MinGRU(3, 4, num_layers=2, bias=False, batch_first=True, dropout=0.1)"
    )


def test_bad_construction_by_message():
    with pytest.raises(ValueError, match=r"MinGRU: input_size must be at least 1, got 0"):
        gru.MinGRU(0, 4)
    with pytest.raises(TypeError, match=r"MinGRU: num_layers must be an int, got str '2'"):
        gru.MinGRU(3, 4, "2")
    with pytest.raises(
        ValueError, match=r"MinGRU: dropout must be a probability in \[0, 1\], got 1.5"
    ):
        gru.MinGRU(3, 4, 2, dropout=1.5)
    with pytest.raises(TypeError, match=r"MinGRU: dropout must be a float, got bool"):
        gru.MinGRU(3, 4, 2, dropout=True)
    with pytest.warns(UserWarning, match=r"MinGRU: dropout applies between layers only"):
        gru.MinGRU(3, 4, dropout=0.2)


def test_bad_input_by_message():
    layer = gru.MinGRU(3, 4, 2)
    x = torch.randn(5, 2, 3)
    with pytest.raises(
        TypeError,
        match=r"MinGRU.forward: input must be a floating-point tensor, got dtype torch.int64",
    ):
        layer(torch.ones(5, 2, 3, dtype=torch.int64))
    with pytest.raises(
        TypeError,
        match=r"MinGRU.forward: input has dtype torch.float64 but the weights are torch.float32",
    ):
        layer(x.double())
    with pytest.raises(
        ValueError,
        match=r"MinGRU.forward: input.shape\[-1\] must equal input_size=3, got 5 \(shape \(2, 3, 5\)\); the features must be the last dimension \(T, B, I\)",
    ):
        layer(torch.randn(2, 3, 5))
    with pytest.raises(
        ValueError,
        match=r"MinGRU.forward: input must be 3-D \(T, B, I\) \(batch_first=False\) or 2-D \(T, I\) unbatched, got 4-D",
    ):
        layer(torch.randn(1, 5, 2, 3))
    with pytest.raises(
        ValueError, match=r"MinGRU.forward: input has no time steps \(shape \(0, 2, 3\)\)"
    ):
        layer(torch.randn(0, 2, 3))
    with pytest.raises(
        ValueError,
        match=r"MinGRU.forward: hx must have shape \(num_layers, batch, hidden_size\) = \(2, 2, 4\), got \(1, 2, 4\)",
    ):
        layer(x, torch.zeros(1, 2, 4))
    with pytest.raises(
        ValueError,
        match=r"hx must have shape \(num_layers, hidden_size\) for unbatched input = \(2, 4\), got \(2, 1, 4\)",
    ):
        layer(x[:, 0], torch.zeros(2, 1, 4))
    with pytest.raises(TypeError, match=r"MinGRU.forward: hx must be a torch.Tensor, got ndarray"):
        layer(x, np.zeros((2, 2, 4)))
    with pytest.raises(TypeError, match=r"MinGRU.forward: input must be a torch.Tensor, got list"):
        layer([[1.0, 2.0, 3.0]])
    packed = pack_padded_sequence(x, [5, 3])
    with pytest.raises(
        TypeError,
        match=r"MinGRU.forward: PackedSequence input is not supported; pass the padded tensor",
    ):
        layer(packed)


def test_bad_stream_input_by_message():
    layer = gru.MinGRU(3, 4)
    with pytest.raises(ValueError, match=r"MinGRU.stream: batch_size must be at least 1, got 0"):
        layer.stream(0)
    stream = layer.stream(2)
    with pytest.raises(ValueError, match=r"MinGRUStream: x_t must have shape \(2, 3\), got \(3,\)"):
        stream(torch.zeros(3))
    with pytest.raises(TypeError, match=r"MinGRUStream: x_t must have dtype float32, got float64"):
        stream(np.zeros((2, 3)))
    with pytest.raises(
        TypeError, match=r"MinGRUStream: x_t must have dtype torch.float32, got torch.float64"
    ):
        stream(torch.zeros(2, 3, dtype=torch.float64))
    with pytest.raises(
        TypeError, match=r"MinGRUStream: x_t must be a torch.Tensor or a NumPy array, got list"
    ):
        stream([[0.0] * 3] * 2)
    with pytest.raises(
        ValueError, match=r"MinGRUStream.state must have shape \(1, 2, 4\), got \(2, 4\)"
    ):
        stream.state = torch.zeros(2, 4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("T", [1, 31, 32, 33, 4096])
def test_the_scan_written_to_onnx_equals_sequential(T, dtype, monkeypatch):
    """What torch.onnx.export writes (a linear-space doubling scan, padded to chunks) equals
    the float64 loop at every length around the chunk size and over a long sequence, at the
    usual tolerance of each dtype, with and without h0."""
    monkeypatch.setattr(scan, "exporting_to_onnx", lambda: True)
    torch.manual_seed(T)
    k, a = 2 * torch.randn(T, 2, 8, dtype=torch.float64), 2 * torch.randn(T, 2, 8, dtype=torch.float64)  # fmt: skip
    h0 = torch.randn(2, 8, dtype=torch.float64)
    for start in (h0, None):
        expected = scan.min_gru_sequential(k, a, start)
        got = scan.min_gru_scan(k.to(dtype), a.to(dtype), None if start is None else start.to(dtype))  # fmt: skip
        assert_close(got, expected.to(dtype), dtype=dtype, what=f"T={T}, h0={start is not None}")
