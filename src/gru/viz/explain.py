"""Pages that show a trained GRU's gates at work on one input: a review, or a forecast window.

An explanation is plain data (`TextExplanation`, `ForecastExplanation`) that the task which
owns the model fills in (`gru.tasks.explain`); this module draws it: the figures as PNG files
beside the page and the page itself, one self-contained HTML file (`gru.viz.html`).

The two quantities a reader sees on each token, averaged over the units (and both directions)
of the top layer, which the model's head reads:

    1 − z̄_t   the share of the state replaced by the new candidate at step t: how much reading
              this token changed what the GRU remembers (h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1})
    1 − r̄_t   how much of the past the reset gate hid from that candidate ("forgets the past")

Shapes: K tokens shown, H hidden units, W window steps, F forecast steps, C channels.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gru._io import atomic_write
from gru.viz.html import cards, details, esc, fmt, image, key_value_table, note, page, table
from gru.viz.recording import GateRecording

__all__ = [
    "FORECAST_FIGURES",
    "TEXT_FIGURES",
    "ForecastExplanation",
    "TextExplanation",
    "figure_paths",
    "write_forecast_explanation",
    "write_page",
    "write_text_explanation",
]

UNITS_SHOWN = 24  # a forecast page's heatmaps show at most this many units: those that move most
STILL = 0.2  # gates that move less than this over a window are said to change little
TEXT_FIGURES = ("probability", "gates")  # the PNG files beside a page: <stem>_<name>.png
FORECAST_FIGURES = ("forecast", "gates")
UPDATE_RGB = (234, 88, 12)  # orange: the background, 1 − z̄
RESET_RGB = (37, 99, 235)  # blue: the underline, 1 − r̄
FOOTER = (
    "Written by gru explain. Gate values recomputed in float64 from the model's weights by the "
    "NumPy reference (gru.reference)."
)


@dataclass
class TextExplanation:
    """What a text classifier did with one text, step by step, as plain data.

    ``tokens`` (K,) are the steps the model read that belong to the text, in order; ``kinds``
    says what each is: "word", "unknown" (read as the unknown-word id) or "start" (the start
    marker). ``update`` (K,) is 1 − z̄ and ``reset`` (K,) r̄ at each of them (top layer, mean
    over units and directions); ``probabilities`` (K,) the predicted probability after each,
    computed as ``method`` says; ``prediction`` the model's own output for the whole text.
    ``recording`` holds every gate of the whole read (padding included) and ``steps`` the part
    of it that is the text. ``cut`` lists the tokens not read because the text is longer than
    ``maxlen`` (the first ones when ``truncating`` is "pre", the last ones otherwise), and
    ``padding_steps`` the padding read before the text.
    """

    text: str
    tokens: list[str]
    kinds: list[str]
    update: np.ndarray
    reset: np.ndarray
    probabilities: np.ndarray
    prediction: float
    recording: GateRecording
    steps: slice
    method: str
    maxlen: int
    truncating: str = "pre"
    cut: list[str] = field(default_factory=list)
    padding_steps: int = 0
    vocabulary: int | None = None
    model: dict = field(default_factory=dict)
    label: str = "P(positive)"


@dataclass
class ForecastExplanation:
    """A forecaster's view of one input window, as plain data.

    ``window`` (W, C) are the input values as read, in the data's units, ``columns`` (C,) their
    names and ``target`` the name of the forecast column shown; ``forecast`` (F,) its forecast
    and ``actual`` (≤ F,) the values that followed, None when the data ends with the window.
    ``labels`` (W,) and ``forecast_labels`` (F,) name the steps (dates or rows).
    ``recording`` holds the gates of the GRU that read the window, over its own steps, named
    by ``gate_labels`` (the window's steps, or its segments). ``notes`` are remarks to show.
    """

    window: np.ndarray
    columns: list[str]
    target: str
    forecast: np.ndarray
    actual: np.ndarray | None
    recording: GateRecording
    labels: list[str]
    forecast_labels: list[str]
    gate_labels: list[str]
    notes: list[str] = field(default_factory=list)
    model: dict = field(default_factory=dict)
    source: str = ""


def figure_paths(out: str | os.PathLike, names: Sequence[str]) -> dict[str, Path]:
    """The PNG file written beside page ``out`` for each figure name: ``explain_gates.png``."""
    out = Path(out)
    return {name: out.with_name(f"{out.stem}_{name}.png") for name in names}


def _check_out(out: str | os.PathLike, owner: str) -> Path:
    """``out`` as a Path, if a page can be written there (an existing page is replaced)."""
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"{owner}: out {str(out)!r} is a folder; name the HTML file to write")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"{owner}: the folder of out {str(out)!r} does not exist")
    return out


def write_page(out, pngs: dict[str, bytes], text: str, owner: str) -> Path:
    """Write the page ``text`` to ``out`` and its figures ``pngs`` beside it (`figure_paths`),
    after checking that ``out`` can be written (``owner`` names the writer in errors)."""
    return _write(_check_out(out, owner), pngs, text)


def _write(out: Path, pngs: dict[str, bytes], text: str) -> Path:
    for path, data in zip(figure_paths(out, list(pngs)).values(), pngs.values(), strict=True):
        atomic_write(path, lambda f, data=data: f.write(data))
    return atomic_write(out, lambda f: f.write(text.encode("utf-8")))


SHADE = (0.06, 0.7)  # the opacity of a gate value of 0 and of 1: one fixed scale for every text


def _shade(values: np.ndarray) -> np.ndarray:
    """Opacities for gate values in [0, 1] on the fixed scale `SHADE`: a difference of 0.03
    looks like one, whatever the range of the text."""
    low, high = SHADE
    return low + (high - low) * np.clip(values, 0.0, 1.0)


def _rgba(rgb: tuple[int, int, int], alpha: float) -> str:
    return f"rgba({rgb[0]}, {rgb[1]}, {rgb[2]}, {alpha:.3f})"


def _scale(rgb, values: np.ndarray) -> str:
    """A color bar from 0 to 1, labeled at both ends, with the range of ``values`` marked."""
    low, high = float(values.min()), float(values.max())
    left, width = 100 * low, max(100 * (high - low), 1.0)
    return (
        '<span class="scale">0<span class="swatch" style="background: linear-gradient(to '
        f'right, {_rgba(rgb, SHADE[0])}, {_rgba(rgb, SHADE[1])})">'
        f'<span class="range" style="left: {left:.1f}%; width: {width:.1f}%"></span></span>1'
        f"</span> (this text: {low:.3f}–{high:.3f})"
    )


def _token_spans(e: TextExplanation) -> str:
    forget = 1.0 - e.reset
    fill, line = _shade(e.update), _shade(forget)
    spans = []
    for i, (token, kind) in enumerate(zip(e.tokens, e.kinds, strict=True)):
        what = {"word": "word", "unknown": "unknown word", "start": "start marker"}[kind]
        if kind == "unknown" and e.vocabulary:
            what += f" (not among the model's {e.vocabulary:,} words; read as the unknown id)"
        title = (
            f"{what} {token!r}, step {i + 1}: 1 − z̄ = {e.update[i]:.3f}, r̄ = {e.reset[i]:.3f}, "
            f"{e.label} after it = {e.probabilities[i]:.3f}"
        )
        css = {"word": "tok", "unknown": "tok unk", "start": "tok mark"}[kind]
        style = (
            f"background-color: {_rgba(UPDATE_RGB, fill[i])}; "
            f"border-bottom-color: {_rgba(RESET_RGB, line[i])}"
        )
        spans.append(
            f'<span class="{css}" data-step="{i + 1}" title="{esc(title)}" style="{style}">'
            f"{esc(token)}</span>"
        )
    cut = [
        f'<span class="tok cut" title="{esc("not read: cut to the model" + chr(39) + "s maxlen")}">'
        f"{esc(token)}</span>"
        for token in e.cut
    ]
    if e.truncating == "pre":
        spans = cut + spans
    else:
        spans = spans + cut
    return f'<div class="tokens" id="tokens">{"".join(spans)}</div>'


def _legend(e: TextExplanation) -> str:
    forget = 1.0 - e.reset
    return (
        '<div class="legend">'
        f"<span>background: share of the state replaced, 1 − z̄: {_scale(UPDATE_RGB, e.update)}"
        "</span>"
        f"<span>underline: past hidden by the reset gate, 1 − r̄: {_scale(RESET_RGB, forget)}"
        "</span>"
        '<span><span class="dashed">dashed</span> unknown word</span>'
        "</div>"
    )


def _text_notes(e: TextExplanation) -> list[str]:
    """What a reader of the page should know: the text was cut, padded, or had unknown words."""
    notes = []
    if e.cut:
        where = "first" if e.truncating == "pre" else "last"
        notes.append(
            f"The text was truncated: it has {len(e.tokens) + len(e.cut):,} tokens and the model "
            f"reads at most {e.maxlen:,} (maxlen), so its {where} {len(e.cut):,} were not read, "
            "as in training; they are shown struck through and take no part below."
        )
    if e.padding_steps:
        notes.append(
            f"Before the text the model read {e.padding_steps:,} padding steps (it pads in "
            "front, as it was trained); their effect is in the state the text starts from, and "
            "the pictures below start at the text's first token."
        )
    unknown = sum(kind == "unknown" for kind in e.kinds)
    if unknown:
        notes.append(
            f"{unknown:,} word{'s are' if unknown > 1 else ' is'} not in the model's vocabulary"
            + (f" of {e.vocabulary:,} words" if e.vocabulary else "")
            + ": read as the unknown-word id, outlined with dashes."
        )
    return notes


def text_page(e: TextExplanation, pngs: dict[str, bytes], links: dict[str, str]) -> str:
    """The HTML of a text explanation, with the figures ``pngs`` {"probability", "gates"}
    embedded and linked to the files named in ``links``."""
    K = len(e.tokens)
    words = sum(kind != "start" for kind in e.kinds)
    unknown = sum(kind == "unknown" for kind in e.kinds)
    verdict = "positive" if e.prediction > 0.5 else "negative"
    head = cards(
        {
            e.label: e.prediction,
            "predicted": verdict,
            "words read": words,
            "unknown words": unknown,
            "words cut": len(e.cut),
        }
    )
    rows = [
        (i + 1, token, kind, float(e.update[i]), float(e.reset[i]), float(e.probabilities[i]))
        for i, (token, kind) in enumerate(zip(e.tokens, e.kinds, strict=True))
    ]
    body = [
        "<h2>Prediction</h2>",
        head,
        *(note(n) for n in _text_notes(e)),
        "<h2>The text as the GRU read it</h2>",
        "<p>Each token read, colored by its top-layer gates averaged over the units: the darker "
        "the background, the more of the memory this token replaced (1 − z̄); the darker the "
        "underline, the more the reset gate hid the past from the new candidate (1 − r̄). "
        "Both shades are on one fixed scale from 0 to 1, the same for every text; the black "
        "box on each bar marks the range in this text. Hover or long-press a token for its "
        "values.</p>",
        _legend(e),
        _token_spans(e),
        f"<h2>{esc(e.label)} as the text is read</h2>",
        image(
            pngs["probability"],
            f"Line chart of {e.label} after each of the {K} tokens read, ending at "
            f"{e.prediction:.3f}; the dashed line marks 0.5.",
            caption=e.method,
            link=links["probability"],
        ),
        "<h2>The gates, unit by unit</h2>",
        "<p>The reset gate r and the update gate z of every unit (rows) at every token "
        "(columns), for every layer and direction; 0 is dark purple, 1 yellow. A z near 1 keeps "
        "the unit's old memory; a z near 0 replaces it with the candidate. An r near 0 lets the "
        "candidate ignore the past.</p>",
        image(
            pngs["gates"],
            f"Heatmaps of the reset gate r and update gate z, units by tokens, over the {K} "
            "tokens read, for each layer and direction.",
            link=links["gates"],
        ),
        details(
            "Values per token",
            table(("step", "token", "kind", "1 − z̄", "r̄", f"{e.label} after"), rows),
        ),
    ]
    if e.model:
        body.append(details("Model", key_value_table(e.model)))
    title = e.text.strip()
    title = title if len(title) <= 60 else title[:57].rstrip() + "…"
    return page(
        f"What the gates did: “{title}”",
        "\n".join(body),
        subtitle=f"{verdict.capitalize()}, {e.label} = {fmt(e.prediction)}",
        footer=FOOTER,
    )


def write_text_explanation(e: TextExplanation, out: str | os.PathLike) -> Path:
    """Write the page of ``e`` to ``out`` (HTML) and its figures beside it as PNG files
    (``<stem>_probability.png``, ``<stem>_gates.png``); return ``out``."""
    from gru.viz import figures  # matplotlib loads only when a page is drawn

    out = _check_out(out, "write_text_explanation")
    pngs = {
        "probability": figures.png(
            figures.probability_curve(e.probabilities, e.tokens, ylabel=e.label)
        ),
        "gates": figures.png(figures.gate_heatmaps(e.recording, e.tokens, steps=e.steps)),
    }
    links = {name: path.name for name, path in figure_paths(out, list(pngs)).items()}
    return _write(out, pngs, text_page(e, pngs, links))


def moving_units(
    recording: GateRecording, most: int = UNITS_SHOWN
) -> tuple[np.ndarray, float, float]:
    """(the ``most`` units whose r or z moved most over the steps, in order; how far the
    farthest of them moved; how far the farthest of the others moved, 0 if none): a gate's
    move is its max − min over the steps, in any layer or direction."""
    moves = [np.ptp(getattr(g, gate), axis=0) for d in recording.layers for g in d for gate in "rz"]
    move = np.max(np.stack(moves), axis=0)  # (H,)
    order = np.argsort(-move, kind="stable")
    kept, rest = order[:most], order[most:]
    return np.sort(kept), float(move[kept].max()), float(move[rest].max()) if len(rest) else 0.0


def _units_text(recording: GateRecording, steps: int) -> str:
    """What the heatmaps of a forecast page show: every unit, or the units that moved most."""
    H = recording.layers[0][0].r.shape[-1]
    units, top, rest = moving_units(recording)
    if len(units) == H:
        return (
            f"The reset gate r and the update gate z of every unit (rows) at each of the {steps} "
            "steps the GRU read (columns), for every layer and direction; 0 is dark purple, 1 "
            "yellow."
        )
    text = (
        f"The reset gate r and the update gate z at each of the {steps} steps the GRU read "
        f"(columns) for the {len(units)} of its {H} units whose gates moved most over them "
        f"(rows, by unit number): by up to {top:.3f}; no other unit's gate moved more than "
        f"{rest:.3f}. 0 is dark purple, 1 yellow."
    )
    if top < STILL:
        text += (
            f" On this window the gates change little from step to step (no gate by more than "
            f"{top:.2f} of its 0–1 range), so the colors stay close: that is the finding, not "
            "a flaw of the picture."
        )
    return text


def forecast_page(e: ForecastExplanation, pngs: dict[str, bytes], links: dict[str, str]) -> str:
    """The HTML of a forecast explanation, figures {"forecast", "gates"} embedded and linked."""
    W, F = len(e.window), len(e.forecast)
    head = {"steps read": W, "steps forecast": F, f"first forecast of {e.target}": e.forecast[0]}
    notes = list(e.notes)
    if e.actual is not None:
        n = len(e.actual)
        head[f"mean absolute error ({n} steps)"] = float(np.mean(np.abs(e.forecast[:n] - e.actual)))
    else:
        notes.append("The data ends with the window: there are no actual values to compare.")
    forecast_rows = [
        (
            e.forecast_labels[h],
            float(e.forecast[h]),
            "" if e.actual is None or h >= len(e.actual) else float(e.actual[h]),
        )
        for h in range(F)
    ]
    window_rows = [(e.labels[t], *(float(v) for v in e.window[t])) for t in range(W)]
    z = e.recording.unit_mean("z")
    steps = len(e.gate_labels)
    body = [
        "<h2>Forecast</h2>",
        cards(head),
        *(note(n) for n in notes),
        image(
            pngs["forecast"],
            f"Line chart of the {W} steps of {e.target} the model read, followed by its "
            f"{F}-step forecast" + (" and the actual values." if e.actual is not None else "."),
            link=links["forecast"],
        ),
        details("Forecast and actual values", table(("step", "forecast", "actual"), forecast_rows)),
        "<h2>The gates over the window</h2>",
        f"<p>{esc(_units_text(e.recording, steps))} "
        "Where z falls the GRU replaces its memory with what it just read; where z "
        f"stays near 1 it keeps it. Averaged over the top layer's units, z ran from "
        f"{z.min():.3f} to {z.max():.3f}.</p>",
        image(
            pngs["gates"],
            f"Heatmaps of the reset gate r and update gate z, units by steps, over the {steps} "
            "steps the GRU read, for each layer and direction.",
            link=links["gates"],
        ),
        details("The window read", table(("step", *e.columns), window_rows)),
    ]
    if e.model:
        body.append(details("Model", key_value_table(e.model)))
    return page(
        f"What the gates did: forecasting {e.target}",
        "\n".join(body),
        subtitle=e.source or None,
        footer=FOOTER,
    )


def write_forecast_explanation(e: ForecastExplanation, out: str | os.PathLike) -> Path:
    """Write the page of ``e`` to ``out`` (HTML) and its figures beside it as PNG files
    (``<stem>_forecast.png``, ``<stem>_gates.png``); return ``out``."""
    from gru.viz import figures  # matplotlib loads only when a page is drawn

    out = _check_out(out, "write_forecast_explanation")
    index = e.columns.index(e.target)
    pngs = {
        "forecast": figures.png(
            figures.forecast_figure(
                e.window[:, index],
                e.forecast,
                e.actual,
                history_labels=e.labels,
                forecast_labels=e.forecast_labels,
                name=e.target,
            )
        ),
        "gates": figures.png(
            figures.gate_heatmaps(e.recording, e.gate_labels, units=moving_units(e.recording)[0])
        ),
    }
    links = {name: path.name for name, path in figure_paths(out, list(pngs)).items()}
    return _write(out, pngs, forecast_page(e, pngs, links))
