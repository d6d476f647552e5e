"""Polyphonic music: predict the next step of a piano roll, score it as the literature does,
compose from a trained model.

A recurrent layer reads a piece's roll one step at a time (the input of step t is the roll of
step t - 1, silence before the first) and a linear head gives the 88 keys' logits of step t:
independent Bernoullis, as in Chung et al. (2014), "Empirical Evaluation of Gated Recurrent
Neural Networks on Sequence Modeling". The score is the mean over every step of the 88 keys'
summed binary cross-entropy in nats (`gru.data.music.nll`), lower is better.

``output="nade"`` models the 88 keys of a step jointly instead, as RNN-NADE does
(Boulanger-Lewandowski et al. 2012): the layer's state at step t gives the biases of a
`gru.nade.NADE` over the keys, low to high, each key's logit conditioned on the keys below it
in the same step (teacher forcing: the net then reads the step's target notes too). The score
is the same sum of 88 binary cross-entropies, now of those conditionals: the exact NLL of the
step, so the two outputs compare directly.

    model = MusicModel.from_preset("chung2014", cell="gru")
    report = model.fit("../shared/data/music/JSB_Chorales.mat", out="runs/jsb")
    report.test["nll"]                                     # nats per step
    roll = MusicModel.load("runs/jsb").compose(prime, steps=64, seed=0)   # (P + 64, 88) 0/1

``cell`` is "gru" (the project's `gru.GRU`), "lstm" (torch.nn.LSTM) or "rnn" (torch.nn.RNN,
tanh); without ``hidden_size`` each takes the paper's width of about 20k parameters (`WIDTHS`).
``weight_noise`` adds Gaussian noise of that standard deviation to every weight at every
training step (a fresh draw per batch; the gradient is taken at the noisy weights), the
regularizer Chung et al. trained with.

Shapes: B pieces, T steps, K = 88 keys, H hidden units.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from gru.data import music
from gru.models import build
from gru.nade import NADE
from gru.nn import GRU
from gru.recall import Recall
from gru.tasks import runs
from gru.training import TrainConfig
from gru.viz import figures, sequence_figures
from gru.viz.recording import record_gates

__all__ = [
    "CELLS", "OUTPUTS", "PRESETS", "WIDTHS", "MusicConfig", "MusicModel", "MusicNet", "MusicReport",
    "describe", "piece_loss",
]  # fmt: skip

CELLS = ("gru", "lstm", "rnn")
OUTPUTS = ("independent", "nade")  # the 88 keys of a step: independent Bernoullis, or a NADE
WIDTHS = {"gru": 46, "lstm": 36, "rnn": 100}  # Chung et al.'s ~20k-parameter models
# Chung et al. 2014, Table 2, test NLL (the anchors), by data set and cell.
PAPER = {
    "JSB_Chorales": {"rnn": 9.10, "lstm": 8.67, "gru": 8.54},
    "Nottingham": {"rnn": 3.13, "lstm": 3.20, "gru": 3.23},
}
NADE_STEPS = 4096  # padded steps per batch when a NADE output is scored (memory, not speed)
RNN_NADE = {"JSB_Chorales": 5.56, "Nottingham": 2.31}  # Boulanger-Lewandowski et al. 2012


@dataclass
class MusicConfig(runs.TaskConfig):
    """What decides a music model: the ``cell`` and its ``hidden_size`` (None: the cell's
    `WIDTHS`), ``num_layers``, ``dropout`` on the layer's outputs (and between layers),
    ``weight_noise`` (the standard deviation added to the weights while training), GRU
    ``layer_norm`` and ``zoneout`` (`gru.GRU`'s variants), ``output`` ("independent" keys or
    "nade": the keys of a step modelled jointly, by a NADE of ``nade_hidden`` hidden units),
    ``clock`` (0: none; P: each step's position in a cycle of P steps, t mod P one-hot, read
    beside the previous step's keys), ``attention`` (0: none; D: the layer's outputs attend to
    their own past with queries and keys of D, `gru.recall.Recall`) and ``limit``: at most that
    many pieces of each split."""

    ADDED_LATER: ClassVar[dict] = {
        "output": "independent", "nade_hidden": 150, "clock": 0, "attention": 0
    }  # fmt: skip

    cell: str = "gru"
    hidden_size: int | None = None
    num_layers: int = 1
    dropout: float = 0.0
    weight_noise: float = 0.0
    layer_norm: bool = False
    zoneout: float = 0.0
    output: str = "independent"
    nade_hidden: int = 150
    clock: int = 0
    attention: int = 0
    limit: int | None = None
    steps_per_beat: int = 4
    train: TrainConfig = field(default_factory=runs.least_val_loss(200, 16, 1e-3, patience=20))

    @property
    def width(self) -> int:
        return self.hidden_size or WIDTHS[self.cell]

    def check(self) -> None:
        """Raise ValueError naming the first setting out of range."""
        owner = "MusicConfig"
        if self.cell not in CELLS:
            raise ValueError(f"{owner}: cell must be one of {CELLS}, got {self.cell!r}")
        if self.output not in OUTPUTS:
            raise ValueError(f"{owner}: output must be one of {OUTPUTS}, got {self.output!r}")
        minimums = {"hidden_size": 1, "num_layers": 1, "nade_hidden": 1, "limit": 1,
                    "steps_per_beat": 1, "clock": 0, "attention": 0}  # fmt: skip
        runs.check_ints(owner, self, minimums, optional=("hidden_size", "limit"))
        runs.check_numbers(owner, self, ("dropout", "weight_noise", "zoneout"))
        if not 0.0 <= self.dropout < 1.0 or not 0.0 <= self.zoneout < 1.0:
            raise ValueError(
                f"{owner}: dropout and zoneout must be in [0, 1), got {self.dropout} and "
                f"{self.zoneout}"
            )
        if self.weight_noise < 0:
            raise ValueError(f"{owner}: weight_noise must be ≥ 0, got {self.weight_noise}")
        if self.cell != "gru" and (self.layer_norm or self.zoneout):
            raise ValueError(f"{owner}: layer_norm and zoneout are gru.GRU's, not {self.cell}'s")
        self.train.check()


def _chung2014() -> MusicConfig:
    return MusicConfig(
        weight_noise=0.075,
        train=TrainConfig(
            epochs=500, batch_size=16, lr=1e-3, optimizer="rmsprop", clip_grad_norm=1.0,
            monitor="val_loss", mode="min", patience=30, restore_best=True,
        ),
    )  # fmt: skip


def _strong() -> MusicConfig:
    return MusicConfig(
        hidden_size=256, dropout=0.4, layer_norm=True,
        train=TrainConfig(
            epochs=100, batch_size=16, lr=2e-3, optimizer="adamw", weight_decay=1e-2,
            clip_grad_norm=1.0, schedule="cosine", warmup=0.05, monitor="val_loss",
            mode="min", patience=20, restore_best=True,
        ),
    )  # fmt: skip


def _nade() -> MusicConfig:
    return MusicConfig(
        hidden_size=128, dropout=0.5, layer_norm=True, output="nade", nade_hidden=150,
        train=TrainConfig(
            epochs=30, batch_size=1, lr=1e-3, optimizer="adamw", weight_decay=1e-2,
            clip_grad_norm=1.0, schedule="cosine", warmup=0.05, monitor="val_loss",
            mode="min", patience=20, restore_best=True,
        ),
    )  # fmt: skip


# chung2014: Chung et al.'s setup (RMSProp, weight noise 0.075, gradients clipped at norm 1,
# early stopping on the validation NLL, the best epoch kept); strong: a wider GRU with layer
# norm and dropout, AdamW on a cosine schedule; nade: the keys of a step modelled jointly by a
# NADE on a GRU(128), one piece a batch (the NADE's weights learn slowly, and bigger batches
# gave fewer updates before the GRU overfit: see the README).
PRESETS = {"chung2014": _chung2014, "strong": _strong, "nade": _nade}


@dataclass
class MusicReport(runs.RunReport):
    """The outcome of `MusicModel.fit`: ``test`` {"nll", "nll_after_first"} in nats per step
    (the second without each piece's first step), ``baselines`` {name: {"nll"}}, ``pieces``
    the counts per split, ``parameters`` the model's."""

    test: dict[str, float]
    baselines: dict[str, dict[str, float]]
    pieces: dict[str, int]
    parameters: int


class MusicNet(nn.Module):
    """Rolls (B, T, 88), the previous step's at each step, -> logits (B, T, 88) of each step:
    the recurrent layer, dropout, the output: a linear head (independent keys) or a
    `gru.nade.NADE` (its logits those of each key given the keys below it in the step, which
    it reads from ``notes``); with ``weight_noise`` (training only) every weight perturbed by a
    fresh Gaussian draw per call; with a ``clock`` the layer also reads each step's position
    (`inputs`); with ``attention`` its outputs look back at their past (`gru.recall.Recall`)
    before the dropout."""

    def __init__(self, config: MusicConfig, backend: str = "auto") -> None:
        super().__init__()
        c, H = config, config.width
        between = c.dropout if c.num_layers > 1 else 0.0
        inputs = music.KEYS + c.clock
        if c.cell == "gru":
            self.rnn = GRU(inputs, H, c.num_layers, True, True, between, backend=backend,
                           layer_norm=c.layer_norm, zoneout=c.zoneout)  # fmt: skip
        else:
            layer = nn.LSTM if c.cell == "lstm" else nn.RNN
            self.rnn = layer(inputs, H, c.num_layers, batch_first=True, dropout=between)
        self.clock = c.clock
        self.recall = Recall(H, c.attention) if c.attention else None
        self.dropout = nn.Dropout(c.dropout)
        self.nade = c.output == "nade"
        self.head = NADE(H, music.KEYS, c.nade_hidden) if self.nade else nn.Linear(H, music.KEYS)
        self.weight_noise = c.weight_noise

    def inputs(self, x: Tensor, start: int = 0) -> Tensor:
        """The layer's input for rolls ``x`` (B, T, 88) whose first step is step ``start`` of
        its piece: the keys as floats and, with a clock of P steps, the one-hot of each step's
        (start + t) mod P after them, (B, T, 88 + P)."""
        x = x if x.is_floating_point() else x.float()  # `gru.data.music.padded` gives bytes
        if not self.clock:
            return x
        ticks = nn.functional.one_hot((torch.arange(x.shape[1]) + start) % self.clock, self.clock)
        return torch.cat([x, ticks.to(x.dtype).expand(x.shape[0], -1, -1)], 2)

    def forward(self, x: Tensor, lengths: Tensor | None = None, notes: Tensor | None = None,
                state=None, *, noisy=True):  # fmt: skip
        """Logits (B, T', 88), T' the longest of ``lengths`` (all T without them), the first
        step of ``x`` the first of each piece; with ``state`` (the layer's) also the state after
        the last step. ``notes`` (B, T, 88): the steps' own notes, which a NADE output
        conditions on (targets as `gru.data.music.padded` gives them, -1 past an end); the
        independent output ignores them."""
        if lengths is not None:
            x = x[:, : int(lengths.max())]
        if self.nade and notes is None:
            raise ValueError(
                "MusicNet: a NADE output needs each step's notes (teacher forcing) to give its "
                "logits; to draw steps use MusicNet.draw"
            )
        if self.training and self.weight_noise and noisy:
            noise = self.weight_noise
            weights = {n: p + noise * torch.randn_like(p) for n, p in self.named_parameters()}
            inputs = (x, None, notes, state)
            return torch.func.functional_call(self, weights, inputs, {"noisy": False})
        out, after = self.rnn(self.inputs(x), state)  # (B, T', H)
        out = self.dropout(out if self.recall is None else self.recall(out))
        if self.nade:
            logits = self.head(out, notes[:, : out.shape[1]].clamp(min=0))  # (B, T', K)
        else:
            logits = self.head(out)  # (B, T', K)
        return logits if state is None else (logits, after)

    def draw(self, x: Tensor, state, generator: torch.Generator, temperature: float = 1.0,
             start: int = 0):  # fmt: skip
        """(the notes (1, 1, 88) of the step after ``x`` (1, T, 88; its first step step
        ``start`` of the piece), float 0/1, drawn at logits divided by ``temperature``; the
        layer's state after ``x``): independent keys drawn at once, a NADE's one after another,
        low to high. With attention the state is (the layer's, the outputs so far or None)."""
        past = None
        if self.recall is not None:
            state, past = state
        out, after = self.rnn(self.inputs(x, start), state)  # (1, T, H)
        if self.recall is not None:
            after = (after, out if past is None else torch.cat([past, out], 1))
            out = self.recall(out, past)
        last = self.dropout(out[:, -1])  # (1, H)
        if self.nade:
            notes = self.head.sample(last, generator=generator, temperature=temperature)
        else:
            p = torch.sigmoid(self.head(last)[0].double() / temperature)  # (K,)
            notes = torch.bernoulli(p, generator=generator).float()[None]
        return notes[None], after


def piece_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """The batch's NLL per step (`gru.data.music.step_losses`), the training loss."""
    losses, real = music.step_losses(logits, targets[:, : logits.shape[1]])
    return losses.sum() / real.sum()


class MusicModel(runs.Task):
    """Next-step prediction of piano rolls: fit on a .mat file of the three splits, score
    (`evaluate`), continue a roll (`compose`). Settings by name (`MusicConfig` and
    `TrainConfig` fields) or a whole ``config``; ``backend`` goes to `gru.GRU`."""

    task = "music"
    config_class = MusicConfig
    model: MusicNet | None = None
    report: MusicReport | None = None

    @classmethod
    def from_preset(cls, name: str = "chung2014", *, backend: str = "auto", **overrides):
        """A model of preset ``name`` ("chung2014" or "strong"), settings overridden by name:
        ``from_preset("chung2014", cell="lstm", seed=1)``."""
        if name not in PRESETS:
            raise ValueError(f"MusicModel: preset must be one of {sorted(PRESETS)}, got {name!r}")
        config = PRESETS[name]()
        runs.apply_settings(config, overrides, "MusicModel.from_preset")
        return cls(config, backend=backend)

    def _build_model(self) -> MusicNet:
        return build(lambda: MusicNet(self.config, self.backend), "MusicModel", "hidden_size")

    def _loaded(self, where: str) -> None:
        if self.model is None:
            raise ValueError(f"MusicModel.{where}: fit or load a model first")

    def read(self, data) -> music.Music:
        """``data`` as `gru.data.music.Music`: a .mat file, or a folder of MIDI files read at
        the config's ``steps_per_beat``."""
        if isinstance(data, music.Music):
            return data
        if Path(data).is_dir():
            return music.read_midi_folder(data, self.config.steps_per_beat)
        return music.read_mat(data)

    # --- fit ---------------------------------------------------------------------------------

    def fit(self, data, *, out=None, resume=False, checkpoint_every=None, quiet=False,
            device="cpu", log=print) -> MusicReport:  # fmt: skip
        """Train on the train split of ``data`` (a .mat path or `gru.data.music.Music`), stop
        early on the validation NLL, score the test split; with ``out`` write the run folder."""
        c = self.config
        c.check()
        c.hidden_size = c.width  # the run records the width it trained
        self._cpu = time.process_time()
        run = self.run_folder(out, resume, checkpoint_every, device, quiet, log)
        run.check(c.to_dict(), {"source": runs.source_name(data)})
        loaded = self.read(data)
        parts = {s: loaded.split(s)[: c.limit] for s in music.SPLITS}
        counts = {s: len(p) for s, p in parts.items()}
        steps = {s: sum(map(len, p)) for s, p in parts.items()}
        run.say(
            f"data: {loaded.source} ({counts['train']} train / {counts['valid']} validation / "
            f"{counts['test']} test pieces; {steps['train']:,} / {steps['valid']:,} / "
            f"{steps['test']:,} steps)"
        )
        x, y, lengths = music.padded(parts["train"])
        valid = music.padded(parts["valid"])
        torch.manual_seed(c.train.seed)
        self.model = self._build_model()
        if not resume:
            run.start(c.to_dict(), {"source": runs.source_name(data) or loaded.source})
        tensors = (x, lengths, y, y) if c.output == "nade" else (x, lengths, y)  # notes read
        result = run.train(
            self.model, piece_loss, tensors, c.train,
            evaluate=lambda model: {"val_loss": self.scores(*valid)["nll"]}, sort_key=lengths,
        )  # fmt: skip
        self.model.eval()
        test = self.scores(*music.padded(parts["test"]))
        base = {"nll": music.marginal_nll(parts["train"], parts["test"])}
        report = MusicReport(
            **run.outcome(result), test=test, pieces=counts, parameters=self.parameters(),
            baselines={"each key's frequency in the training steps": base},
        )  # fmt: skip
        if run.writes:
            self._write(run, report, loaded.source, parts)
        self.report = report
        return report

    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @torch.no_grad()
    def scores(self, x: Tensor, y: Tensor, lengths: Tensor, batch: int = 64) -> dict[str, float]:
        """{"nll", "nll_after_first"} of padded pieces (`gru.data.music.padded`), the model in
        eval mode, pieces of similar length batched together (with a NADE output, at most
        ``NADE_STEPS`` padded steps a batch: its hidden units take 88 × U values a step)."""
        was = self.model.training
        self.model.eval()
        total = {"all": 0.0, "first": 0.0, "steps": 0, "pieces": 0}
        steps = NADE_STEPS if self.config.output == "nade" else None
        for index in music.length_batches(lengths, batch, steps):
            logits = self.model(x[index], lengths[index], y[index]).double()
            losses, real = music.step_losses(logits, y[index, : logits.shape[1]].double())
            total["all"] += float(losses.sum())
            total["first"] += float(losses[:, 0].sum())
            total["steps"] += int(real.sum())
            total["pieces"] += len(index)
        self.model.train(was)
        after = (total["all"] - total["first"]) / max(total["steps"] - total["pieces"], 1)
        return {"nll": total["all"] / total["steps"], "nll_after_first": after}

    def evaluate(self, data, split: str = "test") -> dict[str, float]:
        """The NLL of ``split`` of ``data`` (nats per step), with and without first steps."""
        self._loaded("evaluate")
        pieces = self.read(data).split(split)
        return {**self.scores(*music.padded(pieces)), "pieces": len(pieces)}

    # --- composing -----------------------------------------------------------------------------

    @torch.no_grad()
    def probabilities(self, roll: np.ndarray) -> np.ndarray:
        """P(key sounds) (T + 1, 88) of each step of ``roll`` (T, 88) and of the step after;
        independent keys only (a NADE's keys have no such probability of their own)."""
        self._loaded("probabilities")
        if self.config.output != "independent":
            raise ValueError(
                f"MusicModel.probabilities: needs output 'independent', this model's is "
                f"{self.config.output!r}: its keys' probabilities depend on the keys below "
                "them in the step (evaluate gives its NLL, compose its draws)"
            )
        x = music.padded([music.checked_roll(roll, "MusicModel: roll")])[
            0
        ].float()  # (1, T, K): silence first
        x = torch.cat([x, torch.from_numpy(roll[-1:].astype(np.float32))[None]], 1)
        self.model.eval()
        return torch.sigmoid(self.model(x)[0]).double().numpy()

    @torch.no_grad()
    def compose(self, prime: np.ndarray | None = None, *, steps: int = 64, seed: int = 0,
                temperature: float = 1.0) -> np.ndarray:  # fmt: skip
        """The roll (P + steps, 88) uint8: ``prime`` (P, 88; none: start from silence) and
        ``steps`` more, each key drawn as a Bernoulli of the model's probability at logits
        divided by ``temperature`` (below 1 surer, above 1 wilder); a NADE output draws the
        keys of a step one after another, low to high, each given those below it."""
        self._loaded("compose")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"MusicModel.compose: steps must be a positive int, got {steps!r}")
        if not (isinstance(temperature, int | float) and 0 < temperature < float("inf")):
            raise ValueError(f"MusicModel.compose: temperature must be > 0, got {temperature!r}")
        prime = np.zeros((0, music.KEYS), np.uint8) if prime is None else prime
        prime = music.checked_roll(prime, "MusicModel: prime", empty=True)
        generator = torch.Generator().manual_seed(seed)
        self.model.eval()
        x = torch.zeros(1, 1, music.KEYS)
        state = _zeros(self) if self.model.recall is None else (_zeros(self), None)
        if len(prime):
            x = torch.cat([x, torch.from_numpy(prime.astype(np.float32))[None]], 1)
        rolls, start = [], 0
        for _ in range(steps):
            read = x.shape[1]
            x, state = self.model.draw(x, state, generator, temperature, start)  # (1, 1, K)
            start += read
            rolls.append(x[0, 0].numpy().astype(np.uint8))
        return np.concatenate([prime, np.stack(rolls)])

    # --- the run's report --------------------------------------------------------------------

    def _write(self, run, report: MusicReport, source: str, parts) -> None:
        """metrics.json, the figures and report.html of a finished run."""
        c, name = self.config, Path(source).stem
        baselines = dict(report.baselines)
        if c.output == "nade" and name in RNN_NADE:
            baselines["Boulanger-Lewandowski, Bengio and Vincent 2012: RNN-NADE"] = {
                "nll": RNN_NADE[name]
            }
        elif c.output == "independent" and c.cell in PAPER.get(name, {}):
            cell = c.cell.upper()
            baselines[f"Chung, Gulcehre, Cho and Bengio 2014: {cell}, ~20k parameters"] = {
                "nll": PAPER[name][c.cell]
            }
        metrics = {
            "test": report.test, "baselines": baselines, "parameters": report.parameters,
            "processes": run.world, "model": describe(c),
            "data": {"source": source, **{f"{s} pieces": n for s, n in report.pieces.items()}},
            "cpu_seconds": time.process_time() - self._cpu,
            "figures": self._figures(run.path, parts["test"]),
        }  # fmt: skip
        run.finish(report, metrics)

    def _figures(self, folder: Path, test: list[np.ndarray]) -> dict[str, str]:
        """continuation.png (a primed continuation beside the real one) and, for a GRU,
        gates.png (the update gate over one test piece)."""
        piece = max(test, key=len)
        prime = min(16, len(piece) // 2)
        real = piece[: prime + 32]
        made = self.compose(piece[:prime], steps=len(real) - prime, seed=0)
        picture = sequence_figures.piano_rolls(
            [("the real piece", real), ("the model's continuation (seed 0)", made)], prime
        )
        figures.save_png(picture, folder / "continuation.png")
        shown = {
            "continuation.png": f"The longest test piece: its first {prime} steps (left of the "
            "line) prime the model, which then draws each key of every step at its predicted "
            "probability (bottom); the piece as written above."
        }
        c = self.config
        if c.cell == "gru" and c.num_layers == 1 and not c.layer_norm and not c.zoneout:
            x = self.model.inputs(music.padded([piece])[0])[0]  # (T, K + clock)
            gates = record_gates(self.model.rnn, x.numpy()).top[0].z  # (T, H)
            figures.save_png(sequence_figures.roll_gates(piece, gates), folder / "gates.png")
            shown["gates.png"] = (
                "The longest test piece (top) and the update gate z of every GRU unit at every "
                "step (bottom): near 1 a unit keeps its state, near 0 it takes the new one."
            )
        return shown


def describe(config: MusicConfig) -> str:
    """The model in words, as the report's score table names it: "GRU of 46 units, the 88
    keys of a step independent Bernoullis" or "..., the 88 keys of a step modelled jointly by a
    NADE of 150 hidden units"."""
    layers = f"{config.num_layers} layers of " if config.num_layers > 1 else ""
    extra = f" and a clock of {config.clock} steps" if config.clock else ""
    if config.attention:
        extra += f", attending to its past (keys of {config.attention})"
    what = f"{config.cell.upper()} of {layers}{config.width} units{extra}, the 88 keys of a step "
    if config.output == "nade":
        return what + f"modelled jointly by a NADE of {config.nade_hidden} hidden units"
    return what + "independent Bernoullis"


def _zeros(task: MusicModel):
    """The layer's zero state for one sequence."""
    net = task.model.rnn
    h = torch.zeros(net.num_layers, 1, net.hidden_size)
    return (h, h.clone()) if isinstance(net, nn.LSTM) else h
