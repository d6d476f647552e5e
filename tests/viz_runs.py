"""Tiny training runs for the tests of gru.viz: seconds each, every file a real run writes."""

from __future__ import annotations

import re

from gru.tasks import Adder, SentimentClassifier

# A seed-preset model small enough to train in about a second on the packaged sample.
SENTIMENT = {
    "limit": 300,
    "num_words": 300,
    "maxlen": 20,
    "embedding_dim": 4,
    "hidden_size": 6,
    "epochs": 2,
    "lr": 1e-2,
}
# Longer than maxlen (27 words, 28 tokens with the start marker), with words outside a 300-word vocabulary.
LONG_REVIEW = (
    "This movie was wonderful, a zyzzyva of a film! I loved it; great acting, great story, and "
    "the ending was moving but too long for me honestly."
)


def sentiment_run(folder, preset: str = "seed", **overrides):
    """(classifier, run folder) of a tiny sentiment run trained into ``folder``."""
    classifier = SentimentClassifier.from_preset(preset, **{**SENTIMENT, **overrides})
    classifier.fit("sample", out=folder, quiet=True)
    return classifier, folder


def adding_run(folder):
    """The folder of a tiny adding-problem run."""
    adder = Adder(
        seq_len=8, hidden_size=4, n_train=256, n_test=64, epochs=1, batch_size=64, lr=1e-3
    )
    adder.fit(out=folder, quiet=True)
    return folder


def assert_self_contained(page: str) -> None:
    """``page`` loads nothing from anywhere: no script, stylesheet link, frame, font or URL in
    any attribute or style except data: URIs, and every image has alt text."""
    lowered = page.lower()
    for forbidden in ("<script", "<link", "<iframe", "<object", "<embed", "@import", "url("):
        assert forbidden not in lowered, forbidden
    for attribute, value in re.findall(r'\b(src|srcset|poster|data)="([^"]*)"', page):
        assert value.startswith("data:image/png;base64,"), (attribute, value[:80])
    for tag in re.findall(r"<img\b[^>]*>", page):
        alt = re.search(r'\balt="([^"]+)"', tag)
        assert alt and alt.group(1).strip(), tag[:120]
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "default-src 'none'; img-src data:" in page


def series_frame(n: int = 600, seed: int = 0):
    """An hourly DataFrame of n rows: "load", a daily cycle with noise, and "temp", which
    follows it with a lag; a stand-in for ETT-like data."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    t = np.arange(n)
    load = 10 + 3 * np.sin(2 * np.pi * t / 24) + 0.3 * rng.normal(size=n)
    temp = 20 + np.roll(load, 3) + 0.2 * rng.normal(size=n)
    date = pd.date_range("2024-01-01", periods=n, freq="h")
    return pd.DataFrame({"date": date.astype(str), "load": load, "temp": temp})


def forecast_run(folder, **overrides):
    """(forecaster, run folder) of a tiny SegRNN forecast run on `series_frame`."""
    from gru.tasks import Forecaster

    settings = {"features": "M", "segment": 6, "hidden_size": 8, "epochs": 1, "batch_size": 32}
    forecaster = Forecaster(lookback=24, horizon=12, model="segrnn", **{**settings, **overrides})
    forecaster.fit(series_frame(), target="temp", out=folder, quiet=True)
    return forecaster, folder


def textgen_run(folder, text_file, **overrides):
    """(generator, run folder) of a tiny character model trained on ``text_file``, which is
    written first with a few thousand characters of rhyme."""
    from gru.tasks import TextGenerator

    lines = ["ROMEO: the rose by any other name", "JULIET: would smell as sweet, my love"]
    text_file.write_text("\n".join(lines[i % 2] for i in range(120)) + "\n", encoding="utf-8")
    settings = {"embedding_dim": 8, "hidden_size": 16, "num_layers": 1, "seq_len": 16}
    settings.update(batch_size=8, epochs=1, lr=1e-2)
    generator = TextGenerator(**{**settings, **overrides})
    generator.fit(text_file, out=folder, quiet=True)
    return generator, folder


def anomaly_run(folder, **overrides):
    """(detector, run folder) of a tiny anomaly run on the "load" column of `series_frame`."""
    from gru.tasks import AnomalyDetector

    settings = {"lookback": 16, "baseline_window": 16, "hidden_size": 8, "epochs": 1}
    detector = AnomalyDetector(**{**settings, **overrides})
    detector.fit(series_frame(1200), column="load", out=folder, quiet=True)
    return detector, folder
