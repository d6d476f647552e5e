"""Recognition as audio arrives: `WordStream` reads one word frame by frame with a GRU's
streaming step, `Listener` finds the words in a long stream and reads each with a
`WordStream`, `joined` builds such a stream from recordings (`gru.tasks.speech`).

Shapes: S samples, k frames, M mel bands, H hidden units, K words.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from gru.data import speech
from gru.nn import GRU
from gru.tasks.evaluation import edit_distance

__all__ = ["Listener", "WordStream", "joined", "listen", "stream_test"]


def joined(paths, rate: int, seed: int = 0) -> np.ndarray:
    """The recordings ``paths`` joined into one stream (S,) at ``rate``: 0.3-0.8 s of silence
    before each and 0.8 s after the last, and white noise 40 dB below the speech's mean power
    throughout."""
    generator = np.random.default_rng(seed)
    pieces = []
    for path in paths:
        pieces.append(np.zeros(int(generator.uniform(0.3, 0.8) * rate), dtype=np.float32))
        pieces.append(speech.read_audio(path, rate))
    pieces.append(np.zeros(int(0.8 * rate), dtype=np.float32))
    audio = np.concatenate(pieces)  # (S,)
    level = np.sqrt(np.mean(np.concatenate(pieces[1::2]) ** 2))
    return audio + (level * 0.01 * generator.standard_normal(len(audio))).astype(np.float32)


def listen(listener: Listener, samples: np.ndarray, chunk: int) -> list[dict]:
    """The words ``listener`` hears in ``samples`` (S,), fed ``chunk`` samples at a time."""
    heard = []
    for start in range(0, len(samples), chunk):
        heard += listener.push(samples[start : start + chunk])
    return heard + listener.end()


def stream_test(listen, names, paths, labels, framing: speech.Framing, seed: int = 0) -> dict:
    """``listen(samples)`` (a recognizer's) on the recordings ``paths`` `joined` into one
    stream: the word error rate of the words heard against the true ``labels`` (edits / words),
    the real-time factor (compute seconds per second of audio, features included) and the
    microseconds per frame, by the wall clock and in CPU time (which a busy machine does not
    inflate)."""
    audio = joined(paths, framing.rate, seed)
    started, cpu = time.perf_counter(), time.process_time()
    heard = listen(audio)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    truth = [names[k] for k in labels]
    errors = edit_distance(truth, [h["word"] for h in heard])
    frames = 1 + (len(audio) - framing.n_fft) // framing.hop
    return {
        "words": len(truth), "heard": len(heard), "errors": errors,
        "word_error_rate": errors / len(truth), "audio_seconds": len(audio) / framing.rate,
        "real_time_factor": seconds / (len(audio) / framing.rate),
        "us_per_frame": 1e6 * seconds / frames, "threads": torch.get_num_threads(),
        "cpu_real_time_factor": cpu / (len(audio) / framing.rate),
        "cpu_us_per_frame": 1e6 * cpu / frames,
    }  # fmt: skip


class WordStream:
    """One word, frame by frame: ``push(samples)`` computes the frames those samples complete
    (`gru.data.speech.FrameStream`), normalizes them causally, advances the GRU one step per
    frame (`gru.GRU.stream`) and returns the head's logits (k, K) after each, float32: what the
    whole-recording forward gives for the recording cut at that frame. ``reset()`` starts a
    new word."""

    def __init__(
        self, framing: speech.Framing, normalize: speech.Normalizer, rnn: GRU, head: nn.Linear,
        pooling: str,
    ) -> None:  # fmt: skip
        self.frames = speech.FrameStream(framing)
        self.normalize = normalize
        self.gru = rnn.stream(batch_size=1)
        self.head_w = head.weight.detach().float().numpy()  # (K, H)
        self.head_b = head.bias.detach().float().numpy()  # (K,)
        self.mean = pooling == "mean"
        self.reset()

    def reset(self) -> None:
        self.frames.reset()
        self.restart()

    def restart(self) -> None:
        """A new word from the next frame on (the audio not yet framed is kept)."""
        self.normalize.reset()
        self.gru.reset()
        self.total = np.zeros(self.head_w.shape[1], dtype=np.float32)  # (H,)
        self.count = 0

    def push(self, samples: np.ndarray) -> np.ndarray:
        return self.step(self.frames.push(samples))

    def step(self, raw: np.ndarray) -> np.ndarray:
        """The logits (k, K) after each of the log-mel frames ``raw`` (k, M), not normalized."""
        x = self.normalize(raw)  # (k, M)
        if len(x) == 1 and not self.mean:  # streaming: a frame at a time
            return (self.head_w @ self.gru(x[0]) + self.head_b)[None]
        out = np.empty((len(x), len(self.head_b)), dtype=np.float32)  # (k, K)
        for t in range(len(x)):
            h = self.gru(x[t])  # (H,), overwritten by the next step
            if self.mean:
                self.total += h
                self.count += 1
                h = self.total / self.count
            out[t] = self.head_w @ h + self.head_b
        return out


class Listener:
    """Words in a long stream of audio: an energy detector finds where each word starts and
    ends, and a `WordStream` reads it from its start (and the ``PREROLL`` frames before it).

    A frame is speech when its mean mel power is ``MARGIN_DB`` above the noise floor, which
    follows the quietest frames (rising ``RISE_DB`` a frame so it recovers from a dip); a word
    ends after ``HANG`` frames without speech and counts if it held ``SHORTEST`` speech
    frames; its word is the head's decision at its last speech frame."""

    # Chosen on a stream of FSDD training takes 5-9 (not the test takes): the recordings are
    # trimmed to their speech, so a word read from its first loud frame (PREROLL 0) matches
    # what the model learned from; 3 dB above the floor found every word there (1 error in 250).
    MARGIN_DB, RISE_DB, HANG, PREROLL, SHORTEST = 3.0, 0.05, 20, 0, 8

    def __init__(self, words: WordStream, names: list[str]) -> None:
        self.words = words
        self.names, self.hop_s = names, words.frames.framing.hop_ms / 1000
        self.floor, self.t, self.start, self.quiet, self.spoken = None, 0, None, 0, 0
        self.recent: list[np.ndarray] = []  # the last PREROLL frames, (M,) each
        self.decision = None
        self.trace: list[dict] | None = None  # a list: every frame's running decision joins it

    def push(self, samples: np.ndarray) -> list[dict]:
        frames = self.words.frames.push(samples)  # (k, M)
        # (k,) dB of the mean mel power (a sum and a division: np.mean's overhead is a frame's)
        levels = 10 * np.log10(np.exp(frames).sum(axis=1) / frames.shape[1])
        heard = []
        for frame, level in zip(frames, levels.tolist(), strict=True):
            heard += self._frame(frame, level)
        return heard

    def end(self) -> list[dict]:
        return self._close() if self.start is not None else []

    def _frame(self, frame: np.ndarray, level: float) -> list[dict]:
        self.floor = level if self.floor is None else min(level, self.floor + self.RISE_DB)
        speaking = level > self.floor + self.MARGIN_DB
        heard = []
        if self.start is None and speaking:
            self.words.restart()
            self.start, self.quiet, self.spoken = self.t - len(self.recent), 0, 0
            if self.recent:
                self.words.step(np.stack(self.recent))
        if self.start is not None:
            logits = self.words.step(frame[None])[0]  # (K,)
            if self.trace is not None:
                self.trace.append({"time": self.t * self.hop_s, **self._word(logits)})
            if speaking:
                self.quiet, self.spoken, self.decision = 0, self.spoken + 1, logits
            else:
                self.quiet += 1
                if self.quiet >= self.HANG:
                    heard = self._close()
        self.recent = [*self.recent, frame][len(self.recent) + 1 - self.PREROLL :]
        self.t += 1
        return heard

    def _close(self) -> list[dict]:
        start, self.start = self.start, None
        if self.spoken < self.SHORTEST:
            return []
        return [{"time": start * self.hop_s, **self._word(self.decision)}]

    def _word(self, logits: np.ndarray) -> dict:
        """{"word", "probability"} of the likeliest word of ``logits`` (K,)."""
        p = np.exp(logits - logits.max())
        k = int(p.argmax())
        return {"word": self.names[k], "probability": float(p[k] / p.sum())}
