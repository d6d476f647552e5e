"""gru.tasks.forecast: the training losses, train-only scaling, the baselines of a run, the ETT
split on ETTh1, tiny runs through Python and the CLI, resume, `gru forecast`, and bad input by
its message. The baselines on hand-made data: test_baselines.py; the models: test_models.py."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from checks import assert_close, shared_data
from checks import run_cli as run
from gru.data import timeseries
from gru.tasks import Forecaster
from gru.tasks.forecast import LOSS_FUNCTIONS, LOSSES, persistence, seasonal_naive
from viz_runs import series_frame


def shared(name: str) -> Path:
    return shared_data("timeseries", name)


@pytest.fixture
def trained(forecast_trained):
    return forecast_trained


# --- the losses --------------------------------------------------------------------------------


def test_each_training_loss_is_the_formula_it_names():
    torch.manual_seed(0)
    pred, true = torch.randn(4, 6, 3), torch.randn(4, 6, 3)
    e = pred - true
    mse, mae = (e**2).mean(), e.abs().mean()
    huber = torch.where(e.abs() <= 1, 0.5 * e**2, e.abs() - 0.5).mean()
    expected = {"mse": mse, "mae": mae, "mse+mae": mse + mae, "huber": huber}
    assert set(LOSS_FUNCTIONS) == set(LOSSES) == set(expected)
    for name, value in expected.items():
        assert_close(LOSS_FUNCTIONS[name](pred, true), value, what=name)


# --- fitting -----------------------------------------------------------------------------------


def test_a_tiny_run_writes_the_whole_folder_and_predicts_the_next_steps(trained):
    forecaster, run_dir = trained
    names = {p.name for p in run_dir.iterdir()}
    assert {"config.json", "model.safetensors", "metrics.json", "training_curves.png"} <= names
    assert {"forecast_test.png", "report.html"} <= names
    metrics = json.loads((run_dir / "metrics.json").read_text())
    report = forecaster.report
    assert metrics["test"]["mse"] == report.test["mse"]
    assert set(metrics["baselines"]) == {"persistence", "seasonal_naive", "linear"}
    assert report.season == 24  # the daily cycle of hourly data, detected
    assert metrics["data"]["test windows"] == report.windows["test"] == 120 - 12 + 1
    frame = forecaster.predict(series_frame())
    assert list(frame.columns) == ["load", "temp"] and len(frame) == 12
    assert frame.index[0] == pd.Timestamp("2024-01-26 00:00")  # the hour after the last row
    assert np.isfinite(frame.to_numpy()).all()
    # A loaded run forecasts the same.
    again = Forecaster.load(run_dir).predict(series_frame())
    assert_close(again.to_numpy(), frame.to_numpy(), what="loaded forecast")


def test_the_baselines_of_a_run_are_scored_on_its_test_windows(trained):
    forecaster, _ = trained
    data = series_frame()
    series = timeseries.prepare(data, target="temp", features="M")
    parts = timeseries.split_rows(len(series))
    values = torch.from_numpy(forecaster.scaler.transform(series.values)).float()
    x, y = timeseries.windows(values, parts.test, 24, 12, [0, 1], [0, 1])
    expected = float(((persistence(x.all(), 12) - y.all()).double() ** 2).mean())
    assert forecaster.report.baselines["persistence"]["mse"] == pytest.approx(expected, rel=1e-6)
    expected = float((seasonal_naive(x.all(), 12, 24) - y.all()).double().abs().mean())
    assert forecaster.report.baselines["seasonal_naive"]["mae"] == pytest.approx(expected, rel=1e-6)


def test_scaling_is_fitted_on_the_training_rows_only(trained):
    forecaster, _ = trained
    values = series_frame()[["load", "temp"]].to_numpy()
    train_end = timeseries.split_rows(len(values)).train[1]  # 420 of 600 rows
    np.testing.assert_allclose(forecaster.scaler.mean, values[:train_end].mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(forecaster.scaler.std, values[:train_end].std(axis=0), rtol=1e-12)
    assert not np.allclose(forecaster.scaler.mean, values.mean(axis=0), rtol=1e-6)


def test_the_ett_split_of_etth1_is_12_4_4_months(tmp_path):
    forecaster = Forecaster(
        lookback=24,
        horizon=24,
        model="gru",
        features="S",
        split="ett",
        hidden_size=4,
        epochs=1,
        batch_size=1024,
    )
    report = forecaster.fit(shared("ETTh1.csv"), target="OT", out=tmp_path / "ett", quiet=True)
    split = json.loads((tmp_path / "ett" / "config.json").read_text())["data"]["split"]
    assert split == {"train": [0, 8640], "validation": [8640, 11520], "test": [11520, 14400]}
    # Every forecast start row of a part: validation and test windows start at its first row.
    assert report.windows == {
        "train": 8640 - 24 - 24 + 1,
        "validation": 2880 - 24 + 1,
        "test": 2880 - 24 + 1,
    }
    assert set(report.baselines) == {"persistence", "seasonal_naive", "linear"}
    assert report.season == 24


def test_resume_after_an_interruption_ends_as_an_uninterrupted_run(tmp_path):
    settings = dict(
        lookback=24, horizon=12, model="gru", hidden_size=6, epochs=2, batch_size=64, dropout=0.0
    )
    whole = Forecaster(**settings)
    whole.fit(series_frame(), target="temp", quiet=True)  # no folder: the weights are enough

    def stop_after_epoch_1(message):
        if message.startswith("epoch 2/"):
            raise KeyboardInterrupt

    stopped = tmp_path / "stopped"
    with pytest.raises(KeyboardInterrupt):
        Forecaster(**settings).fit(
            series_frame(), target="temp", out=stopped, log=stop_after_epoch_1
        )
    assert "report.html" not in {p.name for p in stopped.iterdir()}
    resumed = Forecaster(**settings)
    report = resumed.fit(series_frame(), target="temp", out=stopped, resume=True, quiet=True)
    assert [h["epoch"] for h in report.history] == [1, 2]
    for name, value in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], value), name
    assert (stopped / "report.html").is_file()
    with pytest.raises(
        ValueError, match=r"trained with a different configuration: lookback was 24, now 12"
    ):
        Forecaster(**{**settings, "lookback": 12}).fit(
            series_frame(), target="temp", out=stopped, resume=True
        )


# --- the command line --------------------------------------------------------------------------


def test_train_forecast_and_explain_from_the_command_line(capsys, tmp_path):
    csv = shared("airline-passengers.csv")
    out = tmp_path / "air"
    code, stdout, _ = run(capsys, "train", "forecast", "--csv", csv, "--target", "Passengers", "--lookback", 24, "--horizon", 6, "--segment", 6, "--hidden-size", 8, "--epochs", 1, "--out", out, "--quiet")  # fmt: skip
    assert code == 0 and "seasonal naive (12)" in stdout and "linear" in stdout
    assert (out / "report.html").is_file()
    # gru forecast: the 6 months after the end of the CSV (December 1960), as CSV and PNG.
    code, stdout, _ = run(capsys, "forecast", "--run", out, "--csv", csv)
    assert code == 0 and "1961-01-01" in stdout
    written = out / "forecast-airline-passengers.csv"
    frame = pd.read_csv(written)
    assert list(frame.columns) == ["Month", "Passengers"]
    assert frame["Month"].tolist() == [f"1961-0{m}-01" for m in range(1, 7)]
    assert written.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # gru explain with a CSV shorter than the lookback: a clear error, nothing written.
    short = tmp_path / "short.csv"
    pd.read_csv(csv).head(20).to_csv(short, index=False)
    before = sorted(p.name for p in out.iterdir())
    code, _, err = run(capsys, "explain", "--run", out, "--csv", short)
    assert code == 2
    assert "explain: " in err and "has 20 rows, fewer than the model's lookback of 24" in err
    assert "give at least 24" in err
    assert sorted(p.name for p in out.iterdir()) == before
    # Between the lookback and lookback + horizon rows: the page says what it could compare.
    partial = tmp_path / "partial.csv"
    pd.read_csv(csv).head(28).to_csv(partial, index=False)
    code, _, _ = run(
        capsys, "explain", "--run", out, "--csv", partial, "--out", tmp_path / "e.html"
    )
    assert code == 0
    assert "only the first 4 forecast steps have actual values" in (tmp_path / "e.html").read_text()
    # Another task's command refuses a forecast run.
    code, _, err = run(capsys, "generate", "--run", out, "--prompt", "x")
    assert code == 2 and "is a 'forecast' run, not a textgen run" in err
    code, _, err = run(capsys, "forecast", "--run", out, "--csv", short)
    assert code == 2 and "has 20 rows; the model reads the last lookback=24 rows" in err


# --- bad input ---------------------------------------------------------------------------------


def test_bad_input_is_named(tmp_path, capsys):
    data = series_frame(200)
    f = Forecaster(lookback=24, horizon=12, model="gru", hidden_size=4, epochs=1)
    need = timeseries.minimum_length(24, 12)
    with pytest.raises(
        ValueError,
        match=rf"data: the DataFrame has 60 rows, too few for lookback 24 \+ horizon 12 with a 70/10/20 split: .* the minimum length is {need} rows",
    ):
        f.fit(data.head(60), target="temp")
    with pytest.raises(
        ValueError,
        match=r"has no column 'tmp' \(the target\); its columns are 'load', 'temp' \(and the time column 'date'\)",
    ):
        f.fit(data, target="tmp")
    gappy = data.copy()
    gappy.loc[5, "load"] = None
    with pytest.raises(
        ValueError,
        match=r"column 'load' of the DataFrame has 1 missing value \(row 5\); fill them with --fillna",
    ):
        f.fit(gappy, target="temp")
    with pytest.raises(ValueError, match=r"split='ett' needs 20 months of rows"):
        Forecaster(lookback=24, horizon=12, split="ett").fit(data, target="temp")
    with pytest.raises(
        ValueError, match=r"ForecastConfig: season must be between 1 and lookback=24"
    ):
        Forecaster(lookback=24, horizon=12, season=25)
    with pytest.raises(
        ValueError, match=r"ForecastConfig: features must be one of \('S', 'M', 'MS'\), got 'X'"
    ):
        Forecaster(features="X")
    with pytest.raises(ValueError, match=r"ForecastConfig: dropout must be in \[0, 1\), got 1.0"):
        Forecaster(dropout=1.0)
    # From the command line: exit code 2, the message, no run folder.
    csv = tmp_path / "short.csv"
    data.head(60).to_csv(csv, index=False)
    code, _, err = run(capsys, "train", "forecast", "--csv", csv, "--target", "temp", "--lookback", 24, "--horizon", 12, "--out", tmp_path / "run", "--quiet")  # fmt: skip
    assert code == 2 and f"the minimum length is {need} rows" in err
    assert not (tmp_path / "run").exists()


def test_forecast_never_writes_over_its_input_and_an_existing_file_only_when_asked(
    trained, capsys, tmp_path
):
    _, run_dir = trained
    csv = tmp_path / "in.csv"
    series_frame().to_csv(csv, index=False)
    original = csv.read_bytes()
    (tmp_path / "link.csv").symlink_to(csv)
    for output in (csv, tmp_path / "." / "in.csv", tmp_path / "link.csv"):
        for overwrite in ([], ["--overwrite"]):
            code, _, err = run(capsys, "forecast", "--run", run_dir, "--csv", csv, "--out", output, *overwrite)  # fmt: skip
            assert code == 2 and f"gru: error: --out: '{output}' is --csv '{csv}', which it would overwrite; a command never replaces its input" in err  # fmt: skip
    (tmp_path / "data.png").write_bytes(original)  # a CSV named .png: the plot would replace it
    code, _, err = run(capsys, "forecast", "--run", run_dir, "--csv", tmp_path / "data.png", "--out", tmp_path / "data.csv")  # fmt: skip
    assert code == 2 and f"--out's plot: '{tmp_path / 'data.png'}' is --csv" in err
    assert csv.read_bytes() == original

    output = tmp_path / "out.csv"
    output.write_text("precious")
    code, _, err = run(capsys, "forecast", "--run", run_dir, "--csv", csv, "--out", output)
    assert code == 2 and err.strip() == f"gru: error: --out: '{output}' already exists; choose another name, or replace it with --overwrite"  # fmt: skip
    assert output.read_text() == "precious" and not output.with_suffix(".png").exists()
    (tmp_path / "pic.png").write_bytes(b"mine")
    code, _, err = run(capsys, "forecast", "--run", run_dir, "--csv", csv, "--out", tmp_path / "pic.csv")  # fmt: skip
    assert code == 2 and f"--out's plot: '{tmp_path / 'pic.png'}' already exists" in err
    assert (tmp_path / "pic.png").read_bytes() == b"mine" and not (tmp_path / "pic.csv").exists()
    code, out, _ = run(capsys, "forecast", "--run", run_dir, "--csv", csv, "--out", output, "--overwrite")  # fmt: skip
    assert code == 0 and f"wrote {output} and {output.with_suffix('.png')}" in out
    assert list(pd.read_csv(output).columns) == ["date", "load", "temp"]
    code, _, err = run(capsys, "forecast", "--run", run_dir, "--csv", csv, "--out", tmp_path / "in.csv" / "x.csv")  # fmt: skip
    assert code == 2 and f"'{csv}' is a file, not a folder" in err
    # --output, the old name of --out, still works, and says so; both at once are refused.
    old = tmp_path / "old.csv"
    code, out, err = run(capsys, "forecast", "--run", run_dir, "--csv", csv, "--output", old)
    assert code == 0 and f"wrote {old} and {old.with_suffix('.png')}" in out
    assert (
        err == "gru: warning: --output is the old name of --out; it still works, but write --out\n"
    )
    code, _, err = run(capsys, "forecast", "--run", run_dir, "--csv", csv, "--output", old, "--out", output)  # fmt: skip
    assert code == 2 and err == "gru: error: give --out or its old name --output, not both\n"


def test_limit_trains_on_the_first_rows_only(capsys, tmp_path):
    csv = shared("airline-passengers.csv")  # 144 months
    out = tmp_path / "air"
    code, stdout, _ = run(capsys, "train", "forecast", "--csv", csv, "--target", "Passengers", "--limit", 100, "--lookback", 12, "--horizon", 3, "--segment", 6, "--hidden-size", 8, "--epochs", 1, "--out", out, "--quiet")  # fmt: skip
    assert code == 0
    assert json.loads((out / "config.json").read_text())["config"]["limit"] == 100
    windows = int(re.search(r"test \(([\d,]+) windows", stdout)[1])
    assert windows == 20 - 3 + 1  # the last 20% of 100 rows, each a start of 3 steps
    with pytest.raises(ValueError, match=r"ForecastConfig: limit must be an int ≥ 2, got 1"):
        Forecaster(limit=1)


def test_a_dropout_of_the_wrong_type_is_named():
    with pytest.raises(TypeError, match=r"^ForecastConfig: dropout must be a number, got 'a'$"):
        Forecaster(dropout="a")
