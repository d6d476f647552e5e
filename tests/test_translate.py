"""gru.data.translation, gru.seq2seq and gru.tasks.translate: the readers' errors by their
messages, subwords that round-trip, toy copy and reversal tasks the model must learn, beam
search against brute force on a toy vocabulary, BLEU and chrF against sacreBLEU's own
published values, and a tiny run through the CLI that writes a run folder, resumes and
translates (on real Multi30k pairs: a missing ../shared/data fails, not skips)."""

import gzip
import itertools
import json
import math
from pathlib import Path

import pytest
import torch
from torch.nn.utils.rnn import pad_sequence

from checks import run_cli as run
from gru.data import translation
from gru.seq2seq import (
    BOS,
    EOS,
    PAD,
    Seq2Seq,
    beam_search,
    beam_search_batch,
    greedy,
    normalized,
    sequence_loss,
)
from gru.tasks.translate import Translator, scores

pytest.importorskip("sentencepiece")  # the dev extra installs it

MULTI30K = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "translation"
MULTI30K = MULTI30K / "multi30k"


def write(path: Path, lines: list[str], zipped: bool = False) -> Path:
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    path.write_bytes(gzip.compress(data) if zipped else data)
    return path


# --- readers -------------------------------------------------------------------------------------


def test_folder_reads_plain_and_gzipped_files(tmp_path):
    write(tmp_path / "train.de.gz", ["Ein Hund.", "Zwei Katzen."], zipped=True)
    write(tmp_path / "train.en", ["A dog.", "Two cats."])
    pairs = translation.read_folder(tmp_path, "train", "de", "en")
    assert pairs == [("Ein Hund.", "A dog."), ("Zwei Katzen.", "Two cats.")]


def test_reader_errors_name_the_file_and_line(tmp_path):
    de = write(tmp_path / "train.de", ["Ein Hund.", "Zwei Katzen.", "Drei."])
    en = write(tmp_path / "train.en", ["A dog.", "Two cats."])
    with pytest.raises(ValueError, match=r"train.de' has 3 lines but .*train.en' has 2"):
        translation.read_parallel(de, en)
    write(tmp_path / "train.en", ["A dog.", "", "Three."])
    with pytest.raises(ValueError, match=r"train.en' line 2 is empty"):
        translation.read_parallel(de, tmp_path / "train.en")
    with pytest.raises(
        ValueError, match=r"no train.fr\(.gz\) for --target fr; its languages are de, en"
    ):
        translation.read_folder(tmp_path, "train", "de", "fr")
    with pytest.raises(ValueError, match="--source must be a language code"):
        translation.read_folder(tmp_path, "train", "../de", "en")
    tsv = write(tmp_path / "pairs.tsv", ["Ein Hund.\tA dog.", "Zwei Katzen."])
    with pytest.raises(ValueError, match=r"pairs.tsv' line 2 must be source<TAB>target"):
        translation.read_tsv(tsv)
    (tmp_path / "bad.de").write_bytes(b"gut\n\xff\n")
    with pytest.raises(ValueError, match=r"bad.de' line 2 is not UTF-8"):
        translation.read_lines(tmp_path / "bad.de")


def test_subwords_round_trip():
    sentences = ["Ein Mann fährt Fahrrad.", "A man rides a bike.", "Zwei Hunde spielen."] * 20
    subwords = translation.Subwords(translation.train_subwords(sentences, 60))
    ids = subwords.encode(["Ein Mann fährt Fahrrad.", "Zwei Hunde."])
    assert subwords.decode(ids) == ["Ein Mann fährt Fahrrad.", "Zwei Hunde."]
    assert all(i not in (PAD, BOS, EOS) for row in ids for i in row)
    again = translation.Subwords(subwords.bytes)  # as a run folder loads it
    assert again.encode(["Zwei Hunde."]) == [ids[1]]


# --- the model learns toy tasks ------------------------------------------------------------------


def _toy(task: str, seed: int = 0, steps: int = 250) -> float:
    """The share of 100 new sources whose greedy translation is exact after ``steps`` steps
    of a small model on ``task`` (copy or reverse random strings of ids 4–11)."""
    torch.manual_seed(seed)
    model = Seq2Seq(12, 24, 32, 1, 48, 24, dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), 5e-3)

    def batch(n):
        lengths = torch.randint(2, 7, (n,))
        src = [torch.randint(4, 12, (int(k),)) for k in lengths]
        tgt = [s.flip(0) if task == "reverse" else s for s in src]
        tgt_in = [torch.cat([torch.tensor([BOS]), t]) for t in tgt]
        tgt_out = [torch.cat([t, torch.tensor([EOS])]) for t in tgt]
        pad = lambda rows: pad_sequence(rows, batch_first=True)
        return pad(src), lengths, pad(tgt_in), pad(tgt_out), tgt

    for _ in range(steps):
        src, lengths, tgt_in, tgt_out, _ = batch(64)
        loss = sequence_loss(model(src, lengths, tgt_in), tgt_out)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    src, lengths, _, _, tgt = batch(100)
    found, attention = greedy(model, src, lengths, 12)
    assert attention.shape[0] == 100 and torch.allclose(attention.sum(-1), torch.ones(()))
    return sum(f == t.tolist() for f, t in zip(found, tgt, strict=True)) / 100


@pytest.mark.parametrize("task", ["copy", "reverse"])
def test_toy_tasks_are_learned(task):
    torch.set_num_threads(1)
    assert _toy(task) >= 0.95


# --- beam search -------------------------------------------------------------------------------


def _brute_force(model, src, max_len, penalty):
    """The best of every output (ids 1, 4, 5 then the end, or max_len ids without it) by
    its normalized score, each scored step by step with the model."""
    enc, states0 = model.encode(src[None], torch.tensor([len(src)]))
    best = (None, -math.inf)
    for length in range(0, max_len + 1):
        for ids in itertools.product((1, 4, 5), repeat=length):
            ended = length < max_len
            sequence = [*ids, EOS] if ended else list(ids)
            states, previous, total = states0, BOS, 0.0
            for token in sequence:
                log_probs, states, _ = model.step(torch.tensor([previous]), enc, states)
                total += float(log_probs[0, token])
                previous = token
            score = normalized(total, len(sequence), penalty)
            if score > best[1]:
                best = (list(ids), score)
    return best


@pytest.mark.parametrize("penalty", [0.0, 1.0])
def test_beam_search_finds_what_brute_force_finds(penalty):
    torch.manual_seed(3)
    model = Seq2Seq(6, 8, 8, 1, 8, 8, dropout=0.0).eval()  # ids 0 pad, 1 unk, 2 start, 3 end
    with torch.no_grad():
        model.out_bias[EOS] -= 1.0  # outputs of several lengths compete
        src = torch.tensor([4, 5, 4])
        ids, score, _ = beam_search(model, src, 4, width=200, penalty=penalty)
        expected, expected_score = _brute_force(model, src, 4, penalty)
        assert ids == expected
        assert score == pytest.approx(expected_score, abs=1e-4)
        one, _, _ = beam_search(model, src, 4, width=1, penalty=penalty)
        assert [one] == greedy(model, src[None], torch.tensor([3]), 4)[0]


def test_beam_search_of_a_batch_is_each_source_alone():
    torch.manual_seed(4)
    model = Seq2Seq(9, 8, 8, 1, 12, 8, dropout=0.0).eval()
    with torch.no_grad():
        model.out_bias[EOS] -= 1.5
    sources = [torch.randint(4, 9, (n,)) for n in (5, 2, 7, 3)]
    lengths = torch.tensor([len(s) for s in sources])
    together = beam_search_batch(
        model, pad_sequence(sources, batch_first=True), lengths, [6, 3, 8, 5], width=3
    )
    for src, max_len, (ids, score, attention) in zip(sources, [6, 3, 8, 5], together, strict=True):
        alone = beam_search(model, src, max_len, width=3)
        assert ids == alone[0] and score == pytest.approx(alone[1], abs=1e-5)
        assert attention.shape == (len(ids) + 1 if len(ids) < max_len else len(ids), len(src))
        assert torch.allclose(attention, alone[2], atol=1e-5)


# --- scores --------------------------------------------------------------------------------------


def test_scores_match_sacrebleu_published_values():
    # sacreBLEU's README: BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943), chrF2 = 59.73.
    refs = [
        ["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
        ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."],
    ]
    hypotheses = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
    result = scores(hypotheses, refs)
    assert result["bleu"] == pytest.approx(48.53, abs=0.005)
    assert result["chrf"] == pytest.approx(59.73, abs=0.005)
    assert scores(["the dog bit the man."], ["The dog bit the man."])[
        "bleu_lowercase"
    ] == pytest.approx(100)


# --- a tiny run through the command line ---------------------------------------------------------

TINY = [
    "--limit", 48, "--epochs", 1, "--batch-size", 16, "--vocab-size", 200,
    "--embedding-dim", 16, "--encoder-size", 16, "--encoder-layers", 1,
    "--decoder-size", 16, "--attention-size", 16, "--beam", 2, "--threads", 1,
]  # fmt: skip


def test_cli_trains_resumes_and_translates(tmp_path, capsys):
    if not MULTI30K.is_dir():
        pytest.fail(f"the shared data {MULTI30K} is missing (../shared/data beside the clone)")
    out = tmp_path / "run"
    code, stdout, err = run(capsys, "train", "translate", "--data", MULTI30K, "--out", out, *TINY)
    assert code == 0, err
    assert "beam 2: BLEU" in stdout and "greedy: BLEU" in stdout
    stored = json.loads((out / "config.json").read_text())
    assert stored["data"]["pairs"] == {"train": 48, "val": 48, "test": 48}
    assert (out / "subwords.model").is_file() and (out / "report.html").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["decoding"]) == {"greedy", "beam 2"}
    assert len(metrics["examples"]["rows"]) == 12 and "attention_1.png" in metrics["figures"]

    code, stdout, err = run(capsys, "train", "translate", "--resume", out, "--threads", 1)
    assert code == 0, err

    code, stdout, err = run(capsys, "translate", "--run", out, "Ein Hund.", "Zwei Katzen.")
    assert code == 0, err
    assert len(stdout.splitlines()) == 2
    sentences = write(tmp_path / "s.de", ["Ein Hund.", "Ein Mann.", "Zwei Katzen."])
    code, stdout, err = run(capsys, "translate", "--run", out, "--file", sentences, "--beam", 1)
    assert code == 0 and len(stdout.splitlines()) == 3
    translator = Translator.load(out)
    assert stdout.splitlines() == translator.translate(
        ["Ein Hund.", "Ein Mann.", "Zwei Katzen."], beam=1
    )

    code, stdout, err = run(
        capsys, "explain", "--run", out, "Ein Hund.", "--out", tmp_path / "e.html"
    )
    assert code == 0, err
    assert stdout.startswith("translation: ")
    assert (tmp_path / "e_attention.png").is_file() and (tmp_path / "e_gates.png").is_file()
    assert "update gate" in (tmp_path / "e.html").read_text()

    (out / "subwords.model").write_bytes(b"changed")
    code, _, err = run(capsys, "translate", "--run", out, "Ein Hund.")
    assert code == 2 and "subwords.model' was altered" in err


def test_cli_refuses_bad_input(tmp_path, capsys):
    write(tmp_path / "train.de", ["Ein Hund."])
    write(tmp_path / "train.en", ["A dog."])
    code, _, err = run(capsys, "train", "translate", "--data", tmp_path, "--source", "de",
                       "--target", "fr", "--out", tmp_path / "run")  # fmt: skip
    assert code == 2 and "no train.fr(.gz) for --target fr" in err
    assert not (tmp_path / "run").exists()
    empty = write(tmp_path / "empty.de", ["Ein Hund.", "  "])
    code, _, err = run(capsys, "translate", "--run", tmp_path, "--file", empty)
    assert code == 2 and "line 2 is empty" in err
