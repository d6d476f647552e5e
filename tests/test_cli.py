"""The command line, run in-process through main([...])."""

import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
from contextlib import nullcontext

import numpy as np
import pytest
import torch

from checks import run_cli as run
from gru import __version__
from gru.cli import main
from gru.tasks import adding

TINY = ["--limit", "300", "--num-words", "300", "--maxlen", "20", "--embedding-dim", "4", "--hidden-size", "4", "--epochs", "2", "--quiet"]  # fmt: skip


def folder_digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "sentiment"
    assert main(["train", "sentiment", *TINY, "--out", str(out)]) == 0
    return out


# --- train -----------------------------------------------------------------------------------


def test_train_adding_beats_the_mean_baseline(capsys, tmp_path):
    code, out, _ = run(
        capsys, "train", "adding", "--seq-len", 10, "--n-train", 3000, "--n-test", 500,
        "--epochs", 3, "--batch-size", 32, "--lr", 0.01, "--quiet", "--out", tmp_path / "a",
    )  # fmt: skip
    assert code == 0
    found = re.search(r"test MSE (\d\.\d+) vs (\d\.\d+) predicting the mean \(\d+x lower\)", out)
    mse, baseline = float(found[1]), float(found[2])
    assert baseline == pytest.approx(1 / 6, abs=0.03)
    # The time line every task prints, and the epoch kept by the validation MSE.
    assert re.search(
        r"time: 3 epochs in [\d.]+ s of training, [\d.]+ s for the whole run; weights of epoch "
        r"[123] \(least validation MSE\)",
        out,
    )
    assert mse < baseline / 4
    assert f"run folder: {tmp_path / 'a'}" in out
    assert (tmp_path / "a" / "model.safetensors").is_file()
    model = adding.load(tmp_path / "a")
    assert model.rnn.hidden_size == 32


def test_train_sentiment_reports_accuracy_time_and_run_folder(capsys, tmp_path):
    code, out, _ = run(
        capsys, "train", "sentiment", *TINY, "--torch-layer", "--out", tmp_path / "t"
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"run folder: {tmp_path / 't'}"
    assert lines[1].startswith("time: 2 epochs, ") and lines[1].endswith("with torch.nn.GRU")
    assert lines[2].startswith("test accuracy: ") and "on 300 reviews (weights of epoch" in lines[2]
    assert "--data aclImdb_v1.tar.gz" in out  # how to train on the full dataset
    metrics = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert f"test accuracy: {metrics['test']['accuracy']:.4f}" in out


def test_the_default_run_folder_is_new_under_runs(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        assert run(capsys, "train", "sentiment", *TINY, "--epochs", 1)[0] == 0
    folders = sorted((tmp_path / "runs").iterdir())
    assert len(folders) == 2 and all(f.name.startswith("sentiment-") for f in folders)


def test_resume_a_finished_run_and_refuse_a_changed_one(capsys, run_dir):
    before = folder_digest(run_dir)
    history = json.loads((run_dir / "metrics.json").read_text())["history"]
    code, out, _ = run(capsys, "train", "sentiment", "--resume", run_dir, "--quiet")
    assert code == 0 and "test accuracy:" in out
    assert json.loads((run_dir / "metrics.json").read_text())["history"] == history
    code, _, err = run(capsys, "train", "sentiment", "--resume", run_dir, "--epochs", 3)
    assert code == 2
    assert "was trained with a different configuration: train.epochs was 2, now 3" in err
    code, _, err = run(capsys, "train", "sentiment", "--resume", run_dir, "--preset", "strong")
    assert code == 2 and "bidirectional was False, now True" in err
    assert folder_digest(run_dir)["model.safetensors"] == before["model.safetensors"]


# --- predict and evaluate ----------------------------------------------------------------------


def test_predict_texts_and_a_file(capsys, run_dir, tmp_path):
    code, out, _ = run(capsys, "predict", "--run", run_dir, "this movie was wonderful", "dull")
    assert code == 0
    lines = [line.split("\t") for line in out.splitlines()]
    assert [line[2] for line in lines] == ["this movie was wonderful", "dull"]
    for label, p, _ in lines:
        assert label == ("positive" if float(p) > 0.5 else "negative") and 0 < float(p) < 1
    texts = tmp_path / "texts.txt"
    texts.write_text("this movie was wonderful\nawful\n")
    code, from_file, _ = run(capsys, "predict", "--run", run_dir, "--file", texts)
    assert code == 0 and from_file.splitlines()[0] == out.splitlines()[0]
    # Blank lines (an empty last line, a gap) are skipped, and stderr says how many.
    texts.write_text("this movie was wonderful\n\n   \nawful\n\n")
    code, skipping, err = run(capsys, "predict", "--run", run_dir, "--file", texts)
    assert code == 0 and skipping == from_file
    assert err == f"gru: skipped 3 blank lines of '{texts}'\n"
    texts.write_text("\n \n")
    code, _, err = run(capsys, "predict", "--run", run_dir, "--file", texts)
    assert code == 2
    assert (
        err == f"gru: error: --file: '{texts}' is empty (2 blank lines); give one text per line\n"
    )


def test_evaluate_on_the_sample(capsys, run_dir):
    code, out, _ = run(capsys, "evaluate", "--run", run_dir, "--data", "sample")
    assert code == 0 and out.startswith("accuracy 0.") and "on 5,000 reviews of sample" in out


def test_every_command_documents_its_options(capsys):
    for argv, options in (
        (["train", "sentiment"], ["--out", "--epochs", "--batch-size", "--lr", "--seed", "--backend", "--resume", "--checkpoint-every", "--quiet", "--data", "--preset", "--torch-layer"]),
        (["train", "adding"], ["--out", "--resume", "--checkpoint-every", "--backend", "--seq-len"]),
        (["predict"], ["--run", "--file", "TEXT"]),
        (["evaluate"], ["--run", "--data"]),
    ):  # fmt: skip
        with pytest.raises(SystemExit) as exit_info:
            main([*argv, "--help"])
        assert exit_info.value.code == 0
        text = capsys.readouterr().out
        assert all(option in text for option in options), argv


# --- bad input: a message and exit code 2, nothing overwritten ----------------------------------


def keras_npz(path, **overrides):
    ids = np.empty(2, dtype=object)
    ids[:] = [[1, 4], [1, 5, 6]]
    arrays = {
        "x_train": ids,
        "y_train": np.array([0, 1]),
        "x_test": ids,
        "y_test": np.array([1, 0]),
    }
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def bad_data(tmp_path, kind):
    if kind == "missing":
        return tmp_path / "nowhere" / "aclImdb_v1.tar.gz"
    if kind == "unreadable":
        (tmp_path / "aclImdb_v1.tar.gz").write_bytes(b"\x1f\x8b not really gzip")
        return tmp_path / "aclImdb_v1.tar.gz"
    if kind == "npz keys":
        return keras_npz(tmp_path / "imdb.npz", x_test=None)
    if kind == "npz kind":
        strings = np.empty(2, dtype=object)
        strings[:] = ["a review", "another"]
        return keras_npz(tmp_path / "imdb.npz", x_train=strings)
    contents = {
        "csv columns": "review,stars\ngood,5\n",
        "empty text": "text,label\ngood,1\n,0\n",
        "labels": "text,label\ngood,1\nbad,-1\n",
    }
    (tmp_path / "mine.csv").write_text(contents[kind])
    return tmp_path / "mine.csv"


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", r"gru: error: data: '.*nowhere/aclImdb_v1.tar.gz' does not exist"),
        (
            "unreadable",
            r"gru: error: data: cannot read '.*aclImdb_v1.tar.gz' as a .tar.gz/.tar.xz archive of aclImdb",
        ),
        (
            "npz keys",
            r"gru: error: data: '.*imdb.npz' has arrays x_train, y_test, y_train; expected x_train, y_train, x_test, y_test",
        ),
        (
            "npz kind",
            r"gru: error: data: x_train of '.*imdb.npz' must be a 1-D array of token-id lists .*; item 0 is a str",
        ),
        (
            "csv columns",
            r"gru: error: data: '.*mine.csv' has no column 'text', 'label'; its columns are 'review', 'stars'",
        ),
        ("empty text", r"gru: error: data: empty text in row 3 of '.*mine.csv' \(column 'text'\)"),
        (
            "labels",
            r"gru: error: data: the labels in column 'label' of '.*mine.csv' must be binary, 0/1 or neg/pos \(negative/positive\), got '-1' \(row 3\)",
        ),
    ],
)
def test_bad_data_exits_2_with_a_message(capsys, tmp_path, run_dir, kind, message):
    data = bad_data(tmp_path, kind)
    out = tmp_path / "run"
    code, _, err = run(capsys, "train", "sentiment", *TINY, "--data", data, "--out", out)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert re.match(message, err), err
    assert not out.exists()  # nothing written
    code, _, err = run(capsys, "evaluate", "--run", run_dir, "--data", data)
    assert code == 2 and re.match(message, err), err


def damage(run_dir, tmp_path, kind):
    """A copy of the run folder, damaged as ``kind`` says."""
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    model, config = copy / "model.safetensors", copy / "config.json"
    if kind == "truncated model":
        model.write_bytes(model.read_bytes()[:1000])
    elif kind == "altered model":
        data = bytearray(model.read_bytes())
        data[-5] ^= 1
        model.write_bytes(bytes(data))
    elif kind == "truncated config":
        config.write_text(config.read_text()[:50])
    elif kind == "altered config":
        config.write_text(config.read_text().replace('"hidden_size": 4', '"hidden_size": 5'))
    elif kind == "altered vocabulary":
        vocabulary = copy / "vocabulary.json"
        vocabulary.write_text(vocabulary.read_text().replace('"the":1', '"the":2'))
    return copy


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        (
            "truncated model",
            r"gru: error: run: '.*copy/model.safetensors' is truncated or not a safetensors file",
        ),
        (
            "altered model",
            r"gru: error: run: '.*copy/model.safetensors' was altered: its tensors do not match the checksum",
        ),
        (
            "truncated config",
            r"gru: error: run: '.*copy/config.json' is not valid JSON \(truncated or altered\?\)",
        ),
        (
            "altered config",
            r"gru: error: run: config.json of '.*copy' does not match model.safetensors",
        ),
        ("altered vocabulary", r"gru: error: run: '.*copy/vocabulary.json' was altered"),
    ],
)
def test_damaged_run_folders_exit_2_with_a_message_and_stay_as_they_were(
    capsys, run_dir, tmp_path, kind, message
):
    copy = damage(run_dir, tmp_path, kind)
    before = folder_digest(copy)
    for argv in (
        ["predict", "--run", copy, "good"],
        ["evaluate", "--run", copy, "--data", "sample"],
    ):
        code, _, err = run(capsys, *argv)
        assert code == 2
        assert re.match(message, err), err
    assert folder_digest(copy) == before


def test_bad_runs_and_texts_exit_2_with_a_message(capsys, run_dir, tmp_path):
    code, _, err = run(capsys, "predict", "--run", tmp_path, "good")
    assert code == 2 and "is not a run folder: it has no config.json" in err
    code, _, err = run(capsys, "predict", "--run", run_dir, "")
    assert code == 2 and "gru: error: SentimentClassifier.predict: text 1 is empty" in err
    code, _, err = run(capsys, "train", "sentiment", *TINY, "--resume", tmp_path)
    assert code == 2 and "is not a run folder" in err
    before = folder_digest(run_dir)
    code, _, err = run(capsys, "train", "sentiment", *TINY, "--out", run_dir)
    assert code == 2 and "already exists and is not empty" in err
    assert folder_digest(run_dir) == before
    adding_run = tmp_path / "adding"
    assert (
        main(
            [
                "train",
                "adding",
                "--seq-len",
                "4",
                "--n-train",
                "64",
                "--n-test",
                "16",
                "--epochs",
                "1",
                "--quiet",
                "--out",
                str(adding_run),
            ]
        )
        == 0
    )
    capsys.readouterr()
    code, _, err = run(capsys, "predict", "--run", adding_run, "good")
    assert code == 2 and "is an 'adding' run, not a sentiment run" in err


def test_an_empty_file_of_texts_is_named(capsys, tmp_path):
    # It was "predict: give texts to label, or --file with one text per line", as if no
    # --file had been given.
    (tmp_path / "texts.txt").write_text("")
    code, _, err = run(capsys, "predict", "--run", tmp_path, "--file", tmp_path / "texts.txt")
    assert code == 2
    assert (
        err == f"gru: error: --file: '{tmp_path / 'texts.txt'}' is empty; give one text per line\n"
    )


def test_bad_arguments_exit_2_with_a_message(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "adding", "--epochs", "0"])
    assert exit_info.value.code == 2
    assert "--epochs: must be a positive integer, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "nonsense"])
    assert "invalid choice: 'nonsense'" in capsys.readouterr().err


def test_version_and_module_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "gru", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"gru {__version__}"


def test_a_reader_that_leaves_early_ends_the_command_quietly(run_dir, tmp_path):
    """`gru predict --file big.txt | head -1`: exit as SIGPIPE does, no traceback on stderr."""
    lines = tmp_path / "many.txt"
    lines.write_text("a fine film\n" * 20_000)  # far more output than a pipe holds
    with subprocess.Popen(
        [sys.executable, "-m", "gru", "predict", "--run", str(run_dir), "--file", str(lines)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    ) as reader:  # fmt: skip
        first = reader.stdout.readline()
        reader.stdout.close()  # what `head -1` does once it has its line
        err = reader.stderr.read().decode()
        assert reader.wait(timeout=300) == 128 + 13, err
    assert first and "Traceback" not in err and "Broken pipe" not in err, err


# --- what is not bad input: one line, no traceback unless asked ---------------------------------

ADDING = ["train", "adding", "--seq-len", "4", "--hidden-size", "3", "--n-train", "64", "--n-test", "16", "--epochs", "1", "--quiet"]  # fmt: skip


def test_an_unexpected_error_is_one_line_saying_it_is_a_bug(capsys, monkeypatch):
    from gru.cli import commands, use

    def broken(args):
        raise AttributeError("'list' object has no attribute 'get'")

    monkeypatch.setitem(commands.COMMANDS, "predict", (use.add_predict, broken))
    monkeypatch.delenv("GRU_DEBUG", raising=False)
    code, out, err = run(capsys, "predict", "--run", "r", "text")
    assert code == 1 and out == ""  # neither 0 nor 2 (bad input)
    assert err.strip() == (
        "gru: error: AttributeError: 'list' object has no attribute 'get'. This is a bug in gru, "
        "not in what you asked: please report it with the command that failed (GRU_DEBUG=1 "
        "shows where it happened)"
    )
    monkeypatch.setenv("GRU_DEBUG", "1")
    code, _, err = run(capsys, "predict", "--run", "r", "text")
    assert code == 1 and err.startswith("Traceback (most recent call last):")
    assert 'raise AttributeError("' in err and err.splitlines()[-1].startswith("gru: error: ")


def test_a_missing_extra_is_bad_input_naming_what_to_install(capsys, monkeypatch):
    # Any command whose feature needs an optional package; gru convert is tested on ONNX itself.
    from gru._extras import require
    from gru.cli import commands, use

    def needs_keras(args):
        require("keras", "keras", "predict: building the Keras model")

    monkeypatch.setitem(commands.COMMANDS, "predict", (use.add_predict, needs_keras))
    monkeypatch.setitem(sys.modules, "keras", None)
    monkeypatch.delenv("GRU_DEBUG", raising=False)
    code, out, err = run(capsys, "predict", "--run", "r", "text")
    assert code == 2 and out == ""  # the user's to fix, not a bug in gru
    assert err == (
        "gru: error: predict: building the Keras model needs the 'keras' extra: pip install "
        "'gru[keras]' (import keras failed: import of keras halted; None in sys.modules)\n"
    )


def test_a_model_too_large_for_memory_is_bad_input_and_writes_nothing(capsys, tmp_path):
    out = tmp_path / "big"
    code, _, err = run(capsys, *ADDING, "--hidden-size", 10_000_000, "--out", out)
    assert code == 2 and "Traceback" not in err
    assert re.fullmatch(r"gru: error: Adder: the model does not fit in memory: building it failed \(an allocation of [\d.]+ PiB\); try a smaller hidden_size \(--hidden-size\)\n", err), err  # fmt: skip
    assert not out.exists()  # refused before the run folder was made


def test_running_out_of_memory_while_training_says_how_much_and_what_to_try(
    capsys, tmp_path, monkeypatch
):
    from gru.tasks import Adder

    def fit(self, **options):
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
            "memory: you tried to allocate 123456789012 bytes. Error code 12 (Cannot allocate "
            "memory)"
        )

    monkeypatch.setattr(Adder, "fit", fit)
    code, _, err = run(capsys, *ADDING, "--out", tmp_path / "run")
    assert code == 2
    assert err == (
        "gru: error: out of memory (an allocation of 115 GiB): the model or the batches are too "
        "large for this machine; try a smaller --hidden-size, --batch-size, --maxlen, --seq-len "
        "or --lookback\n"
    )


@pytest.mark.parametrize("seed", [-1, 2**70])
def test_a_seed_out_of_range_is_named(capsys, seed):
    for argv in (ADDING, ["generate", "--run", "r"], ["compare", "--quick"]):
        with pytest.raises(SystemExit) as exit_info:
            main([*argv, "--seed", str(seed)])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert f"argument --seed: must be an integer from 0 to 2**63 - 1, got {seed}" in err


@pytest.mark.parametrize("value", ["inf", "nan", "0", "-1"])
def test_a_number_that_must_be_positive_and_finite_is_named(capsys, value):
    # --lr inf passed the option's check and was refused later as "TrainConfig: lr ...",
    # without naming --lr; --threshold inf flagged nothing without a word.
    for argv, option in (
        (ADDING, "--lr"),
        (["detect", "--run", "r", "--csv", "c.csv"], "--threshold"),
        (["train", "anomaly"], "--magnitude"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main([*argv, option, value])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert f"argument {option}: must be a finite number > 0, got {float(value)}" in err


def test_an_out_below_a_file_is_named(capsys, tmp_path):
    (tmp_path / "good.csv").write_text("a\n1\n")
    code, _, err = run(capsys, *ADDING, "--out", tmp_path / "good.csv" / "sub")
    assert code == 2
    assert err.strip() == (
        f"gru: error: --out: '{tmp_path / 'good.csv' / 'sub'}' cannot be a run folder: "
        f"'{tmp_path / 'good.csv'}' is a file, not a folder"
    )
    assert (tmp_path / "good.csv").read_text() == "a\n1\n"


def test_resuming_a_finished_run_whose_weights_were_deleted_writes_them_again(capsys, tmp_path):
    from gru.tasks import adding

    out = tmp_path / "run"
    assert run(capsys, *ADDING, "--out", out)[0] == 0
    before = adding.load(out).state_dict()
    (out / "model.safetensors").unlink()
    code, _, err = run(capsys, "train", "adding", "--resume", out, "--quiet")
    assert code == 0 and err == ""
    after = adding.load(out).state_dict()  # it used to say: no model.safetensors, --resume
    assert before.keys() == after.keys()
    for key, value in before.items():
        assert torch.equal(value, after[key]), key


# --- threads and compiling ------------------------------------------------------------------------

COMPUTING = (
    [["train", task] for task in ("adding", "sentiment", "forecast", "textgen", "anomaly")]
    + [[name] for name in ("predict", "evaluate", "forecast", "generate", "detect", "explain")]
    + [["compare"]]
)


@pytest.mark.parametrize("argv", COMPUTING, ids=" ".join)
def test_every_command_that_computes_takes_threads(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    assert "--threads N" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--threads", "0"])
    assert exit_info.value.code == 2
    assert "--threads: must be a positive integer, got 0" in capsys.readouterr().err


def test_threads_reach_torch_and_the_engine_and_are_restored(capsys, tmp_path, monkeypatch):
    from gru.kernels import recurrence, tiles
    from gru.ops import aside

    seen = []
    shard_count, tile_shards = recurrence.shard_count, tiles.shards

    def spy(B, T, H, threads):  # the row kernels' shards
        seen.append((threads, torch.get_num_threads()))
        return shard_count(B, T, H, threads)

    def tiles_spy(B, H, threads):  # the tiles' (small float32 layers)
        seen.append((threads, torch.get_num_threads()))
        return tile_shards(B, H, threads)

    monkeypatch.setattr(recurrence, "shard_count", spy)
    monkeypatch.setattr(tiles, "shards", tiles_spy)
    # the kernels load on their first calls, not through `gru compile`'s targets (which run
    # layers of their own, on two threads, to reach each kernel)
    kinds = {(target, "float32") for target in ("inference", "training", *aside.BACKWARDS)}
    monkeypatch.setattr(aside, "_ready", kinds)
    before = torch.get_num_threads()
    wanted = 1 if before > 1 else 2
    code, _, err = run(capsys, *ADDING, "--threads", wanted, "--out", tmp_path / "run")
    assert code == 0, err
    assert seen and set(seen) == {(wanted, wanted)}  # the engine was handed torch's count
    assert torch.get_num_threads() == before


def test_threads_cap_numpys_blas_too_and_restore_it():
    import threadpoolctl

    from gru.ops.threads import threads

    def blas():
        info = threadpoolctl.threadpool_info()
        return {pool["num_threads"] for pool in info if pool["user_api"] == "blas"}

    before = blas()
    assert before, "NumPy's BLAS was not found"
    wanted = 1 if before != {1} else 2
    with threads(wanted):
        assert blas() == {wanted} and torch.get_num_threads() == wanted
    assert blas() == before


def test_without_threads_a_command_leaves_the_cores_other_programs_keep_busy(
    capsys, tmp_path, monkeypatch
):
    from gru.ops import threads as threads_module

    monkeypatch.delenv("GRU_THREADS")  # the suite's "all" (conftest.py)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)  # one per core of an 8-core machine
    monkeypatch.setattr(threads_module, "_cpus", lambda: 8)
    chosen = []
    monkeypatch.setattr(threads_module, "threads", lambda n: chosen.append(n) or nullcontext())
    for busy, expected in ((0, 8), (3, 5), (7, 1), (12, 1)):
        monkeypatch.setattr(threads_module, "busy_cpus", lambda busy=busy: busy)
        assert run(capsys, "predict", "--run", tmp_path / "none")[0] == 2
        assert chosen.pop() == expected, busy
    monkeypatch.setenv("GRU_THREADS", "3")
    run(capsys, "predict", "--run", tmp_path / "none")
    assert chosen.pop() == 3
    monkeypatch.setenv("GRU_THREADS", "all")
    run(capsys, "predict", "--run", tmp_path / "none")
    assert chosen.pop() == 8
    monkeypatch.setenv("GRU_THREADS", "many")
    code, _, err = run(capsys, "predict", "--run", tmp_path / "none")
    assert code == 2 and "GRU_THREADS must be a positive int or \"all\", got 'many'" in err


def test_busy_cpus_counts_the_runnable_tasks_of_other_programs(tmp_path):
    from gru.ops.threads import busy_cpus

    idle = busy_cpus()
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        # The spinning process is runnable at every look (other programs may add to it).
        assert busy_cpus() >= 1
    finally:
        spinner.kill()
        spinner.wait()
    assert idle >= 0


def test_compile_refuses_an_unknown_target(capsys):
    code, _, err = run(capsys, "compile", "--only", "inference-float16")
    assert code == 2
    assert "compile: unknown target 'inference-float16'; valid: inference-float32," in err


def test_an_adding_run_no_better_than_the_mean_says_so(capsys, tmp_path):
    code, out, _ = run(capsys, *ADDING, "--out", tmp_path / "run")
    assert code == 0
    assert "predicting the mean (no better than the mean: the model has not learned to add the marked values)" in out  # fmt: skip


def test_a_run_of_any_task_is_named_with_its_article():
    from gru.tasks.runs import a_run

    assert (
        a_run("anomaly") == "an 'anomaly' run" and a_run("adding", quoted=False) == "an adding run"
    )
    assert a_run("sentiment") == "a 'sentiment' run" and a_run("textgen", False) == "a textgen run"
    assert a_run(None) == "a None run"  # a config.json without a task still reads as a sentence
