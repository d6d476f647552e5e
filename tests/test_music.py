"""gru.data.music, gru.tasks.music and gru compose: the NLL on a hand-computed case, the .mat
reader's errors by message, MIDI written and read back by mido, tiny runs on a few real JSB
chorales through the CLI (killed and resumed to the weights of an unbroken run), composing,
and bad input by its exit code and message."""

import json
import math
import sys

import numpy as np
import pytest
import scipy.io
import torch
import torch.nn.functional as F

from checks import run_cli as run
from checks import shared_data, torchrun_train
from gru._extras import MissingExtra
from gru.cli import main
from gru.data import music
from gru.nade import NADE
from gru.tasks import music as music_module
from gru.tasks.music import MusicModel, MusicNet, describe

mido = pytest.importorskip("mido")  # the dev extra installs it

TINY = ["--limit", 6, "--epochs", 2, "--batch-size", 2, "--threads", 1, "--quiet"]


@pytest.fixture(scope="module")
def jsb():
    """The real JSB Chorales file (a missing ../shared/data fails, not skips)."""
    return shared_data("music", "JSB_Chorales.mat")


def write_mat(path, **splits):
    """A .mat file of cell arrays, each split a list of arrays."""
    cells = {}
    for name, pieces in splits.items():
        cell = np.empty((1, len(pieces)), dtype=object)
        for i, piece in enumerate(pieces):
            cell[0, i] = piece
        cells[name] = cell
    scipy.io.savemat(path, cells)
    return path


# --- the metric ----------------------------------------------------------------------------------


def test_nll_is_the_mean_over_steps_of_the_keys_summed_cross_entropy_by_hand():
    # Piece A (2 steps): step 1 has key 0 at p = 0.75 and sounding, every other key at
    # p = 0.5 silent; step 2 every key at p = 0.5, all silent. Piece B (1 step): key 5 at
    # p = 0.2, sounding; the others p = 0.5, silent. Steps weigh the same: 3 steps.
    logits = torch.zeros(2, 2, 88, dtype=torch.float64)
    logits[0, 0, 0] = math.log(3)  # sigmoid = 0.75
    logits[1, 0, 5] = math.log(0.25)  # sigmoid = 0.2
    a = np.zeros((2, 88), np.uint8)
    a[0, 0] = 1
    b = np.zeros((1, 88), np.uint8)
    b[0, 5] = 1
    _, targets, _ = music.padded([a, b])
    step1 = -math.log(0.75) + 87 * math.log(2)
    step2 = 88 * math.log(2)
    step_b = -math.log(0.2) + 87 * math.log(2)
    assert music.nll(logits, targets) == pytest.approx((step1 + step2 + step_b) / 3, rel=1e-12)
    assert music.nll(logits, targets, first=False) == pytest.approx(step2, rel=1e-12)


def test_padded_inputs_are_the_previous_step_with_silence_first():
    a = np.eye(88, dtype=np.uint8)[:3]  # keys 0, 1, 2 at steps 1, 2, 3
    x, y, lengths = music.padded([a, a[:1]])
    assert lengths.tolist() == [3, 1]
    assert x[0, 0].sum() == 0 and x[0, 1, 0] == 1 and x[0, 2, 1] == 1
    assert x.dtype == torch.uint8 and torch.equal(y[0], torch.from_numpy(a).to(torch.int8))
    assert (y[1, 1:] == -1).all() and (x[1] == 0).all()


def test_the_marginal_baseline_by_hand():
    train = [np.zeros((4, 88), np.uint8)]
    train[0][:2, 0] = 1  # key 0 sounds in half the training steps, the others never
    test = [np.zeros((1, 88), np.uint8)]
    expected = math.log(2) + 87 * -math.log(1 - 1e-6)
    assert music.marginal_nll(train, test) == pytest.approx(expected, rel=1e-9)


# --- the reader ----------------------------------------------------------------------------------


def test_the_reader_refuses_a_file_without_the_three_splits(tmp_path):
    roll = np.zeros((3, 88), np.uint8)
    path = write_mat(tmp_path / "two.mat", traindata=[roll], testdata=[roll])
    with pytest.raises(ValueError, match=r"two.mat' has no 'validdata'.*found \['testdata'"):
        music.read_mat(path)


def test_the_reader_refuses_rolls_not_0_1_or_not_88_wide(tmp_path):
    good, wide, loud = np.zeros((3, 88)), np.zeros((3, 89)), np.zeros((3, 88))
    loud[1, 2] = 0.5
    splits = {"traindata": [good], "validdata": [good]}
    path = write_mat(tmp_path / "wide.mat", **splits, testdata=[good, wide])
    with pytest.raises(ValueError, match=r"wide.mat: testdata, piece 2: .*\(T, 88\).*\(3, 89\)"):
        music.read_mat(path)
    path = write_mat(tmp_path / "loud.mat", **splits, testdata=[loud])
    with pytest.raises(ValueError, match=r"loud.mat: testdata, piece 1: expected 0/1.*0.5"):
        music.read_mat(path)


def test_the_real_files_hold_the_published_split(jsb):
    data = music.read_mat(jsb)
    assert [len(data.split(s)) for s in ("train", "valid", "test")] == [229, 76, 77]


# --- MIDI ----------------------------------------------------------------------------------------


def test_midi_read_back_by_mido_has_the_rolls_notes_and_timing(tmp_path):
    roll = np.zeros((4, 88), np.uint8)
    roll[0:2, 39] = 1  # middle C (60) held for steps 1-2
    roll[1, 43] = 1  # E (64) on step 2
    roll[3, 39] = 1  # C again on step 4
    path = music.write_midi(roll, tmp_path / "x.mid", step_seconds=0.25)
    notes, now, starts = [], 0.0, {}
    for message in mido.MidiFile(path):  # times in seconds, from the tempo
        now += message.time
        if message.type == "note_on" and message.velocity > 0:
            starts[message.note] = now
        elif message.type in ("note_on", "note_off"):
            notes.append((message.note, starts.pop(message.note), now))
    expected = [(60, 0.0, 0.5), (64, 0.25, 0.5), (60, 0.75, 1.0)]
    found = sorted((note, round(start, 9), round(end, 9)) for note, start, end in notes)
    assert found == sorted(expected)


def test_midi_files_read_back_as_the_rolls_they_were_written_from(tmp_path):
    generator = np.random.default_rng(0)
    rolls = [(generator.random((n, 88)) < 0.05).astype(np.uint8) for n in (6, 9, 7, 5)]
    for roll in rolls:
        roll[0, 40] = roll[-1, 50] = 1  # the first and last steps sound
    for i, roll in enumerate(rolls):
        music.write_midi(roll, tmp_path / f"{i}.mid")
    data = music.read_midi_folder(tmp_path, steps_per_beat=1)  # midi_bytes: a step a beat
    assert [len(data.train), len(data.valid), len(data.test)] == [2, 1, 1]
    for read, roll in zip(data.train + data.valid + data.test, rolls, strict=True):
        assert np.array_equal(read, roll)
    twice = music.read_midi(tmp_path / "0.mid", steps_per_beat=2)
    assert np.array_equal(twice[::2], rolls[0]) and np.array_equal(twice[1::2], rolls[0])


def test_a_drum_only_or_empty_midi_is_refused_by_name(tmp_path):
    drums = mido.MidiFile()
    track = mido.MidiTrack()
    drums.tracks.append(track)
    track.append(mido.Message("note_on", channel=9, note=38, velocity=90, time=0))
    track.append(mido.Message("note_off", channel=9, note=38, velocity=0, time=480))
    drums.save(tmp_path / "drums.mid")
    with pytest.raises(ValueError, match=r"drums.mid' has no notes to read.*drum channel"):
        music.read_midi(tmp_path / "drums.mid")
    (tmp_path / "empty.mid").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty.mid' is not a MIDI file"):
        music.read_midi(tmp_path / "empty.mid")


def test_midi_without_mido_names_the_music_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mido", None)
    with pytest.raises(MissingExtra, match=r"'music' extra: pip install 'gru\[music\]'"):
        music.midi_bytes(np.zeros((2, 88)))


# --- the model and the task ----------------------------------------------------------------------


@pytest.mark.parametrize(("cell", "parameters"), [("gru", 22904), ("lstm", 21400), ("rnn", 27888)])
def test_the_papers_widths_give_about_20k_parameters(cell, parameters):
    net = MusicNet(music_module.MusicConfig(cell=cell))
    assert sum(p.numel() for p in net.parameters()) == parameters


def test_weight_noise_changes_training_outputs_only():
    net = MusicNet(music_module.MusicConfig(weight_noise=0.075))
    x = torch.rand(2, 5, 88).round()
    net.train()
    assert not torch.equal(net(x), net(x))
    net.eval()
    assert torch.equal(net(x), net(x))
    net.train()
    net(x).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_the_clock_reads_each_steps_position_the_same_whole_or_step_by_step():
    # The clock input is one-hot (start + t) mod P after the keys; composing feeds steps one at a
    # time with their position, which must give the logits of the whole piece read at once.
    net = MusicNet(music_module.MusicConfig(hidden_size=8, clock=3)).eval()
    x = torch.rand(1, 7, 88).round()
    inputs = net.inputs(x.to(torch.uint8), start=5)
    assert inputs.shape == (1, 7, 91) and torch.equal(inputs[0, :, :88], x[0])
    assert inputs[0, :, 88:].argmax(1).tolist() == [2, 0, 1, 2, 0, 1, 2]  # (5 + t) mod 3
    whole, state = net(x, state=torch.zeros(1, 1, 8))
    state, steps = torch.zeros(1, 1, 8), []
    for t in range(7):
        out, state = net.rnn(net.inputs(x[:, t : t + 1], start=t), state)
        steps.append(net.head(out))
    torch.testing.assert_close(torch.cat(steps, 1), whole, rtol=1e-5, atol=1e-6)  # float32
    assert sum(p.numel() for p in net.rnn.parameters()) == 3 * 8 * (91 + 8 + 2)
    assert "a clock of 3 steps" in describe(music_module.MusicConfig(clock=3))
    old = {k: v for k, v in music_module.MusicConfig().to_dict().items() if k != "clock"}
    assert music_module.MusicConfig.from_dict(old).clock == 0  # runs written before the setting
    with pytest.raises(ValueError, match=r"clock must be an int ≥ 0, got -1"):
        MusicModel(clock=-1)


def test_a_tiny_run_writes_its_folder_and_composes(jsb, tmp_path, capsys):
    code, out, _ = run(capsys, "train", "music", "--data", jsb, *TINY, "--out", tmp_path / "r")
    assert code == 0 and "test NLL:" in out and "baseline, each key's frequency" in out
    for name in ("config.json", "model.safetensors", "report.html", "continuation.png"):
        assert (tmp_path / "r" / name).is_file(), name
    assert (tmp_path / "r" / "gates.png").is_file()
    model = MusicModel.load(tmp_path / "r")
    scores = model.evaluate(jsb)
    assert scores["pieces"] == 77 and scores["nll"] > 0
    first = model.compose(np.zeros((3, 88), np.uint8), steps=5, seed=1)
    assert first.shape == (8, 88) and np.array_equal(
        first, model.compose(first[:3], steps=5, seed=1)
    )
    code, out, _ = run(capsys, "compose", "--run", tmp_path / "r", "--steps", 8, "--prime",
                       "test:3", "--prime-steps", 4, "--out", tmp_path / "x.mid")  # fmt: skip
    assert code == 0 and (tmp_path / "x.png").is_file()
    midi = mido.MidiFile(tmp_path / "x.mid")
    assert midi.length == pytest.approx(12 * 0.5, abs=0.5 + 1e-9)  # 12 steps, the last maybe silent
    code, _, err = run(capsys, "compose", "--run", tmp_path / "r", "--out", tmp_path / "x.mid")
    assert code == 2 and "--overwrite" in err


def test_a_tiny_nade_run_scores_the_exact_nll_composes_and_loads(
    jsb, tmp_path, capsys, monkeypatch
):
    argv = ["--data", jsb, "--output", "nade", "--nade-hidden", 8, "--hidden-size", 12, *TINY]
    code, out, _ = run(capsys, "train", "music", *argv, "--out", tmp_path / "r")
    assert code == 0 and "gru with nade keys" in out
    model = MusicModel.load(tmp_path / "r")
    assert model.config.output == "nade" and isinstance(model.model.head, NADE)
    assert model.model.head.hidden_size == 8
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert (
        metrics["model"] == describe(model.config) and "NADE of 8 hidden units" in metrics["model"]
    )
    assert "Boulanger-Lewandowski, Bengio and Vincent 2012: RNN-NADE" in metrics["baselines"]
    page = (tmp_path / "r" / "report.html").read_text()
    assert "this model (GRU of 12 units, the 88 keys of a step modelled jointly by a NADE" in page
    # evaluate: the mean over steps of each step's exact NLL, the NADE's own, step by step
    pieces = music.read_mat(jsb).test[:3]
    scores = model.evaluate(music.Music(pieces, pieces, pieces, "three"))
    x = music.padded(pieces)[0]
    steps = []
    with torch.no_grad():
        for piece in pieces:  # one piece at a time, no padding
            out, _ = model.model.rnn(
                torch.from_numpy(np.vstack([np.zeros((1, 88)), piece[:-1]])).float()[None]
            )
            notes = torch.from_numpy(piece).double()
            logits = model.model.head(out[0], notes.float()).double()  # p(v_d | v_<d, past)
            bce = -(notes * F.logsigmoid(logits) + (1 - notes) * F.logsigmoid(-logits))
            steps.append(bce.sum(1))
    assert scores["nll"] == pytest.approx(float(torch.cat(steps).mean()), rel=1e-6)
    with monkeypatch.context() as patch:  # a piece a batch: the same score
        patch.setattr(music_module, "NADE_STEPS", 1)
        alone = model.evaluate(music.Music(pieces, pieces, pieces, "three"))
    assert alone["nll"] == pytest.approx(scores["nll"], rel=1e-6)
    six = music.read_mat(jsb).test[:6]  # the run's --limit 6
    assert metrics["test"]["nll"] == pytest.approx(
        model.evaluate(music.Music(six, six, six, "six"))["nll"], rel=1e-9
    )
    first = model.compose(np.zeros((3, 88), np.uint8), steps=5, seed=1)
    assert first.shape == (8, 88) and np.array_equal(
        first, model.compose(first[:3], steps=5, seed=1)
    )
    code, _, _ = run(capsys, "compose", "--run", tmp_path / "r", "--steps", 8, "--prime",
                     "test:3", "--prime-steps", 4, "--out", tmp_path / "x.mid")  # fmt: skip
    assert code == 0 and len(mido.MidiFile(tmp_path / "x.mid").tracks) == 1
    with pytest.raises(ValueError, match=r"probabilities: needs output 'independent'.*'nade'"):
        model.probabilities(pieces[0])
    with pytest.raises(ValueError, match=r"MusicNet: a NADE output needs each step's notes"):
        model.model(x)


def test_a_run_with_attention_and_a_clock_trains_composes_and_loads(jsb, tmp_path, capsys):
    code, out, _ = run(capsys, "train", "music", "--data", jsb, *TINY, "--hidden-size", 8,
                       "--attention", 4, "--clock", 4, "--out", tmp_path / "r")  # fmt: skip
    assert code == 0 and "test NLL:" in out
    model = MusicModel.load(tmp_path / "r")
    assert model.model.recall is not None and model.model.recall.query.out_features == 4
    assert "attending to its past (keys of 4)" in describe(model.config)
    first = model.compose(np.zeros((3, 88), np.uint8), steps=5, seed=1)
    assert first.shape == (8, 88) and np.array_equal(
        first, model.compose(first[:3], steps=5, seed=1)
    )
    # drawing step by step (the outputs so far carried in the state) scores as the whole piece
    net, x = model.model.eval(), torch.from_numpy(first[None].astype(np.float32))
    whole = net(x)
    state, steps = (torch.zeros(1, 1, 8), None), []
    for t in range(8):
        layer_state, past = state
        out, after = net.rnn(net.inputs(x[:, t : t + 1], start=t), layer_state)
        steps.append(net.head(net.recall(out, past)))
        state = (after, out if past is None else torch.cat([past, out], 1))
    torch.testing.assert_close(torch.cat(steps, 1), whole, rtol=1e-5, atol=1e-5)  # float32
    with pytest.raises(ValueError, match=r"attention must be an int ≥ 0, got -2"):
        MusicModel(attention=-2)


def test_the_nade_preset_and_runs_written_before_the_output_setting(tmp_path):
    config = MusicModel.from_preset("nade").config
    assert (config.output, config.nade_hidden, config.hidden_size) == ("nade", 150, 128)
    old = music_module.MusicConfig().to_dict()
    del old["output"], old["nade_hidden"]
    assert music_module.MusicConfig.from_dict(old).output == "independent"
    with pytest.raises(
        ValueError, match=r"output must be one of \('independent', 'nade'\), got 'made'"
    ):
        MusicModel(output="made")
    with pytest.raises(ValueError, match=r"nade_hidden must be a positive int, got 0"):
        MusicModel(output="nade", nade_hidden=0)


def test_nade_weight_noise_reaches_the_nade_weights():
    net = MusicNet(music_module.MusicConfig(output="nade", nade_hidden=6, weight_noise=0.075))
    x = torch.rand(2, 5, 88).round()
    notes = x.roll(-1, 1).to(torch.int8)
    net.train()
    assert not torch.equal(net(x, None, notes), net(x, None, notes))
    net(x, None, notes).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


@pytest.mark.parametrize("output", [[], ["--output", "nade", "--nade-hidden", 8]])
def test_a_run_killed_mid_training_resumes_to_the_weights_of_an_unbroken_run(
    jsb, tmp_path, capsys, monkeypatch, output
):
    options = ["--data", jsb, *TINY, *output]
    assert run(capsys, "train", "music", *options, "--out", tmp_path / "whole")[0] == 0
    real, calls = MusicNet.forward, []

    def crash_at_batch_5(self, *args, **kwargs):
        calls.append(self.training and kwargs.get("noisy", True))
        if calls.count(True) == 5:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(MusicNet, "forward", crash_at_batch_5)
    with pytest.raises(KeyboardInterrupt):
        main([str(a) for a in ["train", "music", *options, "--out", tmp_path / "crashed",
                               "--checkpoint-every", 2]])  # fmt: skip
    monkeypatch.setattr(MusicNet, "forward", real)
    assert run(capsys, "train", "music", "--resume", tmp_path / "crashed", "--quiet")[0] == 0
    whole = MusicModel.load(tmp_path / "whole").model.state_dict()
    resumed = MusicModel.load(tmp_path / "crashed").model.state_dict()
    for name, value in whole.items():
        assert torch.equal(resumed[name], value), name


def test_a_folder_of_midi_files_trains(jsb, tmp_path, capsys):
    folder = tmp_path / "midi"
    folder.mkdir()
    for i, roll in enumerate(music.read_mat(jsb).train[:4]):
        music.write_midi(roll, folder / f"{i}.mid")
    argv = ["--data", folder, "--steps-per-beat", 1, *TINY, "--out", tmp_path / "r"]
    code, out, _ = run(capsys, "train", "music", *argv)
    assert code == 0 and "on 1 test piece," in out
    (folder / "0.mid").write_bytes(b"MThd")
    code, _, err = run(capsys, "train", "music", *argv[:-1], tmp_path / "r2")
    assert code == 2 and "0.mid' is not a MIDI file" in err


def test_bad_input_exits_2_with_a_message(jsb, tmp_path, capsys):
    code, _, err = run(
        capsys, "train", "music", "--data", tmp_path / "no.mat", "--out", tmp_path / "a"
    )
    assert code == 2 and "no.mat" in err and "Traceback" not in err
    bad = write_mat(tmp_path / "bad.mat", traindata=[np.zeros((2, 88))])
    code, _, err = run(capsys, "train", "music", "--data", bad, "--out", tmp_path / "b")
    assert code == 2 and "has no 'validdata'" in err
    code, _, err = run(capsys, "train", "music", "--data", jsb, "--cell", "lstm", "--weight-noise",
                       "-1", "--out", tmp_path / "c")  # fmt: skip
    assert code == 2 and "weight_noise must be ≥ 0" in err
    code, _, err = run(capsys, "compose", "--run", tmp_path / "none", "--out", tmp_path / "x.mid")
    assert code == 2 and "none" in err
    code, _, err = run(capsys, "compose", "--run", tmp_path, "--out", tmp_path / "x.wav")
    assert code == 2 and "must be a .mid file" in err


def test_two_processes_under_torchrun_train_one_run_in_sync_and_rank_0_writes_alone(jsb, tmp_path):
    import safetensors.torch

    from gru import checkpoint

    out = tmp_path / "run"
    result, steps, finals = torchrun_train(
        tmp_path, "music", "--data", jsb, "--limit", 8, "--epochs", 2, "--batch-size", 2,
        "--out", out, "--quiet",
    )  # fmt: skip
    assert result.stdout.count("test NLL:") == 1  # only rank 0 reports
    # 8 training chorales, 4 per process, batches of 2: 2 steps per epoch, 2 epochs.
    assert [s["step"] for s in steps[0]] == [s["step"] for s in steps[1]] == [1, 2, 3, 4]
    assert [s["params"] for s in steps[0]] == [s["params"] for s in steps[1]]  # in sync
    assert all(a["loss"] != b["loss"] for a, b in zip(*steps, strict=True))  # their own pieces
    saved = safetensors.torch.load_file(out / checkpoint.MODEL_FILE)
    assert finals[0] == finals[1] == checkpoint.tensors_digest(saved)
    assert sorted(p.name for p in out.iterdir()) == [  # one writer: no second copy, no leftovers
        "checkpoint.safetensors", "config.json", "continuation.png", "gates.png", "metrics.json",
        "model.safetensors", "report.html", "training_curves.png",
    ]  # fmt: skip
    metrics = json.loads((out / checkpoint.METRICS_FILE).read_text())
    assert metrics["processes"] == 2 and len(metrics["history"]) == 2
    assert MusicModel.load(out).evaluate(jsb)["pieces"] == 77
