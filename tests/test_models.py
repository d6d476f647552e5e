"""gru.models: the text classifier on gru.GRU equals it on torch.nn.GRU, and ignores padding;
the forecasters' shapes and channel independence; models on any layer factory; batched
prediction."""

from functools import partial

import pytest
import torch

from checks import assert_close
from gru.models import (
    CharLM,
    GRUForecaster,
    SegRNN,
    SequenceRegressor,
    TextClassifier,
    batched_predict,
    final_state,
    forecaster,
    gru_layer,
)
from gru.nn import GRU, MinGRU


def pair(**options):
    """The same classifier on gru.GRU and on torch.nn.GRU, with the same weights."""
    torch.manual_seed(0)
    ours = TextClassifier(50, 6, 5, **options)
    theirs = TextClassifier(50, 6, 5, torch_layer=True, **options)
    theirs.load_state_dict(ours.state_dict())
    return ours.eval(), theirs.eval()


def batch():
    generator = torch.Generator().manual_seed(1)
    lengths = torch.tensor([7, 3, 1, 5])
    x = torch.randint(1, 50, (4, 9), generator=generator)
    x[torch.arange(9) >= lengths.unsqueeze(1)] = 0  # post-padding
    return x, lengths


@pytest.mark.parametrize("features", ["last", "pool"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_gru_layer_and_torch_layer_give_the_same_logits(features, bidirectional, with_lengths):
    ours, theirs = pair(features=features, bidirectional=bidirectional, num_layers=2)
    x, lengths = batch()
    lengths = lengths if with_lengths else None
    assert_close(ours(x, lengths), theirs(x, lengths), what="logits")


@pytest.mark.parametrize("torch_layer", [False, True])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_with_lengths_padding_changes_nothing(torch_layer, bidirectional):
    torch.manual_seed(0)
    model = TextClassifier(
        50, 6, 5, features="pool", bidirectional=bidirectional, torch_layer=torch_layer
    ).eval()
    x, lengths = batch()
    together = model(x, lengths)
    for b in range(4):
        alone = model(x[b : b + 1, : lengths[b]], lengths[b : b + 1])
        assert_close(together[b : b + 1], alone, what=f"review {b}")


def test_keras_initialization():
    torch.manual_seed(0)
    model = TextClassifier(1000, 32, 16).keras_init_()
    assert model.embedding.weight.abs().max() <= 0.05
    w_ih, w_hh = model.rnn.weight_ih_l0, model.rnn.weight_hh_l0  # (48, 32), (48, 16)
    assert w_ih.abs().max() <= (6 / (32 + 48)) ** 0.5  # Glorot uniform's limit
    assert_close(w_hh.T @ w_hh, torch.eye(16), scale=10, what="orthonormal columns")  # float32 QR
    assert torch.all(model.rnn.bias_ih_l0 == 0) and torch.all(model.rnn.bias_hh_l0 == 0)
    assert torch.all(model.head.bias == 0)


def test_probabilities_and_bad_options():
    torch.manual_seed(0)
    model = TextClassifier(50, 4, 3)
    x, _ = batch()
    assert_close(model.probabilities(x), torch.sigmoid(model(x)))
    with pytest.raises(ValueError, match=r"features must be one of \('last', 'pool'\), got 'mean'"):
        TextClassifier(50, 4, 3, features="mean")
    with pytest.raises(ValueError, match=r"torch_layer=True computes only reset_after=True"):
        TextClassifier(50, 4, 3, torch_layer=True, reset_after=False)


def test_sequence_regressor_reads_the_last_state():
    torch.manual_seed(0)
    model = SequenceRegressor(2, 4)
    x = torch.randn(3, 6, 2)
    _, h_n = model.rnn(x)
    assert_close(model(x), model.head(h_n[-1]).squeeze(-1))


# --- forecasters ---------------------------------------------------------------------------------


def test_model_shapes():
    x = torch.randn(5, 24, 3)  # (B, W, C)
    assert GRUForecaster(3, 7, 6)(x).shape == (5, 7, 3)
    assert GRUForecaster(3, 7, 6, targets=[2], num_layers=2)(x).shape == (5, 7, 1)
    segrnn = SegRNN(3, 24, 10, segment=6, d_model=8)
    assert (segrnn.n_in, segrnn.n_out) == (4, 2)  # 10 steps in ⌈10 / 6⌉ = 2 segments
    assert segrnn(x).shape == (5, 10, 3)
    assert SegRNN(3, 26, 12, segment=6, d_model=8, targets=[0, 2])(torch.randn(2, 26, 3)).shape == (
        2,
        12,
        2,
    )
    with pytest.raises(ValueError, match=r"SegRNN: d_model must be an even int ≥ 2, got 7"):
        SegRNN(3, 24, 10, segment=6, d_model=7)
    with pytest.raises(
        ValueError, match=r"SegRNN: segment must be between 1 and lookback=24, got 25"
    ):
        SegRNN(3, 24, 10, segment=25, d_model=8)


def test_segrnn_treats_every_channel_alike_and_apart():
    torch.manual_seed(0)
    model = SegRNN(3, 24, 12, segment=6, d_model=8).eval()
    x = torch.randn(4, 24, 3)
    with torch.no_grad():
        y = model(x)
        # Independence: changing channel 2's input changes channel 2's forecast only.
        changed = x.clone()
        changed[:, :, 2] += torch.randn(4, 24)
        z = model(changed)
        assert torch.equal(z[:, :, :2], y[:, :, :2]) and not torch.equal(z[:, :, 2], y[:, :, 2])
        # Shared weights: with the same channel embedding, channels are interchangeable.
        model.channel_emb[1] = model.channel_emb[0]
        y = model(x)
        swapped = model(x[:, :, [1, 0, 2]])
    assert_close(swapped, y[:, :, [1, 0, 2]], what="channels 0 and 1 swapped")


def test_the_plain_gru_forecaster_reads_the_window_relative_to_its_last_value():
    torch.manual_seed(0)
    model = GRUForecaster(2, 5, 6).eval()
    x = torch.randn(3, 10, 2)
    with torch.no_grad():
        shifted = model(x + torch.tensor([4.0, -2.0]))  # every value moved by a constant
        assert_close(shifted, model(x) + torch.tensor([4.0, -2.0]), what="shift")


def test_a_forecaster_by_name():
    torch.manual_seed(0)
    segrnn = forecaster("segrnn", 3, 24, 10, 8, segment=6, targets=[1])
    assert isinstance(segrnn, SegRNN) and (segrnn.segment, segrnn.targets) == (6, [1])
    gru_model = forecaster("gru", 3, 24, 10, 8, num_layers=2)
    assert isinstance(gru_model, GRUForecaster) and gru_model.rnn.num_layers == 2
    with pytest.raises(ValueError, match=r"forecaster: name must be one of \('segrnn', 'gru'\)"):
        forecaster("lstm", 3, 24, 10, 8)


# --- layer factories -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layer",
    [partial(torch.nn.LSTM, batch_first=True), partial(torch.nn.RNN, batch_first=True),
     partial(MinGRU, batch_first=True), gru_layer(layer_norm=True)],
)  # fmt: skip
def test_every_model_reads_the_last_state_of_any_layer(layer):
    torch.manual_seed(0)
    x = torch.randn(3, 7, 2)
    regressor = SequenceRegressor(2, 5, layer=layer)
    out, state = regressor.rnn(x)
    assert_close(regressor(x), regressor.head(out[:, -1]).squeeze(-1), what="regressor")
    assert_close(final_state(state)[-1], out[:, -1], what="final state")
    model = GRUForecaster(2, 4, 5, layer=layer)
    assert model(x).shape == (3, 4, 2)
    classifier = TextClassifier(20, 4, 5, layer=layer)
    assert classifier(torch.randint(1, 20, (3, 9))).shape == (3,)
    lm = CharLM(11, 3, 5, 1, layer=layer)
    logits, _ = lm(torch.randint(0, 11, (2, 6)))
    assert logits.shape == (2, 6, 11)


def test_the_default_layer_is_gru_with_the_models_options():
    model = TextClassifier(20, 4, 5, num_layers=2, bidirectional=True, reset_after=False)
    assert isinstance(model.rnn, GRU) and model.rnn.batch_first and model.rnn.bidirectional
    assert model.rnn.num_layers == 2 and not model.rnn.reset_after
    assert isinstance(TextClassifier(20, 4, 5, torch_layer=True).rnn, torch.nn.GRU)


def test_batched_prediction_equals_one_call_in_eval_mode():
    torch.manual_seed(0)
    model = TextClassifier(30, 4, 5, features="pool", dropout=0.5)
    x, lengths = torch.randint(1, 30, (7, 9)), torch.tensor([9, 2, 5, 9, 1, 3, 7])
    model.train()
    order = torch.argsort(lengths)
    out = batched_predict(model, x, lengths, batch_size=3, order=order)
    assert model.training  # the mode it was in
    model.eval()
    with torch.no_grad():
        assert_close(out, model(x, lengths), what="batched")
    assert batched_predict(model, x[:0], lengths[:0]).shape == (0,)


def test_out_of_memory_errors_say_how_much_was_asked_for():
    from gru.models import build, out_of_memory

    cpu = RuntimeError(
        "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
        "memory: you tried to allocate 1200000000000000 bytes. Error code 12"
    )
    assert out_of_memory(cpu) == "1.07 PiB"
    assert out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")) == "20.00 GiB"  # fmt: skip
    assert out_of_memory(MemoryError("Unable to allocate 7.28 TiB for an array")) == "7.28 TiB"
    assert out_of_memory(MemoryError()) == ""
    assert out_of_memory(RuntimeError("shapes do not match")) is None
    assert out_of_memory(ValueError("can't allocate memory")) is None

    def too_big():
        raise cpu

    with pytest.raises(ValueError, match=r"^Task: the model does not fit in memory: building it failed \(an allocation of 1\.07 PiB\); try a smaller width$"):  # fmt: skip
        build(too_big, "Task", "width")
    with pytest.raises(RuntimeError, match="shapes"):  # any other error is left as it is
        build(lambda: (_ for _ in ()).throw(RuntimeError("shapes")), "Task", "width")
