"""gru.recall.Recall: an untrained one passes its input through, no step sees a later one, and
drawing step by step with the past gives what the whole sequence gives at once."""

import pytest
import torch

from checks import assert_close
from gru.recall import Recall


def trained_like(size=6, keys=4, seed=0):
    torch.manual_seed(seed)
    recall = Recall(size, keys)
    torch.nn.init.normal_(recall.out.weight)  # as if trained: the zero start passes through
    return recall


def test_an_untrained_recall_passes_the_outputs_through():
    o = torch.randn(2, 5, 6)
    torch.testing.assert_close(Recall(6, 4)(o), o, rtol=0, atol=0)


def test_no_step_sees_a_later_one():
    recall = trained_like()
    o = torch.randn(2, 7, 6)
    changed = o.clone()
    changed[:, 4:] += torch.randn(2, 3, 6)
    y, y_changed = recall(o), recall(changed)
    torch.testing.assert_close(y[:, :4], y_changed[:, :4], rtol=0, atol=0)
    assert not torch.allclose(y[:, 4:], y_changed[:, 4:])


def test_steps_with_their_past_equal_the_whole_sequence():
    recall = trained_like().double()
    o = torch.randn(3, 9, 6, dtype=torch.float64)
    whole = recall(o)
    steps = [recall(o[:, :1])] + [recall(o[:, t : t + 1], o[:, :t]) for t in range(1, 9)]
    assert_close(torch.cat(steps, 1), whole, torch.float64)
    assert_close(recall(o[:, 5:], o[:, :5]), whole[:, 5:], torch.float64)  # several at once
    # by hand for the second step: softmax over the first two keys
    q, k, v = recall.query(o[:, 1]), recall.key(o[:, :2]), recall.value(o[:, :2])
    a = torch.softmax((k @ q[:, :, None])[..., 0] / 2.0, -1)  # √D = 2
    by_hand = o[:, 1] + recall.out((a[:, :, None] * v).sum(1))
    assert_close(whole[:, 1], by_hand, torch.float64)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_sizes_are_positive_ints(bad):
    with pytest.raises(ValueError, match=r"Recall: keys must be a positive int"):
        Recall(4, bad)
