"""The one training loop every task uses.

`fit` trains a model on tensors with Adam or AdamW, gradient clipping, an optional learning-rate
schedule, evaluation each epoch, early stopping on a validation metric and a progress bar with
the live loss and metric. Given a run folder it writes, after every epoch, model.safetensors,
metrics.json (the per-epoch history) and training_curves.png (redrawn at most every 10 s, and
after the last epoch: short epochs would spend more time drawing than training), and it
checkpoints the resumable state (`gru.checkpoint`) after every epoch and every
``checkpoint_every`` steps; with ``resume=True`` it continues from the last checkpoint and ends
with the same weights as a run that was never interrupted. A run whose loss, gradients or
weights turn NaN or infinite stops with `TrainingDiverged` (a ValueError) that says where and
what to try, and saves nothing of the diverged steps.

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

The package: `config` (TrainConfig, FitResult), `batches` (the batches of each epoch and the
learning-rate schedule), `precision` (``precision="bf16"``: each step's forward under autocast
to bfloat16, float32 master weights), `ddp` (torchrun), `loop` (`fit` itself, in named steps).

Shapes: N examples; B = batch_size.
"""

from gru.training.config import FitResult, TrainConfig, TrainingDiverged
from gru.training.ddp import distributed
from gru.training.loop import fit, plot_history

__all__ = ["FitResult", "TrainConfig", "TrainingDiverged", "distributed", "fit", "plot_history"]
