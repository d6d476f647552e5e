"""gru.tasks.adding: the adding problem from Python, its old forms and its new class."""

import re

import pytest
import torch

from gru.tasks import Adder, adding
from gru.training import TrainConfig


def test_adding_task_from_python_records_history():
    config = adding.AddingConfig(
        seq_len=8, hidden_size=8, n_train=256, n_test=64,
        train=TrainConfig(epochs=2, batch_size=64, lr=0.01),
    )  # fmt: skip
    result = adding.run(config, quiet=True)
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert result.test_mse == result.history[-1]["test_mse"]
    again = adding.run(config, quiet=True)
    assert again.test_mse == result.test_mse  # seeded: the same run twice gives the same result


def test_the_class_fits_predicts_evaluates_and_loads(tmp_path):
    adder = Adder(seq_len=8, hidden_size=8, n_train=256, n_test=64, epochs=1, batch_size=64)
    result = adder.fit(out=tmp_path / "run", quiet=True)
    (_, _), (x, y) = adder.data()
    assert adder.evaluate(x, y)["mse"] == pytest.approx(result.test_mse, rel=1e-6)
    loaded = Adder.load(tmp_path / "run")
    assert torch.equal(loaded.predict(x), adder.predict(x))
    with torch.no_grad():  # predict's path: the engine has one for inference
        assert torch.equal(adding.load(tmp_path / "run")(x), loaded.predict(x))
    with pytest.raises(ValueError, match=r"AddingConfig: seq_len must be an int ≥ 2, got 1"):
        Adder(seq_len=1)
    with pytest.raises(ValueError, match=r"Adder.predict: fit or load a model first"):
        Adder().predict(x)


def test_a_model_too_large_for_memory_is_refused_before_the_run_folder_is_made(tmp_path):
    with pytest.raises(ValueError, match=r"^Adder: the model does not fit in memory: building it failed \(an allocation of [\d.]+ PiB\); try a smaller hidden_size \(--hidden-size\)$"):  # fmt: skip
        Adder(seq_len=4, hidden_size=10_000_000, n_train=64, n_test=16).fit(out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_gru_train_adding_says_so_plainly_when_predicting_the_mean_wins(tmp_path, capsys):
    from gru.cli import main

    # One epoch of four batches at lr 1e-3: the model still predicts worse than the mean.
    argv = ["train", "adding", "--seq-len", "8", "--hidden-size", "4", "--n-train", "256",
            "--n-test", "64", "--epochs", "1", "--lr", "1e-3", "--quiet", "--threads", "1",
            "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(r"test MSE 0\.\d{4}: predicting the mean \(0\.1\d{3}\) beats this model", out)
    assert "x lower" not in out
