"""gru.tasks.compare and `gru compare`: the factory table, tiny runs on every task, the files
written, and bad names and missing data refused by message."""

import json
import re
import warnings
from pathlib import Path

import matplotlib.image
import pytest
import torch

from checks import shared_data
from gru import cli
from gru.tasks import compare
from gru.tasks.compare import MODELS, TASKS, CompareConfig


def shared(*parts: str) -> Path:
    return shared_data(*parts)


@pytest.mark.parametrize("name", list(MODELS))
def test_every_layer_ends_its_output_with_its_final_state(name):
    """The task models read the last output step as the layer's final state: true of each."""
    torch.manual_seed(0)
    layer = MODELS[name][1](3, 5)
    x = torch.randn(2, 7, 3)
    out, state = layer(x)
    h_n = state[0] if isinstance(state, tuple) else state  # LSTM: (h_n, c_n)
    assert out.shape == (2, 7, 5)
    torch.testing.assert_close(out[:, -1], h_n[-1], rtol=1e-6, atol=1e-6)


def test_parameters_are_the_layers_own():
    """LSTM 4 and GRU 3 blocks of H(I + H) + 2H; layer norm 4·3H more; minGRU 2(HI + H)."""
    I, H = 2, 32
    block = H * (I + H) + 2 * H
    expected = {
        "rnn": block,
        "lstm": 4 * block,
        "torch-gru": 3 * block,
        "gru": 3 * block,
        "gru-ln": 3 * block + 4 * 3 * H,
        "mingru": 2 * (H * I + H),
    }
    for name, count in expected.items():
        assert sum(p.numel() for p in MODELS[name][1](I, H).parameters()) == count, name


def test_quick_run_measures_every_model_and_writes_table_numbers_and_curves(tmp_path):
    from gru.data.synthetic import adding_problem

    config = CompareConfig(tasks=["adding-100"], models=["lstm", "gru"], quick=True)
    with warnings.catch_warnings(record=True) as warned:  # a loaded machine: noisy latencies
        warnings.simplefilter("always")
        result = compare.run(config, out=tmp_path / "out", quiet=True)
    assert all("spread by more than 50%" in str(w.message) for w in warned), warned
    assert [r["model"] for r in result.rows] == ["lstm", "gru"]
    # The quick problem's data, drawn as compare draws it: 500 training, 200 validation and
    # 200 test sequences from the seed.
    generator = torch.Generator().manual_seed(config.seed)
    (_, y), _, (_, y_test) = (adding_problem(n, 100, generator=generator) for n in (500, 200, 200))
    mean_mse = float(((y_test - y.mean()) ** 2).mean())  # predicting the training mean
    zero_mse = float((y_test**2).mean())  # predicting 0, about where an untrained model starts
    assert 0.1 < mean_mse < 0.25 and zero_mse > 1
    for row in result.rows:
        assert row["train_seconds_per_epoch"] > 0
        assert row["latency_sequence_s"] > 0 and row["latency_step_s"] > 0
        # Ten steps move a model from about 0 towards the mean, not past it: it has not yet
        # learned to add, so neither the mean's MSE nor the target (0.05) is reached.
        assert mean_mse < row["test"] < zero_mse, row["test"]
        assert row["steps"] == 10  # 500 sequences in batches of 50, one epoch
        assert [steps for steps, _ in row["curve"]] == [10]
        assert mean_mse < row["curve"][0][1] < zero_mse  # the validation MSE after 10 steps
        assert row["target"] == 0.05 and row["steps_to_target"] is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # only the timings' noise can warn here
        again = compare.run(
            CompareConfig(tasks=["adding-100"], models=["gru"], quick=True), quiet=True
        )
    assert again.rows[0]["test"] == result.rows[1]["test"]  # seeded: the same run, the same MSE
    assert again.rows[0]["curve"] == result.rows[1]["curve"]
    assert result.rows[0]["parameters"] == 4 * (32 * 34 + 64)
    # A quick run says it is a smoke test, and every score stands beside no model's.
    assert result.table.startswith("**A smoke test** (quick: a few hundred sequences, one epoch")
    lines = result.table.split("\n\n")[1].splitlines()
    assert lines[0].startswith("| task | layer | parameters | training s / epoch |")
    assert (
        lines[2] == f"| adding-100 | predict the mean (no model) | 0 | | | | {mean_mse:.4f} MSE | |"
    )
    assert lines[3].startswith("| adding-100 | torch.nn.LSTM | 4,608 |")
    assert "Targets (adding-100: validation mse ≤ 0.05)" in result.table

    out = tmp_path / "out"
    assert result.files == [out / "compare.md", out / "compare.json", out / "learning_curves.png"]
    assert result.table in (out / "compare.md").read_text()
    saved = json.loads((out / "compare.json").read_text())
    assert [r["layer"] for r in saved["rows"]] == ["torch.nn.LSTM", "gru.GRU"]
    assert saved["no_model"]["adding-100"] == pytest.approx(mean_mse, rel=1e-5)
    image = matplotlib.image.imread(out / "learning_curves.png")
    assert image.shape[0] > 100 and image.std() > 0  # drawn, not blank


def test_real_data_tasks_run_on_the_shared_data_and_the_sample(tmp_path):
    csv = shared("timeseries", "ETTh1.csv")
    config = CompareConfig(
        tasks=["imdb", "etth1"], models=["gru"], quick=True, imdb="sample", csv=csv
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # only the timings' noise can warn here
        result = compare.run(config, quiet=True)
    imdb, etth1 = result.rows
    assert imdb["metric"] == "accuracy" and 0 <= imdb["test"] <= 1
    assert imdb["parameters"] == 3 * (32 * 64 + 64)  # the seeds' GRU(32) on 32-wide embeddings
    assert etth1["metric"] == "mse" and 0 < etth1["test"] < 5
    assert etth1["parameters"] == 3 * (64 * (7 + 64) + 128)  # H = 64 over the 7 channels
    assert 0 < etth1["target"] < 1  # half of persistence's MSE, in standardized units
    assert re.search(
        r"\| imdb \| the majority class \(no model\) \| 0 \| \| \| \| \d+\.\d% accuracy \| \|",
        result.table,
    )
    assert "| etth1 | predict the mean (no model) | 0 | | | | " in result.table
    assert result.files == []  # no out: nothing written


def test_cli_compare_prints_and_saves(tmp_path, capsys, monkeypatch):
    from gru.tasks.timing import Timing

    noisy = (Timing(0.692, 3.0, 4), Timing(1e-4, 0.1, 300))  # repeats far apart, as under load
    monkeypatch.setattr(compare, "latencies", lambda *args: noisy)
    out = tmp_path / "cmp"
    code = cli.main(
        [
            "compare",
            "--quick",
            "--tasks",
            "adding-100",
            "--models",
            "mingru",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    printed, err = capsys.readouterr()
    assert "| adding-100 | gru.MinGRU | 192 | " in printed and "| 692.00 ms † |" in printed
    assert printed.startswith("**A smoke test**")
    assert "† Noisy: the repeats spread by more than 50% of their median." in printed
    assert err == (
        "gru: warning: compare: the latencies of adding-100 gru.MinGRU spread by more than 50% "
        "of their median between repeats (other programs busy?); marked † in the table: compare "
        "them with care, or measure again on an idle machine\n"
    )
    assert (out / "compare.md").is_file() and (out / "learning_curves.png").is_file()


BAD = [
    (
        {"models": ["gru", "transformer"]},
        r"compare: unknown model 'transformer'; valid models: rnn, lstm, torch-gru, gru, gru-ln, mingru",
    ),
    (
        {"tasks": ["adding-50"]},
        r"compare: unknown task 'adding-50'; valid tasks: adding-100, adding-400, imdb, etth1",
    ),
    (
        {"tasks": []},
        r"compare: tasks must be a non-empty list of names, got \[\]; valid tasks: adding-100",
    ),
    (
        {"models": "gru"},
        r"compare: models must be a non-empty list of names, got 'gru'; valid models: rnn",
    ),
    ({"epochs": 0}, r"compare: epochs must be a positive int, got 0"),
    (
        {"tasks": ["imdb"]},
        r"compare: the task 'imdb' needs the IMDB data: pass imdb=PATH \(--imdb PATH\)",
    ),
    (
        {"tasks": ["etth1"]},
        r"compare: the task 'etth1' needs the ETTh1 series: pass csv=PATH \(--csv PATH\)",
    ),
]


@pytest.mark.parametrize(("settings", "match"), BAD)
def test_bad_settings_are_refused_by_message(settings, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        compare.run(CompareConfig(**settings), out=tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_cli_lists_the_valid_names_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert cli.main(["compare", "--models", "gru,lstn", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == (
        "gru: error: compare: unknown model 'lstn'; valid models: " + ", ".join(MODELS)
    )
    assert cli.main(["compare", "--tasks", "adding", "--out", str(out)]) == 2
    assert "valid tasks: " + ", ".join(TASKS) in capsys.readouterr().err
    assert not out.exists()


def test_out_must_be_new_or_empty(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    with pytest.raises(ValueError, match=r"--out: '.*taken' already exists and is not empty"):
        compare.run(CompareConfig(quick=True), out=tmp_path / "taken")


def test_timings_say_how_far_their_repeats_spread():
    from gru.tasks.timing import readable, timed

    steady = timed(lambda: None, runs=50)
    assert steady.repeats == 50 and steady.median >= 0 and steady.spread >= 0
    durations = iter([0.0] + [0.001, 0.02] * 10)  # a warm-up, then calls 20 times apart

    def uneven():
        import time

        time.sleep(next(durations))

    noisy = timed(uneven, runs=20)
    assert noisy.repeats == 20 and noisy.noisy and noisy.spread > 1
    assert [readable(t) for t in (1.254, 0.00328, 4.2e-5)] == ["1.25 s", "3.28 ms", "42 µs"]
