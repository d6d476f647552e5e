"""gru.tasks.explanations: a review read token by token and a forecast window explained, from
Python and the CLI (`gru explain`), and bad input refused with nothing written."""

import hashlib
import re

import numpy as np
import pytest
import torch

from gru.cli import main
from gru.data.text import tokenize
from gru.tasks.explanations import (
    EXPLAINERS,
    START_TOKEN,
    explain,
    explain_series,
    explain_text,
    headline,
)
from gru.tasks.sentiment import SentimentClassifier
from gru.viz import record_gates
from viz_runs import LONG_REVIEW, adding_run, sentiment_run, series_frame


@pytest.fixture(scope="module")
def seed(tmp_path_factory):
    return sentiment_run(tmp_path_factory.mktemp("viz") / "seed")


@pytest.fixture(scope="module")
def strong(tmp_path_factory):
    # Bidirectional, pooled features, post-padding with lengths: the other way of reading.
    return sentiment_run(tmp_path_factory.mktemp("viz") / "strong", "strong", epochs=1)


def digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_the_probability_after_each_token_is_what_the_model_says_there(seed):
    classifier, _ = seed
    text = "a wonderful film, great acting; dull ending"
    e = explain_text(classifier, text)
    words = tokenize(text)
    known = [w in classifier.word_index for w in words]
    assert e.tokens == [START_TOKEN, *words] and 0 < sum(known) < len(words)
    assert e.kinds == ["start"] + ["word" if k else "unknown" for k in known]
    assert e.cut == [] and e.padding_steps == 20 - len(e.tokens)
    # The last point is the model's own prediction (float32 model, float64 recording).
    assert e.prediction == pytest.approx(float(classifier.predict([text])[0]), abs=1e-7)
    assert e.probabilities[-1] == pytest.approx(e.prediction, rel=1e-5)
    # Each point is the model's own answer had the text ended there, after the same padding:
    # the GRU (its engine, not the oracle) run on the steps read so far, then the head.
    model = classifier.model
    ids = np.r_[
        np.zeros(e.padding_steps, np.int64),
        [1],
        [classifier.word_index.get(w, -1) + 3 for w in words],
    ]
    for k in (1, 3, len(e.tokens)):
        steps = torch.from_numpy(ids[: e.padding_steps + k])[None]
        with torch.no_grad():
            _, h_n = model.rnn(model.embedding(steps))
            p = torch.sigmoid(model.head(h_n[-1])).item()
        assert e.probabilities[k - 1] == pytest.approx(p, rel=1e-5), k
    # The colors: 1 − z̄ and r̄ over the units at the text's steps of the recorded read.
    recording = record_gates(model.rnn, model.embedding(torch.from_numpy(ids)).detach())
    np.testing.assert_allclose(e.update, 1 - recording.layers[0][0].z[e.padding_steps :].mean(-1))
    np.testing.assert_allclose(e.reset, recording.layers[0][0].r[e.padding_steps :].mean(-1))
    assert e.recording.layers[0][0].z.shape == (20, 6)


def test_a_long_text_is_cut_as_in_training_and_says_so(seed, tmp_path):
    classifier, _ = seed
    e = explain_text(classifier, LONG_REVIEW)
    words = tokenize(LONG_REVIEW)
    assert len(e.tokens) == 20 and e.padding_steps == 0
    assert len(words) == 27 and e.tokens == words[7:]  # truncating="pre" keeps the last 20
    assert e.cut == [START_TOKEN, *words[:7]]
    assert headline(e).endswith("after reading 20 words, 7 more cut (maxlen 20)")
    unknown = [t for t, k in zip(e.tokens, e.kinds, strict=True) if k == "unknown"]
    assert "honestly" in unknown and "great" not in unknown
    from gru.viz import write_text_explanation

    page = write_text_explanation(e, tmp_path / "long.html").read_text()
    assert (
        "The text was truncated: it has 28 tokens and the model reads at most 20 (maxlen), so its first 8 were not read"
        in page
    )
    assert page.count('class="tok cut"') == 8 and page.count('class="tok unk"') == len(unknown)
    assert "not in the model&#x27;s vocabulary of 300 words" in page
    assert (tmp_path / "long_probability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "long_gates.png").is_file()


def test_a_bidirectional_pooled_model_is_explained_prefix_by_prefix(strong):
    classifier, _ = strong
    text = "great film but a dull and silly ending"
    e = explain_text(classifier, text)
    words = tokenize(text)
    assert e.padding_steps == 0 and len(e.tokens) == len(words) + 1  # post-padding: none read
    assert "the whole model run on the tokens up to that one" in e.method
    assert [g.direction for g in e.recording.top] == [0, 1]
    assert e.probabilities[-1] == pytest.approx(e.prediction, rel=1e-5)
    p = classifier.predict([" ".join(words[:3])])[0]  # start marker + 3 words
    assert e.probabilities[3] == pytest.approx(float(p), rel=1e-5)


def test_explain_writes_the_page_and_its_pictures_from_the_cli(seed, capsys, tmp_path):
    _, run = seed
    assert main(["explain", "--run", str(run), "a wonderful film"]) == 0
    p = explain_text(SentimentClassifier.load(run), "a wonderful film").prediction
    assert p == pytest.approx(SentimentClassifier.load(run).predict("a wonderful film"), rel=1e-5)
    label = "positive" if p > 0.5 else "negative"  # the answer first, then the page
    assert capsys.readouterr().out.splitlines() == [
        f"P(positive) {p:.4f} ({label}) after reading 3 words",
        f"wrote {run / 'explain.html'}",
    ]
    assert {"explain.html", "explain_probability.png", "explain_gates.png"} <= {
        p.name for p in run.iterdir()
    }
    out = tmp_path / "mine.html"
    assert (
        main(["explain", "--run", str(run), "<b>bold</b> & a wonderful film", "--out", str(out)])
        == 0
    )
    page = out.read_text()
    assert "<b>bold" not in page and "&lt;b&gt;bold&lt;/b&gt; &amp; a wonderful film" in page
    assert len(re.findall(r'<span class="tok[^"]*" data-step=', page)) == 7  # start + 6 words
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "mine.html",
        "mine_gates.png",
        "mine_probability.png",
    ]


def test_bad_input_is_refused_and_nothing_is_written(seed, capsys, tmp_path):
    _, run = seed
    before = digest(run)
    other = adding_run(tmp_path / "adding")
    for argv, message in (
        (["--run", run, "   "], "explain: the text is empty; give the review to explain"),
        (["--run", run, "!!! ..."], "explain: the text '!!! ...' has no words once lower-cased and stripped of punctuation"),
        (["--run", run], "explain: give the text to explain (a review in quotes)"),
        (["--run", run, "--csv", tmp_path / "x.csv"], "explain: --csv is for forecast runs; give a sentiment run a text"),
        (["--run", other, "good"], f"explain: '{other}' is an 'adding' run, and gru explain explains sentiment"),
        (["--run", tmp_path / "nowhere", "good"], f"run: '{tmp_path / 'nowhere'}' does not exist"),
        (["--run", run, "good", "--out", tmp_path / "no" / "x.html"], f"--out: the folder of '{tmp_path / 'no' / 'x.html'}' does not exist"),
        (["--run", run, "good", "--out", tmp_path], f"--out: '{tmp_path}' is a folder; name the HTML file to write"),
    ):  # fmt: skip
        assert main(["explain", *map(str, argv)]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("gru: error: ") and message in err, err
    assert digest(run) == before
    assert not list(tmp_path.glob("*.html")) and not list(tmp_path.glob("*.png"))
    with pytest.raises(TypeError, match=r"explain: the text must be a string, got list"):
        explain(run, ["good"])


def test_a_forecast_window_is_explained_as_the_model_forecasts_it(forecast_trained):
    forecaster, _ = forecast_trained  # SegRNN, lookback 24, horizon 12, segments of 6
    e = explain_series(forecaster, series_frame())  # 600 hourly rows: the window ends at 588
    assert e.window.shape == (24, 2) and e.columns == ["load", "temp"] and e.target == "temp"
    assert e.labels[-1] == "2024-01-25 11:00:00" and len(e.forecast_labels) == 12
    assert len(e.actual) == 12 and e.gate_labels == [e.labels[i] for i in (5, 11, 17, 23)]
    assert e.recording.layers[0][0].z.shape[0] == 4  # one GRU step per segment
    # The forecast is the model's own for the data that ends with the window.
    expected = forecaster.predict(series_frame().head(588))["temp"].to_numpy()
    np.testing.assert_array_equal(e.forecast, expected)
    assert set(EXPLAINERS) == {"sentiment", "forecast", "translate"}
    # What `gru explain` prints of it: the forecast's range, its error beside persistence's.
    mae = np.abs(e.forecast - e.actual).mean()
    last = np.abs(e.window[-1, 1] - e.actual).mean()
    assert headline(e) == (
        f"forecast of temp for 12 steps ({e.forecast_labels[0]} to {e.forecast_labels[-1]}): "
        f"from {e.forecast.min():.4g} to {e.forecast.max():.4g}, mean {e.forecast.mean():.4g}; "
        f"MAE {mae:.4g} on the 12 values that followed (repeating the last value: {last:.4g})"
    )
    e.actual = None  # a window at the end of the data: the future, nothing to compare with
    assert headline(e).endswith(f"mean {e.forecast.mean():.4g}")


def test_explain_writes_over_no_input_and_an_existing_page_only_when_asked(
    seed, forecast_trained, capsys, tmp_path
):
    _, run = seed
    before = digest(run)
    for name in ("config.json", "model.safetensors", "vocabulary.json"):
        code = main(["explain", "--run", str(run), "good", "--out", str(run / name), "--overwrite"])
        err = capsys.readouterr().err
        assert code == 2 and f"--out: '{run / name}' is the run's {name} " in err, err
        with pytest.raises(ValueError, match=rf"explain: out: '.*{name}' is the run's {name} .*a command never replaces its input"):  # fmt: skip
            explain(run, "good", out=run / name, overwrite=True)
    assert digest(run) == before
    _, forecast_run = forecast_trained
    csv = tmp_path / "in.csv"
    series_frame().to_csv(csv, index=False)
    code = main(["explain", "--run", str(forecast_run), "--csv", str(csv), "--out", str(csv)])
    assert code == 2 and f"--out: '{csv}' is --csv '{csv}'" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"explain: out: '.*in\.csv' is csv '.*in\.csv'"):
        explain(forecast_run, csv=csv, out=csv)

    page = tmp_path / "page.html"
    page.write_text("precious")
    with pytest.raises(FileExistsError, match=r"explain: out: '.*page\.html' already exists; choose another name, or replace it with overwrite=True \(--overwrite\)"):  # fmt: skip
        explain(run, "good", out=page)
    assert main(["explain", "--run", str(run), "good", "--out", str(page)]) == 2
    assert "already exists" in capsys.readouterr().err and page.read_text() == "precious"
    (tmp_path / "mine_gates.png").write_bytes(b"mine")  # a figure beside the page counts too
    with pytest.raises(FileExistsError, match=r"'.*mine_gates\.png' already exists"):
        explain(run, "good", out=tmp_path / "mine.html")
    assert (tmp_path / "mine_gates.png").read_bytes() == b"mine"
    assert not (tmp_path / "mine.html").exists()
    assert main(["explain", "--run", str(run), "good", "--out", str(page), "--overwrite"]) == 0
    assert "<html" in page.read_text()
    assert explain(run, "fine", out=page, overwrite=True) == page


def test_the_python_api_names_its_own_arguments(seed, tmp_path):
    _, run = seed
    with pytest.raises(IsADirectoryError, match=r"^explain: out: '.*' is a folder; name the HTML file to write$"):  # fmt: skip
        explain(run, "good", out=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"^explain: out: the folder of '.*x\.html' does not exist$"):  # fmt: skip
        explain(run, "good", out=tmp_path / "no" / "x.html")
    classifier, _ = seed
    from gru.viz import write_text_explanation

    e = explain_text(classifier, "good")
    with pytest.raises(ValueError, match=r"^write_text_explanation: out '.*' is a folder; name the HTML file to write$"):  # fmt: skip
        write_text_explanation(e, tmp_path)
    with pytest.raises(FileNotFoundError, match=r"^write_text_explanation: the folder of out '.*x\.html' does not exist$"):  # fmt: skip
        write_text_explanation(e, tmp_path / "no" / "x.html")
