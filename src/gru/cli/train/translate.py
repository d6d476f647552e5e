"""``gru train translate``: a GRU encoder–decoder with attention (`gru.tasks.translate`)."""

from __future__ import annotations

from gru.cli import options

__all__ = ["add", "run"]


def add(tasks):
    from gru.tasks.translate import PRESETS

    translate = tasks.add_parser(
        "translate",
        help="translation: a GRU encoder–decoder with attention (e.g. Multi30k German→English)",
        description="Train a bidirectional GRU encoder and a GRU decoder with additive "
        "attention on sentence pairs, with a subword vocabulary learned on the training pairs. "
        "Every epoch translates the validation pairs greedily (BLEU decides the kept epoch); "
        "the end scores the test pairs with sacreBLEU (cased BLEU, lowercased BLEU, chrF) by "
        "greedy decoding and beam search. --preset cho2014: the same model without attention.",
        epilog=options.examples(
            "gru train translate --data multi30k --source de --target en --out runs/de-en",
            "gru train translate --data multi30k --source de --target en --limit 2000 "
            "--epochs 1 --out runs/de-en-quick",
        ),
    )
    options.add_data_option(
        translate,
        "--data",
        metavar="PATH",
        help="a folder of SPLIT.LANG or SPLIT.LANG.gz files (train, val and optionally the test "
        "split: Multi30k's layout), or a TSV file of source<TAB>target pairs (its last 5%% "
        "validate)",
    )
    translate.add_argument("--source", metavar="LANG", help="the source language (default de)")
    translate.add_argument("--target", metavar="LANG", help="the target language (default en)")
    translate.add_argument(
        "--preset", choices=PRESETS, help="bahdanau: with attention (default); cho2014: without"
    )
    translate.add_argument(
        "--test-split", metavar="NAME", help="the folder's test split (default test_2016_flickr)"
    )
    model = translate.add_argument_group(
        "model (defaults: 8000 subwords, embedding 256, encoder 2×256 bi, decoder 384)"
    )
    model.add_argument("--vocab-size", type=options.positive_int, help="subwords (joint)")
    model.add_argument("--embedding-dim", type=options.positive_int, help="embedding size")
    model.add_argument("--encoder-size", type=options.positive_int, help="units per direction")
    model.add_argument(
        "--encoder-layers", type=options.positive_int, help="bidirectional encoder layers"
    )
    model.add_argument("--decoder-size", type=options.positive_int, help="decoder GRU units")
    model.add_argument("--attention-size", type=options.positive_int, help="attention units")
    model.add_argument("--dropout", type=float, help="dropout (default 0.25)")
    model.add_argument("--label-smoothing", type=float, help="label smoothing (default 0.1)")
    model.add_argument("--beam", type=options.positive_int, help="beam width of the test (5)")
    model.add_argument(
        "--length-penalty", type=float, help="beam scores over length ** this (default 1)"
    )
    options.add_limit(model, "pairs")
    options.add_training_options(translate, {"epochs": 6, "batch_size": 128, "lr": 2e-3})
    return translate


def run(args) -> int:
    from gru.tasks.translate import Translator

    config, out, resume, stored = options.train_config(args, Translator)
    data = options.needs(args.data, "--data", stored, "source")
    report = options.fit(args, Translator, config, out, resume, data)
    if not options.ran(out, report):
        return 0
    for name, scores in report.test.items():
        print(
            f"{name}: BLEU {scores['bleu']:.2f} (lowercased {scores['bleu_lowercase']:.2f}), "
            f"chrF {scores['chrf']:.2f}, {scores['sentences_per_second']:.1f} sentences/s"
        )
    print(f"weights of epoch {report.best_epoch}")
    return 0
