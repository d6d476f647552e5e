"""gru.tasks.adding: the adding problem from Python, its old forms and its new class."""

import pytest
import torch

from gru.data.synthetic import adding_problem
from gru.tasks import Adder, adding
from gru.training import TrainConfig


def test_adding_task_from_python_records_history():
    config = adding.AddingConfig(
        seq_len=8, hidden_size=8, n_train=256, n_test=64,
        train=TrainConfig(epochs=2, batch_size=64, lr=0.01),
    )  # fmt: skip
    result = adding.run(config, quiet=True)
    assert [h["epoch"] for h in result.history] == [1, 2]
    # Training watches validation sequences, not the test ones, and keeps its best epoch.
    assert all("val_mse" in h and "test_mse" not in h for h in result.history)
    best = min(range(2), key=lambda i: result.history[i]["val_mse"])
    assert result.best_epoch == best + 1 and result.run_seconds >= result.seconds > 0
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


def test_validation_sequences_are_drawn_apart_from_training_and_test(tmp_path):
    adder = Adder(seq_len=6, n_train=32, n_test=16, n_val=8)
    train, test, validation = adder.splits()
    assert [len(part[0]) for part in (train, test, validation)] == [32, 16, 8]
    generator = torch.Generator().manual_seed(0)  # drawn first, as before the validation split
    before = [adding_problem(n, 6, generator=generator) for n in (32, 16)]
    assert all(torch.equal(a, b) for a, b in zip(before[0] + before[1], train + test, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(adder.data()[1], test, strict=True))
    assert not torch.equal(validation[0][:8], test[0][:8])
    with pytest.raises(ValueError, match=r"AddingConfig: n_val must be a positive int, got 0"):
        Adder(n_val=0)
    # A run folder written before the validation split loads, n_val as it is now by default.
    config = adding.AddingConfig().to_dict()
    del config["n_val"]
    assert adding.AddingConfig.from_dict(config).n_val == 1_000
