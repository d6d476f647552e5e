"""Sequence classification: a label for each multichannel sequence, as in the UEA archive's
problems (activity from a smartwatch, a speaker from his vowels).

The model is `gru.GRUClassifier`'s (`gru.models.SequenceModel`), trained through the same
steps (`GRUClassifier.prepare`, ``build``, ``adopt``) by the one training loop, so the task and
the estimator give the same weights for the same settings and seed; the task adds what a run
is: a run folder (checkpoints, ``resume``, DDP under torchrun), files in the formats people
have (.ts, long CSV, .npz: `gru.data.sequences`), baselines on the same split and a report.

Every channel is standardized with the mean and spread of the training steps. Sequences of
different lengths are read with their lengths: the GRU stops at each one and the pooling
reads no padding. The default preset is one design for the whole archive, not tuned per
problem: a bidirectional GRU whose head reads the mean and the maximum of its outputs over
time, light augmentation of the training sequences (noise and a random gain per channel),
dropout, and a short warm-up then a cosine decay of the learning rate (see `ClassifyConfig`).

    clf = SequenceClassifier()
    report = clf.fit("BasicMotions_TRAIN.ts", "BasicMotions_TEST.ts", out="runs/motions")
    clf.predict("new.ts")                        # a label per sequence
    SequenceClassifier.load("runs/motions").evaluate("BasicMotions_TEST.ts")

Shapes: N sequences, T_i steps, C channels, K classes.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from gru.data.sequences import LabeledSequences, check_split, load
from gru.estimators import GRUClassifier
from gru.models import POOLINGS, SequenceModel
from gru.tasks import runs
from gru.tasks.baselines import most_frequent, nearest_neighbour
from gru.training import TrainConfig
from gru.viz import figures
from gru.viz.recording import record_gates

__all__ = ["ClassifyConfig", "ClassifyReport", "SequenceClassifier"]

CONFUSION_FILE = "confusion_matrix.png"
GATES_FILE = "gates_by_class.png"
# 1-NN DTW compares every test sequence with every training one, step by step; beyond this
# many step pairs (about a minute on one core) the baseline is left out and the report says so.
DTW_CELLS = 2 * 10**9


def _preset_train() -> TrainConfig:
    return TrainConfig(
        epochs=80, batch_size=16, lr=1e-2, schedule="cosine", warmup=0.05, clip_grad_norm=1.0
    )


@dataclass
class ClassifyConfig(runs.TaskConfig):
    """Everything that decides a sequence classifier; the defaults are the preset.

    ``hidden_size`` H, ``num_layers``, ``bidirectional`` and ``pooling`` (what the head reads:
    "mean_max", "mean", "max" or "last") shape the model; ``dropout`` acts on the pooled
    features (and between layers); ``jitter`` and ``scaling`` augment the standardized
    training sequences at every step (noise of that standard deviation on every value, a gain
    1 + N(0, scaling²) per channel of a sequence); ``standardize`` scales each channel by the
    training steps' mean and spread. Training: 80 epochs of 16 sequences, Adam at 1e-2 after a
    5% warm-up, decaying along a cosine.
    """

    hidden_size: int = 64
    num_layers: int = 1
    bidirectional: bool = True
    pooling: str = "mean_max"
    dropout: float = 0.3
    jitter: float = 0.05
    scaling: float = 0.1
    standardize: bool = True
    train: TrainConfig = field(default_factory=_preset_train)

    def check(self) -> None:
        """Raise ValueError naming the first setting out of range."""
        runs.check_ints("ClassifyConfig", self, {"hidden_size": 1, "num_layers": 1})
        runs.check_numbers("ClassifyConfig", self, ("dropout", "jitter", "scaling"))
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ClassifyConfig: dropout must be in [0, 1), got {self.dropout}")
        for name in ("jitter", "scaling"):
            if not 0.0 <= getattr(self, name) < 10.0:
                raise ValueError(
                    f"ClassifyConfig: {name} must be in [0, 10), got {getattr(self, name)}"
                )
        if self.pooling not in POOLINGS:
            raise ValueError(
                f"ClassifyConfig: pooling must be one of {POOLINGS}, got {self.pooling!r}"
            )
        self.train.check()

    def estimator(self, backend: str = "auto", device: str = "cpu") -> GRUClassifier:
        """The `gru.GRUClassifier` of these settings: its ``fit`` trains the model this task
        trains, to the same weights for the same seed."""
        t = self.train
        return GRUClassifier(
            hidden_size=self.hidden_size, num_layers=self.num_layers,
            bidirectional=self.bidirectional, pooling=self.pooling, dropout=self.dropout,
            jitter=self.jitter, scaling=self.scaling, epochs=t.epochs, batch_size=t.batch_size,
            lr=t.lr, optimizer=t.optimizer, weight_decay=t.weight_decay,
            clip_grad_norm=t.clip_grad_norm, schedule=t.schedule, warmup=t.warmup,
            standardize=self.standardize, random_state=t.seed, backend=backend, device=device,
        )  # fmt: skip


@dataclass
class ClassifyReport(runs.RunReport):
    """The outcome of `SequenceClassifier.fit`: ``test`` the test accuracy and loss (None
    without test data), ``baselines`` theirs on the same test sequences, ``confusion`` the
    counts (K, K) (rows true, columns predicted) in the order of ``classes``;
    ``training_cpu_seconds`` the CPU time this process spent training (on a busy machine a
    fairer measure than the wall-clock ``training_seconds``)."""

    test: dict[str, float] | None
    baselines: dict[str, dict[str, float] | None]
    classes: list[str]
    confusion: list[list[int]] | None
    sequences: dict[str, int]
    training_cpu_seconds: float


class SequenceClassifier(runs.Task):
    """A GRU that labels sequences: fit on labeled sequences (and score a test split), predict
    the labels of new ones. Settings by name (`ClassifyConfig` and `TrainConfig` fields) or a
    whole ``config``; ``backend`` is passed to `gru.GRU` (speed only)."""

    task = "classify"
    config_class = ClassifyConfig
    model: SequenceModel | None = None
    report: ClassifyReport | None = None
    fitted: dict | None = None  # what training learned of the data: classes, scaling

    # --- what a run stores besides its config ------------------------------------------------

    def _restore(self, stored: dict, run_dir: Path) -> None:
        self.fitted = _fitted_from_json(stored["fitted"])

    def _build_model(self) -> SequenceModel:
        return self.config.estimator(self.backend).build(self.fitted)

    def estimator(self) -> GRUClassifier:
        """The trained model as a fitted `gru.GRUClassifier` (its predict, predict_proba,
        score, save)."""
        if self.model is None:
            raise ValueError("SequenceClassifier: fit or load a model first")
        history = self.report.history if self.report is not None else []
        return self.config.estimator(self.backend).adopt(self.model, dict(self.fitted), history)

    # --- fit -----------------------------------------------------------------------------------

    def fit(
        self,
        train: str | os.PathLike | LabeledSequences,
        test: str | os.PathLike | LabeledSequences | None = None,
        *,
        out: str | os.PathLike | None = None,
        resume: bool = False,
        checkpoint_every: int | None = None,
        quiet: bool = False,
        device: str = "cpu",
        baselines: bool = True,
        log=print,
        **columns,
    ) -> ClassifyReport:
        """Train on the labeled sequences ``train`` (a .ts, long CSV or .npz file, or loaded
        `LabeledSequences`) and score ``test`` (the same), when given, beside the baselines
        (the most frequent class, and 1-NN DTW unless ``baselines=False``). With ``out`` the
        run folder is written there (it must not exist yet or be empty, unless ``resume``
        continues the run in it). ``columns`` (id_column, time_column, label_column) name a
        CSV's columns."""
        c = self.config
        c.check()
        run = self.run_folder(out, resume, checkpoint_every, device, quiet, log)
        sources = {"train": runs.source_name(train), "test": runs.source_name(test)}
        run.check(c.to_dict(), sources)
        train = _read(train, columns)
        test = _read(test, columns) if test is not None else None
        if test is not None:
            check_split(train, test)
        counts = {"train": len(train), "test": len(test) if test is not None else 0}
        run.say(
            f"data: {train.source} ({counts['train']} train / {counts['test']} test sequences, "
            f"{len(train.channels)} channels, {_span(train.lengths)} steps, "
            f"{len(np.unique(train.labels))} classes)"
        )
        estimator = c.estimator(self.backend, device)
        inputs, target, self.fitted = estimator.prepare(
            train.X, train.labels, f"{type(self).__name__}.fit"
        )
        torch.manual_seed(c.train.seed)
        self.model = estimator.build(self.fitted)
        run.start(c.to_dict(), sources, fitted=_fitted_to_json(self.fitted))
        cpu = time.process_time()
        result = run.train(
            self.model, estimator.loss, (*inputs, target), c.train,
            metrics={"accuracy": _accuracy}, sort_key=inputs[1] if len(inputs) == 2 else None,
        )  # fmt: skip
        estimator.adopt(self.model, self.fitted, result.history)
        cpu = time.process_time() - cpu
        scored = test is not None and run.main
        self.report = ClassifyReport(
            **run.outcome(result),
            test=self._scores(estimator, test) if scored else None,
            baselines=_baselines(train, test, baselines, run.say) if scored else {},
            classes=[str(k) for k in self.fitted["classes_"]],
            confusion=self._confusion(estimator, test) if scored else None,
            sequences=counts,
            training_cpu_seconds=cpu,
        )
        if run.writes:
            run.finish(self.report, self._metrics(run.path, train, test, run.world))
        return self.report

    def _scores(self, estimator: GRUClassifier, data: LabeledSequences) -> dict[str, float]:
        probabilities = estimator.predict_proba(data.X)
        codes = np.searchsorted(estimator.classes_, data.labels)
        p_true = probabilities[np.arange(len(codes)), codes]
        return {
            "accuracy": float(np.mean(probabilities.argmax(axis=1) == codes)),
            "loss": float(-np.mean(np.log(np.maximum(p_true, 1e-12)))),
        }

    def _confusion(self, estimator: GRUClassifier, data: LabeledSequences) -> list[list[int]]:
        K = len(estimator.classes_)
        true = np.searchsorted(estimator.classes_, data.labels)
        predicted = np.searchsorted(estimator.classes_, estimator.predict(data.X))
        counts = np.zeros((K, K), dtype=np.int64)
        np.add.at(counts, (true, predicted), 1)
        return counts.tolist()

    # --- the report ----------------------------------------------------------------------------

    def _metrics(self, run_dir: Path, train, test, processes: int) -> dict:
        """metrics.json: the scores beside the baselines, the data, and the figures (the
        confusion matrix, the gates of one test sequence per class)."""
        r = self.report
        metrics = {
            "test": r.test,
            "baselines": {k: v for k, v in r.baselines.items() if v is not None},
            "classes": r.classes,
            "confusion": r.confusion,
            "sequences": r.sequences,
            "training_cpu_seconds": r.training_cpu_seconds,
            "processes": processes,
            "data": {
                "channels": len(train.channels),
                "steps per sequence (train)": _span(train.lengths),
                "classes (training sequences each)": _class_counts(train.labels),
                "standardized": "each channel by the training steps' mean and spread"
                if self.config.standardize
                else "no",
            },
            "notes": _notes(r.baselines),
            "figures": {},
        }
        if test is None:
            return metrics
        figures.save_png(
            figures.confusion_matrix(
                np.asarray(r.confusion), r.classes,
                title=f"test accuracy {r.test['accuracy']:.4f} on {len(test)} sequences",
            ),
            run_dir / CONFUSION_FILE,
        )  # fmt: skip
        metrics["figures"][CONFUSION_FILE] = (
            "Confusion matrix on the test sequences: rows are the true classes, columns the "
            "predicted ones; the diagonal holds the right answers."
        )
        picked, recordings = self._one_per_class(test)
        figures.save_png(
            figures.class_gates(recordings, title="The last GRU layer's gates on one test "
                                "sequence of each class"),
            run_dir / GATES_FILE,
        )  # fmt: skip
        metrics["figures"][GATES_FILE] = (
            "The update gate z (left) and reset gate r (right) of every unit of the last GRU "
            "layer over time (forward units above the white line, reverse units below), for "
            "the first test sequence of each class."
        )
        metrics["examples"] = picked
        return metrics

    def _one_per_class(self, test: LabeledSequences) -> tuple[dict, dict]:
        """The first test sequence of each class: a table of them with the model's answers, and
        their gate recordings {class: `gru.viz.recording.GateRecording`}."""
        estimator = self.estimator()
        first = {}
        for i, label in enumerate(test.labels.tolist()):
            first.setdefault(label, i)
        order = [first[k] for k in self.fitted["classes_"].tolist() if k in first]
        part = test.subset(order)
        probabilities = estimator.predict_proba(part.X)
        rows, recordings = [], {}
        mean, scale = self.fitted["x_mean_"], self.fitted["x_scale_"]
        for i, x in enumerate(part.X):
            label = str(part.labels[i])
            best = int(probabilities[i].argmax())
            rows.append(
                [part.where[i], label, str(estimator.classes_[best]), float(probabilities[i, best]),
                 len(x)]
            )  # fmt: skip
            recordings[label] = record_gates(self.model.rnn, (x - mean) / scale)
        table = {
            "columns": ["where", "class", "predicted", "P(predicted)", "steps"],
            "rows": rows,
            "caption": f"The first test sequence of each class in {test.source}, whose gates "
            f"the figure {GATES_FILE} shows.",
        }
        return table, recordings

    # --- predict and evaluate ------------------------------------------------------------------

    def sequences(self, data, labels: bool = False) -> LabeledSequences:
        """``data`` (a .ts, .csv or .npz path, or `LabeledSequences`) read for this model: its
        channels checked against the training data's; labels required when ``labels``."""
        return self._checked(data, "SequenceClassifier", labels)

    def _sequences(self, data, owner: str, labels: bool) -> LabeledSequences:
        if isinstance(data, (str, os.PathLike)):
            return load(data, labels=labels)
        if isinstance(data, LabeledSequences):
            return data
        raise TypeError(
            f"{owner}: data must be a .ts, .csv or .npz path or LabeledSequences, got "
            f"{type(data).__name__} (for arrays use SequenceClassifier.estimator().predict)"
        )

    def predict(self, data) -> np.ndarray:
        """The predicted label (N,) str of every sequence of ``data`` (a file of any format
        `fit` reads, labeled or not, or `LabeledSequences`)."""
        return self.estimator().predict(self._checked(data, "SequenceClassifier.predict").X)

    def predict_proba(self, data) -> np.ndarray:
        """P(class) (N, K) of every sequence of ``data``, columns in the order of the classes."""
        return self.estimator().predict_proba(self._checked(data, "predict_proba").X)

    def _checked(self, data, owner: str, labels: bool = False) -> LabeledSequences:
        if self.model is None:
            raise ValueError(f"{owner}: fit or load a model first")
        found = self._sequences(data, owner, labels)
        C = int(self.fitted["n_features_in_"])
        if len(found.channels) != C:
            raise ValueError(
                f"data: {found.source!r} has {len(found.channels)} channels, but the model was "
                f"trained on {C}"
            )
        return found

    def evaluate(self, data) -> dict[str, float]:
        """Accuracy and loss on the labeled sequences ``data`` ({"accuracy", "loss",
        "sequences"}); a label the model never saw is an error naming its line."""
        found = self._checked(data, "SequenceClassifier.evaluate", labels=True)
        known = set(self.fitted["classes_"].tolist())
        for i, label in enumerate(found.labels.tolist()):
            if label not in known:
                raise ValueError(
                    f"data: {found.locate(i)}: class label {label!r} is not one of the model's "
                    f"classes {sorted(known)}"
                )
        return {**self._scores(self.estimator(), found), "sequences": len(found)}


def _read(data, columns: dict) -> LabeledSequences:
    if isinstance(data, LabeledSequences):
        if data.labels is None:
            raise ValueError(f"data: {data.source!r} has no class labels; training needs them")
        return data
    return load(data, labels=True, **columns)


def _span(lengths: np.ndarray) -> str:
    low, high = int(lengths.min()), int(lengths.max())
    return str(low) if low == high else f"{low}-{high}"


def _accuracy(logits, target) -> torch.Tensor:
    return (logits.argmax(dim=1) == target).double().mean()


def _baselines(train: LabeledSequences, test: LabeledSequences, dtw: bool, say) -> dict:
    """The baselines' test accuracy: the most frequent training class; 1-NN DTW on the values
    as given (the archive's benchmark), None when ``dtw`` is off or the data too large."""
    found = {"most frequent class": most_frequent(train.labels, test.labels)}
    cells = float(train.lengths.sum()) * float(test.lengths.sum())
    if not dtw or cells > DTW_CELLS:
        found["1-NN DTW"] = None
        return found
    say("baseline: 1-nearest-neighbour DTW on the test sequences ...")
    predicted = nearest_neighbour(train.X, train.labels, test.X)
    found["1-NN DTW"] = {"accuracy": float(np.mean(predicted == test.labels))}
    return found


def _class_counts(labels: np.ndarray) -> dict[str, int]:
    classes, counts = np.unique(labels, return_counts=True)
    return {str(k): int(n) for k, n in zip(classes, counts, strict=True)}


def _notes(baselines: dict) -> list[str]:
    notes = [
        "1-NN DTW: each test sequence takes the label of its nearest training sequence by "
        "dynamic time warping (all channels warped together, no window) on the values as the "
        "file gives them, as the archive's published DTW_D scores are computed."
    ]
    if baselines.get("1-NN DTW", 0) is None:
        notes.append("1-NN DTW was not computed (turned off, or the data is too large for it).")
    return notes


def _fitted_to_json(fitted: dict) -> dict:
    return {
        "classes": [str(k) for k in fitted["classes_"]],
        "mean": np.asarray(fitted["x_mean_"], dtype=np.float64).reshape(-1).tolist(),
        "scale": np.asarray(fitted["x_scale_"], dtype=np.float64).reshape(-1).tolist(),
        "channels": int(fitted["n_features_in_"]),
    }


def _fitted_from_json(stored: dict) -> dict:
    C = int(stored["channels"])
    mean, scale = np.asarray(stored["mean"]), np.asarray(stored["scale"])
    return {
        "classes_": np.array(stored["classes"], dtype=str),
        "x_mean_": mean if mean.size == C else float(mean[0]),
        "x_scale_": scale if scale.size == C else float(scale[0]),
        "n_features_in_": C,
    }
