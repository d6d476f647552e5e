"""Polyphonic music as piano rolls: the Boulanger-Lewandowski et al. (2012) .mat files, MIDI
files written from a roll, and the metric the literature reports on them.

A piece is a piano roll (T, 88) of 0/1: step t, key k sounds (k = 0 is MIDI note 21, A0;
k = 87 is 108, C8). The .mat files (JSB_Chorales.mat, Nottingham.mat, ...) hold three MATLAB
cell arrays, ``traindata``, ``validdata`` and ``testdata``, of such rolls.

The metric (`nll`): the model predicts the 88 keys of step t as independent Bernoullis from
the steps before it; a step's loss is the sum over the 88 keys of the binary cross-entropy
-[y log p + (1 - y) log(1 - p)] in nats; the score of a split is the mean of that over every
step of every piece (each step weighs the same, long pieces count more). Every step is
predicted, the first one included: step 1 is predicted from an all-zero input (silence
before the piece). The papers do not say how they scored first steps, so `nll` also gives the
score without each piece's first step (``first=False``).

Shapes: N pieces, T steps, K = 88 keys.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "KEYS",
    "LOWEST",
    "SPLITS",
    "Music",
    "checked_roll",
    "length_batches",
    "marginal_nll",
    "midi_bytes",
    "nll",
    "padded",
    "read_mat",
    "read_midi",
    "read_midi_folder",
    "step_losses",
    "write_midi",
]

KEYS = 88  # the piano's keys, MIDI notes 21 to 108
LOWEST = 21  # the MIDI note of key 0 (A0)
SPLITS = {"train": "traindata", "valid": "validdata", "test": "testdata"}


@dataclass
class Music:
    """The pieces of a data set, by split: each a list of uint8 rolls (T_i, 88)."""

    train: list[np.ndarray]
    valid: list[np.ndarray]
    test: list[np.ndarray]
    source: str

    def split(self, name: str) -> list[np.ndarray]:
        """The pieces of split ``name`` ("train", "valid" or "test")."""
        if name not in SPLITS:
            raise ValueError(f"music: split must be one of {sorted(SPLITS)}, got {name!r}")
        return getattr(self, name)


def read_mat(path: str | os.PathLike) -> Music:
    """The three splits of a Boulanger-Lewandowski .mat file; ValueError naming the file and
    what is wrong when a split is missing, or a piece is empty, not 0/1 or not 88 keys wide."""
    import scipy.io

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(2, "No such file", str(path))
    try:
        stored = scipy.io.loadmat(str(path))
    except (ValueError, TypeError, OSError, NotImplementedError) as error:
        raise ValueError(f"music: {str(path)!r} is not a MATLAB .mat file ({error})") from None
    found = sorted(k for k in stored if not k.startswith("__"))
    splits = {}
    for name, key in SPLITS.items():
        if key not in stored:
            raise ValueError(
                f"music: {str(path)!r} has no {key!r}: expected the cell arrays traindata, "
                f"validdata and testdata of piano rolls, found {found}"
            )
        splits[name] = _pieces(stored[key], f"{path}: {key}")
    return Music(**splits, source=str(path))


def _pieces(cells, where: str) -> list[np.ndarray]:
    """The rolls of one MATLAB cell array, each checked (T, 88) of 0/1 with T ≥ 1."""
    if not isinstance(cells, np.ndarray) or cells.dtype != object or cells.size == 0:
        raise ValueError(f"music: {where} must be a non-empty cell array of piano rolls")
    out = []
    for i, roll in enumerate(cells.ravel()):
        roll = np.asarray(roll)
        if roll.ndim != 2 or roll.shape[1] != KEYS or roll.shape[0] < 1:
            raise ValueError(
                f"music: {where}, piece {i + 1}: expected a piano roll (T, {KEYS}) with T ≥ 1, "
                f"got shape {roll.shape}"
            )
        if not np.isin(roll, (0, 1)).all():
            bad = roll[~np.isin(roll, (0, 1))].ravel()[0]
            raise ValueError(
                f"music: {where}, piece {i + 1}: expected 0/1 values (a key sounds or not), "
                f"got {bad!r}"
            )
        out.append(roll.astype(np.uint8))
    return out


def padded(pieces: list[np.ndarray]) -> tuple[Tensor, Tensor, Tensor]:
    """(inputs (N, T, 88) uint8, targets (N, T, 88) int8, lengths (N,)) of ``pieces``, T the
    longest: the input of step t is the roll of step t - 1 (zeros at t = 1), the target the
    roll of step t; targets past a piece's end are -1 (no step there). Bytes, not floats: the
    Nottingham training split padded is 0.2 GB so, 0.9 GB as float32."""
    lengths = torch.tensor([len(p) for p in pieces], dtype=torch.int64)
    T = int(lengths.max())
    x = torch.zeros(len(pieces), T, KEYS, dtype=torch.uint8)
    y = torch.full((len(pieces), T, KEYS), -1, dtype=torch.int8)
    for i, p in enumerate(pieces):
        roll = torch.from_numpy(np.asarray(p, dtype=np.uint8))
        x[i, 1 : len(p)] = roll[:-1]
        y[i, : len(p)] = roll.to(torch.int8)
    return x, y, lengths


def checked_roll(roll, what: str, *, empty: bool = False) -> np.ndarray:
    """``roll`` as a (T, 88) uint8 piano roll; ValueError naming ``what`` if it is not one
    (another shape, values other than 0/1, or no step unless ``empty``)."""
    roll = np.asarray(roll)
    if roll.ndim != 2 or roll.shape[1] != KEYS or (len(roll) < 1 and not empty):
        raise ValueError(f"{what} must be a piano roll (T, {KEYS}), got {roll.shape}")
    if not np.isin(roll, (0, 1)).all():
        raise ValueError(f"{what} must hold 0/1 values")
    return roll.astype(np.uint8)


def length_batches(lengths: Tensor, size: int, steps: int | None) -> list[Tensor]:
    """The indices of the pieces by length, in batches of at most ``size`` pieces and, unless
    ``steps`` is None, at most ``steps`` padded steps (one piece at least)."""
    order = torch.argsort(lengths)
    if steps is None:
        return list(order.split(size))
    batches, start = [], 0
    while start < len(order):
        end = start + 1
        while (
            end < len(order)
            and end - start < size
            and (end + 1 - start) * int(lengths[order[end]]) <= steps
        ):
            end += 1
        batches.append(order[start:end])
        start = end
    return batches


def step_losses(logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """(the loss of each step (N, T): the sum over keys of the binary cross-entropy in nats,
    0 past a piece's end; which steps are real (N, T) bool) of ``logits`` and ``targets`` (N, T,
    88; targets -1 past an end, as `padded` gives them)."""
    real = targets[..., 0] >= 0  # (N, T)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, targets.to(logits.dtype).clamp(min=0), reduction="none"
    )  # (N, T, K)
    return bce.sum(-1) * real, real


def nll(logits: Tensor, targets: Tensor, *, first: bool = True) -> float:
    """The mean over every real step of the 88 keys' summed binary cross-entropy, in nats
    (the module's metric); ``first=False`` leaves out each piece's first step."""
    losses, real = step_losses(logits.double(), targets.double())
    if not first:
        real = real.clone()
        real[:, 0] = False
        losses = losses * real
    return float(losses.sum() / real.sum())


def marginal_nll(train: list[np.ndarray], pieces: list[np.ndarray]) -> float:
    """The trivial baseline: every step of ``pieces`` predicted by each key's frequency in the
    ``train`` steps (the same guess whatever came before), its `nll` in nats."""
    counts = np.concatenate(train).mean(0)  # (K,)
    p = np.clip(counts, 1e-6, 1 - 1e-6)
    steps = np.concatenate(pieces).astype(np.float64)  # (ΣT, K)
    return float(-(steps * np.log(p) + (1 - steps) * np.log(1 - p)).sum(1).mean())


# --- MIDI ----------------------------------------------------------------------------------------

TICKS = 480  # MIDI ticks per beat; one step is one beat


def midi_bytes(roll: np.ndarray, step_seconds: float = 0.5, *, velocity: int = 80) -> bytes:
    """A type-1 MIDI file (bytes) of ``roll`` (T, 88) 0/1: one step is one beat of
    ``step_seconds`` (the tempo), a key that sounds on consecutive steps one held note, every
    note on channel 0 at ``velocity`` (needs the 'music' extra: mido)."""
    import io

    from gru._extras import require

    mido = require("mido", "music", "writing MIDI")
    roll = np.asarray(roll)
    if roll.ndim != 2 or roll.shape[1] != KEYS:
        raise ValueError(f"midi: expected a piano roll (T, {KEYS}), got shape {roll.shape}")
    if not step_seconds > 0:
        raise ValueError(f"midi: step_seconds must be > 0, got {step_seconds}")
    padded_roll = np.concatenate([np.zeros((1, KEYS)), roll, np.zeros((1, KEYS))]).astype(int)
    change = np.diff(padded_roll, axis=0)  # (T + 1, K): +1 a note starts, -1 it ends
    events = []  # (step, 0 off before 1 on, note)
    for step, key in zip(*np.nonzero(change), strict=True):
        events.append((int(step), int(change[step, key] > 0), LOWEST + int(key)))
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=round(step_seconds * 1e6), time=0))
    now = 0
    for step, on, note in sorted(events):
        kind = "note_on" if on else "note_off"
        track.append(mido.Message(kind, note=note, velocity=velocity if on else 0,
                                  time=step * TICKS - now))  # fmt: skip
        now = step * TICKS
    track.append(mido.MetaMessage("end_of_track", time=0))
    file = mido.MidiFile(type=1, ticks_per_beat=TICKS)
    file.tracks.append(track)
    out = io.BytesIO()
    file.save(file=out)
    return out.getvalue()


def write_midi(roll: np.ndarray, path: str | os.PathLike, step_seconds: float = 0.5) -> Path:
    """Write `midi_bytes` of ``roll`` to ``path`` atomically."""
    from gru._io import atomic_write

    data = midi_bytes(roll, step_seconds)
    return atomic_write(path, lambda f: f.write(data))


DRUMS = 9  # the General MIDI percussion channel (channel 10 counted from 1), left out


def read_midi(path: str | os.PathLike, steps_per_beat: int = 4) -> np.ndarray:
    """The piano roll (T, 88) uint8 of a MIDI file, quantized to ``steps_per_beat`` steps a
    beat: a note sounds on every step from its start's step to before its end's (at least
    one step); the drum channel and notes outside 21-108 are left out. ValueError naming the
    file when it cannot be read or holds no such notes (needs the 'music' extra: mido)."""
    from gru._extras import require

    mido = require("mido", "music", "reading MIDI")
    try:
        file = mido.MidiFile(str(path))
    except (OSError, ValueError, EOFError, KeyError, IndexError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise ValueError(f"music: {str(path)!r} is not a MIDI file ({error})") from None
    notes, started = [], {}  # (start, end) in ticks per key; started[(channel, note)]
    for track in file.tracks:
        now = 0
        for message in track:
            now += message.time
            if message.type not in ("note_on", "note_off") or message.channel == DRUMS:
                continue
            key = (message.channel, message.note)
            if message.type == "note_on" and message.velocity > 0:
                started.setdefault(key, now)
            elif key in started:
                notes.append((message.note, started.pop(key), now))
    notes = [n for n in notes if LOWEST <= n[0] < LOWEST + KEYS]
    if not notes:
        raise ValueError(
            f"music: {str(path)!r} has no notes to read: expected notes 21-108 outside the drum "
            "channel (10), found none"
        )
    step = file.ticks_per_beat / steps_per_beat  # ticks per step
    T = max(max(round(end / step), round(start / step) + 1) for _, start, end in notes)
    roll = np.zeros((T, KEYS), np.uint8)
    for note, start, end in notes:
        first = round(start / step)
        roll[first : max(round(end / step), first + 1), note - LOWEST] = 1
    return roll


def read_midi_folder(folder: str | os.PathLike, steps_per_beat: int = 4) -> Music:
    """The .mid files of ``folder`` as a `Music`, in the order of their names: every tenth
    file from the 9th is validation, from the 10th test, the rest training (at least 3
    files). Errors name the file (`read_midi`)."""
    folder = Path(folder)
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".mid", ".midi"))
    if len(paths) < 3:
        raise ValueError(
            f"music: {str(folder)!r} holds {len(paths)} .mid files; expected at least 3 (one "
            "each for training, validation and test)"
        )
    rolls = [read_midi(p, steps_per_beat) for p in paths]
    valid = [i for i in range(len(rolls)) if i % 10 == 8] or [len(rolls) - 2]
    test = [i for i in range(len(rolls)) if i % 10 == 9] or [len(rolls) - 1]
    train = [i for i in range(len(rolls)) if i not in valid + test]
    pick = lambda ids: [rolls[i] for i in ids]
    return Music(pick(train), pick(valid), pick(test), source=str(folder))
