"""kill -9 a small sentiment run at random steps and inside writes, resume it, and tabulate
whether each resumed run equals the uninterrupted one bit for bit.

    python scripts/kill_resume.py [--steps 10] [--writes 10] [--seed 0]

Every run trains the same tiny model (2 epochs of 100 steps, a checkpoint every 7 steps) in
its own folder under a temporary directory, with one thread. A "step" kill waits until the run
has taken a random number of steps (read from its GRU_TRACE_DIR trace) and kills it; a "write"
kill uses the atomic writer's test hook (GRU_TEST_STOP_IN_WRITE), which stops the process
inside the N-th write of a file, and kills it there. The run is then continued the way a
person would: ``--resume`` if the folder is a run folder, else the same ``--out`` again (a kill
inside the very first write of config.json leaves no run). "Same" compares every tensor of
model.safetensors and checkpoint.safetensors (weights, optimizer, random states) with
torch.equal, and the training state and metrics.json but their seconds; "left" counts the
writer's temporary files in the folder after the kill and after the resume.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from gru import checkpoint
from gru._io import STOP_IN_WRITE, leftovers

TINY = [
    "--limit", "1000", "--num-words", "300", "--maxlen", "20", "--embedding-dim", "8",
    "--hidden-size", "8", "--batch-size", "8", "--epochs", "2", "--checkpoint-every", "7",
    "--quiet",
]  # fmt: skip
STEPS = 200  # 2 epochs of 100 steps
WRITES = [  # (file, how many writes of it a run makes), every file a run writes
    ("config.json", 1),
    ("vocabulary.json", 1),
    ("checkpoint.safetensors", 30),  # 14 per epoch at every 7th step, and one per epoch
    ("model.safetensors", 2),
    ("metrics.json", 3),  # one per epoch, then the task's
    ("training_curves.png", 2),
    ("report.html", 1),
]


def train(*options: str, env: dict) -> subprocess.Popen:
    command = [sys.executable, "-m", "gru", "train", "sentiment", *options]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)


def differences(got: Path, want: Path) -> list[str]:
    """What differs between two run folders, seconds aside (empty: the same run)."""
    found = []
    states, metrics = [], []
    for run in (got, want):
        _, meta = checkpoint.load_tensors(run / checkpoint.CHECKPOINT_FILE)
        state = json.loads(meta["gru.state"])
        for key in ("elapsed", "epoch_elapsed"):
            del state["loop"][key]
        metric = json.loads((run / checkpoint.METRICS_FILE).read_text())
        for key in ("seconds", "seconds_per_epoch", "training_seconds"):
            del metric[key]
        for record in (*state["loop"]["history"], *metric["history"]):
            del record["seconds"]
        states.append(state)
        metrics.append(metric)
    for name in (checkpoint.MODEL_FILE, checkpoint.CHECKPOINT_FILE):
        a, b = (checkpoint.load_tensors(run / name)[0] for run in (got, want))
        if a.keys() != b.keys():
            found.append(f"{name}: other tensors")
        found += [f"{name}: {k}" for k in b if k in a and not torch.equal(a[k], b[k])]
    if states[0] != states[1]:
        found.append("training state")
    if metrics[0] != metrics[1]:
        found.append("metrics.json")
    return found


def kill_and_resume(folder: Path, want: Path, kind: str, where, env: dict) -> dict:
    """One row of the table: kill a run in ``folder`` (at step ``where``, or inside the write
    ``where`` = (file, n)), continue it, and compare it with ``want``."""
    env = {**env, "GRU_TRACE_DIR": str(folder)}
    if kind == "write":
        env[STOP_IN_WRITE] = f"{where[0]}:{where[1]}"
    run = folder / "run"
    victim = train(*TINY, "--out", str(run), env=env)
    if kind == "step":
        trace, deadline = folder / "trace-rank0.jsonl", time.monotonic() + 300
        while not (trace.exists() and len(trace.read_text().splitlines()) >= where):
            if victim.poll() is not None or time.monotonic() > deadline:
                return {"killed": "the run ended first"}
            time.sleep(0.002)
    else:
        _, status = os.waitpid(victim.pid, os.WUNTRACED)
        if not os.WIFSTOPPED(status):
            return {"killed": f"never stopped (status {status})"}
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    row = {"left": len(leftovers(run))}
    try:
        _, state = checkpoint.load_training_state(run, checkpoint.load_config(run))
        row["checkpoint"] = f"{state['loop']['epoch']}.{state['loop']['step_in_epoch']}"
    except (TypeError, ValueError, FileNotFoundError):
        row["checkpoint"] = "none"
    row["then"] = "--resume" if (run / checkpoint.CONFIG_FILE).is_file() else "--out again"
    option = ["--resume", str(run), "--quiet"] if row["then"] == "--resume" else TINY
    again = [*option, "--out", str(run)] if row["then"] == "--out again" else option
    row["rc"] = train(*again, env={**env, STOP_IN_WRITE: ""}).wait()
    row["left after"] = len(leftovers(run))
    row["same"] = "yes" if row["rc"] == 0 and not differences(run, want) else "NO"
    if row["rc"] == 0 and row["same"] == "NO":
        row["same"] += " " + ", ".join(differences(run, want))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="kills at random steps")
    parser.add_argument("--writes", type=int, default=10, help="kills inside random writes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        want = root / "uninterrupted"
        if train(*TINY, "--out", str(want), env=env).wait():
            sys.exit("the uninterrupted run failed")
        plan = [("step", rng.randint(1, STEPS - 5)) for _ in range(args.steps)]
        for i in range(args.writes):
            name, count = WRITES[i % len(WRITES)]
            plan.append(("write", (name, rng.randint(1, count))))
        print(
            "| # | kill | at | checkpoint at kill (epoch.step) | temporaries left | continued "
            "with | exit | temporaries after | bit-identical |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for i, (kind, where) in enumerate(plan, 1):
            folder = root / f"{kind}-{i}"
            folder.mkdir()
            row = kill_and_resume(folder, want, kind, where, env)
            at = f"step {where}" if kind == "step" else f"write {where[1]} of {where[0]}"
            cells = [row.get(k, "") for k in ("checkpoint", "left", "then", "rc", "left after")]
            same = row.get("same", row.get("killed"))
            print(f"| {i} | {kind} | {at} | " + " | ".join(map(str, cells)) + f" | {same} |")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
