"""Tiny training runs for the tests of gru.viz: seconds each, every file a real run writes."""

from __future__ import annotations

import re

from gru.tasks import SentimentClassifier, adding
from gru.training import TrainConfig

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
    config = adding.AddingConfig(
        seq_len=8, hidden_size=4, n_train=256, n_test=64, train=TrainConfig(epochs=1, batch_size=64)
    )
    adding.run(config, out=folder, quiet=True)
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
