"""Two processes under torchrun on loopback train one model with DistributedDataParallel."""

import json
import socket

import safetensors.torch

from checks import torchrun_train
from gru import checkpoint


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_step_in_sync_and_rank_0_saves_what_it_holds(tmp_path):
    out = tmp_path / "run"
    result, steps, finals = torchrun_train(
        tmp_path, "sentiment", "--limit", 300, "--num-words", 500, "--maxlen", 30,
        "--embedding-dim", 8, "--hidden-size", 8, "--batch-size", 16, "--epochs", 2,
        "--out", out, "--quiet",
    )  # fmt: skip
    assert result.stdout.count("test accuracy:") == 1  # only rank 0 reports
    # 240 training reviews, 120 per process, batches of 16: 8 steps per epoch, 2 epochs.
    assert [s["step"] for s in steps[0]] == [s["step"] for s in steps[1]] == list(range(1, 17))
    assert [s["params"] for s in steps[0]] == [s["params"] for s in steps[1]]  # in sync
    assert any(a["loss"] != b["loss"] for a, b in zip(*steps, strict=True))  # different shards
    saved = safetensors.torch.load_file(out / checkpoint.MODEL_FILE)
    assert finals[0] == finals[1] == checkpoint.tensors_digest(saved)

    # Only rank 0 wrote: one of each file, no leftovers of a second writer.
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.safetensors", "config.json", "metrics.json", "model.safetensors", "report.html",
        "training_curves.png", "vocabulary.json",
    ]  # fmt: skip
    metrics = json.loads((out / checkpoint.METRICS_FILE).read_text())
    assert metrics["processes"] == 2 and metrics["reviews"]["train"] == 240
