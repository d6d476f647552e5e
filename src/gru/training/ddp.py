"""Training under torchrun: joining the process group and the collectives the loop needs.

With WORLD_SIZE > 1 in the environment (set by ``torchrun``), `distributed` joins the process
group (gloo on CPU, nccl on GPU) once and leaves it at exit; with one process every function
here is the identity and nothing is initialized.
"""

from __future__ import annotations

import atexit
import os

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["all_reduce_sums", "distributed", "gather"]


def distributed(device: str = "cpu") -> tuple[int, int]:
    """(rank, world size); under torchrun, joins the process group first (gloo or nccl)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    backend = "nccl" if device.startswith("cuda") else "gloo"
    dist.init_process_group(backend)
    atexit.register(_leave_process_group)
    return dist.get_rank(), dist.get_world_size()


def _leave_process_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def gather(state: Tensor, world: int) -> list[Tensor]:
    """Every process's copy of ``state`` (same shape everywhere), in rank order."""
    if world == 1:
        return [state]
    parts = [torch.empty_like(state) for _ in range(world)]
    dist.all_gather(parts, state)
    return parts


def all_reduce_sums(sums: dict, world: int) -> dict:
    """``sums`` {name: number} added up over every process."""
    if world == 1 or not sums:
        return dict(sums)
    keys = sorted(sums)
    values = torch.tensor([float(sums[k]) for k in keys], dtype=torch.float64)
    dist.all_reduce(values)
    return dict(zip(keys, values.tolist(), strict=True))
