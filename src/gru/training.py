"""The training loop every task uses: Adam, gradient clipping, evaluation each epoch, progress."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

__all__ = ["TrainConfig", "fit"]


@dataclass
class TrainConfig:
    """How to train: the options every task shares."""

    epochs: int = 10
    lr: float = 1e-3
    weight_decay: float = 0.0
    clip_grad_norm: float | None = 1.0
    quiet: bool = False


def fit(
    model: nn.Module,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    batches: Callable[[int], Iterable[tuple[Tensor, Tensor]]],
    config: TrainConfig,
    *,
    evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
    log: Callable[[str], None] = print,
) -> list[dict[str, float]]:
    """Train ``model`` for ``config.epochs`` epochs and return the per-epoch history.

    ``batches(epoch)`` yields the epoch's ``(inputs, targets)`` pairs; the loss of one batch is
    ``loss_fn(model(inputs), targets)``. After each epoch ``evaluate(model)`` (in eval mode,
    without gradients) gives the metrics recorded beside the mean training loss.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    history: list[dict[str, float]] = []
    for epoch in range(1, config.epochs + 1):
        model.train()
        start = time.perf_counter()
        total, count = 0.0, 0
        epoch_batches = batches(epoch)
        bar = tqdm(
            epoch_batches,
            total=len(epoch_batches) if hasattr(epoch_batches, "__len__") else None,
            desc=f"epoch {epoch}/{config.epochs}",
            leave=False,
            disable=config.quiet,
            unit="batch",
            mininterval=0.5,
        )
        for inputs, targets in bar:
            loss = loss_fn(model(inputs), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.clip_grad_norm is not None:
                nn.utils.clip_grad_norm_(params, config.clip_grad_norm)
            optimizer.step()
            total += loss.item() * len(targets)
            count += len(targets)
            bar.set_postfix(loss=f"{total / count:.4f}")
        record = {"epoch": epoch, "train_loss": total / max(count, 1)}
        record["seconds"] = time.perf_counter() - start
        if evaluate is not None:
            model.eval()
            with torch.no_grad():
                record.update(evaluate(model))
        history.append(record)
        if not config.quiet:
            log("  ".join(_format(k, v) for k, v in record.items()))
    return history


def _format(key: str, value: float) -> str:
    if key == "epoch":
        return f"epoch {int(value)}"
    if key == "seconds":
        return f"{value:.1f}s"
    return f"{key} {value:.4f}"
