"""gru.ops, the layer's single math boundary: both backends against the oracle and each other,
the custom operators' registrations, torch.compile and torch.export."""

import numpy as np
import pytest
import torch

import gru
from checks import assert_close, reverse_padded
from gru import ops
from gru import reference as R


def problem(seed, T=6, B=3, I=4, H=5, bias=True, dtype=torch.float64):
    rng = np.random.default_rng(seed)
    shapes = [(T, B, I), (B, H), (3 * H, I), (3 * H, H), (3 * H,), (3 * H,)]
    arrays = [rng.normal(size=s) for s in shapes]
    if not bias:
        arrays[4] = arrays[5] = None
    tensors = [
        None if a is None else torch.tensor(a, dtype=dtype, requires_grad=True) for a in arrays
    ]
    return arrays, tensors


@pytest.mark.parametrize("backend", ["fused", "torch"])
@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, [6, 6, 6], [3, 6, 1]])
@pytest.mark.parametrize("bias", [True, False])
def test_sequence_matches_reference(backend, reset_after, reverse, lengths, bias):
    arrays, tensors = problem(0, bias=bias)
    x, h0, w_ih, w_hh, b_ih, b_hh = tensors
    lengths_t = None if lengths is None else torch.tensor(lengths)
    output, h_n = ops.gru_sequence(
        x,
        h0,
        w_ih,
        w_hh,
        b_ih,
        b_hh,
        reset_after=reset_after,
        reverse=reverse,
        lengths=lengths_t,
        backend=backend,
    )

    x_np = reverse_padded(arrays[0], lengths) if reverse else arrays[0]
    ref_out, ref_h, cache = R.gru_forward(
        x_np, *arrays[1:], reset_after=reset_after, lengths=lengths
    )
    if reverse:
        ref_out = reverse_padded(ref_out, lengths)
    assert_close(output, ref_out, what="output")
    assert_close(h_n, ref_h, what="h_n")
    if lengths is not None:  # padding stays zero
        for b, L in enumerate(lengths):
            assert torch.all(output[L:, b] == 0)

    rng = np.random.default_rng(1)
    d_out, d_h = rng.normal(size=output.shape), rng.normal(size=h_n.shape)
    present = [t for t in tensors if t is not None]
    grads = torch.autograd.grad(
        (output * torch.tensor(d_out)).sum() + (h_n * torch.tensor(d_h)).sum(), present
    )
    if lengths is not None:
        for b, L in enumerate(lengths):
            d_out[L:, b] = 0.0  # outputs in the padding are constants
    g = R.gru_backward(reverse_padded(d_out, lengths) if reverse else d_out, d_h, cache)
    expected = [reverse_padded(g.x, lengths) if reverse else g.x, g.h0, g.w_ih, g.w_hh]
    expected += [g.b_ih, g.b_hh] if bias else []
    for name, a, e in zip(
        ["x", "h0", "w_ih", "w_hh", "b_ih", "b_hh"], grads, expected, strict=False
    ):
        assert_close(a, e, what=name)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reset_after", [True, False])
def test_fused_and_composed_backends_agree(dtype, reset_after):
    torch.manual_seed(0)
    fused = gru.GRU(
        5, 9, 2, bidirectional=True, reset_after=reset_after, backend="fused", dtype=dtype
    )
    composed = gru.GRU(
        5, 9, 2, bidirectional=True, reset_after=reset_after, backend="torch", dtype=dtype
    )
    composed.load_state_dict(fused.state_dict())
    x = torch.randn(12, 4, 5, dtype=dtype, requires_grad=True)
    lengths = torch.tensor([12, 3, 7, 1])
    outputs = []
    for module in (fused, composed):
        out, h_n = module(x, lengths=lengths)
        grads = torch.autograd.grad(out.square().sum() + h_n.sum(), [x, *module.parameters()])
        outputs.append((out, h_n, grads))
    (o1, h1, g1), (o2, h2, g2) = outputs
    assert_close(o1, o2)
    assert_close(h1, h2)
    for a, b in zip(g1, g2, strict=True):
        assert_close(a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reset_after", [True, False])
def test_small_inference_takes_one_call_and_equals_the_other_paths(dtype, reset_after, monkeypatch):
    """Without gradients, small layers run in one compiled call (`kernels.small`); the
    result equals the engine's usual path (a GEMM, then the recurrence) and composed torch."""
    torch.manual_seed(1)
    kw = {"bidirectional": True, "reset_after": reset_after, "dtype": dtype, "batch_first": True}
    fused = gru.GRU(5, 9, 2, **kw)
    composed = gru.GRU(5, 9, 2, backend="torch", **kw)
    composed.load_state_dict(fused.state_dict())
    x = torch.randn(4, 12, 5, dtype=dtype)  # batch first: a non-contiguous (T, B, I) inside
    h0 = torch.randn(4, 4, 9, dtype=dtype)
    lengths = torch.tensor([12, 3, 7, 1])
    calls = []
    small = gru.kernels.layer.forward_small
    monkeypatch.setattr(
        gru.kernels.layer, "forward_small", lambda *a, **k: calls.append(1) or small(*a, **k)
    )
    with torch.no_grad():
        got = fused(x, h0, lengths=lengths)
        assert len(calls) == 4  # 2 layers × 2 directions
        monkeypatch.setattr(gru.kernels.small, "SMALL_PROJECTION", 0)
        monkeypatch.setattr(gru.kernels.tiles, "MIN_BATCH", 10**9)  # float32's tiled shards
        usual = fused(x, h0, lengths=lengths)
        assert len(calls) == 4
        reference = composed(x, h0, lengths=lengths)
    for expected in (usual, reference):
        assert_close(got[0], expected[0])
        assert_close(got[1], expected[1])


def test_inference_keeps_nothing_for_backward():
    model = gru.GRU(3, 4)
    x = torch.randn(5, 2, 3)
    with torch.no_grad():
        out, _ = model(x)
    assert out.grad_fn is None
    out, _ = model(x)
    assert out.grad_fn is not None


def test_custom_operators_pass_opcheck():
    """Schema, fake kernels and autograd registration of gru::sequence_forward are consistent."""
    _, (x, h0, w_ih, w_hh, b_ih, b_hh) = problem(2)
    lengths = torch.tensor([6, 2, 4])
    for args in [
        (x, h0, w_ih, w_hh, b_ih, b_hh, None, True, False, True),
        (x, h0, w_ih, w_hh, None, None, lengths, False, True, True),
    ]:
        torch.library.opcheck(torch.ops.gru.sequence_forward.default, args)


@pytest.mark.parametrize("reset_after", [True, False])
def test_torch_compile_matches_eager(reset_after):
    torch.manual_seed(0)
    model = gru.GRU(4, 6, 2, batch_first=True, reset_after=reset_after)
    head = torch.nn.Linear(6, 1)

    def loss_of(x):
        out, _ = model(x)
        return head(out[:, -1]).square().mean()

    x = torch.randn(3, 7, 4)
    eager = loss_of(x)
    eager_grads = torch.autograd.grad(eager, list(model.parameters()))
    compiled = torch.compile(loss_of, backend="aot_eager", fullgraph=True)
    loss = compiled(x)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    assert_close(loss, eager)
    for a, b in zip(grads, eager_grads, strict=True):
        assert_close(a, b)


def test_torch_export_runs_the_engine():
    torch.manual_seed(0)
    model = gru.GRU(4, 6, 2).eval()
    x = torch.randn(7, 3, 4)
    exported = torch.export.export(model, (x,))
    assert "gru.sequence_forward" in str(exported.graph)
    out, h_n = exported.module()(x)
    expected, expected_h = model(x)
    assert_close(out, expected)
    assert_close(h_n, expected_h)


def test_fused_backend_refuses_what_it_cannot_run():
    model = gru.GRU(3, 4, backend="fused").to(torch.bfloat16)
    with pytest.raises(
        ValueError,
        match=r"backend='fused' runs on CPU tensors of float32 or float64, got a torch.bfloat16 tensor on cpu; use backend='auto'",
    ):
        model(torch.randn(5, 2, 3, dtype=torch.bfloat16))
    auto = gru.GRU(3, 4).to(torch.bfloat16)  # auto falls back to composed torch operations
    assert auto(torch.randn(5, 2, 3, dtype=torch.bfloat16))[0].dtype == torch.bfloat16
    with pytest.raises(
        ValueError, match=r"GRU: backend must be one of \('auto', 'fused', 'torch'\), got 'cuda'"
    ):
        gru.GRU(3, 4, backend="cuda")


@pytest.mark.parametrize("reset_after", [True, False])
def test_cell_is_one_step_of_the_sequence(reset_after):
    torch.manual_seed(0)
    x, h = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    w = [
        torch.randn(6, 3).double(),
        torch.randn(6, 2).double(),
        torch.randn(6).double(),
        torch.randn(6).double(),
    ]
    step = ops.gru_cell(x, h, *w, reset_after=reset_after)
    out, h_n = ops.gru_sequence(x.unsqueeze(0), h, *w, reset_after=reset_after)
    assert_close(step, out[0])
    assert_close(step, h_n)
    expected, _ = R.gru_step(x.numpy(), h.numpy(), *(t.numpy() for t in w), reset_after=reset_after)
    assert_close(step, expected)


@pytest.mark.parametrize("with_lengths", [False, True])
def test_native_stack_for_cuda_has_the_layer_semantics(with_lengths):
    """`cudnn_stack` (what CUDA tensors use) called on CPU, where torch runs the same native
    GRU without cuDNN: its plumbing of hx, lengths and the weights matches gru.GRU."""
    torch.manual_seed(0)
    model = gru.GRU(3, 4, 2, bidirectional=True, dtype=torch.float64)
    x = torch.randn(6, 3, 3, dtype=torch.float64)
    hx = torch.randn(4, 3, 4, dtype=torch.float64)
    lengths = torch.tensor([6, 2, 4]) if with_lengths else None
    weights = [p for layer in model.all_weights for p in layer]
    out, h_n = ops.cudnn_stack(
        x, hx, weights, num_layers=2, bias=True, dropout=0.0, training=False,
        bidirectional=True, lengths=lengths,
    )  # fmt: skip
    expected, expected_h = model(x, hx, lengths=lengths)
    assert_close(out, expected)
    assert_close(h_n, expected_h)
