"""gru.estimators: GRURegressor and GRUClassifier learn from arrays and ragged lists, read no
padding, follow scikit-learn's estimator convention (clone, GridSearchCV, Pipeline, the
check_estimator checks that apply to sequences), save and load as run folders, refuse bad
input by naming it, and give the same weights for the same seed."""

import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

import gru
from checks import assert_close
from gru import training
from gru.estimators import GRUClassifier, GRURegressor
from gru.models import SequenceModel

ROOT = Path(__file__).resolve().parents[1]
# One thread: two threads of small batches cost most of their time waiting for each other on a
# loaded 2-core machine (a 3 s fit took 25 s there); the seed test keeps torch's default.
TINY = {"hidden_size": 4, "epochs": 1, "batch_size": 16, "random_state": 0, "threads": 1}


def regression_data(n=192, T=8, seed=0):
    """(N, T, 2) sequences whose target needs the whole sequence and the order of its steps:
    the sum of feature 0 plus the last value of feature 1, times 10 plus 3 (a scale and an
    offset the standardization takes out)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, T, 2))
    return X, 10 * (X[:, :, 0].sum(axis=1) / np.sqrt(T) + X[:, -1, 1]) + 3


def ragged_data(n=150, seed=0):
    """n sequences of 3 to 14 steps of 3 features and their labels "a", "b" or "c" (chance is
    1/3): the feature a label names is shifted up by 1 at every step."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 3, size=n)
    X = [rng.normal(size=(int(rng.integers(3, 15)), 3)) + np.eye(3)[c] for c in codes]
    return X, np.array(["a", "b", "c"])[codes]


@pytest.fixture(scope="module")
def regressor():
    X, y = regression_data()
    model = GRURegressor(hidden_size=16, epochs=25, lr=3e-3, random_state=0, threads=1)
    model.fit(X[:128], y[:128])
    return model, X[128:], y[128:]


@pytest.fixture(scope="module")
def classifier():
    X, y = ragged_data()
    options = {"bidirectional": True, "pooling": "mean_max", "validation_split": 0.2}
    model = GRUClassifier(hidden_size=12, epochs=20, lr=3e-3, random_state=0, threads=1, **options)
    return model.fit(X[:100], y[:100]), X[100:], y[100:]


# --- learning ----------------------------------------------------------------------------------


def test_the_regressor_beats_predicting_the_mean(regressor):
    model, X, y = regressor
    # R² 0 is predicting the mean; measured 0.967 on these 64 held-out sequences.
    assert model.score(X, y) > 0.8
    prediction = model.predict(X)
    assert prediction.shape == (64,) and prediction.dtype == np.float64
    assert model.n_features_in_ == 2 and model.n_iter_ == 25 and len(model.history_) == 25
    assert model.history_[-1]["train_loss"] < 0.5 * model.history_[0]["train_loss"]


def test_the_classifier_on_ragged_lists_is_well_above_chance(classifier):
    model, X, y = classifier
    assert list(model.classes_) == ["a", "b", "c"]
    # chance is about 1/3; measured 0.94 on these 50 held-out sequences.
    assert model.score(X, y) > 0.8
    proba = model.predict_proba(X)
    assert proba.shape == (50, 3)
    assert_close(proba.sum(axis=1), np.ones(50), what="probabilities sum to 1")
    assert (model.predict(X) == model.classes_[proba.argmax(axis=1)]).all()
    assert {"val_loss", "val_score"} <= set(model.history_[-1])


def test_integer_labels_and_multi_output_regression():
    X, y = regression_data(n=48)
    labels = np.where(y > 3, 7, -2)
    classifier = GRUClassifier(**TINY).fit(X, labels)
    assert classifier.classes_.tolist() == [-2, 7]
    assert set(classifier.predict(X).tolist()) <= {-2, 7}
    two = GRURegressor(**TINY).fit(X, np.stack([y, -y], axis=1))
    assert two.predict(X).shape == (48, 2) and two.n_outputs_ == 2
    column = GRURegressor(**TINY).fit(X, y[:, None])
    assert column.predict(X).shape == (48, 1)


# --- sequences of different lengths --------------------------------------------------------


def test_a_ragged_fit_is_the_loop_on_padded_sequences_with_lengths():
    """The estimator on a list equals `training.fit` of the same model on one zero-padded
    (N, T, F) tensor with its lengths: the same batches, and padding that is never read."""
    X, labels = ragged_data(n=40)
    options = {"hidden_size": 6, "epochs": 2, "batch_size": 8, "random_state": 3, "threads": 1}
    ours = GRUClassifier(standardize=False, bidirectional=True, pooling="mean", **options)
    ours.fit(X, labels)

    lengths = torch.tensor([len(x) for x in X])
    padded = torch.zeros(len(X), int(lengths.max()), 3)
    for i, x in enumerate(X):
        padded[i, : len(x)] = torch.from_numpy(x)
        padded[i, len(x) :] = 1e3  # never read: the model stops at each length
    target = torch.from_numpy(np.unique(labels, return_inverse=True)[1])
    threads = torch.get_num_threads()
    torch.manual_seed(3)
    model = SequenceModel(3, 6, 3, bidirectional=True, pooling="mean")
    config = training.TrainConfig(epochs=2, batch_size=8, seed=3)
    loss = torch.nn.functional.cross_entropy
    torch.set_num_threads(1)
    try:
        training.fit(model, loss, (padded, lengths, target), config, sort_key=lengths, quiet=True)
    finally:
        torch.set_num_threads(threads)
    for name, weight in model.state_dict().items():
        assert_close(ours.model_.state_dict()[name], weight, what=name)


@pytest.mark.parametrize("pooling", ["last", "max", "mean_max"])
def test_a_prediction_does_not_depend_on_the_other_sequences(pooling):
    X, labels = ragged_data(n=12)
    model = GRUClassifier(bidirectional=True, pooling=pooling, **TINY).fit(X, labels)
    model.set_params(threads=None)  # predicted on torch's threads: the batch split among them
    together = model.predict_proba(X)
    longer = [*X[:-1], np.concatenate([X[-1], X[-1], X[-1]])]  # pads every batch further
    assert_close(model.predict_proba(longer)[:-1], together[:-1], what="with more padding")
    for i in (0, 5):
        assert_close(model.predict_proba([X[i]]), together[i : i + 1], what=f"sequence {i}")


def test_equal_lengths_in_a_list_an_array_and_one_feature():
    X, y = regression_data(n=32)
    model = GRURegressor(**TINY).fit(X, y)
    assert_close(model.predict(list(X)), model.predict(X), what="list of equal lengths")
    one = GRURegressor(**TINY).fit(X[:, :, 0], y)
    assert one.n_features_in_ == 1
    assert_close(one.predict(X[:, :, :1]), one.predict(X[:, :, 0]), what="(N, T) as (N, T, 1)")
    assert_close(one.predict([x[:, 0] for x in X]), one.predict(X[:, :, 0]), what="(T_i,) items")


# --- scikit-learn ------------------------------------------------------------------------------


def test_parameters_clone_and_set_params():
    model = GRUClassifier(hidden_size=7, pooling="max", random_state=5)
    params = model.get_params()
    assert params["hidden_size"] == 7 and params["pooling"] == "max" and params["epochs"] == 50
    twin = clone(model)
    assert twin is not model and twin.get_params() == params
    assert twin.set_params(hidden_size=3) is twin and twin.hidden_size == 3
    assert repr(twin) == "GRUClassifier(hidden_size=3, pooling='max', random_state=5)"
    with pytest.raises(ValueError, match=r"GRUClassifier.set_params: invalid parameter 'hiden'"):
        twin.set_params(hiden=3)


def test_fit_options_change_no_parameter():
    X, y = regression_data(n=32)
    model = GRURegressor(hidden_size=4, epochs=3, random_state=0)
    model.fit(X, y, epochs=1, batch_size=8, validation_split=0.25)
    assert model.n_iter_ == 1 and "val_loss" in model.history_[0]
    assert model.get_params()["epochs"] == 3 and model.validation_split == 0.0


def test_grid_search_and_pipeline():
    X, y = regression_data(n=48)
    flat = X[:, :, 0]  # (N, T): what a scikit-learn transformer takes
    grid = {"hidden_size": np.array([2, 5]), "epochs": np.array([1])}  # NumPy ints, as people give
    search = GridSearchCV(GRURegressor(**TINY), grid, cv=2).fit(flat, y)
    assert search.best_params_["hidden_size"] in (2, 5)
    assert search.best_estimator_.n_features_in_ == 1
    pipeline = make_pipeline(StandardScaler(), GRURegressor(**TINY)).fit(flat, y)
    assert pipeline.predict(flat).shape == (48,)
    labels = np.where(y > 3, "up", "down")
    grid = GridSearchCV(GRUClassifier(**TINY), {"pooling": ["last", "mean"]}, cv=2)
    assert grid.fit(flat, labels).best_estimator_.predict(flat).shape == (48,)


# The checks of scikit-learn's check_estimator that do not apply to sequences: an (N, T)
# array is N sequences of T steps of one feature, so its second dimension is not a count of
# features that must stay the same.
NOT_FOR_SEQUENCES = {
    "check_n_features_in": "n_features_in_ is F, the features of each step, not X.shape[1] "
    "(the steps of an (N, T) array)",
    "check_n_features_in_after_fitting": "an (N, T') array of other T' is sequences of other "
    "lengths, which a GRU reads, not a wrong number of features",
    "check_estimators_empty_data_messages": "X of shape (N, 0) is refused with the estimator's "
    "own message, (N, 0, 1) sequences without steps, not scikit-learn's words for tables",
}
CLASSIFIER_ONLY = {
    "check_classifiers_train": "it predicts X.T expecting an error, but X.T is a valid batch of "
    "sequences of another length (the rest of the check passes up to that line)",
}


@pytest.mark.filterwarnings("ignore:Estimator GRU.* does not inherit:UserWarning")
@pytest.mark.parametrize("cls", [GRURegressor, GRUClassifier])
def test_check_estimator(cls):
    expected = {**NOT_FOR_SEQUENCES, **(CLASSIFIER_ONLY if cls is GRUClassifier else {})}
    results = check_estimator(
        cls(**TINY), expected_failed_checks=expected, on_fail=None, on_skip=None
    )
    outcome = {}
    for result in results:
        outcome.setdefault(result["check_name"], set()).add(result["status"])
    failed = {k: v for k, v in outcome.items() if v - {"passed", "xfail"}}
    # check_array_api_input runs only when SCIPY_ARRAY_API is set: nothing to check here.
    failed.pop("check_array_api_input", None)
    assert not failed, failed
    assert {k for k, v in outcome.items() if "xfail" in v} == set(expected)
    assert len(outcome) > 40  # the checks ran: about 50 for each estimator


def test_predict_before_fit_is_not_fitted_error():
    with pytest.raises(NotFittedError, match=r"GRURegressor.predict: this estimator is not fitted"):
        GRURegressor().predict(np.zeros((2, 3, 1)))
    with pytest.raises(NotFittedError, match=r"GRUClassifier.predict_proba: this estimator is"):
        GRUClassifier().predict_proba(np.zeros((2, 3, 1)))
    with pytest.raises(NotFittedError, match=r"GRUClassifier.save: this estimator is not fitted"):
        GRUClassifier().save("anywhere")


WITHOUT_SKLEARN = """
import sys
sys.modules["sklearn"] = None  # importing it fails, as when it is not installed
import numpy as np
import gru
from gru.estimators import NotFittedError
model = gru.GRUClassifier(hidden_size=3, epochs=1, random_state=0)
try:
    model.predict(np.zeros((2, 3, 1)))
except NotFittedError as error:
    assert isinstance(error, ValueError) and isinstance(error, AttributeError), error
X = np.random.default_rng(0).normal(size=(20, 4, 2))
model.set_params(hidden_size=2).fit(X, np.arange(20) % 2)
print(model.predict(X).shape, model.get_params()["hidden_size"], "sklearn" in sys.modules)
"""


def test_without_scikit_learn():
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_SKLEARN], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["(20,)", "2", "True"]  # sklearn is the blocked None entry


def test_import_gru_does_not_load_the_estimators():
    code = "import sys, gru; print('gru.estimators' in sys.modules, 'sklearn' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.split() == ["False", "False"], done.stderr


# --- save, load, pickle --------------------------------------------------------------------


def test_save_and_load_give_the_same_predictions(classifier, regressor, tmp_path):
    model, X, _ = classifier
    folder = model.save(tmp_path / "classifier")
    assert {p.name for p in folder.iterdir()} == {
        "config.json", "model.safetensors", "metrics.json"
    }  # fmt: skip
    loaded = GRUClassifier.load(folder)
    assert loaded.get_params() == model.get_params()
    assert loaded.classes_.tolist() == ["a", "b", "c"] and loaded.history_ == model.history_
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))
    reg, X_reg, _ = regressor
    again = GRURegressor.load(reg.save(tmp_path / "regressor"))
    assert np.array_equal(again.predict(X_reg), reg.predict(X_reg))
    with pytest.raises(
        ValueError,
        match=r"GRURegressor.load: .* holds a GRUClassifier, not a GRURegressor; load it with GRUClassifier.load",
    ):
        GRURegressor.load(folder)
    with pytest.raises(
        ValueError, match=r"GRUClassifier.save: path .* already exists and is not empty"
    ):
        model.save(folder)


def test_a_run_folder_altered_after_saving_is_refused(regressor, tmp_path):
    folder = regressor[0].save(tmp_path / "run")
    config = folder / "config.json"
    config.write_text(config.read_text().replace('"hidden_size": 16', '"hidden_size": 17'))
    with pytest.raises(ValueError, match=r"config.json of .* does not match model.safetensors"):
        GRURegressor.load(folder)


def test_pickle_round_trip(regressor):
    model, X, _ = regressor
    again = pickle.loads(pickle.dumps(model))
    assert np.array_equal(again.predict(X), model.predict(X))


# --- bad input ---------------------------------------------------------------------------------

GOOD_X, GOOD_Y = np.zeros((4, 3, 2)), np.arange(4.0)
BAD_FIT = [
    (
        np.zeros(4),
        GOOD_Y,
        ValueError,
        r"X must be an \(N, T, F\) array.*got an array of shape \(4,\); Reshape",
    ),
    (
        np.zeros((4, 3, 2, 1)),
        GOOD_Y,
        ValueError,
        r"X must be .* got an array of shape \(4, 3, 2, 1\)",
    ),
    (
        np.zeros((0, 3, 2)),
        GOOD_Y[:0],
        ValueError,
        r"X must hold at least one sequence .* got shape \(0, 3, 2\)",
    ),
    ([], GOOD_Y, ValueError, r"X holds no sequences \(an empty list\)"),
    (
        [np.zeros((3, 2)), np.zeros((2, 5))],
        GOOD_Y[:2],
        ValueError,
        r"X\[1\] must be a sequence \(T_i, F\) .*\(F=2\), got shape \(2, 5\)",
    ),
    (
        [np.zeros((3, 2)), np.zeros((0, 2))],
        GOOD_Y[:2],
        ValueError,
        r"X\[1\] must be a sequence .* T_i ≥ 1",
    ),
    (
        [np.zeros((3, 2)), np.full((2, 2), np.nan)],
        GOOD_Y[:2],
        ValueError,
        r"X\[1\] holds NaN or infinite values \(the first at index \[0, 0\]\)",
    ),
    (np.full((4, 3, 2), np.inf), GOOD_Y, ValueError, r"X holds NaN or infinite values"),
    (np.zeros((4, 3), complex), GOOD_Y, ValueError, r"X must hold real numbers"),
    (np.array([["a", "b"]] * 4), GOOD_Y, TypeError, r"X must hold numbers, got dtype <U1"),
    (
        GOOD_X,
        GOOD_Y[:3],
        ValueError,
        r"y must have one row per sequence of X \(4\), got 3 rows \(shape \(3,\)\)",
    ),
    (
        GOOD_X,
        np.array([0, 1, np.nan, 2]),
        ValueError,
        r"y holds NaN or infinite values \(the first at index \[2\]\)",
    ),
    (
        GOOD_X,
        np.zeros((4, 2, 2)),
        ValueError,
        r"y must be \(N,\) or \(N, k\) with k ≥ 1, got shape \(4, 2, 2\)",
    ),
    (GOOD_X, None, ValueError, r"requires y to be passed, but the target y is None"),
]


@pytest.mark.parametrize(("X", "y", "error", "match"), BAD_FIT)
def test_bad_x_and_y_are_named(X, y, error, match):
    with pytest.raises(error, match=f"GRURegressor.fit:? .*{match}"):
        GRURegressor(**TINY).fit(X, y)


def test_bad_labels_and_settings_are_named():
    with pytest.raises(ValueError, match=r"GRUClassifier.fit: y holds one class only \('a'\)"):
        GRUClassifier(**TINY).fit(GOOD_X, ["a"] * 4)
    with pytest.raises(
        ValueError,
        match=r"GRUClassifier.fit: y holds continuous values \(0.5 is not a label\).*GRURegressor",
    ):
        GRUClassifier(**TINY).fit(GOOD_X, [0, 0.5, 1, 2])
    with pytest.raises(
        ValueError, match=r"GRUClassifier.fit: y must be \(N,\) labels, got shape \(4, 2\)"
    ):
        GRUClassifier(**TINY).fit(GOOD_X, np.zeros((4, 2)))
    mixed = np.array([1, "a", 2, "b"], dtype=object)
    with pytest.raises(
        TypeError,
        match=r"GRUClassifier.fit: y must hold labels of one kind \(all numbers or all strings\), got \['int', 'str'\]",
    ):
        GRUClassifier(**TINY).fit(GOOD_X, mixed)
    settings = [
        ({"hidden_size": 0}, r"hidden_size must be an int ≥ 1, got 0"),
        (
            {"pooling": "sum"},
            r"pooling must be one of \('last', 'mean', 'max', 'mean_max'\), got 'sum'",
        ),
        ({"dropout": 1.0}, r"dropout must be a number in \[0, 1\), got 1.0"),
        ({"validation_split": 0.1}, r"validation_split=0.1 of 4 sequences holds out 0"),
        ({"lr": -1.0}, r"TrainConfig: lr must be a finite number > 0, got -1.0"),
        ({"random_state": -1}, r"random_state must be an int ≥ 0, got -1"),
        ({"threads": 0}, r"threads must be an int ≥ 1, got 0"),
        ({"batch_size": 2.5}, r"batch_size must be an int ≥ 1, got 2.5"),
    ]
    for setting, match in settings:
        with pytest.raises(ValueError, match="GRURegressor.fit: " + match):
            GRURegressor(**{**TINY, **setting}).fit(GOOD_X, GOOD_Y)


def test_wrong_features_at_predict_are_named(regressor):
    model = regressor[0]
    with pytest.raises(
        ValueError,
        match=r"GRURegressor.predict: X has 3 features per step, but this estimator was fitted with n_features_in_=2",
    ):
        model.predict(np.zeros((2, 5, 3)))
    with pytest.raises(ValueError, match=r"GRURegressor.predict: X holds NaN"):
        model.predict(np.full((2, 5, 2), np.nan))


def test_a_diverged_fit_is_an_error():
    X, y = regression_data(n=32)
    model = GRURegressor(**{**TINY, "epochs": 3}, lr=1e30, clip_grad_norm=None)
    with pytest.raises(training.TrainingDiverged, match=r"fit: training diverged at epoch"):
        model.fit(X, y)
    assert not hasattr(model, "model_")


# --- seeds, threads, progress, early stopping ----------------------------------------------


def test_the_same_seed_gives_the_same_weights():
    X, y = regression_data(n=48)
    options = {**TINY, "epochs": 2, "dropout": 0.2, "validation_split": 0.25, "num_layers": 2}
    options["threads"] = None  # torch's default: the engine's batch split over threads too
    a, b = GRURegressor(**options).fit(X, y), GRURegressor(**options).fit(X, y)
    c = GRURegressor(**{**options, "random_state": 1}).fit(X, y)
    for name, weight in a.model_.state_dict().items():
        assert torch.equal(weight, b.model_.state_dict()[name]), name
    assert not torch.equal(a.model_.head.weight, c.model_.head.weight)
    np.random.seed(0)  # noqa: NPY002 (random_state=None draws from NumPy's global generator)
    d = GRURegressor(**{**options, "random_state": None}).fit(X, y)
    np.random.seed(0)  # noqa: NPY002
    e = GRURegressor(**{**options, "random_state": None}).fit(X, y)
    assert torch.equal(d.model_.head.weight, e.model_.head.weight)


def test_threads_are_set_for_the_call_and_restored():
    X, y = regression_data(n=16)
    before = torch.get_num_threads()
    other = 1 if before > 1 else 2
    seen = []
    model = GRURegressor(**{**TINY, "threads": other}).fit(X, y)
    original = model.model_.forward
    model.model_.forward = lambda *a: seen.append(torch.get_num_threads()) or original(*a)
    model.predict(X)
    assert seen == [other] and torch.get_num_threads() == before


def test_progress_and_early_stopping(capsys):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 6, 2)), rng.normal(size=64)  # noise: nothing to learn
    model = GRURegressor(hidden_size=32, epochs=40, lr=1e-2, random_state=0, verbose=1, threads=1)
    model.set_params(validation_split=0.25, early_stopping=True, patience=2).fit(X, y)
    out = capsys.readouterr().out
    assert out.startswith("epoch 1/40  train_loss ") and "val_loss" in out
    assert "early stop: no better val_loss for 2 epochs" in out
    assert model.n_iter_ < 40
    best = min(record["val_loss"] for record in model.history_)
    assert best == min(r["val_loss"] for r in model.history_[: model.n_iter_ - 2])
    GRURegressor(**TINY).fit(X, y)
    assert capsys.readouterr().out == ""  # verbose=0: silent


# --- the README ----------------------------------------------------------------------------


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Train on your own arrays", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return next(b for b in blocks if "gru.GRURegressor" in b)


def test_the_readme_example_runs():
    namespace = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as TINY's threads, for a loaded machine
    try:
        exec(readme_example(), namespace)  # the README's example, as written
    finally:
        torch.set_num_threads(threads)
    assert isinstance(namespace["model"], gru.GRURegressor)
    assert namespace["model"].score(namespace["X"], namespace["y"]) > 0.5
