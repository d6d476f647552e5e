"""gru.models: the text classifier on gru.GRU equals it on torch.nn.GRU, and ignores padding."""

import pytest
import torch

from checks import assert_close
from gru.models import SequenceRegressor, TextClassifier


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
