"""``gru explain``: what the gates of a trained model did on the user's own input.

The task that owns a model knows how it reads its input; this module replays that reading
through the task's public API for `gru.viz`, which records the gates (`gru.viz.record_gates`)
and draws the page (`gru.viz.explain`):

    explain(run_dir, text="a review")        a sentiment run: the review token by token
    explain(run_dir, csv="series.csv")       a forecast run: the last input window of a CSV
    explain_text(classifier, text)           the same from Python, as a `TextExplanation`
    explain_series(forecaster, "series.csv") and as a `ForecastExplanation`

`EXPLAINERS` is the one table from a run's task to its explanation: a task that can be
explained adds a line there.

Shapes: T steps the model reads, K of them the text's tokens, E embedding size, H units;
W lookback rows, F horizon rows, C channels read, S segment length, N = W // S segments.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from gru import checkpoint
from gru._io import check_destination
from gru.data.text import OOV, encode, limit_vocabulary, pad_sequences, tokenize
from gru.tasks.forecast import Forecaster
from gru.tasks.runs import a_run
from gru.tasks.sentiment import SentimentClassifier
from gru.tasks.translate import Translator
from gru.viz import (
    ForecastExplanation,
    TextExplanation,
    record_gates,
    write_forecast_explanation,
    write_text_explanation,
)
from gru.viz.explain import FORECAST_FIGURES, TEXT_FIGURES, figure_paths
from gru.viz.explain_translation import (
    TRANSLATION_FIGURES,
    TranslationExplanation,
    write_translation_explanation,
)

__all__ = [
    "EXPLAINERS",
    "START_TOKEN",
    "destinations",
    "explain",
    "explain_run",
    "explain_series",
    "explain_text",
    "headline",
    "run_inputs",
]

EXPLAIN_FILE = "explain.html"
START_TOKEN = "⟨start⟩"


def explain_text(classifier, text: str) -> TextExplanation:
    """How the `SentimentClassifier` ``classifier`` read ``text``, step by step.

    The text is encoded, cut and padded exactly as `SentimentClassifier.predict` does; the gates
    are recorded over every step the model reads (padding included) and shown on the text's
    tokens. P(positive) after each token is, for a one-directional model whose head reads the
    last state, the head applied to the state h_t (what the model would answer if the text
    ended there, after the same padding); for any other model (bidirectional, pooled features),
    the model run on each prefix of the tokens read, padded as it pads.
    """
    if classifier.model is None:
        raise ValueError("explain: the classifier has no model; fit or load one first")
    if not isinstance(text, str):
        raise TypeError(f"explain: the text must be a string, got {type(text).__name__}")
    if not text.strip():
        raise ValueError("explain: the text is empty; give the review to explain")
    if classifier.word_index is None:
        raise ValueError(
            "explain: this model was trained on encoded reviews without a word index, so it "
            "cannot encode text"
        )
    words = tokenize(text)
    if not words:
        raise ValueError(
            f"explain: the text {text!r} has no words once lower-cased and stripped of "
            "punctuation, as the model's tokenizer does"
        )
    c = classifier.config
    model = classifier.model
    ids = limit_vocabulary(encode(text, classifier.word_index), c.num_words)  # (1 + words,)
    names = [START_TOKEN, *words]
    kinds = ["start"] + ["unknown" if i == OOV else "word" for i in ids[1:]]
    total, K = len(ids), min(len(ids), c.maxlen)
    kept = slice(total - K, total) if c.truncating == "pre" else slice(0, K)
    cut_part = slice(0, total - K) if c.truncating == "pre" else slice(K, total)
    x, _ = pad_sequences([ids], c.maxlen, padding=c.padding, truncating=c.truncating)  # (1, T)
    if c.padding == "pre":
        read, steps, padding_steps = x[0], slice(c.maxlen - K, c.maxlen), c.maxlen - K
    else:  # with lengths the model stops at the text's end
        read, steps, padding_steps = x[0, :K], slice(0, K), 0

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            device = next(model.parameters()).device
            e = model.embedding(torch.from_numpy(read).to(device))  # (T, E)
            recording = record_gates(model.rnn, e.cpu())
            probabilities, method = _prefix_probabilities(classifier, ids[kept], recording, steps)
    finally:
        model.train(was_training)
    prediction = float(classifier.predict([text])[0])
    return TextExplanation(
        text=text,
        tokens=names[kept],
        kinds=kinds[kept],
        update=1.0 - recording.unit_mean("z")[steps],
        reset=recording.unit_mean("r")[steps],
        probabilities=probabilities,
        prediction=prediction,
        recording=recording,
        steps=steps,
        method=method,
        maxlen=c.maxlen,
        truncating=c.truncating,
        cut=names[cut_part],
        padding_steps=padding_steps,
        vocabulary=c.num_words,
        model={
            "layer": classifier.layer_name,
            "embedding": f"{c.num_words:,} words × {c.embedding_dim}",
            "GRU": f"{c.num_layers} layer(s) of {c.hidden_size} units"
            + (", bidirectional" if c.bidirectional else "")
            + (", reset gate after" if c.reset_after else ", reset gate before"),
            "head reads": c.features,
            "reading": f"maxlen {c.maxlen}, padding {c.padding!r}, truncating {c.truncating!r}",
        },
    )


def _prefix_probabilities(classifier, ids: np.ndarray, recording, steps: slice):
    """P(positive) (K,) after each of the K tokens ``ids`` read, and how it was computed."""
    model = classifier.model
    head = model.head
    if model.features == "last" and model.directions == 1:
        h = recording.top[0].h[steps]  # (K, H): the state after each token
        w = head.weight.detach().cpu().double().numpy()  # (1, H)
        b = head.bias.detach().cpu().double().numpy()  # (1,)
        logits = h @ w.T[:, 0] + b[0]  # (K,)
        method = (
            "P(positive) after each token: the model's output layer applied to the GRU's state "
            "right after that token, i.e. what the model would answer if the text ended there. "
            "The last point is the model's prediction."
        )
        return 1.0 / (1.0 + np.exp(-logits)), method
    c = classifier.config
    prefixes = [ids[: k + 1] for k in range(len(ids))]
    x, lengths = pad_sequences(prefixes, c.maxlen, padding=c.padding, truncating=c.truncating)
    logits = classifier.logits(torch.from_numpy(x), torch.from_numpy(lengths).clamp_(min=1))
    method = (
        "P(positive) after each token: the whole model run on the tokens up to that one, padded "
        "as the model pads (its head also reads "
        + ("both directions" if model.directions == 2 else "its outputs over time")
        + ", so no single state holds the answer). The last point is the model's prediction."
    )
    return torch.sigmoid(logits).double().numpy(), method


def _explain_forecast(run_dir: Path, text, csv, backend: str) -> ForecastExplanation:
    if text is not None:
        raise ValueError("explain: a forecast run explains a series (--csv PATH), not a text")
    if csv is None:
        raise ValueError("explain: give the series to explain with --csv PATH")
    return explain_series(Forecaster.load(run_dir, backend=backend), csv)


def _explain_sentiment(run_dir: Path, text, csv, backend: str) -> TextExplanation:
    if csv is not None:
        raise ValueError("explain: --csv is for forecast runs; give a sentiment run a text")
    if text is None:
        raise ValueError("explain: give the text to explain (a review in quotes)")
    return explain_text(SentimentClassifier.load(run_dir, backend=backend), text)


def _explain_translate(run_dir: Path, text, csv, backend: str) -> TranslationExplanation:
    if csv is not None:
        raise ValueError("explain: --csv is for forecast runs; give a translate run a sentence")
    if text is None:
        raise ValueError("explain: give the sentence to translate and explain (in quotes)")
    return Translator.load(run_dir, backend=backend).explanation(text)


# A run's task: (its explanation from (run folder, text, csv, backend), the page's writer,
# the names of the figures written beside the page).
EXPLAINERS = {
    "sentiment": (_explain_sentiment, write_text_explanation, TEXT_FIGURES),
    "forecast": (_explain_forecast, write_forecast_explanation, FORECAST_FIGURES),
    "translate": (_explain_translate, write_translation_explanation, TRANSLATION_FIGURES),
}


def _task(run_dir: Path) -> str:
    task = checkpoint.load_config(run_dir)["task"]
    if task not in EXPLAINERS:
        raise ValueError(
            f"explain: {str(run_dir)!r} is {a_run(task)}, and gru explain explains "
            f"{', '.join(list(EXPLAINERS)[:-1])} and {list(EXPLAINERS)[-1]} runs only"
        )
    return task


def destinations(run_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> list[Path]:
    """The files `explain` writes for the run ``run_dir``: the page ``out`` (default:
    explain.html in the run folder), then its figures beside it."""
    run_dir = checkpoint.check_run_dir(run_dir)
    page = Path(out) if out is not None else run_dir / EXPLAIN_FILE
    return [page, *figure_paths(page, EXPLAINERS[_task(run_dir)][2]).values()]


def run_inputs(run_dir: str | os.PathLike, csv=None, *, csv_name: str = "csv") -> dict:
    """{how an input is named: its path} of an explanation: the run's own files (which the
    page must never replace) and the ``csv`` read (named ``csv_name``)."""
    run_dir = Path(run_dir)
    names = [p.name for p in run_dir.iterdir() if p.suffix in (".json", ".safetensors")]
    return {csv_name: csv, **{f"the run's {n}": run_dir / n for n in sorted(names)}}


def explain(
    run_dir: str | os.PathLike,
    text: str | None = None,
    *,
    csv: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    backend: str = "auto",
    overwrite: bool = False,
) -> Path:
    """Explain the model of ``run_dir`` on ``text`` (sentiment) or ``csv`` (forecast); write the
    page to ``out`` (default: explain.html in the run folder) and its figures beside it
    (`destinations`), and return the page's path.

    Nothing is written unless the whole explanation succeeds; no file of the run or ``csv``
    is ever replaced, and any other existing file only with ``overwrite=True``; a bad input
    raises ValueError (FileNotFoundError for a missing file, FileExistsError for an existing
    one) naming it.
    """
    return explain_run(run_dir, text, csv=csv, out=out, backend=backend, overwrite=overwrite)[0]


def explain_run(run_dir, text=None, *, csv=None, out=None, backend="auto", overwrite=False):
    """`explain`, returning (the page's path, the `headline` of the explanation): what
    ``gru explain`` prints."""
    run_dir = checkpoint.check_run_dir(run_dir)
    task = _task(run_dir)
    out = Path(out) if out is not None else run_dir / EXPLAIN_FILE
    build, write, _ = EXPLAINERS[task]
    explanation = build(run_dir, text, csv, backend)
    check = {"inputs": run_inputs(run_dir, csv), "overwrite": overwrite, "what": "HTML file"}
    for path in destinations(run_dir, out):  # once the inputs are known to be good
        check_destination(path, "explain: out", **check, replace="overwrite=True (--overwrite)")
    explanation.model = {"run": str(run_dir), **explanation.model}
    return write(explanation, out), headline(explanation)


def headline(explanation: TextExplanation | ForecastExplanation) -> str:
    """What the explained model answered, in a line: P(positive) of the text and its label,
    or the forecast's range and, when the values that followed are known, its MAE on them."""
    if isinstance(explanation, TranslationExplanation):
        return f"translation: {explanation.text}"
    if isinstance(explanation, TextExplanation):
        p = explanation.prediction
        label = "positive" if p > 0.5 else "negative"
        words = sum(kind != "start" for kind in explanation.kinds)
        cut = sum(token != START_TOKEN for token in explanation.cut)
        cut = f", {cut} more cut (maxlen {explanation.maxlen})" if cut else ""
        return f"{explanation.label} {p:.4f} ({label}) after reading {words} words{cut}"
    e = explanation
    f = np.asarray(e.forecast, dtype=float)
    line = (
        f"forecast of {e.target} for {len(f)} steps ({e.forecast_labels[0]} to "
        f"{e.forecast_labels[-1]}): from {f.min():.4g} to {f.max():.4g}, mean {f.mean():.4g}"
    )
    if e.actual is not None and len(e.actual):
        actual = np.asarray(e.actual, dtype=float)
        mae = float(np.abs(f[: len(actual)] - actual).mean())
        last = float(e.window[-1, e.columns.index(e.target)])  # persistence: the last value
        line += (
            f"; MAE {mae:.4g} on the {len(actual)} values that followed (repeating the last "
            f"value: {float(np.abs(last - actual).mean()):.4g})"
        )
    return line


def explain_series(forecaster: Forecaster, data) -> ForecastExplanation:
    """How the `Forecaster` ``forecaster`` read one window of ``data`` (a CSV path or a
    DataFrame with the columns it was trained on).

    The window is the last W rows that still leave F rows after them, so the forecast can be
    set beside what happened; a series shorter than W + F gives the window that ends where the
    series allows and as many actual values as follow (none when it has exactly W rows: then the
    forecast is of the future). The gates are those of the GRU that reads the window: over its
    W steps for the plain GRU forecaster; over its N segments of the target's channel for
    SegRNN (which reads segments, one channel at a time).
    """
    if forecaster.model is None:
        raise ValueError("explain: the forecaster has no model; fit or load one first")
    c = forecaster.config
    series = forecaster.read(data, columns=forecaster.columns)
    n, W, F = len(series), c.lookback, c.horizon
    if n < W:
        raise ValueError(
            f"explain: {series.source} has {n} rows, fewer than the model's lookback of {W}: "
            f"it reads the last {W} rows before a forecast, so give at least {W}"
        )
    end = max(W, n - F)  # the window is rows [end − W, end)
    inputs, outputs = forecaster.channels()
    target = forecaster.columns.index(forecaster.target)
    window = series.values[end - W : end]  # (W, all columns), the data's units
    scaled = forecaster.scaler.transform(window)[:, inputs]  # (W, C)
    x = torch.from_numpy(scaled).float().unsqueeze(0)  # (1, W, C)
    y = forecaster.forecast_windows(x)[0].double().numpy()  # (F, K)
    forecast = forecaster.scaler.inverse(y, outputs)[:, outputs.index(target)]  # (F,)
    actual = series.values[end : end + F, target]  # (≤ F,)
    labels = _step_labels(series, end - W, W, F)
    recording, gate_labels, notes = _forecaster_gates(forecaster, scaled, labels[:W])
    if n < W + F:
        notes.append(
            f"The series has {n} rows, fewer than lookback {W} + horizon {F}: "
            + (
                f"only the first {len(actual)} forecast steps have actual values to compare."
                if len(actual)
                else "the window is its end, so this is a forecast of the future."
            )
        )
    return ForecastExplanation(
        window=window[:, inputs],
        columns=[forecaster.columns[i] for i in inputs],
        target=forecaster.target,
        forecast=forecast,
        actual=actual if len(actual) else None,
        recording=recording,
        labels=labels[:W],
        forecast_labels=labels[W:],
        gate_labels=gate_labels,
        notes=notes,
        model={
            "model": c.model,
            "hidden size": c.hidden_size,
            "lookback, horizon": f"{W}, {F}",
            "features": c.features,
        },
        source=f"{series.source}: rows {end - W}–{end - 1} read, {F} forecast",
    )


def _step_labels(series, start: int, W: int, F: int) -> list[str]:
    """A label for each of the W + F rows from ``start`` of ``series``: its time (past the
    data's end, the steps go on at the median interval of the W window rows), or "row r"
    when it has none."""
    if series.time is None:
        return [f"row {r}" for r in range(start, start + W + F)]
    time = series.time[start : min(len(series), start + W + F)]
    step = np.median(np.diff(time[:W].asi8)) if W > 1 else 0
    future = [time[-1] + (k + 1) * pd.Timedelta(int(step)) for k in range(W + F - len(time))]
    return [str(t) for t in time] + [str(t) for t in future]


def _forecaster_gates(forecaster: Forecaster, scaled: np.ndarray, labels: list[str]):
    """(the gates of the GRU that reads the scaled window (W, C), a label per step it reads,
    notes): every step relative to the last value for the plain GRU forecaster; SegRNN's
    segments of the target's channel."""
    model = forecaster.model
    W = len(scaled)
    with torch.no_grad():
        if not (hasattr(model, "n_in") and hasattr(model, "embed")):  # the plain GRU
            relative = torch.from_numpy(scaled - scaled[-1]).float()  # (W, C)
            return record_gates(model.rnn, relative), labels, []
        S, N = model.segment, model.n_in  # SegRNN: segments of a channel
        ci = forecaster.channels()[0].index(forecaster.columns.index(forecaster.target))
        part = scaled[W - N * S :, ci] - scaled[-1, ci]  # (N·S,): relative to "now"
        segments = torch.from_numpy(part).float().reshape(N, S)  # (N, S)
        recording = record_gates(model.rnn, model.embed(segments))  # N steps
    notes = [
        f"SegRNN reads the window as {N} segments of {S} steps, one channel at a time: the gates "
        f"are shown per segment (labeled by its last step) for {forecaster.target}'s channel, "
        "and the decoder's one step per output segment is not shown."
    ]
    if W > N * S:
        notes.append(f"The first {W - N * S} steps of the window are not read by SegRNN.")
    return recording, [labels[W - N * S + (i + 1) * S - 1] for i in range(N)], notes
