"""Two processes under torchrun on loopback train one model with DistributedDataParallel."""

import json
import os
import socket
import subprocess
import sys

import safetensors.torch

from gru import checkpoint


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_step_in_sync_and_rank_0_saves_what_it_holds(tmp_path):
    env = {
        **os.environ,
        "GRU_TRACE_DIR": str(tmp_path),
        "GLOO_SOCKET_IFNAME": "lo",
        "OMP_NUM_THREADS": "1",
    }
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
        "--master_addr=127.0.0.1", f"--master_port={free_port()}",
        "-m", "gru", "train", "sentiment", "--limit", "300", "--num-words", "500",
        "--maxlen", "30", "--embedding-dim", "8", "--hidden-size", "8", "--batch-size", "16",
        "--epochs", "2", "--out", str(out), "--quiet",
    ]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("test accuracy:") == 1  # only rank 0 reports

    traces = [
        [json.loads(line) for line in (tmp_path / f"trace-rank{r}.jsonl").read_text().splitlines()]
        for r in (0, 1)
    ]
    steps = [[t for t in trace if "step" in t] for trace in traces]
    # 240 training reviews, 120 per process, batches of 16: 8 steps per epoch, 2 epochs.
    assert [s["step"] for s in steps[0]] == [s["step"] for s in steps[1]] == list(range(1, 17))
    assert [s["params"] for s in steps[0]] == [s["params"] for s in steps[1]]  # in sync
    assert any(a["loss"] != b["loss"] for a, b in zip(*steps, strict=True))  # different shards
    finals = [trace[-1]["final"] for trace in traces]
    saved = safetensors.torch.load_file(out / checkpoint.MODEL_FILE)
    assert finals[0] == finals[1] == checkpoint.tensors_digest(saved)

    # Only rank 0 wrote: one of each file, no leftovers of a second writer.
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.safetensors", "config.json", "metrics.json", "model.safetensors", "report.html",
        "training_curves.png", "vocabulary.json",
    ]  # fmt: skip
    metrics = json.loads((out / checkpoint.METRICS_FILE).read_text())
    assert metrics["processes"] == 2 and metrics["reviews"]["train"] == 240
