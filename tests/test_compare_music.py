"""gru.tasks.compare_music and `gru compare --task music`: each seed trained as `gru train music`
trains it, the mean and spread over the seeds, the per-data-set defaults, the files written
(after every run, then the table), and bad input refused before any training."""

import json
import re
import statistics
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from checks import run_cli, shared_data
from gru.ops.threads import threads
from gru.tasks import compare_music
from gru.tasks.compare_music import DEFAULT_DATA, MusicCompareConfig
from gru.tasks.music import PAPER, MusicModel
from gru.training import TrainingDiverged

ROOT = Path(__file__).resolve().parents[1]  # where the default data's paths start
TINY = ["--epochs", 2, "--threads", 1, "--quiet"]


def write_mat(path, pieces: int = 3, seed: int = 0):
    """A .mat file of the three splits, ``pieces`` random rolls of 4-7 steps each."""
    generator = np.random.default_rng(seed)
    cells = {}
    for name in ("traindata", "validdata", "testdata"):
        cell = np.empty((1, pieces), dtype=object)
        for i in range(pieces):
            cell[0, i] = (generator.random((4 + i % 4, 88)) < 0.1).astype(np.uint8)
        cells[name] = cell
    scipy.io.savemat(path, cells)
    return path


def test_each_seed_is_the_run_gru_train_music_makes_and_the_table_sums_them_up(tmp_path, capsys):
    jsb = shared_data("music", "JSB_Chorales.mat")
    out = tmp_path / "out"
    argv = ["compare", "--task", "music", "--data", jsb, "--limit", 4, "--seeds", 0, 1]
    code, printed, _ = run_cli(capsys, *argv, "--models", "gru,rnn", *TINY, "--out", out)
    assert code == 0
    result = json.loads((out / "compare.json").read_text())
    assert result["complete"] and [r["cell"] for r in result["rows"]] == ["gru", "rnn"]
    with threads(1):  # as --threads 1 trained them
        alone = MusicModel.from_preset("chung2014", cell="rnn", seed=1, limit=4, epochs=2)
        expected = alone.fit(jsb, quiet=True)
    rnn = result["rows"][1]
    assert [s["seed"] for s in rnn["seeds"]] == [0, 1]
    assert rnn["seeds"][1]["nll"] == expected.test["nll"]
    assert rnn["seeds"][1]["best_epoch"] == expected.best_epoch and rnn["parameters"] == 27888
    values = [s["nll"] for s in rnn["seeds"]]
    assert values[0] != values[1]  # the seeds differ
    assert rnn["mean"] == pytest.approx(statistics.fmean(values), rel=1e-12)
    assert rnn["std"] == pytest.approx(abs(values[0] - values[1]) / 2**0.5, rel=1e-9)
    assert rnn["paper"] == PAPER["JSB_Chorales"]["rnn"] == 9.10
    assert (
        result["baselines"]["JSB_Chorales"]
        == expected.baselines["each key's frequency in the training steps"]["nll"]
    )
    table = (out / "compare.md").read_text()
    assert printed.strip() in table  # --quiet prints the table alone
    row = next(line for line in table.splitlines() if "tanh RNN" in line)
    assert f"| {rnn['mean']:.3f} ± {rnn['std']:.3f} |" in row and "| 9.10 |" in row
    assert ", ".join(f"{v:.3f}" for v in values) in row and "| 27,888 |" in row
    baseline = result["baselines"]["JSB_Chorales"]
    assert (
        f"| JSB_Chorales | per-key frequency baseline (no model) | 88 | {baseline:.3f} |" in table
    )
    assert "**A smoke test** (at most 4 pieces of each split)" in table
    assert "JSB_Chorales: lr 0.001, batches of 16, at most 2 epochs" in table


def test_nottingham_trains_at_its_measured_lr_unless_told(tmp_path, monkeypatch, capsys):
    data = [write_mat(tmp_path / "Nottingham.mat"), write_mat(tmp_path / "Mine.mat", seed=1)]
    trained = []
    real = MusicModel.fit

    def spy(self, *args, **kwargs):
        train = self.config.train
        trained.append((self.config.cell, train.lr, train.batch_size, train.seed))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(MusicModel, "fit", spy)
    argv = ["compare", "--task", "music", "--data", *data, "--models", "gru", "--seed", 3, *TINY]
    assert run_cli(capsys, *argv, "--out", tmp_path / "a")[0] == 0
    assert trained == [("gru", 3e-3, 4, 3), ("gru", 1e-3, 16, 3)]  # Mine: the preset's
    result = json.loads((tmp_path / "a" / "compare.json").read_text())
    expected = {"path": str(data[0]), "lr": 3e-3, "batch_size": 4, "epochs": 2}
    assert result["data"]["Nottingham"] == expected
    assert "lr" not in result["data"]["Mine"]
    assert [r["paper"] for r in result["rows"]] == [PAPER["Nottingham"]["gru"], None]
    assert result["rows"][0]["std"] is None  # one seed: no spread
    trained.clear()
    assert run_cli(capsys, *argv, "--lr", 0.01, "--out", tmp_path / "b")[0] == 0
    assert trained == [("gru", 0.01, 4, 3), ("gru", 0.01, 16, 3)]
    assert (
        "Nottingham: lr 0.01, batches of 4, at most 2 epochs"
        in (tmp_path / "b" / "compare.md").read_text()
    )


def test_compare_json_holds_every_finished_run_when_one_is_killed(tmp_path, monkeypatch):
    real, calls = MusicModel.fit, []

    def killed_at_the_third(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(MusicModel, "fit", killed_at_the_third)
    config = MusicCompareConfig(data=[write_mat(tmp_path / "x.mat")], seeds=[0, 1], epochs=1)
    with pytest.raises(KeyboardInterrupt):
        compare_music.run(config, out=tmp_path / "out", quiet=True)
    result = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert not result["complete"] and not (tmp_path / "out" / "compare.md").exists()
    assert [(r["cell"], [s["seed"] for s in r["seeds"]]) for r in result["rows"]] == [
        ("gru", [0, 1])
    ]


def test_the_default_data_is_both_files_beside_the_repository(monkeypatch, tmp_path):
    for path in (shared_data("music", "JSB_Chorales.mat"), shared_data("music", "Nottingham.mat")):
        assert path.is_file()
    monkeypatch.chdir(ROOT)
    assert compare_music.default_data() == list(DEFAULT_DATA)
    assert list(MusicCompareConfig().sets()) == ["JSB_Chorales", "Nottingham"]
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"no data: give --data FILE.mat .* are not there"):
        MusicCompareConfig().sets()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--task", "music,adding-100"], "--task music runs alone"),
        (["--task", "music", "--imdb", "x", "--quick"], "--imdb, --quick: not options of --task"),
        (["--task", "music", "--seeds", 0, 0], r"seeds must differ, got \[0, 0\]"),
        (["--task", "music", "--seed", 1, "--seeds", 0], "give --seed or --seeds, not both"),
        (["--task", "music", "--models", "gru,mingru"], "unknown model 'mingru'; the music"),
        (["--task", "music", "--data", "{tmp}/no.mat"], "no.mat"),
        (["--task", "music", "--data", "{tmp}/bad.mat"], "bad.mat' has no 'validdata'"),
        (["--task", "music", "--data", "{tmp}/x.mat", "{tmp}/b/x.mat"], "two data sets are named"),
        (["--task", "music", "--data", "{tmp}/x.mat", "--out", "{tmp}"], "not empty"),
        (["--data", "{tmp}/x.mat"], "--data: options of --task music only"),
        (["--task", "music", "--lr", "0"], "--lr: .*must be a finite number > 0"),
    ],
)
def test_bad_input_exits_2_before_any_training(tmp_path, capsys, options, message):
    write_mat(tmp_path / "x.mat")
    (tmp_path / "b").mkdir()
    write_mat(tmp_path / "b" / "x.mat")
    cell = np.empty((1, 1), dtype=object)
    cell[0, 0] = np.zeros((3, 88), np.uint8)
    scipy.io.savemat(tmp_path / "bad.mat", {"traindata": cell})  # no validdata, no testdata
    argv = [str(o).format(tmp=tmp_path) for o in options]
    out = [] if "--out" in argv else ["--out", str(tmp_path / "out")]
    if "--lr" in argv:
        with pytest.raises(SystemExit) as exit_info:  # argparse refuses it
            run_cli(capsys, "compare", *argv, *out)
        code, err = exit_info.value.code, capsys.readouterr().err
    else:
        code, _, err = run_cli(capsys, "compare", *argv, *out)
    assert code == 2 and "Traceback" not in err
    assert re.search(message, err), err
    assert not (tmp_path / "out").exists()  # nothing written


def test_a_seed_that_diverges_is_named_with_its_epoch_and_left_out_of_the_mean(
    tmp_path, monkeypatch
):
    data = [write_mat(tmp_path / "x.mat")]
    # A learning rate of 1e38 overflows the first step's weights: every run diverges for real.
    config = MusicCompareConfig(data=data, cells=["rnn"], seeds=[0, 1], epochs=2, lr=1e38)
    result = compare_music.run(config, out=tmp_path / "all", quiet=True)
    (row,) = result.rows
    assert row["mean"] is None and row["std"] is None and row["diverged"] == 2
    assert [s["diverged_at_epoch"] for s in row["seeds"]] == [1, 1]
    assert "training diverged at epoch 1" in row["seeds"][0]["error"]
    assert "| all diverged | diverged (epoch 1), diverged (epoch 1) |" in result.table
    assert result.baselines["x"] > 0  # the baseline needs no trained model
    saved = json.loads((tmp_path / "all" / "compare.json").read_text())
    assert saved["complete"] and saved["rows"][0]["diverged"] == 2

    real = MusicModel.fit

    def seed_1_diverges(self, *args, **kwargs):
        if self.config.train.seed == 1:  # as fit does: the model built, then training stops
            self.model = self._build_model()
            raise TrainingDiverged("fit: training diverged at epoch 7", epoch=7)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(MusicModel, "fit", seed_1_diverges)
    config = MusicCompareConfig(data=data, cells=["gru"], seeds=[0, 1, 2], epochs=1)
    (row,) = compare_music.run(config, quiet=True).rows
    scored = [s["nll"] for s in row["seeds"] if "nll" in s]
    assert len(scored) == 2 and row["diverged"] == 1
    assert row["mean"] == pytest.approx(statistics.fmean(scored), rel=1e-12)
    table = compare_music._table([row], {"x": 1.0}, config)
    assert f"| {row['mean']:.3f} ± {row['std']:.3f} (1 of 3 diverged) |" in table
    assert f"| {scored[0]:.3f}, diverged (epoch 7), {scored[1]:.3f} |" in table
