"""Translation: a GRU encoder–decoder with additive attention (`gru.seq2seq`) on sentence
pairs, scored with sacreBLEU.

The data is a folder of SPLIT.LANG(.gz) files (Multi30k's layout: ``train``, ``val`` and the
test split ``test_2016_flickr``) or a TSV file of pairs, whose last 5% validate (no test split)
(`gru.data.translation`). One sentencepiece vocabulary of subwords is learned on the training
pairs of both languages at fit time and kept in the run folder (its bytes checksummed in
config.json). Training is teacher forcing with label smoothing, batches of similar lengths;
after every epoch the validation pairs are translated greedily and their BLEU decides the
epoch whose weights are kept. At the end the test pairs are translated greedily and by beam
search: cased detokenized BLEU (sacreBLEU's default, the standard), lowercased BLEU on
sacreBLEU's 13a tokens (close to the lowercased tokenized BLEU of tutorials) and chrF.

    translator = Translator(source="de", target="en")     # settings by name
    report = translator.fit("multi30k", out="runs/de-en")
    translator.translate(["Ein Mann fährt Fahrrad."])    # beam search: ["A man rides a bike."]

Shapes: N pairs, B batch, S source subwords, T target subwords.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch

from gru import seq2seq
from gru._extras import require
from gru.data import translation
from gru.data.arrays import Sequences
from gru.models import build
from gru.tasks import runs
from gru.training import TrainConfig

__all__ = ["PRESETS", "TranslateConfig", "TranslateReport", "Translator", "scores"]

PRESETS = ("bahdanau", "cho2014")
"""bahdanau: attention over the encoder's outputs; cho2014: none (a fixed summary context)."""
SUBWORDS_FILE = "subwords.model"
VALIDATION_SHARE = 0.05  # of a TSV file's pairs, its last ones
EXAMPLES = 12  # test translations shown beside their references
HEATMAPS = 3  # sentences whose attention the report draws
# Published scores on Multi30k de→en test_2016_flickr (bentrevett/pytorch-seq2seq, GPU, 10
# epochs, BLEU on lowercased spaCy tokens): the baselines of a run on that test.
ANCHOR_TEST = ("de", "en", "test_2016_flickr")
ANCHORS = {
    "PyTorch tutorial, bidirectional GRU + attention (GPU)": 28.3,
    "PyTorch tutorial, GRU encoder–decoder without attention (GPU)": 20.6,
}
# The default training: a cosine schedule after a short warm-up, the epoch of best validation
# BLEU kept.
BEST_BLEU = {
    "schedule": "cosine",
    "warmup": 0.03,
    "clip_grad_norm": 1.0,
    "monitor": "val_bleu",
    "mode": "max",
    "restore_best": True,
}


def scores(hypotheses: list[str], references: list[str] | list[list[str]]) -> dict[str, float]:
    """sacreBLEU's scores of detokenized ``hypotheses`` against one reference each (a list of
    strings) or several (a list of reference streams, each a list as long as the
    hypotheses): bleu (cased, 13a tokens, the standard signature), bleu_lowercase (lowercased,
    13a tokens) and chrf (chrF2)."""
    sacrebleu = require("sacrebleu", "translate", "BLEU scores")
    refs = [references] if all(isinstance(r, str) for r in references) else references
    return {
        "bleu": sacrebleu.corpus_bleu(hypotheses, refs).score,
        "bleu_lowercase": sacrebleu.corpus_bleu(hypotheses, refs, lowercase=True).score,
        "chrf": sacrebleu.corpus_chrf(hypotheses, refs).score,
    }


@dataclass
class TranslateConfig(runs.TaskConfig):
    """Everything that decides a translation model: the languages, the subwords, the sizes,
    decoding and training. ``limit`` keeps only the first that many pairs of each split."""

    source: str = "de"
    target: str = "en"
    preset: str = "bahdanau"
    vocab_size: int = 8000
    embedding_dim: int = 256
    encoder_size: int = 256
    encoder_layers: int = 2
    decoder_size: int = 384
    attention_size: int = 256
    dropout: float = 0.25
    label_smoothing: float = 0.1
    max_tokens: int = translation.MAX_TOKENS
    beam: int = 5
    length_penalty: float = 1.0
    test_split: str = "test_2016_flickr"
    limit: int | None = None
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(**BEST_BLEU, epochs=6, batch_size=128, lr=2e-3)
    )

    def check(self) -> None:
        """Raise ValueError naming the first setting out of range."""
        names = ("vocab_size", "embedding_dim", "encoder_size", "encoder_layers")
        names += ("decoder_size", "attention_size", "max_tokens", "beam")
        runs.check_ints("TranslateConfig", self, dict.fromkeys(names, 1))
        runs.check_numbers("TranslateConfig", self, ("dropout", "label_smoothing"))
        translation.check_language(self.source, "source")
        translation.check_language(self.target, "target")
        if self.source == self.target:
            raise ValueError(f"TranslateConfig: source and target are both {self.source!r}")
        if self.preset not in PRESETS:
            raise ValueError(
                f"TranslateConfig: preset must be one of {PRESETS}, got {self.preset!r}"
            )
        if not 0.0 <= self.dropout < 1.0 or not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError("TranslateConfig: dropout and label_smoothing must be in [0, 1)")
        if self.vocab_size < 16:
            raise ValueError(
                f"TranslateConfig: vocab_size must be at least 16, got {self.vocab_size}"
            )
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit < 2):
            raise ValueError(f"TranslateConfig: limit must be an int ≥ 2, got {self.limit!r}")
        self.train.check()


@dataclass
class TranslateReport(runs.RunReport):
    """The outcome of `Translator.fit`: the per-epoch ``history`` (val_bleu, ...), the test
    scores of greedy and beam-search translations, the pairs read and seconds."""

    test: dict[str, dict[str, float]]
    pairs: dict[str, int]


class Pairs:
    """Encoded pairs as `gru.training.fit` indexes them: src, src_lengths, tgt_in, tgt_out."""

    def __init__(self, src: list[list[int]], tgt: list[list[int]]) -> None:
        as_tensor = partial(torch.tensor, dtype=torch.int64)
        self.src = Sequences([as_tensor(s) for s in src])
        self.tgt_in = Sequences([as_tensor([seq2seq.BOS, *t]) for t in tgt])
        self.tgt_out = Sequences([as_tensor([*t, seq2seq.EOS]) for t in tgt])

    def tensors(self) -> tuple:
        return self.src, self.src.lengths, self.tgt_in, self.tgt_out

    def sort_key(self) -> torch.Tensor:
        """Target length first, source length next: batches of similar shapes."""
        return self.tgt_in.lengths * 1000 + self.src.lengths


def read_splits(data, config: TranslateConfig) -> dict[str, list[tuple[str, str]]]:
    """The pairs of each split: train, val and (a folder that has it) test."""
    path = Path(data)
    src, tgt = config.source, config.target
    if path.is_file():
        pairs = translation.read_tsv(path)
        n_val = max(1, round(len(pairs) * VALIDATION_SHARE))
        if len(pairs) - n_val < 1:
            raise ValueError(f"data: {str(path)!r} has {len(pairs)} pairs, too few to split")
        return {"train": pairs[:-n_val], "val": pairs[-n_val:]}
    splits = {"train": translation.read_folder(path, "train", src, tgt)}
    splits["val"] = translation.read_folder(path, "val", src, tgt)
    if translation.language_files(path, config.test_split, src) is not None:
        splits["test"] = translation.read_folder(path, config.test_split, src, tgt)
    return splits


class Translator(runs.Task):
    """A GRU encoder–decoder translating ``source`` into ``target``: fit on sentence pairs,
    translate sentences, evaluate on pairs. Settings by name (`TranslateConfig` and
    `TrainConfig` fields) or a whole ``config``; ``backend`` is passed to `gru.GRU`."""

    task = "translate"
    config_class = TranslateConfig
    model: seq2seq.Seq2Seq | None = None
    report: TranslateReport | None = None

    def __init__(self, config: TranslateConfig | None = None, **options) -> None:
        super().__init__(config, **options)
        self.subwords: translation.Subwords | None = None

    def _build_model(self) -> seq2seq.Seq2Seq:
        c = self.config
        make = partial(
            seq2seq.Seq2Seq, len(self.subwords), c.embedding_dim, c.encoder_size,
            c.encoder_layers, c.decoder_size, c.attention_size,
            attention=c.preset == "bahdanau", dropout=c.dropout, backend=self.backend,
        )  # fmt: skip
        return build(make, "Translator", "vocab_size, embedding_dim or the layer sizes")

    # --- fit ---------------------------------------------------------------------------------

    def fit(
        self,
        data: str | os.PathLike,
        *,
        out: str | os.PathLike | None = None,
        resume: bool = False,
        checkpoint_every: int | None = None,
        quiet: bool = False,
        device: str = "cpu",
        log=print,
    ) -> TranslateReport:
        """Train on the pairs of ``data`` (a folder of SPLIT.LANG(.gz) files or a TSV file);
        report the test scores (the validation scores when there is no test split)."""
        c = self.config
        c.check()
        run = self.run_folder(out, resume, checkpoint_every, device, quiet, log)
        source = os.path.abspath(str(data))
        run.check(c.to_dict(), {"source": source})
        splits = read_splits(data, c)
        if c.limit is not None:
            splits = {name: pairs[: c.limit] for name, pairs in splits.items()}
        started = time.perf_counter()
        sentences = [s for pair in splits["train"] for s in pair]
        self.subwords = translation.Subwords(
            translation.train_subwords(sentences, c.vocab_size, seed=c.train.seed)
        )
        digest = run.write_bytes(SUBWORDS_FILE, self.subwords.bytes)
        train, dropped = self._encode(splits["train"])
        counts = {name: len(pairs) for name, pairs in splits.items()}
        run.say(
            f"data: {source} ({', '.join(f'{n:,} {k}' for k, n in counts.items())} pairs, "
            f"{c.source}→{c.target}); {len(self.subwords):,} subwords learned in "
            f"{time.perf_counter() - started:.1f} s"
            + (
                f"; {dropped} training pairs over {c.max_tokens} subwords left out"
                if dropped
                else ""
            )
        )
        torch.manual_seed(c.train.seed)
        self.model = self._build_model()
        stored = {"source": source, "pairs": counts}
        run.start(c.to_dict(), stored, subwords={"file": SUBWORDS_FILE, "sha256": digest})
        val = splits["val"]
        evaluate = lambda model: self._validation(val)
        loss = partial(seq2seq.sequence_loss, smoothing=c.label_smoothing)
        result = run.train(
            self.model, loss, train.tensors(), c.train, evaluate=evaluate, sort_key=train.sort_key()
        )
        self.model.eval()
        scored = splits.get("test", val)
        test = self._final_scores(scored)
        self.report = TranslateReport(**run.outcome(result), test=test, pairs=counts)
        if run.writes:
            run.finish(self.report, self._metrics(scored, "test" in splits, dropped, run.path))
        return self.report

    def _encode(self, pairs: list[tuple[str, str]]) -> tuple[Pairs, int]:
        """The training pairs as ids, without those longer than ``max_tokens`` (and a count of
        them)."""
        src = self.subwords.encode([s for s, _ in pairs])
        tgt = self.subwords.encode([t for _, t in pairs])
        m = self.config.max_tokens
        kept = [(s, t) for s, t in zip(src, tgt, strict=True) if 0 < len(s) <= m and len(t) <= m]
        if not kept:
            raise ValueError("data: no training pair has both sides within max_tokens subwords")
        return Pairs([s for s, _ in kept], [t for _, t in kept]), len(pairs) - len(kept)

    def _validation(self, pairs: list[tuple[str, str]]) -> dict[str, float]:
        hypotheses = self.translate([s for s, _ in pairs], beam=1)
        return {"val_bleu": scores(hypotheses, [t for _, t in pairs])["bleu"]}

    def _final_scores(self, pairs: list[tuple[str, str]]) -> dict[str, dict[str, float]]:
        sources, references = [s for s, _ in pairs], [t for _, t in pairs]
        out = {}
        for name, beam in (("greedy", 1), (f"beam {self.config.beam}", self.config.beam)):
            started = time.perf_counter()
            hypotheses = self.translate(sources, beam=beam)
            seconds = time.perf_counter() - started
            out[name] = {
                **scores(hypotheses, references),
                "sentences_per_second": len(sources) / seconds,
            }
            self.hypotheses = hypotheses  # the last (beam search) ones, for the report
        return out

    def _metrics(self, pairs, has_test: bool, dropped: int, run_dir: Path) -> dict:
        """metrics.json of a finished run: the beam-search scores as the result, greedy beside
        them, example translations, attention heatmaps."""
        c, report = self.config, self.report
        beam_name = f"beam {c.beam}"
        split = "test" if has_test else "validation"
        notes = [
            "BLEU is sacreBLEU's corpus BLEU on detokenized, cased text with its 13a tokens (the "
            "standard signature); lowercase BLEU lowercases both sides first, closest to the "
            "lowercased spaCy-tokenized BLEU of the PyTorch seq2seq tutorials (28.3 for their "
            "bidirectional GRU with attention on Multi30k de→en, 20.5 M parameters, 20.6 "
            "without attention, 14.2 M, both on a GPU for 10 epochs). chrF is sacreBLEU's "
            "chrF2.",
            f"Each epoch's validation BLEU is of greedy translations; the kept epoch is the one "
            f"of best validation BLEU. The {split} scores are of beam search (width {c.beam}, "
            f"length penalty {c.length_penalty:g}); greedy decoding is beside them.",
        ]
        if dropped:
            notes.append(
                f"{dropped} training pairs longer than {c.max_tokens} subwords were left out."
            )
        examples = [
            [s, t, h]
            for (s, t), h in zip(pairs[:EXAMPLES], self.hypotheses[:EXAMPLES], strict=True)
        ]
        figures = {}
        if c.preset == "bahdanau":
            from gru.viz import figures as draw
            from gru.viz import sequence_figures

            for k, (sentence, _) in enumerate(pairs[:HEATMAPS]):
                src, out, weights = self.attend(sentence)
                name = f"attention_{k + 1}.png"
                figure = sequence_figures.attention_map(weights, src, out[: len(weights)])
                draw.save_png(figure, run_dir / name)
                figures[name] = f"Attention of each output subword over the source: {sentence}"
        return {
            "task": self.task,
            "test": report.test[beam_name] if has_test else None,
            "validation": {"bleu": report.history[report.best_epoch - 1]["val_bleu"]},
            "baselines": {"greedy decoding": report.test["greedy"], **self._anchors(has_test)},
            "decoding": report.test,
            "examples": {
                "columns": [f"source ({c.source})", f"reference ({c.target})", "translation"],
                "rows": examples,
                "caption": f"The first {len(examples)} {split} sentences, translated by beam "
                f"search (width {c.beam}) with the kept weights.",
            },
            "figures": figures,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "data": {f"{k} pairs": v for k, v in report.pairs.items()}
            | {"subwords (joint vocabulary)": len(self.subwords)},
            "notes": notes,
        }

    def _anchors(self, has_test: bool) -> dict[str, dict[str, float]]:
        """The published scores of the same test (Multi30k de→en, test_2016_flickr), as
        baselines: the PyTorch seq2seq tutorials' lowercased, spaCy-tokenized BLEU."""
        c = self.config
        if not has_test or (c.source, c.target, c.test_split) != ANCHOR_TEST:
            return {}
        return {name: {"bleu_lowercase": value} for name, value in ANCHORS.items()}

    # --- translate -----------------------------------------------------------------------------

    def _source_ids(self, sentences: list[str]) -> list[list[int]]:
        ids = self.subwords.encode(sentences)
        for number, row in enumerate(ids, 1):
            if len(row) > self.config.max_tokens:
                raise ValueError(
                    f"sentence {number} is {len(row)} subwords long; the model takes at most "
                    f"{self.config.max_tokens} (split it)"
                )
            if not row:
                raise ValueError(f"sentence {number} is empty")
        return ids

    def translate(
        self,
        sentences: list[str] | str,
        *,
        beam: int | None = None,
        length_penalty: float | None = None,
        batch_size: int = 128,
    ) -> list[str] | str:
        """The translations of ``sentences`` (a list, in order; one string gives one string):
        beam search of width ``beam`` (default the config's; 1 is greedy, a batch of
        ``batch_size`` sentences at a time) with ``length_penalty`` (default the config's)."""
        if self.model is None:
            raise ValueError("Translator.translate: fit or load a model first")
        one = isinstance(sentences, str)
        sentences = [sentences] if one else list(sentences)
        outputs, _ = self.decode(self._source_ids(sentences), beam, length_penalty, batch_size)
        texts = self.subwords.decode(outputs)
        return texts[0] if one else texts

    def attend(self, sentence: str, *, beam: int | None = None):
        """(source subwords (S,), output subwords (T,) with the end, attention (T, S) as a
        NumPy array or None without attention) of the translation of one ``sentence``."""
        if self.model is None:
            raise ValueError("Translator.attend: fit or load a model first")
        ids = self._source_ids([sentence])
        outputs, maps = self.decode(ids, beam)
        weights = None if maps[0] is None else maps[0].numpy()
        return self.subwords.pieces(ids[0]), [*self.subwords.pieces(outputs[0]), "</s>"], weights

    def explanation(self, sentence: str):
        """How the model translates one ``sentence`` greedily, step by step: a
        `gru.viz.explain_translation.TranslationExplanation` (the attention and both decoder
        layers' update gates at each generated subword)."""
        from gru.viz.explain_translation import TranslationExplanation

        if self.model is None:
            raise ValueError("explain: the translator has no model; fit or load one first")
        ids = self._source_ids([sentence])[0]
        model = self.model.eval()
        with torch.no_grad():
            enc, states = model.encode(torch.tensor([ids]), torch.tensor([len(ids)]))
            previous, out, z1, z2, rows = torch.tensor([seq2seq.BOS]), [], [], [], []
            for _ in range(min(2 * len(ids) + 10, self.config.max_tokens)):
                g1, g2 = seq2seq.gates_of_step(model, previous, enc, states)
                log_probs, states, weights = model.step(previous, enc, states)
                previous = seq2seq.allowed(log_probs).argmax(-1)
                out.append(int(previous))
                z1.append(g1[0].numpy())
                z2.append(g2[0].numpy())
                rows.append(None if weights is None else weights[0].numpy())
                if out[-1] == seq2seq.EOS:
                    break
        found = out[:-1] if out[-1] == seq2seq.EOS else out
        pieces = self.subwords.pieces(found) + (["</s>"] if len(found) < len(out) else [])
        return TranslationExplanation(
            sentence=sentence,
            text=self.subwords.decode([found])[0],
            source=self.subwords.pieces(ids),
            output=pieces,
            attention=None if rows[0] is None else np.stack(rows),
            z1=np.stack(z1),
            z2=np.stack(z2),
            method="Greedy decoding: at each step the likeliest next subword (beam search may "
            "choose another translation).",
            model={"preset": self.config.preset, "decoder units": self.config.decoder_size},
        )

    def decode(self, ids: list[list[int]], beam=None, length_penalty=None, batch_size=128):
        """The output ids of each source's ids and its attention (T, S) (None without)."""
        beam = self.config.beam if beam is None else beam
        penalty = self.config.length_penalty if length_penalty is None else length_penalty
        if isinstance(beam, bool) or not isinstance(beam, int) or beam < 1:
            raise ValueError(f"Translator: beam must be a positive int, got {beam!r}")
        self.model.eval()
        outputs: list = [None] * len(ids)
        maps: list = [None] * len(ids)
        longest = lambda n: min(2 * n + 10, self.config.max_tokens)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        if beam > 1:
            for start in range(0, len(order), max(1, batch_size // beam)):
                chunk = order[start : start + max(1, batch_size // beam)]
                rows = [torch.tensor(ids[i]) for i in chunk]
                lengths = torch.tensor([len(r) for r in rows])
                src = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)
                found = seq2seq.beam_search_batch(
                    self.model, src, lengths, [longest(len(r)) for r in rows], beam, penalty
                )
                for i, (out, _, weights) in zip(chunk, found, strict=True):
                    outputs[i], maps[i] = out, weights
            return outputs, maps
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            rows = [torch.tensor(ids[i]) for i in chunk]
            lengths = torch.tensor([len(r) for r in rows])
            src = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)
            found, weights = seq2seq.greedy(self.model, src, lengths, longest(int(lengths.max())))
            for j, i in enumerate(chunk):
                outputs[i] = found[j]
                if weights is not None:
                    maps[i] = weights[j, : len(found[j]) + 1, : len(ids[i])]
        return outputs, maps

    def evaluate(self, source, target=None, *, beam: int | None = None) -> dict[str, float]:
        """The scores (`scores`) of translations of a file of source sentences against a file
        of references (aligned, one per line), or of a TSV file of pairs (``target`` None)."""
        if self.model is None:
            raise ValueError("Translator.evaluate: fit or load a model first")
        if target is None:
            pairs = translation.read_tsv(source)
        else:
            pairs = translation.read_parallel(source, target)
        hypotheses = self.translate([s for s, _ in pairs], beam=beam)
        return {**scores(hypotheses, [t for _, t in pairs]), "pairs": len(pairs)}

    # --- load ----------------------------------------------------------------------------------

    def _restore(self, stored: dict, run_dir: Path) -> None:
        entry = stored["subwords"]
        data = runs.read_checked_bytes(run_dir, entry["file"], entry["sha256"])
        self.subwords = translation.Subwords(data)
