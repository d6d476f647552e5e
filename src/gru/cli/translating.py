"""``gru translate``: sentences translated by a translation run, in order."""

from __future__ import annotations

import sys

from gru.cli.options import add_threads, examples, positive_int

__all__ = ["add_translate", "translate"]


def add_translate(commands):
    translate = commands.add_parser(
        "translate",
        help="translate sentences with a translation run",
        description="Translate each SENTENCE given, or each line of --file, or each line of "
        "stdin, with the model of RUN_DIR (beam search; --beam 1 is greedy). One translation "
        "per line, in the order of the input.",
        epilog=examples(
            'gru translate --run runs/de-en "Ein Mann fährt Fahrrad."',
            "gru translate --run runs/de-en --file sentences.de --beam 1",
        ),
    )
    translate.add_argument("--run", required=True, metavar="RUN_DIR", help="a translate run")
    translate.add_argument("sentences", nargs="*", metavar="SENTENCE", help="sentences")
    translate.add_argument(
        "--file", metavar="PATH", help="a UTF-8 file, one sentence per line (- reads stdin)"
    )
    translate.add_argument(
        "--beam", type=positive_int, help="beam width (default the run's, 5); 1 is greedy"
    )
    translate.add_argument(
        "--length-penalty", type=float, help="beam scores over length ** this (default 1)"
    )
    add_threads(translate)
    return translate


def _sentences(args) -> list[str]:
    from gru.data.translation import read_lines

    if args.sentences and args.file is not None:
        raise ValueError("give sentences or --file, not both")
    if args.sentences:
        return list(args.sentences)
    if args.file is not None and args.file != "-":
        return read_lines(args.file, where="--file")
    lines = sys.stdin.read().splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            raise ValueError(f"stdin: line {number} is empty; every line must hold a sentence")
    if not lines:
        raise ValueError("no sentences: give SENTENCE, --file PATH, or lines on stdin")
    return [line.strip() for line in lines]


def translate(args) -> int:
    from gru.tasks.translate import Translator

    sentences = _sentences(args)
    translator = Translator.load(args.run)
    for line in translator.translate(sentences, beam=args.beam, length_penalty=args.length_penalty):
        print(line)
    return 0
