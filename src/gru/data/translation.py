"""Parallel text for translation: sentence pairs read from files, and the subword vocabulary
they are cut into.

Three ways to give pairs, each checked line by line (an error names the file and the line):

- a folder of one file per split and language, ``SPLIT.LANG`` or ``SPLIT.LANG.gz`` (Multi30k's
  layout: ``train.de.gz``, ``train.en.gz``, ``val.*``, ``test_2016_flickr.*``; `read_folder`);
- two aligned files, one sentence per line (`read_parallel`);
- a TSV file of pairs, source TAB target on each line (`read_tsv`).

The subwords are a sentencepiece unigram model trained on the training pairs, one vocabulary
shared by both languages (`train_subwords`); `Subwords` loads it from its bytes (the run folder
keeps them).

Shapes: N pairs.
"""

from __future__ import annotations

import gzip
import io
import os
import re
from pathlib import Path

from gru._extras import require

__all__ = [
    "BOS",
    "EOS",
    "MAX_TOKENS",
    "Subwords",
    "language_files",
    "read_folder",
    "read_lines",
    "read_parallel",
    "read_tsv",
    "train_subwords",
]

BOS, EOS, UNK = 2, 3, 1  # ids of the tokenizer's special pieces (0 is padding)
MAX_TOKENS = 200  # the longest sentence, in subwords, that training and translating take
LANGUAGE = re.compile(r"^[a-z]{2,3}(_[A-Za-z]{2,4})?$")


def read_lines(path: str | os.PathLike, *, where: str = "data") -> list[str]:
    """The lines of a UTF-8 text file (gzipped when its name ends in .gz), stripped; ValueError
    naming the file and line of an empty line or bytes that are not UTF-8."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{where}: {str(path)!r} does not exist")
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise ValueError(f"{where}: {str(path)!r} is not a gzip file: {error}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ValueError(f"{where}: {str(path)!r} line {line} is not UTF-8") from None
    lines = text.removeprefix("\ufeff").splitlines()
    if not lines:
        raise ValueError(f"{where}: {str(path)!r} is empty")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            raise ValueError(
                f"{where}: {str(path)!r} line {number} is empty; every line must hold a sentence"
            )
    return [line.strip() for line in lines]


def read_parallel(
    source: str | os.PathLike, target: str | os.PathLike, *, where: str = "data"
) -> list[tuple[str, str]]:
    """The sentence pairs of two aligned files (line i of one translates line i of the other);
    ValueError when their line counts differ, naming both."""
    a, b = read_lines(source, where=where), read_lines(target, where=where)
    if len(a) != len(b):
        raise ValueError(
            f"{where}: {str(source)!r} has {len(a)} lines but {str(target)!r} has {len(b)}; "
            "aligned files need one line per sentence pair"
        )
    return list(zip(a, b, strict=True))


def read_tsv(path: str | os.PathLike, *, where: str = "data") -> list[tuple[str, str]]:
    """The pairs of a TSV file, ``source<TAB>target`` on every line; ValueError naming the
    line that does not have exactly two non-empty fields."""
    pairs = []
    for number, line in enumerate(read_lines(path, where=where), 1):
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
            raise ValueError(
                f"{where}: {str(path)!r} line {number} must be source<TAB>target (two non-empty "
                f"fields), got {len(fields)} field{'s' if len(fields) != 1 else ''}"
            )
        pairs.append((fields[0].strip(), fields[1].strip()))
    return pairs


def language_files(folder: Path, split: str, language: str) -> Path | None:
    """The file of ``split`` in ``language`` in a folder: SPLIT.LANG or SPLIT.LANG.gz."""
    for name in (f"{split}.{language}", f"{split}.{language}.gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _languages(folder: Path) -> list[str]:
    found = set()
    for path in folder.iterdir():
        parts = path.name.removesuffix(".gz").rsplit(".", 1)
        if len(parts) == 2 and LANGUAGE.match(parts[1]):
            found.add(parts[1])
    return sorted(found)


def check_language(language, option: str) -> str:
    """``language`` if it looks like a language code (de, en, pt_BR); ValueError naming
    ``option`` otherwise."""
    if not isinstance(language, str) or not LANGUAGE.match(language):
        raise ValueError(f"{option} must be a language code such as de or en, got {language!r}")
    return language


def read_folder(
    folder: str | os.PathLike, split: str, source: str, target: str, *, where: str = "data"
) -> list[tuple[str, str]]:
    """The pairs of ``split`` in a folder of SPLIT.LANG(.gz) files; ValueError naming the
    languages the folder has when it lacks ``source`` or ``target``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{where}: {str(folder)!r} is not a folder")
    files = []
    for language, option in ((source, "--source"), (target, "--target")):
        path = language_files(folder, split, check_language(language, option))
        if path is None:
            have = _languages(folder)
            raise ValueError(
                f"{where}: {str(folder)!r} has no {split}.{language}(.gz) for {option} "
                f"{language}; its languages are {', '.join(have) or 'none'}"
            )
        files.append(path)
    return read_parallel(*files, where=where)


# --- subwords ------------------------------------------------------------------------------------


def _sentencepiece(feature: str):
    return require("sentencepiece", "translate", feature)


def train_subwords(sentences: list[str], vocab_size: int, *, seed: int = 0) -> bytes:
    """The bytes of a sentencepiece unigram model of ``vocab_size`` pieces trained on
    ``sentences`` (both languages together): id 0 pads, 1 is unknown, 2 begins, 3 ends."""
    spm = _sentencepiece("train_subwords: learning subwords")
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=model,
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        pad_id=0,
        unk_id=UNK,
        bos_id=BOS,
        eos_id=EOS,
        hard_vocab_limit=False,
        num_threads=1,
        minloglevel=2,
    )
    return model.getvalue()


class Subwords:
    """A sentencepiece model, from its bytes: ``encode(text) -> ids``, ``decode(ids) -> text``."""

    def __init__(self, model: bytes) -> None:
        spm = _sentencepiece("Subwords: subword tokenization")
        self.bytes = model
        self.processor = spm.SentencePieceProcessor(model_proto=model)

    def __len__(self) -> int:
        return self.processor.get_piece_size()

    def encode(self, texts: list[str]) -> list[list[int]]:
        return self.processor.encode(texts)

    def decode(self, ids: list[list[int]]) -> list[str]:
        return self.processor.decode(ids)

    def pieces(self, ids: list[int]) -> list[str]:
        return [self.processor.id_to_piece(i) for i in ids]
