"""Try bad inputs through the ``gru`` command line and the Python API; tabulate how each one
was refused.

    PYTHONPATH=src python scripts/audit_inputs.py [--spawn] [--only WORD] [--verbose] [--keep DIR]

It takes about ten minutes on two busy cores (most of it the runs it trains: every case of
"train" that is accepted trains a tiny run), and keeps out of the test suite for that reason.

Everything happens in a temporary directory: tiny runs of every task are trained there first
(the package's review sample and small synthetic CSVs and texts), then every case runs with
that directory as its working directory. A command-line case is ``python -m gru ARGS`` in a
child process: by default a fork of this process (which has imported gru already, so a case
costs a fork, not a start of Python and torch; the child runs gru's ``__main__`` exactly as
``python -m gru`` does), with ``--spawn`` a fresh interpreter per case. A Python case calls
the API in this process, after every command-line case (so no fork inherits its threads).

For each case the table records: its exit code or exception; whether it is a *clear error*
(exit 2 / ValueError, TypeError or an OSError, with the case's expected words, usually the
argument or the file, in the message, and no traceback); whether a *traceback* reached the
user (a ``Traceback`` on stderr, exit 1, or from Python an exception of another class);
whether anything was *written or lost* (every file under the directory is hashed before and
after: new, changed or deleted files, writers' temporaries). A few inputs are legitimate
(HTML in a review): those must succeed, with what they wrote checked (the page escapes it).
Pickle payloads would write a marker file; the marker must never appear.

Prints a summary by category and every case that failed; exits 1 if any did.
"""

# ruff: noqa: E501

from __future__ import annotations

import argparse
import hashlib
import json
import os
import runpy
import shutil
import signal
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread: the machine is shared

import numpy as np
import torch

import gru
import gru.data.keras_imdb
import gru.interop.convert
import gru.tasks

ROOT: Path  # the temporary directory, the cases' working directory
SPAWN = False
CLEAR = (ValueError, TypeError, OSError)
MARKER = "code-ran"  # what a pickle payload would write, in ROOT


@dataclass
class Case:
    category: str
    name: str
    run: list[str] | Callable  # the arguments of ``gru``, or a function of the API
    expect: str = ""  # words the message must hold (case-insensitive)
    env: dict = field(default_factory=dict)
    accept: bool = False  # a legitimate input: must succeed
    may_write: tuple[str, ...] = ()  # paths (relative to ROOT) an accepted case may write
    check: Callable[[], str | None] | None = None  # after the case: what is wrong, or None
    timeout: float = 300  # seconds a command may take


@dataclass
class Result:
    case: Case
    outcome: str = ""
    message: str = ""
    clear: bool = False
    traceback: bool = False
    written: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


# --- running a case ---------------------------------------------------------------------------


def run_cli(args: list[str], env: dict | None = None, timeout: float = 300) -> tuple[int, str]:
    """(exit code, stdout + stderr) of ``python -m gru *args`` run in ROOT."""
    env = {**os.environ, **(env or {})}
    if SPAWN:
        try:
            done = subprocess.run(
                [sys.executable, "-m", "gru", *args],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return -1, f"timed out after {timeout:.0f} s"
        return done.returncode, done.stdout + done.stderr
    with tempfile.TemporaryFile() as output:
        pid = os.fork()
        if pid == 0:  # the child: what ``python -m gru`` does after the interpreter starts
            code = 1
            try:
                os.chdir(ROOT)
                os.environ.clear()
                os.environ.update(env)
                os.dup2(output.fileno(), 1)
                os.dup2(output.fileno(), 2)
                sys.argv = ["gru", *args]
                try:
                    runpy.run_module("gru", run_name="__main__", alter_sys=True)
                    code = 0
                except SystemExit as end:
                    if end.code is None or isinstance(end.code, int):
                        code = end.code or 0
                    else:
                        print(end.code, file=sys.stderr)
                except BaseException:
                    traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        deadline = time.monotonic() + timeout
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return -1, f"timed out after {timeout:.0f} s"
            time.sleep(0.01)
        output.seek(0)
        text = output.read().decode("utf-8", "replace")
        code = os.waitstatus_to_exitcode(status)
        return code, text


def snapshot() -> dict[str, str]:
    """Every file under ROOT: its digest."""
    found = {}
    for path in ROOT.rglob("*"):
        if path.is_file() and not path.is_symlink():
            found[str(path.relative_to(ROOT))] = hashlib.blake2b(path.read_bytes()).hexdigest()
    return found


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    new = [f"new {p}" for p in after if p not in before]
    changed = [f"changed {p}" for p in after if p in before and before[p] != after[p]]
    lost = [f"lost {p}" for p in before if p not in after]
    return new + changed + lost


def run_case(case: Case) -> Result:
    result = Result(case)
    before = snapshot()
    if isinstance(case.run, list):
        code, text = run_cli(case.run, case.env, case.timeout)
        result.outcome = f"exit {code}" if code != -1 else "timed out"
        result.message = text.strip()
        result.traceback = "Traceback (most recent call last)" in text or code not in (0, 2, -1)
        if not case.accept:
            result.clear = code == 2 and not result.traceback
    else:
        try:
            case.run()
            result.outcome = "returned"
        except Exception as error:  # what a user of the API would see
            result.outcome = type(error).__name__
            result.message = f"{type(error).__name__}: {error}"
            result.traceback = not isinstance(error, CLEAR)
            result.clear = not case.accept and not result.traceback
        if case.accept and result.outcome != "returned":
            result.problems.append(f"refused a legitimate input: {result.message}")
    if case.accept and isinstance(case.run, list) and result.outcome != "exit 0":
        result.problems.append(f"refused a legitimate input ({result.outcome})")
    if not case.accept and result.outcome in ("returned", "exit 0", "timed out"):
        result.problems.append(result.outcome if result.outcome == "timed out" else "accepted")
    if case.expect and case.expect.lower() not in result.message.lower():
        result.clear = False
        if not case.accept:
            result.problems.append(f"message lacks {case.expect!r}")
    if result.traceback:
        result.problems.append("traceback")
    allowed = tuple(case.may_write)
    result.written = [
        c for c in changes(before, snapshot()) if not c.split(" ", 1)[1].startswith(allowed)
    ]
    if result.written:
        result.problems.append("wrote: " + ", ".join(result.written[:4]))
    if case.accept and not result.problems:
        result.clear = True  # handled as it should be
    if (ROOT / MARKER).exists():
        result.problems.append("a pickle payload ran")
        (ROOT / MARKER).unlink()
    if case.check is not None:
        wrong = case.check()
        if wrong:
            result.problems.append(wrong)
    shutil.rmtree(ROOT / "out", ignore_errors=True)  # each case starts from an empty out/
    (ROOT / "out").mkdir()
    return result


# --- the inputs ---------------------------------------------------------------------------------


TINY = {
    "sentiment": ["--limit", "300", "--num-words", "200", "--maxlen", "16", "--embedding-dim",
                  "4", "--hidden-size", "4", "--epochs", "1", "--batch-size", "16"],
    "forecast": ["--csv", "in/series.csv", "--target", "v", "--model", "gru", "--lookback",
                 "16", "--horizon", "4", "--hidden-size", "4", "--epochs", "1"],
    "anomaly": ["--csv", "in/series.csv", "--column", "v", "--lookback", "16",
                "--hidden-size", "4", "--epochs", "1"],
    "textgen": ["--text", "in/text.txt", "--hidden-size", "8", "--layers", "1",
                "--embedding-dim", "4", "--seq-len", "16", "--epochs", "1"],
    "adding": ["--seq-len", "10", "--hidden-size", "4", "--n-train", "64", "--n-test", "32",
               "--epochs", "1"],
}  # fmt: skip
HTML = '<script>alert(1)</script><img src=x onerror="alert(2)">'


class Payload:
    """Unpickled, writes the marker file: what a hostile pickle holds."""

    def __reduce__(self):
        return (exec, (f"open({str(ROOT / MARKER)!r}, 'w').write('ran')",))


def series_csv(path: Path, rows: int = 800, *, value=None, header="date,v,w") -> None:
    t = np.arange(rows)
    v = np.sin(t / 6.0) + 0.1 * np.cos(t / 2.3)
    lines = [header]
    for i in range(rows):
        x = v[i] if value is None or i != rows // 2 else value
        lines.append(f"{np.datetime64('2020-01-01T00') + np.timedelta64(i, 'h')},{x},{i % 7}")
    path.write_text("\n".join(lines) + "\n")


def write_safetensors_header(path: Path, edit: Callable[[dict], None]) -> None:
    """Rewrite the JSON header of a safetensors file with ``edit`` (tensors untouched)."""
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    edit(header)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + n :])


def edit_state(path: Path, edit: Callable[[dict], None]) -> None:
    def change(header):
        state = json.loads(header["__metadata__"]["gru.state"])
        edit(state)
        header["__metadata__"]["gru.state"] = json.dumps(state)

    write_safetensors_header(path, change)


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x40
    path.write_bytes(bytes(data))


def zip_with(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def lie_about_size(path: Path, member: str, size: int) -> None:
    """Make the zip at ``path`` declare ``size`` as ``member``'s uncompressed size."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    struct.pack_into("<I", data, info.header_offset + 22, size)  # the local header
    at = data.find(b"PK\x01\x02")
    while at != -1:
        name_length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + name_length].decode() == member:
            struct.pack_into("<I", data, at + 24, size)
        at = data.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(data))


def make_inputs() -> None:
    """The good and bad files every case reads, under ROOT/in and ROOT/runs."""
    d = ROOT / "in"
    d.mkdir()
    series_csv(d / "series.csv")
    series_csv(d / "short.csv", rows=5)
    series_csv(d / "inf.csv", value="inf")
    series_csv(d / "nan.csv", value="")
    series_csv(d / "text_value.csv", value="abc")
    series_csv(d / "html_column.csv", header=f"date,{HTML},w")
    (d / "empty.csv").write_text("")
    (d / "header_only.csv").write_text("date,v,w\n")
    (d / "binary.csv").write_bytes(bytes(range(256)) * 40)
    (d / "latin1.csv").write_bytes("date,v\n2020-01-01,\xe9\n".encode("latin-1"))
    (d / "a_folder.csv").mkdir()
    (d / "text.txt").write_text(("the quick brown fox jumps over the lazy dog. " * 60) + "\n")
    (d / "empty.txt").write_text("")
    (d / "tiny.txt").write_text("ab")
    (d / "binary.txt").write_bytes(b"\xff\xfe\x00\x81" * 500)
    (d / "reviews.csv").write_text("text,label\ngreat film,1\nawful film,0\n" * 40)
    (d / "one_review.csv").write_text("text,label\ngreat film,1\n")
    (d / "bad_labels.csv").write_text("text,label\ngreat film,maybe\nawful,2\n" * 20)
    (d / "no_label.csv").write_text("text,stars\ngreat film,1\nawful film,0\n" * 20)
    (d / "lines.txt").write_text("a fine film\na dull film\n")
    (d / "word_index_list.json").write_text("[1, 2, 3]")
    (d / "word_index_bad.json").write_text('{"good": "first", "bad": -4}')
    (d / "not_json.json").write_text("{not json")
    # model files for convert
    layer = torch.nn.GRU(3, 4)
    gru.interop.convert.write(gru.GRU.from_torch(layer), d / "layer.safetensors")
    torch.save(layer.state_dict(), d / "layer.pt")
    (d / "empty.onnx").write_bytes(b"")
    (d / "junk.onnx").write_bytes(b"\x08\x01junk" * 10)
    (d / "junk.keras").write_bytes(b"PK not a zip")
    (d / "junk.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 50)
    (d / "junk.safetensors").write_bytes(b"\xff" * 64)
    (d / "empty.safetensors").write_bytes(b"")
    (d / "text.pt").write_text("just text")
    (d / "unknown.xyz").write_text("x")
    (d / "a_folder.onnx").mkdir()
    (d / "truncated.safetensors").write_bytes((d / "layer.safetensors").read_bytes()[:-10])
    huge = d / "huge_header.safetensors"
    huge.write_bytes(struct.pack("<Q", 1 << 60) + b"{}")
    torch.save(torch.nn.Linear(2, 2).state_dict(), d / "linear.pt")
    torch.save({"weight_ih_l0": Payload(), "weight_hh_l0": Payload()}, d / "pickled.pt")
    zip_with(d / "bomb.pt", {"bomb/data.pkl": b"\0" * (64 << 20)})
    zip_with(d / "list_config.keras", {"config.json": b"[1, 2]", "metadata.json": b"{}"})
    zip_with(d / "junk_config.keras", {"config.json": b"{not json", "metadata.json": b"{}"})
    config = {"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense"}]}}
    zip_with(d / "dense.keras", {"config.json": json.dumps(config).encode()})
    zip_with(d / "bomb.keras", {"config.json": b"{}", "model.weights.h5": b"\0" * (64 << 20)})
    zip_with(d / "big_config.keras", {"config.json": b" " * (65 << 20)})
    zip_with(d / "liar.keras", {"config.json": b" " * (8 << 20)})
    lie_about_size(d / "liar.keras", "config.json", 100)
    # review archives
    with tarfile.open(d / "bomb.tar.gz", "w:gz") as archive:
        info = tarfile.TarInfo("aclImdb/train/pos/1_10.txt")
        info.size = 20 << 20
        archive.addfile(info, _Zeros(info.size))
    (d / "junk.tar.gz").write_bytes(b"\x1f\x8b junk")
    np.savez(d / "imdb_bad.npz", x_train=np.arange(3))
    pickled = np.empty(2, dtype=object)
    pickled[0], pickled[1] = Payload(), [1, 2]
    np.savez(d / "imdb_pickle.npz", x_train=pickled, y_train=np.zeros(2), x_test=pickled,
             y_test=np.zeros(2))  # fmt: skip
    zip_with(d / "imdb_bomb.npz", {"x_train.npy": b"\0" * (64 << 20)})
    (d / "reviews_dir").mkdir()
    (d / "reviews_dir" / "pos").mkdir()
    (d / "readonly").mkdir()
    (d / "readonly").chmod(0o555)
    (d / "existing.csv").write_text("precious\n")
    (d / "existing.html").write_text("precious\n")
    (d / "existing.onnx").write_text("precious\n")


class _Zeros:
    def __init__(self, n):
        self.left = n

    def read(self, n=-1):
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return b"\0" * n


def train_runs() -> None:
    """A tiny finished run of every task under ROOT/runs, and copies to tamper with."""
    for task, options in TINY.items():
        code, text = run_cli(["train", task, *options, "--quiet", "--out", f"runs/{task}"])
        if code:
            sys.exit(f"training the {task} run failed:\n{text}")
    code, text = run_cli(
        ["train", "forecast", "--csv", "in/html_column.csv", "--target", HTML,
         *TINY["forecast"][4:], "--quiet", "--out", "runs/html"]
    )  # fmt: skip
    if code:
        sys.exit(f"training the forecast run on an HTML column failed:\n{text}")
    runs = ROOT / "runs"
    tamper = {
        "flipped_model": lambda r: flip_last_byte(r / "model.safetensors"),
        "truncated_model": lambda r: (r / "model.safetensors").write_bytes(
            (r / "model.safetensors").read_bytes()[:-100]
        ),
        "empty_model": lambda r: (r / "model.safetensors").write_bytes(b""),
        "no_model": lambda r: (r / "model.safetensors").unlink(),
        "pickled_model": lambda r: torch.save({"w": Payload()}, r / "model.safetensors"),
        "config_list": lambda r: (r / "config.json").write_text("[1, 2]"),
        "config_junk": lambda r: (r / "config.json").write_text("{not json"),
        "config_edited": lambda r: _edit_json(r / "config.json", _double_hidden),
        "config_no_task": lambda r: _edit_json(r / "config.json", lambda c: c.pop("task")),
        "no_config": lambda r: (r / "config.json").unlink(),
        "vocabulary_edited": lambda r: _append(r / "vocabulary.json", "\n"),
        "state_lr": lambda r: edit_state(r / "checkpoint.safetensors", _lr_times_100),
        "state_step": lambda r: edit_state(r / "checkpoint.safetensors", _step_back),
        "state_unfinished": lambda r: edit_state(r / "checkpoint.safetensors", _unfinish),
        "checkpoint_flipped": lambda r: flip_last_byte(r / "checkpoint.safetensors"),
        "checkpoint_header": lambda r: write_safetensors_header(
            r / "checkpoint.safetensors", lambda h: h["__metadata__"].update({"x": "1"})
        ),
    }
    for name, edit in tamper.items():
        shutil.copytree(runs / "sentiment", runs / f"sentiment_{name}")
        edit(runs / f"sentiment_{name}")
    (runs / "empty").mkdir()
    (runs / "a_file").write_text("not a folder")


def _edit_json(path: Path, edit) -> None:
    value = json.loads(path.read_text())
    edit(value)
    path.write_text(json.dumps(value))


def _double_hidden(config: dict) -> None:
    config["config"]["hidden_size"] = 2 * config["config"]["hidden_size"]


def _append(path: Path, text: str) -> None:
    if path.exists():
        path.write_text(path.read_text() + text)


def _lr_times_100(state) -> None:
    """Every learning rate in the state, times 100."""
    for key, value in state.items() if isinstance(state, dict) else enumerate(state):
        if key in ("lr", "initial_lr") and isinstance(value, float):
            state[key] = value * 100
        elif isinstance(value, dict | list):
            _lr_times_100(value)


def _step_back(state: dict) -> None:
    state["loop"]["step_in_epoch"] = state["loop"]["step_in_epoch"] - 7


def _unfinish(state: dict) -> None:
    state["loop"]["finished"] = not state["loop"].get("finished", True)


# --- the cases ----------------------------------------------------------------------------------

UNWRITABLE = "/proc/gru-audit"  # a folder no one can create, not even root


def train(task: str, *options: str, out: str = "out/run") -> list[str]:
    return ["train", task, *TINY[task], *options, "--quiet", "--out", out]


def no_model(out: str) -> Callable[[], str | None]:
    """A check: nothing diverged or refused left a model in ``out``."""
    return lambda: (
        f"{out}/model.safetensors written" if (ROOT / out / "model.safetensors").exists() else None
    )


def train_cases() -> list[Case]:
    """Every task's training options out of range or of the wrong type."""
    cases = []
    shared = [
        (["--epochs", "0"], "--epochs"), (["--epochs", "-1"], "--epochs"),
        (["--epochs", "two"], "--epochs"), (["--batch-size", "0"], "--batch-size"),
        (["--lr", "nan"], "--lr"), (["--lr", "inf"], "--lr"), (["--lr", "-1"], "--lr"),
        (["--lr", "0"], "--lr"), (["--seed", str(2**70)], "--seed"), (["--seed", "-1"], "--seed"),
        (["--seed", "1.5"], "--seed"), (["--checkpoint-every", "0"], "--checkpoint-every"),
        (["--hidden-size", "0"], "--hidden-size"), (["--backend", "gpu"], "--backend"),
        (["--device", "tpu"], "--device"),
    ]  # fmt: skip
    for task in TINY:
        for options, expect in shared:
            cases.append(
                Case(f"train {task}: numbers", " ".join(options), train(task, *options), expect)
            )
        cases.append(Case(f"train {task}: numbers", "--lr 1e30 (diverges)",
                          train(task, "--lr", "1e30", out=f"out/{task}-lr"), "lr (now 1e+30)",
                          may_write=(f"out/{task}-lr/",), check=no_model(f"out/{task}-lr")))  # fmt: skip
        cases.append(Case(f"train {task}: numbers", "--hidden-size 10000000 (memory)",
                          train(task, "--hidden-size", "10000000"), "hidden_size"))  # fmt: skip
    specific = {
        "sentiment": [(["--maxlen", "0"], "--maxlen"), (["--num-words", "1"], "num_words"),
                      (["--limit", "0"], "--limit"), (["--limit", "1"], "limit"),
                      (["--preset", "huge"], "--preset"), (["--embedding-dim", "-3"], "--embedding-dim")],
        "forecast": [(["--lookback", "0"], "--lookback"), (["--lookback", "1000000000"], "lookback"),
                     (["--horizon", "0"], "--horizon"), (["--dropout", "1.5"], "dropout"),
                     (["--dropout", "nan"], "dropout"), (["--dropout", "x"], "--dropout"),
                     (["--features", "X"], "--features"), (["--target", "nope"], "nope"),
                     (["--layers", "0"], "--layers"), (["--segment", "0"], "--segment"),
                     (["--loss", "l3"], "--loss")],
        "anomaly": [(["--quantile", "1.5"], "quantile"), (["--quantile", "nan"], "quantile"),
                    (["--anomalies", "-1"], "anomalies"), (["--magnitude", "-1"], "magnitude"),
                    (["--magnitude", "inf"], "magnitude"), (["--column", "nope"], "nope"),
                    (["--lookback", "100000"], "lookback"), (["--split", "thirds"], "--split")],
        "textgen": [(["--dropout", "2"], "dropout"), (["--seq-len", "0"], "--seq-len"),
                    (["--limit", "1"], "limit"), (["--layers", "0"], "--layers")],
        "adding": [(["--seq-len", "1"], "seq"), (["--n-train", "0"], "--n-train"),
                   (["--n-test", "0"], "--n-test"), (["--seq-len", "1000000000"], "seq")],
    }  # fmt: skip
    for task, options in specific.items():
        for option, expect in options:
            cases.append(
                Case(f"train {task}: numbers", " ".join(option), train(task, *option), expect)
            )
    return cases


def file_cases() -> list[Case]:
    """Every kind of file a command reads: missing, empty, a folder, truncated, corrupt."""
    cases = []
    sentiment = {
        "missing": "in/nope.csv", "empty CSV": "in/empty.csv", "binary CSV": "in/binary.csv",
        "one review": "in/one_review.csv", "labels not 0/1": "in/bad_labels.csv",
        "no label column": "in/no_label.csv", "folder without reviews": "in/reviews_dir",
        "corrupt tar": "in/junk.tar.gz", "npz without the arrays": "in/imdb_bad.npz",
    }  # fmt: skip
    for name, path in sentiment.items():
        expect = "review" if name == "one review" else Path(path).name
        cases.append(Case("train: files", f"sentiment --data {name}",
                          ["train", "sentiment", "--data", path, "--quiet", "--out", "out/s"], expect))  # fmt: skip
    for name, path in {"missing": "in/nope.json", "a list": "in/word_index_list.json",
                       "ranks not ints": "in/word_index_bad.json", "not JSON": "in/not_json.json",
                       "a folder": "in"}.items():  # fmt: skip
        expect = Path(path).name
        cases.append(Case("train: files", f"sentiment --word-index {name}",
                          train("sentiment", "--data", "in/reviews.csv", "--word-index", path), expect))  # fmt: skip
    cases.append(Case("train: files", "sentiment --text-column nope",
                      train("sentiment", "--data", "in/reviews.csv", "--text-column", "nope"), "nope"))  # fmt: skip
    csvs = {
        "missing": "in/nope.csv", "empty": "in/empty.csv", "header only": "in/header_only.csv",
        "binary": "in/binary.csv", "latin-1": "in/latin1.csv", "a folder": "in/a_folder.csv",
        "too short": "in/short.csv", "an infinite value": "in/inf.csv",
        "a missing value": "in/nan.csv", "text among numbers": "in/text_value.csv",
    }  # fmt: skip
    expects = {"an infinite value": "inf", "a missing value": "missing", "too short": "short.csv",
               "text among numbers": "abc"}  # fmt: skip
    for task in ("forecast", "anomaly"):
        for name, path in csvs.items():
            expect = expects.get(name, Path(path).name)
            cases.append(Case("train: files", f"{task} --csv {name}",
                              train(task, "--csv", path), expect))  # fmt: skip
        cases.append(Case("train: files", f"{task} --time-column nope",
                          train(task, "--time-column", "nope"), "nope"))  # fmt: skip
    for name, path in {"missing": "in/nope.txt", "empty": "in/empty.txt", "two characters":
                       "in/tiny.txt", "not UTF-8": "in/binary.txt", "a folder": "in"}.items():  # fmt: skip
        expect = {"two characters": "tiny.txt", "a folder": "'in'"}.get(name, Path(path).name)
        cases.append(
            Case("train: files", f"textgen --text {name}", train("textgen", "--text", path), expect)
        )
    return cases


def output_cases() -> list[Case]:
    """Outputs missing, unwritable, existing, a folder, a file, or one of the inputs."""
    s = TINY["sentiment"]
    cases = [
        Case(
            "outputs",
            "train --out an existing run",
            train("sentiment", out="runs/adding"),
            "runs/adding",
        ),
        Case("outputs", "train --out a file", train("sentiment", out="runs/a_file"), "is a file"),
        Case(
            "outputs",
            "train --out below a file",
            train("sentiment", out="in/series.csv/sub"),
            "--out",
        ),
        Case(
            "outputs",
            "train --out unwritable",
            train("sentiment", out=f"{UNWRITABLE}/run"),
            "gru-audit",
        ),
        Case(
            "outputs",
            "train --resume missing",
            ["train", "sentiment", "--resume", "runs/nope"],
            "runs/nope",
        ),
        Case(
            "outputs",
            "train --resume empty folder",
            ["train", "sentiment", "--resume", "runs/empty"],
            "runs/empty",
        ),
        Case(
            "outputs",
            "train --resume a file",
            ["train", "sentiment", "--resume", "runs/a_file"],
            "runs/a_file",
        ),
        Case(
            "outputs",
            "train sentiment --resume a forecast run",
            ["train", "sentiment", "--resume", "runs/forecast"],
            "forecast",
        ),
        Case(
            "outputs",
            "train --resume with other settings",
            ["train", "sentiment", "--resume", "runs/sentiment", "--hidden-size", "5"],
            "hidden",
        ),
        Case(
            "outputs",
            "train --out and --resume differ",
            ["train", "sentiment", *s, "--resume", "runs/sentiment", "--out", "out/x"],
            "--out",
        ),
    ]
    for command, run in (("forecast", "runs/forecast"), ("detect", "runs/anomaly")):
        base = [command, "--run", run, "--csv", "in/series.csv"]
        for name, output, expect in (
            ("== --csv", "in/series.csv", "--csv"), ("existing", "in/existing.csv", "--overwrite"),
            ("unwritable", f"{UNWRITABLE}/x.csv", "--out"), ("in a missing folder", "out/no/x.csv", "--out"),
            ("a folder", "in/a_folder.csv", "--out"), ("below a file", "in/series.csv/x.csv", "--out"),
            ("not .csv", "out/x.txt", "--out"),
        ):  # fmt: skip
            cases.append(
                Case("outputs", f"{command} --out {name}", [*base, "--out", output], expect)
            )
        cases.append(Case("outputs", f"{command} --out == --csv --overwrite",
                          [*base, "--out", "in/series.csv", "--overwrite"], "--csv"))  # fmt: skip
    explain = ["explain", "--run", "runs/sentiment", "a fine film"]
    for name, out, expect in (
        ("existing", "in/existing.html", "--overwrite"), ("unwritable", f"{UNWRITABLE}/x.html", "--out"),
        ("a folder", "in/a_folder.csv", "--out"), ("a run file", "runs/sentiment/config.json", "--out"),
        ("below a file", "in/series.csv/x.html", "--out"),
    ):  # fmt: skip
        cases.append(Case("outputs", f"explain --out {name}", [*explain, "--out", out], expect))
    cases.append(
        Case(
            "outputs",
            "explain --out == --csv",
            [
                "explain",
                "--run",
                "runs/forecast",
                "--csv",
                "in/series.csv",
                "--out",
                "in/series.csv",
                "--overwrite",
            ],
            "--csv",
        )
    )
    for name, dest, expect in (
        ("== SOURCE", "in/layer.safetensors", "layer.safetensors"), ("existing", "in/existing.onnx", "--overwrite"),
        ("unwritable", f"{UNWRITABLE}/x.onnx", "gru-audit"), ("in a missing folder", "out/no/x.onnx", "out/no"),
        ("a folder", "in/a_folder.onnx", "a_folder.onnx"), ("unknown extension", "out/x.xyz", ".xyz"),
    ):  # fmt: skip
        cases.append(
            Case(
                "outputs", f"convert DEST {name}", ["convert", "in/layer.safetensors", dest], expect
            )
        )
    cases.append(
        Case(
            "outputs",
            "compare --out an existing run",
            ["compare", "--quick", "--out", "runs/adding"],
            "--out",
        )
    )
    cases.append(
        Case(
            "outputs",
            "compare --out a file",
            ["compare", "--quick", "--out", "runs/a_file"],
            "--out",
        )
    )
    return cases


def use_cases() -> list[Case]:
    """The commands on a trained run: wrong runs, bad numbers, bad files."""
    p = ["predict", "--run", "runs/sentiment"]
    g = ["generate", "--run", "runs/textgen"]
    d = ["detect", "--run", "runs/anomaly", "--csv", "in/series.csv", "--out", "out/d.csv"]
    f = ["forecast", "--run", "runs/forecast", "--out", "out/f.csv", "--csv"]
    rows = [
        (["predict", "--run", "runs/nope", "x"], "runs/nope"),
        (["predict", "--run", "runs/forecast", "x"], "sentiment"),
        (["predict", "--run", "runs/empty", "x"], "runs/empty"),
        (["predict", "--run", "runs/a_file", "x"], "a_file"),
        ([*p, "--file", "in/nope.txt"], "nope.txt"), ([*p, "--file", "in/binary.txt"], "binary.txt"),
        ([*p, "--file", "in"], "'in'"), ([*p, "--file", "in/empty.txt"], "empty.txt"),
        ([*g, "--temperature", "inf"], "temperature"),
        ([*p], "text"),
        (["evaluate", "--run", "runs/sentiment", "--data", "in/nope.csv"], "nope.csv"),
        (["evaluate", "--run", "runs/sentiment", "--data", "in/no_label.csv"], "label"),
        (["evaluate", "--run", "runs/sentiment", "--data", "in/one_review.csv", "--text-column", "x"], "'x'"),
        (["evaluate", "--run", "runs/textgen", "--data", "in/reviews.csv"], "sentiment"),
        ([*g, "--length", "-5"], "length"),
        ([*g, "--length", str(10**12)], "length"), ([*g, "--temperature", "nan"], "temperature"),
        ([*g, "--temperature", "-1"], "temperature"), ([*g, "--top-k", "0"], "--top-k"),
        ([*g, "--seed", "-1"], "--seed"), ([*g, "--seed", str(2**70)], "--seed"),
        ([*g, "--prompt", "\u2603\u2603"], "prompt"),
        (["generate", "--run", "runs/sentiment"], "textgen"),
        ([*d, "--threshold", "0"], "--threshold"), ([*d, "--threshold", "nan"], "--threshold"),
        ([*d, "--threshold", "-2"], "--threshold"), ([*d, "--threshold", "x"], "--threshold"),
        (["detect", "--run", "runs/forecast", "--csv", "in/series.csv"], "anomaly"),
        ([*f, "in/nope.csv"], "nope.csv"), ([*f, "in/empty.csv"], "empty.csv"),
        ([*f, "in/short.csv"], "short.csv"), ([*f, "in/inf.csv"], "inf"),
        ([*f, "in/nan.csv"], "missing"), ([*f, "in/a_folder.csv"], "a_folder.csv"),
        ([*f, "in/html_column.csv"], "'v'"),
        (["forecast", "--run", "runs/anomaly", "--csv", "in/series.csv"], "forecast"),
        (["explain", "--run", "runs/sentiment"], "text"),
        (["explain", "--run", "runs/sentiment", "x", "--csv", "in/series.csv"], "--csv"),
        (["explain", "--run", "runs/forecast"], "--csv"),
        (["explain", "--run", "runs/textgen", "x"], "sentiment"),
        (["explain", "--run", "runs/forecast", "--csv", "in/short.csv"], "short.csv"),
        (["explain", "--run", "runs/nope", "x"], "runs/nope"),
    ]  # fmt: skip
    # A text of 10**12 characters takes days and the memory of the text: 60 s tell.
    return [Case("use a run", " ".join(a[:1] + a[3:])[:70], a, e, timeout=60) for a, e in rows]


def checkpoint_cases() -> list[Case]:
    """Run folders edited after training: tensors, the training state, config, vocabulary."""
    cases = []
    for name, expect in (
        ("flipped_model", "model.safetensors"), ("truncated_model", "model.safetensors"),
        ("empty_model", "model.safetensors"), ("no_model", "model.safetensors"),
        ("config_list", "config.json"), ("config_junk", "config.json"),
        ("config_edited", "config.json"), ("config_no_task", "config.json"),
        ("no_config", "config.json"), ("vocabulary_edited", "vocabulary.json"),
    ):  # fmt: skip
        run = f"runs/sentiment_{name}"
        cases.append(
            Case("checkpoints", f"predict on {name}", ["predict", "--run", run, "a film"], expect)
        )
        if name in ("flipped_model", "config_edited", "vocabulary_edited"):
            cases.append(
                Case(
                    "checkpoints", f"explain on {name}", ["explain", "--run", run, "a film"], expect
                )
            )
            cases.append(
                Case(
                    "checkpoints",
                    f"evaluate on {name}",
                    ["evaluate", "--run", run, "--data", "in/reviews.csv"],
                    expect,
                )
            )
    for name in (
        "state_lr",
        "state_step",
        "state_unfinished",
        "checkpoint_flipped",
        "checkpoint_header",
    ):
        run = f"runs/sentiment_{name}"
        cases.append(Case("checkpoints", f"train --resume on {name}",
                          ["train", "sentiment", "--resume", run, "--quiet"], "checkpoint.safetensors"))  # fmt: skip
    return cases


def archive_cases() -> list[Case]:
    """Archives whose members would inflate far beyond their size, or lie about it."""
    return [
        Case(
            "archives",
            "convert a .keras bomb (ratio)",
            ["convert", "in/bomb.keras", "out/x.onnx"],
            "zip bomb",
        ),
        Case(
            "archives",
            "convert a .keras with a huge config (size)",
            ["convert", "in/big_config.keras", "out/x.onnx"],
            "big_config.keras",
        ),
        Case(
            "archives",
            "convert a .keras that lies about a size",
            ["convert", "in/liar.keras", "out/x.onnx"],
            "liar.keras",
        ),
        Case("archives", "convert a .pt bomb", ["convert", "in/bomb.pt", "out/x.onnx"], "zip bomb"),
        Case(
            "archives",
            "train on an imdb.npz bomb",
            ["train", "sentiment", "--data", "in/imdb_bomb.npz", "--out", "out/s"],
            "imdb_bomb.npz",
        ),
        Case(
            "archives",
            "train on a tar with a 20 MB review",
            ["train", "sentiment", "--data", "in/bomb.tar.gz", "--out", "out/s"],
            "bomb.tar.gz",
        ),
        Case(
            "archives",
            "evaluate on an imdb.npz bomb",
            ["evaluate", "--run", "runs/sentiment", "--data", "in/imdb_bomb.npz"],
            "imdb_bomb.npz",
        ),
        Case(
            "archives",
            "evaluate on a tar with a 20 MB review",
            ["evaluate", "--run", "runs/sentiment", "--data", "in/bomb.tar.gz"],
            "bomb.tar.gz",
        ),
    ]


def pickle_cases() -> list[Case]:
    """Files whose pickles would run code (write the marker): nothing may run."""
    return [
        Case(
            "pickle",
            "convert a .pt whose tensors are payloads",
            ["convert", "in/pickled.pt", "out/x.onnx"],
            "pickled.pt",
        ),
        Case(
            "pickle",
            "train on an imdb.npz of object arrays",
            ["train", "sentiment", "--data", "in/imdb_pickle.npz", "--out", "out/s"],
            "imdb_pickle.npz",
        ),
        Case(
            "pickle",
            "evaluate on an imdb.npz of object arrays",
            ["evaluate", "--run", "runs/sentiment", "--data", "in/imdb_pickle.npz"],
            "imdb_pickle.npz",
        ),
        Case(
            "pickle",
            "predict with a pickle as model.safetensors",
            ["predict", "--run", "runs/sentiment_pickled_model", "a film"],
            "model.safetensors",
        ),
        Case(
            "pickle",
            "API: read a .pt of payloads",
            lambda: gru.interop.convert.read(ROOT / "in/pickled.pt"),
            "pickled.pt",
        ),
        Case(
            "pickle",
            "API: keras_imdb of object arrays",
            lambda: gru.data.keras_imdb.read_keras_npz(ROOT / "in/imdb_pickle.npz"),
            "imdb_pickle.npz",
        ),
        Case(
            "pickle",
            "API: load a run whose model is a pickle",
            lambda: gru.tasks.SentimentClassifier.load(ROOT / "runs/sentiment_pickled_model"),
            "model.safetensors",
        ),
    ]


def escapes(page: str) -> Callable[[], str | None]:
    """A check: the page at ``page`` holds the HTML input only escaped."""

    def check():
        path = ROOT / page
        if not path.exists():
            return f"{page} not written"
        text = path.read_text()
        if "<script>alert" in text or "<img src=x" in text:
            return f"{page} holds the input unescaped"
        return None

    return check


def html_cases() -> list[Case]:
    """HTML in a review or a column name: legitimate input that the pages must escape."""
    return [
        Case("html", "explain a review of HTML", ["explain", "--run", "runs/sentiment", HTML, "--out", "out/h1.html"],
             accept=True, may_write=("out/h1",), check=escapes("out/h1.html")),
        Case("html", "explain a column named in HTML", ["explain", "--run", "runs/html", "--csv", "in/html_column.csv", "--out", "out/h2.html"],
             accept=True, may_write=("out/h2",), check=escapes("out/h2.html")),
        Case("html", "the report of a run on a column named in HTML", lambda: None, accept=True,
             check=escapes("runs/html/report.html")),
        Case("html", "predict a review of HTML", ["predict", "--run", "runs/sentiment", HTML], accept=True),
        Case("html", "API: explain a review of HTML", lambda: gru.tasks.explain(ROOT / "runs/sentiment", HTML, out=ROOT / "out/h3.html"),
             accept=True, may_write=("out/h3",), check=escapes("out/h3.html")),
    ]  # fmt: skip


def convert_cases() -> list[Case]:
    """gru convert on every kind of model file, wrong."""
    rows = {
        "missing": "in/nope.onnx", "empty .onnx": "in/empty.onnx", "junk .onnx": "in/junk.onnx",
        "junk .keras": "in/junk.keras", "junk .h5": "in/junk.h5",
        "junk .safetensors": "in/junk.safetensors", "empty .safetensors": "in/empty.safetensors",
        "truncated .safetensors": "in/truncated.safetensors",
        "a 2**60-byte header": "in/huge_header.safetensors", "text as .pt": "in/text.pt",
        "a Linear's .pt": "in/linear.pt", "unknown extension": "in/unknown.xyz",
        "a folder": "in/a_folder.onnx", "a .keras config [1, 2]": "in/list_config.keras",
        "a .keras config not JSON": "in/junk_config.keras", "a .keras of Dense": "in/dense.keras",
        "a run's config.json": "runs/sentiment/config.json",
    }  # fmt: skip
    cases = [Case("convert", f"SOURCE {name}", ["convert", path, "out/x.onnx"], Path(path).name)
             for name, path in rows.items()]  # fmt: skip
    cases.append(
        Case(
            "convert",
            "--layer nope",
            ["convert", "in/layer.safetensors", "out/x.onnx", "--layer", "nope"],
            "layer",
        )
    )
    return cases


def compare_cases() -> list[Case]:
    q = ["compare", "--quick", "--quiet", "--out", "out/c"]
    rows = [
        (["--tasks", "nope"], "nope"), (["--tasks", ""], "task"), (["--models", "gpt"], "gpt"),
        (["--epochs", "0"], "--epochs"), (["--hidden-size", "-1"], "--hidden-size"),
        (["--seed", "-1"], "--seed"), (["--threads", "0"], "--threads"),
        (["--adding-train", "0"], "--adding-train"), (["--imdb-limit", "0"], "--imdb-limit"),
        (["--tasks", "imdb", "--imdb", "in/nope"], "in/nope"),
        (["--tasks", "etth1", "--csv", "in/nope.csv"], "nope.csv"),
        (["--tasks", "etth1", "--csv", "in/empty.csv"], "empty.csv"),
        (["--tasks", "etth1", "--csv", "in/short.csv"], "short.csv"),
    ]  # fmt: skip
    return [Case("compare", " ".join(a), [*q, *a], e) for a, e in rows]


def api_cases() -> list[Case]:
    """The same mistakes made from Python: each task's class, the layer, the readers."""
    import pandas as pd

    from gru import checkpoint, tasks
    from gru.data import imdb, text, timeseries
    from gru.interop import convert

    r = ROOT / "runs"
    out = ROOT / "out" / "api"
    csv = ROOT / "in" / "series.csv"
    small = {"sentiment": {"num_words": 200, "maxlen": 16, "embedding_dim": 4, "hidden_size": 4,
                           "limit": 300, "epochs": 1},
             "forecast": {"model": "gru", "lookback": 16, "horizon": 4, "hidden_size": 4, "epochs": 1},
             "anomaly": {"lookback": 16, "hidden_size": 4, "epochs": 1},
             "textgen": {"hidden_size": 8, "num_layers": 1, "embedding_dim": 4, "seq_len": 16, "epochs": 1},
             "adding": {"seq_len": 10, "hidden_size": 4, "n_train": 64, "n_test": 32, "epochs": 1}}  # fmt: skip
    classes = {"sentiment": tasks.SentimentClassifier, "forecast": tasks.Forecaster,
               "anomaly": tasks.AnomalyDetector, "textgen": tasks.TextGenerator,
               "adding": tasks.Adder}  # fmt: skip
    fit_args = {"sentiment": (), "forecast": (csv, "v"), "anomaly": (csv, "v"),
                "textgen": (ROOT / "in/text.txt",), "adding": ()}  # fmt: skip

    def fit(task, *args, **settings):
        def call():
            model = classes[task](**{**small[task], **settings})
            model.fit(*(args or fit_args[task]), out=out / task, quiet=True, log=lambda m: None)

        return call

    rows = []
    for task in classes:
        for setting, value, expect in (
            ("hidden_size", 0, "hidden_size"), ("hidden_size", "8", "hidden_size"),
            ("hidden_size", 2.5, "hidden_size"), ("epochs", 0, "epochs"), ("lr", float("nan"), "lr"),
            ("lr", float("inf"), "lr"), ("seed", 2**70, "seed"), ("seed", -1, "seed"),
            ("batch_size", -4, "batch_size"), ("no_such_setting", 1, "no_such_setting"),
        ):  # fmt: skip
            rows.append(
                (task, f"{task}({setting}={value!r})", fit(task, **{setting: value}), expect)
            )
        rows.append(
            (task, f"{task}.load(missing)", lambda c=classes[task]: c.load(r / "nope"), "nope")
        )
        other = "adding" if task != "adding" else "sentiment"
        rows.append(
            (
                task,
                f"{task}.load(a {other} run)",
                lambda c=classes[task], o=other: c.load(r / o),
                task,
            )
        )
        rows.append(
            (
                task,
                f"{task}.fit(out=an existing run)",
                lambda t=task: classes[t](**small[t]).fit(
                    *fit_args[t], out=r / "adding", quiet=True
                ),
                "adding",
            )
        )
    S, F, A, T = (classes[k] for k in ("sentiment", "forecast", "anomaly", "textgen"))
    rows += [
        ("sentiment", "SentimentClassifier(dropout='a')", fit("sentiment", dropout="a"), "dropout"),
        ("sentiment", "SentimentClassifier(padding='middle')", fit("sentiment", padding="middle"), "padding"),
        ("sentiment", "fit(data=123)", fit("sentiment", 123), "data"),
        ("sentiment", "fit(data='nope.csv')", fit("sentiment", ROOT / "in/nope.csv"), "nope.csv"),
        ("sentiment", "predict before fit", lambda: S().predict(["a film"]), "fit"),
        ("sentiment", "predict('a string')", lambda: S.load(r / "sentiment").predict("a film"), "texts"),
        ("sentiment", "predict([1, 2])", lambda: S.load(r / "sentiment").predict([1, 2]), "text"),
        ("sentiment", "load(edited state)", lambda: S.load(r / "sentiment_flipped_model"), "model.safetensors"),
        ("forecast", "Forecaster(lookback=0)", fit("forecast", lookback=0), "lookback"),
        ("forecast", "Forecaster(dropout=2)", fit("forecast", dropout=2.0), "dropout"),
        ("forecast", "Forecaster(features='X')", fit("forecast", features="X"), "features"),
        ("forecast", "fit(target=3)", fit("forecast", csv, 3), "target"),
        ("forecast", "fit(target='nope')", fit("forecast", csv, "nope"), "nope"),
        ("forecast", "fit(an empty DataFrame)", fit("forecast", pd.DataFrame(), "v"), "v"),
        ("forecast", "predict before fit", lambda: F().predict(csv), "fit"),
        ("forecast", "predict(a DataFrame without the column)", lambda: F.load(r / "forecast").predict(pd.DataFrame({"x": [1.0] * 50})), "v"),
        ("anomaly", "AnomalyDetector(quantile=2)", fit("anomaly", quantile=2.0), "quantile"),
        ("anomaly", "AnomalyDetector(quantile='a')", fit("anomaly", quantile="a"), "quantile"),
        ("anomaly", "AnomalyDetector(magnitude=inf)", fit("anomaly", magnitude=float("inf")), "magnitude"),
        ("anomaly", "fit(column=5)", fit("anomaly", csv, 5), "column"),
        ("anomaly", "detect(threshold=-1)", lambda: A.load(r / "anomaly").detect(csv, threshold=-1), "threshold"),
        ("anomaly", "detect(threshold='a')", lambda: A.load(r / "anomaly").detect(csv, threshold="a"), "threshold"),
        ("anomaly", "detect before fit", lambda: A().detect(csv), "fit"),
        ("textgen", "TextGenerator(dropout=1)", fit("textgen", dropout=1.0), "dropout"),
        ("textgen", "fit(a missing text)", fit("textgen", ROOT / "in/nope.txt"), "nope.txt"),
        ("textgen", "generate(length=-1)", lambda: T.load(r / "textgen").generate("a", -1), "length"),
        ("textgen", "generate(temperature=nan)", lambda: T.load(r / "textgen").generate("a", 5, temperature=float("nan")), "temperature"),
        ("textgen", "generate(top_k=0)", lambda: T.load(r / "textgen").generate("a", 5, top_k=0), "top_k"),
        ("textgen", "generate(temperature=inf)", lambda: T.load(r / "textgen").generate("a", 5, temperature=float("inf")), "temperature"),
        ("textgen", "generate(seed=-1)", lambda: T.load(r / "textgen").generate("a", 5, seed=-1), "seed"),
        ("textgen", "generate(prompt=5)", lambda: T.load(r / "textgen").generate(5, 5), "prompt"),
        ("textgen", "generate before fit", lambda: T().generate("a", 5), "fit"),
        ("explain", "explain(a missing run)", lambda: tasks.explain(r / "nope", "x"), "nope"),
        ("explain", "explain(text=None)", lambda: tasks.explain(r / "sentiment"), "text"),
        ("explain", "explain(text=5)", lambda: tasks.explain(r / "sentiment", 5), "text"),
        ("explain", "explain(out=the run's config)", lambda: tasks.explain(r / "sentiment", "x", out=r / "sentiment/config.json"), "out"),
        ("compare", "CompareConfig(tasks=['x'])", lambda: tasks.compare.run(tasks.compare.CompareConfig(tasks=["x"])), "x"),
        ("compare", "CompareConfig(epochs=0)", lambda: tasks.compare.run(tasks.compare.CompareConfig(epochs=0)), "epochs"),
        ("compare", "CompareConfig(tasks='adding-100')", lambda: tasks.compare.run(tasks.compare.CompareConfig(tasks="adding-100")), "tasks"),
        ("layer", "GRU(0, 4)", lambda: gru.GRU(0, 4), "input_size"),
        ("layer", "GRU(3, -1)", lambda: gru.GRU(3, -1), "hidden_size"),
        ("layer", "GRU(3, 4, num_layers=0)", lambda: gru.GRU(3, 4, num_layers=0), "num_layers"),
        ("layer", "GRU(3, 4, dropout=2)", lambda: gru.GRU(3, 4, dropout=2.0), "dropout"),
        ("layer", "GRU(3, 4)(x of 5 features)", lambda: gru.GRU(3, 4)(torch.zeros(2, 1, 5)), "input_size"),
        ("layer", "GRU(3, 4)(int64 x)", lambda: gru.GRU(3, 4)(torch.zeros(2, 1, 3, dtype=torch.int64)), "dtype"),
        ("layer", "GRU(3, 4)(x, h0 of the wrong shape)", lambda: gru.GRU(3, 4)(torch.zeros(2, 1, 3), torch.zeros(1, 2, 4)), "h"),
        ("readers", "timeseries.read_csv(empty)", lambda: timeseries.read_csv(ROOT / "in/empty.csv"), "empty.csv"),
        ("readers", "timeseries.read_csv(a folder)", lambda: timeseries.read_csv(ROOT / "in/a_folder.csv"), "a_folder.csv"),
        ("readers", "imdb.load(corrupt tar)", lambda: imdb.load(ROOT / "in/junk.tar.gz", cache=False), "junk.tar.gz"),
        ("readers", "imdb.load(a tar bomb)", lambda: imdb.load(ROOT / "in/bomb.tar.gz", cache=False), "bomb.tar.gz"),
        ("readers", "imdb.load(an npz bomb)", lambda: imdb.load(ROOT / "in/imdb_bomb.npz", cache=False), "imdb_bomb.npz"),
        ("readers", "text.load_word_index(a list)", lambda: text.load_word_index(ROOT / "in/word_index_list.json"), "word_index_list.json"),
        ("readers", "checkpoint.load_tensors(flipped)", lambda: checkpoint.load_tensors(r / "sentiment_flipped_model/model.safetensors"), "model.safetensors"),
        ("readers", "checkpoint.load_config(a list)", lambda: checkpoint.load_config(r / "sentiment_config_list"), "config.json"),
        ("readers", "convert.read(a .keras bomb)", lambda: convert.read(ROOT / "in/bomb.keras"), "bomb.keras"),
        ("readers", "convert.read(a .keras config [1, 2])", lambda: convert.read(ROOT / "in/list_config.keras"), "list_config.keras"),
        ("readers", "convert.convert(dest=source)", lambda: convert.convert(ROOT / "in/layer.safetensors", ROOT / "in/layer.safetensors"), "layer.safetensors"),
        ("readers", "convert.convert(dest exists)", lambda: convert.convert(ROOT / "in/layer.safetensors", ROOT / "in/existing.onnx"), "existing.onnx"),
    ]  # fmt: skip
    return [Case(f"API: {group}", name, call, expect) for group, name, call, expect in rows]


# --- the table ----------------------------------------------------------------------------------


def table(results: list[Result]) -> str:
    lines = [
        "| category | tried | clear error naming the argument | traceback | written or lost | failing |",
        "|---|---|---|---|---|---|",
    ]
    groups: dict[str, list[Result]] = {}
    for result in results:
        groups.setdefault(result.case.category, []).append(result)
    for name, rows in [*groups.items(), ("all", results)]:
        cells = [len(rows), sum(r.clear for r in rows), sum(r.traceback for r in rows),
                 sum(bool(r.written) for r in rows), sum(bool(r.problems) for r in rows)]  # fmt: skip
        label = f"**{name}**" if name == "all" else name
        lines.append(f"| {label} | " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


def main() -> int:
    global ROOT, SPAWN
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spawn", action="store_true", help="a fresh interpreter per case")
    parser.add_argument("--only", help="run only the cases whose category or name holds this")
    parser.add_argument("--verbose", action="store_true", help="print every case as it runs")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR (made once, then reused)")
    args = parser.parse_args()
    SPAWN = args.spawn
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        ROOT = Path(args.keep or tmp).resolve()
        if not (ROOT / "runs").is_dir():
            ROOT.mkdir(exist_ok=True)
            make_inputs()
            train_runs()
        shutil.rmtree(ROOT / "out", ignore_errors=True)
        (ROOT / "out").mkdir()
        print(f"inputs and runs ready in {time.monotonic() - started:.0f} s", flush=True)
        groups = (train_cases, file_cases, output_cases, use_cases, checkpoint_cases,
                  archive_cases, pickle_cases, html_cases, convert_cases, compare_cases)  # fmt: skip
        cli = [c for g in groups for c in g() if isinstance(c.run, list)]
        api = [c for g in groups for c in g() if not isinstance(c.run, list)] + api_cases()
        results = []
        for case in cli + api:
            if args.only and args.only not in f"{case.category} {case.name}":
                continue
            result = run_case(case)
            results.append(result)
            if args.verbose:
                state = "ok" if not result.problems else "FAIL " + "; ".join(result.problems)
                print(f"{case.category} | {case.name} | {result.outcome} | {state}", flush=True)
                print(
                    "    " + result.message.splitlines()[-1][:300] if result.message else "",
                    flush=True,
                )
        print(f"\n{len(results)} cases in {time.monotonic() - started:.0f} s "
              f"({'a fresh interpreter' if SPAWN else 'a fork'} per command)\n")  # fmt: skip
        print(table(results))
        failing = [r for r in results if r.problems]
        print(f"\nfailing cases ({len(failing)}):")
        for r in failing:
            last = r.message.splitlines()[-1][:240] if r.message else ""
            print(f"- [{r.case.category}] {r.case.name}: {r.outcome}; {'; '.join(r.problems)}")
            if last:
                print(f"    {last}")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
