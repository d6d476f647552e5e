"""gru.data.speech, gru.tasks.speech and gru.tasks.listening: the reader's layouts and split,
log-mel frames against a NumPy reference, frames and normalization streamed equal to whole
recordings, the GRU streamed frame by frame equal to the whole-sequence forward, the word
detector on synthetic tones, tiny runs on a few real recordings through Python and the CLI,
and every bad input by its message."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from checks import assert_close, torchrun_train
from checks import run_cli as run
from gru._extras import MissingExtra
from gru.cli import main
from gru.data import speech
from gru.tasks import speech as speech_module
from gru.tasks.speech import SpeechRecognizer

soundfile = pytest.importorskip("soundfile")  # the dev extra installs it

FSDD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "speech" / "fsdd"
TINY = {"hidden_size": 16, "num_layers": 1, "epochs": 1, "batch_size": 16, "speeds": [1.0]}
RATE = 8000


def tone(freq: float, seconds: float, rate: int = RATE, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return wave if channels == 1 else np.stack([wave] * channels, axis=1)


def write(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, samples, rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def fsdd_sample(tmp_path_factory):
    """A copy of 48 real FSDD recordings: digits 0-3, two speakers, takes 0-2 (test) and
    5-7 (train); the real data must be there (a missing ../shared/data fails, not skips)."""
    if not (FSDD / "recordings").is_dir():
        pytest.fail(f"the shared data {FSDD} is missing (../shared/data beside the clone)")
    folder = tmp_path_factory.mktemp("fsdd") / "recordings"
    folder.mkdir()
    for digit in range(4):
        for speaker in ("jackson", "theo"):
            for take in (0, 1, 2, 5, 6, 7):
                name = f"{digit}_{speaker}_{take}.wav"
                (folder / name).write_bytes((FSDD / "recordings" / name).read_bytes())
    return folder.parent


# --- the reader ------------------------------------------------------------------------------


def test_fsdd_names_give_digit_speaker_and_the_official_split(tmp_path):
    for name in ("3_ann_0.wav", "3_ann_5.wav", "7_bob_4.wav", "7_bob_49.wav"):
        write(tmp_path / "recordings" / name, tone(440, 0.2))
    data = speech.scan(tmp_path)
    assert data.layout == "fsdd" and data.names == [str(d) for d in range(10)]
    assert [p.name for p in data.paths] == [
        "3_ann_0.wav",
        "3_ann_5.wav",
        "7_bob_4.wav",
        "7_bob_49.wav",
    ]
    assert data.labels.tolist() == [3, 3, 7, 7] and data.speakers == ["ann", "ann", "bob", "bob"]
    assert data.test.tolist() == [True, False, True, False]  # takes 0-4 test
    train, test = speech.split(data, None, None, 0)
    assert [p.name for p in test.paths] == ["3_ann_0.wav", "7_bob_4.wav"]
    train, test = speech.split(data, "bob", None, 0)  # leave one speaker out
    assert train.speakers == ["ann", "ann"] and test.speakers == ["bob", "bob"]
    with pytest.raises(
        ValueError,
        match=r"held_out: no recordings of speaker 'eve' in .*; its speakers are \['ann', 'bob'\]",
    ):
        speech.split(data, "eve", None, 0)


def test_a_folder_per_label_gives_the_labels_and_speech_commands_speakers(tmp_path):
    write(tmp_path / "yes" / "abc123_nohash_0.wav", tone(300, 0.2))
    write(tmp_path / "yes" / "other.wav", tone(300, 0.2))
    write(tmp_path / "no" / "abc123_nohash_1.wav", tone(600, 0.2))
    (tmp_path / "no" / "notes.txt").write_text("not audio")
    data = speech.scan(tmp_path)
    assert data.layout == "folders" and data.names == ["no", "yes"] and data.test is None
    assert data.labels.tolist() == [0, 1, 1] and data.speakers == ["abc123", "abc123", ""]


def test_stereo_is_mixed_down_and_other_rates_resampled(tmp_path):
    left_right = np.stack([tone(440, 0.5), np.zeros(4000, np.float32)], axis=1)
    samples = speech.read_audio(write(tmp_path / "s.wav", left_right), RATE)
    assert_close(samples, left_right.mean(axis=1), atol_scale=100)  # 16-bit quantization
    high = speech.read_audio(write(tmp_path / "h.wav", tone(440, 0.5, 16000), 16000), RATE)
    assert len(high) == 4000
    spectrum = np.abs(np.fft.rfft(high))
    assert abs(np.argmax(spectrum) * RATE / len(high) - 440) < 3  # the same tone at 8 kHz


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b"hello, not audio",
            r"'.*bad\.wav' is not an audio file soundfile can read \(a WAV, FLAC or OGG file was expected\)",
        ),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", r"'.*bad\.wav' is not an audio file soundfile can read"),
        (b"", r"'.*bad\.wav' is not an audio file soundfile can read"),
    ],
    ids=["text", "corrupt-header", "empty-file"],
)
def test_a_file_that_is_not_audio_is_named(tmp_path, content, message):
    (tmp_path / "bad.wav").write_bytes(content)
    with pytest.raises(ValueError, match=message):
        speech.read_audio(tmp_path / "bad.wav", RATE)


def test_empty_short_and_misnamed_audio_and_empty_folders_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"'.*none\.wav' is empty \(0 samples\)"):
        speech.read_audio(write(tmp_path / "none.wav", np.zeros(0, np.float32)), RATE)
    short = speech.read_audio(write(tmp_path / "short.wav", tone(440, 0.01)), RATE)
    with pytest.raises(
        ValueError,
        match=r"audio: 'short\.wav' is shorter than one frame: 80 samples at 8000 Hz, a frame needs 200 \(25\.0 ms\)",
    ):
        speech.logmel(short, speech.Framing(), name="short.wav")
    with pytest.raises(
        ValueError, match=r"data: '.*empty' holds no audio \(\.wav, \.flac, \.ogg\)"
    ):
        (tmp_path / "empty" / "yes").mkdir(parents=True)
        speech.scan(tmp_path / "empty")
    write(tmp_path / "flat" / "hello.wav", tone(440, 0.2))
    with pytest.raises(
        ValueError, match=r"'.*hello\.wav' is not named \{digit\}_\{speaker\}_\{take\}\.wav"
    ):
        speech.scan(tmp_path / "flat")
    with pytest.raises(FileNotFoundError, match=r"data: '.*nowhere' does not exist"):
        speech.scan(tmp_path / "nowhere")


def test_a_missing_audio_extra_is_named(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "soundfile", None)
    with pytest.raises(
        MissingExtra, match=r"reading audio needs the 'audio' extra: pip install 'gru\[audio\]'"
    ):
        speech.read_audio(tmp_path / "x.wav", RATE)


# --- features ------------------------------------------------------------------------------------


def reference_logmel(samples: np.ndarray, framing: speech.Framing) -> np.ndarray:
    """log-mel frames straight from the definitions: periodic Hann windows every hop, |FFT|²,
    the mel filters, log(· + 1e-6), in float64."""
    N, hop = framing.n_fft, framing.hop
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N) / N)  # periodic Hann
    T = 1 + (len(samples) - N) // hop
    frames = np.stack([samples[t * hop : t * hop + N] for t in range(T)]).astype(np.float64)
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2  # (T, F)
    return np.log(power @ framing.mel_basis().T.astype(np.float64) + 1e-6)  # (T, M)


@pytest.mark.parametrize("framing", [speech.Framing(), speech.Framing(16000, 32.0, 10.0, 64)])
def test_log_mel_frames_match_the_reference_and_stream_equal(framing):
    generator = np.random.default_rng(0)
    samples = (0.3 * generator.standard_normal(framing.rate // 2)).astype(np.float32)
    samples += tone(700, 0.5, framing.rate)
    whole = speech.logmel(samples, framing)
    assert whole.shape == (1 + (len(samples) - framing.n_fft) // framing.hop, framing.n_mels)
    # float32 power through the log: relative error of the power ~1e-6 → absolute in the log
    assert_close(whole, reference_logmel(samples, framing), np.float32, atol_scale=10)
    stream = speech.FrameStream(framing)
    pieces = [stream.push(samples[i : i + 37]) for i in range(0, len(samples), 37)]
    assert_close(np.concatenate(pieces), whole, atol_scale=20)  # a DFT product, not an FFT


def test_the_causal_normalization_is_the_same_whole_and_frame_by_frame():
    generator = np.random.default_rng(1)
    frames = generator.standard_normal((30, 5)).astype(np.float32) + 3.0
    mean, std = np.full(5, 2.0), np.full(5, 0.5)
    whole = speech.Normalizer(mean, std, prior=4)(frames)
    expected = (frames - (4 * 2.0 + np.cumsum(frames, 0)) / (4 + np.arange(1, 31))[:, None]) / 0.5
    assert_close(whole, expected.astype(np.float32))
    norm = speech.Normalizer(mean, std, prior=4)
    one_by_one = np.concatenate([norm(frames[t : t + 1]) for t in range(5)] + [norm(frames[5:])])
    assert_close(one_by_one, whole)


def test_the_running_variance_is_the_same_whole_and_frame_by_frame_and_evens_out_a_gain():
    generator = np.random.default_rng(2)
    frames = generator.standard_normal((30, 5)).astype(np.float32) + 3.0
    mean, std = np.full(5, 2.0), np.full(5, 0.5)
    whole = speech.Normalizer(mean, std, prior=1, variance_prior=3)(frames)
    # straight from the docstring's sums, frame by frame, in float64
    m = (1 * mean + np.cumsum(frames, 0)) / (1 + np.arange(1, 31))[:, None]
    squares = 3 * std**2 + np.cumsum((frames - m) ** 2, 0)
    expected = (frames - m) / np.sqrt(squares / (3 + np.arange(1, 31))[:, None])
    assert_close(whole, expected.astype(np.float32))
    norm = speech.Normalizer(mean, std, prior=1, variance_prior=3)
    one_by_one = np.concatenate([norm(frames[t : t + 1]) for t in range(5)] + [norm(frames[5:])])
    assert_close(one_by_one, whole, scale=10)  # float64 sums in another order, then float32
    # A voice whose bands swing twice as widely comes out alike once the spread is learned
    # (up to the priors' weight, 0.01 frames against 10 or more heard: within 0.01); divided
    # by the training std alone it would come out twice as wide.
    wide = speech.Normalizer(mean, std, prior=0.01, variance_prior=0.01)(2 * frames)
    narrow = speech.Normalizer(mean, std, prior=0.01, variance_prior=0.01)(frames)
    assert np.abs(wide[10:] - narrow[10:]).max() < 0.01 < np.abs(narrow[10:]).mean()


def test_cepstra_are_the_dct_of_the_normalized_bands_whole_and_frame_by_frame():
    scipy_fft = pytest.importorskip("scipy.fft")  # librosa depends on scipy
    generator = np.random.default_rng(3)
    frames = generator.standard_normal((12, 40)).astype(np.float32)
    mean, std = np.zeros(40), np.full(40, 2.0)
    bands = speech.Normalizer(mean, std, prior=1)(frames)  # (T, M)
    cepstra = speech.Normalizer(mean, std, prior=1, cepstra=13)(frames)  # (T, C)
    expected = scipy_fft.dct(bands.astype(np.float64), type=2, norm="ortho", axis=1)[:, :13]
    assert_close(cepstra, expected.astype(np.float32), scale=10)  # float32 products of 40 terms
    norm = speech.Normalizer(mean, std, prior=1, cepstra=13)
    assert_close(np.concatenate([norm(frame[None]) for frame in frames]), cepstra)
    with pytest.raises(ValueError, match=r"cepstra must be None or an int in \[1, n_mels=40\]"):
        SpeechRecognizer(cepstra=41)


def test_vocal_tract_warping_moves_a_tone_by_the_factor_and_keeps_the_band_edges():
    F = 101  # 200-sample frames: 40 Hz bins up to 4 kHz
    for warp, expected in ((1.1, 22), (0.9, 18)):
        spectrum = np.zeros(F)
        spectrum[20] = 1.0
        moved = speech.warping(F, warp) @ spectrum  # (F,)
        assert int(np.argmax(moved)) == expected and moved[expected] == pytest.approx(1.0)
        assert speech.warping(F, warp)[0, 0] == 1.0 and speech.warping(F, warp)[-1, -1] == 1.0
    assert_close(speech.warping(F, 1.0), np.eye(F))
    framing = speech.Framing()
    samples = tone(800, 0.3)
    plain, warped = (speech.logmel(samples, framing, warp=w) for w in (1.0, 1.15))
    centroid = [(np.exp(f) * np.arange(40)).sum(1) / np.exp(f).sum(1) for f in (plain, warped)]
    assert np.all(centroid[1] > centroid[0] + 1)  # the 800 Hz tone heard about 920 Hz
    with pytest.raises(ValueError, match=r"SpeechConfig: warp must be in \[0, 0\.5\)"):
        SpeechRecognizer(warp=0.6)
    with pytest.raises(ValueError, match=r"SpeechConfig: variance_prior must be None or > 0"):
        SpeechRecognizer(variance_prior=0)


# --- streaming the model -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("preset", "settings"),
    [
        ("default", {"pooling": "last", "num_layers": 2}),
        ("default", {"pooling": "mean", "num_layers": 1}),
        ("new-speaker", {"num_layers": 1}),  # mean pooling, a running mean of prior 0.5
        ("new-speaker", {"num_layers": 2, "variance_prior": 3.0, "cepstra": 20}),
    ],
)
def test_streaming_frame_by_frame_equals_the_whole_recording_forward(preset, settings):
    torch.manual_seed(0)
    recognizer = SpeechRecognizer.from_preset(preset, hidden_size=24, **settings)
    recognizer.names = [str(d) for d in range(10)]
    recognizer.statistics = {"mean": [-5.0] * 40, "std": [2.0] * 40}
    recognizer.model = recognizer._build_model().eval()
    samples = tone(300, 0.4) + tone(1200, 0.4) * np.linspace(0, 1, 3200, dtype=np.float32)
    stream = recognizer.stream()
    streamed = np.concatenate([stream.push(samples[i : i + 160]) for i in range(0, 3200, 160)])
    normalized = recognizer.normalizer()(speech.logmel(samples, recognizer.config.framing))
    x = torch.from_numpy(normalized)[None]  # (1, T, M)
    T = x.shape[1]
    with torch.no_grad():  # the whole-sequence forward of the recording cut at every frame
        cut = torch.cat([recognizer.model(x, torch.tensor([t])) for t in range(1, T + 1)])
    assert streamed.shape == (T, 10)
    assert_close(streamed, cut.numpy(), np.float32, scale=10)  # the engine's step vs its layer


def test_the_listener_finds_each_tone_burst_and_its_start():
    torch.manual_seed(0)
    recognizer = SpeechRecognizer(hidden_size=8, num_layers=1)
    recognizer.names = ["a", "b"]
    recognizer.statistics = {"mean": [0.0] * 40, "std": [1.0] * 40}
    recognizer.model = recognizer._build_model().eval()
    quiet = np.zeros(int(0.5 * RATE), np.float32)
    audio = np.concatenate(
        [quiet, tone(400, 0.3), quiet, tone(900, 0.4), quiet, tone(500, 0.3), quiet]
    )
    audio += 1e-3 * np.random.default_rng(0).standard_normal(len(audio)).astype(np.float32)
    heard = recognizer.listen(audio)
    onsets = [0.5, 1.3, 2.2]  # a word starts at the first frame whose window holds the tone
    assert len(heard) == 3 and all(
        o - 0.03 <= h["time"] <= o for h, o in zip(heard, onsets, strict=True)
    )
    assert all(h["word"] in ("a", "b") and 0.5 <= h["probability"] <= 1 for h in heard)
    assert recognizer.listen(np.zeros(RATE, np.float32)) == []  # silence: no word


# --- tiny runs on real recordings ----------------------------------------------------------------


def test_a_tiny_run_writes_its_report_and_predicts_after_load(fsdd_sample, tmp_path):
    out = tmp_path / "run"
    recognizer = SpeechRecognizer(**TINY)
    report = recognizer.fit(fsdd_sample, out=out, quiet=True)
    assert report.recordings == {"train": 22, "validation": 2, "test": 24}
    assert set(report.per_speaker) == {"jackson", "theo"}
    assert np.sum(report.confusion) == 24 and len(report.confusion) == 10
    assert {"majority class", "logistic regression on mean and std of the frames"} <= set(
        report.baselines
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["stream"]["words"] == 24 and metrics["stream"]["us_per_frame"] > 0
    assert {"confusion.png", "gates.png", "report.html"} <= {p.name for p in out.iterdir()}
    loaded = SpeechRecognizer.load(out)
    files = sorted((fsdd_sample / "recordings").glob("*_theo_1.wav"))
    assert_close(loaded.probabilities(files), recognizer.probabilities(files))
    assert [w for w, _ in loaded.predict(files)] == [
        loaded.names[k] for k in loaded.probabilities(files).argmax(1)
    ]
    scores = loaded.evaluate(fsdd_sample)
    assert scores["recordings"] == 24 and scores["accuracy"] == pytest.approx(
        report.test["accuracy"]
    )


def test_the_command_line_trains_predicts_listens_and_refuses_bad_audio(
    fsdd_sample, tmp_path, capsys
):
    out = tmp_path / "cli"
    code, stdout, _ = run(
        capsys, "train", "speech", "--data", fsdd_sample, "--out", out, "--hidden-size", 8,
        "--layers", 1, "--epochs", 1, "--limit", 12, "--held-out", "theo", "--quiet", "--threads", 1,
    )  # fmt: skip
    assert code == 0
    assert "test accuracy (speaker 'theo' held out):" in stdout and "per speaker: theo" in stdout
    wav = fsdd_sample / "recordings" / "2_jackson_1.wav"
    code, stdout, _ = run(capsys, "predict", "--run", out, wav)
    word, p, path = stdout.strip().split("\t")
    assert code == 0 and word in "0123456789" and 0 < float(p) <= 1 and path == str(wav)
    code, stdout, _ = run(capsys, "listen", "--run", out, wav, "--frames")
    lines = stdout.strip().splitlines()
    assert code == 0 and "... " in lines[0] and lines[-1].startswith("# ")
    assert "µs per 10 ms frame, real-time factor" in lines[-1]
    code, stdout, _ = run(capsys, "evaluate", "--run", out, "--data", fsdd_sample)
    assert (
        code == 0 and "on 24 test recordings of" in stdout and "(speaker 'theo' held out)" in stdout
    )
    (tmp_path / "notes.wav").write_text("not audio")
    code, stdout, err = run(capsys, "predict", "--run", out, tmp_path / "notes.wav")
    assert code == 2 and "notes.wav' is not an audio file soundfile can read" in err
    assert "Traceback" not in err
    code, _, err = run(
        capsys, "train", "speech", "--data", tmp_path / "nothing", "--out", tmp_path / "x"
    )
    assert code == 2 and "nothing' does not exist" in err and not (tmp_path / "x").exists()


def test_a_run_killed_mid_training_resumes_to_the_weights_of_an_unbroken_run(
    fsdd_sample, tmp_path, capsys, monkeypatch
):
    options = ["--data", fsdd_sample, "--hidden-size", 8, "--layers", 1, "--epochs", 2, "--batch-size", 8, "--quiet"]  # fmt: skip
    assert run(capsys, "train", "speech", *options, "--out", tmp_path / "whole")[0] == 0
    # A crash at the 5th training batch (of 3 per epoch), after the checkpoint of step 4: the
    # masks and noise drawn after it come from the checkpointed random state.
    real, calls = speech_module.SpeechModel.forward, []

    def crash_at_batch_5(self, x, lengths):
        calls.append(self.training)
        if calls.count(True) == 5 and self.training:
            raise KeyboardInterrupt
        return real(self, x, lengths)

    monkeypatch.setattr(speech_module.SpeechModel, "forward", crash_at_batch_5)
    with pytest.raises(KeyboardInterrupt):
        main(
            [
                str(a)
                for a in [
                    "train",
                    "speech",
                    *options,
                    "--out",
                    tmp_path / "crashed",
                    "--checkpoint-every",
                    2,
                ]
            ]
        )
    monkeypatch.setattr(speech_module.SpeechModel, "forward", real)
    assert run(capsys, "train", "speech", "--resume", tmp_path / "crashed", "--quiet")[0] == 0
    whole = SpeechRecognizer.load(tmp_path / "whole").model.state_dict()
    resumed = SpeechRecognizer.load(tmp_path / "crashed").model.state_dict()
    for name, value in whole.items():
        assert torch.equal(resumed[name], value), name


def test_two_processes_under_torchrun_train_in_sync_and_rank_0_writes_alone(fsdd_sample, tmp_path):
    import safetensors.torch

    from gru import checkpoint

    trace = tmp_path / "trace"
    trace.mkdir()
    out = tmp_path / "ddp"
    result, steps, finals = torchrun_train(
        trace, "speech", "--data", fsdd_sample, "--out", out, "--hidden-size", 8, "--layers", 1,
        "--epochs", 2, "--batch-size", 8, "--quiet",
    )  # fmt: skip
    assert result.stdout.count("test accuracy (official split):") == 1  # only rank 0 reports
    # 22 training recordings at 3 speeds, 33 per process, batches of 8: 5 steps an epoch.
    assert [s["step"] for s in steps[0]] == [s["step"] for s in steps[1]] == list(range(1, 11))
    assert [s["params"] for s in steps[0]] == [s["params"] for s in steps[1]]  # in sync
    assert any(a["loss"] != b["loss"] for a, b in zip(*steps, strict=True))  # different shards
    saved = safetensors.torch.load_file(out / checkpoint.MODEL_FILE)
    assert finals[0] == finals[1] == checkpoint.tensors_digest(saved)

    # Only rank 0 wrote: one of each file, no leftovers of a second writer.
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.safetensors", "config.json", "confusion.png", "gates.png", "metrics.json",
        "model.safetensors", "report.html", "training_curves.png",
    ]  # fmt: skip
    metrics = json.loads((out / checkpoint.METRICS_FILE).read_text())
    assert metrics["processes"] == 2 and metrics["recordings"]["train"] == 22
    assert len(metrics["history"]) == 2 and metrics["stream"]["words"] == 24
    loaded = SpeechRecognizer.load(out)
    assert loaded.evaluate(fsdd_sample)["accuracy"] == pytest.approx(metrics["test"]["accuracy"])
