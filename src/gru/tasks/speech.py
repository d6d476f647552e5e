"""Spoken-word recognition: log-mel frames read by a unidirectional GRU, streamed frame by frame.

A recording becomes log-mel frames (`gru.data.speech`: 40 bands of 25 ms Hann windows every
10 ms at 8 kHz), normalized causally (`gru.data.speech.Normalizer`: each band less the
utterance's running mean, so a frame is ready as soon as it is heard); a unidirectional GRU
reads them with each recording's length (no padding read) and a linear head maps its last
state to the words. Training sees every recording at several speeds (resampled: tempo and
pitch together, as speakers differ) and, batch by batch, SpecAugment-style masks of bands and
frames and Gaussian noise. Because the GRU is unidirectional and the normalization causal, the
same model recognizes frame by frame (`SpeechRecognizer.stream`, ``gru listen``).

    rec = SpeechRecognizer()                                # the default preset
    report = rec.fit("../shared/data/speech/fsdd", out="runs/speech")
    rec.predict(["7_jackson_0.wav"])                       # [(label, probability)]
    SpeechRecognizer.load("runs/speech").evaluate("../shared/data/speech/fsdd")

Protocols: the FSDD's official split (takes 0-4 test), or ``held_out="theo"``: train on the
other speakers and test on every recording of that one, a voice never heard.

Shapes: N recordings, T frames, M mel bands, H hidden units, K words.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gru.data import speech
from gru.models import SequenceModel, batched_predict, build
from gru.tasks import listening, runs
from gru.tasks.baselines import most_frequent, pooled_frames
from gru.tasks.evaluation import class_scores
from gru.tasks.speech_config import POOLINGS, PRESETS, SpeechConfig
from gru.viz import figures
from gru.viz.recording import record_gates

__all__ = ["POOLINGS", "PRESETS", "SpeechConfig", "SpeechModel", "SpeechRecognizer", "SpeechReport"]


@dataclass
class SpeechReport(runs.RunReport):
    """The outcome of `SpeechRecognizer.fit`: ``test`` holds accuracy and loss on the test
    recordings (the official split, or the held-out speaker), ``per_speaker`` the accuracy of
    each test speaker, ``confusion`` the counts [true][predicted], ``baselines`` the scores
    of the majority class and of logistic regression on each recording's mean and standard
    deviation of its frames, ``recordings`` the counts per part."""

    test: dict[str, float] | None
    per_speaker: dict[str, float]
    confusion: list[list[int]]
    baselines: dict[str, dict[str, float]]
    recordings: dict[str, int]
    protocol: str


class SpeechModel(nn.Module):
    """Normalized log-mel frames x (B, T, M) with lengths (B,) -> logits (B, K): during
    training, masks and noise (`augment`); then `gru.models.SequenceModel` (a unidirectional
    GRU, its last state or mean output, dropout, a linear head)."""

    def __init__(self, config: SpeechConfig, classes: int, backend: str = "auto") -> None:
        super().__init__()
        c = config
        self.freq_mask, self.time_mask, self.noise = c.freq_mask, c.time_mask, c.noise
        self.net = SequenceModel(
            c.features, c.hidden_size, classes, pooling=c.pooling, dropout=c.dropout,
            num_layers=c.num_layers, backend=backend,
        )  # fmt: skip

    def augment(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x with one band mask of up to ``freq_mask`` bands and one frame mask of up to
        ``time_mask`` frames per recording set to 0 (the normalized mean), plus noise."""
        B, T, M = x.shape
        x = x.clone()
        if self.freq_mask:
            width = torch.randint(0, self.freq_mask + 1, (B, 1))
            start = (torch.rand(B, 1) * (M - width + 1)).long()  # (B, 1)
            bands = torch.arange(M)
            x.masked_fill_(((bands >= start) & (bands < start + width)).unsqueeze(1), 0.0)
        if self.time_mask:
            width = torch.randint(0, self.time_mask + 1, (B, 1))
            start = (torch.rand(B, 1) * lengths.unsqueeze(1)).long()  # (B, 1)
            steps = torch.arange(T)
            x.masked_fill_(((steps >= start) & (steps < start + width)).unsqueeze(2), 0.0)
        return x + self.noise * torch.randn_like(x) if self.noise else x

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        x = x[:, : int(lengths.max())]  # (B, T, M), T the batch's longest
        return self.net(self.augment(x, lengths) if self.training else x, lengths)  # (B, K)


class SpeechRecognizer(runs.Task):
    """A GRU word recognizer: fit on labeled recordings, predict the word of audio files,
    stream audio frame by frame (`stream`). Settings by name (`SpeechConfig` and
    `TrainConfig` fields) or a whole ``config``; ``backend`` goes to `gru.GRU`."""

    task = "speech"
    config_class = SpeechConfig
    model: SpeechModel | None = None
    report: SpeechReport | None = None
    names: list[str] | None = None  # the words, in the order of the logits
    statistics: dict[str, list[float]] | None = None  # the training frames' mean and std

    @classmethod
    def from_preset(cls, name: str = "default", *, backend: str = "auto", **overrides):
        """A recognizer with preset ``name`` ("default", "new-speaker" or "plain"), settings
        overridden by name: ``from_preset("default", epochs=3, held_out="theo")``."""
        if name not in PRESETS:
            raise ValueError(
                f"SpeechRecognizer: preset must be one of {sorted(PRESETS)}, got {name!r}"
            )
        config = dataclasses.replace(PRESETS[name], train=dataclasses.replace(PRESETS[name].train))
        config.speeds = list(config.speeds)
        runs.apply_settings(config, overrides, "SpeechRecognizer.from_preset")
        return cls(config, backend=backend)

    def _restore(self, stored: dict, run_dir: Path) -> None:
        self.names = [str(n) for n in stored["words"]]
        self.statistics = {k: [float(v) for v in stored["statistics"][k]] for k in ("mean", "std")}

    def _build_model(self) -> SpeechModel:
        make = lambda: SpeechModel(self.config, len(self.names), self.backend)
        return build(make, "SpeechRecognizer", "hidden_size or num_layers")

    def normalizer(self) -> speech.Normalizer:
        """A fresh causal `gru.data.speech.Normalizer` with this model's training statistics."""
        c = self.config
        return speech.Normalizer(
            self.statistics["mean"], self.statistics["std"], c.prior, c.variance_prior, c.cepstra
        )

    def frames(self, paths: Sequence, speed: float = 1.0, warps=None) -> list[np.ndarray]:
        """The normalized log-mel frames (T_i, M) of each audio file, read at ``speed``, its
        spectrum warped by ``warps[i]`` when given (`gru.data.speech.warping`)."""
        c, normalize = self.config, self.normalizer()
        out = []
        for i, path in enumerate(paths):
            samples = speech.read_audio(path, c.rate)
            if speed != 1.0:  # played faster: fewer samples at the same rate, a higher pitch
                samples = speech.resample(samples, round(c.rate * speed), c.rate)
            normalize.reset()
            warp = 1.0 if warps is None else float(warps[i])
            out.append(normalize(speech.logmel(samples, c.framing, name=str(path), warp=warp)))
        return out

    @staticmethod
    def tensors(frames: list[np.ndarray], labels: np.ndarray) -> tuple[Tensor, Tensor, Tensor]:
        """(x (N, T, M) float32 zero-padded after each recording, lengths (N,), y (N,))."""
        lengths = torch.tensor([len(f) for f in frames], dtype=torch.int64)
        x = torch.zeros(len(frames), int(lengths.max()), frames[0].shape[1])
        for i, f in enumerate(frames):
            x[i, : len(f)] = torch.from_numpy(f)
        return x, lengths, torch.as_tensor(labels, dtype=torch.int64)

    def logits(self, x: Tensor, lengths: Tensor) -> Tensor:
        """Logits (N, K) in eval mode, recordings of similar length batched together."""
        return batched_predict(self.model, x, lengths, batch_size=256, order=torch.argsort(lengths))

    # --- fit ---------------------------------------------------------------------------------

    def fit(
        self,
        data: str | os.PathLike | speech.SpeechData,
        *,
        out: str | os.PathLike | None = None,
        resume: bool = False,
        checkpoint_every: int | None = None,
        quiet: bool = False,
        device: str = "cpu",
        log=print,
    ) -> SpeechReport:
        """Train on the recordings of ``data`` (a folder `gru.data.speech.scan` reads, or its
        `SpeechData`); score the test recordings; with ``out`` write the run folder there."""
        c = self.config
        c.check()
        self._cpu = time.process_time()
        run = self.run_folder(out, resume, checkpoint_every, device, quiet, log)
        run.check(c.to_dict(), {"source": runs.source_name(data)})
        loaded = data if isinstance(data, speech.SpeechData) else speech.scan(data)
        train_all, test = speech.split(loaded, c.held_out, c.limit, c.train.seed)
        generator = np.random.default_rng(c.train.seed)
        order = generator.permutation(len(train_all))
        n_val = max(1, round(len(order) * c.validation_split))
        if len(order) - n_val < 1:
            raise ValueError(f"data: {len(order)} training recordings leave none after validation")
        train_part, val_part = train_all.subset(order[n_val:]), train_all.subset(order[:n_val])
        counts = {"train": len(train_part), "validation": n_val, "test": len(test or [])}
        run.say(
            f"data: {loaded.source} ({counts['train']:,} train / {n_val:,} validation / "
            f"{counts['test']:,} test recordings, {len(loaded.names)} words; {self.protocol()})"
        )
        self.names = list(loaded.names)
        self.statistics = self._statistics(train_part.paths)
        feats = [
            self.frames(train_part.paths, s, self._warps(len(train_part), s)) for s in c.speeds
        ]
        x, lengths, y = self.tensors(
            [f for fs in feats for f in fs], np.tile(train_part.labels, len(c.speeds))
        )
        val = self.tensors(self.frames(val_part.paths), val_part.labels)

        def evaluate(model) -> dict[str, float]:
            logits = self.logits(*val[:2])
            return {
                "val_loss": F.cross_entropy(logits, val[2]).item(),
                "val_accuracy": (logits.argmax(1) == val[2]).float().mean().item(),
            }

        torch.manual_seed(c.train.seed)
        self.model = self._build_model()
        if not resume:
            run.start(c.to_dict(), {"source": runs.source_name(data) or loaded.source},
                      words=self.names, statistics=self.statistics)  # fmt: skip
        loss = functools.partial(F.cross_entropy, label_smoothing=c.label_smoothing)
        result = run.train(
            self.model, loss, (x, lengths, y), c.train, evaluate=evaluate,
            metrics={"accuracy": lambda logits, y: (logits.argmax(1) == y).float().mean()},
            sort_key=lengths,
        )  # fmt: skip
        self.model.eval()
        plain = feats[c.speeds.index(1.0)] if 1.0 in c.speeds and not c.warp else None
        self.report = self._finish(run, result, train_part, test, counts, plain)
        return self.report

    def _warps(self, n: int, speed: float) -> np.ndarray | None:
        """A warp factor in [1 - warp, 1 + warp] for each of ``n`` training recordings read at
        ``speed`` (None without warping), drawn from the seed and the speed."""
        c = self.config
        if not c.warp:
            return None
        generator = np.random.default_rng([c.train.seed, round(1000 * speed)])
        return generator.uniform(1 - c.warp, 1 + c.warp, n)

    def _statistics(self, paths) -> dict[str, list[float]]:
        """The mean and std (M,) of the log-mel frames of ``paths``, as config.json keeps them."""
        c = self.config
        frames = [
            speech.logmel(speech.read_audio(p, c.rate), c.framing, name=str(p)) for p in paths
        ]
        stacked = np.concatenate(frames)  # (ΣT, M)
        std = np.maximum(stacked.std(0), 1e-3)  # a band that never changes divides by 1e-3
        return {"mean": np.round(stacked.mean(0), 6).tolist(), "std": np.round(std, 6).tolist()}

    def protocol(self) -> str:
        """The run's test protocol, in words."""
        held = self.config.held_out
        return "official split" if held is None else f"speaker {held!r} held out"

    # --- predict and evaluate ----------------------------------------------------------------

    def _loaded(self, where: str) -> None:
        if self.model is None:
            raise ValueError(f"SpeechRecognizer.{where}: fit or load a model first")

    def probabilities(self, paths: Sequence[str | os.PathLike]) -> np.ndarray:
        """P(word) (N, K) float64 of each audio file."""
        self._loaded("probabilities")
        if isinstance(paths, str | os.PathLike):
            raise TypeError("SpeechRecognizer.predict: paths must be a list of audio files")
        if not paths:
            return np.zeros((0, len(self.names)))
        x, lengths, _ = self.tensors(self.frames(paths), np.zeros(len(paths)))
        return torch.softmax(self.logits(x, lengths).double(), dim=1).numpy()

    def predict(self, paths: Sequence[str | os.PathLike]) -> list[tuple[str, float]]:
        """(word, its probability) of each audio file."""
        p = self.probabilities(paths)
        return [(self.names[int(k)], float(row[k])) for row, k in zip(p, p.argmax(1), strict=True)]

    def evaluate(self, data: str | os.PathLike | speech.SpeechData) -> dict[str, float]:
        """Accuracy and loss on the test recordings of ``data`` under this run's protocol
        (every recording when the layout has no split); {"accuracy", "loss", "recordings"}."""
        self._loaded("evaluate")
        loaded = data if isinstance(data, speech.SpeechData) else speech.scan(data)
        if list(loaded.names) != list(self.names):
            raise ValueError(
                f"data: {loaded.source!r} has the words {loaded.names}, this model knows "
                f"{self.names}"
            )
        train, test = speech.split(loaded, self.config.held_out, None, 0)
        part = test if test is not None else train
        x, lengths, y = self.tensors(self.frames(part.paths), part.labels)
        logits = self.logits(x, lengths)
        return {
            "accuracy": (logits.argmax(1) == y).float().mean().item(),
            "loss": F.cross_entropy(logits, y).item(),
            "recordings": len(part),
        }

    # --- the report --------------------------------------------------------------------------

    def _finish(self, run, result, train_part, test, counts, train_frames) -> SpeechReport:
        """The report of a finished training: the test scores, per speaker, the confusion
        matrix and the baselines; with a run folder, metrics.json, figures and report.html."""
        scored, per_speaker, baselines = None, {}, {}
        if test is not None and run.main:
            frames = self.frames(test.paths)
            x, lengths, y = self.tensors(frames, test.labels)
            logits = self.logits(x, lengths)
            scored = class_scores(logits, y)
            right = (logits.argmax(1) == y).numpy()
            speakers = np.array(test.speakers)
            for name in sorted(set(test.speakers) - {""}):
                per_speaker[name] = float(right[speakers == name].mean())
            train_frames = train_frames or self.frames(train_part.paths)
            baselines = {
                "majority class": most_frequent(train_part.labels, test.labels),
                "logistic regression on mean and std of the frames": pooled_frames(
                    train_frames, train_part.labels, frames, test.labels
                ),
            }
        confusion = scored.pop("confusion") if scored else []
        report = SpeechReport(
            **run.outcome(result), test=scored, per_speaker=per_speaker, confusion=confusion,
            baselines=baselines, recordings=counts, protocol=self.protocol(),
        )  # fmt: skip
        if run.writes:
            figures = self._figures(run.path, report, test) if test is not None else {}
            metrics = {
                "test": report.test, "protocol": report.protocol, "recordings": counts,
                "per_speaker": per_speaker, "baselines": baselines, "words": self.names,
                "confusion": confusion, "cpu_seconds": time.process_time() - self._cpu,
                "figures": figures, "processes": run.world,
            }  # fmt: skip
            if test is not None:
                listened = self.stream_test(test)
                metrics["stream"] = listened
                speakers = [list(row) for row in per_speaker.items()]
                stream = [list(row) for row in listened.items()]
                metrics["examples"] = [
                    {"columns": ["speaker", "test accuracy"], "rows": speakers},
                    {"columns": ["the test words joined with silence and noise", "heard"],
                     "rows": stream},
                ]  # fmt: skip
                run.say(
                    f"stream of {listened['words']} test words: digit error rate "
                    f"{listened['word_error_rate']:.4f}, real-time factor "
                    f"{listened['real_time_factor']:.5f}, {listened['us_per_frame']:.0f} µs "
                    "per 10 ms frame"
                )
            run.finish(report, metrics)
        return report

    def _figures(self, folder: Path, report: SpeechReport, test) -> dict[str, str]:
        """confusion.png and gates.png (spectrograms and update gates of a few test words)."""
        name = "test recordings" if self.config.held_out is None else self.protocol()
        accuracy = report.test["accuracy"]
        picture = figures.confusion_matrix(
            report.confusion, self.names, title=f"{name}: accuracy {accuracy:.4f}"
        )
        figures.save_png(picture, folder / "confusion.png")
        shown = [int(np.flatnonzero(test.labels == k)[0]) for k in np.unique(test.labels)][:4]
        words = []
        for i in shown:
            frames = self.frames([test.paths[i]])[0]  # (T, M)
            gates = record_gates(self.model.net.rnn, frames)
            p = self.probabilities([test.paths[i]])[0]
            title = f"{test.paths[i].name}: {self.names[int(p.argmax())]} ({p.max():.2f})"
            words.append((title, frames, gates.top[0].z))
        figures.save_png(figures.spectrogram_gates(words, self.config.hop_ms), folder / "gates.png")
        return {
            "confusion.png": "The confusion matrix of the test recordings: rows the true word, "
            "columns the predicted one, each cell's count written in it.",
            "gates.png": "A few test words: their normalized frames (log-mel bands, or their "
            "cepstra; top) and the update gate z of every unit of the top GRU layer (bottom); "
            "the title gives the file, the predicted word and its probability.",
        }

    # --- streaming ---------------------------------------------------------------------------

    def stream(self) -> listening.WordStream:
        """A `gru.tasks.listening.WordStream` of this model: audio in, the word's logits
        after every frame."""
        self._loaded("stream")
        net = self.model.net
        return listening.WordStream(
            self.config.framing, self.normalizer(), net.rnn, net.head, self.config.pooling
        )

    def warm_up(self) -> None:
        """Stream a few frames of silence, so the streaming step is compiled before a clock
        starts (its first use compiles it)."""
        self.stream().push(np.zeros(self.config.rate // 10, dtype=np.float32))

    def listener(self) -> listening.Listener:
        """A `gru.tasks.listening.Listener` of this model: the words of a long stream."""
        return listening.Listener(self.stream(), self.names)

    def listen(self, samples: np.ndarray, *, chunk: int | None = None) -> list[dict]:
        """The words heard in ``samples`` (S,) at the model's rate, fed ``chunk`` samples at a
        time (default 20 ms) as a microphone gives them: [{"time" (s), "word", "probability"}]
        (`gru.tasks.listening.Listener`)."""
        chunk = chunk or 2 * self.config.framing.hop
        return listening.listen(self.listener(), samples, chunk)

    def stream_test(self, test: speech.SpeechData, *, seed: int = 0) -> dict:
        """Listen to the ``test`` recordings joined into one stream (`listening.stream_test`):
        the word error rate, the real-time factor and the microseconds per frame."""
        self.warm_up()
        framing, labels = self.config.framing, test.labels
        return listening.stream_test(self.listen, self.names, test.paths, labels, framing, seed)
