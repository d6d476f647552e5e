"""The explanation page of a translation: where the decoder looked and how much of its memory
each generated word replaced.

An explanation is plain data (`TranslationExplanation`) that `gru.tasks.translate` fills in
(behind ``gru explain`` on a translate run); this module draws it: the figures as PNG files
beside the page and the page itself.

For each generated subword t the page shows the attention over the source subwords (each row
sums to 1) and, for both decoder layers, 1 − z̄_t: the share of the state the new candidate
replaced at that step (h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}), averaged over the units.

Shapes: S source subwords, T output subwords (the end included), K decoder units.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from gru.viz.explain import FOOTER, figure_paths, write_page
from gru.viz.html import cards, details, esc, image, key_value_table, page, table

__all__ = ["TRANSLATION_FIGURES", "TranslationExplanation", "write_translation_explanation"]

TRANSLATION_FIGURES = ("attention", "gates")


@dataclass
class TranslationExplanation:
    """One sentence's translation, step by step: ``source`` (S,) and ``output`` (T,) subwords,
    ``attention`` (T, S) (None for a model without attention), the update gates ``z1`` and
    ``z2`` (T, K) of decoder layers 1 and 2 at each output step, the translation ``text``."""

    sentence: str
    text: str
    source: list[str]
    output: list[str]
    attention: np.ndarray | None
    z1: np.ndarray
    z2: np.ndarray
    method: str = ""
    model: dict = field(default_factory=dict)


def write_translation_explanation(e: TranslationExplanation, out: str | os.PathLike):
    """Write the page of ``e`` to ``out`` (HTML) and its figures beside it
    (``<stem>_attention.png`` when the model attends, ``<stem>_gates.png``); return ``out``."""
    from gru.viz import figures, sequence_figures  # matplotlib loads only when drawn

    pngs = {}
    if e.attention is not None:
        pngs["attention"] = figures.png(
            sequence_figures.attention_map(e.attention, e.source, e.output)
        )
    pngs["gates"] = figures.png(sequence_figures.decoder_gates(e.z1, e.z2, e.output))
    links = {name: path.name for name, path in figure_paths(out, list(pngs)).items()}
    update1, update2 = 1 - e.z1.mean(axis=1), 1 - e.z2.mean(axis=1)
    rows = []
    for t, word in enumerate(e.output):
        looked = "" if e.attention is None else e.source[int(np.argmax(e.attention[t]))]
        rows.append((t + 1, word, looked, float(update1[t]), float(update2[t])))
    body = [
        "<h2>Translation</h2>",
        cards({"source subwords": len(e.source), "output subwords": len(e.output)}),
        f"<p><b>{esc(e.sentence)}</b> → <b>{esc(e.text)}</b></p>",
        f"<p>{esc(e.method)}</p>",
    ]
    if "attention" in pngs:
        body += [
            "<h2>Where the decoder looked</h2>",
            image(
                pngs["attention"],
                "Heatmap of the attention weights: a row per output subword, a column per "
                "source subword, darker is more weight.",
                link=links["attention"],
            ),
        ]
    body += [
        "<h2>The decoder's update gates</h2>",
        "<p>The update gate z of every unit (rows) of both decoder layers at each generated "
        "subword (columns), 0 dark purple, 1 yellow: a z near 0 replaces the unit's memory "
        "with the new candidate, near 1 keeps it.</p>",
        image(
            pngs["gates"],
            "Heatmaps of the update gate z, units by output subwords, of decoder layers 1 and 2.",
            link=links["gates"],
        ),
        details(
            "Values per output subword",
            table(
                ("step", "output", "most attended source", "1 − z̄ layer 1", "1 − z̄ layer 2"), rows
            ),
            open=True,
        ),
    ]
    if e.model:
        body.append(details("Model", key_value_table(e.model)))
    title = e.sentence if len(e.sentence) <= 60 else e.sentence[:57].rstrip() + "…"
    text = page(f"How it translated “{title}”", "\n".join(body), subtitle=e.text, footer=FOOTER)
    return write_page(out, pngs, text, "write_translation_explanation")
