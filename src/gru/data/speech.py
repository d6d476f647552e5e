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
from gru.kernels import audio

__all__ = [
    "AUDIO_SUFFIXES",
    "FSDD_TEST_TAKES",
    "FrameStream",
    "Framing",
    "Normalizer",
    "SpeechData",
    "dct_matrix",
    "logmel",
    "read_audio",
    "resample",
    "scan",
    "split",
    "warping",
]

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
FSDD_TEST_TAKES = range(5)  # the official split: takes 0-4 test, the rest train
_FSDD_NAME = re.compile(r"^(\d)_([A-Za-z0-9-]+)_(\d+)$")
_LOG_FLOOR = 1e-6  # added to the mel power before the log: silence stays finite
_FLOOR32 = np.float32(_LOG_FLOOR)


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

    def mel_basis(self, warp: float = 1.0) -> np.ndarray:
        """The mel filters (M, F) float32 librosa's melspectrogram uses, F = n_fft // 2 + 1;
        with ``warp`` α ≠ 1, applied to the spectrum warped as a vocal tract α times shorter
        would shape it (`warping`)."""
        librosa = _librosa("speech features")
        basis = librosa.filters.mel(sr=self.rate, n_fft=self.n_fft, n_mels=self.n_mels)
        if warp != 1.0:
            basis = basis @ warping(self.n_fft // 2 + 1, warp)  # (M, F)
        return basis.astype(np.float32)


def warping(F: int, warp: float) -> np.ndarray:
    """The (F, F) matrix that moves the power at frequency f of a spectrum of F bins to w(f),
    vocal-tract-length perturbation (Jaitly and Hinton 2013): w(f) = α·f up to the boundary
    f₀ = 0.8·Nyquist·min(1, 1/α), then a straight line to the Nyquist frequency, which stays
    where it is. Row g interpolates the power at w⁻¹(g) between its two nearest bins."""
    f = np.arange(F, dtype=np.float64)  # bin frequencies, Nyquist = F - 1
    nyquist = F - 1.0
    f0 = 0.8 * nyquist * min(1.0, 1.0 / warp)
    slope = (nyquist - warp * f0) / (nyquist - f0)  # above f₀, to the Nyquist frequency
    warped = np.where(f <= f0, warp * f, warp * f0 + (f - f0) * slope)  # w(f) of every bin
    source = np.interp(f, warped, f)  # w⁻¹(g) of every bin g
    low = np.minimum(np.floor(source).astype(np.int64), F - 2)  # (F,)
    weight = source - low  # (F,) in [0, 1]
    matrix = np.zeros((F, F))
    matrix[np.arange(F), low] = 1.0 - weight
    matrix[np.arange(F), low + 1] += weight
    return matrix


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


def logmel(
    samples: np.ndarray, framing: Framing, *, name: str = "audio", warp: float = 1.0
) -> np.ndarray:
    """log(mel power + 1e-6) (T, M) float32 of ``samples`` (S,) at ``framing.rate``: librosa's
    melspectrogram without centering, T = 1 + (S - n_fft) // hop (``warp``: its spectrum
    warped, `Framing.mel_basis`); ValueError naming ``name`` when the audio is shorter than
    one frame."""
    n_fft, hop = framing.n_fft, framing.hop
    if len(samples) < n_fft:
        raise ValueError(
            f"audio: {name!r} is shorter than one frame: {len(samples)} samples at "
            f"{framing.rate} Hz, a frame needs {n_fft} ({framing.frame_ms} ms)"
        )
    librosa = _librosa("speech features")
    if warp != 1.0:
        power = np.abs(librosa.stft(samples, n_fft=n_fft, hop_length=hop, center=False)) ** 2
        mel = framing.mel_basis(warp) @ power  # (M, F) @ (F, T)
    else:
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
        # The real DFT as one product, the window folded in: for the two frames of a 20 ms
        # piece, `gru.kernels.audio.log_mel`'s one compiled loop costs less than an FFT call.
        angle = 2 * np.pi * np.outer(np.arange(N), np.arange(N // 2 + 1)) / N  # (N, F)
        self.dft = np.concatenate(
            [window[:, None] * np.cos(angle), window[:, None] * np.sin(angle)], axis=1
        ).astype(np.float32)  # (N, 2F)
        self.basis = framing.mel_basis().T.copy()  # (F, M) float32
        audio.prepare()
        self.buffer = np.zeros(0, dtype=np.float32)

    def reset(self) -> None:
        self.buffer = np.zeros(0, dtype=np.float32)

    def push(self, samples: np.ndarray) -> np.ndarray:
        n_fft, hop = self.framing.n_fft, self.framing.hop
        self.buffer = np.concatenate([self.buffer, np.asarray(samples, dtype=np.float32)])
        k = 0 if len(self.buffer) < n_fft else 1 + (len(self.buffer) - n_fft) // hop
        if k == 0:
            return np.zeros((0, self.framing.n_mels), dtype=np.float32)
        frames = np.empty((k, self.framing.n_mels), dtype=np.float32)  # (k, M)
        audio.log_mel(self.buffer, hop, self.dft, self.basis, _FLOOR32, frames)
        self.buffer = self.buffer[k * hop :]
        return frames


class Normalizer:
    """Causal normalization of log-mel frames, the same on a whole utterance and frame by
    frame: frame t becomes (x_t − m_t) / s_t, where m_t, the utterance's mean so far, starts
    from the training frames' ``mean`` (M,) counted as ``prior`` frames,

        m_t = (prior · mean + Σ_{τ ≤ t} x_τ) / (prior + t + 1)

    and s_t is the training frames' spread ``std`` (M,); with ``variance_prior`` (frames), s_t
    is the utterance's spread so far around its running means, starting from std² counted as
    that many frames:

        s_t² = (variance_prior · std² + Σ_{τ ≤ t} (x_τ − m_τ)²) / (variance_prior + t + 1)

    A loud or quiet recording, or another microphone, shifts every band's log power alike;
    subtracting m_t removes that shift as soon as a few frames have arrived, without waiting
    for the end of the word; dividing by s_t evens out how widely a voice's bands swing.

    With ``cepstra`` C, the normalized frames become their first C cepstral coefficients
    (the orthonormal DCT-II across bands, as MFCCs are computed): a smooth spectral envelope,
    without the ripple of a voice's pitch harmonics across the low bands."""

    def __init__(
        self, mean, std, prior: float, variance_prior: float | None = None,
        cepstra: int | None = None,
    ) -> None:  # fmt: skip
        self.mean = np.asarray(mean, dtype=np.float64)  # (M,)
        self.std = np.asarray(std, dtype=np.float64)  # (M,)
        self.prior = float(prior)
        self.variance_prior = None if variance_prior is None else float(variance_prior)
        self.dct = None if cepstra is None else dct_matrix(len(self.mean), cepstra)  # (M, C)
        # a streamed frame's division by std folded into the DCT: one product, not two steps
        self.scaled_dct = None if cepstra is None else self.dct / self.std[:, None]  # (M, C)
        self.reset()

    def reset(self) -> None:
        self.total = self.prior * self.mean  # (M,)
        self.count = self.prior
        if self.variance_prior is not None:
            self.squares = self.variance_prior * self.std**2  # (M,)
            self.square_count = self.variance_prior

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """The normalized ``frames`` (T, M) float32 ((T, C) with ``cepstra``), continuing the
        utterance so far."""
        if len(frames) == 1 and self.variance_prior is None and self.dct is not None:
            self.total = self.total + frames[0]  # streaming: a few NumPy calls a frame
            self.count += 1
            return ((frames - self.total / self.count) @ self.scaled_dct).astype(np.float32)
        out = self._normalized(frames)  # (T, M)
        return out if self.dct is None else (out @ self.dct).astype(np.float32)  # (T, C)

    def _normalized(self, frames: np.ndarray) -> np.ndarray:
        if len(frames) == 1 and self.variance_prior is None:  # streaming, without cumsum's cost
            self.total = self.total + frames[0]
            self.count += 1
            return ((frames - self.total / self.count) / self.std).astype(np.float32)
        sums = self.total + np.cumsum(frames, axis=0, dtype=np.float64)  # (T, M)
        counts = self.count + np.arange(1, len(frames) + 1)[:, None]  # (T, 1)
        centered = frames - sums / counts  # (T, M) float64
        if len(frames):
            self.total, self.count = sums[-1], self.count + len(frames)
        if self.variance_prior is None:
            return (centered / self.std).astype(np.float32)  # (T, M)
        squares = self.squares + np.cumsum(centered**2, axis=0)  # (T, M)
        spread = np.sqrt(squares / (self.square_count + np.arange(1, len(frames) + 1)[:, None]))
        if len(frames):
            self.squares, self.square_count = squares[-1], self.square_count + len(frames)
        return (centered / spread).astype(np.float32)  # (T, M)


def dct_matrix(M: int, C: int) -> np.ndarray:
    """The first C basis vectors (M, C) float32 of the orthonormal DCT-II of M values:
    ``x @ dct_matrix(M, C)`` equals scipy's ``dct(x, type=2, norm="ortho")[..., :C]``."""
    m, k = np.arange(M)[:, None], np.arange(C)[None, :]
    basis = np.cos(np.pi * k * (2 * m + 1) / (2 * M)) * np.sqrt(2.0 / M)  # (M, C)
    basis[:, 0] /= np.sqrt(2.0)
    return basis.astype(np.float32)


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
