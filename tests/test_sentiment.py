"""gru.tasks.sentiment from Python: the presets, fit, predict, evaluate, load, and bad input."""

import hashlib
import subprocess
import sys

import numpy as np
import pytest
import torch

import gru
from gru.tasks.sentiment import PRESETS, SentimentClassifier

# Small enough to train in seconds, big enough to learn: ~70% on the sample's reviews.
QUICK = {
    "limit": 2000,
    "num_words": 2000,
    "maxlen": 60,
    "embedding_dim": 16,
    "hidden_size": 16,
    "epochs": 3,
    "lr": 1e-2,
}
TINY = {
    "limit": 200,
    "num_words": 300,
    "maxlen": 20,
    "embedding_dim": 4,
    "hidden_size": 4,
    "epochs": 1,
}
POSITIVE = "a wonderful film, great acting and a moving story; I loved it"
NEGATIVE = "awful, boring and stupid, the worst film I have seen, a waste of time"


def folder_digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "quick"
    classifier = SentimentClassifier.from_preset("seed", **QUICK)
    report = classifier.fit("sample", out=out, quiet=True)
    return classifier, report, out


def test_the_seed_preset_is_the_keras_model():
    seed = PRESETS["seed"]
    assert (seed.num_words, seed.maxlen, seed.padding, seed.truncating) == (
        10_000,
        100,
        "pre",
        "pre",
    )
    assert (seed.embedding_dim, seed.hidden_size, seed.num_layers, seed.bidirectional) == (
        32,
        32,
        1,
        False,
    )
    assert (seed.features, seed.init, seed.validation_split, seed.reset_after) == (
        "last",
        "keras",
        0.2,
        True,
    )
    t = seed.train
    assert (t.optimizer, t.lr, t.eps, t.batch_size, t.epochs, t.clip_grad_norm, t.schedule) == (
        "adam",
        1e-3,
        1e-7,
        32,
        5,
        None,
        "constant",
    )
    model = SentimentClassifier(seed)._build_model()
    # Keras's model.summary(): Embedding 320,000 + GRU 6,336 (reset_after biases 2 x 3H) + Dense 33.
    assert sum(p.numel() for p in model.parameters()) == 326_369
    assert isinstance(model.rnn, gru.GRU) and model.rnn.reset_after


def test_fit_learns_predict_ranks_and_a_loaded_run_predicts_the_same(trained):
    classifier, report, out = trained
    assert report.reviews == {"train": 1600, "validation": 400, "test": 2000}
    assert len(report.history) == 3 and report.test["accuracy"] > 0.62  # chance is 0.5
    assert report.seconds > report.seconds_per_epoch > 0
    p = classifier.predict([POSITIVE, NEGATIVE])
    assert p.shape == (2,) and 0 < p[1] < p[0] < 1
    loaded = SentimentClassifier.load(out)
    np.testing.assert_array_equal(loaded.predict([POSITIVE, NEGATIVE]), p)
    assert loaded.word_index == classifier.word_index and max(loaded.word_index.values()) == 1996
    # The run keeps the best validation epoch's weights (restore_best), as metrics.json says.
    best = max(range(3), key=lambda e: report.history[e]["val_accuracy"]) + 1
    assert report.best_epoch == best
    scores = loaded.evaluate("sample")
    assert scores["reviews"] == 5000 and scores["accuracy"] > 0.6


def test_the_python_api_of_the_issue():
    clf = gru.tasks.SentimentClassifier.from_preset("seed", **TINY)
    clf.fit("sample", quiet=True)
    assert clf.predict(["..."]).shape == (1,)
    # `import gru` alone reaches the tasks (loaded on first use).
    code = "import gru, sys; print(gru.tasks.SentimentClassifier.__name__, 'gru.tasks.sentiment' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["SentimentClassifier", "True"]


@pytest.mark.parametrize("torch_layer", [False, True])
def test_the_strong_recipe_runs_on_both_layers(tmp_path, torch_layer):
    clf = SentimentClassifier.from_preset("strong", **TINY, torch_layer=torch_layer)
    report = clf.fit("sample", out=tmp_path / "run", quiet=True)
    assert report.layer == ("torch.nn.GRU" if torch_layer else "gru.GRU (backend auto)")
    loaded = SentimentClassifier.load(tmp_path / "run")
    assert isinstance(loaded.model.rnn, torch.nn.GRU if torch_layer else gru.GRU)
    assert loaded.model.rnn.bidirectional and loaded.model.features == "pool"
    np.testing.assert_allclose(loaded.predict([POSITIVE]), clf.predict([POSITIVE]), rtol=1e-6)


def test_your_own_csv_builds_its_vocabulary_and_refuses_keras_encoded_data(tmp_path):
    rows = ["text,label"] + [f"good great fine film {i},1" for i in range(20)]
    rows += [f"bad awful dull film {i},0" for i in range(20)]
    (tmp_path / "mine.csv").write_text("\n".join(rows))
    clf = SentimentClassifier.from_preset("seed", **{**TINY, "epochs": 5, "lr": 0.05})
    report = clf.fit(tmp_path / "mine.csv", out=tmp_path / "run", quiet=True)
    assert report.test is None and clf.vocabulary_origin == "data"
    assert clf.word_index["film"] == 1
    loaded = SentimentClassifier.load(tmp_path / "run")
    assert loaded.evaluate(tmp_path / "mine.csv")["reviews"] == 40
    with pytest.raises(
        ValueError,
        match=r"encoded with the Keras word index, but this model's vocabulary was built from its own training texts",
    ):
        loaded.evaluate("sample")


def test_a_model_trained_on_ids_without_a_word_index_cannot_read_text(tmp_path):
    ids = np.empty(40, dtype=object)
    ids[:] = [[1, 5 + i % 7, 9] for i in range(40)]
    labels = np.arange(40) % 2
    np.savez(tmp_path / "imdb.npz", x_train=ids, y_train=labels, x_test=ids, y_test=labels)
    clf = SentimentClassifier.from_preset("seed", **TINY)
    clf.fit(tmp_path / "imdb.npz", quiet=True)
    with pytest.raises(
        ValueError,
        match=r"trained on encoded reviews without a word index, so it cannot encode text",
    ):
        clf.predict(["fine"])
    (tmp_path / "texts.csv").write_text("text,label\nfine,1\n")
    with pytest.raises(
        ValueError, match=r"holds text, but this model was trained on encoded reviews"
    ):
        clf.evaluate(tmp_path / "texts.csv")


def test_resume_with_another_configuration_is_refused_and_changes_nothing(trained):
    _, _, out = trained
    before = folder_digest(out)
    other = SentimentClassifier.from_preset("seed", **{**QUICK, "epochs": 4, "maxlen": 80})
    with pytest.raises(
        ValueError,
        match=r"was trained with a different configuration: maxlen was 60, now 80; train.epochs was 3, now 4",
    ):
        other.fit("sample", out=out, resume=True, quiet=True)
    same = SentimentClassifier.from_preset("seed", **QUICK)
    with pytest.raises(ValueError, match=r"was trained on 'sample', not '.*elsewhere.csv'"):
        same.fit("elsewhere.csv", out=out, resume=True, quiet=True)
    with pytest.raises(
        ValueError,
        match=r"already exists and is not empty; pick a new folder, or continue that run with --resume",
    ):
        same.fit("sample", out=out, quiet=True)
    assert folder_digest(out) == before


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"preset must be one of \['seed', 'strong'\], got 'best'"):
        SentimentClassifier.from_preset("best")
    with pytest.raises(TypeError, match=r"unknown setting 'layers'"):
        SentimentClassifier.from_preset("seed", layers=2)
    with pytest.raises(ValueError, match=r"padding must be 'pre' or 'post', got 'both'"):
        SentimentClassifier.from_preset("seed", padding="both")
    clf = SentimentClassifier.from_preset("seed")
    with pytest.raises(ValueError, match=r"fit or load a model first"):
        clf.predict(["good"])


def test_predict_refuses_empty_text_and_takes_a_lone_string(trained):
    classifier, _, _ = trained
    with pytest.raises(ValueError, match=r"predict: text 2 is empty"):
        classifier.predict(["good", "  "])
    with pytest.raises(TypeError, match=r"texts must be a string or a list of them"):
        classifier.predict(["good", 3])
    one = classifier.predict("a wonderful film")  # one text: one value, as in the list of one
    assert isinstance(one, float) and one == classifier.predict(["a wonderful film"])[0]
    with pytest.raises(ValueError, match=r"predict: text 1 is empty"):
        classifier.predict("")


def test_too_few_reviews_for_validation_are_refused_before_anything_is_written(tmp_path, capsys):
    from gru.cli import main

    one = tmp_path / "one.csv"
    one.write_text('text,label\n"a fine film",1\n')
    with pytest.raises(ValueError, match=r"data: '.*one\.csv' has 1 training review\(s\), too few to keep 20% for the validation that monitor='val_accuracy' reads; give at least 3"):  # fmt: skip
        SentimentClassifier.from_preset("seed", **TINY).fit(one, out=tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()
    code = main(["train", "sentiment", "--data", str(one), "--out", str(tmp_path / "run")])
    assert code == 2 and "too few to keep 20%" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # no config.json or vocabulary.json left behind


def test_reviews_of_one_label_train_with_a_warning(tmp_path, capsys):
    from gru.cli import main

    data = tmp_path / "positive.csv"
    data.write_text("text,label\n" + "".join(f'"good film {i}",1\n' for i in range(10)))
    with pytest.warns(UserWarning, match=r"every training review of '.*positive\.csv' is positive: the model can only learn to answer positive; give reviews of both labels"):  # fmt: skip
        SentimentClassifier.from_preset("seed", **TINY).fit(data, quiet=True)
    code = main(["train", "sentiment", "--data", str(data), "--out", str(tmp_path / "run"), "--epochs", "1", "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0
    assert err == (
        f"gru: warning: every training review of '{data}' is positive: the model can only learn "
        "to answer positive; give reviews of both labels\n"
    )


def test_settings_of_the_wrong_type_or_range_are_named():
    with pytest.raises(TypeError, match=r"^SentimentConfig: dropout must be a number, got 'a'$"):
        SentimentClassifier(dropout="a")  # it was accepted, and failed inside the model
    with pytest.raises(TypeError, match=r"^SentimentConfig: validation_split must be a number, got 'a'$"):  # fmt: skip
        SentimentClassifier(validation_split="a")
    with pytest.raises(ValueError, match=r"^SentimentConfig: embedding_dropout must be in \[0, 1\), got 1.5$"):  # fmt: skip
        SentimentClassifier(embedding_dropout=1.5)
