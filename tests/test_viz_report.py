"""gru.viz.report: every training run writes a self-contained report.html of what it did."""

import html
import json
import re

import pytest

from gru.checkpoint import save_config, write_json
from gru.tasks.explanations import explain
from gru.viz import write_report
from gru.viz.html import fmt
from gru.viz.report import report_html
from viz_runs import adding_run, assert_self_contained, sentiment_run


@pytest.fixture(scope="module")
def seed(tmp_path_factory):
    return sentiment_run(tmp_path_factory.mktemp("report") / "seed")[1]


def test_a_sentiment_run_reports_scores_beside_the_baseline_curves_examples_and_config(seed):
    page = (seed / "report.html").read_text()
    assert_self_contained(page)
    metrics = json.loads((seed / "metrics.json").read_text())
    test, baseline = metrics["test"], metrics["baselines"]["majority class"]
    assert set(test) == {"accuracy", "loss"} == set(baseline)
    # The majority class of the training reviews, scored on the test reviews.
    assert 0.3 < baseline["accuracy"] < 0.7 and baseline["loss"] == pytest.approx(0.69, abs=0.01)
    row = re.search(r"<tr><td>accuracy</td>(.*?)</tr>", page).group(1)
    values = re.findall(r'<td class="num">([^<]*)</td>', row)
    assert values == [
        f"{test['accuracy']:.4f}".rstrip("0"),
        f"{baseline['accuracy']:.4f}".rstrip("0"),
    ]
    assert '<th scope="col">baseline: majority class</th>' in page
    # Training curves, embedded and linked; the per-epoch history.
    assert re.search(r'<img src="data:image/png;base64,[^"]+" alt="Training curves: [^"]+">', page)
    assert '<a href="training_curves.png">training_curves.png</a>' in page
    assert page.count('<tr><td class="num">1</td>') >= 1 and "validation accuracy" in page
    # Six examples: three positive and three negative test reviews with the model's P(positive).
    examples = metrics["examples"]
    assert examples["columns"] == ["P(positive)", "label", "right", "review, as the model read it"]
    assert [r[1] for r in examples["rows"]] == ["positive"] * 3 + ["negative"] * 3
    assert all(
        r[3] and r[2] == ("yes" if (r[0] > 0.5) == (r[1] == "positive") else "no")
        for r in examples["rows"]
    )
    assert examples["rows"][0][3][:40] in page.replace("&#x27;", "'")
    # The data and the whole configuration.
    assert (
        "training reviews longer than maxlen 20 (cut)" in page
        and "<td>source</td><td>sample</td>" in page
    )
    assert '<td>tokens read per review (maxlen)</td><td class="num">20</td>' in page
    assert '<td>learning rate</td><td class="num">0.01</td>' in page


def test_an_adding_run_reports_its_mse_beside_predicting_the_mean(tmp_path):
    run = adding_run(tmp_path / "adding")
    page = (run / "report.html").read_text()
    assert_self_contained(page)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["validation"]["mse"] == min(h["val_mse"] for h in metrics["history"])
    assert "<h1>Adding run: adding</h1>" in page and "baseline: predict the mean" in page
    assert len(metrics["examples"]["rows"]) == 6 and "marked values" in page


def test_explain_pages_beside_a_run_are_files_not_figures_of_the_run(seed):
    explain(seed, "a fine film")
    page = report_html(seed)
    assert page.count("<img ") == 1  # the training curves only
    assert '<a href="explain_gates.png">explain_gates.png</a>' in page  # listed with the files


def test_declared_figures_come_with_their_alt_text_and_unknown_ones_are_still_shown(tmp_path):
    from gru.training import plot_history

    run = tmp_path / "run"
    run.mkdir()
    save_config(run, {"task": "forecast", "gru_version": "0", "config": {"lookback": 48}})
    plot_history(
        [{"epoch": 1, "train_loss": 1.0}, {"epoch": 2, "train_loss": 0.5}], tmp_path / "x.png"
    )
    for name in ("forecast.png", "zz_other.png"):
        (run / name).write_bytes((tmp_path / "x.png").read_bytes())
    write_json(
        run / "metrics.json",
        {
            "figures": {
                "forecast.png": "The forecast of the last test window beside the actual values."
            },
            "test": {"mae": 0.5},
        },
    )
    page = write_report(run).read_text()
    assert_self_contained(page)
    assert 'alt="The forecast of the last test window beside the actual values."' in page
    assert 'alt="Figure zz_other.png of this run."' in page
    assert page.index("forecast.png") < page.index("zz_other.png")


def test_whatever_the_files_hold_is_escaped_and_a_broken_file_is_named_not_fatal(tmp_path):
    evil = '<script>alert("x")</script><img src="http://example.com/x.png">'
    save_config(
        tmp_path,
        {
            "task": "sentiment",
            "gru_version": "0",
            "config": {"note": evil},
            "data": {"source": evil},
        },
    )
    (tmp_path / "metrics.json").write_text('{"history": [')
    page = write_report(tmp_path).read_text()
    assert_self_contained(page)
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "metrics.json could not be read: Expecting value" in page
    write_json(
        tmp_path / "metrics.json",
        {
            "history": [{"epoch": 1, "loss": 0.5}],
            "test": None,
            "examples": [{"b": evil, "a": 1}],
            "notes": [evil],
        },
    )
    page = write_report(tmp_path).read_text()
    assert_self_contained(page)
    assert (
        "No test score in this run&#x27;s metrics. The validation scores are in the training history."
        in page
        and page.count("&lt;script&gt;") == 4
    )
    (tmp_path / "metrics.json").unlink()
    assert "This run has no metrics.json yet" in write_report(tmp_path).read_text()
    with pytest.raises(
        ValueError, match=r"report: '.*' is not a run folder: it has no config.json"
    ):
        write_report(tmp_path / "metrics")


def test_samples_plots_and_long_series_of_other_tasks_read_well(tmp_path):
    from gru.training import plot_history

    save_config(tmp_path, {"task": "textgen", "gru_version": "0", "config": {}})
    plot_history([{"epoch": 1, "train_loss": 1.0}], tmp_path / "samples.png")
    plot_history([{"epoch": 1, "train_loss": 1.0}], tmp_path / "training_curves.png")
    write_json(tmp_path / "metrics.json", {
        "samples": [{"prompt": "ROMEO:", "text": "ROMEO: what light"}],
        "plots": {"sample_lengths": "samples.png", "training_curves": "training_curves.png"},
        "scaler": {"mean": list(range(100))},
    })  # fmt: skip
    page = report_html(tmp_path)
    assert "<h2>Examples</h2>" in page and "<td>ROMEO: what light</td>" in page
    assert 'alt="The sample lengths plot of this run (samples.png)."' in page
    assert "[0, 1, 2, …, 98, 99] (100 values)" in page
    assert page.count("<img ") == 2  # the training curves shown once, under Training


# --- the forecast, textgen and anomaly reports -------------------------------------------------


def results_row(page: str, metric: str) -> list[str]:
    """The cells of the results table's row for ``metric`` as the page shows them."""
    row = re.search(rf"<tr><td>{re.escape(metric)}</td>(.*?)</tr>", page).group(1)
    return re.findall(r"<td[^>]*>([^<]*)</td>", row)


def test_a_forecast_report_sets_the_model_beside_its_three_baselines(forecast_trained):
    _, run = forecast_trained
    page = (run / "report.html").read_text()
    assert_self_contained(page)
    metrics = json.loads((run / "metrics.json").read_text())
    assert "<h1>Forecast run: run</h1>" in page
    header = re.findall(r'<th scope="col">([^<]*)</th>', page)[:6]
    assert header == [
        "metric",
        "this model, test",
        "this model, validation",
        "baseline: linear",
        "baseline: persistence",
        "baseline: seasonal naive",
    ]
    expected = [metrics["test"]["mse"], metrics["validation"]["mse"]]
    expected += [
        metrics["baselines"][n]["mse"] for n in ("linear", "persistence", "seasonal_naive")
    ]
    assert results_row(page, "MSE") == [fmt(v) for v in expected]
    # The forecast windows as a table and a figure, embedded and linked; the data and config.
    assert "The target at a few horizons of 4 test windows" in page
    assert len(metrics["examples"]["rows"]) == 4 * 4  # 4 windows at 4 horizons
    assert re.search(r'<img src="data:image/png;base64,[^"]+" alt="Forecasts of temp for 4 test windows', page)  # fmt: skip
    assert '<a href="forecast_test.png">forecast_test.png</a>' in page
    assert '<a href="training_curves.png">training_curves.png</a>' in page
    assert '<td>season</td><td class="num">24</td>' in page
    assert '<td>lookback (rows read)</td><td class="num">24</td>' in page


def test_a_textgen_report_scores_the_validation_text_beside_ngram_models(textgen_trained):
    _, run, _ = textgen_trained
    page = (run / "report.html").read_text()
    assert_self_contained(page)
    metrics = json.loads((run / "metrics.json").read_text())
    assert "validation loss" in page and "This task has no test data" in page
    loss = [metrics["validation"]["loss"]]
    loss += [metrics["baselines"][n]["loss"] for n in ("bigram", "uniform", "unigram")]
    assert results_row(page, "loss") == [fmt(v) for v in loss]
    # The sample after its prompt, its lines kept.
    sample = metrics["samples"][0]
    cell = re.search(r'<td class="lines">([^<]*)</td>', page).group(1)
    assert html.unescape(cell) == sample["prompt"] + sample["text"]
    assert "The model&#x27;s continuation of &#x27;ROMEO:&#x27; by 500 characters" in page
    assert "<td>distinct characters (V)</td>" in page


def test_an_anomaly_report_lists_the_planted_anomalies_and_the_alarms(anomaly_trained):
    detector, run = anomaly_trained
    page = (run / "report.html").read_text()
    assert_self_contained(page)
    metrics = json.loads((run / "metrics.json").read_text())
    row = results_row(page, "F1")
    assert row == [fmt(metrics["test"]["f1"]), fmt(metrics["baselines"]["rolling_zscore"]["f1"])]
    assert '<th scope="col">baseline: rolling z-score</th>' in page
    assert "The anomalies planted in the test part" in page and "The GRU&#x27;s alarms" in page
    for event in detector.report.events:
        assert f"<td>{event['kind']}</td>" in page
    assert re.search(r'<img src="data:image/png;base64,[^"]+" alt="The test part of load', page)
    assert '<a href="anomalies_test.png">anomalies_test.png</a>' in page


# --- what a reader sees: words, not keys; the verdict; what the times include ------------------

# Keys of the run's files that a reader must never see as they are.
RAW_KEYS = (
    "mae_original", "event_f1", "event_recall", "val_loss", "train_loss", "val_accuracy",
    "test_mse", "seasonal_naive", "rolling_zscore", "training_seconds", "seconds_per_epoch",
    "batch_size", "config.train", "config.max", "train.lr", "hidden_size", "bits_per_char", "gru_version",
)  # fmt: skip


def visible_text(page: str) -> str:
    """The words of ``page`` a reader sees, without the Files section (file names are names)."""
    body = page.split("<h2>Files</h2>")[0].split("<body>")[1]
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


@pytest.fixture(scope="module")
def adding(tmp_path_factory):
    return adding_run(tmp_path_factory.mktemp("adding") / "adding")


def test_every_report_shows_words_not_keys_and_times_in_seconds(
    seed, adding, forecast_trained, textgen_trained, anomaly_trained
):
    runs = [seed, adding, forecast_trained[1], textgen_trained[1], anomaly_trained[1]]
    for run in runs:
        page = (run / "report.html").read_text()
        text = visible_text(page)
        assert not [k for k in RAW_KEYS if k in text], (run, [k for k in RAW_KEYS if k in text])
        # The time column of the history: a few digits and a unit, not 0.0648 or 0.0647987.
        history = page.split("<h2>Training</h2>")[1].split("</table>")[0]
        column = re.findall(r'<th scope="col">([^<]*)</th>', history).index("time")
        for row in re.findall(r"<tr>(<td.*?)</tr>", history):
            cell = re.findall(r"<td[^>]*>([^<]*)</td>", row)[column]
            assert re.fullmatch(r"\d+(\.\d{1,2})? s|under 0\.01 s", cell), cell
    forecast = (forecast_trained[1] / "report.html").read_text()
    # The per-column MAE: one table of columns × models, not a dump of dotted keys.
    part = forecast.split("<h3>test MAE in each column&#x27;s units</h3>")[1].split("</table>")[0]
    header = re.findall(r'<th scope="col">([^<]*)</th>', part)
    assert header == ["", "linear", "persistence", "seasonal naive", "SegRNN"]
    assert [re.findall(r"<td>([^<]*)</td>", r)[0] for r in part.split("<tr>")[2:]] == [
        "load",
        "temp",
    ]
    assert (
        "<h3>Training settings</h3>" in forecast
        and "<td>metric watched</td><td>validation loss</td>" in forecast
    )


def test_the_top_of_the_report_says_so_when_a_baseline_beats_the_model(seed, adding):
    for run, task in ((seed, "sentiment"), (adding, "adding")):
        page = (run / "report.html").read_text()
        metrics = json.loads((run / "metrics.json").read_text())
        metric = {"sentiment": "accuracy", "adding": "mse"}[task]
        ours = metrics["test"][metric]
        theirs = next(iter(metrics["baselines"].values()))[metric]
        beaten = theirs > ours if metric == "accuracy" else theirs < ours
        assert ("beats this model" in page) == beaten, (task, ours, theirs)
        if beaten:  # at the top: before the results
            assert page.index('class="note verdict"') < page.index("<h2>Results</h2>")


def write_run(folder, task: str, metrics: dict):
    save_config(folder, {"task": task, "gru_version": "0", "config": {}})
    write_json(folder / "metrics.json", metrics)
    return visible_text(report_html(folder))


def test_the_scores_header_names_the_model_when_the_run_says_what_it_is(tmp_path):
    scores = {"test": {"nll": 5.9}, "baselines": {"frequency": {"nll": 11.0}}}
    header = r'<th scope="col">([^<]*)</th>'
    write_run(tmp_path, "music", {**scores, "model": "GRU, keys modelled jointly (NADE)"})
    page = report_html(tmp_path)
    assert re.findall(header, page)[:3] == [
        "metric",
        "this model (GRU, keys modelled jointly (NADE))",
        "baseline: frequency",
    ]
    assert "<td>model</td>" not in page  # in the header, not again under Run
    write_run(tmp_path, "music", scores)
    assert re.findall(header, report_html(tmp_path))[1] == "this model"


def test_the_verdict_names_each_better_baseline_on_the_headline_score_first(tmp_path):
    baselines = {"linear": {"mse": 0.3815, "mae": 0.5}, "seasonal_naive": {"mse": 0.5, "mae": 0.4}}
    text = write_run(
        tmp_path, "forecast", {"test": {"mse": 0.3927, "mae": 0.45}, "baselines": baselines}
    )
    assert (
        "A baseline beats this model on test MSE (lower is better): linear (0.3815), against "
        "this model's 0.3927. A baseline also scores better on MAE." in text
    )
    text = write_run(
        tmp_path, "forecast", {"test": {"mse": 0.3, "mae": 0.45}, "baselines": baselines}
    )
    assert "No baseline beats this model on test MSE, its headline score; on test MAE" in text
    text = write_run(
        tmp_path, "forecast", {"test": {"mse": 0.3, "mae": 0.3}, "baselines": baselines}
    )
    assert "beats this model" not in text and "No baseline beats" not in text
    assert "This model beats every baseline on test MSE." in text
    # Higher is better for accuracy; equal scores beat nothing; two winners are both named.
    majority = {"majority class": {"accuracy": 0.5}, "always positive": {"accuracy": 0.52}}
    text = write_run(tmp_path, "sentiment", {"test": {"accuracy": 0.49}, "baselines": majority})
    assert (
        "Baselines beat this model on test accuracy (higher is better): always positive (0.5200) "
        "and majority class (0.5000), against this model's 0.4900." in text
    )
    text = write_run(tmp_path, "sentiment", {"test": {"accuracy": 0.52}, "baselines": majority})
    assert "beats this model" not in text and "Baselines beat" not in text
    assert "This model beats every baseline on test accuracy." in text
    # No test data: the validation scores are compared, and said to be.
    text = write_run(
        tmp_path, "textgen", {"validation": {"loss": 2.6}, "baselines": {"bigram": {"loss": 1.2}}}
    )
    assert "A baseline beats this model on validation loss (lower is better)" in text


def test_the_training_section_says_what_an_epochs_time_includes(tmp_path, seed):
    page = visible_text(report_html(seed))
    assert "the engine's first compile" in page and "is not in epoch 1's time" in page
    assert "Epoch 1 still took" not in page or "× the median later epoch" in page
    history = [
        {"epoch": e, "train_loss": 1.0, "seconds": s}
        for e, s in ((1, 9.0), (2, 3.0), (3, 3.2), (4, 2.8))
    ]
    text = write_run(tmp_path, "adding", {"history": history})
    assert "Epoch 1 still took 9.0 s, 3.0× the median later epoch (3.0 s)" in text
    assert "<td>0.06 s</td>" not in text  # (the history's times are cells, checked above)
