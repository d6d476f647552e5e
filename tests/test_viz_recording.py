"""gru.viz.recording: the recorded gates are the oracle's intermediate values, read from the model."""

import numpy as np
import pytest
import torch

import gru
from checks import assert_close, layer_weights, reference_stack, reverse_padded
from gru.viz import record_gates


def _reference(module, x_tm, h0, lengths):
    D = 2 if module.bidirectional else 1
    weights = [layer_weights(module, i) for i in range(module.num_layers * D)]
    return reference_stack(
        x_tm, h0, weights, num_layers=module.num_layers, bidirectional=module.bidirectional,
        reset_after=getattr(module, "reset_after", True), lengths=lengths,
    )  # fmt: skip


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("with_lengths", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_recording_equals_the_reference_cache(
    reset_after, num_layers, bidirectional, with_lengths, batch_first
):
    torch.manual_seed(0)
    T, B, I, H = 7, 3, 5, 4
    module = gru.GRU(
        I,
        H,
        num_layers,
        bidirectional=bidirectional,
        reset_after=reset_after,
        batch_first=batch_first,
    ).double()
    D = 2 if bidirectional else 1
    x_tm = np.random.default_rng(1).normal(size=(T, B, I))
    h0 = np.random.default_rng(2).normal(size=(num_layers * D, B, H))
    lengths = np.array([7, 2, 5]) if with_lengths else None
    x = x_tm.transpose(1, 0, 2) if batch_first else x_tm
    recording = record_gates(module, torch.from_numpy(x), torch.from_numpy(h0), lengths=lengths)

    output, h_n, caches = _reference(module, x_tm, h0, lengths)
    assert recording.reset_after is reset_after and len(recording.layers) == num_layers
    for layer in range(num_layers):
        assert [g.direction for g in recording.layers[layer]] == list(range(D))
        for d in range(D):
            gates, cache = recording.layers[layer][d], caches[layer * D + d]
            assert gates.layer == layer
            # The reference ran the reverse direction on the reversed input; the recording is
            # in the input's time order.
            order = (lambda a: reverse_padded(a, lengths)) if d == 1 else (lambda a: a)
            for name, expected in (
                ("r", cache.r),
                ("z", cache.z),
                ("n", cache.n),
                ("h", cache.h[1:]),
            ):
                assert_close(
                    order(getattr(gates, name)), expected, np.float64, what=f"{name} l{layer} d{d}"
                )
    assert_close(recording.output, output, np.float64, what="output")
    assert_close(recording.h_n, h_n, np.float64, what="h_n")
    # And the module itself computes the same (the engine, not the oracle).
    out, hn = module(
        torch.from_numpy(x),
        torch.from_numpy(h0),
        lengths=None if lengths is None else torch.from_numpy(lengths),
    )
    out = out.detach().numpy()
    assert_close(
        recording.output,
        out.transpose(1, 0, 2) if batch_first else out,
        np.float64,
        what="module output",
    )
    assert_close(recording.h_n, hn, torch.float64, what="module h_n")


def test_a_float32_torch_gru_is_recorded_in_float64_from_its_own_weights():
    torch.manual_seed(0)
    module = torch.nn.GRU(6, 8, 2, bidirectional=True, batch_first=True)  # float32
    x = torch.randn(2, 9, 6)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    module.train()
    recording = record_gates(module, x)
    assert module.training  # the module is only read: no change of mode or weights
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
    out, h_n = module(x)
    assert recording.output.dtype == np.float64
    assert_close(
        recording.output, out.detach().numpy().transpose(1, 0, 2), torch.float32, what="output"
    )
    assert_close(recording.h_n, h_n, torch.float32, what="h_n")
    # h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}: the recorded parts recombine into the recorded state.
    g = recording.layers[0][0]
    h_prev = np.concatenate([np.zeros((1, *g.h.shape[1:])), g.h[:-1]])
    assert_close((1 - g.z) * g.n + g.z * h_prev, g.h, np.float64, what="update equation")


def test_one_sequence_gives_arrays_without_a_batch_axis():
    torch.manual_seed(0)
    module = gru.GRU(3, 5, 2, bidirectional=True)
    x = torch.randn(6, 3)
    recording = record_gates(module, x)
    batched = record_gates(module, x[:, None])
    for ds, ds_b in zip(recording.layers, batched.layers, strict=True):
        for g, g_b in zip(ds, ds_b, strict=True):
            assert g.r.shape == (6, 5)
            np.testing.assert_array_equal(g.z, g_b.z[:, 0])
    assert recording.output.shape == (6, 10) and recording.h_n.shape == (4, 5)
    top = recording.top
    np.testing.assert_allclose(
        recording.unit_mean("z"), (top[0].z.mean(-1) + top[1].z.mean(-1)) / 2
    )
    np.testing.assert_allclose(
        recording.unit_mean("r", layer=0),
        np.concatenate([g.r for g in recording.layers[0]], -1).mean(-1),
    )


def test_bad_arguments_are_named():
    module = gru.GRU(3, 4)
    with pytest.raises(
        ValueError,
        match=r"x must be \(T, I\), \(T, B, I\) or \(B, T, I\) with batch_first, I = input_size = 3 and T ≥ 1, got shape \(5, 2, 4\)",
    ):
        record_gates(module, np.zeros((5, 2, 4)))
    with pytest.raises(TypeError, match=r"rnn must be a GRU, got a torch.nn.LSTM"):
        record_gates(torch.nn.LSTM(3, 4), np.zeros((5, 3)))
    with pytest.raises(TypeError, match=r"rnn must be a gru.GRU or torch.nn.GRU, got Linear"):
        record_gates(torch.nn.Linear(3, 4), np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"every length must be in \[1, T = 5\], got \[0, 5\]"):
        record_gates(module, np.zeros((5, 2, 3)), lengths=[0, 5])
    with pytest.raises(ValueError, match=r"h0 must have shape \(1, 2, 4\), got \(1, 2, 3\)"):
        record_gates(module, np.zeros((5, 2, 3)), np.zeros((1, 2, 3)))
    with pytest.raises(
        ValueError,
        match=r"this GRU uses a variant \(layer_norm, zoneout or recurrent_dropout\) whose equations the recording does not compute",
    ):
        record_gates(gru.GRU(3, 4, zoneout=0.1), np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"gate must be r, z, n or h, got 'q'"):
        record_gates(module, np.zeros((5, 3))).unit_mean("q")
