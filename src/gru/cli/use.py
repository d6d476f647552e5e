"""The commands that use a trained run: ``gru predict`` and ``gru evaluate`` (sentiment),
``gru forecast``, ``gru generate`` (textgen), ``gru detect`` (anomaly) and ``gru explain``.
Each loads the run with its task's ``load`` and calls its Python API."""

from __future__ import annotations

from pathlib import Path

from gru.cli.options import (
    add_output_options,
    add_overwrite,
    add_run_on_csv,
    add_threads,
    output_paths,
    positive_float,
    positive_int,
    seed,
    write_csv,
)

__all__ = ["COMMANDS"]


# --- sentiment: predict, evaluate ----------------------------------------------------------------


def add_predict(commands):
    predict = commands.add_parser(
        "predict",
        help="label texts (sentiment) or audio files (speech) with a trained model",
        description="Print, for each text, the predicted label and P(positive) of the sentiment "
        "model in RUN_DIR; for a speech run, each audio file's word and its probability.",
    )
    predict.add_argument(
        "--run", required=True, metavar="RUN_DIR", help="a sentiment or speech run folder"
    )
    predict.add_argument(
        "texts", nargs="*", metavar="TEXT", help="texts to label (speech: audio files)"
    )
    predict.add_argument("--file", metavar="FILE", help="a UTF-8 file with one text per line")
    add_threads(predict)
    return predict


def _lines(file: str) -> list[str]:
    """The lines of --file, each a text."""
    path = Path(file)
    if path.is_dir():
        raise IsADirectoryError(f"--file: {str(path)!r} is a folder; give a text file")
    if not path.is_file():
        raise FileNotFoundError(f"--file: {str(path)!r} does not exist")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"--file: cannot read {str(path)!r} as UTF-8 text: {error}") from None
    if not lines:
        raise ValueError(f"--file: {str(path)!r} is empty; give one text per line")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise ValueError(f"--file: line {number} of {str(path)!r} is empty")
    return lines


def predict(args) -> int:
    from gru.tasks.sentiment import SentimentClassifier

    if _task_of(args.run) == "speech":
        return predict_speech(args)
    texts = list(args.texts) + (_lines(args.file) if args.file is not None else [])
    if not texts:
        raise ValueError("predict: give texts to label, or --file with one text per line")
    classifier = SentimentClassifier.load(args.run)
    for text, p in zip(texts, classifier.predict(texts), strict=True):
        label = "positive" if p > 0.5 else "negative"
        print(f"{label}\t{p:.4f}\t{text}")
    return 0


def _task_of(run: str) -> str | None:
    """The task a run folder's config.json names; None when it cannot be read (the task's own
    ``load`` then says what is wrong with the folder)."""
    import json

    try:
        return json.loads((Path(run) / "config.json").read_text(encoding="utf-8")).get("task")
    except (OSError, ValueError, AttributeError):
        return None


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
        help="score a trained sentiment or speech model on labeled data",
        description="Print the accuracy and loss of the model in RUN_DIR on the test split of "
        "PATH (every review when PATH has no split); for a speech run, on the test recordings "
        "of PATH under the run's protocol (the official split or its held-out speaker).",
    )
    evaluate.add_argument(
        "--run", required=True, metavar="RUN_DIR", help="a sentiment or speech run folder"
    )
    evaluate.add_argument(
        "--data",
        required=True,
        metavar="PATH",
        help="labeled data in any form `gru train sentiment --data` (or speech) reads",
    )
    evaluate.add_argument("--text-column", default="text", help="CSV column of the texts")
    evaluate.add_argument("--label-column", default="label", help="CSV column of the labels")
    add_threads(evaluate)
    return evaluate


def evaluate(args) -> int:
    from gru.tasks.sentiment import SentimentClassifier

    if _task_of(args.run) == "speech":
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


# --- speech: listen ------------------------------------------------------------------------------


def add_listen(commands):
    listen = commands.add_parser(
        "listen",
        help="recognize the words in audio as it arrives, frame by frame (speech runs)",
        description="Feed AUDIO to the speech model of RUN_DIR in chunks as a microphone would "
        "give them: log-mel frames are computed as their samples arrive, the GRU advances one "
        "step per 10 ms frame, and each word heard is printed with its start time and "
        "probability. The last line gives the compute time per frame and the real-time factor.",
    )
    listen.add_argument("--run", required=True, metavar="RUN_DIR", help="a speech run folder")
    listen.add_argument(
        "audio",
        metavar="AUDIO",
        help="an audio file (WAV, FLAC, OGG), or - for raw 16-bit little-endian mono PCM at the "
        "model's sample rate (8000 Hz by default) on stdin",
    )
    listen.add_argument(
        "--chunk-ms", type=positive_float, default=20.0, help="audio per chunk (default 20 ms)"
    )
    listen.add_argument(
        "--frames",
        action="store_true",
        help="also print the running decision after every frame inside a word",
    )
    add_threads(listen)
    return listen


def _pcm_chunks(stream, samples: int):
    """Chunks of raw 16-bit little-endian PCM from a binary ``stream``, as float32 in [-1, 1)."""
    import numpy as np

    rest, seen = b"", 0
    while chunk := stream.read(2 * samples):
        seen += len(chunk)
        chunk, rest = rest + chunk, b""
        if len(chunk) % 2:
            chunk, rest = chunk[:-1], chunk[-1:]
        yield np.frombuffer(chunk, dtype="<i2").astype(np.float32) / 32768
    if seen == 0:
        raise ValueError("listen: stdin held no audio; pipe raw 16-bit mono PCM into gru listen -")
    if rest:
        raise ValueError(f"listen: stdin held {seen} bytes, not whole 16-bit samples")


def listen(args) -> int:
    import sys
    import time

    import torch

    from gru.data.speech import read_audio
    from gru.tasks.speech import SpeechRecognizer

    recognizer = SpeechRecognizer.load(args.run)
    rate = recognizer.config.rate
    chunk = max(1, round(rate * args.chunk_ms / 1000))
    if args.audio == "-":
        pieces = _pcm_chunks(sys.stdin.buffer, chunk)
    else:
        audio = read_audio(args.audio, rate)
        pieces = (audio[i : i + chunk] for i in range(0, len(audio), chunk))
    recognizer.warm_up()
    listener = recognizer.listener()
    listener.trace = [] if args.frames else None
    busy, samples = 0.0, 0
    for piece in pieces:
        started = time.perf_counter()
        heard = listener.push(piece)
        busy += time.perf_counter() - started
        samples += len(piece)
        _say(listener.trace, heard)
    _say(listener.trace, listener.end())
    frames, seconds = max(listener.t, 1), samples / rate
    print(
        f"# {listener.t} frames ({seconds:.2f} s of audio) in {busy:.3f} s: "
        f"{1e6 * busy / frames:.0f} µs per {recognizer.config.hop_ms:g} ms frame, real-time "
        f"factor {busy / max(seconds, 1e-9):.4f}, {torch.get_num_threads()} threads"
    )
    return 0


def _say(trace, heard) -> None:
    for step in trace or []:
        print(f"  {step['time']:7.2f} s  ... {step['word']}  {step['probability']:.3f}")
    if trace:
        trace.clear()
    for word in heard:
        print(f"{word['time']:7.2f} s  {word['word']}\t{word['probability']:.4f}")


# --- forecast, generate, detect ------------------------------------------------------------------


def add_forecast(commands):
    forecast = commands.add_parser(
        "forecast",
        help="forecast the next steps of a series with a trained forecast model",
        description="Forecast the --horizon rows after the end of the CSV with the model of "
        "RUN_DIR (it reads the last --lookback rows) and write them as CSV and a plot.",
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
        "one GRU step per character.",
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
    )
    print(args.prompt + text)
    return 0


def add_detect(commands):
    detect = commands.add_parser(
        "detect",
        help="flag anomalies in a series with a trained anomaly model",
        description="Score every point of the run's column in the CSV by its standardized "
        "forecast error and write the flagged points as CSV and the series as a plot.",
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
        "and the gates over the window. The figures are also written as PNG files beside it.",
    )
    explain.add_argument("--run", required=True, metavar="RUN_DIR", help="a trained run folder")
    explain.add_argument("text", nargs="?", metavar="TEXT", help="the text to explain (sentiment)")
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
    written = explanations.explain(
        args.run, args.text, csv=args.csv, out=args.out, overwrite=args.overwrite
    )
    print(f"wrote {written}")
    return 0


# `gru COMMAND` on a trained run: (add its parser to the commands, run it).
COMMANDS = {
    "predict": (add_predict, predict),
    "evaluate": (add_evaluate, evaluate),
    "listen": (add_listen, listen),
    "forecast": (add_forecast, forecast),
    "generate": (add_generate, generate),
    "detect": (add_detect, detect),
    "explain": (add_explain, explain),
}
