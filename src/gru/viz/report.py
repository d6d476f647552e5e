"""report.html: one self-contained page that tells what a training run did.

`write_report(run_dir)` reads what a run folder already holds and renders it; it computes
nothing about the model. The tasks put plain data into the folder's files:

    config.json     {"task", "gru_version", "config": {...}, "data": {...}, ...}: the settings
    metrics.json    "history"    [{"epoch", "train_loss", ..., "seconds"}]  (gru.training.fit)
                    "test"       {metric: value} on held-out data, or null
                    "validation" {metric: value} on the validation data: shown beside the test
                                 scores, or in their place when a task has no test data
                    "baselines"  {name: {metric: value}}: simple predictors to beat
                    "model"      text: what the model is, named in the scores' header
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
import statistics
from pathlib import Path

from gru._io import atomic_write
from gru.checkpoint import CURVES_FILE
from gru.viz.html import Num, cards, details, esc, fmt, image, note, page, table
from gru.viz.labels import HEADLINE, better, duration, is_duration, label

__all__ = ["REPORT_FILE", "report_html", "write_report"]

REPORT_FILE = "report.html"
# metrics.json keys that have a section of their own; every other one goes under "Run".
SECTIONS = (
    "history", "test", "validation", "baselines", "data", "examples", "samples", "figures",
    "plots", "notes", "best_epoch", "model",
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


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _shown(key, value):
    """``value`` as a table shows it: a time in seconds as a duration, the rest as it is."""
    return Num(duration(value)) if is_duration(key) and _number(value) else value


def _scores(metrics: dict) -> tuple[dict | None, str, dict | None, dict]:
    """(the model's scores, their split "test" or "validation", its validation scores to show
    beside the test ones or None, the baselines {name: scores})."""
    test, validation = metrics.get("test"), metrics.get("validation")
    test = test if isinstance(test, dict) and test else None
    validation = validation if isinstance(validation, dict) and validation else None
    baselines = metrics.get("baselines") if isinstance(metrics.get("baselines"), dict) else {}
    baselines = {n: v for n, v in baselines.items() if isinstance(v, dict)}
    if test is not None:
        return test, "test", validation, baselines
    return validation, "validation", None, baselines


def _pair(a: float, b: float) -> tuple[str, str]:
    """``a`` and ``b`` written with enough digits to tell them apart."""
    for digits in (4, 6, 9):
        x, y = f"{a:#.{digits}g}".rstrip("."), f"{b:#.{digits}g}".rstrip(".")
        if x != y:
            return x, y
    return fmt(a), fmt(b)


def verdict(metrics: dict, task: str) -> tuple[str, bool] | None:
    """(a plain sentence for the top of the report when a baseline beats the model, whether it
    beats it on the task's headline score): the headline score first, then any other score
    that says which way is better; None when no baseline beats the model on any."""
    scores, split, _, baselines = _scores(metrics)
    if scores is None:
        return None
    beaten = {}  # metric: [(baseline, its score)] of the baselines better than the model
    for metric, value in scores.items():
        way = better(metric)
        if way is None or not _number(value):
            continue
        for name, theirs in baselines.items():
            v = theirs.get(metric)
            if _number(v) and (v < value if way == "lower" else v > value):
                beaten.setdefault(metric, []).append((name, v))
    if not beaten:
        return None
    headline = HEADLINE.get(task)
    first, *others = sorted(beaten, key=lambda m: m != headline)
    pairs = [(label(n), *_pair(v, scores[first])) for n, v in beaten[first]]
    named = [f"{name} ({theirs})" for name, theirs, _ in pairs]
    named = named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]
    what = f"{split} {label(first)} ({better(first)} is better)"
    if first == headline or headline not in scores:
        some = "A baseline beats" if len(pairs) == 1 else "Baselines beat"
        text = f"{some} this model on {what}: {named}, against this model's {pairs[0][2]}."
    else:
        text = (
            f"No baseline beats this model on {split} {label(headline)}, its headline score; "
            f"on {what} {named} scored better than this model's {pairs[0][2]}."
        )
    if others:
        listed = [label(m) for m in others]
        listed = listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " and " + listed[-1]
        text += f" A baseline also scores better on {listed}."
    return text, first == headline or headline not in scores


def _results(metrics: dict, task: str) -> str:
    scores, split, also, baselines = _scores(metrics)
    if scores is None:
        return note(
            "No test score in this run's metrics."
            + (
                " The validation scores are in the training history."
                if metrics.get("history")
                else ""
            )
        )
    model = metrics.get("model")
    ours = f"this model ({model})" if isinstance(model, str) and model else "this model"
    header = ["metric", ours if also is None else f"{ours}, test"]
    header += [] if also is None else [f"{ours}, validation"]
    rows = []
    for metric, value in scores.items():
        row = [label(metric), value] + ([] if also is None else [also.get(metric, "")])
        rows.append(row + [b.get(metric, "") for b in baselines.values()])
    parts = [
        cards({f"{split} {label(k)}": v for k, v in scores.items() if _number(v)}),
        table((*header, *(f"baseline: {label(n)}" for n in baselines)), rows),
    ]
    headline = HEADLINE.get(task)
    if baselines and headline in scores and verdict(metrics, task) is None:
        parts.append(f"<p>This model beats every baseline on {split} {esc(label(headline))}.</p>")
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
        rows = [[_shown(k, h.get(k, "")) for k in keys] for h in history]
        parts.append(table([label(k) for k in keys], rows))
        if "seconds" in keys:
            parts.append(f"<p>{esc(timing_note(history))}</p>")
    return "".join(parts)


def timing_note(history: list[dict]) -> str:
    """What an epoch's time includes: not the engine's first compile, which `gru.training.fit`
    moves before the clock with a warm-up step; and how epoch 1 compares with the others."""
    text = (
        "An epoch's time counts its training steps and its evaluation. On the CPU, training "
        "starts with one warm-up step on a copy of the model, before the clock of epoch 1, so "
        "the engine's first compile (seconds to minutes, once per machine; its kernels are "
        "cached on disk) is not in epoch 1's time; it is in the time of the whole run."
    )
    times = [h.get("seconds") for h in history]
    if len(times) > 1 and all(_number(t) for t in times):
        later = statistics.median(times[1:])
        if later > 0 and times[0] > 1.5 * later:
            text += (
                f" Epoch 1 still took {duration(times[0])}, {times[0] / later:.1f}× the median "
                f"later epoch ({duration(later)}): first-time costs the warm-up does not cover "
                "remain in it."
            )
    return text


def _flat(items: dict, prefix: str = ""):
    """(key, value) of ``items`` with nested mappings as dotted keys ("train.lr")."""
    for key, value in items.items():
        if isinstance(value, dict) and value:
            yield from _flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _setting(key: str, value):
    """A value as a reader sees it: times as durations, a metric watched by its label, the
    mode it is watched in as the way it is better, an unset setting as "not set"."""
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key.endswith("monitor") and isinstance(value, str):
        return label(value)
    if key.endswith("train.mode") and value in ("min", "max"):
        return {"min": "lower", "max": "higher"}[value]
    return _shown(key, value)


def _facts(items: dict) -> str:
    """A two-column table of ``items`` as a reader sees them (labels, not keys)."""
    return table(None, [(label(k), _setting(k, v)) for k, v in _flat(items)])


def _grid(value) -> bool:
    """Whether ``value`` is a table of numbers {column: {row: number}}."""
    return (
        isinstance(value, dict)
        and bool(value)
        and all(isinstance(v, dict) and v for v in value.values())
        and all(_number(x) or x is None for v in value.values() for x in v.values())
    )


def _records(value) -> bool:
    """Whether ``value`` is a list of records [{field: value}]."""
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _run(run: dict) -> str:
    """The Run section: plain facts in one table, tables of numbers ({model: {column: MAE}})
    and lists of records as tables of their own, under their labels."""
    plain = {k: v for k, v in run.items() if not (_grid(v) or _records(v))}
    if "seconds" in plain:  # here the whole run's; in the history, an epoch's
        plain["run_seconds"] = plain.pop("seconds")
    parts = [_facts(plain)] if plain else []
    for key, value in run.items():
        if _grid(value):
            rows = list(dict.fromkeys(r for v in value.values() for r in v))
            header = ["", *(label(c) for c in value)]
            cells = [[label(r), *(value[c].get(r, "") for c in value)] for r in rows]
            parts += [f"<h3>{esc(label(key))}</h3>", table(header, cells)]
        elif _records(value):
            fields = list(dict.fromkeys(f for v in value for f in v))
            cells = [[_shown(f, v.get(f, "")) for f in fields] for v in value]
            parts += [f"<h3>{esc(label(key))}</h3>", table([label(f) for f in fields], cells)]
    return "".join(parts)


def _configuration(config: dict) -> str:
    """config.json as a reader sees it: the task's settings, the training settings, the rest."""
    settings = dict(config.get("config") or {})
    train = settings.pop("train", None)
    if isinstance(train, dict) and train.get("monitor") is None:
        train = {k: v for k, v in train.items() if k != "mode"}  # the way of nothing watched
    rest = {k: v for k, v in config.items() if k not in ("format", "data", "config")}
    parts = [f"<h3>{esc(title)}</h3>{_facts(items)}" for title, items in (
        ("Task settings", settings),
        ("Training settings", {"train": train} if isinstance(train, dict) else {}),
        ("Run folder", rest),
    ) if items]  # fmt: skip
    return details("config.json", "".join(parts), open=True)


def _examples(metrics: dict) -> str:
    examples = metrics.get("examples") or metrics.get("samples")
    tables = isinstance(examples, list) and examples
    if tables and all(isinstance(e, dict) and isinstance(e.get("rows"), list) for e in examples):
        return "".join(_examples({"examples": e}) for e in examples)  # several tables
    if isinstance(examples, dict) and isinstance(examples.get("rows"), list):
        columns = [label(c) for c in examples.get("columns", [])]
        rows = [r for r in examples["rows"] if isinstance(r, list)]
        caption = examples.get("caption")
        return (f"<p>{esc(caption)}</p>" if caption else "") + table(columns or None, rows)
    if isinstance(examples, list) and examples:
        rows = [e for e in examples if isinstance(e, dict)]
        keys = list(dict.fromkeys(k for e in rows for k in e))
        return table([label(k) for k in keys], [[e.get(k, "") for k in keys] for e in rows])
    return ""


def _figures(run_dir: Path, metrics: dict) -> str:
    declared = dict(metrics["figures"]) if isinstance(metrics.get("figures"), dict) else {}
    plots = metrics.get("plots") if isinstance(metrics.get("plots"), dict) else {}
    for key, name in plots.items():  # {label: file}, the other way round
        if isinstance(name, str) and name not in declared:
            declared[name] = f"The {label(key)} plot of this run ({name})."
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
    beaten = verdict(metrics, task)
    if beaten is not None:
        text, headline = beaten
        text = f"<strong>{esc(text)}</strong>" if headline else esc(text)
        body.append(f'<p class="note verdict" role="note">{text}</p>')
    body += [note(n, error=n == metrics_problem) for n in notes]
    body += ["<h2>Results</h2>", _results(metrics, task)]
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
        body += ["<h2>Data</h2>", _facts(data)]
    # The task is the title's; the planted events are the anomaly report's examples.
    run = {k: v for k, v in metrics.items() if k not in (*SECTIONS, "task", "events")}
    if run:
        body += ["<h2>Run</h2>", _run(run)]
    body += [
        "<h2>Configuration</h2>",
        _configuration(config),
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
