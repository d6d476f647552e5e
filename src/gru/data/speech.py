"""Spoken words as log-mel frames: the Free Spoken Digit Dataset and folder-per-label layouts.

Two layouts are read:

- FSDD: ``{digit}_{speaker}_{take}.wav`` files (in the folder, or in its ``recordings/``);
  the official split keeps takes 0-4 of every speaker and digit for test, 5-49 for training.
- folder per label, as Speech Commands ships: ``yes/*.wav``, ``no/*.wav``; a file named
  ``{speaker}_nohash_{n}.wav`` names its speaker. There is no official split.

Audio is read with soundfile (WAV, FLAC, OGG), mixed down to mono, resampled to the model's
rate with librosa (soxr); features are librosa's mel spectrogram of ``frame_ms`` Hann windows
every ``hop_ms``, without centering (frame t covers samples [t·hop, t·hop + n_fft), so a frame
is complete as soon as its last sample arrives), as log(mel power + 1e-6). `FrameStream`
computes the same frames from audio given piece by piece, for streaming.

Shapes: S samples, T frames, M mel bands.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gru._extras import require

__all__ = [
    "AUDIO_SUFFIXES",
    "FSDD_TEST_TAKES",
    "FrameStream",
    "Framing",
    "Normalizer",
    "SpeechData",
    "logmel",
    "read_audio",
    "resample",
    "scan",
    "split",
]

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
FSDD_TEST_TAKES = range(5)  # the official split: takes 0-4 test, the rest train
_FSDD_NAME = re.compile(r"^(\d)_([A-Za-z0-9-]+)_(\d+)$")
_LOG_FLOOR = 1e-6  # added to the mel power before the log: silence stays finite


def _librosa(feature: str):
    return require("librosa", "audio", feature)


def _soundfile(feature: str):
    return require("soundfile", "audio", feature)


@dataclass(frozen=True)
class Framing:
    """How audio becomes frames: the model's sample ``rate`` (Hz), Hann windows of
    ``frame_ms`` every ``hop_ms``, ``n_mels`` mel bands from 0 Hz to rate / 2."""

    rate: int = 8000
    frame_ms: float = 25.0
    hop_ms: float = 10.0
    n_mels: int = 40

    @property
    def n_fft(self) -> int:
        return round(self.rate * self.frame_ms / 1000)

    @property
    def hop(self) -> int:
        return round(self.rate * self.hop_ms / 1000)

    def check(self, owner: str) -> None:
        if not self.n_fft >= self.hop >= 1:
            raise ValueError(
                f"{owner}: frame_ms={self.frame_ms} and hop_ms={self.hop_ms} at rate {self.rate} "
                f"give {self.n_fft} samples a frame every {self.hop}; a frame needs at least one "
                "sample and at least a hop"
            )
        if self.n_mels > self.n_fft // 2 + 1:
            raise ValueError(
                f"{owner}: n_mels={self.n_mels} is more than the {self.n_fft // 2 + 1} frequencies "
                f"of a {self.frame_ms} ms frame"
            )

    def mel_basis(self) -> np.ndarray:
        """The mel filters (M, n_fft // 2 + 1) float32 librosa's melspectrogram uses."""
        librosa = _librosa("speech features")
        return librosa.filters.mel(sr=self.rate, n_fft=self.n_fft, n_mels=self.n_mels).astype(
            np.float32
        )


def read_audio(path: str | os.PathLike, rate: int) -> np.ndarray:
    """The samples (S,) float32 of the audio file ``path``, mixed down to mono and resampled to
    ``rate`` Hz; ValueError naming the file when it is not audio soundfile reads, is empty or
    has no channels."""
    soundfile = _soundfile("reading audio")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio: {str(path)!r} does not exist or is not a file")
    try:
        samples, file_rate = soundfile.read(path, dtype="float32", always_2d=True)  # (S, C)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        raise ValueError(
            f"audio: {str(path)!r} is not an audio file soundfile can read (a WAV, FLAC or OGG "
            f"file was expected): {error}"
        ) from None
    if samples.shape[1] == 0:
        raise ValueError(f"audio: {str(path)!r} has 0 channels; expected 1 (mono) or more")
    if samples.shape[0] == 0:
        raise ValueError(f"audio: {str(path)!r} is empty (0 samples)")
    mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]  # (S,)
    if not np.isfinite(mono).all():
        raise ValueError(f"audio: {str(path)!r} holds samples that are NaN or infinite")
    if file_rate != rate:
        return resample(mono, file_rate, rate)
    return np.ascontiguousarray(mono, dtype=np.float32)


def logmel(samples: np.ndarray, framing: Framing, *, name: str = "audio") -> np.ndarray:
    """log(mel power + 1e-6) (T, M) float32 of ``samples`` (S,) at ``framing.rate``: librosa's
    melspectrogram without centering, T = 1 + (S - n_fft) // hop; ValueError naming ``name``
    when the audio is shorter than one frame."""
    n_fft, hop = framing.n_fft, framing.hop
    if len(samples) < n_fft:
        raise ValueError(
            f"audio: {name!r} is shorter than one frame: {len(samples)} samples at "
            f"{framing.rate} Hz, a frame needs {n_fft} ({framing.frame_ms} ms)"
        )
    librosa = _librosa("speech features")
    mel = librosa.feature.melspectrogram(
        y=samples, sr=framing.rate, n_fft=n_fft, hop_length=hop, center=False,
        n_mels=framing.n_mels, power=2.0,
    )  # (M, T)  # fmt: skip
    return np.log(mel.T + _LOG_FLOOR).astype(np.float32)  # (T, M)


class FrameStream:
    """The frames of `logmel`, from audio that arrives piece by piece: ``push(samples)`` returns
    the frames (k, M) completed by those samples (k may be 0), each equal to the frame
    `logmel` gives of the whole audio at the same place."""

    def __init__(self, framing: Framing) -> None:
        librosa = _librosa("speech features")
        self.framing = framing
        N = framing.n_fft
        window = librosa.filters.get_window("hann", N, fftbins=True)  # (N,), as librosa's stft
        # The real DFT as two products, the window folded in: for a few frames at a time one
        # (k, N) @ (N, F) product costs less than an FFT call's overhead.
        angle = 2 * np.pi * np.outer(np.arange(N), np.arange(N // 2 + 1)) / N  # (N, F)
        self.dft = np.concatenate(
            [window[:, None] * np.cos(angle), window[:, None] * np.sin(angle)], axis=1
        ).astype(np.float32)  # (N, 2F)
        self.basis = framing.mel_basis().T.copy()  # (F, M)
        self.buffer = np.zeros(0, dtype=np.float32)

    def reset(self) -> None:
        self.buffer = np.zeros(0, dtype=np.float32)

    def push(self, samples: np.ndarray) -> np.ndarray:
        n_fft, hop = self.framing.n_fft, self.framing.hop
        self.buffer = np.concatenate([self.buffer, np.asarray(samples, dtype=np.float32)])
        k = 0 if len(self.buffer) < n_fft else 1 + (len(self.buffer) - n_fft) // hop
        if k == 0:
            return np.zeros((0, self.framing.n_mels), dtype=np.float32)
        buffer = self.buffer
        frames = np.stack([buffer[i * hop : i * hop + n_fft] for i in range(k)])  # (k, n_fft)
        spectrum = frames @ self.dft  # (k, 2F): real parts, then imaginary parts
        F = spectrum.shape[1] // 2
        power = spectrum[:, :F] ** 2 + spectrum[:, F:] ** 2  # (k, F)
        self.buffer = self.buffer[k * hop :]
        return np.log(power @ self.basis + _LOG_FLOOR)  # (k, M) float32


class Normalizer:
    """Causal mean normalization of log-mel frames, the same on a whole utterance and frame by
    frame: frame t becomes (x_t − m_t) / std, where m_t, the utterance's mean so far, starts
    from the training frames' ``mean`` (M,) counted as ``prior`` frames,

        m_t = (prior · mean + Σ_{τ ≤ t} x_τ) / (prior + t + 1)

    and ``std`` (M,) is the training frames' spread. A loud or quiet recording, or another
    microphone, shifts every band's log power alike; subtracting m_t removes that shift as soon
    as a few frames have arrived, without waiting for the end of the word."""

    def __init__(self, mean, std, prior: float) -> None:
        self.mean = np.asarray(mean, dtype=np.float64)  # (M,)
        self.std = np.asarray(std, dtype=np.float64)  # (M,)
        self.prior = float(prior)
        self.reset()

    def reset(self) -> None:
        self.total = self.prior * self.mean  # (M,)
        self.count = self.prior

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """The normalized ``frames`` (T, M) float32, continuing the utterance so far."""
        if len(frames) == 1:  # the streaming case, without the cumulative sums' overhead
            self.total = self.total + frames[0]
            self.count += 1
            return ((frames - self.total / self.count) / self.std).astype(np.float32)
        sums = self.total + np.cumsum(frames, axis=0, dtype=np.float64)  # (T, M)
        counts = self.count + np.arange(1, len(frames) + 1)[:, None]  # (T, 1)
        if len(frames):
            self.total, self.count = sums[-1], self.count + len(frames)
        return ((frames - sums / counts) / self.std).astype(np.float32)  # (T, M)


# --- the layouts ---------------------------------------------------------------------------------


@dataclass
class SpeechData:
    """The recordings of a dataset: their ``paths``, ``labels`` (N,) int64 indices into
    ``names`` (the label names, sorted), ``speakers`` (N names; "" when unknown) and
    ``test`` (N,) bool, the official test split (None: the layout has none)."""

    source: str
    layout: str
    paths: list[Path]
    labels: np.ndarray
    names: list[str]
    speakers: list[str]
    test: np.ndarray | None

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, index) -> SpeechData:
        index = np.asarray(index, dtype=np.int64)
        return SpeechData(
            self.source, self.layout, [self.paths[i] for i in index], self.labels[index],
            self.names, [self.speakers[i] for i in index],
            None if self.test is None else self.test[index],
        )  # fmt: skip


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def scan(path: str | os.PathLike) -> SpeechData:
    """The recordings of ``path``: an FSDD folder (``{digit}_{speaker}_{take}.wav``, directly or
    in ``recordings/``) or a folder with one subfolder of audio files per label. ValueError
    naming the folder when it holds neither, or a file that breaks the FSDD naming."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"data: {str(root)!r} does not exist")
    if not root.is_dir():
        raise ValueError(
            f"data: {str(root)!r} is a file; give a folder of {{digit}}_{{speaker}}_{{take}}.wav "
            "recordings (FSDD) or one subfolder of audio files per label"
        )
    if (root / "recordings").is_dir() and _audio_files(root / "recordings"):
        return _fsdd(root / "recordings", str(root))
    files = _audio_files(root)
    if files:
        return _fsdd(root, str(root))
    return _per_label(root)


def _fsdd(folder: Path, source: str) -> SpeechData:
    labels, speakers, test = [], [], []
    files = _audio_files(folder)
    for file in files:
        match = _FSDD_NAME.match(file.stem)
        if match is None:
            raise ValueError(
                f"data: {str(file)!r} is not named {{digit}}_{{speaker}}_{{take}}.wav as FSDD "
                "names its recordings (e.g. 7_jackson_32.wav); a folder of labeled audio needs "
                "one subfolder per label"
            )
        digit, speaker, take = match.groups()
        labels.append(int(digit))
        speakers.append(speaker)
        test.append(int(take) in FSDD_TEST_TAKES)
    names = [str(d) for d in range(10)]
    return SpeechData(
        source, "fsdd", files, np.array(labels, dtype=np.int64), names, speakers,
        np.array(test, dtype=bool),
    )  # fmt: skip


def _per_label(root: Path) -> SpeechData:
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))
    found = [(folder, _audio_files(folder)) for folder in folders]
    found = [(folder, files) for folder, files in found if files]
    if not found:
        raise ValueError(
            f"data: {str(root)!r} holds no audio ({', '.join(AUDIO_SUFFIXES)}): expected "
            "{digit}_{speaker}_{take}.wav recordings (FSDD) or one subfolder of audio files per "
            "label (yes/*.wav, no/*.wav)"
        )
    names = [folder.name for folder, _ in found]
    paths, labels, speakers = [], [], []
    for label, (_, files) in enumerate(found):
        for file in files:
            paths.append(file)
            labels.append(label)
            speakers.append(file.stem.split("_nohash_")[0] if "_nohash_" in file.stem else "")
    return SpeechData(
        str(root), "folders", paths, np.array(labels, dtype=np.int64), names, speakers, None
    )


def split(
    data: SpeechData, held_out: str | None, limit: int | None, seed: int
) -> tuple[SpeechData, SpeechData | None]:
    """(training, test or None) recordings of ``data``: with ``held_out`` every recording of
    that speaker is the test and the other speakers' are the training ones; otherwise the
    layout's official split (FSDD: takes 0-4 test), or everything for training when it has
    none. ``limit`` keeps at most that many of each (a random subset drawn with ``seed``)."""
    if held_out is not None:
        speakers = sorted(set(data.speakers) - {""})
        if held_out not in speakers:
            raise ValueError(
                f"held_out: no recordings of speaker {held_out!r} in {data.source!r}; its "
                f"speakers are {speakers or 'not named by its files'}"
            )
        is_test = np.array([s == held_out for s in data.speakers])
    elif data.test is not None:
        is_test = data.test
    else:
        is_test = np.zeros(len(data), dtype=bool)
    train, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    if limit is not None:
        generator = np.random.default_rng(seed)
        train = np.sort(generator.permutation(train)[:limit])
        test = np.sort(generator.permutation(test)[:limit])
    if len(train) == 0:
        raise ValueError(f"data: {data.source!r} leaves no training recordings")
    return data.subset(train), (data.subset(test) if len(test) else None)


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``samples`` (S,) at ``rate`` Hz resampled to ``target`` Hz (librosa, soxr)."""
    librosa = _librosa("resampling audio")
    out = librosa.resample(samples, orig_sr=rate, target_sr=target, res_type="soxr_hq")
    return np.ascontiguousarray(out, dtype=np.float32)
