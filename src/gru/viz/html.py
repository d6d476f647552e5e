"""Building blocks of the self-contained HTML pages: one file, no network, readable anywhere.

Every page is a single file: the CSS is inline, pictures are PNG data URIs, and there is no
script at all. A Content-Security-Policy forbids loading anything but those data URIs, so even
a string that slipped through could fetch nothing. Every string that comes from a user, a
file or a model passes through `esc`. The layout is one column of at most 64 rem that wraps
on a phone: pictures scale to the width, tables scroll sideways inside their own box.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "Num",
    "cards",
    "details",
    "esc",
    "fmt",
    "image",
    "key_value_table",
    "note",
    "page",
    "table",
]

CSS = """
:root { --ink: #1f2328; --muted: #57606a; --line: #d0d7de; --soft: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 64rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; margin: .5rem 0; line-height: 1.25; overflow-wrap: anywhere; }
h2 { font-size: 1.2rem; margin: 2rem 0 .75rem; padding-bottom: .2rem;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 1rem; margin: 1.25rem 0 .5rem; }
p, li { overflow-wrap: anywhere; }
.sub { color: var(--muted); margin-top: 0; }
figure { margin: 1rem 0; }
img { display: block; max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: .9rem; margin-top: .3rem; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: .9rem; margin: .5rem 0; }
th, td { border: 1px solid var(--line); padding: .25rem .5rem; text-align: left;
  vertical-align: top; overflow-wrap: break-word; }
th { background: var(--soft); }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.long { overflow-wrap: anywhere; min-width: 8rem; }
td.lines { white-space: pre-wrap; font-family: ui-monospace, "DejaVu Sans Mono", monospace;
  font-size: .85rem; min-width: 14rem; overflow-wrap: anywhere; }
.note { border-left: 4px solid #d97706; background: #fffbeb; padding: .5rem .75rem;
  margin: .75rem 0; }
.note.error { border-color: #dc2626; background: #fef2f2; }
.cards { display: flex; flex-wrap: wrap; gap: .75rem; margin: .75rem 0; }
.card { border: 1px solid var(--line); border-radius: .5rem; padding: .5rem .75rem;
  min-width: 9rem; flex: 1 1 9rem; }
.card .label { color: var(--muted); font-size: .85rem; }
.card .value { font-size: 1.35rem; font-weight: 600; overflow-wrap: anywhere; }
.tokens { display: flex; flex-wrap: wrap; gap: .35rem .25rem; line-height: 1.3;
  padding: .5rem; border: 1px solid var(--line); border-radius: .5rem; }
.tok { padding: .1rem .3rem; border-radius: .25rem; border-bottom: 5px solid transparent;
  overflow-wrap: anywhere; }
.tok.unk { outline: 1px dashed #57606a; outline-offset: -1px; font-style: italic; }
.tok.mark { font-size: .8rem; color: var(--muted); }
.tok.cut { color: #8c959f; text-decoration: line-through; }
.legend { display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; font-size: .9rem; margin: .5rem 0; }
.swatch { display: inline-block; width: 8rem; height: .9rem; vertical-align: middle;
  border: 1px solid var(--line); margin: 0 .3rem; position: relative; }
.scale { white-space: nowrap; }
.swatch .range { position: absolute; top: -3px; bottom: -3px; min-width: 2px;
  border: 2px solid var(--ink); border-radius: 2px; }
.dashed { display: inline-block; padding: 0 .3rem; outline: 1px dashed #57606a;
  font-style: italic; }
details { margin: .75rem 0; }
summary { cursor: pointer; }
footer { color: var(--muted); font-size: .85rem; margin: 2rem 0 1rem; }
"""

LIST_ITEMS = 8  # longer lists are shown by their ends and length
LONG_TEXT = 40  # cells with more characters wrap anywhere, not only between words

# Nothing but the page itself and its data: URIs may load; no script may run.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


class Num(str):
    """A number already written for the reader ("0.06 s"): a table sets it right-aligned, as
    it sets numbers."""


def esc(value) -> str:
    """``value`` as text safe inside HTML elements and quoted attributes."""
    return html.escape(str(value), quote=True)


def fmt(value) -> str:
    """A short, readable form of a metric or setting (not yet escaped)."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
            return f"{value:.3e}"
        return f"{value:.4f}".rstrip("0").rstrip(".") if abs(value) < 1e3 else f"{value:,.1f}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {fmt(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        if len(value) > LIST_ITEMS:  # a long series: its ends and its length
            ends = [*map(fmt, value[:3]), "…", *map(fmt, value[-2:])]
            return "[" + ", ".join(ends) + f"] ({len(value):,} values)"
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    return str(value)


def _cell(value) -> str:
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if numeric or isinstance(value, Num):
        return f'<td class="num">{esc(fmt(value))}</td>'
    if isinstance(value, str) and "\n" in value:  # text of several lines (a generated sample)
        return f'<td class="lines">{esc(value)}</td>'
    text = fmt(value)
    if len(text) > LONG_TEXT:  # a path or a list: may wrap anywhere, so the table fits a phone
        return f'<td class="long">{esc(text)}</td>'
    return f"<td>{esc(text)}</td>"


def table(
    header: Sequence[str] | None, rows: Iterable[Sequence], *, caption: str | None = None
) -> str:
    """A table of ``rows`` under ``header`` (None: no header row), numbers right-aligned, in a
    box that scrolls sideways when it is wider than the screen."""
    head = ""
    if header is not None:
        cells = "".join(f'<th scope="col">{esc(h)}</th>' for h in header)
        head = f"<thead><tr>{cells}</tr></thead>"
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f'<div class="scroll"><table>{cap}{head}<tbody>{body}</tbody></table></div>'


def key_value_table(items: Mapping, *, header: Sequence[str] | None = None) -> str:
    """A two-column table of ``items``; nested mappings become dotted keys ("train.lr")."""

    def flat(mapping: Mapping, prefix: str = ""):
        for key, value in mapping.items():
            if isinstance(value, Mapping) and value:
                yield from flat(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}", value

    return table(header, list(flat(items)))


def image(png: bytes, alt: str, *, caption: str | None = None, link: str | None = None) -> str:
    """A PNG embedded as a data URI, with ``alt`` text, an optional caption, and a link to the
    same picture as a file beside the page."""
    uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    img = f'<img src="{uri}" alt="{esc(alt)}">'
    text = esc(caption) if caption else ""
    if link:
        text += f' <a href="{esc(link)}">{esc(link)}</a>'
    cap = f"<figcaption>{text.strip()}</figcaption>" if text else ""
    return f"<figure>{img}{cap}</figure>"


def note(text: str, *, error: bool = False) -> str:
    """A visible remark: something cut, missing or unusual that the reader should know."""
    return f'<p class="note{" error" if error else ""}" role="note">{esc(text)}</p>'


def cards(items: Mapping[str, object]) -> str:
    """A row of headline numbers that wraps on a narrow screen."""
    parts = (
        f'<div class="card"><div class="label">{esc(label)}</div>'
        f'<div class="value">{esc(fmt(value))}</div></div>'
        for label, value in items.items()
    )
    return f'<div class="cards">{"".join(parts)}</div>'


def details(summary: str, body: str, *, open: bool = False) -> str:
    """A section the reader can fold; ``body`` is HTML already."""
    return f"<details{' open' if open else ''}><summary>{esc(summary)}</summary>{body}</details>"


def page(title: str, body: str, *, subtitle: str | None = None, footer: str | None = None) -> str:
    """A complete HTML document; ``body`` is HTML already, ``title`` and the rest plain text."""
    sub = f'<p class="sub">{esc(subtitle)}</p>' if subtitle else ""
    foot = f"<footer>{esc(footer)}</footer>" if footer else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>\n"
        f"<body><main><h1>{esc(title)}</h1>{sub}\n{body}\n{foot}</main></body></html>\n"
    )
