"""What each step sees: the batches of every epoch, the learning rate of every step and the
optimizer that takes it (`make_optimizer`).

The batches and rates are functions of the configuration and the position in the run only
(the seed, the epoch, the step), never of a random state that training moves on, so a resumed
run sees the same batches and rates as one never stopped. Under torchrun each process reads
its own shard.

Shapes: N examples; B = batch_size; K = world · B parallel streams (``carry``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor
from torch.utils.data import DistributedSampler

from gru.training.config import TrainConfig

__all__ = ["epoch_batches", "lr_factor", "make_optimizer"]


def epoch_batches(
    n: int,
    config: TrainConfig,
    epoch: int,
    rank: int,
    world: int,
    sort_key: Tensor | None,
    carry: bool = False,
) -> list[Tensor]:
    """The index batches of ``epoch`` for process ``rank``: a function of (seed, epoch) only.

    With ``sort_key`` (N,), e.g. lengths, batches are bucketed: the shuffled indices are cut
    into chunks of 64 batches, each sorted by key, so a batch holds similar lengths, and the
    batches are shuffled again. With ``carry`` the batches are the consecutive chunks of this
    process's streams, in order (`gru.training`'s docstring); N is a multiple of world · B.
    """
    if carry:
        K, B = world * config.batch_size, config.batch_size
        return [torch.arange(s * K + rank * B, s * K + rank * B + B) for s in range(n // K)]
    sampler = DistributedSampler(
        range(n), num_replicas=world, rank=rank, shuffle=True, seed=config.seed, drop_last=False
    )
    sampler.set_epoch(epoch)
    order = torch.tensor(list(sampler), dtype=torch.int64)  # (N / world,)
    B = config.batch_size
    if sort_key is None:
        return list(order.split(B))
    batches = []
    for chunk in order.split(64 * B):
        chunk = chunk[torch.argsort(sort_key[chunk], stable=True)]
        batches.extend(chunk.split(B))
    generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
    return [batches[i] for i in torch.randperm(len(batches), generator=generator)]


def lr_factor(config: TrainConfig, total_steps: int) -> Callable[[int], float]:
    """The factor of the learning rate at each step of ``total_steps`` (`TrainConfig.schedule`):
    a linear rise over the warm-up steps, then constant, a half cosine or a line to 0."""
    warmup = round(config.warmup * total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        if config.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        if config.schedule == "linear":
            return 1.0 - progress
        return 1.0

    return factor


def make_optimizer(params: list, config: TrainConfig) -> torch.optim.Optimizer:
    """The ``config.optimizer`` of ``params``: Adam, AdamW or RMSProp (torch's, smoothing
    0.99, no momentum) at ``config.lr`` with its ``eps`` and ``weight_decay``."""
    kinds = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "rmsprop": torch.optim.RMSprop}
    return kinds[config.optimizer](
        params, lr=config.lr, eps=config.eps, weight_decay=config.weight_decay
    )
