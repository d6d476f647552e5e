"""`fit`: the one training loop (see `gru.training` for what it does and writes).

`fit` checks its arguments and hands them to a `_Run`, which holds the model, its optimizer
and schedule and the state of the loop, and goes through the run in named steps: begin
(resume or seed), epoch (step after step, checkpointing as it goes), record (the epoch's
metrics), watch (early stopping), end_epoch (the run folder's files), finish. A loss, a
gradient or a weight that turns NaN or infinite stops the run (`TrainingDiverged`) before
anything of it is saved.

Shapes: N examples; B = batch_size.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from gru import checkpoint
from gru._io import remove_leftovers
from gru.ops.aside import waiting
from gru.training.batches import epoch_batches, lr_factor, make_optimizer
from gru.training.config import FitResult, TrainConfig, TrainingDiverged
from gru.training.ddp import all_reduce_sums, distributed, gather
from gru.training.precision import autocast, in_float32, say_without_hardware
from gru.training.warmup import warm_up

__all__ = ["fit", "plot_history"]

CURVES_EVERY = 10.0  # seconds between redraws of training_curves.png (always after the last)


class _Trace:
    """One JSON line per step for each process, when GRU_TRACE_DIR is set (see `gru.training`)."""

    def __init__(self, rank: int) -> None:
        folder = os.environ.get("GRU_TRACE_DIR")
        self.path = Path(folder) / f"trace-rank{rank}.jsonl" if folder else None

    def write(self, **record) -> None:
        if self.path is not None:
            with self.path.open("a") as file:
                file.write(json.dumps(record) + "\n")


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
    target; a batch's loss is ``loss_fn(model(*inputs[idx]), target[idx])``. NumPy arrays are
    taken as tensors, floating ones as float32 (the dtype of the models' weights).
    ``metrics`` {name: fn(output, target) -> scalar} are averaged over each epoch's batches
    and shown live as ``train_<name>``. After every epoch ``evaluate(model)`` (in eval mode,
    without gradients) gives the validation metrics recorded beside them. ``sort_key`` (N,)
    buckets batches by it (see `gru.training.batches.epoch_batches`). ``carry=True`` trains
    with truncated back-propagation through time, the state carried from batch to batch
    (`gru.training`).

    ``run_dir`` must hold the run's config.json (`gru.checkpoint.save_config`); `fit` then
    writes the run's files there (`gru.training`). ``resume=True`` continues from its
    checkpoint.safetensors; temporary files that a killed run left there are removed.
    ``device`` is where the model trains ("cpu", "cuda").

    Raises `TrainingDiverged` (a ValueError) when the loss, the gradients or the weights become
    NaN or infinite, before anything of the diverged steps is saved.
    """
    config.check()
    train = [_tensor(t) if isinstance(t, np.ndarray) else t for t in train]
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
    run_dir = Path(run_dir) if run_dir is not None else None
    # Only rank 0 writes; the others read the config only to check a checkpoint they resume.
    needs_config = run_dir is not None and (main or resume)
    run_config = checkpoint.load_config(run_dir) if needs_config else None
    if resume and run_dir is None:
        raise ValueError("fit: resume=True needs the run_dir to resume")

    run = _Run(
        model, loss_fn, train, config, evaluate=evaluate, metrics=metrics or {},
        sort_key=sort_key, carry=carry, run_dir=run_dir, run_config=run_config,
        checkpoint_every=checkpoint_every, device=device, rank=rank, world=world,
        say=log if (main and not quiet) else (lambda message: None), progress=main and not quiet,
    )  # fmt: skip
    say_without_hardware(config.precision, device)
    with waiting():  # compiles in place (`gru.ops.aside`), before the clocks start on the CPU
        if device == "cpu":
            warm_up(model, loss_fn, train, batch_size=config.batch_size, carry=carry)
        run.begin(resume)
        while not run.s["finished"] and run.s["epoch"] <= config.epochs:
            run.epoch()
        return run.finish()


class _Run:
    """One call of `fit`: the model and its optimizer, schedule and batches, and where the loop
    stands. ``s`` holds the counters, history, running sums and best score, all of which go
    into the checkpoint with the weights, the optimizer, the RNGs and the carried state."""

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable[[Tensor, Tensor], Tensor],
        train: Sequence[Tensor],
        config: TrainConfig,
        *,
        evaluate: Callable[[nn.Module], dict[str, float]] | None,
        metrics: dict[str, Callable[[Tensor, Tensor], Tensor]],
        sort_key: Tensor | None,
        carry: bool,
        run_dir: Path | None,
        run_config: dict | None,
        checkpoint_every: int | None,
        device: str,
        rank: int,
        world: int,
        say: Callable[[str], None],
        progress: bool,
    ) -> None:
        self.model, self.loss_fn, self.train, self.config = model, loss_fn, train, config
        self.evaluate, self.metrics, self.sort_key, self.carry = evaluate, metrics, sort_key, carry
        self.run_dir, self.run_config, self.checkpoint_every = run_dir, run_config, checkpoint_every
        self.device, self.rank, self.world = device, rank, world
        self.say, self.progress = say, progress  # progress: show a bar (rank 0, not quiet)
        self.n = len(train[0])
        model.to(self.device)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(self.params, config)
        self.steps_per_epoch = len(self.batches(1))
        total_steps = self.steps_per_epoch * config.epochs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_factor(config, total_steps)
        )
        self.trained = nn.parallel.DistributedDataParallel(model) if self.world > 1 else model
        self.s = {
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
        self.best_weights: dict[str, Tensor] | None = None
        self.state: Tensor | None = None  # the carried hidden state (carry=True)
        self.resumed_at: int | None = None
        self.saved_at: tuple[int, int] | None = None  # (epoch, step_in_epoch) of the checkpoint
        self.trace = _Trace(self.rank)
        self.plotted = -math.inf  # when training_curves.png was last drawn

    def batches(self, epoch: int) -> list[Tensor]:
        return epoch_batches(
            self.n, self.config, epoch, self.rank, self.world, self.sort_key, self.carry
        )

    # --- checkpoint and resume ---------------------------------------------------------------

    def begin(self, resume: bool) -> None:
        """Continue from the run folder's checkpoint (``resume``, if it has one), else seed."""
        if self.run_dir is not None and self.rank == 0:
            removed = remove_leftovers(self.run_dir)
            if removed:
                self.say(f"removed what a killed write left in {self.run_dir}: {removed}")
        loaded = checkpoint.load_training_state(self.run_dir, self.run_config) if resume else None
        if resume and loaded is None:
            self.say(f"resume: {self.run_dir} has no checkpoint yet; starting from the beginning")
        if loaded is None:
            seed = self.config.seed
            torch.manual_seed(seed + self.rank)
            random.seed(seed)
            np.random.seed(seed % 2**32)  # noqa: NPY002 (the global one callbacks may use)
        else:
            tensors, saved = loaded
            _restore(
                self.model, self.optimizer, self.scheduler, tensors, saved, self.rank, self.world
            )
            self.s = s = saved["loop"]
            if self.carry and f"carry/{self.rank}" in tensors:
                self.state = tensors[f"carry/{self.rank}"].to(self.device)
            best = {k[5:]: v for k, v in tensors.items() if k.startswith("best/")}
            self.best_weights = best or None
            self.resumed_at = s["global_step"]
            self.saved_at = (s["epoch"], s["step_in_epoch"])
            self.say(
                f"resuming {self.run_dir} at epoch {s['epoch']}, step {s['step_in_epoch']} of "
                f"{self.steps_per_epoch}"
            )
        self.start = time.perf_counter() - self.s["elapsed"]

    def save_state(self) -> None:
        """Checkpoint everything the loop needs to go on exactly (every rank takes part)."""
        self.check_weights(self.s["step_in_epoch"])
        tensors = {f"model/{k}": v for k, v in self.model.state_dict().items()}
        if self.best_weights is not None:
            tensors.update({f"best/{k}": v for k, v in self.best_weights.items()})
        opt_tensors, opt_info = checkpoint.optimizer_to_flat(self.optimizer)
        tensors.update(opt_tensors)
        torch_rng, rng_info = checkpoint.get_rng_state()
        for r, rng in enumerate(gather(torch_rng, self.world)):
            tensors[f"rng/torch/{r}"] = rng
        if self.carry and self.state is not None:
            for r, carried in enumerate(gather(self.state.contiguous(), self.world)):
                tensors[f"carry/{r}"] = carried
        if self.rank == 0:
            loop_state = {
                "loop": self.s,
                "optimizer": opt_info,
                "scheduler": self.scheduler.state_dict(),
                "rng": rng_info,
                "world_size": self.world,
                "config": asdict(self.config),
            }
            checkpoint.save_training_state(self.run_dir, tensors, loop_state, self.run_config)
        self.saved_at = (self.s["epoch"], self.s["step_in_epoch"])

    # --- one epoch -----------------------------------------------------------------------------

    def epoch(self) -> None:
        """Train the rest of the current epoch, then evaluate, watch and save."""
        s = self.s
        self.model.train()
        epoch_start = time.perf_counter() - s["epoch_elapsed"]
        batches = self.batches(s["epoch"])
        if s["step_in_epoch"] == 0:
            self.state = None
        bar = tqdm(
            total=len(batches),
            initial=s["step_in_epoch"],
            desc=f"epoch {s['epoch']}/{self.config.epochs}",
            leave=False,
            disable=not self.progress,
            unit="batch",
            mininterval=0.5,
        )
        for index in batches[s["step_in_epoch"] :]:
            self.step(index)
            sums = s["sums"]
            bar.update()
            bar.set_postfix(
                {k: f"{v / sums['count']:.4f}" for k, v in sums.items() if k != "count"},
                refresh=False,
            )
            if (
                self.run_dir is not None
                and self.checkpoint_every
                and s["global_step"] % self.checkpoint_every == 0
                and s["step_in_epoch"] < len(batches)
            ):
                s["elapsed"] = time.perf_counter() - self.start
                s["epoch_elapsed"] = time.perf_counter() - epoch_start
                self.save_state()
        bar.close()
        self.check_weights(s["step_in_epoch"])
        record = self.record(epoch_start)
        self.watch(record)
        self.end_epoch()

    def step(self, index: Tensor) -> None:
        """One optimizer step on the batch ``index``; its loss and metrics join the sums."""
        s, sums = self.s, self.s["sums"]
        *inputs, target = (t[index].to(self.device) for t in self.train)
        with autocast(self.config.precision, self.device):
            if self.carry:
                output, state = self.trained(*inputs, self.state)
                self.state = in_float32(state.detach())  # the next batch continues from it
            else:
                output = self.trained(*inputs)
        output = in_float32(output)  # the loss and the metrics in float32
        loss = self.loss_fn(output, target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm, value = self.clip_gradients(), loss.item()
        # The gradients are the same on every rank (DDP averaged them), so every rank stops at
        # the same step; a rank's own loss alone decides only in a single process.
        if not math.isfinite(norm) or (self.world == 1 and not math.isfinite(value)):
            what = f"the loss is {value:g} and the gradients' norm {norm:g}"
            self.diverged(what, s["step_in_epoch"] + 1)
        self.optimizer.step()
        self.scheduler.step()
        size = len(target)
        sums["count"] = sums.get("count", 0) + size
        sums["loss"] = sums.get("loss", 0.0) + value * size
        with torch.no_grad():
            for name, fn in self.metrics.items():
                sums[name] = sums.get(name, 0.0) + float(fn(output, target)) * size
        s["step_in_epoch"] += 1
        s["global_step"] += 1
        self.trace.write(step=s["global_step"], loss=value, params=_digest(self.model))

    def clip_gradients(self) -> float:
        """The norm of all gradients together, after clipping them to ``clip_grad_norm``."""
        if self.config.clip_grad_norm is not None:
            return float(nn.utils.clip_grad_norm_(self.params, self.config.clip_grad_norm))
        grads = [p.grad for p in self.params if p.grad is not None]
        return float(nn.utils.get_total_norm(grads)) if grads else 0.0

    # --- divergence ----------------------------------------------------------------------------

    def check_weights(self, step_in_epoch: int) -> None:
        """Stop with `TrainingDiverged` if a weight is NaN or infinite (before it is saved)."""
        state = self.model.state_dict().values()
        if not all(torch.isfinite(t).all() for t in state if t.is_floating_point()):
            self.diverged("the weights are not finite", step_in_epoch)

    def diverged(self, what: str, step_in_epoch: int) -> None:
        """Raise `TrainingDiverged`: where, what, what the run folder keeps, what to try."""
        s, c = self.s, self.config
        done = s["global_step"] - s["step_in_epoch"] + step_in_epoch
        where = f"epoch {s['epoch']}, step {step_in_epoch} of {self.steps_per_epoch}"
        kept = ""
        if self.run_dir is not None and self.saved_at is None:
            kept = "; the run folder holds no checkpoint of it yet"
        elif self.run_dir is not None:
            epoch, step = self.saved_at
            at = f"epoch {epoch}, step {step}" if step else f"the end of epoch {epoch - 1}"
            kept = (
                f"; the run folder keeps its checkpoint of {at} (resumed, it would diverge again)"
            )
        raise TrainingDiverged(
            f"fit: training diverged at {where} (step {done} of the run): {what}{kept}. In a new "
            f"run, try a smaller lr (now {c.lr:g}), clip_grad_norm (now {c.clip_grad_norm}) or "
            f"a warmup (now {c.warmup:g})",
            epoch=s["epoch"],
        )

    # --- evaluation and early stopping ---------------------------------------------------------

    def record(self, epoch_start: float) -> dict[str, float]:
        """The epoch's line of the history: training means over every rank, lr, validation."""
        epoch = self.s["epoch"]
        totals = all_reduce_sums(self.s["sums"], self.world)
        record = {"epoch": epoch, "train_loss": totals["loss"] / max(totals["count"], 1)}
        if not math.isfinite(record["train_loss"]):  # the same on every rank (all-reduced)
            what = f"the epoch's training loss is {record['train_loss']:g}"
            self.diverged(what, self.s["step_in_epoch"])
        for name in self.metrics:
            record[f"train_{name}"] = totals[name] / max(totals["count"], 1)
        record["lr"] = self.scheduler.get_last_lr()[0]
        if self.evaluate is not None:
            self.model.eval()
            with torch.no_grad():
                scores = self.evaluate(self.model)
            # Finite weights can still answer inf (a step of lr 1e30 leaves weights ~1e30):
            # a score that is not finite is a diverged run, not a result to report.
            for name, value in scores.items():
                if isinstance(value, float) and not math.isfinite(value):
                    self.diverged(f"its {name} is {value:g}", self.s["step_in_epoch"])
            record.update(scores)
        record["seconds"] = time.perf_counter() - epoch_start
        self.s["history"].append(record)
        self.say(
            f"epoch {epoch}/{self.config.epochs}  "
            + "  ".join(_format(k, v) for k, v in record.items() if k != "epoch")
        )
        return record

    def watch(self, record: dict[str, float]) -> None:
        """Keep the best epoch of the monitored metric; stop after ``patience`` worse ones."""
        config = self.config
        if config.monitor is None:
            return
        if config.monitor not in record:
            raise ValueError(
                f"fit: monitor={config.monitor!r} is not among the epoch's metrics {sorted(record)}"
            )
        value, best = record[config.monitor], self.s["best"]
        better = best["value"] is None or (
            value > best["value"] if config.mode == "max" else value < best["value"]
        )
        if better:
            best.update(value=value, epoch=record["epoch"], bad_epochs=0)
            if config.restore_best:
                self.best_weights = copy.deepcopy(self.model.state_dict())
        else:
            best["bad_epochs"] += 1
            if config.patience is not None and best["bad_epochs"] >= config.patience:
                self.s["stopped_early"] = True
                self.say(f"early stop: no better {config.monitor} for {config.patience} epochs")

    def end_epoch(self) -> None:
        """Move on to the next epoch and write the run's files (weights, metrics, curves)."""
        s, epoch = self.s, self.s["epoch"]
        s.update(epoch=epoch + 1, step_in_epoch=0, sums={}, epoch_elapsed=0.0)
        s["finished"] = s["stopped_early"] or epoch == self.config.epochs
        s["elapsed"] = time.perf_counter() - self.start
        if self.run_dir is None:
            return
        if self.rank == 0:
            restore = self.config.restore_best
            weights = self.best_weights if restore else self.model.state_dict()
            checkpoint.save_model(self.run_dir, weights, self.run_config)
            checkpoint.write_json(self.run_dir / checkpoint.METRICS_FILE, {"history": s["history"]})
            # Drawing costs ~0.2 s of CPU: runs of many short epochs redraw every CURVES_EVERY s.
            if s["finished"] or time.perf_counter() - self.plotted >= CURVES_EVERY:
                plot_history(s["history"], self.run_dir / checkpoint.CURVES_FILE)
                self.plotted = time.perf_counter()
        self.save_state()

    def finish(self) -> FitResult:
        """End with the best weights when asked, and say what happened."""
        model_file = None if self.run_dir is None else self.run_dir / checkpoint.MODEL_FILE
        if self.rank == 0 and model_file is not None and not model_file.is_file():
            # A finished run resumed after its model file was deleted: write it again.
            kept = self.config.restore_best and self.best_weights is not None
            weights = self.best_weights if kept else self.model.state_dict()
            checkpoint.save_model(self.run_dir, weights, self.run_config)
        if self.config.restore_best and self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)
        self.trace.write(final=_digest(self.model))
        s = self.s
        return FitResult(
            history=s["history"],
            best_epoch=s["best"]["epoch"] or len(s["history"]),
            stopped_early=s["stopped_early"],
            seconds=s["elapsed"],
            steps=s["global_step"],
            resumed_at_step=self.resumed_at,
        )


def _tensor(array: np.ndarray) -> Tensor:
    tensor = torch.as_tensor(array)
    return tensor.float() if tensor.is_floating_point() else tensor


def _restore(model, optimizer, scheduler, tensors, saved, rank, world) -> None:
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model/")})
    checkpoint.optimizer_from_flat(optimizer, tensors, saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    own = tensors.get(f"rng/torch/{rank}") if saved["world_size"] == world else None
    checkpoint.set_rng_state(own if own is not None else tensors["rng/torch/0"], saved["rng"])


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
    from gru.viz import figures  # matplotlib loads only when a picture is drawn

    figures.save_png(figures.training_curves(history), path)
