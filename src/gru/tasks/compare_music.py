"""``gru compare --task music``: Chung et al. 2014's "GRU vs LSTM vs tanh RNN" measured on
polyphonic music, over seeds, beside the paper's table.

Each cell of `gru.tasks.music.CELLS` at the paper's width of ~20k parameters
(`gru.tasks.music.WIDTHS`) trains on each data set once per seed, exactly as
``gru train music --preset chung2014 --cell CELL --seed S`` trains it (`MusicModel`), and is
scored by its test NLL in nats per step (`gru.data.music.nll`). Per data set and cell the
table gives the mean ± the standard deviation over the seeds (n − 1 in the denominator), each
seed's value, training time and best epoch, the paper's value (`gru.tasks.music.PAPER`) and the
per-key frequency baseline (each key predicted by how often it sounds in the training steps).
A seed whose training diverges (`gru.training.TrainingDiverged`: its loss or gradients no longer
finite, as the tanh RNN's exploding gradients do on Nottingham's long tunes) is a finding of
the comparison, not a score: the table shows where it diverged, leaves it out of the mean and
goes on with the next run.

A data set takes the preset's settings except where this project's measurements chose others
for it (`DATA_SETTINGS`, by the file's name: Nottingham trains at lr 3e-3 in batches of 4
pieces); ``lr`` and ``epochs`` given override them for every data set.

    config = MusicCompareConfig(data=["../shared/data/music/JSB_Chorales.mat"], seeds=[0, 1, 2])
    result = run(config, out="compare-music")
    print(result.table)
"""

from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gru import checkpoint
from gru._io import atomic_write
from gru.data import music
from gru.tasks.music import CELLS, PAPER, PRESETS, WIDTHS, MusicModel
from gru.tasks.runs import check_ints, check_new_folder
from gru.training import TrainingDiverged

__all__ = [
    "DATA_SETTINGS", "DEFAULT_DATA", "PRESET", "MusicCompareConfig", "MusicCompareResult",
    "default_data", "run",
]  # fmt: skip

PRESET = "chung2014"
# The files compared when none are named, relative to the working directory (the repository
# root): those of them that exist.
DEFAULT_DATA = ("../shared/data/music/JSB_Chorales.mat", "../shared/data/music/Nottingham.mat")
# Settings of a data set (by its file's name) other than the preset's, as measured here (the
# README's music section): Nottingham learns too slowly at the preset's lr 1e-3 and batches of
# 16 pieces (44 steps an epoch); batches of 4 at 3e-3 had the best validation NLL in the same
# epochs, in about the same time.
DATA_SETTINGS: dict[str, dict[str, float | int]] = {"Nottingham": {"lr": 3e-3, "batch_size": 4}}
LAYERS = {"gru": "GRU (gru.GRU)", "lstm": "LSTM (torch.nn.LSTM)", "rnn": "tanh RNN (torch.nn.RNN)"}
BASELINE = "per-key frequency baseline (no model)"
SEEDS = 2**63


def default_data() -> list[str]:
    """The files of `DEFAULT_DATA` that exist from the working directory."""
    return [path for path in DEFAULT_DATA if Path(path).is_file()]


@dataclass
class MusicCompareConfig:
    """What to compare and on what budget: ``data`` (.mat files of the three splits or folders
    of MIDI files; None: `default_data`), ``cells`` (of `CELLS`), ``seeds``, and overrides of
    every data set's settings: ``epochs`` (at most; early stopping still applies), ``lr``,
    ``limit`` (at most that many pieces of each split: quick runs that compare nothing)."""

    data: list[str | os.PathLike] | None = None
    cells: list[str] = field(default_factory=lambda: list(CELLS))
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    epochs: int | None = None
    lr: float | None = None
    limit: int | None = None

    def check(self) -> None:
        """Raise ValueError naming the first setting out of range."""
        owner = "compare (music)"
        for name, values, valid in (("cells", self.cells, CELLS), ("seeds", self.seeds, None)):
            if isinstance(values, str | int) or not values:
                raise ValueError(f"{owner}: {name} must be a non-empty list, got {values!r}")
            if len(set(values)) < len(values):
                raise ValueError(f"{owner}: {name} must differ, got {list(values)}")
            for value in values:
                if valid is not None and value not in valid:
                    raise ValueError(
                        f"{owner}: unknown model {value!r}; the music models are "
                        f"{', '.join(valid)} (the paper's ~20k-parameter cells)"
                    )
                if valid is None and not _is_seed(value):
                    raise ValueError(
                        f"{owner}: every seed must be an int from 0 to 2**63 - 1, got {value!r}"
                    )
        check_ints(owner, self, {"epochs": 1, "limit": 1}, optional=("epochs", "limit"))
        lr = self.lr
        if lr is not None and not (
            isinstance(lr, int | float) and not isinstance(lr, bool) and 0 < lr < math.inf
        ):
            raise ValueError(f"{owner}: lr must be a finite number > 0, got {lr!r}")
        if self.data is not None and (isinstance(self.data, str | os.PathLike) or not self.data):
            raise ValueError(f"{owner}: data must be a non-empty list of paths, got {self.data!r}")

    def sets(self) -> dict[str, str]:
        """{name: path} of the data sets, named by their files (the keys of `PAPER`)."""
        paths = default_data() if self.data is None else [str(p) for p in self.data]
        if not paths:
            raise ValueError(
                "compare (music): no data: give --data FILE.mat ... (data=[...] from Python); "
                f"the default files {', '.join(DEFAULT_DATA)} are not there"
            )
        named = {}
        for path in paths:
            name = Path(path).stem if Path(path).suffix == ".mat" else Path(path).name
            if name in named:
                raise ValueError(
                    f"compare (music): two data sets are named {name!r} ({named[name]!r} and "
                    f"{path!r}); the table names each by its file"
                )
            named[name] = path
        return named

    def settings(self, name: str) -> dict:
        """The preset's settings that data set ``name`` trains with instead (`DATA_SETTINGS`,
        then ``lr``, ``epochs`` and ``limit`` when given)."""
        chosen = dict(DATA_SETTINGS.get(name, {}))
        given = {"lr": self.lr, "epochs": self.epochs, "limit": self.limit}
        chosen.update({k: v for k, v in given.items() if v is not None})
        return chosen


def _is_seed(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < SEEDS


@dataclass
class MusicCompareResult:
    """``rows``: one dict per (data set, cell) with each seed's numbers; ``baselines``: the
    per-key frequency baseline's test NLL of each data set; ``table``: Markdown; ``files``:
    what was written under ``out``."""

    rows: list[dict]
    baselines: dict[str, float]
    table: str
    files: list[Path]


def _train(data: music.Music, name: str, cell: str, seed: int, config, quiet, log) -> tuple:
    """One seed of one cell on one data set: (its test scores, epochs and time, or where it
    diverged (its time is the caller's to add); the model's parameters)."""
    model = MusicModel.from_preset(PRESET, cell=cell, seed=seed, **config.settings(name))
    try:
        report = model.fit(data, quiet=quiet, log=log)
    except TrainingDiverged as error:
        diverged = {"seed": seed, "diverged_at_epoch": error.epoch, "error": str(error)}
        return diverged, model.parameters()
    scores = {
        "seed": seed,
        "nll": report.test["nll"],
        "nll_after_first": report.test["nll_after_first"],
        "best_epoch": report.best_epoch,
        "epochs": len(report.history),
        "best_val_nll": min(h["val_loss"] for h in report.history),
        "training_seconds": report.training_seconds,
    }
    return scores, report.parameters


def _row(name: str, cell: str, parameters: int, seeds: list[dict]) -> dict:
    """The row of a cell: mean and spread over the seeds that trained (None when none did)."""
    values = [s["nll"] for s in seeds if "nll" in s]
    return {
        "data": name,
        "cell": cell,
        "layer": LAYERS[cell],
        "width": WIDTHS[cell],
        "parameters": parameters,
        "mean": statistics.fmean(values) if values else None,
        "std": statistics.stdev(values) if len(values) > 1 else None,
        "diverged": len(seeds) - len(values),
        "paper": PAPER.get(name, {}).get(cell),
        "seeds": seeds,
    }


def _table(rows: list[dict], baselines: dict[str, float], config: MusicCompareConfig) -> str:
    """The Markdown table: per data set its baseline, then each cell's seeds."""
    lines = [
        "| data | model | parameters | test NLL, mean ± sd | each seed | training s, each seed "
        "| best epochs | Chung et al. 2014 |",
        "|---|---|---:|---|---|---|---|---:|",
    ]
    for name, baseline in baselines.items():
        lines.append(f"| {name} | {BASELINE} | {music.KEYS} | {baseline:.3f} | | | | |")
        for r in (r for r in rows if r["data"] == name):
            each = ", ".join(
                f"{s['nll']:.3f}" if "nll" in s else f"diverged (epoch {s['diverged_at_epoch']})"
                for s in r["seeds"]
            )
            seconds = ", ".join(_seconds(s["training_seconds"]) for s in r["seeds"])
            best = ", ".join(
                f"{s['best_epoch']} of {s['epochs']}" if "nll" in s else "–" for s in r["seeds"]
            )
            paper = "" if r["paper"] is None else f"{r['paper']:.2f}"
            lines.append(
                f"| {name} | {r['layer']}, {r['width']} units | {r['parameters']:,} "
                f"| {_mean(r)} | {each} | {seconds} | {best} | {paper} |"
            )
    return "\n".join(lines) + "\n\n" + _notes(baselines, config)


def _mean(row: dict) -> str:
    """ "3.617 ± 0.051", with the seeds that diverged counted after it; "all diverged"."""
    if row["mean"] is None:
        return "all diverged"
    spread = "" if row["std"] is None else f" ± {row['std']:.3f}"
    n, diverged = len(row["seeds"]), row["diverged"]
    return f"{row['mean']:.3f}{spread}" + (f" ({diverged} of {n} diverged)" if diverged else "")


def _seconds(value: float) -> str:
    return f"{value:.1f}" if value < 10 else f"{value:,.0f}"


def _notes(baselines: dict[str, float], config: MusicCompareConfig) -> str:
    """What the table's numbers are and how they were trained."""
    seeds = ", ".join(map(str, config.seeds))
    preset = PRESETS[PRESET]().train
    trained = "; ".join(
        f"{name}: lr {settings.get('lr', preset.lr):g}, batches of "
        f"{settings.get('batch_size', preset.batch_size)}, at most "
        f"{settings.get('epochs', preset.epochs)} epochs"
        for name, settings in ((n, config.settings(n)) for n in baselines)
    )
    notes = (
        f"Test NLL in nats per step (each step's 88 keys' summed binary cross-entropy, averaged "
        f"over every step), lower is better; mean ± sample standard deviation over seeds "
        f"{seeds}. Preset {PRESET} (RMSProp, weight noise 0.075, gradients clipped at norm 1, "
        f"early stopping after {preset.patience} epochs without a better validation NLL, the "
        f"best epoch's weights kept); {trained}. Training seconds: wall-clock of fit, each "
        "epoch's validation included. A seed that diverged (its loss or gradients no longer "
        "finite) is named with its epoch and left out of the mean."
    )
    if config.limit is not None:
        notes = (
            f"**A smoke test** (at most {config.limit} pieces of each split): it shows that "
            f"every model trains, not how well; its scores compare nothing.\n\n{notes}"
        )
    return notes


def run(
    config: MusicCompareConfig,
    *,
    out: str | os.PathLike | None = None,
    quiet: bool = False,
    log=print,
) -> MusicCompareResult:
    """Train every cell of ``config`` on every data set once per seed; tabulate them.

    With ``out`` (a folder that does not exist yet or is empty) it writes compare.json after
    every run (the runs so far, ``"complete": false`` until the last) and at the end
    compare.md, the table; each file atomically.
    """
    config.check()
    out = Path(out) if out is not None else None
    if out is not None:
        check_new_folder(out, "--out:")
    sets = config.sets()
    say = (lambda message: None) if quiet else log
    loaded = {name: MusicModel().read(path) for name, path in sets.items()}  # data errors first
    rows: list[dict] = []
    baselines: dict[str, float] = {}
    for name, data in loaded.items():
        say(f"{name}: {data.source}; {', '.join(config.cells)} over seeds {config.seeds}")
        splits = (data.split(s)[: config.limit] for s in ("train", "test"))
        baselines[name] = music.marginal_nll(*splits)  # as `MusicModel.fit` reports it
        for cell in config.cells:
            seeds = []
            for seed in config.seeds:
                start = time.perf_counter()
                scores, parameters = _train(data, name, cell, seed, config, quiet, log)
                elapsed = time.perf_counter() - start
                scores.setdefault("training_seconds", elapsed)  # a diverged run: until it did
                seeds.append(scores)
                took = f"{elapsed:.0f} s"
                if "nll" in scores:
                    say(
                        f"  {name} {cell} seed {seed}: test NLL {scores['nll']:.4f} (best epoch "
                        f"{scores['best_epoch']} of {scores['epochs']}, {took})"
                    )
                else:
                    say(
                        f"  {name} {cell} seed {seed}: diverged at epoch "
                        f"{scores['diverged_at_epoch']} ({took}); not scored"
                    )
                if out is not None:
                    done = [*rows, _row(name, cell, parameters, seeds)]
                    _write_json(out, config, sets, done, baselines)
            rows.append(_row(name, cell, parameters, seeds))
    table = _table(rows, baselines, config)
    say(table)
    files: list[Path] = []
    if out is not None:
        header = (
            f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} "
            f"cores; `gru compare --task music`\n\n"
        )
        files = [_write_json(out, config, sets, rows, baselines, complete=True), out / "compare.md"]
        atomic_write(files[1], lambda f: f.write((header + table + "\n").encode("utf-8")))
        say(f"wrote {', '.join(str(f) for f in files)}")
    return MusicCompareResult(rows, baselines, table, files)


def _write_json(out: Path, config, sets, rows, baselines, *, complete=False) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "compare.json"
    checkpoint.write_json(
        path,
        {
            "complete": complete,
            "preset": PRESET,
            "data": {name: {"path": str(p), **config.settings(name)} for name, p in sets.items()},
            "cells": list(config.cells),
            "seeds": list(config.seeds),
            "threads": torch.get_num_threads(),
            "baselines": baselines,
            "paper": {name: PAPER.get(name) for name in sets},
            "rows": rows,
        },
    )
    return path
