"""gru.training.fit: the loop reaches known answers, checkpoints, resumes exactly, stops early."""

import contextlib
import copy
import io
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gru import GRU, checkpoint
from gru._io import STOP_IN_WRITE, leftovers
from gru.training import TrainConfig, TrainingDiverged, fit
from gru.training.batches import epoch_batches, lr_factor
from gru.training.warmup import warm_up
from test_checkpoint import edit_state, finish, scale_lr, step_back


def linear_problem():
    torch.manual_seed(0)
    x = torch.randn(256, 3)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.25
    return x, y


def test_fit_reaches_the_known_minimum_of_a_linear_problem():
    x, y = linear_problem()
    model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0))
    lines = []
    result = fit(
        model,
        F.mse_loss,
        (x, y),
        TrainConfig(epochs=60, batch_size=32, lr=0.05),
        evaluate=lambda m: {"mse": F.mse_loss(m(x), y).item()},
        log=lines.append,
    )
    history = result.history
    assert len(history) == 60 and len(lines) == 60
    assert history[0]["mse"] > 1.0
    assert history[-1]["mse"] < 1e-4  # the noise-free optimum is 0
    assert lines[-1].startswith("epoch 60/60  train_loss ")
    assert result.steps == 60 * 8 and result.best_epoch == 60 and not result.stopped_early
    assert torch.allclose(model[0].weight, torch.tensor([[1.0, -2.0, 0.5]]), atol=1e-2)
    assert model[0].bias.item() == pytest.approx(0.25, abs=1e-2)


def test_fit_takes_numpy_arrays_as_float32_tensors():
    """The seeds' Keras habit, model.fit(X, y) on NumPy arrays (float64 here), trains the same
    as on the float32 tensors of those arrays."""
    x, y = linear_problem()
    weights = {}
    for kind, data in (("numpy", (x.double().numpy(), y.double().numpy())), ("torch", (x, y))):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0))
        fit(model, F.mse_loss, data, TrainConfig(epochs=2, batch_size=64), quiet=True)
        weights[kind] = model.state_dict()
    for name, weight in weights["torch"].items():
        assert torch.equal(weights["numpy"][name], weight), name


def test_quiet_logs_nothing_and_gradients_are_clipped():
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    lines = []
    fit(
        model,
        lambda out, target: (out * 1e6).sum(),
        (torch.ones(1, 1), torch.ones(1)),
        TrainConfig(epochs=1, lr=0.1, clip_grad_norm=1.0),
        quiet=True,
        log=lines.append,
    )
    assert lines == []
    assert model.weight.grad.norm().item() == pytest.approx(1.0, rel=1e-6)  # raw norm was 1e6


def test_cosine_schedule_and_warm_up():
    x, y = linear_problem()
    model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0))
    config = TrainConfig(epochs=4, batch_size=64, lr=0.1, schedule="cosine")
    history = fit(model, F.mse_loss, (x, y), config, quiet=True).history
    # After epoch e of 4 (4 steps each) the factor is (1 + cos(π e / 4)) / 2.
    expected = [0.1 * (1 + math.cos(math.pi * e / 4)) / 2 for e in (1, 2, 3, 4)]
    assert [h["lr"] for h in history] == pytest.approx(expected, abs=1e-9)
    factor = lr_factor(TrainConfig(schedule="linear", warmup=0.25), total_steps=8)
    assert [factor(s) for s in range(9)] == pytest.approx(
        [0.5, 1.0, 1.0, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6, 0.0]
    )


def test_early_stopping_keeps_the_best_epochs_weights():
    x, y = linear_problem()
    model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0))
    scores, snapshots = iter([0.5, 0.7, 0.6, 0.65, 0.9]), []

    def evaluate(m):
        snapshots.append(copy.deepcopy(m.state_dict()))
        return {"val_score": next(scores)}

    config = TrainConfig(
        epochs=5, batch_size=64, lr=0.01, monitor="val_score", patience=2, restore_best=True
    )
    lines = []
    result = fit(model, F.mse_loss, (x, y), config, evaluate=evaluate, log=lines.append)
    assert len(result.history) == 4 and result.stopped_early and result.best_epoch == 2
    assert "early stop: no better val_score for 2 epochs" in lines[-1]
    for name, value in model.state_dict().items():
        assert torch.equal(value, snapshots[1][name])
    with pytest.raises(ValueError, match=r"monitor='val_nope' is not among the epoch's metrics"):
        fit(model, F.mse_loss, (x, y), TrainConfig(epochs=1, monitor="val_nope"), quiet=True)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"optimizer": "sgd"},
            r"optimizer must be one of \('adam', 'adamw', 'rmsprop'\), got 'sgd'",
        ),
        ({"epochs": 0}, r"epochs must be a positive int, got 0"),
        ({"warmup": 1.0}, r"warmup must be a fraction in \[0, 1\), got 1.0"),
        ({"patience": 2}, r"patience and restore_best need a metric to monitor"),
        ({"lr": math.inf}, r"lr must be a finite number > 0, got inf"),
        ({"lr": math.nan}, r"lr must be a finite number > 0, got nan"),
        ({"lr": 0.0}, r"lr must be a finite number > 0, got 0.0"),
        ({"eps": 0.0}, r"eps must be a finite number > 0, got 0.0"),
        ({"weight_decay": math.inf}, r"weight_decay must be a finite number ≥ 0, got inf"),
        ({"weight_decay": -0.1}, r"weight_decay must be a finite number ≥ 0, got -0.1"),
        # From Python, seed=-1 trained (or failed inside NumPy) and 2**70 failed in torch
        # with "Overflow when unpacking long long", naming nothing.
        ({"seed": -1}, r"seed must be an int from 0 to 2\*\*63 - 1, got -1"),
        ({"seed": 2**70}, r"seed must be an int from 0 to 2\*\*63 - 1, got 1180591620717411303424"),
        ({"seed": 1.5}, r"seed must be an int from 0 to 2\*\*63 - 1, got 1.5"),
        ({"seed": True}, r"seed must be an int from 0 to 2\*\*63 - 1, got True"),
    ],
)
def test_bad_settings_are_named(settings, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**settings).check()


def test_batches_depend_on_seed_and_epoch_only_shard_and_bucket():
    config = TrainConfig(batch_size=8, seed=3)
    one = epoch_batches(100, config, 1, 0, 1, None)
    assert sorted(torch.cat(one).tolist()) == list(range(100))
    assert all(
        torch.equal(a, b)
        for a, b in zip(one, epoch_batches(100, config, 1, 0, 1, None), strict=True)
    )
    assert not torch.equal(torch.cat(one), torch.cat(epoch_batches(100, config, 2, 0, 1, None)))
    shards = [torch.cat(epoch_batches(100, config, 1, r, 2, None)).tolist() for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 50 and not set(shards[0]) & set(shards[1])
    lengths = torch.randint(1, 400, (1000,), generator=torch.Generator().manual_seed(0))
    bucketed = epoch_batches(1000, TrainConfig(batch_size=16), 1, 0, 1, lengths)
    assert sorted(torch.cat(bucketed).tolist()) == list(range(1000))
    spread = torch.tensor([float(lengths[b].max() - lengths[b].min()) for b in bucketed])
    assert spread.mean() < 40  # random batches of 16 would spread over ~350


def small_dropout_model():
    torch.manual_seed(1)
    return torch.nn.Sequential(
        torch.nn.Linear(3, 16),
        torch.nn.Dropout(0.3),
        torch.nn.Tanh(),
        torch.nn.Linear(16, 1),
        torch.nn.Flatten(0),
    )


def test_resume_after_a_crash_ends_with_the_same_weights_and_history(tmp_path):
    """A run stopped mid-epoch and resumed equals one never stopped, dropout RNG included."""
    x, y = linear_problem()
    config = TrainConfig(
        epochs=3, batch_size=32, lr=0.01, optimizer="adamw", schedule="cosine", seed=5
    )
    evaluate = lambda m: {"val_mse": F.mse_loss(m(x), y).item()}
    runs = {}
    for name in ("straight", "crashed"):
        runs[name] = tmp_path / name
        runs[name].mkdir()
        checkpoint.save_config(runs[name], {"task": "toy"})

    def train(model, run, **options):
        return fit(
            model, F.mse_loss, (x, y), config, evaluate=evaluate, run_dir=runs[run],
            checkpoint_every=3, **options,
        )  # fmt: skip

    straight = small_dropout_model()
    expected = train(straight, "straight", quiet=True)

    steps = []

    def crash_at_step_13(output, target):
        steps.append(1)
        if len(steps) == 13:  # epoch 2, step 5 of 8; the last checkpoint was at step 12
            raise KeyboardInterrupt
        return torch.tensor(0.0)

    with pytest.raises(KeyboardInterrupt):
        train(small_dropout_model(), "crashed", metrics={"x": crash_at_step_13}, quiet=True)
    _, state = checkpoint.load_training_state(
        runs["crashed"], checkpoint.load_config(runs["crashed"])
    )
    assert (state["loop"]["epoch"], state["loop"]["step_in_epoch"]) == (2, 4)

    resumed_model = small_dropout_model()
    lines = []
    resumed = train(resumed_model, "crashed", resume=True, log=lines.append)
    assert lines[0] == f"resuming {runs['crashed']} at epoch 2, step 4 of 8"
    assert resumed.resumed_at_step == 12 and resumed.steps == expected.steps == 24
    for name, value in straight.state_dict().items():
        assert torch.equal(resumed_model.state_dict()[name], value), name
    drop = ("seconds", "train_x")  # the crashed run's metric, which the resumed run lacks
    assert [{k: v for k, v in h.items() if k not in drop} for h in resumed.history] == [
        {k: v for k, v in h.items() if k not in drop} for h in expected.history
    ]

    # Resuming a finished run trains nothing more.
    again = fit(
        small_dropout_model(),
        F.mse_loss,
        (x, y),
        config,
        run_dir=runs["crashed"],
        resume=True,
        quiet=True,
    )
    assert again.steps == 24 and len(again.history) == 3


def test_a_run_folder_gets_weights_history_curves_and_checkpoint(tmp_path):
    x, y = linear_problem()
    checkpoint.save_config(tmp_path, {"task": "toy"})
    model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0))
    result = fit(
        model,
        F.mse_loss,
        (x, y),
        TrainConfig(epochs=2, batch_size=64),
        evaluate=lambda m: {"val_mse": 1.0},
        run_dir=tmp_path,
        quiet=True,
    )
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "checkpoint.safetensors",
        "config.json",
        "metrics.json",
        "model.safetensors",
        "training_curves.png",
    ]
    assert json.loads((tmp_path / "metrics.json").read_text())["history"] == result.history
    assert (tmp_path / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = checkpoint.load_model_state(tmp_path)
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())


def test_the_same_seed_gives_the_same_weights():
    x, y = linear_problem()
    config = TrainConfig(epochs=2, batch_size=16, seed=7)
    a, b = small_dropout_model(), small_dropout_model()
    fit(a, F.mse_loss, (x, y), config, quiet=True)
    fit(b, F.mse_loss, (x, y), config, quiet=True)
    assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())


TINY = [
    "--limit",
    "1000",
    "--num-words",
    "300",
    "--maxlen",
    "20",
    "--embedding-dim",
    "8",
    "--hidden-size",
    "8",
    "--batch-size",
    "8",
    "--epochs",
    "2",
    "--checkpoint-every",
    "7",
    "--quiet",
]


def train_command(*options: str) -> list[str]:
    return [sys.executable, "-m", "gru", "train", "sentiment", *options]


def same_run(got: Path, want: Path) -> None:
    """Assert that two run folders hold the same run, bit for bit: every tensor of the weights
    and the checkpoint (optimizer, random states, ...), the training state and metrics.json,
    all but the seconds they took."""
    for name in ("model.safetensors", "checkpoint.safetensors"):
        a, b = checkpoint.load_tensors(got / name), checkpoint.load_tensors(want / name)
        assert a[0].keys() == b[0].keys(), name
        for key, value in b[0].items():
            assert torch.equal(a[0][key], value), f"{name}: {key}"
    states = [json.loads(load[1]["gru.state"]) for load in (a, b)]
    metrics = [json.loads((run / "metrics.json").read_text()) for run in (got, want)]
    for state, metric in zip(states, metrics, strict=True):
        for key in ("elapsed", "epoch_elapsed"):
            del state["loop"][key]
        for key in ("seconds", "seconds_per_epoch", "training_seconds"):
            del metric[key]
        for record in (*state["loop"]["history"], *metric["history"]):
            del record["seconds"]
    assert states[0] == states[1]
    assert metrics[0] == metrics[1]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    """The run folder of `TINY` trained without a stop."""
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(train_command(*TINY, "--out", str(out)), env=env, check=True, cwd=out.parent)
    return out


@pytest.mark.parametrize("moment", ["at a step", "inside a write"])
def test_kill_minus_9_then_resume_gives_the_uninterrupted_run_bit_for_bit(
    tmp_path, uninterrupted, moment
):
    """A real ``kill -9``: after some steps (seen in the trace), or while the first
    model.safetensors is written (the writer's test hook stops the process inside it)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GRU_TRACE_DIR": str(tmp_path)}
    if moment == "inside a write":
        env[STOP_IN_WRITE] = "model.safetensors:1"  # at the end of epoch 1
    killed = tmp_path / "killed"
    victim = subprocess.Popen(train_command(*TINY, "--out", str(killed)), env=env, cwd=tmp_path)
    if moment == "at a step":
        trace, deadline = tmp_path / "trace-rank0.jsonl", time.monotonic() + 120
        while not (trace.exists() and len(trace.read_text().splitlines()) >= 10):  # of 100
            assert victim.poll() is None and time.monotonic() < deadline, "the run ended early"
            time.sleep(0.005)
    else:
        _, status = os.waitpid(victim.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status), status
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    _, state = checkpoint.load_training_state(killed, checkpoint.load_config(killed))
    assert state["loop"]["epoch"] == 1 and state["loop"]["step_in_epoch"] % 7 == 0
    assert 0 < state["loop"]["step_in_epoch"] < 100  # killed mid-epoch
    assert not (killed / "model.safetensors").exists()  # no epoch had finished
    if moment == "inside a write":
        assert state["loop"]["step_in_epoch"] == 98  # the last checkpoint before the end
        assert [p.name[:19] for p in leftovers(killed)] == [".model.safetensors."]

    if moment == "at a step":
        edited_states_are_refused(killed, tmp_path / "edited")

    resume = train_command("--resume", str(killed), "--quiet")
    subprocess.run(resume, env={**env, STOP_IN_WRITE: ""}, check=True, cwd=tmp_path)
    assert leftovers(killed) == []
    same_run(killed, uninterrupted)


def edited_states_are_refused(killed: Path, edited: Path) -> None:
    """Resuming a copy of the killed run whose checkpoint's training state was edited (the
    learning rate ×100, 7 steps back, or marked finished) exits 2 naming the file."""
    from gru.cli import main

    for change in (scale_lr, step_back, finish):
        shutil.rmtree(edited, ignore_errors=True)
        shutil.copytree(killed, edited)
        edit_state(edited / "checkpoint.safetensors", change)
        with contextlib.redirect_stderr(io.StringIO()) as error:
            assert main(["train", "sentiment", "--resume", str(edited), "--quiet"]) == 2
        assert re.search(r"edited/checkpoint.safetensors' was altered: its metadata \(the "
                         r"training state", error.getvalue()), (change, error.getvalue())  # fmt: skip
        assert not (edited / "model.safetensors").exists()


def test_resume_removes_what_killed_writes_left_and_nothing_else(tmp_path):
    x, y = linear_problem()
    checkpoint.save_config(tmp_path, {"task": "toy"})
    left = [".checkpoint.safetensors.0f3a9c1e.tmp", ".metrics.json.k3_x9q0a.tmp"]
    for name in (*left, "notes.tmp", ".keep"):
        (tmp_path / name).write_text("x")
    lines = []
    model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0))
    fit(model, F.mse_loss, (x, y), TrainConfig(epochs=1), run_dir=tmp_path, resume=True,
        log=lines.append)  # fmt: skip
    assert lines[0] == f"removed what a killed write left in {tmp_path}: {left}"
    assert {".keep", "notes.tmp"} <= {p.name for p in tmp_path.iterdir()}
    assert leftovers(tmp_path) == []


def test_a_diverging_run_stops_with_an_error_and_keeps_its_last_good_checkpoint(tmp_path):
    x, y = linear_problem()
    checkpoint.save_config(tmp_path, {"task": "toy"})
    model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0))
    config = TrainConfig(epochs=3, batch_size=32, lr=1e30, clip_grad_norm=None)
    with pytest.raises(
        TrainingDiverged,
        match=r"fit: training diverged at epoch 1, step 2 of 8 "
        r"\(step 2 of the run\): the loss is inf.* the run folder keeps its "
        r"checkpoint of epoch 1, step 1 .*try a smaller lr \(now 1e\+30\)",
    ):
        fit(model, F.mse_loss, (x, y), config, run_dir=tmp_path, checkpoint_every=1, quiet=True)
    assert issubclass(TrainingDiverged, ValueError)  # the CLI's exit code 2
    assert not (tmp_path / "metrics.json").exists()  # no history of a diverged run
    tensors, state = checkpoint.load_training_state(tmp_path, checkpoint.load_config(tmp_path))
    assert state["loop"]["global_step"] == 1 and not state["loop"]["finished"]
    assert all(torch.isfinite(t).all() for t in tensors.values())
    with pytest.raises(TrainingDiverged, match=r"diverged at epoch 1, step 2 of 8"):
        fit(model, F.mse_loss, (x, y), config, run_dir=tmp_path, resume=True, quiet=True)


def test_weights_that_turn_non_finite_stop_the_run_before_they_are_saved(tmp_path):
    checkpoint.save_config(tmp_path, {"task": "toy"})
    model = torch.nn.Linear(1, 1)

    def loss_that_breaks_the_weights(output, target):
        if model.weight.grad is not None:  # from the second step on
            model.weight.data.fill_(math.nan)  # as an overflowing update would
        return F.mse_loss(output.squeeze(1), target)

    data = (torch.ones(4, 1), torch.ones(4))
    with pytest.raises(TrainingDiverged, match=r"diverged .*the weights are not finite"):
        fit(model, loss_that_breaks_the_weights, data, TrainConfig(epochs=1, batch_size=2),
            run_dir=tmp_path, quiet=True)  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_an_epoch_scored_as_not_finite_stops_the_run_before_its_files_are_written(tmp_path):
    # One step of lr 1e30 leaves weights that are finite but answer inf: `gru train adding
    # --lr 1e30` exited 0 with a test MSE of Infinity in metrics.json and the report.
    x, y = linear_problem()
    checkpoint.save_config(tmp_path, {"task": "toy"})
    model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0))
    config = TrainConfig(epochs=2, batch_size=256, lr=1e30, clip_grad_norm=None)

    def evaluate(model):
        return {"val_mse": F.mse_loss(model(x), y).item()}

    with pytest.raises(TrainingDiverged, match=r"diverged at epoch 1, step 1 of 1 .*its val_mse is inf"):  # fmt: skip
        fit(model, F.mse_loss, (x, y), config, evaluate=evaluate, run_dir=tmp_path, quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_the_command_line_refuses_an_lr_that_cannot_train_and_stops_a_diverging_run(
    tmp_path, capsys
):
    from gru.cli import main

    tiny = ["train", "sentiment", "--limit", "200", "--num-words", "200", "--maxlen", "20"]
    tiny += ["--hidden-size", "4", "--embedding-dim", "4", "--epochs", "2", "--quiet"]
    with pytest.raises(SystemExit) as exit_info:
        main([*tiny, "--lr", "inf", "--out", str(tmp_path / "inf")])
    assert exit_info.value.code == 2
    assert "argument --lr: must be a finite number > 0, got inf" in capsys.readouterr().err
    assert not (tmp_path / "inf").exists()
    assert main([*tiny, "--lr", "1e30", "--out", str(tmp_path / "huge")]) == 2
    error = capsys.readouterr().err
    assert "training diverged at epoch 1, step " in error and "now 1e+30" in error, error
    assert not (tmp_path / "huge" / "metrics.json").exists()
    assert not (tmp_path / "huge" / "report.html").exists()


def test_a_trained_model_has_a_finite_loss_and_finite_predictions(tmp_path):
    from gru.tasks.sentiment import SentimentClassifier

    settings = {"limit": 200, "num_words": 200, "maxlen": 20, "hidden_size": 4}
    task = SentimentClassifier(embedding_dim=4, epochs=1, **settings)
    report = task.fit(out=tmp_path / "run", quiet=True)
    assert report.history and all(math.isfinite(v) for h in report.history for v in h.values())
    probabilities = SentimentClassifier.load(tmp_path / "run").predict(["a good film", "awful"])
    assert probabilities.shape == (2,) and np.isfinite(probabilities).all()
    assert ((0 < probabilities) & (probabilities < 1)).all()


_CALLS: list[tuple[int, bool, bool]] = []  # (id of the module, training, grad enabled)


class _Probe(torch.nn.Module):
    """A GRU with layer norm and a head that notes in _CALLS who ran each forward, and how."""

    def __init__(self):
        super().__init__()
        self.rnn = GRU(3, 8, batch_first=True, layer_norm=True, recurrent_dropout=0.2)
        self.head = torch.nn.Linear(8, 1)

    def forward(self, x):
        _CALLS.append((id(self), self.training, torch.is_grad_enabled()))
        return self.head(self.rnn(x)[0][:, -1]).squeeze(-1)


def test_the_warm_up_changes_neither_the_model_nor_the_random_numbers():
    """The engine compiles on a copy; the model, its gradients and the RNG are untouched."""
    torch.manual_seed(0)
    model = _Probe()
    x, y = torch.randn(6, 5, 3), torch.randn(6)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    warm_up(model, F.mse_loss, (x, y), batch_size=4)
    assert torch.equal(torch.get_rng_state(), rng)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in model.parameters())
    assert model.training


def test_fit_warms_up_on_a_copy_before_its_first_step():
    """Training and inference both run once on a copy before the model's first step, so the
    progress bar's clock starts after the compile."""
    torch.manual_seed(0)
    model = _Probe()
    x, y = torch.randn(8, 5, 3), torch.randn(8)
    _CALLS.clear()
    fit(model, F.mse_loss, (x, y), TrainConfig(epochs=1, batch_size=4), quiet=True)
    copy_id = _CALLS[0][0]
    assert copy_id != id(model)
    assert _CALLS[:2] == [(copy_id, True, True), (copy_id, False, False)]
    assert _CALLS[2:] == [(id(model), True, True)] * 2  # the two steps of the epoch
