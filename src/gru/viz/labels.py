"""The words a reader sees for the keys a run writes: the one table every page and figure reads.

A run's files name things as code does (``mae_original``, ``val_loss``, ``train.lr``); a page
shows `label(key)` instead. Metrics also say which way is better (`better`), so a report can
tell when a baseline beats the model, and each task names its headline metric (`HEADLINE`).

    label("mae_original")        "MAE in the target's units"
    label("val_mae_original")    "validation MAE in the target's units"
    label("train.lr")            "learning rate"
    better("accuracy")           "higher"
    duration(0.0648)             "0.06 s"

A key the table does not know is shown with its underscores as spaces, never dropped.
"""

from __future__ import annotations

__all__ = [
    "HEADLINE",
    "METRICS",
    "better",
    "duration",
    "is_duration",
    "label",
]

# metric: (its name for a reader, "lower" or "higher" is better, or None: neither)
METRICS = {
    "loss": ("loss", "lower"),
    "accuracy": ("accuracy", "higher"),
    "mse": ("MSE", "lower"),
    "mae": ("MAE", "lower"),
    "mae_original": ("MAE in the target's units", "lower"),
    "bits_per_char": ("bits per character", "lower"),
    "precision": ("precision", "higher"),
    "recall": ("recall", "higher"),
    "f1": ("F1", "higher"),
    "event_precision": ("event precision", "higher"),
    "event_recall": ("event recall (events found)", "higher"),
    "event_f1": ("event F1", "higher"),
    "alarms": ("alarms", None),
    "true_positives": ("true positives", None),
    "false_positives": ("false positives", None),
    "false_negatives": ("false negatives", None),
    "nll": ("NLL (nats per step)", "lower"),
    "nll_after_first": ("NLL without each piece's first step (nats per step)", "lower"),
    "bleu": ("BLEU (cased, detokenized)", "higher"),
    "bleu_lowercase": ("BLEU (lowercased)", "higher"),
    "chrf": ("chrF", "higher"),
    "sentences_per_second": ("sentences per second", None),
}

# The score a task is judged by: the first line of its report's verdict.
HEADLINE = {
    "adding": "mse",
    "sentiment": "accuracy",
    "forecast": "mse",
    "textgen": "loss",
    "anomaly": "f1",
    "music": "nll",
    "translate": "bleu",
}

# Where a score was measured: the prefix of a history column ("val_loss").
SPLITS = {"train_": "training", "val_": "validation", "test_": "test"}

# Every other key a run writes that a reader sees: settings, run facts, baselines, data.
NAMES = {
    # the history and the run
    "lr": "learning rate",
    "seconds": "time",
    "training_seconds": "training time",
    "run_seconds": "time of the whole run",
    "seconds_per_epoch": "time per epoch",
    "layer": "recurrent layer",
    "threshold": "GRU threshold (standardized error)",
    "baseline_threshold": "rolling z-score threshold",
    "residual_scale_by_steps_ahead": "typical forecast error by steps ahead (scale)",
    "events": "planted anomalies",
    "counts": "detection counts",
    "event_recall_by_kind": "events found, by kind",
    "mae_original_by_column": "test MAE in each column's units",
    "gru_version": "gru version",
    "vocabulary.origin": "vocabulary",
    "vocabulary.sha256": "vocabulary checksum (SHA-256)",
    # baselines and detectors
    "seasonal_naive": "seasonal naive",
    "rolling_zscore": "rolling z-score",
    "gru": "GRU",
    "segrnn": "SegRNN",
    "level_shift": "level shift",
    # the training settings (gru.training.TrainConfig)
    "train.lr": "learning rate",
    "train.batch_size": "batch size",
    "train.epochs": "epochs",
    "train.eps": "optimizer eps",
    "train.optimizer": "optimizer",
    "train.weight_decay": "weight decay",
    "train.clip_grad_norm": "gradient clipping (max norm)",
    "train.schedule": "learning-rate schedule",
    "train.warmup": "warm-up (share of the steps)",
    "train.seed": "random seed",
    "train.monitor": "metric watched",
    "train.mode": "watched metric is better when",
    "train.patience": "early-stopping patience (epochs)",
    "train.restore_best": "keep the best epoch's weights",
    # task settings whose words alone would mislead
    "num_words": "vocabulary size (words)",
    "maxlen": "tokens read per review (maxlen)",
    "num_layers": "layers",
    "hidden_size": "hidden size (units)",
    "embedding_dim": "embedding size",
    "lookback": "lookback (rows read)",
    "horizon": "horizon (rows forecast)",
    "segment": "segment length",
    "n_train": "training sequences",
    "n_test": "test sequences",
    "seq_len": "sequence length",
    "fillna": "missing values",
    "reset_after": "reset gate after the product",
    "torch_layer": "torch.nn.GRU instead of gru.GRU",
    "time_column": "time column",
    "scaler.mean": "scaler mean (per column)",
    "scaler.std": "scaler standard deviation (per column)",
    "split.train": "training rows",
    "split.validation": "validation rows",
    "split.test": "test rows",
    "baseline_window": "rolling z-score window",
    "cell": "recurrent layer",
    "weight_noise": "weight noise (standard deviation)",
    "layer_norm": "layer norm",
}


def _metric(key: str) -> str | None:
    """The reader's name of metric ``key``, with its split when it has one ("val_mse")."""
    if key in METRICS:
        return METRICS[key][0]
    for prefix, split in SPLITS.items():
        if key.startswith(prefix) and key[len(prefix) :] in METRICS:
            name = METRICS[key[len(prefix) :]][0]
            return f"{split} {name}"
    return None


def label(key) -> str:
    """What a reader sees for ``key``: a metric, a setting (dotted for nested ones, as
    "train.lr"), a baseline or a fact of the run; an unknown key with its "_" as spaces."""
    key = str(key)
    if key in NAMES:
        return NAMES[key]
    name = _metric(key)
    if name is not None:
        return name
    return key.replace("_", " ").replace(".", ", ")


def better(metric: str) -> str | None:
    """ "lower" or "higher": which way ``metric`` is better; None when neither or unknown."""
    return METRICS.get(metric, (None, None))[1]


def is_duration(key) -> bool:
    """Whether the value of ``key`` is a time in seconds."""
    return "seconds" in str(key)


def duration(seconds: float) -> str:
    """``seconds`` as a reader wants to see a time: "0.06 s", "3.1 s", "42 s", "12 min 5 s"."""
    if seconds >= 600:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes} min {rest} s"
    if seconds >= 10:
        return f"{seconds:.0f} s"
    if seconds >= 1:
        return f"{seconds:.1f} s"
    if seconds >= 0.01:
        return f"{seconds:.2f} s"
    return "under 0.01 s" if seconds > 0 else "0 s"
