"""gru.tasks.evaluation: planting anomalies, the scores of forecasts, classifiers and
detectors on hand-made examples, and the tables report.html shows."""

import itertools

import numpy as np
import pytest
import torch

from gru.tasks.evaluation import (
    accuracy,
    alarm_table,
    binary_scores,
    class_scores,
    detection_scores,
    edit_distance,
    forecast_scores,
    forecast_table,
    headline,
    inject_anomalies,
    plant_anomalies,
    planted_table,
    quantile_threshold,
    recall_by_kind,
    true_runs,
)

# --- planted anomalies ---------------------------------------------------------------------------


def test_planted_anomalies_keep_their_margins_and_labels():
    x = 100 + np.sin(np.arange(2000) / 5)
    out, labels, events = inject_anomalies(x, 9, rng=np.random.default_rng(0), margin=30)
    assert len(events) == 9
    assert sorted(e["kind"] for e in events) == ["dropout"] * 3 + ["level_shift"] * 3 + ["spike"] * 3  # fmt: skip
    expected = np.zeros(2000, bool)
    for e in events:
        expected[e["start"] : e["end"]] = True
        assert e["start"] >= 30 and e["end"] + 30 <= 2000
        if e["kind"] == "dropout":
            assert (out[e["start"] : e["end"]] == 0).all()
        elif e["kind"] == "spike":
            assert e["end"] - e["start"] == 1
    np.testing.assert_array_equal(labels, expected)
    np.testing.assert_array_equal(out[~labels], x[~labels])  # nothing else changed
    gaps = [b["start"] - a["end"] for a, b in itertools.pairwise(events)]
    assert min(gaps) >= 30


def test_planting_as_many_as_fit_is_a_prefix_of_the_same_seed():
    x = 50 + np.sin(np.arange(300) / 3)
    with pytest.raises(
        ValueError, match=r"no room for 20 anomalies 30 points apart in 300 points \(only \d+ fit\)"
    ):
        inject_anomalies(x, 20, rng=np.random.default_rng(1), margin=30)
    _, _, some = inject_anomalies(x, 20, rng=np.random.default_rng(1), margin=30, allow_fewer=True)
    assert 1 <= len(some) < 20
    _, _, fewer = inject_anomalies(x, len(some), rng=np.random.default_rng(1), margin=30)
    assert fewer == some


def test_a_drop_to_zero_is_planted_only_where_the_series_is_far_from_zero():
    x = np.concatenate([np.zeros(500), 1000 + np.sin(np.arange(500))])  # zero, then high
    _, _, events = inject_anomalies(
        x, 3, rng=np.random.default_rng(0), kinds=("dropout",), margin=20
    )
    assert all(e["start"] >= 500 for e in events)


def test_planting_asked_for_more_than_fit_names_the_option_and_the_room():
    x = 50 + np.sin(np.arange(300) / 3)
    with pytest.raises(ValueError, match=r"anomalies \(--anomalies\): 20 anomalies do not fit"):
        plant_anomalies(x, 20, seed=1, magnitude=6.0, lookback=30, baseline_window=20, source="x")
    _, _, some = plant_anomalies(
        x, None, seed=1, magnitude=6.0, lookback=30, baseline_window=20, source="x"
    )
    assert 1 <= len(some) < 15  # None: as many as fit, at most 15
    with pytest.raises(ValueError, match=r"has no room for one planted anomaly"):
        plant_anomalies(
            x[:50], None, seed=1, magnitude=6.0, lookback=30, baseline_window=20, source="x"
        )


# --- scores --------------------------------------------------------------------------------------


def test_precision_recall_and_f1_on_a_hand_made_example():
    labels = np.zeros(20, bool)
    labels[[3, 4, 5, 12]] = True  # a run of 3 and a spike
    events = [{"start": 3, "end": 6}, {"start": 12, "end": 13}]
    flags = np.zeros(20, bool)
    flags[[4, 5, 8, 9]] = True  # 2 right points, one false alarm of 2 points
    scores = detection_scores(flags, labels, events)
    assert (scores["true_positives"], scores["false_positives"], scores["false_negatives"]) == (2, 2, 2)  # fmt: skip
    assert scores["precision"] == 0.5 and scores["recall"] == 0.5 and scores["f1"] == 0.5
    assert scores["alarms"] == 2 and scores["event_recall"] == 0.5
    assert scores["event_precision"] == 0.5 and scores["event_f1"] == 0.5
    nothing = detection_scores(np.zeros(20, bool), labels, events)
    assert nothing["precision"] == nothing["recall"] == nothing["f1"] == 0.0


def test_runs_of_a_mask_and_recall_by_kind():
    mask = np.array([0, 1, 1, 0, 0, 1, 0, 1, 1, 1], bool)
    assert true_runs(mask) == [(1, 3), (5, 6), (7, 10)]
    assert true_runs(np.zeros(4, bool)) == []
    labels = mask.copy()
    events = [
        {"kind": "spike", "start": 5, "end": 6},
        {"kind": "level_shift", "start": 1, "end": 3},
        {"kind": "level_shift", "start": 7, "end": 10},
    ]
    flags = np.zeros(10, bool)
    flags[[2, 5]] = True
    found = recall_by_kind(events, labels, {"gru": flags, "none": np.zeros(10, bool)})
    assert found == {"spike": {"gru": 1.0, "none": 0.0}, "level_shift": {"gru": 0.5, "none": 0.0}}


def test_the_threshold_is_a_quantile_of_the_finite_scores():
    scores = np.array([np.nan, -4.0, 1.0, 2.0, 3.0])
    assert quantile_threshold(scores, 0.5) == pytest.approx(2.5)  # of |scores|: 1, 2, 3, 4
    assert quantile_threshold(np.array([np.nan]), 0.9) == np.inf


def test_forecast_scores_on_a_hand_made_forecast():
    true = torch.zeros(2, 3, 2)
    pred = torch.ones(2, 3, 2)
    pred[:, :, 1] = -2.0  # errors 1 and 2 in the two columns
    scores = forecast_scores(pred, true, np.array([10.0, 0.5]), ["a", "b"], "b")
    assert scores["mse"] == pytest.approx((1 + 4) / 2) and scores["mae"] == pytest.approx(1.5)
    assert scores["mae_original_by_column"] == {"a": 10.0, "b": 1.0}
    assert scores["mae_original"] == 1.0
    assert headline(scores) == {"mse": 2.5, "mae": 1.5, "mae_original": 1.0}
    assert headline(None) is None


def test_binary_scores_and_accuracy():
    logits, y = torch.tensor([2.0, -1.0, 0.5, -3.0]), torch.tensor([1.0, 1.0, 0.0, 0.0])
    assert accuracy(logits, y).item() == 0.5
    scores = binary_scores(logits, y)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, y).item()
    assert scores == {"loss": expected, "accuracy": 0.5}


# --- tables --------------------------------------------------------------------------------------


def test_the_tables_of_a_detection():
    times = [f"t{i}" for i in range(12)]
    events = [
        {"kind": "spike", "start": 2, "end": 3, "size_sigma": 6.123},
        {"kind": "dropout", "start": 6, "end": 9, "size_sigma": -7.0},
    ]
    flags = np.zeros(12, bool)
    flags[[2, 7, 8, 11]] = True
    scores = np.arange(12.0)
    table = planted_table(events, times, {"gru": flags, "rolling_zscore": np.zeros(12, bool)})
    assert table["rows"] == [["spike", "t2", 1, 6.12, 1, 0], ["dropout", "t6", 3, -7.0, 2, 0]]
    alarms = alarm_table(flags, scores, events, times)
    assert alarms["rows"] == [
        ["t11", 1, 11.0, "none (false alarm)"],
        ["t7", 2, 8.0, "dropout"],
        ["t2", 1, 2.0, "spike"],
    ]
    assert alarm_table(np.zeros(12, bool), scores, events, times)["rows"] == []
    assert "; 1 of 3." in alarm_table(flags, scores, events, times, most=1)["caption"]


def test_the_table_of_forecast_examples():
    example = {"times": [f"t{i}" for i in range(6)], "actual": [1.0, 2.0, 3.0, 4.0]}
    example.update(forecast=[1.5, 2.5, 3.5, 4.5], linear=[0.0, 0.0, 0.0, 0.0])
    table = forecast_table([example], lookback=2, horizon=4, model="gru")
    assert table["columns"] == ["time", "steps ahead", "actual", "gru", "linear"]
    assert table["rows"] == [
        ["t2", 1, 1.0, 1.5, 0.0],
        ["t3", 2, 2.0, 2.5, 0.0],
        ["t5", 4, 4.0, 4.5, 0.0],
    ]


def test_with_no_anomaly_to_find_recall_and_f1_are_not_scores():
    clean = np.zeros(20, bool)
    flags = np.zeros(20, bool)
    flags[[4, 5]] = True  # one false alarm
    scores = detection_scores(flags, clean, [])
    assert scores["recall"] is None and scores["f1"] is None  # 0/0, not 0.0
    assert scores["event_recall"] is None and scores["event_f1"] is None
    assert scores["precision"] == 0.0 and scores["event_precision"] == 0.0  # every alarm false
    assert (scores["alarms"], scores["false_positives"]) == (1, 2)
    quiet = detection_scores(np.zeros(20, bool), clean, [])
    assert quiet["precision"] is None and quiet["alarms"] == 0


def test_class_scores_count_the_confusion_matrix_by_true_and_predicted_class():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 1.0]])
    y = torch.tensor([0, 1, 2, 2])
    scores = class_scores(logits, y)
    assert scores["confusion"] == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    assert scores["accuracy"] == pytest.approx(0.75)
    assert scores["loss"] == pytest.approx(torch.nn.functional.cross_entropy(logits, y).item())


@pytest.mark.parametrize(
    ("truth", "found", "errors"),
    [
        ("123", "123", 0),
        ("123", "13", 1),
        ("123", "1243", 1),
        ("123", "321", 2),
        ("", "12", 2),
        ("12", "", 2),
    ],
)
def test_edit_distance_counts_substitutions_deletions_and_insertions(truth, found, errors):
    assert edit_distance(list(truth), list(found)) == errors
