"""gru.viz.labels: the one table of the words a reader sees for a run's keys."""

import pytest

from gru.viz.labels import HEADLINE, better, duration, label


def test_metrics_settings_and_baselines_read_as_words():
    assert label("mae_original") == "MAE in the target's units"
    assert label("event_f1") == "event F1"
    assert label("val_mae_original") == "validation MAE in the target's units"
    assert label("test_mse") == "test MSE"
    assert label("train.lr") == "learning rate"
    assert label("seasonal_naive") == "seasonal naive"
    assert label("rolling_zscore") == "rolling z-score"
    assert label("some_new_key") == "some new key"  # unknown keys are shown, never dropped
    assert label("split.test") == "test rows"


def test_every_headline_metric_says_which_way_is_better():
    assert {task: better(metric) for task, metric in HEADLINE.items()} == {
        "adding": "lower", "sentiment": "higher", "forecast": "lower", "textgen": "lower",
        "anomaly": "higher", "music": "lower", "translate": "higher",
    }  # fmt: skip
    assert better("alarms") is None and better("unknown") is None


@pytest.mark.parametrize(
    "seconds, text",
    [(0.0, "0 s"), (0.004, "under 0.01 s"), (0.0648, "0.06 s"), (3.14159, "3.1 s"),
     (42.4, "42 s"), (725.0, "12 min 5 s")],
)  # fmt: skip
def test_times_are_rounded_for_a_reader(seconds, text):
    assert duration(seconds) == text
