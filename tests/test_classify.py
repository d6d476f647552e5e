"""gru.tasks.classify: a tiny run through the CLI that gives GRUClassifier's numbers for the same
seed, the run folder and its report, resume, gru predict and gru evaluate on it, bad input as
exit 2 naming the file and line, and the archive's two problems read and learned from
../shared/data. The readers: test_uea.py, test_sequences.py; the baselines: test_baselines.py."""

import json
from pathlib import Path

import numpy as np
import pytest

from checks import run_cli as run
from checks import shared_data, torchrun_train
from gru.cli import main
from gru.data.sequences import load
from gru.tasks import SequenceClassifier
from gru.tasks.classify import ClassifyConfig

TINY = ("--epochs", 3, "--hidden-size", 6, "--batch-size", 8, "--threads", 1, "--quiet")


def shared(name: str) -> Path:
    return shared_data("classification", name)


def toy(n: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """n sequences of 2 channels and 5-11 steps: class "rise" climbs, "fall" falls."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    for i in range(n):
        T, sign = int(rng.integers(5, 12)), 1 if i % 2 else -1
        steps = np.linspace(0, 1, T)[:, None]
        X.append(sign * steps * [1.0, 2.0] + 0.1 * rng.standard_normal((T, 2)))
        y.append("rise" if sign > 0 else "fall")
    return X, np.array(y)


def write_ts(path: Path, X, y) -> Path:
    header = "@problemName Toy\n@timeStamps false\n@missing false\n@univariate false\n"
    header += "@dimensions 2\n@equalLength false\n@classLabel true fall rise\n@data\n"
    rows = [":".join(",".join(f"{v:.6f}" for v in x[:, c]) for c in range(2)) for x in X]
    path.write_text(header + "".join(f"{r}:{label}\n" for r, label in zip(rows, y, strict=True)))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy")
    return write_ts(folder / "train.ts", *toy(24, 0)), write_ts(folder / "test.ts", *toy(16, 1))


@pytest.fixture(scope="module")
def trained(files, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "toy"
    code = main(["train", "classify", "--train", str(files[0]), "--test", str(files[1]),
                 "--out", str(out), *map(str, TINY)])  # fmt: skip
    assert code == 0
    return out


def test_the_cli_and_gru_classifier_give_the_same_numbers_for_the_same_seed(files, trained):
    train, test = load(files[0]), load(files[1])
    config = ClassifyConfig(hidden_size=6)
    config.train.epochs, config.train.batch_size = 3, 8
    estimator = config.estimator().set_params(threads=1).fit(train.X, train.labels)
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] == estimator.score(test.X, test.labels)
    assert [h["train_loss"] for h in metrics["history"]] == [
        h["train_loss"] for h in estimator.history_
    ]
    loaded = SequenceClassifier.load(trained)
    np.testing.assert_array_equal(loaded.predict_proba(test), estimator.predict_proba(test.X))


def test_a_run_folder_holds_the_report_with_baselines_and_figures(trained):
    names = {p.name for p in trained.iterdir()}
    assert {"config.json", "model.safetensors", "metrics.json", "report.html"} <= names
    assert {"confusion_matrix.png", "gates_by_class.png", "training_curves.png"} <= names
    metrics = json.loads((trained / "metrics.json").read_text())
    assert set(metrics["baselines"]) == {"most frequent class", "1-NN DTW"}
    assert metrics["baselines"]["most frequent class"]["accuracy"] == 0.5
    assert np.sum(metrics["confusion"]) == 16 and metrics["classes"] == ["fall", "rise"]
    assert [row[1] for row in metrics["examples"]["rows"]] == ["fall", "rise"]
    html = (trained / "report.html").read_text()
    assert "baseline: 1-NN DTW" in html and "confusion_matrix.png" in html


def test_resume_of_a_finished_run_keeps_its_weights(files, trained, capsys):
    before = SequenceClassifier.load(trained).predict_proba(files[1])
    code, _, err = run(capsys, "train", "classify", "--resume", trained, *TINY)
    assert code == 0, err
    np.testing.assert_array_equal(SequenceClassifier.load(trained).predict_proba(files[1]), before)
    code, _, err = run(capsys, "train", "classify", "--resume", trained, "--hidden-size", 7)
    assert code == 2 and "hidden_size was 6, now 7" in err


def test_predict_and_evaluate_on_a_classify_run(files, trained, capsys, tmp_path):
    X, _ = toy(3, 5)
    np.savez(tmp_path / "new.npz", X=np.stack([x[:5] for x in X]))
    code, out, err = run(capsys, "predict", "--run", trained, tmp_path / "new.npz")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "where\tpredicted\tP(predicted)" and len(lines) == 4
    assert lines[1].split("\t")[0] == "case 0" and lines[1].split("\t")[1] in ("fall", "rise")
    code, out, err = run(capsys, "evaluate", "--run", trained, "--data", files[1])
    expected = SequenceClassifier.load(trained).evaluate(files[1])["accuracy"]
    assert code == 0 and out.startswith(f"accuracy {expected:.4f}")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("@dimensions 2", "@dimensions 3"), "line 9: the header says @dimensions 3"),
        ((":rise\n", ":\n"), "the class label is missing"),
        ((":rise\n", ":up\n"), "class label 'up' is not one of those @classLabel declares"),
    ],
)
def test_bad_training_files_exit_2_naming_the_file_and_line(
    files, tmp_path, capsys, change, message
):
    bad = tmp_path / "bad.ts"
    bad.write_text(files[0].read_text().replace(*change, 1))
    code, _, err = run(capsys, "train", "classify", "--train", bad, "--out", tmp_path / "r", *TINY)
    assert code == 2 and str(bad) in err and message in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_a_label_only_in_the_test_file_exits_2(files, tmp_path, capsys):
    header = (
        files[1].read_text().replace("@classLabel true fall rise", "@classLabel true fall rise up")
    )
    test = tmp_path / "test.ts"
    test.write_text(header.replace(":rise\n", ":up\n", 1))
    code, _, err = run(capsys, "train", "classify", "--train", files[0], "--test", test, *TINY)
    assert code == 2 and f"{str(test)!r} line 10: class label 'up' is not in the training" in err


def test_the_archive_problems_are_read_and_learned():
    motions = load(shared("BasicMotions_TRAIN.ts"))
    assert len(motions) == 40 and {x.shape for x in motions.X} == {(100, 6)}
    assert sorted(set(motions.labels)) == ["Badminton", "Running", "Standing", "Walking"]
    train, test = load(shared("JapaneseVowels_TRAIN.ts")), load(shared("JapaneseVowels_TEST.ts"))
    assert (len(train), len(test)) == (270, 370) and train.X[0].shape[1] == 12
    assert train.lengths.min() >= 7 and max(train.lengths.max(), test.lengths.max()) == 29
    assert sorted(set(train.labels)) == [str(k) for k in range(1, 10)]
    clf = SequenceClassifier(hidden_size=16, epochs=3, batch_size=32)
    report = clf.fit(train, test, baselines=False, quiet=True)
    majority = report.baselines["most frequent class"]["accuracy"]
    assert report.test["accuracy"] > majority + 0.3, (report.test, majority)


def test_a_long_csv_trains_and_an_npz_of_other_lengths_is_scored(tmp_path):
    X, y = toy(12, 3)
    rows = ["id,time,a,b,label"]
    for i, (x, label) in enumerate(zip(X, y, strict=True)):
        rows += [f"s{i},{t},{x[t, 0]},{x[t, 1]},{label}" for t in reversed(range(len(x)))]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    X_test, y_test = toy(6, 4)
    T = max(len(x) for x in X_test)
    padded = np.zeros((6, T, 2))
    for i, x in enumerate(X_test):
        padded[i, : len(x)] = x
    lengths = np.array([len(x) for x in X_test])
    np.savez(tmp_path / "test.npz", X=padded, y=y_test, lengths=lengths)
    clf = SequenceClassifier(hidden_size=4, epochs=2, batch_size=4)
    report = clf.fit(tmp_path / "train.csv", tmp_path / "test.npz", quiet=True, baselines=False)
    assert report.sequences == {"train": 12, "test": 6} and report.classes == ["fall", "rise"]
    assert set(clf.predict(tmp_path / "test.npz")) <= {"fall", "rise"}
    with pytest.raises(ValueError, match="has 3 channels, but the model was trained on 2"):
        np.savez(tmp_path / "three.npz", X=np.ones((2, 4, 3)))
        clf.predict(tmp_path / "three.npz")


def test_two_processes_under_torchrun_train_one_run_and_rank_0_reports(files, tmp_path):
    out = tmp_path / "ddp"
    result, steps, _ = torchrun_train(
        tmp_path, "classify", "--train", files[0], "--test", files[1], "--out", out,
        "--epochs", 2, "--hidden-size", 4, "--no-dtw", "--quiet",
    )  # fmt: skip
    assert [s["params"] for s in steps[0]] == [s["params"] for s in steps[1]]  # in sync
    assert result.stdout.count("test accuracy on 16 sequences") == 1  # only rank 0 reports
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["processes"] == 2 and len(metrics["history"]) == 2
    SequenceClassifier.load(out).evaluate(files[1])
