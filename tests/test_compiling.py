"""`gru.kernels.compiling`: a first use that waits for a compile says so; `gru compile`.

The subprocess tests start from an empty Numba cache (their own NUMBA_CACHE_DIR) and use the
cheapest kernel to compile, the streaming step (seconds)."""

import os
import re
import subprocess
import sys
import time

import numba
import numpy as np
import pytest

from gru.kernels import compiling, precompile
from gru.ops import aside
from gru.ops.threads import threads as gru_threads

ANNOUNCED = re.compile(
    r"gru: compiling the CPU engine for streaming, float32 \(once per machine, ~\d+ s\)\.\.\. "
    r"done in \d+\.\d s\n"
)
FIRST_STREAM = "import torch, gru; gru.GRU(4, 8).stream(1)(torch.zeros(1, 4)); print('stepped')"


def python(cache, *argv):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr


def test_a_cold_first_use_says_what_it_compiles_and_a_warm_one_says_nothing(tmp_path):
    out, err = python(tmp_path, "-c", FIRST_STREAM)
    assert out == "stepped\n"
    assert ANNOUNCED.fullmatch(err), err
    out, err = python(tmp_path, "-c", FIRST_STREAM)  # the cache the first process left
    assert (out, err) == ("stepped\n", "")


def test_gru_compile_compiles_into_an_empty_cache_and_then_finds_it(tmp_path):
    out, err = python(tmp_path, "-m", "gru", "compile", "--only", "streaming-float32")
    assert re.fullmatch(
        r"streaming-float32: compiled in \d+\.\d s\ncompiled 1 targets in \d+\.\d s\n", out
    )
    assert err == ""
    out, _ = python(tmp_path, "-m", "gru", "compile", "--only", "streaming-float32")
    assert out.startswith("streaming-float32: already compiled (loaded in ")
    _, err = python(tmp_path, "-c", FIRST_STREAM)
    assert err == ""  # what gru compile compiled is what the first use needs


@pytest.fixture
def impatient(monkeypatch):
    """Announce every compile at once (`PATIENCE` 0) and forget which kinds have run."""
    monkeypatch.setattr(compiling, "PATIENCE", 0.0)
    monkeypatch.setattr(compiling, "_ready", set())


def _wait_for(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_the_first_call_of_a_kind_announces_its_compile_and_later_calls_cost_a_lookup(
    impatient, capsys
):
    key = ("a test kernel", np.dtype(np.float64))
    with compiling.first_use(key, "a test") as watch:
        assert numba.njit(lambda x: x + 1)(1.0) == 2.0  # a compile (a new function)
        _wait_for(lambda: watch.announced)
    assert re.fullmatch(
        r"gru: compiling the CPU engine for a test, float64 \(once per machine\)\.\.\. "
        r"done in \d+\.\d s\n",
        capsys.readouterr().err,
    )
    assert compiling.ready(key)
    with compiling.first_use(key, "a test") as nothing:
        assert numba.njit(lambda x: x + 2)(1.0) == 3.0
    assert nothing is None and capsys.readouterr().err == ""


def test_a_first_call_that_compiles_nothing_or_fails_says_nothing(impatient, capsys):
    add = numba.njit(lambda x: x + 1)
    add(1.0)
    with compiling.first_use(("compiled already", np.dtype(np.float32)), "a test"):
        time.sleep(0.05)
        add(2.0)
    with pytest.raises(ZeroDivisionError):
        with compiling.first_use(("fails", np.dtype(np.float32)), "a test"):
            raise ZeroDivisionError
    assert capsys.readouterr().err == ""
    assert compiling.ready(("compiled already", np.dtype(np.float32)))
    assert not compiling.ready(("fails", np.dtype(np.float32)))  # tried again next time


def test_first_call_runs_a_first_call_on_its_own_thread_and_later_ones_in_the_callers(
    impatient, capsys
):
    import threading

    def where(x, y):
        return x + y, threading.current_thread().name, numba.get_num_threads()

    key = ("a test call", np.dtype(np.float32))
    with gru_threads(1):
        total, thread, threads = compiling.first_call(key, "a test", where, 2, 3)
    assert (total, threads) == (5, 1)  # the caller's count of Numba threads goes with it
    assert thread == "gru-first-call" and compiling.ready(key)
    assert compiling.first_call(key, "a test", where, 2, 3)[1] == threading.current_thread().name

    def fails(x):
        raise ZeroDivisionError(f"from the first call: {x}")

    with pytest.raises(ZeroDivisionError, match="from the first call: 7"):
        compiling.first_call(("fails", np.dtype(np.float32)), "a test", fails, 7)
    assert not compiling.ready(("fails", np.dtype(np.float32)))
    assert capsys.readouterr().err == ""


def test_compile_all_names_a_wrong_target():
    with pytest.raises(ValueError, match=r"compile: unknown target 'training'; valid: infer"):
        precompile.compile_all(["training"])


ASIDE = """
import numpy, torch, gru
from gru.kernels import compiling
from gru.ops import aside
torch.manual_seed(0)
layer, x = gru.GRU(10, 20), torch.randn(5, 32, 10)
reference = torch.nn.GRU(10, 20)
reference.load_state_dict(layer.state_dict())
expected = reference(x)[0]
expected.sum().backward()
for target in ("inference", "training"):  # without gradients, then with them
    for when in ("first", "later"):
        with torch.set_grad_enabled(target == "training"):
            out = layer(x)[0]
        print(target, aside.state("float32", target), end=" ")
        print(compiling.ready(("small" if target == "inference" else "tiles backward",
                               numpy.dtype("float32"))))
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
        if target == "training":
            layer.zero_grad()
            out.sum().backward()
            for ours, theirs in zip(layer.parameters(), reference.parameters()):
                torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-4, atol=1e-5)
        assert aside.finish(900)
"""

SAID = (
    "gru: compiling the CPU engine for {}, float32, in the background (once per machine, about "
    "a minute); until it is ready this process computes with torch operations\n"
)


def test_a_cold_call_computes_while_the_engine_compiles_aside(tmp_path, monkeypatch):
    """Mode "aside" (the library's default): a cold cache starts ``gru compile`` in a process
    of its own and the call computes with torch operations (autograd through them with
    gradients); once that process ends, the next call loads its kernels and runs on the engine.
    A second process finds them at once."""
    monkeypatch.setenv("GRU_COMPILE", "aside")
    cold, warm = "compiling False", "ready True"  # the kind's state, the engine's kernel used
    out, err = python(tmp_path, "-c", ASIDE)
    assert out.splitlines() == [f"{k} {s}" for k in ("inference", "training") for s in (cold, warm)]
    assert err == SAID.format("inference") + SAID.format("training")
    out, err = python(tmp_path, "-c", ASIDE)
    assert out.splitlines() == [f"{k} {warm}" for k in ("inference", "training") for _ in (1, 2)]
    assert err == ""


BESIDE = """
import torch, gru
from numba.core import event
from gru.ops import aside
compiled = []  # what this process compiled (the end of each compile)
class Compiled(event.Listener):
    def on_start(self, ev): pass
    def on_end(self, ev):
        # not the cache probes, which stop a compile at its start (Numba's own is_failed
        # answers the opposite: True for a compile that ended without an exception)
        if getattr(ev, "_exc_details", None) is None:
            compiled.append(ev.data["dispatcher"].py_func.__name__)
event.register("numba:compile", Compiled())
torch.manual_seed(0)
H, B = SHAPE
layer, x = gru.GRU(10, H), torch.randn(30, B, 10)
reference = torch.nn.GRU(10, H)
reference.load_state_dict(layer.state_dict())
reference(x)[0].sum().backward()
layer(x)[0].sum().backward()
for ours, theirs in zip(layer.parameters(), reference.parameters()):
    torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-4, atol=1e-5)
print(aside.state("float32", BACKWARD), FORWARD in compiled,
      [name for name in compiled if "backward" in name])
"""


@pytest.mark.parametrize(
    "shape, backward, forward",
    [
        ((20, 2), "backward", "forward_rows"),
        ((64, 4), "packed-backward", "forward_rows"),
        ((20, 4), "tiles-backward", "forward"),
    ],
    ids=["rows", "packed", "tiles"],
)
def test_a_cold_training_step_compiles_its_backward_in_a_second_process(
    tmp_path, monkeypatch, shape, backward, forward
):
    """Mode "wait" (training runs, the command line): the first step with gradients compiles
    the forward in place while ``gru compile --only backward-float32`` (the row kernels', for
    H 20, 2 rows), ``packed-backward-float32`` (H 64, 4 rows: the packed loops') or
    ``tiles-backward-float32`` (H 20, 4 rows: the tiles') compiles the backward in a second
    process; the step's backward waits for it and loads what it compiled."""
    monkeypatch.setenv("GRU_COMPILE", "wait")
    script = f"SHAPE, BACKWARD, FORWARD = {shape!r}, {backward!r}, {forward!r}\n" + BESIDE
    out, err = python(tmp_path, "-c", script)
    assert out == "ready True []\n"  # the forward compiled here, the backward only loaded
    assert re.fullmatch(
        r"gru: compiling the CPU engine for training, float32 \(once per machine, ~\d+ s\)"
        r"\.\.\. done in \d+\.\d s\n"
        r"(gru: compiling the CPU engine for training, float32 \(its backward, in a second "
        r"process\)\.\.\. done in \d+\.\d s\n)?",  # said when it kept the step waiting
        err,
    ), err


def test_the_compile_mode_is_aside_or_wait(monkeypatch):
    monkeypatch.setattr(aside, "_mode", [])
    monkeypatch.setenv("GRU_COMPILE", "later")
    with pytest.raises(ValueError, match=r"GRU_COMPILE must be one of aside, wait, got 'later'"):
        aside.mode()
    monkeypatch.setenv("GRU_COMPILE", " Wait ")
    assert aside.mode() == "wait"
    assert aside.engine_ready("float64")  # "wait": the engine, compiling in place if it must
    with pytest.raises(ValueError, match=r"set_mode: mode must be one of aside, wait, got 'no'"):
        aside.set_mode("no")
    aside.set_mode("aside")
    assert aside.mode() == "aside"
    with aside.waiting():  # how gru.training.fit trains
        assert aside.mode() == "wait"
    assert aside.mode() == "aside"
