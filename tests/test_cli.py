"""The command line, run in-process through main([...])."""

import subprocess
import sys

import pytest

from gru import __version__
from gru.cli import main
from gru.tasks import adding
from gru.training import TrainConfig


def test_train_adding_beats_the_mean_baseline(capsys):
    code = main(
        [
            "train",
            "adding",
            "--seq-len",
            "10",
            "--n-train",
            "3000",
            "--n-test",
            "500",
            "--epochs",
            "3",
            "--batch-size",
            "32",
            "--lr",
            "0.01",
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    words = out.split()
    mse, baseline = float(words[words.index("MSE") + 1]), float(words[words.index("baseline") + 1])
    assert baseline == pytest.approx(1 / 6, abs=0.03)
    assert mse < baseline / 4


def test_adding_task_from_python_records_history():
    config = adding.AddingConfig(
        seq_len=8,
        hidden_size=8,
        n_train=256,
        n_test=64,
        batch_size=64,
        train=TrainConfig(epochs=2, lr=0.01, quiet=True),
    )
    result = adding.run(config)
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert result.test_mse == result.history[-1]["test_mse"]
    again = adding.run(config)
    assert again.test_mse == result.test_mse  # seeded: the same run twice gives the same result


def test_bad_arguments_exit_2_with_a_message(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "adding", "--epochs", "0"])
    assert exit_info.value.code == 2
    assert "--epochs: must be a positive integer, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "nonsense"])
    assert "invalid choice: 'nonsense'" in capsys.readouterr().err


def test_version_and_module_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "gru", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"gru {__version__}"
