"""The commands that use a trained run: ``gru predict`` and ``gru evaluate`` (sentiment and
classify),
``gru forecast``, ``gru generate`` (textgen), ``gru detect`` (anomaly) and ``gru explain``.
Each loads the run with its task's ``load`` and calls its Python API."""

from __future__ import annotations

import sys
from pathlib import Path

from gru.cli.compose import add_compose, compose
from gru.cli.listen import add_listen, listen
from gru.cli.options import (
    add_output_options,
    add_overwrite,
    add_run_on_csv,
    add_threads,
    count,
    examples,
    output_paths,
    positive_float,
    positive_int,
    seed,
    write_csv,
)
from gru.cli.translating import add_translate, translate

__all__ = ["COMMANDS"]


# --- sentiment: predict, evaluate ----------------------------------------------------------------


def add_predict(commands):
    predict = commands.add_parser(
        "predict",
        help="label texts (sentiment), sequences (classify) or audio files (speech) with a "
        "trained model",
        description="Print, for each text, the predicted label and P(positive) of the sentiment "
        "model in RUN_DIR; for a classify run, the predicted class and its probability of every "
        "sequence of FILE (.ts, long CSV or .npz, labeled or not); for a speech run, each audio "
        "file's word and its probability.",
        epilog=examples(
            'gru predict --run runs/sentiment "a wonderful film" "dull and far too long"',
            "gru predict --run runs/sentiment --file reviews.txt",
            "gru predict --run runs/classify BasicMotions_TEST.ts",
        ),
    )
    predict.add_argument(
        "--run", required=True, metavar="RUN_DIR", help="a sentiment, classify or speech run"
    )
    predict.add_argument(
        "texts",
        nargs="*",
        metavar="TEXT",
        help="texts to label (a classify run: one FILE; a speech run: audio files)",
    )
    predict.add_argument("--file", metavar="FILE", help="a UTF-8 file with one text per line")
    add_threads(predict)
    return predict


def _lines(file: str) -> list[str]:
    """The texts of --file, one a line; blank lines are skipped, and stderr says how many."""
    path = Path(file)
    if path.is_dir():
        raise IsADirectoryError(f"--file: {str(path)!r} is a folder; give a text file")
    if not path.is_file():
        raise FileNotFoundError(f"--file: {str(path)!r} does not exist")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"--file: cannot read {str(path)!r} as UTF-8 text: {error}") from None
    texts = [line for line in lines if line.strip()]
    if not texts:
        blank = f" ({count(len(lines), 'blank line')})" if lines else ""
        raise ValueError(f"--file: {str(path)!r} is empty{blank}; give one text per line")
    if len(texts) < len(lines):
        skipped = count(len(lines) - len(texts), "blank line")
        print(f"gru: skipped {skipped} of {str(path)!r}", file=sys.stderr)
    return texts


def _task(run: str) -> str | None:
    """The task of the run folder ``run`` (None when it has no readable config.json: the
    task's own ``load`` then says what is wrong)."""
    from gru.checkpoint import load_config

    try:
        return load_config(run).get("task")
    except (OSError, ValueError):
        return None


def predict_sequences(args) -> int:
    """``gru predict --run RUN FILE`` of a classify run: a class per sequence of FILE."""
    from gru.tasks.classify import SequenceClassifier

    files = list(args.texts) + ([args.file] if args.file is not None else [])
    if len(files) != 1:
        raise ValueError(
            f"predict: a classify run labels the sequences of one file (.ts, .csv or .npz); got "
            f"{len(files)} arguments {files}"
        )
    classifier = SequenceClassifier.load(args.run)
    data = classifier.sequences(files[0])
    probabilities = classifier.predict_proba(data)
    classes = classifier.fitted["classes_"]
    print("where\tpredicted\tP(predicted)" + ("\tlabel" if data.labels is not None else ""))
    for i, p in enumerate(probabilities):
        best = int(p.argmax())
        known = f"\t{data.labels[i]}" if data.labels is not None else ""
        print(f"{data.where[i]}\t{classes[best]}\t{p[best]:.4f}{known}")
    return 0


def predict(args) -> int:
    from gru.tasks.sentiment import SentimentClassifier

    if _task(args.run) == "classify":
        return predict_sequences(args)

    if _task(args.run) == "speech":
        return predict_speech(args)
    texts = list(args.texts) + (_lines(args.file) if args.file is not None else [])
    if not texts:
        raise ValueError("predict: give texts to label, or --file with one text per line")
    classifier = SentimentClassifier.load(args.run)
    for text, p in zip(texts, classifier.predict(texts), strict=True):
        print(f"{verdict(p)}\t{p:.4f}\t{text}")
    return 0


def verdict(p: float) -> str:
    """The label of P(positive) ``p``: positive above 0.5."""
    return "positive" if p > 0.5 else "negative"


def predict_speech(args) -> int:
    from gru.tasks.speech import SpeechRecognizer

    if args.file is not None:
        raise ValueError("predict: --file holds texts; give the audio files of a speech run")
    if not args.texts:
        raise ValueError("predict: give the audio files to recognize")
    recognizer = SpeechRecognizer.load(args.run)
    for path, (word, p) in zip(args.texts, recognizer.predict(args.texts), strict=True):
        print(f"{word}\t{p:.4f}\t{path}")
    return 0


def add_evaluate(commands):
    evaluate = commands.add_parser(
        "evaluate",
        help="score a trained sentiment, classify or speech model on labeled data",
        description="Print the accuracy and loss of the model in RUN_DIR on the test split of "
        "PATH (every review when PATH has no split); for a classify run, on every sequence of "
        "PATH (.ts, long CSV or .npz); for a speech run, on the test recordings of PATH under "
        "the run's protocol (the official split or its held-out speaker).",
        epilog=examples(
            "gru evaluate --run runs/sentiment --data sample",
            "gru evaluate --run runs/seed --data aclImdb_v1.tar.gz",
        ),
    )
    evaluate.add_argument(
        "--run", required=True, metavar="RUN_DIR", help="a sentiment, classify or speech run"
    )
    evaluate.add_argument(
        "--data",
        required=True,
        metavar="PATH",
        help="labeled reviews in any form `gru train sentiment --data` reads, labeled "
        "sequences for a classify run, or recordings for a speech run",
    )
    evaluate.add_argument("--text-column", default="text", help="CSV column of the texts")
    evaluate.add_argument("--label-column", default="label", help="CSV column of the labels")
    add_threads(evaluate)
    return evaluate


def evaluate(args) -> int:
    from gru.tasks.sentiment import SentimentClassifier

    if _task(args.run) == "classify":
        from gru.tasks.classify import SequenceClassifier

        scores = SequenceClassifier.load(args.run).evaluate(args.data)
        print(
            f"accuracy {scores['accuracy']:.4f}  loss {scores['loss']:.4f}  on "
            f"{scores['sequences']:,} sequences of {args.data}"
        )
        return 0

    if _task(args.run) == "speech":
        from gru.tasks.speech import SpeechRecognizer

        recognizer = SpeechRecognizer.load(args.run)
        scores = recognizer.evaluate(args.data)
        print(
            f"accuracy {scores['accuracy']:.4f}  loss {scores['loss']:.4f}  on "
            f"{scores['recordings']:,} test recordings of {args.data} ({recognizer.protocol()})"
        )
        return 0
    classifier = SentimentClassifier.load(args.run)
    scores = classifier.evaluate(
        args.data, text_column=args.text_column, label_column=args.label_column
    )
    print(
        f"accuracy {scores['accuracy']:.4f}  loss {scores['loss']:.4f}  on {scores['reviews']:,} "
        f"reviews of {args.data}"
    )
    return 0


# --- forecast, generate, detect ------------------------------------------------------------------


def add_forecast(commands):
    forecast = commands.add_parser(
        "forecast",
        help="forecast the next steps of a series with a trained forecast model",
        description="Forecast the --horizon rows after the end of the CSV with the model of "
        "RUN_DIR (it reads the last --lookback rows) and write them as CSV and a plot.",
        epilog=examples(
            "gru forecast --run runs/etth1 --csv ETTh1.csv",
            "gru forecast --run runs/etth1 --csv ETTh1.csv --out next.csv --overwrite",
        ),
    )
    add_run_on_csv(forecast, "forecast", run="a forecast run folder", csv="the series to continue")
    add_output_options(forecast, writes="the forecast goes, its plot")
    add_threads(forecast)
    return forecast


def forecast(args) -> int:
    from gru.tasks.forecast import Forecaster, plot_future

    forecaster = Forecaster.load(args.run)
    if args.fillna is not None:
        forecaster.config.fillna = args.fillna
    output, picture = output_paths(args)
    frame = forecaster.predict(args.csv)
    history = forecaster.history(args.csv)
    write_csv(frame, output)
    target, tail = forecaster.target, history.iloc[-3 * forecaster.config.lookback :]
    plot_future(picture, tail, frame[target], f"{target}: the next {len(frame)} steps")
    print(
        f"forecast of {', '.join(frame.columns)} for the {len(frame)} steps after the end of "
        f"{args.csv}: {frame.index[0]} to {frame.index[-1]}"
    )
    print(f"wrote {output} and {picture}")
    return 0


def add_generate(commands):
    generate = commands.add_parser(
        "generate",
        help="write text with a trained character model",
        description="Continue --prompt with --length characters from the model of RUN_DIR, "
        "one GRU step per character. Prints what TextGenerator.generate returns with "
        "include_prompt=True: the prompt followed by its continuation (--continuation-only: "
        "include_prompt=False, the continuation alone).",
        epilog=examples(
            'gru generate --run runs/shakespeare --prompt "ROMEO:" --length 300 --seed 0',
            "gru generate --run runs/shakespeare --temperature 0 --continuation-only",
        ),
    )
    generate.add_argument("--run", required=True, metavar="RUN_DIR", help="a textgen run folder")
    generate.add_argument(
        "--prompt", default="\n", help="the text to continue (default: a newline)"
    )
    generate.add_argument(
        "--length", type=int, default=500, help="characters to write (default 500)"
    )
    generate.add_argument(
        "--temperature",
        type=float,
        default=0.8,
        help="below 1 more conservative, above 1 more surprising, 0 always the likeliest "
        "(default 0.8)",
    )
    generate.add_argument(
        "--top-k", type=positive_int, help="draw only among the K likeliest characters"
    )
    generate.add_argument("--seed", type=seed, help="the same seed writes the same text")
    generate.add_argument(
        "--continuation-only",
        dest="include_prompt",
        action="store_false",
        help="print only the characters written, without the prompt before them",
    )
    add_threads(generate)
    return generate


def generate(args) -> int:
    from gru.tasks.textgen import TextGenerator

    generator = TextGenerator.load(args.run)
    text = generator.generate(
        args.prompt,
        args.length,
        temperature=args.temperature,
        top_k=args.top_k,
        seed=args.seed,
        include_prompt=args.include_prompt,
    )
    print(text)
    return 0


def add_detect(commands):
    detect = commands.add_parser(
        "detect",
        help="flag anomalies in a series with a trained anomaly model",
        description="Score every point of the run's column in the CSV by its standardized "
        "forecast error and write the flagged points as CSV and the series as a plot.",
        epilog=examples(
            "gru detect --run runs/sunspots --csv monthly-sunspots.csv",
            "gru detect --run runs/sunspots --csv monthly-sunspots.csv --threshold 4 "
            "--out flags.csv",
        ),
    )
    add_run_on_csv(detect, "anomalies", run="an anomaly run folder", csv="the series to check")
    detect.add_argument(
        "--threshold",
        type=positive_float,
        help="flag scores beyond this (default: the one chosen on validation data)",
    )
    add_output_options(detect, writes="the flagged points go, the plot")
    add_threads(detect)
    return detect


def detect(args) -> int:
    from gru.tasks.anomaly import AnomalyDetector, plot_flags

    detector = AnomalyDetector.load(args.run)
    if args.fillna is not None:
        detector.config.fillna = args.fillna
    output, picture = output_paths(args)
    frame = detector.detect(args.csv, threshold=args.threshold)
    flagged = frame[frame["anomaly"]].drop(columns="anomaly")
    write_csv(flagged, output)
    plot_flags(picture, frame, detector.column)
    threshold = args.threshold if args.threshold is not None else detector.threshold
    print(
        f"{len(flagged)} of {len(frame)} points of {detector.column!r} flagged "
        f"(|score| > {threshold:.2f})"
    )
    print(f"wrote {output} and {picture}")
    return 0


# --- explain -------------------------------------------------------------------------------------


def add_explain(commands):
    explain = commands.add_parser(
        "explain",
        help="see what the gates of a trained model did on your input (an HTML page)",
        description="Run the model of RUN_DIR on your input and write a self-contained HTML page "
        "of what its gates did: for a sentiment run, the text token by token colored by the "
        "update and reset gates, P(positive) as the text is read and heatmaps of r and z; for a "
        "forecast run, the last input window of --csv, the forecast beside the actual values "
        "and the gates over the window; for a translate run, the sentence translated greedily "
        "with the attention and both decoder layers' update gates at each generated subword. "
        "The figures are also written as PNG files beside it. Prints P(positive) of the text, "
        "the forecast's summary, or the translation.",
        epilog=examples(
            'gru explain --run runs/sentiment "a wonderful film, though the ending drags"',
            "gru explain --run runs/etth1 --csv ETTh1.csv --out etth1.html",
            'gru explain --run runs/de-en "Ein Mann fährt Fahrrad."',
        ),
    )
    explain.add_argument("--run", required=True, metavar="RUN_DIR", help="a trained run folder")
    explain.add_argument(
        "text", nargs="?", metavar="TEXT", help="the text to explain (sentiment, translate)"
    )
    explain.add_argument("--csv", metavar="PATH", help="the series to explain (forecast)")
    explain.add_argument(
        "--out", metavar="FILE.html", help="where the page goes (default: RUN_DIR/explain.html)"
    )
    add_overwrite(explain, "the page and its PNG files")
    add_threads(explain)
    return explain


def explain(args) -> int:
    from gru._io import check_destination
    from gru.tasks import explanations

    # Where the files go, in the command's words; whether they exist already, once the input is
    # known to be good (`explanations.explain`).
    paths = explanations.destinations(args.run, args.out)
    inputs = explanations.run_inputs(args.run, args.csv, csv_name="--csv")
    for path in paths:
        check_destination(path, "--out", inputs=inputs, overwrite=True, what="HTML file")
    written, headline = explanations.explain_run(
        args.run, args.text, csv=args.csv, out=args.out, overwrite=args.overwrite
    )
    print(headline)
    print(f"wrote {written}")
    return 0


# `gru COMMAND` on a trained run: (add its parser to the commands, run it).
COMMANDS = {
    "predict": (add_predict, predict),
    "evaluate": (add_evaluate, evaluate),
    "listen": (add_listen, listen),
    "compose": (add_compose, compose),
    "translate": (add_translate, translate),
    "forecast": (add_forecast, forecast),
    "generate": (add_generate, generate),
    "detect": (add_detect, detect),
    "explain": (add_explain, explain),
}
