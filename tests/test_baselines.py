"""gru.tasks.baselines: each baseline on hand-made data whose answer is known."""

import numpy as np
import pytest
import torch

from checks import assert_close
from gru.data import timeseries
from gru.tasks.baselines import (
    LinearBaseline,
    dtw,
    forecast_baselines,
    majority_class,
    most_frequent,
    nearest_neighbour,
    ngram_loss,
    persistence,
    pooled_frames,
    rolling_zscore,
    rolling_zscore_part,
    seasonal_naive,
    training_mean,
)

# --- forecasting ---------------------------------------------------------------------------------


def test_persistence_and_seasonal_naive_on_a_hand_made_window():
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]).unsqueeze(-1)  # (1, W=6, 1)
    assert persistence(x, 4)[0, :, 0].tolist() == [6.0, 6.0, 6.0, 6.0]
    # The last season (3 steps: 4, 5, 6) repeated over 7 steps.
    assert seasonal_naive(x, 7, 3)[0, :, 0].tolist() == [4.0, 5.0, 6.0, 4.0, 5.0, 6.0, 4.0]
    assert seasonal_naive(x, 2, 6)[0, :, 0].tolist() == [1.0, 2.0]
    two = torch.stack([x[..., 0], 10 * x[..., 0]], dim=-1)  # (1, 6, 2): each channel its own
    assert seasonal_naive(two, 2, 2)[0].tolist() == [[5.0, 50.0], [6.0, 60.0]]
    with pytest.raises(
        ValueError, match=r"seasonal_naive: season must be between 1 and W=6, got 7"
    ):
        seasonal_naive(x, 3, 7)


@pytest.mark.parametrize("shared_map", [True, False])
def test_the_linear_baseline_recovers_an_exactly_linear_series(shared_map):
    # Two channels, each a straight line: the next F values are a linear function of the window.
    t = torch.arange(200, dtype=torch.float64)
    values = torch.stack([0.05 * t - 3.0, -0.02 * t + 1.0], dim=1).float()  # (T, 2)
    W, F = 8, 4
    outputs = [0, 1] if shared_map else [1]
    x, y = timeseries.windows(values, (0, 150), W, F, [0, 1], outputs)
    linear = LinearBaseline(shared=shared_map).fit(x, y)
    test_x, test_y = timeseries.windows(values, (150, 200), W, F, [0, 1], outputs)
    pred = linear(test_x.all(), F, len(outputs))
    # The ridge of 1e-6 of the mean diagonal leaves an error far below float32's resolution
    # of these values (|x| ≤ 7); the forecast is cast to float32.
    assert_close(pred, test_y.all(), scale=10, what="linear forecast")


def test_forecast_baselines_are_each_baseline_on_the_forecast_channels():
    t = torch.arange(120, dtype=torch.float64)
    values = torch.stack([torch.sin(t / 3), 0.1 * t], dim=1).float()  # (T, 2)
    train = timeseries.windows(values, (0, 90), 12, 4, [0, 1], [1])
    x = timeseries.windows(values, (90, 120), 12, 4, [0, 1], [1])[0].all()  # (N, 12, 2)
    found = forecast_baselines(train, x, [1], 4, 6, shared=False)
    assert torch.equal(found["persistence"], persistence(x[:, :, [1]], 4))
    assert torch.equal(found["seasonal_naive"], seasonal_naive(x[:, :, [1]], 4, 6))
    linear = LinearBaseline(shared=False).fit(*train)
    assert torch.equal(found["linear"], linear(x, 4, 1))
    assert forecast_baselines(train, x, [1], 4, None, shared=False)["seasonal_naive"] is None


# --- anomaly detection ---------------------------------------------------------------------------


def test_rolling_zscore_on_a_hand_made_series():
    x = np.array([1.0, 3.0, 1.0, 3.0, 10.0, 2.0])
    z = rolling_zscore(x, 4)
    assert np.isnan(z[:4]).all()
    assert z[4] == pytest.approx((10 - 2) / 1)  # mean 2, std 1 of [1, 3, 1, 3]
    window = np.array([3.0, 1.0, 3.0, 10.0])
    assert z[5] == pytest.approx((2 - window.mean()) / window.std())
    flat = rolling_zscore(np.array([5.0, 5.0, 5.0, 6.0, 5.0, 9.0]), 3)
    assert np.isfinite(flat[3:]).all()  # a flat window borrows the smallest positive std


def test_the_rolling_zscore_of_a_part_reads_the_window_before_it():
    x = np.array([1.0, 3.0, 1.0, 3.0, 10.0, 2.0, 4.0])
    np.testing.assert_array_equal(rolling_zscore_part(x, (4, 7), 4), rolling_zscore(x, 4)[4:])
    planted = np.array([0.0, 2.0, 9.0])  # the part with other values in it
    whole = rolling_zscore(np.concatenate([x[:4], planted]), 4)[4:]
    np.testing.assert_array_equal(rolling_zscore_part(x, (4, 7), 4, planted), whole)


# --- classification, regression, language models -------------------------------------------------


def test_the_majority_class_on_hand_made_labels():
    scores = majority_class(np.array([1, 1, 0, 1]), np.array([1, 0, 0, 1, 1]))  # prior 0.75
    assert scores["accuracy"] == pytest.approx(3 / 5)  # always "positive"
    expected = -(3 * np.log(0.75) + 2 * np.log(0.25)) / 5
    assert scores["loss"] == pytest.approx(expected, rel=1e-12)


def test_the_training_mean_predicts_the_targets_level():
    guess = training_mean(torch.tensor([1.0, 2.0, 6.0]), torch.zeros(4))
    assert guess.tolist() == [3.0, 3.0, 3.0, 3.0]


def test_the_ngram_baselines_on_a_hand_made_text():
    train = torch.tensor([0, 1, 0, 1, 0, 2])  # "abab ac": a 3 times, b 2, c 1; ab 2, ba 2, ac 1
    context, target = torch.tensor([0, 1, 0]), torch.tensor([1, 0, 2])  # a→b, b→a, a→c
    assert ngram_loss(train, context, target, 4, 0) == pytest.approx(np.log(4))
    unigram = -np.mean(np.log([(2 + 1) / 10, (3 + 1) / 10, (1 + 1) / 10]))  # (count + 1) / (6 + 4)
    assert ngram_loss(train, context, target, 4, 1) == pytest.approx(unigram, rel=1e-12)
    bigram = -np.mean(np.log([(2 + 1) / (3 + 4), (2 + 1) / (2 + 4), (1 + 1) / (3 + 4)]))
    assert ngram_loss(train, context, target, 4, 2) == pytest.approx(bigram, rel=1e-12)
    with pytest.raises(ValueError, match=r"ngram_loss: n must be 0, 1 or 2, got 3"):
        ngram_loss(train, context, target, 4, 3)


def _dtw_by_recursion(a, b):
    """DTW as its definition says: the cheapest of the three predecessors, recursively."""
    from functools import cache

    @cache
    def cost(i, j):
        here = float(np.sum((a[i] - b[j]) ** 2))
        if i == 0 and j == 0:
            return here
        before = [cost(i - 1, j) if i else np.inf, cost(i, j - 1) if j else np.inf]
        before.append(cost(i - 1, j - 1) if i and j else np.inf)
        return here + min(before)

    return cost(len(a) - 1, len(b) - 1)


def test_dtw_is_its_definition_and_warps_a_stretched_copy_to_zero():
    rng = np.random.default_rng(0)
    for Ta, Tb in ((1, 1), (3, 7), (9, 4), (6, 6)):
        a, b = rng.normal(size=(Ta, 2)), rng.normal(size=(Tb, 2))
        assert dtw(a, b) == pytest.approx(_dtw_by_recursion(a, b), rel=1e-12)
        assert dtw(a, b) == pytest.approx(dtw(b, a), rel=1e-12)
    x = rng.normal(size=(5, 3))
    assert dtw(x, np.repeat(x, 2, axis=0)) == 0.0  # every step twice: the same sequence


def test_one_nearest_neighbour_and_the_most_frequent_class():
    train = [np.zeros((4, 1)), np.ones((6, 1)), np.full((3, 1), 5.0)]
    labels = np.array(["low", "mid", "high"])
    test = [np.full((2, 1), 0.9), np.full((8, 1), 4.0), np.zeros((1, 1))]
    assert nearest_neighbour(train, labels, test).tolist() == ["mid", "high", "low"]
    found = most_frequent(np.array(["b", "a", "b"]), np.array(["b", "a", "a", "b"]))
    assert found == {"accuracy": 0.5, "loss": pytest.approx(-np.log([2 / 3, 1 / 3]).mean())}


def test_most_frequent_and_pooled_frames_score_words_without_recurrence():
    assert most_frequent(np.array([2, 2, 1]), np.array([2, 1, 2, 0]))["accuracy"] == 0.5
    generator = np.random.default_rng(0)
    # class k: frames around level k, so the mean over time separates the classes
    frames = [generator.normal(k, 0.1, (int(generator.integers(5, 20)), 3)) for k in (0, 1, 2) * 20]
    labels = np.array([0, 1, 2] * 20)
    scores = pooled_frames(frames[:45], labels[:45], frames[45:], labels[45:])
    assert scores["accuracy"] == 1.0 and 0 < scores["loss"] < 0.5
