"""Text generation: a character-level GRU language model, trained on one long text and sampled
one character at a time.

The text's first 90% trains, the last 10% validates (as Tiny Shakespeare's standard split).
Training is truncated back-propagation through time: the training text is cut into B
contiguous streams read in parallel, chunk after chunk of ``seq_len`` characters, and the
hidden state at the end of a chunk is carried into the next chunk of the same stream
(`gru.training.fit` with ``carry=True``), so the model learns from context longer than a chunk
while gradients stop at the chunk's start. The validation loss is the mean negative
log-likelihood per character, in nats, of the validation text read the same way (a few long
streams, the state carried throughout).

Baselines: the validation loss of character n-gram models fitted on the training text with
add-one smoothing (`gru.tasks.baselines.ngram_loss`): uniform (log V), unigram and bigram, on
the same characters.

Generation feeds the prompt and then each sampled character through `gru.GRU.stream`: one
GRU step per character, no re-reading of the text so far.

    lm = TextGenerator()                    # settings by name: TextGenerator(hidden_size=256)
    report = lm.fit("tinyshakespeare.txt", out="runs/shakespeare")
    lm.generate("ROMEO:", length=500, temperature=0.8, top_k=None, seed=0)

Shapes: N characters, B streams, T = seq_len, V vocabulary size, E embedding size,
H hidden units, L layers.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gru.models import CharLM, build
from gru.tasks import runs
from gru.tasks.baselines import ngram_loss
from gru.training import TrainConfig

__all__ = ["TextGenConfig", "TextGenReport", "TextGenerator", "ngram_loss", "read_text"]

VALIDATION_STREAMS = 8  # the validation text is read as this many contiguous streams
SAMPLE_PROMPT = "ROMEO:"
MAX_LENGTH = 1_000_000
"""The most characters one `TextGenerator.generate` call writes (about a minute on one core)."""


def read_text(path: str | os.PathLike) -> str:
    """The contents of a UTF-8 text file.

    Raises FileNotFoundError if it does not exist and ValueError if it is empty or not UTF-8
    (naming the offset of the first byte that is not).
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"text: {str(path)!r} is a folder; give the text file")
    if not path.is_file():
        raise FileNotFoundError(f"text: {str(path)!r} does not exist")
    raw = path.read_bytes()
    if not raw:
        raise ValueError(f"text: {str(path)!r} is empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"text: {str(path)!r} is not UTF-8 (byte {error.start} is {raw[error.start]:#04x}); "
            "convert it, e.g. iconv -f latin1 -t utf-8"
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]  # a byte-order mark is not part of the text
    if not text.strip():
        raise ValueError(f"text: {str(path)!r} holds only white space")
    return text


@dataclass
class TextGenConfig(runs.TaskConfig):
    """Everything that decides a character model: its size, the chunks it learns from, and
    how it trains. ``limit`` keeps only the first that many characters (quick runs)."""

    embedding_dim: int = 64
    hidden_size: int = 512
    num_layers: int = 2
    dropout: float = 0.1
    seq_len: int = 128
    validation_split: float = 0.1
    limit: int | None = None
    train: TrainConfig = field(
        default_factory=runs.least_val_loss(
            epochs=8, batch_size=32, lr=3e-3, warmup=0.02, clip_grad_norm=1.0
        )
    )

    def check(self) -> None:
        """Raise ValueError naming the first setting out of range."""
        names = ("embedding_dim", "hidden_size", "num_layers", "seq_len")
        runs.check_ints("TextGenConfig", self, dict.fromkeys(names, 1))
        runs.check_numbers("TextGenConfig", self, ("validation_split", "dropout"))
        if not 0.0 < self.validation_split < 1.0:
            raise ValueError(
                "TextGenConfig: validation_split must be a fraction in (0, 1), "
                f"got {self.validation_split}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"TextGenConfig: dropout must be in [0, 1), got {self.dropout}")
        if self.limit is not None and self.limit < 2:
            raise ValueError(f"TextGenConfig: limit must be at least 2, got {self.limit}")
        self.train.check()


@dataclass
class TextGenReport(runs.RunReport):
    """The outcome of `TextGenerator.fit`: per-epoch ``history`` (train_loss, val_loss in nats
    per character, ...), the best epoch's validation loss, a ``sample`` generated from the
    kept weights, character counts and seconds."""

    val_loss: float
    sample: str
    characters: dict[str, int]


def _chunks(ids: Tensor, streams: int, seq_len: int) -> tuple[Tensor, Tensor]:
    """Cut ids (N,) into ``streams`` contiguous streams read ``seq_len`` at a time.

    Returns x, y (S·streams, T): row s·streams + k is chunk s of stream k (the layout of
    `gru.training.fit`'s carry=True), y the same characters one position later.
    """
    per_stream = (len(ids) - 1) // streams
    S = per_stream // seq_len
    if S < 1:
        raise ValueError(
            f"text: {len(ids)} training characters are too few for {streams} streams of "
            f"seq_len={seq_len}; it needs at least {streams * seq_len + 1}"
        )
    used = S * seq_len
    starts = torch.arange(streams) * per_stream  # (B,)
    rows = starts.unsqueeze(1) + torch.arange(used)  # (B, S·T)
    x = ids[rows].view(streams, S, seq_len).transpose(0, 1).reshape(S * streams, seq_len)
    y = ids[rows + 1].view(streams, S, seq_len).transpose(0, 1).reshape(S * streams, seq_len)
    return x, y


def _streams(ids: Tensor, streams: int) -> tuple[Tensor, Tensor]:
    """Cut ids (N,) into ``streams`` contiguous streams: x, y (B, N // B − …) where y holds
    each character of x's stream one position later, the characters a loss scores."""
    per_stream = (len(ids) - 1) // streams
    rows = torch.arange(streams).unsqueeze(1) * per_stream + torch.arange(per_stream)
    return ids[rows], ids[rows + 1]  # (B, N / B) each


def _cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """Mean negative log-likelihood per character: logits (B, T, V), target (B, T)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))


class TextGenerator(runs.Task):
    """A character-level GRU language model: fit on a text, generate text like it.

    Settings by name (`TextGenConfig` and `TrainConfig` fields) or a whole ``config``;
    ``backend`` is passed to `gru.GRU` (speed only).
    """

    task = "textgen"
    config_class = TextGenConfig
    model: CharLM | None = None
    report: TextGenReport | None = None

    def __init__(self, config: TextGenConfig | None = None, **options) -> None:
        super().__init__(config, **options)
        self.vocabulary: list[str] | None = None
        self._index: dict[str, int] = {}

    def _build_model(self) -> CharLM:
        c = self.config
        sizes = (len(self.vocabulary), c.embedding_dim, c.hidden_size, c.num_layers)
        make = partial(CharLM, *sizes, dropout=c.dropout, backend=self.backend)
        return build(make, "TextGenerator", "hidden_size, num_layers or embedding_dim")

    def _set_vocabulary(self, vocabulary: list[str]) -> None:
        self.vocabulary = vocabulary
        self._index = {ch: i for i, ch in enumerate(vocabulary)}

    def encode(self, text: str) -> Tensor:
        """Character ids (N,) int64 of ``text``; ValueError naming any unknown character."""
        unknown = sorted({ch for ch in text if ch not in self._index})
        if unknown:
            shown = ", ".join(repr(ch) for ch in unknown[:10])
            raise ValueError(
                f"the text has {len(unknown)} character{'s' if len(unknown) > 1 else ''} the "
                f"model has never seen: {shown}{', ...' if len(unknown) > 10 else ''} (it knows "
                f"{len(self.vocabulary)}: {''.join(self.vocabulary)!r})"
            )
        return torch.tensor([self._index[ch] for ch in text], dtype=torch.int64)

    @torch.no_grad()
    def loss(self, ids: Tensor, *, streams: int = VALIDATION_STREAMS, chunk: int = 512) -> float:
        """Mean negative log-likelihood per character (nats) of ids (N,), predicting each
        character from all before it in its stream: the ids are cut into ``streams``
        contiguous streams read ``chunk`` steps at a time with the state carried."""
        model = self.model
        was_training = model.training
        model.eval()
        x, y = _streams(ids, streams)  # (B, N / B) each
        per_stream = x.shape[1]
        total, state = 0.0, None
        for start in range(0, per_stream, chunk):
            logits, state = model(x[:, start : start + chunk], state)
            target = y[:, start : start + chunk]
            total += float(F.cross_entropy(logits.transpose(1, 2), target, reduction="sum"))
        model.train(was_training)
        return total / (streams * per_stream)

    # --- fit ---------------------------------------------------------------------------------

    def fit(
        self,
        text: str | os.PathLike,
        *,
        out: str | os.PathLike | None = None,
        resume: bool = False,
        checkpoint_every: int | None = None,
        quiet: bool = False,
        device: str = "cpu",
        log=print,
    ) -> TextGenReport:
        """Train on the text file ``text``; report the validation loss and a sample.

        With ``out`` the run folder is written there (it must not exist yet or be empty,
        unless ``resume`` continues it).
        """
        c = self.config
        c.check()
        run = self.run_folder(out, resume, checkpoint_every, device, quiet, log)
        source = os.path.abspath(str(text))
        run.check(c.to_dict(), {"source": source})
        content = read_text(text)
        whole = len(content)
        if c.limit is not None:
            content = content[: c.limit]
        train_ids, val_ids = self._split(content, text)
        streams = c.train.batch_size * run.world
        x, y = _chunks(train_ids, streams, c.seq_len)
        characters = {"train": len(train_ids), "validation": len(val_ids)}
        run.say(
            f"text: {source} ({characters['train']:,} training / {characters['validation']:,} "
            f"validation characters, {len(self.vocabulary)} distinct); "
            f"{len(x) // streams} chunks of {c.seq_len} per stream"
        )

        torch.manual_seed(c.train.seed)
        self.model = self._build_model()
        data = {"source": source, "characters": characters}
        run.start(c.to_dict(), data, vocabulary=self.vocabulary)
        evaluate = lambda model: self._validation(val_ids)
        result = run.train(
            self.model, _cross_entropy, (x, y), c.train, evaluate=evaluate, carry=True
        )
        self.model.eval()
        best = result.history[result.best_epoch - 1]
        prompt = SAMPLE_PROMPT if all(ch in self._index for ch in SAMPLE_PROMPT) else content[0]
        sample = self.generate(prompt, length=500, temperature=0.8, seed=0)
        self.report = TextGenReport(
            **run.outcome(result),
            val_loss=best["val_loss"],
            sample=prompt + sample,
            characters=characters,
        )
        if run.writes:
            baselines = self._baselines(train_ids, val_ids)
            read = {"source": source, "characters read": len(content), "whole": whole}
            read.update(streams=streams, chunks=len(x) // streams)
            run.finish(self.report, self._metrics(prompt, sample, baselines, read))
        return self.report

    def _validation(self, val_ids: Tensor) -> dict[str, float]:
        val = self.loss(val_ids)
        return {"val_loss": val, "val_bits_per_char": val / math.log(2)}

    def _split(self, content: str, text) -> tuple[Tensor, Tensor]:
        """The ids (N,) of the text's first and last part (``validation_split``), its
        vocabulary set from the characters it holds."""
        c = self.config
        self._set_vocabulary(sorted(set(content)))
        ids = self.encode(content)
        n_train = int(len(ids) * (1 - c.validation_split))
        if len(ids) - n_train < VALIDATION_STREAMS + 1:
            raise ValueError(
                f"text: {str(text)!r} has {len(ids)} characters, too few to keep "
                f"{c.validation_split:.0%} for validation; it needs at least "
                f"{math.ceil((VALIDATION_STREAMS + 1) / c.validation_split)}"
            )
        return ids[:n_train], ids[n_train:]

    def _baselines(self, train_ids: Tensor, val_ids: Tensor) -> dict[str, dict[str, float]]:
        """The n-gram models' loss on the characters the validation loss scores."""
        context, target = _streams(val_ids, VALIDATION_STREAMS)
        baselines = {}
        for name, n in (("uniform", 0), ("unigram", 1), ("bigram", 2)):
            value = ngram_loss(train_ids, context, target, len(self.vocabulary), n)
            baselines[name] = {"loss": value, "bits_per_char": value / math.log(2)}
        return baselines

    def _metrics(self, prompt: str, sample: str, baselines: dict, read: dict) -> dict:
        """metrics.json of a finished run; ``read`` says what was read: the source, how many
        characters of how many ("whole"), in how many streams of how many chunks."""
        c, report = self.config, self.report
        notes = [
            "Text generation has no test split: the result is the loss on the validation text "
            f"(its last {c.validation_split:.0%}), in nats per character; the baselines are "
            "character n-gram models of the training text (add-one smoothing) scored on the "
            "same characters."
        ]
        if read["characters read"] < read["whole"]:
            notes.append(
                f"Only the first {read['characters read']:,} of the text's {read['whole']:,} "
                "characters were read (limit)."
            )
        return {
            "task": self.task,
            "test": None,
            "validation": {
                "loss": report.val_loss,
                "bits_per_char": report.val_loss / math.log(2),
            },
            "baselines": baselines,
            "samples": [{"prompt": prompt, "temperature": 0.8, "seed": 0, "text": sample}],
            "examples": {
                "columns": ["prompt and generated text"],
                "rows": [[prompt + sample]],
                "caption": f"The model's continuation of {prompt!r} by 500 characters "
                "(temperature 0.8, seed 0), from the kept weights.",
            },
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "data": {
                "source": read["source"],
                "characters read": read["characters read"],
                "training characters": report.characters["train"],
                "validation characters": report.characters["validation"],
                "distinct characters (V)": len(self.vocabulary),
                "characters": repr("".join(self.vocabulary)),
                "streams × chunks × seq_len": f"{read['streams']} × {read['chunks']} × {c.seq_len}",
            },
            "notes": notes,
        }

    # --- load and generate -------------------------------------------------------------------

    def _restore(self, stored: dict, run_dir: Path) -> None:
        vocabulary = stored["vocabulary"]
        if not isinstance(vocabulary, list) or not all(
            isinstance(ch, str) and len(ch) == 1 for ch in vocabulary
        ):
            raise ValueError(
                f"run: the vocabulary in config.json of {str(run_dir)!r} is not a list of "
                "characters (was it altered?)"
            )
        self._set_vocabulary(vocabulary)

    def _stream(self):
        """A function ``step(id) -> logits (V,) float64`` that feeds one character through the
        GRU's streaming step (`gru.GRU.stream`) and returns the logits of the next one."""
        model = self.model.eval()
        embedding = model.embedding.weight.detach().float().numpy()  # (V, E)
        head_w = model.head.weight.detach().float().numpy()  # (V, H)
        head_b = model.head.bias.detach().float().numpy()  # (V,)
        stream = model.rnn.stream(batch_size=1)

        def step(i: int) -> np.ndarray:
            h = stream(embedding[i])  # (H,), overwritten by the next step
            return (head_w @ h + head_b).astype(np.float64)  # (V,)

        return step

    def next_logits(self, prompt: str) -> np.ndarray:
        """The logits (V,) of the character after ``prompt``, one streaming step per character
        (what `generate` samples its first character from, before the temperature)."""
        if self.model is None:
            raise ValueError("TextGenerator.next_logits: fit or load a model first")
        if not isinstance(prompt, str) or not prompt:
            raise ValueError("TextGenerator.next_logits: prompt must be a non-empty string")
        try:
            ids = self.encode(prompt).tolist()
        except ValueError as error:
            raise ValueError(f"TextGenerator.next_logits: prompt: {error}") from None
        step = self._stream()
        for i in ids:
            logits = step(i)
        return logits

    def generate(
        self,
        prompt: str,
        length: int = 500,
        *,
        temperature: float = 0.8,
        top_k: int | None = None,
        seed: int | None = None,
        include_prompt: bool = False,
    ) -> str:
        """The ``length`` characters the model writes after ``prompt``; with
        ``include_prompt`` the prompt followed by them (what ``gru generate`` prints).

        The prompt's characters and then each sampled one go through the GRU's streaming step
        (`gru.GRU.stream`), one step per character. Each next character is drawn from
        softmax(logits / temperature), restricted to the ``top_k`` most likely when given;
        temperature 0 takes the most likely one. The same ``seed`` gives the same text.
        """
        if self.model is None:
            raise ValueError("TextGenerator.generate: fit or load a model first")
        if not isinstance(prompt, str) or not prompt:
            raise ValueError("TextGenerator.generate: prompt must be a non-empty string")
        if isinstance(length, bool) or not isinstance(length, int) or not 0 <= length <= MAX_LENGTH:
            raise ValueError(  # 10**12 was accepted and would have run for days
                f"TextGenerator.generate: length must be an int in [0, {MAX_LENGTH:,}], got "
                f"{length!r}"
            )
        if not isinstance(temperature, int | float) or not 0 <= temperature < float("inf"):
            raise ValueError(  # inf would draw every character alike, whatever the model says
                f"TextGenerator.generate: temperature must be a finite number ≥ 0, got "
                f"{temperature!r}"
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"TextGenerator.generate: seed must be an int ≥ 0, got {seed!r}")
        V = len(self.vocabulary)
        if top_k is not None and not (isinstance(top_k, int) and 1 <= top_k):
            raise ValueError(f"TextGenerator.generate: top_k must be a positive int, got {top_k!r}")
        try:
            ids = self.encode(prompt).tolist()
        except ValueError as error:
            raise ValueError(f"TextGenerator.generate: prompt: {error}") from None
        step = self._stream()
        rng = np.random.default_rng(seed)
        for i in ids[:-1]:
            step(i)
        current, out = ids[-1], []
        for _ in range(length):
            logits = step(current)  # (V,)
            if temperature == 0:
                current = int(np.argmax(logits))
            else:
                logits = logits / temperature
                if top_k is not None and top_k < V:
                    cut = np.partition(logits, V - top_k)[V - top_k]
                    logits = np.where(logits >= cut, logits, -np.inf)
                p = np.exp(logits - logits.max())
                current = int(rng.choice(V, p=p / p.sum()))
            out.append(self.vocabulary[current])
        return (prompt if include_prompt else "") + "".join(out)

    def predict(self, prompt: str) -> dict[str, float]:
        """P(next character | ``prompt``) for each character of the vocabulary: the softmax
        of `next_logits`, as a dict, likeliest first."""
        logits = self.next_logits(prompt)
        p = np.exp(logits - logits.max())
        p /= p.sum()
        order = np.argsort(-p, kind="stable")
        return {self.vocabulary[i]: float(p[i]) for i in order}

    def evaluate(self, text: str | os.PathLike) -> dict[str, float]:
        """The loss of the model on a UTF-8 text file ``text`` (`loss`: nats per character,
        each predicted from all before it in its stream), in bits per character too; the
        text may hold only characters the model knows."""
        if self.model is None:
            raise ValueError("TextGenerator.evaluate: fit or load a model first")
        ids = self.encode(read_text(text))
        if len(ids) < VALIDATION_STREAMS + 1:
            raise ValueError(
                f"text: {str(text)!r} has {len(ids)} characters; the loss reads "
                f"{VALIDATION_STREAMS} streams, so it needs at least {VALIDATION_STREAMS + 1}"
            )
        loss = self.loss(ids)
        return {"loss": loss, "bits_per_char": loss / math.log(2), "characters": len(ids)}
