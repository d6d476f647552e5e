"""The commands beside the tasks: ``gru convert`` (weights between formats) and ``gru compare``
(the same models on RNN, LSTM, GRU and MinGRU layers)."""

from __future__ import annotations

from pathlib import Path

from gru.cli.options import (
    OVERWRITE,
    add_overwrite,
    add_threads,
    default_out,
    examples,
    overlay,
    positive_float,
    positive_int,
    seed,
)

__all__ = ["COMMANDS"]


def add_convert(commands):
    convert = commands.add_parser(
        "convert",
        help="move a GRU's weights between Keras, ONNX, PyTorch and safetensors files",
        description="Read the GRU in SOURCE and write it to DEST, each format chosen by the "
        "file's extension: .keras, .weights.h5, .h5 (Keras 2, read only), .onnx, .safetensors, "
        ".pt (a torch.nn.GRU state dict, loaded without pickle). Both conventions convert "
        "exactly; DEST is written atomically, never over SOURCE, and an existing DEST only with "
        "--overwrite. A Keras model with other layers (Embedding, Dense, Dropout) converts whole "
        "to .onnx; the other formats hold GRU layers only and refuse it, naming the layers they "
        "lack (--layer NAME converts that GRU alone). ONNX files need the 'onnx' extra.",
        epilog=examples(
            "gru convert model.keras model.onnx",
            "gru convert model.keras gru.safetensors --layer gru_1 --overwrite",
        ),
    )
    convert.add_argument("source", metavar="SOURCE", help="file to read")
    convert.add_argument("dest", metavar="DEST", help="file to write")
    convert.add_argument("--layer", help="name of the Keras layer, when SOURCE has several")
    add_overwrite(convert, "DEST")
    return convert


def convert(args) -> int:
    from gru._io import check_destination
    from gru.interop.convert import convert

    inputs = {"SOURCE": args.source}
    check_destination(args.dest, "DEST", inputs=inputs, overwrite=args.overwrite, replace=OVERWRITE)
    print(convert(args.source, args.dest, layer=args.layer, overwrite=args.overwrite))
    return 0


def add_compare(commands):
    from gru.tasks.compare import MODELS, TASKS
    from gru.tasks.music import CELLS

    compare = commands.add_parser(
        "compare",
        help="train RNN, LSTM and GRU layers on the same tasks and budget, side by side",
        description="Train a plain RNN, an LSTM, torch.nn.GRU, gru.GRU, gru.GRU with layer "
        "norm and gru.MinGRU on the same data with the same budget; print and save a Markdown "
        "table (parameters, training seconds per epoch, inference latency per sequence and per "
        "streaming step, test metric, steps to reach a target) and a PNG of the learning curves. "
        "--task music (alone) is Chung et al. 2014's comparison instead: the ~20k-parameter "
        "GRU, LSTM and tanh RNN trained as `gru train music --preset chung2014` trains them, "
        "on piano rolls over --seeds, their test NLL's mean ± standard deviation beside the "
        "paper's and the per-key frequency baseline (compare.md and compare.json).",
        epilog=examples(
            "gru compare --quick --out compare-quick",
            "gru compare --models gru,lstm --tasks adding-400 --seed 1",
            "gru compare --task music --seeds 0 1 2 --threads 1 --out compare-music",
            "gru compare --task music --data ../shared/data/music/JSB_Chorales.mat "
            "--models gru,lstm --epochs 100",
        ),
    )
    compare.add_argument(
        "--tasks",
        "--task",
        dest="task_names",
        metavar="TASKS",
        help="comma-separated, of: " + ", ".join(TASKS) + " (default: the adding problems, "
        "and imdb and etth1 when their data is given); or music, alone",
    )
    compare.add_argument(
        "--models",
        dest="model_names",
        metavar="MODELS",
        help="comma-separated, of: " + ", ".join(MODELS) + " (default: all); for --task "
        "music of: " + ", ".join(CELLS) + " (default: all three)",
    )
    compare.add_argument("--imdb", metavar="PATH", help="IMDB data for the imdb task")
    compare.add_argument("--csv", metavar="PATH", help="ETTh1.csv for the etth1 task")
    compare.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="folder for the table, numbers and curves; it must not exist yet or be empty "
        "(default: a new folder under runs/, compare-<date>-<time>)",
    )
    compare.add_argument(
        "--quick",
        action="store_true",
        help="a smoke test of under 2 minutes: that every model trains, not how well "
        "(too little data and training for its scores or timings to compare models)",
    )
    compare.add_argument(
        "--epochs",
        type=positive_int,
        help="epochs for every task (music: at most, early stopping still applies; default 500)",
    )
    compare.add_argument("--hidden-size", type=positive_int, help="H for every layer")
    compare.add_argument(
        "--adding-train", type=positive_int, help="adding problem training sequences (5000)"
    )
    compare.add_argument(
        "--imdb-limit", type=positive_int, help="reviews of each IMDB split (10000)"
    )
    compare.add_argument(
        "--etth1-stride", type=positive_int, help="train on every n-th ETTh1 window (1)"
    )
    compare.add_argument(
        "--seed",
        type=seed,
        help="seed of every random choice: the data drawn and the weights (default 0)",
    )
    add_threads(compare)
    compare.add_argument("--quiet", action="store_true", help="print only the table")
    add_music_options(compare)
    return compare


def add_music_options(compare) -> None:
    """The options of ``gru compare --task music`` (`gru.tasks.compare_music`)."""
    from gru.tasks.compare_music import DATA_SETTINGS, DEFAULT_DATA, PRESET
    from gru.tasks.music import PRESETS

    preset = PRESETS[PRESET]().train

    chosen = "; ".join(
        f"{name}: " + ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in s.items())
        for name, s in DATA_SETTINGS.items()
    )
    music = compare.add_argument_group(
        "--task music",
        f"Each data set trains with the {PRESET} preset (lr {preset.lr:g}, batches of "
        f"{preset.batch_size}, at most {preset.epochs} epochs), except where the README's "
        f"measurements chose otherwise: {chosen}.",
    )
    music.add_argument(
        "--data",
        nargs="+",
        metavar="PATH",
        help=".mat files of piano rolls (traindata, validdata, testdata) or folders of .mid "
        f"files (default: those of {', '.join(DEFAULT_DATA)} that exist)",
    )
    music.add_argument(
        "--seeds",
        nargs="+",
        type=seed,
        metavar="S",
        help="train each model once per seed (default 0 1 2; --seed S: that one)",
    )
    music.add_argument(
        "--lr",
        type=positive_float,
        help="learning rate of every data set (default: each data set's, above)",
    )
    music.add_argument(
        "--limit",
        type=positive_int,
        metavar="N",
        help="use at most N pieces of each split (quick runs that compare nothing)",
    )


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [n.strip() for n in text.split(",") if n.strip()]


def compare(args) -> int:
    from gru.tasks import compare as comparison

    tasks = _names(args.task_names)
    if tasks is not None and "music" in tasks:
        return _compare_music(args, tasks)
    given = [f"--{n}" for n in MUSIC_ONLY if getattr(args, n) is not None]
    if given:
        raise ValueError(f"{', '.join(given)}: options of --task music only")
    if tasks is None:
        tasks = ["adding-100", "adding-400"]
        tasks += ["imdb"] if args.imdb else []
        tasks += ["etth1"] if args.csv else []
    models = _names(args.model_names) or list(comparison.MODELS)
    config = comparison.CompareConfig(tasks=tasks, models=models)
    overlay(config, args)  # every other option is the setting of its name
    out = args.out if args.out is not None else default_out("compare")
    result = comparison.run(config, out=out, quiet=args.quiet)
    if args.quiet:
        print(result.table)
    return 0


MUSIC_ONLY = ("data", "seeds", "lr", "limit")  # the options of --task music alone
NOT_MUSIC = ("imdb", "csv", "quick", "hidden_size", "adding_train", "imdb_limit", "etth1_stride")


def _compare_music(args, tasks: list[str]) -> int:
    """``gru compare --task music``: `gru.tasks.compare_music.run` on the options."""
    from gru.tasks import compare_music
    from gru.tasks.music import CELLS

    if tasks != ["music"]:
        raise ValueError(
            f"--task music runs alone (its models train over seeds on their own budget), got "
            f"--tasks {','.join(tasks)}; compare the other tasks in another command"
        )
    given = ["--" + n.replace("_", "-") for n in NOT_MUSIC if getattr(args, n) not in (None, False)]
    if given:
        raise ValueError(
            f"{', '.join(given)}: not options of --task music (it compares the paper's "
            "~20k-parameter models on piano rolls)"
        )
    if args.seed is not None and args.seeds is not None:
        raise ValueError(f"give --seed or --seeds, not both (--seed {args.seed}, --seeds ...)")
    seeds = args.seeds or ([args.seed] if args.seed is not None else [0, 1, 2])
    config = compare_music.MusicCompareConfig(
        data=args.data, seeds=seeds, epochs=args.epochs, lr=args.lr, limit=args.limit,
        cells=_names(args.model_names) or list(CELLS),
    )  # fmt: skip
    out = args.out if args.out is not None else default_out("compare-music")
    result = compare_music.run(config, out=out, quiet=args.quiet)
    if args.quiet:
        print(result.table)
    return 0


# The commands beside the tasks: (add its parser to the commands, run it).
COMMANDS = {
    "convert": (add_convert, convert),
    "compare": (add_compare, compare),
}
