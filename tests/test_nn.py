"""gru.GRU and gru.GRUCell against torch.nn.GRU / GRUCell and against the oracle."""

import itertools

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

import gru
from checks import assert_close, layer_weights, reference_stack, reference_stack_backward


def twins(I, H, num_layers=1, bidirectional=False, batch_first=False, dtype=torch.float32, **kw):
    """A torch.nn.GRU and a gru.GRU holding the same weights (copied through the state dict)."""
    theirs = torch.nn.GRU(
        I, H, num_layers, batch_first=batch_first, bidirectional=bidirectional, dtype=dtype, **kw
    )
    ours = gru.GRU(
        I, H, num_layers, batch_first=batch_first, bidirectional=bidirectional, dtype=dtype, **kw
    )
    ours.load_state_dict(theirs.state_dict())
    return theirs, ours


def grads_of(module, *tensors, outputs, seed=0):
    """Backpropagate fixed random weights on every output; return the gradients of the given
    input tensors followed by those of the module's parameters (by name)."""
    g = torch.Generator().manual_seed(seed)
    loss = sum((o * torch.randn(o.shape, generator=g, dtype=o.dtype)).sum() for o in outputs)
    params = dict(module.named_parameters())
    grads = torch.autograd.grad(loss, [*tensors, *params.values()], retain_graph=True)
    return list(grads[: len(tensors)]), dict(zip(params, grads[len(tensors) :], strict=True))


GRID = list(
    itertools.product(
        [1, 2, 3], [False, True], [False, True], [False, True], [torch.float32, torch.float64]
    )
)


@pytest.mark.parametrize(("num_layers", "bidirectional", "batch_first", "with_hx", "dtype"), GRID)
def test_layer_matches_torch(num_layers, bidirectional, batch_first, with_hx, dtype):
    torch.manual_seed(0)
    T, B, I, H = 7, 3, 5, 6
    D = 2 if bidirectional else 1
    theirs, ours = twins(I, H, num_layers, bidirectional, batch_first, dtype)
    shape = (B, T, I) if batch_first else (T, B, I)
    x = torch.randn(shape, dtype=dtype, requires_grad=True)
    hx = torch.randn(num_layers * D, B, H, dtype=dtype, requires_grad=True) if with_hx else None
    inputs = [x] + ([hx] if with_hx else [])

    expected = theirs(x, hx)
    actual = ours(x, hx)
    for a, e, what in zip(actual, expected, ("output", "h_n"), strict=True):
        assert_close(a, e, what=what)
    g_theirs, p_theirs = grads_of(theirs, *inputs, outputs=expected)
    g_ours, p_ours = grads_of(ours, *inputs, outputs=actual)
    for a, e in zip(g_ours, g_theirs, strict=True):
        assert_close(a, e, what="input gradient")
    assert p_ours.keys() == p_theirs.keys()
    for name in p_theirs:
        assert_close(p_ours[name], p_theirs[name], what=name)


@pytest.mark.parametrize(("num_layers", "bidirectional"), [(1, False), (2, True), (3, False)])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_packed_unsorted_lengths_match_torch(num_layers, bidirectional, batch_first, dtype):
    torch.manual_seed(1)
    T, B, I, H = 8, 5, 4, 3
    D = 2 if bidirectional else 1
    lengths = torch.tensor([3, 8, 1, 5, 8])  # unsorted, with ties and a length of 1
    theirs, ours = twins(I, H, num_layers, bidirectional, batch_first, dtype)
    padded = torch.randn((B, T, I) if batch_first else (T, B, I), dtype=dtype, requires_grad=True)
    hx = torch.randn(num_layers * D, B, H, dtype=dtype, requires_grad=True)
    packed = pack_padded_sequence(padded, lengths, batch_first=batch_first, enforce_sorted=False)

    out_t, h_t = theirs(packed, hx)
    out_o, h_o = ours(packed, hx)
    assert isinstance(out_o, PackedSequence)
    assert torch.equal(out_o.batch_sizes, out_t.batch_sizes)
    assert torch.equal(out_o.sorted_indices, out_t.sorted_indices)
    assert torch.equal(out_o.unsorted_indices, out_t.unsorted_indices)
    assert_close(out_o.data, out_t.data, what="packed output")
    assert_close(h_o, h_t, what="h_n")
    g_t, p_t = grads_of(theirs, padded, hx, outputs=(out_t.data, h_t))
    g_o, p_o = grads_of(ours, padded, hx, outputs=(out_o.data, h_o))
    for a, e in zip(g_o, g_t, strict=True):
        assert_close(a, e, what="input gradient")
    for name in p_t:
        assert_close(p_o[name], p_t[name], what=name)


def test_packed_sorted_matches_torch():
    torch.manual_seed(2)
    theirs, ours = twins(3, 4, 2, bidirectional=True)
    padded = torch.randn(6, 3, 3)
    packed = pack_padded_sequence(padded, torch.tensor([6, 4, 2]))
    assert packed.sorted_indices is None
    (out_t, h_t), (out_o, h_o) = theirs(packed), ours(packed)
    assert out_o.sorted_indices is None
    assert_close(out_o.data, out_t.data)
    assert_close(h_o, h_t)


@pytest.mark.parametrize(("num_layers", "bidirectional"), [(1, False), (2, True)])
@pytest.mark.parametrize("batch_first", [False, True])
def test_lengths_argument_equals_packing(num_layers, bidirectional, batch_first):
    """``lengths=`` on padded input is the same computation as a PackedSequence."""
    torch.manual_seed(3)
    theirs, ours = twins(2, 5, num_layers, bidirectional, batch_first, torch.float64)
    lengths = torch.tensor([2, 7, 4])
    x = torch.randn((3, 7, 2) if batch_first else (7, 3, 2), dtype=torch.float64)
    out_packed, h_packed = theirs(
        pack_padded_sequence(x, lengths, batch_first, enforce_sorted=False)
    )
    expected, _ = pad_packed_sequence(out_packed, batch_first, total_length=7)
    output, h_n = ours(x, lengths=lengths)
    assert_close(output, expected)
    assert_close(h_n, h_packed)
    output_list, _ = ours(x, lengths=[2, 7, 4])
    assert torch.equal(output_list, output)


@pytest.mark.parametrize("with_hx", [False, True])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_unbatched_matches_torch(with_hx, bidirectional):
    torch.manual_seed(4)
    theirs, ours = twins(3, 4, 2, bidirectional, dtype=torch.float64)
    x = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    hx = torch.randn(2 * (2 if bidirectional else 1), 4, dtype=torch.float64) if with_hx else None
    expected, actual = theirs(x, hx), ours(x, hx)
    assert actual[0].shape == (6, 4 * (2 if bidirectional else 1))
    for a, e in zip(actual, expected, strict=True):
        assert_close(a, e)
    (g_t,), _ = grads_of(theirs, x, outputs=expected)
    (g_o,), _ = grads_of(ours, x, outputs=actual)
    assert_close(g_o, g_t)


@pytest.mark.parametrize("bias", [True, False])
def test_no_bias_matches_torch(bias):
    torch.manual_seed(5)
    theirs, ours = twins(3, 4, 2, True, bias=bias)
    assert len(list(ours.parameters())) == (16 if bias else 8)
    x = torch.randn(5, 2, 3)
    for a, e in zip(ours(x), theirs(x), strict=True):
        assert_close(a, e)


@pytest.mark.parametrize(
    ("num_layers", "bidirectional", "bias"), [(1, False, True), (2, True, True), (1, True, False)]
)
def test_same_initialization_as_torch(num_layers, bidirectional, bias):
    torch.manual_seed(11)
    theirs = torch.nn.GRU(4, 7, num_layers, bias=bias, bidirectional=bidirectional)
    torch.manual_seed(11)
    ours = gru.GRU(4, 7, num_layers, bias=bias, bidirectional=bidirectional)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        assert p.shape == q.shape
        assert torch.equal(p, q), name
    assert [[p.shape for p in w] for w in ours.all_weights] == [
        [p.shape for p in w] for w in theirs.all_weights
    ]
    torch.manual_seed(12)
    theirs_cell = torch.nn.GRUCell(4, 7, bias=bias)
    torch.manual_seed(12)
    ours_cell = gru.GRUCell(4, 7, bias=bias)
    for p, q in zip(ours_cell.parameters(), theirs_cell.parameters(), strict=True):
        assert torch.equal(p, q)


def test_dropout_between_layers_matches_torch_in_training_only():
    torch.manual_seed(6)
    theirs, ours = twins(3, 5, 3, True, dropout=0.4)
    x = torch.randn(6, 2, 3)
    torch.manual_seed(100)
    expected = theirs(x)
    torch.manual_seed(100)
    actual = ours(x)
    for a, e in zip(actual, expected, strict=True):
        assert_close(a, e)
    ours.eval()
    theirs.eval()
    torch.manual_seed(100)
    evaluated = ours(x)
    assert not torch.allclose(evaluated[0], actual[0])  # the training pass did drop units
    assert_close(evaluated[0], theirs(x)[0])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("with_hx", [True, False])
def test_cell_matches_torch(dtype, batched, with_hx):
    torch.manual_seed(7)
    theirs = torch.nn.GRUCell(4, 6, dtype=dtype)
    ours = gru.GRUCell(4, 6, dtype=dtype)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn((3, 4) if batched else (4,), dtype=dtype, requires_grad=True)
    hx = torch.randn((3, 6) if batched else (6,), dtype=dtype, requires_grad=True)
    args = (x, hx) if with_hx else (x,)
    expected, actual = theirs(*args), ours(*args)
    assert_close(actual, expected)
    g_t, p_t = grads_of(theirs, *args, outputs=(expected,))
    g_o, p_o = grads_of(ours, *args, outputs=(actual,))
    for a, e in zip(g_o, g_t, strict=True):
        assert_close(a, e)
    for name in p_t:
        assert_close(p_o[name], p_t[name], what=name)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_loop_of_cells_equals_layer(reset_after, bias):
    torch.manual_seed(8)
    layer = gru.GRU(3, 4, bias=bias, reset_after=reset_after, dtype=torch.float64)
    cell = gru.GRUCell(3, 4, bias=bias, reset_after=reset_after, dtype=torch.float64)
    cell.load_state_dict({k.removesuffix("_l0"): v for k, v in layer.state_dict().items()})
    x = torch.randn(9, 2, 3, dtype=torch.float64)
    h = torch.randn(2, 4, dtype=torch.float64)
    output, h_n = layer(x, h.unsqueeze(0))
    steps = []
    for t in range(9):
        h = cell(x[t], h)
        steps.append(h)
    assert_close(torch.stack(steps), output)
    assert_close(h, h_n[0])


RESET_BEFORE = [
    # num_layers, bidirectional, batch_first, lengths, bias
    (1, False, False, None, True),
    (1, True, True, None, True),
    (2, True, False, [5, 2, 6], True),
    (3, False, True, [1, 6, 3], False),
]


@pytest.mark.parametrize(
    ("num_layers", "bidirectional", "batch_first", "lengths", "bias"), RESET_BEFORE
)
def test_reset_before_matches_reference(num_layers, bidirectional, batch_first, lengths, bias):
    """torch has no reset-before GRU: the layer is checked against the oracle alone."""
    torch.manual_seed(9)
    T, B, I, H = 6, 3, 4, 5
    D = 2 if bidirectional else 1
    layer = gru.GRU(
        I, H, num_layers, bias, batch_first, bidirectional=bidirectional, reset_after=False
    ).double()
    x = torch.randn(
        (B, T, I) if batch_first else (T, B, I), dtype=torch.float64, requires_grad=True
    )
    hx = torch.randn(num_layers * D, B, H, dtype=torch.float64, requires_grad=True)
    output, h_n = layer(x, hx, lengths=lengths)

    weights = [layer_weights(layer, i) for i in range(num_layers * D)]
    x_tm = x.detach().numpy().transpose(1, 0, 2) if batch_first else x.detach().numpy()
    kw = {"num_layers": num_layers, "bidirectional": bidirectional, "lengths": lengths}
    ref_out, ref_h, caches = reference_stack(
        x_tm, hx.detach().numpy(), weights, reset_after=False, **kw
    )
    if batch_first:
        ref_out = ref_out.transpose(1, 0, 2)
    assert_close(output, ref_out, what="output")
    assert_close(h_n, ref_h, what="h_n")

    (dx, dhx), p = grads_of(layer, x, hx, outputs=(output, h_n))
    g = torch.Generator().manual_seed(0)  # the same weights grads_of drew
    d_out = torch.randn(output.shape, generator=g, dtype=torch.float64).numpy()
    d_h = torch.randn(h_n.shape, generator=g, dtype=torch.float64).numpy()
    if batch_first:
        d_out = d_out.transpose(1, 0, 2)
    ref_dx, ref_dh, ref_grads = reference_stack_backward(d_out, d_h, caches, **kw)
    assert_close(dx, ref_dx.transpose(1, 0, 2) if batch_first else ref_dx, what="dx")
    assert_close(dhx, ref_dh, what="dhx")
    for i, names in enumerate(layer._all_weights):
        ref = ref_grads[i]
        for name, value in zip(names, (ref.w_ih, ref.w_hh, ref.b_ih, ref.b_hh), strict=False):
            assert_close(p[name], value, what=name)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gradcheck(reset_after):
    torch.manual_seed(10)
    layer = gru.GRU(3, 2, 2, bidirectional=True, reset_after=reset_after, dtype=torch.float64)
    names = [n for n, _ in layer.named_parameters()]
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    hx = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)
    params = [p.detach().clone().requires_grad_(True) for p in layer.parameters()]

    def f(x, hx, *params):
        return torch.func.functional_call(layer, dict(zip(names, params, strict=True)), (x, hx))

    assert torch.autograd.gradcheck(f, (x, hx, *params))
    cell = gru.GRUCell(3, 2, reset_after=reset_after, dtype=torch.float64)
    cell_params = [p.detach().clone().requires_grad_(True) for p in cell.parameters()]
    cell_names = [n for n, _ in cell.named_parameters()]

    def g(x, h, *params):
        return torch.func.functional_call(cell, dict(zip(cell_names, params, strict=True)), (x, h))

    assert torch.autograd.gradcheck(g, (x[0], hx[0], *cell_params))


def test_conventions_differ():
    """The same weights give different outputs under the two conventions (so every test that
    passes reset_after reaches a different computation)."""
    torch.manual_seed(12)
    after = gru.GRU(3, 4)
    before = gru.GRU(3, 4, reset_after=False)
    before.load_state_dict(after.state_dict())
    x = torch.randn(5, 2, 3)
    assert (after(x)[0] - before(x)[0]).abs().max() > 1e-3


def test_repr_and_flatten_parameters():
    layer = gru.GRU(3, 4, 2, batch_first=True, bidirectional=True, reset_after=False)
    layer.flatten_parameters()
    assert (
        repr(layer)
        == "GRU(3, 4, num_layers=2, batch_first=True, bidirectional=True, reset_after=False)"
    )
    assert repr(torch.nn.GRU(3, 4, 2)) == repr(gru.GRU(3, 4, 2))
    assert repr(gru.GRUCell(3, 4, bias=False)) == "GRUCell(3, 4, bias=False)"


# --- bad input -----------------------------------------------------------------------------


def make(**kw):
    return gru.GRU(3, 4, **kw)


def run_layer(layer, *args, **kw):
    return lambda: layer(*args, **kw)


def packed_with(batch_sizes, rows=6):
    return PackedSequence(torch.randn(rows, 3), torch.tensor(batch_sizes))


BAD_INPUT = [
    (lambda: gru.GRU(0, 4), ValueError, r"GRU: input_size must be at least 1, got 0"),
    (lambda: gru.GRU(3, -2), ValueError, r"GRU: hidden_size must be at least 1, got -2"),
    (lambda: gru.GRU(3, 4.0), TypeError, r"GRU: hidden_size must be an int, got float 4.0"),
    (lambda: gru.GRU(3, 4, 0), ValueError, r"num_layers must be at least 1, got 0"),
    (
        lambda: gru.GRU(3, 4, 2, dropout=1.5),
        ValueError,
        r"dropout must be a probability in \[0, 1\], got 1.5",
    ),
    (
        lambda: gru.GRU(3, 4, 2, dropout=-0.1),
        ValueError,
        r"dropout must be a probability in \[0, 1\], got -0.1",
    ),
    (lambda: gru.GRU(3, 4, 2, dropout="0.1"), TypeError, r"dropout must be a float, got str"),
    (lambda: gru.GRUCell(3, 0), ValueError, r"GRUCell: hidden_size must be at least 1, got 0"),
    (
        run_layer(make(), torch.randn(2, 5, 3, 3)),
        ValueError,
        r"input must be 3-D \(T, B, I\) \(batch_first=False\) or 2-D \(T, I\) unbatched, "
        r"got 4-D with shape \(2, 5, 3, 3\)",
    ),
    (run_layer(make(), torch.randn(3)), ValueError, r"got 1-D with shape \(3,\)"),
    (
        run_layer(make(), torch.randn(5, 2, 16)),
        ValueError,
        r"GRU.forward: input.shape\[-1\] must equal input_size=3, got 16 \(shape \(5, 2, 16\)\)$",
    ),
    (
        run_layer(make(batch_first=True), torch.randn(2, 3, 5)),
        ValueError,
        r"must equal input_size=3, got 5 \(shape \(2, 3, 5\)\); the features must be the last dimension \(B, T, I\)",
    ),
    (
        run_layer(make(), torch.randn(5, 2, 3), torch.randn(1, 3, 4)),
        ValueError,
        r"hx must have shape \(num_layers \* num_directions, batch, hidden_size\) = \(1, 2, 4\), got \(1, 3, 4\)",
    ),
    (
        run_layer(
            make(num_layers=2, bidirectional=True), torch.randn(5, 2, 3), torch.randn(2, 2, 4)
        ),
        ValueError,
        r"= \(4, 2, 4\), got \(2, 2, 4\)",
    ),
    (
        run_layer(make(), torch.randn(5, 3), torch.randn(1, 1, 4)),
        ValueError,
        r"hx must have shape \(num_layers \* num_directions, hidden_size\) for unbatched input = \(1, 4\), got \(1, 1, 4\)",
    ),
    (
        run_layer(make(), torch.randn(5, 2, 3, dtype=torch.float64)),
        TypeError,
        r"input has dtype torch.float64 but the weights are torch.float32; convert one to match",
    ),
    (
        run_layer(make(), torch.randn(5, 2, 3), torch.randn(1, 2, 4, dtype=torch.float64)),
        TypeError,
        r"hx has dtype torch.float64 but the weights are torch.float32",
    ),
    (
        run_layer(make(), torch.ones(5, 2, 3, dtype=torch.int64)),
        TypeError,
        r"input must be a floating-point tensor, got dtype torch.int64",
    ),
    (
        run_layer(make(), np.zeros((5, 2, 3), np.float32)),
        TypeError,
        r"input must be a torch.Tensor or a PackedSequence, got ndarray",
    ),
    (
        run_layer(make(), torch.randn(5, 2, 3), np.zeros((1, 2, 4))),
        TypeError,
        r"hx must be a torch.Tensor, got ndarray",
    ),
    (
        run_layer(make(), torch.randn(0, 2, 3)),
        ValueError,
        r"input has no time steps \(shape \(0, 2, 3\)\)",
    ),
    (
        run_layer(make(), torch.randn(5, 2, 3), lengths=[5, 6]),
        ValueError,
        r"every length must be in \[1, T=5\], got min 5 and max 6",
    ),
    (
        run_layer(make(), torch.randn(5, 2, 3), lengths=[0, 5]),
        ValueError,
        r"every length must be in \[1, T=5\], got min 0",
    ),
    (
        run_layer(make(), torch.randn(5, 2, 3), lengths=[5, 5, 5]),
        ValueError,
        r"lengths must have shape \(batch,\) = \(2,\), got \(3,\)",
    ),
    (
        run_layer(make(), torch.randn(5, 2, 3), lengths=[2.0, 5.0]),
        TypeError,
        r"lengths must hold integers, got dtype torch.float32",
    ),
    (run_layer(make(), torch.randn(5, 3), lengths=[5]), ValueError, r"lengths needs batched input"),
    (
        run_layer(make(), packed_with([3, 3, 0])),
        ValueError,
        r"PackedSequence's batch_sizes must be positive and non-increasing .*got \[3, 3, 0\]",
    ),
    (
        run_layer(make(), packed_with([2, 3, 1])),
        ValueError,
        r"batch_sizes must be positive and non-increasing \(sequences sorted longest first\), got \[2, 3, 1\]",
    ),
    (
        run_layer(make(), packed_with([3, 2], rows=6)),
        ValueError,
        r"PackedSequence's batch_sizes sum to 5 but its data has 6 rows",
    ),
    (
        run_layer(
            make(), pack_padded_sequence(torch.randn(4, 2, 3), torch.tensor([4, 2])), lengths=[4, 2]
        ),
        ValueError,
        r"lengths must be None for a PackedSequence",
    ),
    (
        run_layer(
            make(),
            pack_padded_sequence(torch.randn(4, 2, 3), torch.tensor([4, 2])),
            torch.randn(1, 3, 4),
        ),
        ValueError,
        r"hx must have shape .* = \(1, 2, 4\), got \(1, 3, 4\)",
    ),
    (
        run_layer(gru.GRUCell(3, 4), torch.randn(2, 5)),
        ValueError,
        r"GRUCell.forward: input.shape\[-1\] must equal input_size=3, got 5",
    ),
    (
        run_layer(gru.GRUCell(3, 4), torch.randn(2, 2, 3)),
        ValueError,
        r"GRUCell.forward: input must be 2-D \(B, I\) or 1-D \(I,\) unbatched, got 3-D with shape \(2, 2, 3\); for sequences use gru.GRU",
    ),
    (
        run_layer(gru.GRUCell(3, 4), torch.randn(2, 3), torch.randn(3, 4)),
        ValueError,
        r"GRUCell.forward: hx must have shape \(2, 4\) to match input of shape \(2, 3\), got \(3, 4\)",
    ),
    (
        run_layer(gru.GRUCell(3, 4), torch.randn(2, 3).double()),
        TypeError,
        r"GRUCell.forward: input has dtype torch.float64",
    ),
    (
        lambda: gru.GRU(3, 4, reset_after=False).to_torch(),
        ValueError,
        r"GRU.to_torch: torch.nn.GRU computes only the reset-after convention.*reset_after=False",
    ),
    (
        lambda: gru.GRUCell(3, 4, reset_after=False).to_torch(),
        ValueError,
        r"GRUCell.to_torch: torch.nn.GRUCell computes only",
    ),
    (
        lambda: gru.GRU.from_torch(torch.nn.LSTM(3, 4)),
        TypeError,
        r"from_torch: module must be a torch.nn.GRU, got LSTM",
    ),
]


@pytest.mark.parametrize(("call", "error", "match"), BAD_INPUT)
def test_bad_input_is_refused_with_a_clear_message(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_dropout_on_a_single_layer_warns_like_torch():
    with pytest.warns(
        UserWarning, match=r"dropout > 0 expects num_layers > 1, got dropout=0.5 and num_layers=1"
    ):
        gru.GRU(3, 4, dropout=0.5)


# --- streaming -------------------------------------------------------------------------------


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("backend", ["auto", "torch"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_stream_equals_the_layer_step_by_step(reset_after, backend, dtype):
    torch.manual_seed(13)
    model = gru.GRU(3, 5, 2, reset_after=reset_after, backend=backend, dtype=dtype)
    x = torch.randn(8, 2, 3, dtype=dtype)
    expected, h_n = model(x)
    stream = model.stream(batch_size=2)
    steps = [stream(x[t]).clone() for t in range(8)]
    assert_close(torch.stack(steps), expected)
    assert_close(stream.state, h_n)
    stream.reset()
    assert torch.all(stream.state == 0)
    assert_close(stream(x[0]), expected[0])


def test_stream_takes_numpy_and_unbatched_input_and_a_given_state():
    torch.manual_seed(14)
    model = gru.GRU(4, 6)
    x = torch.randn(5, 1, 4)
    h0 = torch.randn(1, 1, 6)
    expected, _ = model(x, h0)
    stream = model.stream()
    stream.state = h0
    for t in range(5):
        out = stream(x[t, 0].numpy())
        assert isinstance(out, np.ndarray) and out.shape == (6,)
        assert_close(out, expected[t, 0])


def test_stream_numpy_rows_in_any_layout_equal_the_layer():
    # (B, I) C-contiguous arrays of the stack's dtype take the short way (one compiled call);
    # a strided view, a Fortran-ordered copy and a torch tensor take the general way: all equal.
    torch.manual_seed(15)
    model = gru.GRU(4, 6, 2)
    x = torch.randn(6, 3, 4)
    expected, _ = model(x)
    streams = [model.stream(batch_size=3) for _ in range(4)]
    wide = np.zeros((6, 3, 8), np.float32)
    wide[:, :, ::2] = x.numpy()
    for t in range(6):
        outs = [
            streams[0](np.ascontiguousarray(x[t].numpy())),
            streams[1](wide[t, :, ::2]),  # every other column: not contiguous
            streams[2](np.asfortranarray(x[t].numpy())),
            streams[3](x[t]),
        ]
        for out in outs:
            assert_close(torch.as_tensor(np.asarray(out)), expected[t])
    stream = streams[0]
    with pytest.raises(TypeError, match=r"GRUStream: x_t must have dtype float32, got float64"):
        stream(np.zeros((3, 4)))
    with pytest.raises(TypeError, match=r"GRUStream: x_t must have dtype float32, got >f4"):
        stream(np.zeros((3, 4), ">f4"))
    with pytest.raises(ValueError, match=r"GRUStream: x_t must have shape \(3, 4\), got \(3, 5\)"):
        stream(np.zeros((3, 5), np.float32))


def test_stream_step_allocates_no_arrays_and_reuses_its_output():
    import tracemalloc

    model = gru.GRU(16, 32)
    stream = model.stream()
    x = np.random.default_rng(0).normal(size=(1, 16)).astype(np.float32)
    first = stream(x)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(1000):
        out = stream(x)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    assert out is first or np.shares_memory(out, first)  # the same buffer every step
    grown = sum(s.size_diff for s in after.compare_to(before, "filename") if s.size_diff > 0)
    # 1000 steps: no per-step array (one would be 128 bytes × 1000 = 128 KB) nor any per-step
    # object of 16 bytes or more; a few KB may come from elsewhere in the process (another
    # thread, caches), which tracemalloc counts too (4.9 KB seen once under the full suite).
    assert grown < 16384


def test_stream_refuses_bad_input():
    with pytest.raises(
        ValueError, match=r"GRU.stream: a bidirectional GRU cannot run one step at a time"
    ):
        gru.GRU(3, 4, bidirectional=True).stream()
    stream = gru.GRU(3, 4).stream(batch_size=2)
    with pytest.raises(ValueError, match=r"GRUStream: x_t must have shape \(2, 3\), got \(3,\)"):
        stream(torch.randn(3))
    with pytest.raises(
        TypeError, match=r"GRUStream: x_t must have dtype torch.float32, got torch.float64"
    ):
        stream(torch.randn(2, 3, dtype=torch.float64))
    with pytest.raises(
        ValueError, match=r"GRUStream.state must have shape \(1, 2, 4\), got \(2, 4\)"
    ):
        stream.state = torch.zeros(2, 4)
    with pytest.raises(ValueError, match=r"GRU.stream: batch_size must be at least 1, got 0"):
        gru.GRU(3, 4).stream(batch_size=0)
