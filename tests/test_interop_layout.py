"""gru.interop.layout: the gate-order table, the one function that applies it, and each
framework's packing converted to and from ours."""

import itertools

import numpy as np
import pytest
import torch

from gru import GRU, reference
from gru.interop.layout import (
    ORDER,
    gru_from_packed,
    keras_to_packed,
    onnx_to_packed,
    packed_to_keras,
    packed_to_onnx,
    packed_weights,
    reorder,
)


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
    layer = gru_from_packed(
        weights, **{**config, "batch_first": True, "reset_after": False, "dtype": torch.float64}
    )
    assert layer.extra_repr() == "3, 2, bias=False, batch_first=True, reset_after=False"
    np.testing.assert_array_equal(layer.weight_hh_l0.detach().numpy(), weights[0][1])
    assert layer.weight_ih_l0.requires_grad and layer.weight_ih_l0.device.type == "cpu"
    with pytest.raises(
        ValueError, match=r"gru_from_packed: weight_hh_l0 must have shape \(6, 2\), got \(6, 3\)"
    ):
        gru_from_packed([(weights[0][0], np.zeros((3 * H, 3)), None, None)], **config)
    with pytest.raises(
        ValueError, match=r"gru_from_packed: expected 2 \(layer, direction\) weight tuples, got 1"
    ):
        gru_from_packed(weights, **{**config, "bidirectional": True})


def packed_tuples(D, *, bias, H=2, I=3, seed=0):
    """D random packed (w_ih (3H, I), w_hh (3H, H), b_ih, b_hh) tuples, biases None without."""
    rng = np.random.default_rng(seed)
    return [
        (
            rng.normal(size=(3 * H, I)),
            rng.normal(size=(3 * H, H)),
            rng.normal(size=3 * H) if bias else None,
            rng.normal(size=3 * H) if bias else None,
        )
        for _ in range(D)
    ]


def assert_same_tuples(got, expected):
    """The same packed tuples, array for array (None where there is no bias)."""
    assert len(got) == len(expected)
    for got_tuple, expected_tuple in zip(got, expected, strict=True):
        for a, b in zip(got_tuple, expected_tuple, strict=True):
            assert (a is None and b is None) or np.array_equal(a, b)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("D", [1, 2])
def test_onnx_packing_round_trips_and_puts_each_gate_in_its_place(D, bias):
    directions = packed_tuples(D, bias=bias)
    W, R, B = packed_to_onnx(directions)
    assert W.shape == (D, 6, 3) and R.shape == (D, 6, 2)
    assert (B.shape == (D, 12)) if bias else (B is None)
    for d, (w_ih, w_hh, b_ih, b_hh) in enumerate(directions):
        np.testing.assert_array_equal(W[d], reorder(w_ih, "gru", "onnx"))
        np.testing.assert_array_equal(R[d], reorder(w_hh, "gru", "onnx"))
        if bias:  # B = [Wb | Rb]
            np.testing.assert_array_equal(B[d, :6], reorder(b_ih, "gru", "onnx"))
            np.testing.assert_array_equal(B[d, 6:], reorder(b_hh, "gru", "onnx"))
    assert_same_tuples(onnx_to_packed(W, R, B), directions)


@pytest.mark.parametrize("bias", [True, False])
def test_packed_weights_and_gru_from_packed_are_inverses(bias):
    torch.manual_seed(0)
    layer = GRU(3, 2, num_layers=2, bias=bias, bidirectional=True, dtype=torch.float64)
    packed = packed_weights(layer)  # L·D = 4 tuples
    assert len(packed) == 4 and all((b_hh is None) == (not bias) for *_, b_hh in packed)
    keys = ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "bidirectional")
    config = {key: getattr(layer, key) for key in keys}
    again = gru_from_packed(packed, **config, reset_after=True, dtype=torch.float64)
    for name, parameter in layer.named_parameters():
        assert torch.equal(getattr(again, name), parameter), name


def test_packed_to_keras_inverts_keras_to_packed():
    I, H = 4, 5
    rng = np.random.default_rng(0)
    kernel, recurrent, bias = (
        rng.normal(size=(I, 3 * H)),
        rng.normal(size=(H, 3 * H)),
        rng.normal(size=(2, 3 * H)),
    )
    back = packed_to_keras(
        *keras_to_packed(kernel, recurrent, bias, reset_after=True), reset_after=True
    )
    for a, b in zip(back, (kernel, recurrent, bias), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(
        ValueError,
        match=r"keras_to_packed: kernel must have shape \(I, 3H\) = \(I, 15\) to fit recurrent_kernel \(5, 15\), got \(4, 12\)",
    ):
        keras_to_packed(kernel[:, :12], recurrent, bias, reset_after=True)
    with pytest.raises(
        ValueError,
        match=r"keras_to_packed: recurrent_kernel must have shape \(H, 3H\), got \(5, 20\); is this a GRU's weights\?",
    ):
        keras_to_packed(kernel, rng.normal(size=(H, 4 * H)), None, reset_after=True)
    with pytest.raises(
        ValueError,
        match=r"packed_to_keras: w_ih must have shape \(3H, I\) = \(15, I\), got \(4, 15\)",
    ):
        packed_to_keras(kernel, recurrent.T, reset_after=True)
