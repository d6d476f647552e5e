"""``gru train textgen``: a character-level language model (`gru.tasks.textgen`)."""

from __future__ import annotations

from gru.cli import options

__all__ = ["add", "run"]

LN2 = 0.6931471805599453  # nats per bit


def add(tasks):
    textgen = tasks.add_parser(
        "textgen",
        help="a character-level language model of a text (e.g. Tiny Shakespeare)",
        description="Train a character-level GRU language model on a UTF-8 text: the first 90% "
        "trains with truncated back-propagation through time (the hidden state carried across "
        "chunks), the last 10% validates. Reports the validation loss in nats per character "
        "and a generated sample.",
        epilog=options.examples(
            "gru train textgen --text tinyshakespeare.txt --out runs/shakespeare",
            "gru train textgen --text tinyshakespeare.txt --limit 20000 --hidden-size 64 "
            "--epochs 1 --out runs/shakespeare-quick",
        ),
    )
    options.add_data_option(textgen, "--text", metavar="PATH", help="the text (UTF-8)")
    model = textgen.add_argument_group("model (defaults: 2 layers of 512, embedding 64)")
    model.add_argument("--hidden-size", type=options.positive_int, help="GRU units H")
    model.add_argument(
        "--layers",
        type=options.positive_int,
        dest="num_layers",
        metavar="LAYERS",
        help="GRU layers",
    )
    model.add_argument(
        "--embedding-dim", type=options.positive_int, help="character embedding size"
    )
    model.add_argument("--dropout", type=float, help="dropout between layers and before the output")
    model.add_argument("--seq-len", type=options.positive_int, help="characters per chunk (128)")
    options.add_limit(model, "characters")
    options.add_training_options(textgen, {"epochs": 8, "batch_size": 32, "lr": 3e-3})
    return textgen


def run(args) -> int:
    from gru.tasks.textgen import TextGenerator

    config, out, resume, stored = options.train_config(args, TextGenerator)
    text = options.needs(args.text, "--text", stored, "source")
    report = options.fit(args, TextGenerator, config, out, resume, text)
    if not options.ran(out, report):
        return 0
    print(
        f"validation loss: {report.val_loss:.4f} nats per character "
        f"({report.val_loss / LN2:.3f} bits), epoch {report.best_epoch}"
    )
    print("sample (temperature 0.8, seed 0):")
    print(report.sample)
    return 0
