"""gru.tasks.runs: one run folder from its checks to its report, the configs' shared rules, and
a run of any task read back; every refusal by its message, with nothing written."""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from gru import checkpoint
from gru._io import atomic_write
from gru.tasks import runs
from gru.tasks.forecast import ForecastConfig
from gru.training import FitResult, TrainConfig


@dataclass
class TinyConfig(runs.TaskConfig):
    width: int = 3
    train: TrainConfig = field(default_factory=runs.least_val_loss(epochs=2, batch_size=4, lr=0.1))

    def check(self) -> None:
        runs.check_ints("TinyConfig", self, {"width": 1})


class Tiny(runs.Task):
    """A task whose model is one linear layer and which stores a word in config.json."""

    task = "tiny"
    config_class = TinyConfig
    word: str | None = None

    def _build_model(self) -> nn.Module:
        return nn.Linear(self.config.width, 1)

    def _restore(self, stored: dict, run_dir) -> None:
        self.word = stored["word"]


def folder(tmp_path, name="run", **options) -> runs.RunFolder:
    return runs.RunFolder("tiny", "Tiny.fit", tmp_path / name, **options)


def finished(tmp_path, config: dict, data: dict | None = None) -> runs.RunFolder:
    """A run folder of task "tiny" with its config.json written."""
    run = folder(tmp_path)
    run.check(config, data)
    run.start(config, data, word="hello")
    return run


# --- the folder --------------------------------------------------------------------------------


def test_a_new_run_writes_its_config_and_at_the_end_its_metrics_and_report(tmp_path):
    config = TinyConfig().to_dict()
    run = finished(tmp_path, config, {"source": "/data.csv"})
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    assert stored["task"] == "tiny" and stored["config"] == config and stored["word"] == "hello"
    assert stored["data"] == {"source": "/data.csv"} and stored["gru_version"]
    history = [{"epoch": 1, "loss": 0.5}]
    result = FitResult(history, best_epoch=1, stopped_early=False, seconds=2.0, steps=3)
    report = runs.RunReport(**run.outcome(result))
    assert report.run_dir == tmp_path / "run" and report.training_seconds == 2.0
    assert report.seconds >= 0
    run.finish(report, {"test": {"mse": 0.1}})
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test"] == {"mse": 0.1} and metrics["history"] == result.history
    assert {"best_epoch", "seconds", "training_seconds", "threads"} <= set(metrics)
    assert (tmp_path / "run" / "report.html").is_file()


def test_a_run_without_a_folder_writes_nothing_and_speaks_unless_quiet(tmp_path):
    said = []
    run = runs.RunFolder("tiny", "Tiny.fit", None, log=said.append)
    run.check({}, {})
    run.start({})
    run.say("hello")
    run.finish(None, {})
    assert not run.writes and run.main and run.world == 1 and said == ["hello"]
    quiet = runs.RunFolder("tiny", "Tiny.fit", None, quiet=True, log=said.append)
    quiet.say("nothing")
    assert said == ["hello"] and list(tmp_path.iterdir()) == []


def test_out_must_be_new_or_empty_and_resume_needs_it(tmp_path):
    (tmp_path / "run").mkdir()
    folder(tmp_path).check({})  # an empty folder is fine
    (tmp_path / "run" / "file").write_text("x")
    with pytest.raises(
        ValueError,
        match=r"Tiny.fit: out '.*run' already exists and is not empty; pick a new folder, or "
        r"continue that run with --resume .*run \(resume=True from Python\)",
    ):
        folder(tmp_path).check({})
    with pytest.raises(ValueError, match=r"Tiny.fit: resume=True needs out, the run to resume"):
        runs.RunFolder("tiny", "Tiny.fit", None, resume=True)
    # A file was "already exists and is not empty; pick a new folder, or continue that run
    # with --resume": neither a folder nor a run.
    with pytest.raises(ValueError, match=r"--out: '.*file' is a file, not a folder; pick a new folder$"):  # fmt: skip
        runs.check_new_folder(tmp_path / "run" / "file", "--out:")
    with pytest.raises(ValueError, match=r"Tiny.fit: out '.*file' is a file, not a folder"):
        runs.RunFolder("tiny", "Tiny.fit", tmp_path / "run" / "file").check({})
    assert (tmp_path / "run" / "file").read_text() == "x"


def test_resume_must_be_a_run_of_this_task_with_this_config_and_data(tmp_path):
    config = TinyConfig().to_dict()
    finished(tmp_path, config, {"source": "/a.csv", "target": "OT"})
    again = folder(tmp_path, resume=True)
    again.check(config, {"source": "/a.csv", "target": None})  # None: not known, not checked
    changed = TinyConfig(width=5).to_dict()
    with pytest.raises(
        ValueError,
        match=r"Tiny.fit: resume: '.*run' was trained with a different configuration: width was "
        r"3, now 5; resume with the run's own settings",
    ):
        again.check(changed)
    with pytest.raises(ValueError, match=r"was trained on '/a.csv', not '/b.csv'"):
        again.check(config, {"source": "/b.csv"})
    with pytest.raises(ValueError, match=r"was trained with target 'OT', not 'HUFL'"):
        again.check(config, {"target": "HUFL"})
    other = runs.RunFolder("other", "Other.fit", tmp_path / "run", resume=True)
    with pytest.raises(
        ValueError, match=r"Other.fit: resume: '.*run' is a 'tiny' run, not an other run"
    ):
        other.check(config)
    before = (tmp_path / "run" / "config.json").read_text()
    again.start(changed)  # a resumed run keeps its config.json
    assert (tmp_path / "run" / "config.json").read_text() == before


def test_a_checked_file_beside_the_config(tmp_path):
    run = folder(tmp_path)
    digest = run.write_text("words.json", '{"the": 1}')
    run.start({}, words=digest)  # writes config.json, then words.json
    assert runs.read_checked(tmp_path / "run", "words.json", digest) == '{"the": 1}'
    (tmp_path / "run" / "words.json").write_text('{"the": 2}')
    with pytest.raises(ValueError, match=r"run: '.*words.json' was altered: it does not match"):
        runs.read_checked(tmp_path / "run", "words.json", digest)
    with pytest.raises(ValueError, match=r"run: cannot read '.*nowhere.json'"):
        runs.read_checked(tmp_path / "run", "nowhere.json", digest)


def killed_inside(name: str):
    """An atomic_write that is killed inside its write of ``name``: the temporary file stays
    (under the writer's pattern), the destination is not written, and the process ends."""

    def write(path, content):
        path = Path(path)
        if path.name != name:
            return atomic_write(path, content)
        (path.parent / f".{name}.k3x9q0a1.tmp").write_bytes(b'{"format": "gr')
        raise SystemExit(-9)

    return write


def test_config_json_comes_first_and_a_folder_of_a_killed_start_is_new(tmp_path, monkeypatch):
    run = folder(tmp_path)
    run.check({})
    digest = run.write_text("words.json", '{"the": 1}')
    monkeypatch.setattr(checkpoint, "atomic_write", killed_inside("config.json"))
    with pytest.raises(SystemExit):
        run.start({}, words=digest)
    assert os.listdir(tmp_path / "run") == [".config.json.k3x9q0a1.tmp"]  # no words.json yet
    monkeypatch.undo()

    again = folder(tmp_path)
    again.check({})  # what a killed write left is not a run: the folder counts as empty
    again.start({}, words=again.write_text("words.json", '{"the": 1}'))
    assert sorted(os.listdir(tmp_path / "run")) == ["config.json", "words.json"]
    check = runs.check_new_folder
    with pytest.raises(ValueError, match=r"out '.*run' already exists and is not empty"):
        check(tmp_path / "run", "out")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / ".notes.txt.swp").write_text("x")  # not the writer's: refused
    with pytest.raises(ValueError, match=r"out '.*other' already exists and is not empty"):
        check(tmp_path / "other", "out")


def test_resume_writes_the_checked_file_a_kill_left_unwritten_and_refuses_another(
    tmp_path, monkeypatch
):
    run = folder(tmp_path)
    run.check({})
    digest = run.write_text("words.json", '{"the": 1}')
    monkeypatch.setattr(runs, "atomic_write", killed_inside("words.json"))
    with pytest.raises(SystemExit):
        run.start({}, words=digest)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path / "run")) == [".words.json.k3x9q0a1.tmp", "config.json"]

    again = folder(tmp_path, resume=True)
    again.check({})
    assert again.write_text("words.json", '{"the": 1}') == digest
    assert runs.read_checked(tmp_path / "run", "words.json", digest) == '{"the": 1}'
    with pytest.raises(
        ValueError,
        match=r"Tiny.fit: resume: words.json of '.*run' is not the one this data gives "
        r"\(was the data changed since the run started\?\)",
    ):
        again.write_text("words.json", '{"the": 2}')
    again.finish(None, {})
    assert sorted(os.listdir(tmp_path / "run")) == [
        "config.json", "metrics.json", "report.html", "words.json"
    ]  # fmt: skip


def test_training_in_the_run_folder_checkpoints_there(tmp_path):
    torch.manual_seed(0)
    x, y = torch.randn(8, 3), torch.randn(8)
    model = nn.Sequential(nn.Linear(3, 1), nn.Flatten(0))
    run = runs.RunFolder("tiny", "Tiny.fit", tmp_path / "run", quiet=True)
    run.start(TinyConfig().to_dict())
    config = TrainConfig(epochs=2, batch_size=4)
    result = run.train(model, nn.functional.mse_loss, (x, y), config)
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert (tmp_path / "run" / checkpoint.MODEL_FILE).is_file()


# --- reading a run back --------------------------------------------------------------------------


def test_a_task_loads_its_own_runs_and_refuses_others(tmp_path):
    tiny = Tiny(width=2)
    tiny.model = tiny._build_model()
    run = finished(tmp_path, tiny.config.to_dict())
    checkpoint.save_model(run.path, tiny.model.state_dict(), checkpoint.load_config(run.path))
    loaded = Tiny.load(run.path)
    assert loaded.word == "hello" and loaded.config.width == 2 and not loaded.model.training
    assert torch.equal(loaded.model.weight, tiny.model.weight)
    with pytest.raises(ValueError, match=r"run: '.*run' is a 'tiny' run, not a forecast run"):
        runs.load_run(run.path, "forecast")
    stored = json.loads((run.path / "config.json").read_text())
    del stored["word"]
    checkpoint.write_json(run.path / "config.json", stored)
    with pytest.raises(ValueError, match=r"run: config.json of '.*run' lacks 'word'"):
        Tiny.load(run.path)


def test_weights_that_do_not_fit_the_config_are_named(tmp_path):
    run = finished(tmp_path, TinyConfig().to_dict())
    with pytest.raises(ValueError, match=r"model.safetensors of '.*run' does not fit"):
        runs.load_weights(nn.Linear(4, 1), run.path, {}, state=nn.Linear(3, 1).state_dict())


# --- configs -------------------------------------------------------------------------------------


def test_a_task_takes_a_config_or_settings_by_name():
    assert Tiny(width=4, epochs=7).config.train.epochs == 7
    with pytest.raises(TypeError, match=r"Tiny: give either config or settings by name, not both"):
        Tiny(TinyConfig(), width=2)
    with pytest.raises(TypeError, match=r"Tiny: unknown setting 'depth'"):
        Tiny(depth=2)
    with pytest.raises(ValueError, match=r"TinyConfig: width must be a positive int, got 0"):
        Tiny(width=0)
    # Own settings go to the constructor, so a default that follows them does.
    made = runs.settled_config(None, ForecastConfig, {"model": "gru"}, "Forecaster")
    assert made.hidden_size == 64


def test_the_defaults_of_a_val_loss_task_are_a_new_config_each_time():
    a, b = TinyConfig(), TinyConfig()
    assert a.train is not b.train and a.train == b.train
    assert (a.train.schedule, a.train.monitor, a.train.mode) == ("cosine", "val_loss", "min")
    assert a.train.restore_best and (a.train.epochs, a.train.batch_size) == (2, 4)


def test_configs_round_trip_and_name_what_does_not_fit():
    config = TinyConfig(width=2)
    assert TinyConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match=r"x: does not describe a TinyConfig \(unknown settings"):
        TinyConfig.from_dict({**config.to_dict(), "depth": 1}, where="x")
    with pytest.raises(ValueError, match=r"its training settings are not a TrainConfig"):
        TinyConfig.from_dict({"width": 2, "train": {"epochs": 1}})
    with pytest.raises(ValueError, match=r"C: anomalies must be an int ≥ 0, got -1"):
        runs.check_ints("C", SimpleNamespace(anomalies=-1), {"anomalies": 0})
    with pytest.raises(ValueError, match=r"C: anomalies must be an int ≥ 0, got True"):
        runs.check_ints("C", SimpleNamespace(anomalies=True), {"anomalies": 0})
    runs.check_ints("C", SimpleNamespace(anomalies=None), {"anomalies": 0}, optional=["anomalies"])


def test_differences_and_source_names():
    a = {"lr": 1, "train": {"epochs": 2, "seed": 0}}
    b = {"lr": 1, "train": {"epochs": 3, "seed": 0}, "new": True}
    assert runs.differences(a, b) == [("new", None, True), ("train.epochs", 2, 3)]
    assert runs.source_name("data.csv") == os.path.abspath("data.csv")
    assert runs.source_name("sample", ("sample",)) == "sample"
    assert runs.source_name(object()) is None
