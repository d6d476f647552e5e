"""`warm_up`: run a model once on a copy, so that compiling falls before the clocks start.

The engine compiles a kernel the first time a kind of call runs (seconds with an empty cache,
tens of seconds for all a training run uses; `gru.kernels.compiling` says so on stderr). A
progress bar or a timer started before that counts the compile as the first step's time and
shows an ETA of hours. One step's forward and backward, and a forward without gradients in
evaluation mode, on a copy of the model and with the random numbers drawn from a fork, compile
what the run will call and leave the model, its gradients and every random state as they were.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from copy import deepcopy

import torch
from torch import Tensor, nn

__all__ = ["warm_up"]


def warm_up(
    model: nn.Module,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    train: Sequence[Tensor],
    *,
    batch_size: int = 2,
    carry: bool = False,
    device: str = "cpu",
) -> None:
    """One training step's forward and backward of ``model`` on the first ``batch_size``
    examples of ``train`` (inputs, then the target, as `gru.training.fit` takes them; with
    ``carry`` the model is called with a None state and returns (output, state)), then a
    forward without gradients in eval mode; all on a copy, the random numbers from a fork."""
    index = torch.arange(min(batch_size, len(train[0])))
    *inputs, target = (t[index].to(device) for t in train)
    extra = (None,) if carry else ()
    with torch.random.fork_rng(devices=[]):
        copy = deepcopy(model)
        copy.train()
        output = copy(*inputs, *extra)
        loss_fn(output[0] if carry else output, target).backward()
        copy.eval()
        with torch.no_grad():
            copy(*inputs, *extra)
