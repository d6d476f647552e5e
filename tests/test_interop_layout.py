"""gru.interop.layout: the gate-order table and the one function that applies it."""

import itertools

import numpy as np
import pytest
import torch

from gru import reference
from gru.interop.layout import ORDER, gru_from_packed, reorder


def blocks(order, H=2, extra=3):
    """A (3H, extra) array whose gate block g is filled with the code of g's name."""
    return np.concatenate([np.full((H, extra), ord(g), float) for g in order])


def test_table_states_the_known_orders():
    assert ORDER["gru"] == reference.GATES == ("r", "z", "n")
    assert ORDER["torch"] == ("r", "z", "n")
    assert ORDER["keras"] == ORDER["onnx"] == ("z", "r", "n")


@pytest.mark.parametrize(("source", "target"), list(itertools.permutations(ORDER, 2)))
def test_reorder_moves_each_block_to_its_gate_and_back(source, target):
    a = blocks(ORDER[source])
    moved = reorder(a, source, target)
    np.testing.assert_array_equal(moved, blocks(ORDER[target]))
    np.testing.assert_array_equal(reorder(moved, target, source), a)


def test_reorder_along_another_axis():
    a = np.arange(2 * 6).reshape(2, 6)  # (I, 3H) with H = 2, as a Keras kernel
    out = reorder(a, "keras", "gru", axis=1)
    np.testing.assert_array_equal(out, a[:, [2, 3, 0, 1, 4, 5]])


def test_reorder_refuses_unknown_frameworks_and_sizes():
    with pytest.raises(ValueError, match=r"reorder: source and target must be among .*got 'tf'"):
        reorder(np.zeros(6), "tf", "gru")
    with pytest.raises(
        ValueError,
        match=r"reorder: axis 0 must hold three gate blocks .*got size 4 in shape \(4, 2\)",
    ):
        reorder(np.zeros((4, 2)), "keras", "gru")


def test_gru_from_packed_builds_the_layer_and_checks_every_shape():
    rng = np.random.default_rng(0)
    H, I = 2, 3
    weights = [(rng.normal(size=(3 * H, I)), rng.normal(size=(3 * H, H)), None, None)]
    layer = gru_from_packed(
        weights,
        input_size=I,
        hidden_size=H,
        num_layers=1,
        bias=False,
        batch_first=True,
        bidirectional=False,
        reset_after=False,
        dtype=torch.float64,
    )
    assert layer.extra_repr() == "3, 2, bias=False, batch_first=True, reset_after=False"
    np.testing.assert_array_equal(layer.weight_hh_l0.detach().numpy(), weights[0][1])
    assert layer.weight_ih_l0.requires_grad and layer.weight_ih_l0.device.type == "cpu"
    config = dict(
        input_size=I,
        hidden_size=H,
        num_layers=1,
        bias=False,
        batch_first=False,
        bidirectional=False,
        reset_after=True,
        dtype=torch.float32,
    )
    with pytest.raises(
        ValueError, match=r"gru_from_packed: weight_hh_l0 must have shape \(6, 2\), got \(6, 3\)"
    ):
        gru_from_packed([(weights[0][0], np.zeros((3 * H, 3)), None, None)], **config)
    with pytest.raises(
        ValueError, match=r"gru_from_packed: expected 2 \(layer, direction\) weight tuples, got 1"
    ):
        gru_from_packed(weights, **{**config, "bidirectional": True})
