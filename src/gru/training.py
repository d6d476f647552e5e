"""The one training loop every task uses.

`fit` trains a model on tensors with Adam or AdamW, gradient clipping, an optional learning-rate
schedule, evaluation each epoch, early stopping on a validation metric and a progress bar with
the live loss and metric. Given a run folder it writes, after every epoch, model.safetensors,
metrics.json (the per-epoch history) and training_curves.png, and it checkpoints the resumable
state (`gru.checkpoint`) after every epoch and every ``checkpoint_every`` steps; with
``resume=True`` it continues from the last checkpoint and ends with the same weights as a run
that was never interrupted.

Reproducible: the batch order of epoch e is a function of (seed, e) only (a
`DistributedSampler` seeded with ``seed`` and set to epoch e), and every random state is part
of the checkpoint, so the same seed gives the same weights on the same CPU and thread count.

Distributed: launched by ``torchrun`` (WORLD_SIZE > 1), `fit` joins the process group (gloo on
CPU, nccl on GPU), wraps the model in DistributedDataParallel and gives each process its own
shard of every epoch through the sampler; ``batch_size`` is per process. Only rank 0 writes
files and prints.

Truncated back-propagation through time (``carry=True``, for language models that read one
long text): the model is called as ``model(*inputs, state)`` and returns ``(output, state)``;
the returned state is detached and handed to the next batch, so gradients flow within a batch
and the hidden state flows across batches. The batches then come in order, not shuffled: the
N examples are S consecutive chunks of K = world · B parallel streams, example s·K + k holding
chunk s of stream k, and process r reads streams r·B … r·B + B − 1. The state starts as None
(zeros) at every epoch and is part of the checkpoint, so a resumed run carries it on exactly.

For checking distributed and resumed runs, setting the environment variable GRU_TRACE_DIR
makes every process append one JSON line per optimizer step to ``trace-rank<r>.jsonl`` there:
the step, the batch loss and a SHA-256 of its parameters, and at the end their final digest.

Shapes: N examples; B = batch_size.
"""

from __future__ import annotations

import atexit
import copy
import json
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DistributedSampler
from tqdm.auto import tqdm

from gru import checkpoint

__all__ = ["FitResult", "TrainConfig", "distributed", "fit", "plot_history"]

OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("constant", "cosine", "linear")
CURVES_FILE = "training_curves.png"


@dataclass
class TrainConfig:
    """How to train: every setting that changes the trained weights.

    ``schedule`` multiplies the learning rate by a factor that rises linearly from 0 over the
    first ``warmup`` fraction of all steps and then stays at 1 ("constant") or falls to 0 at
    the last step along a half cosine ("cosine") or a line ("linear"). ``monitor`` names a
    metric of ``evaluate`` ("val_accuracy"), better when larger with ``mode="max"``; training
    stops after ``patience`` epochs without improvement, and with ``restore_best`` it ends
    with (and saves) the weights of the best epoch.
    """

    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    eps: float = 1e-8
    clip_grad_norm: float | None = 1.0
    schedule: str = "constant"
    warmup: float = 0.0
    monitor: str | None = None
    mode: str = "max"
    patience: int | None = None
    restore_best: bool = False
    seed: int = 0

    def check(self) -> None:
        """Raise ValueError naming the first setting out of range."""
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig: {name} must be a positive int, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig: lr must be positive, got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"TrainConfig: optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}"
            )
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"TrainConfig: schedule must be one of {SCHEDULES}, got {self.schedule!r}"
            )
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"TrainConfig: warmup must be a fraction in [0, 1), got {self.warmup}")
        if self.mode not in ("max", "min"):
            raise ValueError(f"TrainConfig: mode must be 'max' or 'min', got {self.mode!r}")
        if (self.patience is not None or self.restore_best) and self.monitor is None:
            raise ValueError("TrainConfig: patience and restore_best need a metric to monitor")
        if self.clip_grad_norm is not None and not self.clip_grad_norm > 0:
            raise ValueError(
                f"TrainConfig: clip_grad_norm must be positive or None, got {self.clip_grad_norm}"
            )


@dataclass
class FitResult:
    """What `fit` did: the per-epoch ``history`` (dicts of floats), the best epoch (by the
    monitored metric, else the last), whether early stopping ended it, and wall seconds."""

    history: list[dict[str, float]]
    best_epoch: int
    stopped_early: bool
    seconds: float
    steps: int
    resumed_at_step: int | None = None
    extra: dict = field(default_factory=dict)


# --- distributed -----------------------------------------------------------------------------


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


# --- batches, schedule, trace ----------------------------------------------------------------


def _epoch_batches(
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
    process's streams, in order (see the module docstring); N is a multiple of world · B.
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


def _lr_factor(config: TrainConfig, total_steps: int) -> Callable[[int], float]:
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


class _Trace:
    """One JSON line per step for each process, when GRU_TRACE_DIR is set (see module doc)."""

    def __init__(self, rank: int) -> None:
        folder = os.environ.get("GRU_TRACE_DIR")
        self.path = Path(folder) / f"trace-rank{rank}.jsonl" if folder else None

    def write(self, **record) -> None:
        if self.path is not None:
            with self.path.open("a") as file:
                file.write(json.dumps(record) + "\n")


# --- the loop --------------------------------------------------------------------------------


def fit(
    model: nn.Module,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    train: Sequence[Tensor],
    config: TrainConfig,
    *,
    evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
    metrics: dict[str, Callable[[Tensor, Tensor], Tensor]] | None = None,
    sort_key: Tensor | None = None,
    carry: bool = False,
    run_dir: str | os.PathLike | None = None,
    resume: bool = False,
    checkpoint_every: int | None = None,
    quiet: bool = False,
    device: str = "cpu",
    log: Callable[[str], None] = print,
) -> FitResult:
    """Train ``model`` on ``train`` for ``config.epochs`` epochs; return what happened.

    ``train`` is a sequence of tensors with the same first dimension N (or objects that index
    like them: ``len()`` and ``[LongTensor] -> Tensor``): the model's inputs and, last, the
    target; a batch's loss is ``loss_fn(model(*inputs[idx]), target[idx])``.
    ``metrics`` {name: fn(output, target) -> scalar} are averaged over each epoch's batches
    and shown live as ``train_<name>``. After every epoch ``evaluate(model)`` (in eval mode,
    without gradients) gives the validation metrics recorded beside them. ``sort_key`` (N,)
    buckets batches by it (see `_epoch_batches`). ``carry=True`` trains with truncated
    back-propagation through time, the state carried from batch to batch (module docstring).

    ``run_dir`` must hold the run's config.json (`gru.checkpoint.save_config`); `fit` then
    writes the run's files there (module docstring). ``resume=True`` continues from its
    checkpoint.safetensors. ``device`` is where the model trains ("cpu", "cuda").
    """
    config.check()
    if checkpoint_every is not None and checkpoint_every < 1:
        raise ValueError(f"fit: checkpoint_every must be a positive int, got {checkpoint_every}")
    n = len(train[0])
    if n == 0 or any(len(t) != n for t in train):
        raise ValueError(
            "fit: train tensors must share a non-zero first dimension, "
            f"got {[len(t) for t in train]}"
        )
    rank, world = distributed(device)
    if carry and n % (world * config.batch_size):
        raise ValueError(
            f"fit: with carry=True the {n} examples must be whole chunks of "
            f"world size {world} x batch_size {config.batch_size} streams"
        )
    if carry and sort_key is not None:
        raise ValueError("fit: carry=True reads batches in order, so sort_key cannot reorder them")
    if device.startswith("cuda") and world > 1:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', rank))}"
    main = rank == 0
    say = log if (main and not quiet) else (lambda message: None)
    run_dir = Path(run_dir) if run_dir is not None else None
    # Only rank 0 writes; the others read the config only to check a checkpoint they resume.
    needs_config = run_dir is not None and (main or resume)
    run_config = checkpoint.load_config(run_dir) if needs_config else None
    if resume and run_dir is None:
        raise ValueError("fit: resume=True needs the run_dir to resume")

    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    Optimizer = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    optimizer = Optimizer(params, lr=config.lr, eps=config.eps, weight_decay=config.weight_decay)
    steps_per_epoch = len(_epoch_batches(n, config, 1, rank, world, sort_key, carry))
    total_steps = steps_per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(config, total_steps))
    trained = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    metrics = metrics or {}

    # Where the run stands; everything here goes into the checkpoint.
    s = {
        "epoch": 1,
        "step_in_epoch": 0,
        "global_step": 0,
        "history": [],
        "sums": {},
        "best": {"value": None, "epoch": 0, "bad_epochs": 0},
        "elapsed": 0.0,
        "epoch_elapsed": 0.0,
        "finished": False,
        "stopped_early": False,
    }
    best_weights: dict[str, Tensor] | None = None
    state: Tensor | None = None  # the carried hidden state (carry=True)
    resumed_at = None
    loaded = checkpoint.load_training_state(run_dir, run_config) if resume else None
    if resume and loaded is None:
        say(f"resume: {run_dir} has no checkpoint yet; starting from the beginning")
    if loaded is not None:
        tensors, saved = loaded
        _restore(model, optimizer, scheduler, tensors, saved, rank, world)
        s = saved["loop"]
        if carry and f"carry/{rank}" in tensors:
            state = tensors[f"carry/{rank}"].to(device)
        best = {k[5:]: v for k, v in tensors.items() if k.startswith("best/")}
        best_weights = best or None
        resumed_at = s["global_step"]
        say(
            f"resuming {run_dir} at epoch {s['epoch']}, step {s['step_in_epoch']} of "
            f"{steps_per_epoch}"
        )
    else:
        torch.manual_seed(config.seed + rank)
        random.seed(config.seed)
        np.random.seed(config.seed % 2**32)  # noqa: NPY002 (the global one callbacks may use)

    def save_state() -> None:
        tensors = {f"model/{k}": v for k, v in model.state_dict().items()}
        if best_weights is not None:
            tensors.update({f"best/{k}": v for k, v in best_weights.items()})
        opt_tensors, opt_info = checkpoint.optimizer_to_flat(optimizer)
        tensors.update(opt_tensors)
        torch_rng, rng_info = checkpoint.get_rng_state()
        for r, rng in enumerate(_gather(torch_rng, world)):
            tensors[f"rng/torch/{r}"] = rng
        if carry and state is not None:
            for r, carried in enumerate(_gather(state.contiguous(), world)):
                tensors[f"carry/{r}"] = carried
        if main:
            loop_state = {
                "loop": s,
                "optimizer": opt_info,
                "scheduler": scheduler.state_dict(),
                "rng": rng_info,
                "world_size": world,
                "config": asdict(config),
            }
            checkpoint.save_training_state(run_dir, tensors, loop_state, run_config)

    trace = _Trace(rank)
    start = time.perf_counter() - s["elapsed"]
    while not s["finished"] and s["epoch"] <= config.epochs:
        epoch = s["epoch"]
        model.train()
        epoch_start = time.perf_counter() - s["epoch_elapsed"]
        batches = _epoch_batches(n, config, epoch, rank, world, sort_key, carry)
        if s["step_in_epoch"] == 0:
            state = None
        bar = tqdm(
            total=len(batches),
            initial=s["step_in_epoch"],
            desc=f"epoch {epoch}/{config.epochs}",
            leave=False,
            disable=not main or quiet,
            unit="batch",
            mininterval=0.5,
        )
        sums = s["sums"]
        for index in batches[s["step_in_epoch"] :]:
            *inputs, target = (t[index].to(device) for t in train)
            if carry:
                output, state = trained(*inputs, state)
                state = state.detach()  # the next batch continues from it, without its graph
            else:
                output = trained(*inputs)
            loss = loss_fn(output, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.clip_grad_norm is not None:
                nn.utils.clip_grad_norm_(params, config.clip_grad_norm)
            optimizer.step()
            scheduler.step()
            size = len(target)
            sums["count"] = sums.get("count", 0) + size
            sums["loss"] = sums.get("loss", 0.0) + loss.item() * size
            with torch.no_grad():
                for name, fn in metrics.items():
                    sums[name] = sums.get(name, 0.0) + float(fn(output, target)) * size
            s["step_in_epoch"] += 1
            s["global_step"] += 1
            trace.write(step=s["global_step"], loss=loss.item(), params=_digest(model))
            bar.update()
            bar.set_postfix(
                {k: f"{v / sums['count']:.4f}" for k, v in sums.items() if k != "count"},
                refresh=False,
            )
            if (
                run_dir is not None
                and checkpoint_every
                and s["global_step"] % checkpoint_every == 0
                and s["step_in_epoch"] < len(batches)
            ):
                s["elapsed"] = time.perf_counter() - start
                s["epoch_elapsed"] = time.perf_counter() - epoch_start
                save_state()
        bar.close()

        totals = _all_reduce_sums(sums, world)
        record = {"epoch": epoch, "train_loss": totals["loss"] / max(totals["count"], 1)}
        for name in metrics:
            record[f"train_{name}"] = totals[name] / max(totals["count"], 1)
        record["lr"] = scheduler.get_last_lr()[0]
        if evaluate is not None:
            model.eval()
            with torch.no_grad():
                record.update(evaluate(model))
        record["seconds"] = time.perf_counter() - epoch_start
        s["history"].append(record)
        say(
            f"epoch {epoch}/{config.epochs}  "
            + "  ".join(_format(k, v) for k, v in record.items() if k != "epoch")
        )

        if config.monitor is not None:
            if config.monitor not in record:
                raise ValueError(
                    f"fit: monitor={config.monitor!r} is not among the epoch's metrics "
                    f"{sorted(record)}"
                )
            value, best = record[config.monitor], s["best"]
            better = best["value"] is None or (
                value > best["value"] if config.mode == "max" else value < best["value"]
            )
            if better:
                best.update(value=value, epoch=epoch, bad_epochs=0)
                if config.restore_best:
                    best_weights = copy.deepcopy(model.state_dict())
            else:
                best["bad_epochs"] += 1
                if config.patience is not None and best["bad_epochs"] >= config.patience:
                    s["stopped_early"] = True
                    say(f"early stop: no better {config.monitor} for {config.patience} epochs")

        s.update(epoch=epoch + 1, step_in_epoch=0, sums={}, epoch_elapsed=0.0)
        s["finished"] = s["stopped_early"] or epoch == config.epochs
        s["elapsed"] = time.perf_counter() - start
        if run_dir is not None:
            if main:
                weights = best_weights if config.restore_best else model.state_dict()
                checkpoint.save_model(run_dir, weights, run_config)
                checkpoint.write_json(run_dir / checkpoint.METRICS_FILE, {"history": s["history"]})
                plot_history(s["history"], run_dir / CURVES_FILE)
            save_state()

    if config.restore_best and best_weights is not None:
        model.load_state_dict(best_weights)
    trace.write(final=_digest(model))
    best_epoch = s["best"]["epoch"] or len(s["history"])
    return FitResult(
        history=s["history"],
        best_epoch=best_epoch,
        stopped_early=s["stopped_early"],
        seconds=s["elapsed"],
        steps=s["global_step"],
        resumed_at_step=resumed_at,
    )


def _restore(model, optimizer, scheduler, tensors, saved, rank, world) -> None:
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model/")})
    checkpoint.optimizer_from_flat(optimizer, tensors, saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    own = tensors.get(f"rng/torch/{rank}") if saved["world_size"] == world else None
    checkpoint.set_rng_state(own if own is not None else tensors["rng/torch/0"], saved["rng"])


def _gather(state: Tensor, world: int) -> list[Tensor]:
    """Every process's copy of ``state`` (same shape everywhere), in rank order."""
    if world == 1:
        return [state]
    parts = [torch.empty_like(state) for _ in range(world)]
    dist.all_gather(parts, state)
    return parts


def _all_reduce_sums(sums: dict, world: int) -> dict:
    if world == 1 or not sums:
        return dict(sums)
    keys = sorted(sums)
    values = torch.tensor([float(sums[k]) for k in keys], dtype=torch.float64)
    dist.all_reduce(values)
    return dict(zip(keys, values.tolist(), strict=True))


def _digest(model: nn.Module) -> str | None:
    if not os.environ.get("GRU_TRACE_DIR"):
        return None
    return checkpoint.tensors_digest(model.state_dict())


def _format(key: str, value: float) -> str:
    if key == "seconds":
        return f"{value:.1f}s"
    if key == "lr":
        return f"lr {value:.2e}"
    return f"{key} {value:.4f}"


def plot_history(history: list[dict[str, float]], path: str | os.PathLike) -> None:
    """Draw the training curves of ``history`` as a PNG: losses left, other metrics right."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    from gru._io import atomic_write

    epochs = [h["epoch"] for h in history]
    keys = [k for k in history[-1] if k not in ("epoch", "seconds", "lr")]
    losses = [k for k in keys if k.endswith("loss")]
    others = [k for k in keys if k not in losses]
    figure = Figure(figsize=(10, 4) if others else (5, 4), layout="constrained")
    axes = figure.subplots(1, 2 if others else 1, squeeze=False)[0]
    for ax, names, label in ((axes[0], losses, "loss"), (axes[-1], others, "metric")):
        for name in names:
            ax.plot(epochs, [h.get(name, math.nan) for h in history], marker="o", label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    atomic_write(path, lambda f: figure.savefig(f, format="png", dpi=100))
