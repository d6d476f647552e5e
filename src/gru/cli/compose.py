"""``gru compose``: continue a piece, or start from silence, with a music run; write MIDI."""

from __future__ import annotations

from pathlib import Path

from gru.cli.options import (
    OVERWRITE,
    add_overwrite,
    add_threads,
    examples,
    positive_float,
    positive_int,
    seed,
)

__all__ = ["add_compose", "compose"]


def add_compose(commands):
    parser = commands.add_parser(
        "compose",
        help="compose music with a music run: a MIDI file and its piano roll (PNG)",
        description="Draw STEPS steps from the model of RUN_DIR, each of the 88 keys a Bernoulli "
        "at the predicted probability (with a NADE output, the keys of a step one after "
        "another, low to high, each given those below it), after a prime (the first steps of a "
        "piece of the run's data) or from silence. Writes a MIDI file (one step one beat) and "
        "the piano roll as a PNG beside it.",
        epilog=examples(
            "gru compose --run runs/jsb --steps 64 --prime test:3 --seed 0 --out piece.mid"
        ),
    )
    parser.add_argument("--run", required=True, metavar="RUN_DIR", help="a music run folder")
    parser.add_argument(
        "--steps", type=positive_int, default=64, help="steps to compose (default 64)"
    )
    parser.add_argument(
        "--prime",
        metavar="SPLIT:N",
        help="start after the first --prime-steps steps of piece N (from 0) of SPLIT (train, "
        "valid or test) of the run's data (default: from silence)",
    )
    parser.add_argument(
        "--prime-steps", type=positive_int, default=16, help="steps of the prime (default 16)"
    )
    parser.add_argument("--seed", type=seed, default=0, help="seed of the draws (default 0)")
    parser.add_argument(
        "--temperature",
        type=positive_float,
        default=1.0,
        help="divides the logits: below 1 surer, above 1 wilder (default 1)",
    )
    parser.add_argument(
        "--step-seconds", type=positive_float, default=0.5, help="seconds per step (0.5)"
    )
    parser.add_argument("--out", required=True, metavar="FILE.mid", help="the MIDI file to write")
    add_overwrite(parser, "the MIDI file and its PNG")
    add_threads(parser)
    return parser


def _prime(text: str | None, model, source: str, steps: int):
    """The prime roll of ``--prime SPLIT:N`` from the run's data ``source`` (None: none)."""
    from gru.data import music

    if text is None:
        return None
    split, _, index = text.partition(":")
    if split not in music.SPLITS or not index.isdigit():
        raise ValueError(f"--prime: expected SPLIT:N with SPLIT train, valid or test, got {text!r}")
    pieces = model.read(source).split(split)
    if int(index) >= len(pieces):
        raise ValueError(f"--prime: {split} has {len(pieces)} pieces (0 to {len(pieces) - 1}), "
                         f"got {index}")  # fmt: skip
    return pieces[int(index)][:steps]


def compose(args) -> int:
    import numpy as np

    from gru._io import check_destination
    from gru.data import music
    from gru.tasks.music import MusicModel
    from gru.tasks.runs import load_run
    from gru.viz import figures, sequence_figures

    out = Path(args.out)
    if out.suffix.lower() not in (".mid", ".midi"):
        raise ValueError(f"--out: {str(out)!r} must be a .mid file")
    picture = out.with_suffix(".png")
    check = {"overwrite": args.overwrite, "replace": OVERWRITE}
    check_destination(out, "--out", **check)
    check_destination(picture, "--out's piano roll", **check)
    source = load_run(args.run, "music", where="--run").get("data", {}).get("source")
    model = MusicModel.load(args.run)
    prime = _prime(args.prime, model, source, args.prime_steps)
    roll = model.compose(prime, steps=args.steps, seed=args.seed, temperature=args.temperature)
    music.write_midi(roll, out, args.step_seconds)
    shown = len(prime) if prime is not None else 0
    title = f"{args.prime or 'silence'}, then {args.steps} steps (seed {args.seed})"
    figures.save_png(sequence_figures.piano_rolls([(title, roll)], shown), picture)
    notes = int(roll[shown:].sum(dtype=np.int64))
    print(f"composed {args.steps} steps after {shown} of prime ({notes} key-steps sounding)")
    print(f"wrote {out} and {picture}")
    return 0
