"""gru.nade: the NADE's probabilities sum to one over every pattern of K notes (its NLL is
exact), it is independent Bernoullis at σ(b_v) with zero weights (by hand), the cumulative
sum over notes equals a plain loop over them, gradients are finite, and sampling draws each
note from the same conditionals the NLL scores."""

import itertools
import math

import pytest
import torch

from gru.nade import NADE


def nade(context=3, keys=4, hidden=5, seed=0) -> NADE:
    torch.manual_seed(seed)
    return NADE(context, keys, hidden).double()


def patterns(keys: int) -> torch.Tensor:
    """Every 0/1 pattern of ``keys`` notes (2^K, K)."""
    return torch.tensor(list(itertools.product((0, 1), repeat=keys)), dtype=torch.float64)


def probability(model: NADE, context: torch.Tensor, notes: torch.Tensor) -> torch.Tensor:
    """p(notes | context) (N,), exp of the NLL, without the graph."""
    return torch.exp(-model.nll(context, notes)).detach()


def loop_logits(model: NADE, context: torch.Tensor, notes: torch.Tensor) -> torch.Tensor:
    """The oracle: p(v_d = 1 | v_<d, c)'s logit note by note, straight from the equations."""
    b_v = context @ model.visible.weight.T + model.visible.bias  # (N, K)
    b_h = context @ model.hidden.weight.T + model.hidden.bias  # (N, U)
    out = torch.empty_like(b_v)
    for d in range(model.keys):
        h = torch.sigmoid(b_h + notes[:, :d] @ model.W[:, :d].T)  # (N, U)
        out[:, d] = b_v[:, d] + h @ model.V[d]
    return out


@pytest.mark.parametrize(("keys", "hidden"), [(1, 3), (4, 5), (6, 2)])
def test_the_probabilities_of_every_pattern_sum_to_one(keys, hidden):
    model = nade(keys=keys, hidden=hidden)
    with torch.no_grad():  # weights far from 0, so the notes depend strongly on each other
        model.W.mul_(8)
        model.V.mul_(8)
    every = patterns(keys)
    for c in torch.randn(3, 3, dtype=torch.float64):
        p = probability(model, c.expand(len(every), 3), every)  # (2^K,)
        assert float(p.sum()) == pytest.approx(1.0, abs=1e-12)
        assert float(p.min()) > 0


def test_a_note_depends_on_the_one_below_it_by_hand():
    # One hidden unit that sees note 0 (W = [[5, 0]]) and drives note 1's logit (V_1 = 10):
    # p(v_0 = 1) = σ(0) = 1/2; p(v_1 = 1 | v_0) = σ(-5 + 10 σ(-2.5 + 5 v_0)), about 0.014
    # after a silent note 0 and 0.986 after a sounding one: far from the product of marginals.
    model = nade(context=1, keys=2, hidden=1)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.visible.bias.copy_(torch.tensor([0.0, -5.0]))
        model.hidden.bias.fill_(-2.5)
        model.W.copy_(torch.tensor([[5.0, 0.0]]))
        model.V.copy_(torch.tensor([[0.0], [10.0]]))
    sigmoid = lambda x: 1 / (1 + math.exp(-x))
    after = [sigmoid(-5 + 10 * sigmoid(-2.5 + 5 * v0)) for v0 in (0, 1)]
    expected = [0.5 * (1 - after[0]), 0.5 * after[0], 0.5 * (1 - after[1]), 0.5 * after[1]]
    p = probability(model, torch.zeros(4, 1, dtype=torch.float64), patterns(2))  # 00 01 10 11
    torch.testing.assert_close(p, torch.tensor(expected, dtype=torch.float64), rtol=1e-12, atol=0)
    assert float(p[3]) > 0.45 and abs(float(p[3]) - 0.25) > 0.2  # P(both) against 1/2 · 1/2


def test_with_zero_weights_the_notes_are_independent_bernoullis_at_sigmoid_b_v_by_hand():
    model = nade(context=2, keys=3, hidden=4)
    with torch.no_grad():  # the NADE's own weights W and V zero
        model.W.zero_()
        model.V.zero_()
        model.visible.weight.zero_()
        logits = torch.tensor([math.log(3), 0, math.log(0.25)], dtype=torch.float64)  # .75 .5 .2
        model.visible.bias.copy_(logits)
    context = torch.randn(1, 2, dtype=torch.float64)
    notes = torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64)
    expected = -(math.log(0.75) + math.log(0.5) + math.log(0.2))
    assert float(model.nll(context, notes).detach()[0]) == pytest.approx(expected, rel=1e-12)
    # W = 0 alone: still independent, each note at σ(b_v,d + V_d · σ(b_h)) of the context.
    model = nade(context=2, keys=3, hidden=4)
    with torch.no_grad():
        model.W.zero_()
    b_v = model.visible(context) + torch.sigmoid(model.hidden(context)) @ model.V.T
    independent = torch.nn.functional.binary_cross_entropy_with_logits(
        b_v, notes, reduction="none"
    ).sum(-1)
    torch.testing.assert_close(model.nll(context, notes), independent, rtol=1e-12, atol=1e-12)


def test_the_cumulative_sum_over_notes_equals_a_loop_over_them():
    model = nade(context=5, keys=88, hidden=7)
    context = torch.randn(2, 6, 5, dtype=torch.float64)  # leading dimensions (B, T)
    notes = (torch.rand(2, 6, 88) < 0.3).double()
    fast = model(context, notes)  # (2, 6, 88)
    slow = loop_logits(model, context.reshape(12, 5), notes.reshape(12, 88)).reshape(2, 6, 88)
    torch.testing.assert_close(fast, slow, rtol=1e-12, atol=1e-12)


def test_gradients_reach_every_weight_and_are_finite():
    model = NADE(8, 88, 16)  # float32, as the tasks train it
    context = torch.randn(4, 8, requires_grad=True)
    notes = (torch.rand(4, 88) < 0.05).float()
    model.nll(context, notes).mean().backward()
    for name, p in [*model.named_parameters(), ("context", context)]:
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_samples_are_drawn_from_the_conditionals_the_nll_scores():
    # Two notes, strongly dependent: the frequency of each of the 4 patterns over many draws
    # matches exp(-nll) of that pattern.
    model = nade(keys=2, hidden=4, seed=1)
    with torch.no_grad():
        model.W.mul_(6)
        model.V.mul_(6)
    context = torch.randn(1, 3, dtype=torch.float64)
    draws = model.sample(context.expand(20000, 3), generator=torch.Generator().manual_seed(0))
    counts = torch.stack([((draws == p).all(1)).double().mean() for p in patterns(2)])
    p = probability(model, context.expand(4, 3), patterns(2))
    torch.testing.assert_close(counts, p, rtol=0, atol=0.015)  # 20,000 draws: σ ≤ 0.0036
    again = model.sample(context.expand(5, 3), generator=torch.Generator().manual_seed(3))
    assert torch.equal(again, model.sample(context.expand(5, 3),
                                           generator=torch.Generator().manual_seed(3)))  # fmt: skip


def test_temperature_divides_each_notes_logit():
    model = nade(context=1, keys=3, hidden=2)
    with torch.no_grad():  # independent notes at logits 2, -1, 0.5
        for p in (model.W, model.V, model.visible.weight):
            p.zero_()
        model.visible.bias.copy_(torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64))
    context = torch.zeros(20000, 1, dtype=torch.float64)
    for temperature in (0.5, 2.0):
        draws = model.sample(context, generator=torch.Generator().manual_seed(0),
                             temperature=temperature)  # fmt: skip
        expected = torch.sigmoid(model.visible.bias.detach() / temperature)
        torch.testing.assert_close(draws.mean(0), expected, rtol=0, atol=0.015)


def test_bad_sizes_are_refused_by_name():
    with pytest.raises(ValueError, match=r"NADE: hidden_size must be a positive int, got 0"):
        NADE(3, 4, 0)
    with pytest.raises(ValueError, match=r"NADE: keys must be a positive int, got True"):
        NADE(3, True, 4)
