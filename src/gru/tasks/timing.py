"""How fast a model answers, measured honestly: the median wall time of repeats, and how far
the repeats spread (a machine that other programs keep busy spreads them, and then no single
figure is worth comparing).

    per_sequence, per_step = latencies(model, example, input_size, quick=False)
    per_sequence.median, per_sequence.spread, per_sequence.noisy
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from gru.nn import GRU, MinGRU

__all__ = ["NOISY", "Timing", "latencies", "readable", "timed"]

NOISY = 0.5  # repeats whose interquartile range exceeds half their median are noise


@dataclass
class Timing:
    """Seconds of one call: the ``median`` of ``repeats`` runs and their ``spread``, the
    interquartile range over the median (0 when every run took as long)."""

    median: float
    spread: float
    repeats: int

    @property
    def noisy(self) -> bool:
        """Whether the runs spread too far for the median to compare (`NOISY`)."""
        return self.spread > NOISY


def timed(fn: Callable[[], object], runs: int, budget: float = 1.0) -> Timing:
    """The `Timing` of fn() after one warm-up run: ``runs`` runs, fewer (at least 4) past
    ``budget`` seconds."""
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < runs and (len(times) < 4 or time.perf_counter() - start < budget):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    q1, _, q3 = statistics.quantiles(times, n=4)
    return Timing(median, (q3 - q1) / median if median > 0 else 0.0, len(times))


def _stepper(layer: nn.Module, input_size: int) -> Callable[[], object]:
    """One streaming step of ``layer`` at batch 1, its state carried from call to call."""
    x_t = torch.randn(1, input_size)
    if isinstance(layer, (GRU, MinGRU)):
        stream = layer.stream(1)
        return lambda: stream(x_t)
    state = None
    x_seq = x_t.unsqueeze(1)  # (1, 1, I): a sequence of one step

    def step():
        nonlocal state
        _, state = layer(x_seq, state)

    return step


@torch.no_grad()
def latencies(model: nn.Module, example, input_size: int, quick: bool) -> tuple[Timing, Timing]:
    """(one sequence ``example`` through the whole model, one streaming step of its recurrent
    layer ``model.rnn`` reading ``input_size`` features), both at batch 1 in eval mode: up to
    20 and 300 runs, within 0.1 s (``quick``) or 1 s."""
    model.eval()
    budget = 0.1 if quick else 1.0
    per_sequence = timed(lambda: model(example), runs=20, budget=budget)
    per_step = timed(_stepper(model.rnn, input_size), runs=300, budget=budget / 2)
    return per_sequence, per_step


def readable(seconds: float) -> str:
    """``seconds`` in the unit a reader takes in at a glance: "1.25 s", "3.28 ms", "42 µs"."""
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.0f} µs"
