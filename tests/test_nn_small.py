"""`GRU.forward`'s short way for small stacks without gradients (`gru.nn.fastpath`): taken where
it applies, equal bit for bit to the general path, equal to torch.nn.GRU and the oracle, fresh
after every way weights change, and out of the way of everything it does not cover."""

import itertools
import warnings

import numpy as np
import pytest
import torch

import gru
from checks import assert_close, layer_weights, reference_stack
from gru.nn import fastpath


@pytest.fixture
def calls(monkeypatch):
    """How many compiled calls the short way made (a list that grows by one per call)."""
    made = []
    original = fastpath.forward_small

    def counted(*args, **kwargs):
        made.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(fastpath, "forward_small", counted)
    return made


def general(module, x, hx=None):
    """(output, h_n) by the general path: grad mode on, nothing requiring a gradient."""
    requires = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        with torch.enable_grad():
            return module(x, hx)
    finally:
        for p, r in zip(module.parameters(), requires, strict=True):
            p.requires_grad_(r)


GRID = list(
    itertools.product(
        [1, 2],  # layers
        [False, True],  # bidirectional
        [False, True],  # batch_first
        [False, True],  # hx
        [True, False],  # reset_after
        [torch.float32, torch.float64],
    )
)


@pytest.mark.parametrize(
    ("num_layers", "bidirectional", "batch_first", "with_hx", "reset_after", "dtype"), GRID
)
def test_the_short_way_equals_the_general_path_torch_and_the_oracle(
    calls, num_layers, bidirectional, batch_first, with_hx, reset_after, dtype
):
    torch.manual_seed(0)
    T, B, I, H = 5, 4, 3, 6
    D = 2 if bidirectional else 1
    ours = gru.GRU(
        I, H, num_layers, batch_first=batch_first, bidirectional=bidirectional,
        reset_after=reset_after, dtype=dtype,
    ).eval()  # fmt: skip
    x = torch.randn((B, T, I) if batch_first else (T, B, I), dtype=dtype)
    hx = torch.randn(num_layers * D, B, H, dtype=dtype) if with_hx else None
    with torch.no_grad():
        output, h_n = ours(x, hx)
    assert len(calls) == num_layers * D  # one compiled call per layer and direction
    expected_output, expected_h_n = general(ours, x, hx)
    assert len(calls) == num_layers * D  # not the short way (which ends in the same kernel)
    assert torch.equal(output, expected_output) and torch.equal(h_n, expected_h_n)
    x_tm = x.transpose(0, 1) if batch_first else x
    ref_out, ref_h, _ = reference_stack(
        x_tm.numpy(), np.zeros((num_layers * D, B, H)) if hx is None else hx.numpy(),
        [layer_weights(ours, i) for i in range(num_layers * D)],
        num_layers=num_layers, bidirectional=bidirectional, reset_after=reset_after,
    )  # fmt: skip
    output_tm = output.transpose(0, 1) if batch_first else output
    assert_close(output_tm, ref_out, what="output")
    assert_close(h_n, ref_h, what="h_n")
    if reset_after:
        theirs = torch.nn.GRU(
            I, H, num_layers, batch_first=batch_first, bidirectional=bidirectional, dtype=dtype
        )
        theirs.load_state_dict(ours.state_dict())
        with torch.no_grad():
            for a, e in zip((output, h_n), theirs(x, hx), strict=True):
                assert_close(a, e)


@pytest.mark.parametrize("bias", [True, False])
def test_unbatched_input_and_no_bias(calls, bias):
    torch.manual_seed(1)
    ours = gru.GRU(3, 5, 2, bias=bias)
    x, hx = torch.randn(6, 3), torch.randn(2, 5)
    with torch.inference_mode():
        output, h_n = ours(x, hx)
    assert len(calls) == 2 and output.shape == (6, 5) and h_n.shape == (2, 5)
    expected = general(ours, x, hx)
    assert torch.equal(output, expected[0]) and torch.equal(h_n, expected[1])


def _changes():
    """Ways the weights change after a first call: (name, function of the module)."""

    def optimizer_step(m):
        for p in m.parameters():
            p.grad = torch.ones_like(p)
        torch.optim.SGD(m.parameters(), lr=0.1).step()

    def through_data(m):
        m.weight_hh_l0.data.mul_(-2.0)  # moves no version counter
        m.bias_hh_l0.data.add_(1.0)

    def load_state(m):
        other = gru.GRU(3, 5)
        m.load_state_dict(other.state_dict())

    def new_memory(m):
        m.weight_ih_l0.data = torch.randn(15, 3)

    def new_parameter(m):
        m.bias_ih_l0 = torch.nn.Parameter(torch.randn(15))

    def to_float64(m):
        m.double()

    return [
        ("optimizer step", optimizer_step),
        ("through .data", through_data),
        ("load_state_dict", load_state),
        ("new memory", new_memory),
        ("new Parameter", new_parameter),
        ("to float64", to_float64),
    ]


@pytest.mark.parametrize(("change", "apply"), _changes(), ids=[c for c, _ in _changes()])
def test_a_change_to_the_weights_reaches_the_next_call(calls, change, apply):
    torch.manual_seed(2)
    ours = gru.GRU(3, 5)
    x = torch.randn(4, 2, 3)
    with torch.no_grad():
        before = ours(x)[0]
    apply(ours)
    x = x.to(ours.weight_ih_l0.dtype)
    with torch.no_grad():
        after = ours(x)[0]
    assert len(calls) == 2  # both calls took the short way
    assert not torch.equal(after.double(), before.double())
    assert torch.equal(after, general(ours, x)[0])


def test_what_it_does_not_cover_takes_the_general_path(calls):
    torch.manual_seed(3)
    ours = gru.GRU(3, 5, 2, dropout=0.5)
    x = torch.randn(4, 2, 3)
    ours(x)  # gradients
    with torch.no_grad():
        ours(x, lengths=torch.tensor([4, 2]))  # lengths
        ours(x)  # training with dropout between layers
        ours.eval()
        ours(x.requires_grad_())  # an input that requires a gradient
        with torch.autocast("cpu", dtype=torch.bfloat16), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # no bfloat16 instructions here
            ours(x.detach())
        gru.GRU(3, 5, layer_norm=True).eval()(x.detach())  # a variant
        gru.GRU(3, 5, backend="torch").eval()(x.detach())
        gru.GRU(3, 300).eval()(x.detach())  # a layer the row kernels do not take whole
    assert calls == []
    with torch.no_grad():
        ours(x.detach())
    assert calls == [1, 1]


def test_a_parametrized_weight_takes_the_general_path_and_follows_its_original(calls):
    torch.manual_seed(4)
    ours = gru.GRU(3, 5).eval()
    torch.nn.utils.parametrizations.weight_norm(ours, "weight_hh_l0")
    x = torch.randn(4, 2, 3)
    with torch.no_grad():
        before = ours(x)[0]
        ours.parametrizations.weight_hh_l0.original0.mul_(0.5)  # the norm
        after = ours(x)[0]
    assert calls == [] and not torch.equal(before, after)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda m: m(torch.randn(4, 2, 7)), r"input.shape\[-1\] must equal input_size=3"),
        (lambda m: m(torch.randn(4, 2, 3).double()), "dtype"),
        (lambda m: m(torch.randn(4, 2, 3), torch.randn(2, 2, 5)), "hx must have shape"),
        (lambda m: m(torch.randn(0, 2, 3)), "no time steps"),
    ],
)
def test_bad_input_gets_the_general_paths_error(calls, call, match):
    with torch.no_grad(), pytest.raises((ValueError, TypeError), match=match):
        call(gru.GRU(3, 5))
    assert calls == []
