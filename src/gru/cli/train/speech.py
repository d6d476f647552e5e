"""``gru train speech``: spoken-word recognition (`gru.tasks.speech`)."""

from __future__ import annotations

from gru.cli import options

__all__ = ["add", "run"]


def add(tasks):
    from gru.tasks.speech import POOLINGS, PRESETS

    speech = tasks.add_parser(
        "speech",
        help="spoken words (the Free Spoken Digit Dataset, or a folder per word)",
        description="Train a unidirectional GRU on log-mel frames of labeled recordings and "
        "report its test accuracy, per speaker, the confusion matrix and baselines; the same "
        "model recognizes audio frame by frame (gru listen). --preset default: 3 speeds, masks "
        "and noise, a 2-layer GRU(128), 10 epochs; --preset new-speaker: for voices never "
        "heard, 5 speeds (0.8-1.2), a fast-adapting running mean, 20 cepstral coefficients "
        "of the bands, the mean output pooled; "
        "--preset plain: the same GRU on the frames as they are, 25 epochs.",
        epilog=options.examples(
            "gru train speech --data recordings --out runs/speech",
            "gru train speech --data recordings --held-out george --out runs/speech-george",
        ),
    )
    speech.add_argument(
        "--data",
        metavar="DIR",
        help="the recordings: an FSDD folder ({digit}_{speaker}_{take}.wav, or its recordings/ "
        "folder), or a folder with one subfolder of audio files per word (yes/*.wav, no/*.wav)",
    )
    speech.add_argument(
        "--preset", choices=sorted(PRESETS), help="model and training settings (default default)"
    )
    speech.add_argument(
        "--held-out",
        metavar="SPEAKER",
        help="test on every recording of SPEAKER and train on the others (default: the "
        "official split, takes 0-4 of every speaker for test)",
    )
    model = speech.add_argument_group("model (default: the preset's)")
    model.add_argument("--hidden-size", type=options.positive_int, help="GRU units H (128)")
    model.add_argument(
        "--layers",
        type=options.positive_int,
        dest="num_layers",
        metavar="LAYERS",
        help="GRU layers",
    )
    model.add_argument(
        "--pooling", choices=POOLINGS, help="what the head reads: the last state or the mean output"
    )
    model.add_argument("--n-mels", type=options.positive_int, help="mel bands (40)")
    model.add_argument(
        "--limit",
        type=options.positive_int,
        help="use at most N training and N test recordings (quick runs)",
    )
    options.add_training_options(
        speech, {"epochs": "10 (default), 25 (plain)", "batch_size": 64, "lr": "3e-3, 1e-3 (plain)"}
    )
    return speech


def run(args) -> int:
    from gru.tasks.speech import SpeechRecognizer

    def preset():
        return SpeechRecognizer.from_preset(args.preset or "default").config

    config, out, resume, stored = options.train_config(
        args, SpeechRecognizer, preset, fresh_on_resume=args.preset is not None
    )
    data = options.needs(args.data, "--data", stored, "source")
    report = options.fit(args, SpeechRecognizer, config, out, resume, data)
    if not options.ran(out, report):
        return 0
    if report.test is None:
        print(f"no test recordings in {data} ({report.protocol})")
        return 0
    print(
        f"test accuracy ({report.protocol}): {report.test['accuracy']:.4f} on "
        f"{report.recordings['test']:,} recordings (weights of epoch {report.best_epoch})"
    )
    for name, scores in report.baselines.items():
        print(f"  baseline, {name}: {scores['accuracy']:.4f}")
    if report.per_speaker:
        shown = ", ".join(f"{k} {v:.3f}" for k, v in report.per_speaker.items())
        print(f"  per speaker: {shown}")
    return 0
