"""gru.tasks.textgen: truncated BPTT with the state carried across batches, streaming
generation equal to reading the whole prefix, sampling rules, tiny runs through Python and the
CLI (the n-gram baselines beside the loss), resume mid-epoch, and bad input by its message."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from checks import assert_close
from checks import run_cli as run
from gru import training
from gru.cli import main
from gru.tasks import TextGenerator
from gru.tasks import textgen as textgen_module
from gru.tasks.textgen import _chunks, read_text
from gru.training import TrainConfig

SHAKESPEARE = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "text" / "tinyshakespeare.txt"
)
TINY = {"embedding_dim": 8, "hidden_size": 16, "num_layers": 1, "seq_len": 16, "batch_size": 8, "epochs": 1, "lr": 1e-2}  # fmt: skip


# --- truncated back-propagation through time ---------------------------------------------------


def test_chunks_continue_their_stream_from_one_batch_to_the_next():
    ids = torch.arange(103)
    x, y = _chunks(ids, streams=4, seq_len=5)  # 25 characters per stream: 5 chunks of 5
    assert x.shape == y.shape == (20, 5)
    for s in range(5):
        for k in range(4):
            row = s * 4 + k  # chunk s of stream k
            assert x[row].tolist() == list(range(k * 25 + s * 5, k * 25 + s * 5 + 5))
            assert torch.equal(y[row], x[row] + 1)  # the next character of each
    assert torch.equal(x[4:, 0], y[:-4, -1])  # batch s + 1 starts where batch s ended
    with pytest.raises(
        ValueError,
        match=r"text: 10 training characters are too few for 4 streams of seq_len=5; it needs at least 21",
    ):
        _chunks(torch.arange(10), 4, 5)


class Recorder(nn.Module):
    """A CharLM-shaped model that records the state it is given and the one it returns."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = textgen_module.CharLM(10, 3, 4, 1)
        self.given, self.returned = [], []

    def forward(self, x, h0=None):
        self.given.append(None if h0 is None else h0.clone())
        logits, h_n = self.inner(x, h0)
        self.returned.append(h_n.detach().clone())
        return logits, h_n


def test_the_hidden_state_is_carried_across_batches_and_reset_each_epoch():
    torch.manual_seed(0)
    x, y = _chunks(torch.randint(0, 10, (161,)), streams=4, seq_len=10)  # 4 batches of 4 streams
    model = Recorder()
    config = TrainConfig(epochs=2, batch_size=4, lr=1e-2)
    loss = lambda logits, target: F.cross_entropy(logits.transpose(1, 2), target)
    training.fit(model, loss, (x, y), config, carry=True, quiet=True)
    assert len(model.given) == 8
    for epoch in range(2):
        assert model.given[4 * epoch] is None  # each epoch starts from zeros
        for step in range(4 * epoch + 1, 4 * epoch + 4):
            assert torch.equal(model.given[step], model.returned[step - 1]), step


def test_the_validation_loss_reads_chunks_as_one_long_stream(textgen_trained):
    generator, _, _ = textgen_trained
    ids = generator.encode("ROMEO: the rose by any other name\nJULIET: would smell as sweet")
    # Chunks of 5 with the state carried equal the whole streams read at once.
    assert_close(np.float32(generator.loss(ids, streams=2, chunk=5)), np.float32(generator.loss(ids, streams=2, chunk=10_000)), what="loss")  # fmt: skip


# --- generation --------------------------------------------------------------------------------


def test_streaming_gives_the_logits_of_reading_the_whole_prefix(textgen_trained):
    generator, _, _ = textgen_trained
    prompt = "JULIET: would smell"
    with torch.no_grad():
        logits, _ = generator.model(generator.encode(prompt).unsqueeze(0))  # (1, T, V)
    streamed = generator.next_logits(prompt)
    assert_close(streamed.astype(np.float32), logits[0, -1], torch.float32, what="next logits")  # fmt: skip
    # Temperature 0 writes the most likely character each time: the argmax of the whole model
    # run over the prompt and everything written so far.
    text = generator.generate(prompt, length=12, temperature=0)
    for k in range(12):
        with torch.no_grad():
            logits, _ = generator.model(generator.encode(prompt + text[:k]).unsqueeze(0))
        assert generator.vocabulary[int(logits[0, -1].argmax())] == text[k], k


def test_predict_is_the_next_characters_distribution_and_evaluate_the_loss(textgen_trained):
    generator, _, text = textgen_trained
    p = generator.predict("JULIET: would smell")
    assert list(p) == sorted(p, key=p.get, reverse=True) and set(p) == set(generator.vocabulary)
    assert sum(p.values()) == pytest.approx(1.0) and next(iter(p)) == generator.generate(
        "JULIET: would smell", 1, temperature=0
    )
    scores = generator.evaluate(text)
    ids = generator.encode(text.read_text(encoding="utf-8"))
    assert scores["loss"] == pytest.approx(generator.loss(ids)) and scores["characters"] == len(ids)
    assert scores["bits_per_char"] == pytest.approx(scores["loss"] / np.log(2))


def test_the_same_seed_writes_the_same_text_and_top_1_is_greedy(textgen_trained):
    generator, _, _ = textgen_trained
    first = generator.generate("RO", length=60, temperature=1.0, seed=3)
    assert generator.generate("RO", length=60, temperature=1.0, seed=3) == first
    assert generator.generate("RO", length=60, temperature=1.0, seed=4) != first
    assert len(first) == 60 and set(first) <= set(generator.vocabulary)
    greedy = generator.generate("RO", length=30, temperature=0)
    assert generator.generate("RO", length=30, temperature=1.5, top_k=1, seed=9) == greedy
    assert generator.generate("RO", length=0) == ""
    # include_prompt: the prompt and then the same continuation (what `gru generate` prints).
    assert (
        generator.generate("RO", 60, temperature=1.0, seed=3, include_prompt=True) == "RO" + first
    )
    assert generator.generate("RO", length=0, include_prompt=True) == "RO"


def test_bad_generation_arguments_are_named(textgen_trained):
    generator, _, _ = textgen_trained
    with pytest.raises(
        ValueError, match=r"prompt: the text has 2 characters the model has never seen: 'Q', 'z'"
    ):
        generator.generate("zQ", 5)
    with pytest.raises(
        ValueError, match=r"TextGenerator.generate: prompt must be a non-empty string"
    ):
        generator.generate("", 5)
    # inf was taken: every character drawn alike, a text of noise from any model.
    for temperature in (math.inf, math.nan, -1):
        with pytest.raises(
            ValueError, match=rf"temperature must be a finite number ≥ 0, got {temperature}"
        ):
            generator.generate("R", 5, temperature=temperature)
    with pytest.raises(ValueError, match=r"top_k must be a positive int, got 0"):
        generator.generate("R", 5, top_k=0)
    with pytest.raises(ValueError, match=r"length must be an int in \[0, 1,000,000\], got -2"):
        generator.generate("R", -2)


# --- fitting -----------------------------------------------------------------------------------


def test_a_tiny_run_reports_its_loss_beside_the_ngram_baselines(textgen_trained):
    generator, run_dir, _ = textgen_trained
    assert {"config.json", "model.safetensors", "metrics.json", "report.html"} <= {
        p.name for p in run_dir.iterdir()
    }
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test"] is None
    assert metrics["validation"]["loss"] == generator.report.val_loss
    baselines = metrics["baselines"]
    V = len(generator.vocabulary)
    assert baselines["uniform"]["loss"] == pytest.approx(np.log(V))
    assert baselines["bigram"]["loss"] < baselines["unigram"]["loss"] < baselines["uniform"]["loss"]
    assert metrics["validation"]["loss"] < baselines["uniform"]["loss"]  # it learned something
    sample = metrics["samples"][0]
    assert sample["prompt"] == "ROMEO:" and len(sample["text"]) == 500
    # The same sample from the loaded run.
    loaded = TextGenerator.load(run_dir)
    assert loaded.generate("ROMEO:", 500, temperature=0.8, seed=0) == sample["text"]


def test_train_resume_and_generate_from_the_command_line(
    capsys, tmp_path, textgen_trained, monkeypatch
):
    _, _, text = textgen_trained
    options = ["--text", text, "--hidden-size", 12, "--layers", 1, "--embedding-dim", 6, "--seq-len", 8, "--batch-size", 8, "--epochs", 1, "--quiet"]  # fmt: skip
    code, stdout, _ = run(capsys, "train", "textgen", *options, "--out", tmp_path / "whole")
    assert code == 0 and "validation loss:" in stdout and "nats per character" in stdout
    # A crash mid-epoch, after the checkpoint of step 20; the resumed run carries the state
    # of every stream from there and ends with the weights of the uninterrupted run.
    calls = []
    real = textgen_module._cross_entropy

    def crash_at_step_23(logits, target):
        calls.append(1)
        if len(calls) == 23:
            raise KeyboardInterrupt
        return real(logits, target)

    monkeypatch.setattr(textgen_module, "_cross_entropy", crash_at_step_23)
    with pytest.raises(KeyboardInterrupt):
        main(
            [
                str(a)
                for a in [
                    "train",
                    "textgen",
                    *options,
                    "--out",
                    tmp_path / "crashed",
                    "--checkpoint-every",
                    10,
                ]
            ]
        )
    monkeypatch.setattr(textgen_module, "_cross_entropy", real)
    code, stdout, _ = run(capsys, "train", "textgen", "--resume", tmp_path / "crashed", "--quiet")
    assert code == 0
    whole = TextGenerator.load(tmp_path / "whole").model.state_dict()
    resumed = TextGenerator.load(tmp_path / "crashed").model.state_dict()
    for name, value in whole.items():
        assert torch.equal(resumed[name], value), name
    # gru generate: the same seed the same text; an unknown character in the prompt is named.
    argv = [
        "generate",
        "--run",
        tmp_path / "whole",
        "--prompt",
        "JULIET",
        "--length",
        40,
        "--seed",
        7,
    ]
    code, first, _ = run(capsys, *argv)
    assert code == 0 and first.startswith("JULIET") and len(first) == len("JULIET") + 40 + 1
    assert run(capsys, *argv)[1] == first
    code, continuation, _ = run(capsys, *argv, "--continuation-only")
    assert code == 0 and continuation == first[len("JULIET") :]  # the same text, no prompt
    generator = TextGenerator.load(tmp_path / "whole")
    same = generator.generate("JULIET", 40, seed=7, include_prompt=True)
    assert first == same + "\n"  # the CLI prints what the Python API returns
    code, _, err = run(capsys, "generate", "--run", tmp_path / "whole", "--prompt", "Xavier")
    assert code == 2 and "the model has never seen: 'X', 'i'" in err
    code, _, err = run(
        capsys, "generate", "--run", tmp_path / "whole", "--prompt", "R", "--length", -1
    )
    assert code == 2 and "length must be an int in [0, 1,000,000], got -1" in err
    code, _, err = run(  # it was accepted, and would have run for days
        capsys, "generate", "--run", tmp_path / "whole", "--prompt", "R", "--length", 10**12
    )
    assert code == 2 and "got 1000000000000" in err


def test_tiny_shakespeare_with_a_limit(tmp_path):
    if not SHAKESPEARE.is_file():  # a failure, not a skip: CI has ../shared beside the clone
        pytest.fail(f"the shared data {SHAKESPEARE} is missing (../shared/data beside the clone)")
    generator = TextGenerator(**{**TINY, "limit": 6000})
    report = generator.fit(SHAKESPEARE, quiet=True)
    assert report.characters == {"train": 5400, "validation": 600}
    assert report.sample.startswith("ROMEO:") and np.isfinite(report.val_loss)


# --- bad input ---------------------------------------------------------------------------------


def test_bad_text_files_are_named(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"text: '.*empty.txt' is empty"):
        read_text(empty)
    blank = tmp_path / "blank.txt"
    blank.write_text(" \n\t\n")
    with pytest.raises(ValueError, match=r"holds only white space"):
        read_text(blank)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9 au lait".encode("latin-1"))
    with pytest.raises(ValueError, match=r"is not UTF-8 \(byte 3 is 0xe9\); convert it"):
        read_text(latin)
    with pytest.raises(FileNotFoundError, match=r"text: '.*nowhere.txt' does not exist"):
        read_text(tmp_path / "nowhere.txt")
    short = tmp_path / "short.txt"
    short.write_text("to be or not to be")
    with pytest.raises(
        ValueError, match=r"too few to keep 10% for validation; it needs at least 90"
    ):
        TextGenerator(**TINY).fit(short)
    with pytest.raises(
        ValueError, match=r"TextGenConfig: validation_split must be a fraction in \(0, 1\), got 1.5"
    ):
        TextGenerator(validation_split=1.5)
    with pytest.raises(ValueError, match=r"TextGenConfig: dropout must be in \[0, 1\), got -0.1"):
        TextGenerator(dropout=-0.1)
    code, _, err = run(
        capsys, "train", "textgen", "--text", empty, "--out", tmp_path / "run", "--quiet"
    )
    assert code == 2 and "is empty" in err and not (tmp_path / "run").exists()
    with pytest.raises(SystemExit) as exit_info:  # argparse's usage error: --text is required
        run(capsys, "train", "textgen", "--out", tmp_path / "run", "--quiet")
    assert exit_info.value.code == 2
    assert "the following arguments are required: --text" in capsys.readouterr().err


def test_a_folder_given_as_the_text_is_named_as_a_folder(tmp_path, capsys):
    (tmp_path / "somedir").mkdir()
    with pytest.raises(IsADirectoryError, match=r"text: '.*somedir' is a folder; give the text file"):  # fmt: skip
        read_text(tmp_path / "somedir")
    code, _, err = run(capsys, "train", "textgen", "--text", tmp_path / "somedir", "--out", tmp_path / "run", "--quiet")  # fmt: skip
    assert code == 2 and "is a folder; give the text file" in err and "does not exist" not in err
    assert not (tmp_path / "run").exists()


def test_settings_of_the_wrong_type_are_named():
    for name in ("dropout", "validation_split"):
        with pytest.raises(TypeError, match=rf"^TextGenConfig: {name} must be a number, got 'a'$"):
            TextGenerator(**{name: "a"})


def test_generation_arguments_of_the_wrong_type_are_named(textgen_trained):
    generator, _, _ = textgen_trained
    with pytest.raises(ValueError, match=r"TextGenerator.generate: temperature must be a finite number ≥ 0, got 'a'"):  # fmt: skip
        generator.generate("R", 5, temperature="a")  # it was a TypeError from a comparison
    with pytest.raises(ValueError, match=r"TextGenerator.generate: seed must be an int ≥ 0, got -1"):  # fmt: skip
        generator.generate("R", 5, seed=-1)  # NumPy's "expected non-negative integer"
