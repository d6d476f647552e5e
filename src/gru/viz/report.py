"""report.html: one self-contained page that tells what a training run did.

`write_report(run_dir)` reads what a run folder already holds and renders it; it computes
nothing about the model. The tasks put plain data into the folder's files:

    config.json     {"task", "gru_version", "config": {...}, "data": {...}, ...}: the settings
    metrics.json    "history"    [{"epoch", "train_loss", ..., "seconds"}]  (gru.training.fit)
                    "test"       {metric: value} on held-out data, or null
                    "validation" {metric: value} on the validation data: shown beside the test
                                 scores, or in their place when a task has no test data
                    "baselines"  {name: {metric: value}}: simple predictors to beat
                    "data"       {what: value}: a summary of the data the run read
                    "examples"   {"columns": [name], "rows": [[value]], "caption": text}:
                                 a few predictions, forecasts or samples (or [{column: value}],
                                 also under "samples"; or a list of such tables)
                    "figures"    {file.png: alt text}: the task's own pictures in the folder
                                 (or "plots" {label: file.png})
                    "notes"      [text]: anything the reader should know (data cut, resumed)
                    and any other plain value (seconds, layer, threads), shown as it is
    *.png           training_curves.png and the task's figures

Every part is optional except config.json: a section without data is left out, and a file that
cannot be read is named in the report instead of breaking it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from gru._io import atomic_write
from gru.checkpoint import CURVES_FILE
from gru.viz.html import (
    cards,
    details,
    esc,
    fmt,
    image,
    key_value_table,
    note,
    page,
    table,
)

__all__ = ["REPORT_FILE", "report_html", "write_report"]

REPORT_FILE = "report.html"
# metrics.json keys that have a section of their own; every other one goes under "Run".
SECTIONS = (
    "history", "test", "validation", "baselines", "data", "examples", "samples", "figures",
    "plots", "notes", "best_epoch",
)  # fmt: skip


def _read_json(path: Path) -> tuple[dict | None, str | None]:
    """(the object in ``path``, None) or (None, why it could not be read)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return None, f"{path.name} could not be read: {error}"
    if not isinstance(value, dict):
        return None, f"{path.name} does not hold a JSON object"
    return value, None


def _explain_figures(run_dir: Path) -> set[str]:
    """PNG files written by `gru explain` beside its pages in the folder (not the run's)."""
    stems = [f"{p.stem}_" for p in run_dir.glob("*.html") if p.name != REPORT_FILE]
    return {p.name for p in run_dir.glob("*.png") if p.name.startswith(tuple(stems))}


def _results(metrics: dict) -> str:
    test = metrics.get("test")
    validation = metrics.get("validation")
    baselines = metrics.get("baselines") or {}
    test = test if isinstance(test, dict) and test else None
    validation = validation if isinstance(validation, dict) and validation else None
    scores, split = (test, "test") if test is not None else (validation, "validation")
    if scores is None:
        return note(
            "No test score in this run's metrics."
            + (
                " The validation scores are in the training history."
                if metrics.get("history")
                else ""
            )
        )
    names = [n for n, v in baselines.items() if isinstance(v, dict)]
    also = validation if split == "test" else None  # the model's validation scores beside
    header = ["metric", "this model" if also is None else "this model, test"]
    header += [] if also is None else ["this model, validation"]
    rows = []
    for metric, value in scores.items():
        row = [metric, value] + ([] if also is None else [also.get(metric, "")])
        rows.append(row + [baselines[n].get(metric, "") for n in names])
    parts = [
        cards({f"{split} {k}": v for k, v in scores.items() if isinstance(v, int | float)}),
        table((*header, *(f"baseline: {n}" for n in names)), rows),
    ]
    if split == "validation":
        parts.append(
            "<p>This task has no test data: the scores are on the validation data, the "
            "baselines' too.</p>"
        )
    if metrics.get("best_epoch"):
        parts.append(f"<p>The model kept the weights of epoch {esc(metrics['best_epoch'])}.</p>")
    return "".join(parts)


def _history(run_dir: Path, metrics: dict) -> str:
    parts = []
    curves = run_dir / CURVES_FILE
    if curves.is_file():
        parts.append(
            image(
                curves.read_bytes(),
                "Training curves: the loss per epoch on the left and the other metrics (such "
                "as accuracy) on the right, for the training data and the validation data.",
                caption="Training curves.",
                link=CURVES_FILE,
            )
        )
    history = metrics.get("history")
    if isinstance(history, list) and history and all(isinstance(h, dict) for h in history):
        keys = list(dict.fromkeys(k for h in history for k in h))
        parts.append(table(keys, [[h.get(k, "") for k in keys] for h in history]))
    return "".join(parts)


def _examples(metrics: dict) -> str:
    examples = metrics.get("examples") or metrics.get("samples")
    tables = isinstance(examples, list) and examples
    if tables and all(isinstance(e, dict) and isinstance(e.get("rows"), list) for e in examples):
        return "".join(_examples({"examples": e}) for e in examples)  # several tables
    if isinstance(examples, dict) and isinstance(examples.get("rows"), list):
        columns = [str(c) for c in examples.get("columns", [])]
        rows = [r for r in examples["rows"] if isinstance(r, list)]
        caption = examples.get("caption")
        return (f"<p>{esc(caption)}</p>" if caption else "") + table(columns or None, rows)
    if isinstance(examples, list) and examples:
        rows = [e for e in examples if isinstance(e, dict)]
        keys = list(dict.fromkeys(k for e in rows for k in e))
        return table(keys, [[e.get(k, "") for k in keys] for e in rows])
    return ""


def _figures(run_dir: Path, metrics: dict) -> str:
    declared = dict(metrics["figures"]) if isinstance(metrics.get("figures"), dict) else {}
    plots = metrics.get("plots") if isinstance(metrics.get("plots"), dict) else {}
    for label, name in plots.items():  # {label: file}, the other way round
        if isinstance(name, str) and name not in declared:
            declared[name] = f"The {str(label).replace('_', ' ')} plot of this run ({name})."
    skip = _explain_figures(run_dir) | {CURVES_FILE}
    names = [n for n in declared if n not in skip and (run_dir / n).is_file()]
    names += sorted(p.name for p in run_dir.glob("*.png") if p.name not in skip | set(names))
    parts = []
    for name in names:
        alt = declared.get(name) or f"Figure {name} of this run."
        parts.append(image((run_dir / name).read_bytes(), str(alt), caption=str(alt), link=name))
    return "".join(parts)


def _files(run_dir: Path) -> str:
    rows = []
    for path in sorted(run_dir.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            size = path.stat().st_size
            link = f'<a href="{esc(path.name)}">{esc(path.name)}</a>'
            rows.append(f'<tr><td>{link}</td><td class="num">{esc(fmt(size))}</td></tr>')
    return (
        '<div class="scroll"><table><thead><tr><th scope="col">file</th>'
        '<th scope="col">bytes</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table></div>"
    )


def report_html(run_dir: str | os.PathLike) -> str:
    """The HTML of the report of ``run_dir`` (see the module docstring for what it reads)."""
    run_dir = Path(run_dir)
    config, problem = _read_json(run_dir / "config.json")
    if config is None:
        raise ValueError(
            f"report: {str(run_dir)!r} is not a run folder: " + (problem or "it has no config.json")
        )
    metrics, metrics_problem = _read_json(run_dir / "metrics.json")
    metrics = metrics or {}
    task = str(config.get("task", "unknown"))
    body = []
    notes = [n for n in metrics.get("notes", []) if isinstance(n, str)]
    if metrics_problem:
        notes.append(metrics_problem)
    elif not metrics:
        notes.append("This run has no metrics.json yet: it has not finished an epoch.")
    body += [note(n, error=n == metrics_problem) for n in notes]
    body += ["<h2>Results</h2>", _results(metrics)]
    history = _history(run_dir, metrics)
    if history:
        body += ["<h2>Training</h2>", history]
    examples = _examples(metrics)
    if examples:
        body += ["<h2>Examples</h2>", examples]
    figures = _figures(run_dir, metrics)
    if figures:
        body += ["<h2>Figures</h2>", figures]
    data = {**(config.get("data") or {}), **(metrics.get("data") or {})}
    if data:
        body += ["<h2>Data</h2>", key_value_table(data)]
    run = {k: v for k, v in metrics.items() if k not in SECTIONS}
    if run:
        body += ["<h2>Run</h2>", key_value_table(run)]
    settings = {k: v for k, v in config.items() if k not in ("format", "data")}
    body += [
        "<h2>Configuration</h2>",
        details("config.json", key_value_table(settings), open=True),
        "<h2>Files</h2>",
        _files(run_dir),
    ]
    return page(
        f"{task.capitalize()} run: {run_dir.resolve().name}",
        "\n".join(body),
        subtitle=f"gru {config.get('gru_version', '')}".strip(),
        footer="Written by gru from the files of this run folder; the pictures are also "
        "files in the folder.",
    )


def write_report(run_dir: str | os.PathLike) -> Path:
    """Write ``run_dir``/report.html (atomically) and return its path."""
    run_dir = Path(run_dir)
    text = report_html(run_dir)
    return atomic_write(run_dir / REPORT_FILE, lambda f: f.write(text.encode("utf-8")))
