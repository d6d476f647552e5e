"""The settings of a speech recognizer (`gru.tasks.speech`): `SpeechConfig`, every field a
recognizer is built and trained from, and the named presets."""

from __future__ import annotations

from dataclasses import dataclass, field

from gru.data import speech
from gru.tasks import runs
from gru.training import TrainConfig

__all__ = ["POOLINGS", "PRESETS", "SpeechConfig"]

POOLINGS = ("last", "mean")


@dataclass
class SpeechConfig(runs.TaskConfig):
    """Everything that decides a recognizer: features, model, augmentation, protocol, training.

    ``rate`` (Hz) is the model's sample rate (other files are resampled to it), frames of
    ``frame_ms`` every ``hop_ms``, ``n_mels`` bands; ``prior`` frames weigh the training mean
    in the causal normalization, ``variance_prior`` frames the training variance when each
    recording's running variance divides too (None: the training std alone divides);
    ``cepstra`` keeps that many cepstral coefficients of the normalized frames (None: the
    bands as they are).
    ``pooling`` is what the head reads: the GRU's "last" state, or the "mean" of its outputs
    so far. ``speeds`` are the resampling factors every training recording is also read at
    (1.0 is the recording as it is); ``warp`` > 0 warps each training copy's spectrum by a
    factor drawn from [1 - warp, 1 + warp] (vocal-tract-length perturbation); ``freq_mask``
    and ``time_mask`` the widest band and frame masks drawn per training recording, ``noise``
    the standard deviation of the Gaussian noise added to its normalized frames;
    ``label_smoothing`` goes to the cross-entropy. ``held_out`` names a
    speaker to test on (trained on the others) instead of the official split; ``limit`` keeps at
    most that many training and test recordings (quick runs).
    """

    rate: int = 8000
    frame_ms: float = 25.0
    hop_ms: float = 10.0
    n_mels: int = 40
    prior: float = 10.0
    variance_prior: float | None = None
    cepstra: int | None = None
    hidden_size: int = 128
    num_layers: int = 2
    pooling: str = "last"
    dropout: float = 0.1
    speeds: list[float] = field(default_factory=lambda: [0.9, 1.0, 1.1])
    freq_mask: int = 8
    time_mask: int = 10
    noise: float = 0.1
    warp: float = 0.0
    label_smoothing: float = 0.0
    held_out: str | None = None
    validation_split: float = 0.1
    limit: int | None = None
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            epochs=10, batch_size=64, lr=3e-3, optimizer="adamw", weight_decay=1e-2,
            schedule="cosine", warmup=0.05, monitor="val_accuracy", restore_best=True,
        )
    )  # fmt: skip

    @property
    def features(self) -> int:
        """How many values a frame gives the GRU: ``cepstra``, or else ``n_mels``."""
        return self.n_mels if self.cepstra is None else self.cepstra

    @property
    def framing(self) -> speech.Framing:
        return speech.Framing(self.rate, self.frame_ms, self.hop_ms, self.n_mels)

    def check(self) -> None:
        """Raise ValueError naming the first setting out of range."""
        owner = "SpeechConfig"
        runs.check_ints(owner, self, {"rate": 1000, "n_mels": 1, "hidden_size": 1})
        runs.check_ints(owner, self, {"num_layers": 1, "freq_mask": 0, "time_mask": 0})
        numbers = ("frame_ms", "hop_ms", "prior", "dropout", "noise", "validation_split", "warp")
        numbers += ("label_smoothing",)
        runs.check_numbers(owner, self, numbers)
        self.framing.check(owner)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"{owner}: dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 < self.validation_split < 1.0:
            raise ValueError(
                f"{owner}: validation_split must be a fraction in (0, 1), "
                f"got {self.validation_split}"
            )
        if self.prior < 0 or self.noise < 0:
            raise ValueError(
                f"{owner}: prior and noise must be ≥ 0, got {self.prior} and {self.noise}"
            )
        if self.variance_prior is not None and not (
            isinstance(self.variance_prior, int | float) and self.variance_prior > 0
        ):
            raise ValueError(
                f"{owner}: variance_prior must be None or > 0 frames, got {self.variance_prior!r}"
            )
        if not 0.0 <= self.warp < 0.5 or not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(
                f"{owner}: warp must be in [0, 0.5) and label_smoothing in [0, 1), got "
                f"{self.warp} and {self.label_smoothing}"
            )
        if self.pooling not in POOLINGS:
            raise ValueError(f"{owner}: pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.cepstra is not None and not (
            isinstance(self.cepstra, int) and 1 <= self.cepstra <= self.n_mels
        ):
            raise ValueError(
                f"{owner}: cepstra must be None or an int in [1, n_mels={self.n_mels}], "
                f"got {self.cepstra!r}"
            )
        if self.freq_mask >= self.features:
            raise ValueError(
                f"{owner}: freq_mask must be below the {self.features} values of a frame "
                f"(n_mels, or cepstra when given), got {self.freq_mask}"
            )
        speeds = self.speeds
        if (
            not isinstance(speeds, list)
            or not speeds
            or not all(isinstance(s, int | float) and 0.5 <= s <= 2.0 for s in speeds)
        ):
            raise ValueError(f"{owner}: speeds must be a list of factors in [0.5, 2], got {speeds}")
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit < 2):
            raise ValueError(f"{owner}: limit must be an int ≥ 2, got {self.limit!r}")
        self.train.check()


# Default: 20 cepstra of the normalized bands (the official split 0.988 -> 0.992 over the 40
# bands themselves, leave-one-speaker-out 0.701 -> 0.754); trains in about a minute on one
# thread (see the README's Speech section). Plain:
# the anchor recipe, a 2-layer GRU(128) on the frames as they are, 25 epochs, no
# augmentation and one speed.
PRESETS: dict[str, SpeechConfig] = {
    "default": SpeechConfig(cepstra=20, freq_mask=3),
    # For voices never heard in training: speeds 0.8-1.2, a running mean that adapts within a
    # few frames (prior 0.5), 20 cepstra of the bands, the mean output pooled. Leave-one-
    # speaker-out 0.831 against the default's 0.754, the official split 0.972 against 0.992
    # (README).
    "new-speaker": SpeechConfig(
        prior=0.5, pooling="mean", speeds=[0.8, 0.9, 1.0, 1.1, 1.2], cepstra=20, freq_mask=3
    ),
    "plain": SpeechConfig(
        speeds=[1.0],
        freq_mask=0,
        time_mask=0,
        noise=0.0,
        dropout=0.0,
        train=TrainConfig(
            epochs=25, batch_size=64, lr=1e-3, monitor="val_accuracy", restore_best=True
        ),
    ),
}
