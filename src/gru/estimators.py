"""Your own arrays in one call: `GRURegressor` (a sequence -> one or more values) and
`GRUClassifier` (a sequence -> a label), estimators in scikit-learn's convention, trained on the
fused engine by the one training loop (`gru.training.fit`).

    model = gru.GRURegressor(hidden_size=50, epochs=50, batch_size=32).fit(X, y)
    model.predict(X_new)

X is an (N, T, F) array, an (N, T) array (one feature per step), or a list of N arrays
(T_i, F) (or (T_i,)) of different lengths. Sequences of different lengths are batched with
their lengths: a batch is padded only to its longest sequence, training batches hold similar
lengths (`gru.training.batches.epoch_batches` with the lengths as sort key), and the GRU stops
at each length, so neither the state, the pooling nor a prediction ever reads padding. y is
(N,) or (N, k) numbers for the regressor, (N,) labels of any kind (ints, strings) for the
classifier.

The constructor stores its hyperparameters as given (scikit-learn's rule: they are checked in
`fit`), so `get_params`, `set_params`, `sklearn.base.clone`, `GridSearchCV` and `Pipeline`
work. scikit-learn is not needed: it is imported only when it asks for the estimator's tags,
or to raise its `NotFittedError` (without it, `NotFittedError` here, also a ValueError and an
AttributeError).

``standardize=True`` (default) scales every feature of X, and each regression target, to mean
0 and variance 1 over the training data before the GRU reads them (predictions are scaled
back), so lr=1e-3 suits data of any scale. ``validation_split`` keeps a random fraction
(drawn from the seed) of the sequences out of training and reports val_loss and val_score
(R² or accuracy) each epoch; ``early_stopping`` stops after ``patience`` epochs without a
lower val_loss (train_loss without a validation split) and keeps the best epoch's weights.
The same ``random_state`` gives the same weights on the same CPU and thread count.
``jitter`` and ``scaling`` augment the training sequences (`gru.nn.Augment`); ``schedule``
and ``warmup`` shape the learning rate (`gru.training.TrainConfig`).

Fitted attributes: ``model_`` (a `gru.models.SequenceModel`), ``n_features_in_`` (F),
``history_`` (each epoch's record from the loop), ``n_iter_`` (epochs run), ``classes_``
(classifier), ``n_outputs_`` (regressor). `save` writes a run folder (config.json,
model.safetensors with checksums, metrics.json; nothing pickled) that `load` reads back.

Shapes: N sequences, T time steps, F features per step, k outputs, C classes.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gru import checkpoint, training
from gru.checkpoint import from_json, to_json
from gru.data.arrays import as_inputs, check_rows, read_sequences, real_numbers, standardizer
from gru.models import POOLINGS, SequenceModel, batched_predict

__all__ = ["GRUClassifier", "GRURegressor", "NotFittedError"]

_FITTED = ("x_mean_", "x_scale_", "n_features_in_")  # what every fitted estimator keeps


class NotFittedError(ValueError, AttributeError):
    """Raised by predict before fit when scikit-learn is not installed (its own otherwise)."""


def _not_fitted(owner: str) -> Exception:
    try:
        from sklearn.exceptions import NotFittedError as error
    except ImportError:
        error = NotFittedError
    return error(f"{owner}: this estimator is not fitted yet; call fit(X, y) first")


# --- hyperparameters -------------------------------------------------------------------------


def _check_int(owner: str, name: str, value, least: int = 1, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
        raise ValueError(f"{owner}: {name} must be an int ≥ {least}, got {value!r}")


def _check_fraction(owner: str, name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise ValueError(f"{owner}: {name} must be a number in [0, 1), got {value!r}")


def _seed(random_state, owner: str) -> int:
    """An int seed from ``random_state``: an int, None (drawn from NumPy's global generator, as
    scikit-learn does), or a NumPy RandomState or Generator."""
    if random_state is None:
        return int(np.random.randint(0, 2**31))  # noqa: NPY002 (scikit-learn's None)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**31))
    _check_int(owner, "random_state", random_state, least=0)
    if random_state >= 2**63:
        raise ValueError(f"{owner}: random_state must be < 2**63, got {random_state}")
    return int(random_state)


@contextmanager
def _threads(threads: int | None):
    """torch's (and so the engine's) thread count set to ``threads`` for a while."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --- the estimators --------------------------------------------------------------------------


class _SequenceEstimator:
    """What both estimators share: hyperparameters, fit, prediction, save and load. A subclass
    says how its targets are read (`encode`), its loss, its score and its output size."""

    kind = ""  # "regressor" or "classifier"

    def __init__(
        self, hidden_size: int = 50, num_layers: int = 1, *, bidirectional: bool = False,
        reset_after: bool = True, pooling: str = "last", dropout: float = 0.0, jitter: float = 0.0,
        scaling: float = 0.0, epochs: int = 50, batch_size: int = 32, lr: float = 1e-3,
        optimizer: str = "adam", weight_decay: float = 0.0, clip_grad_norm: float | None = 1.0,
        schedule: str = "constant", warmup: float = 0.0, validation_split: float = 0.0,
        early_stopping: bool = False, patience: int = 10, standardize: bool = True,
        random_state=None, threads: int | None = None, verbose: int = 0, backend: str = "auto",
        device: str = "cpu",
    ) -> None:  # fmt: skip
        for name, value in locals().items():
            if name not in ("self", "__class__"):
                setattr(self, name, value)

    # --- parameters, as scikit-learn reads them ----------------------------------------------

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return sorted(p for p in signature.parameters if p != "self")

    def get_params(self, deep: bool = True) -> dict:
        """The hyperparameters by name, as given to the constructor or `set_params`."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> _SequenceEstimator:
        """Set hyperparameters by name; ValueError naming one the estimator does not have."""
        names = self._param_names()
        for name, value in params.items():
            if name not in names:
                raise ValueError(
                    f"{type(self).__name__}.set_params: invalid parameter {name!r}; the "
                    f"parameters are {names}"
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = inspect.signature(type(self).__init__).parameters
        plain = str | int | float | type(None)
        changed = [
            f"{name}={value!r}"
            for name, value in self.get_params().items()
            if not (isinstance(value, plain) and value == defaults[name].default)
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags, InputTags, RegressorTags, Tags, TargetTags

        classifier = self.kind == "classifier"
        return Tags(
            estimator_type=self.kind,
            target_tags=TargetTags(required=True, multi_output=not classifier),
            classifier_tags=ClassifierTags(poor_score=True) if classifier else None,
            regressor_tags=None if classifier else RegressorTags(poor_score=True),
            input_tags=InputTags(two_d_array=True, three_d_array=True),
        )

    # --- fit -----------------------------------------------------------------------------------

    def check_params(self, owner: str) -> None:
        """ValueError naming the first hyperparameter out of range (those of the optimizer are
        checked by `gru.training.TrainConfig`)."""
        for name in ("hidden_size", "num_layers", "epochs", "batch_size", "patience"):
            _check_int(owner, name, getattr(self, name))
        _check_int(owner, "threads", self.threads, optional=True)
        for name in ("dropout", "validation_split"):
            _check_fraction(owner, name, getattr(self, name))
        if self.pooling not in POOLINGS:
            raise ValueError(f"{owner}: pooling must be one of {POOLINGS}, got {self.pooling!r}")

    def fit(
        self, X, y, *, epochs: int | None = None, batch_size: int | None = None,
        validation_split: float | None = None, verbose: int | None = None,
    ) -> _SequenceEstimator:  # fmt: skip
        """Train on X and y (see the module's docstring for their shapes); ``epochs``,
        ``batch_size``, ``validation_split`` and ``verbose`` override the hyperparameters for
        this call only. Returns the estimator. Raises `gru.training.TrainingDiverged` (a
        ValueError) if the loss or the weights turn NaN or infinite."""
        owner = f"{type(self).__name__}.fit"
        call = {"epochs": epochs, "batch_size": batch_size, "validation_split": validation_split}
        call = {
            **{k: getattr(self, k) for k in call},
            **{k: v for k, v in call.items() if v is not None},
        }
        verbose = self.verbose if verbose is None else verbose
        self.check_params(owner)
        _check_int(owner, "epochs", call["epochs"])
        _check_int(owner, "batch_size", call["batch_size"])
        _check_fraction(owner, "validation_split", call["validation_split"])
        inputs, target, fitted = self.prepare(X, y, owner)
        seed = _seed(self.random_state, owner)
        config = self.train_config(seed, int(call["epochs"]), int(call["batch_size"]))
        train, valid = _split(inputs, target, call["validation_split"], seed, owner)
        if self.early_stopping:
            config.monitor = "val_loss" if valid else "train_loss"
            config.mode, config.patience, config.restore_best = "min", int(self.patience), True
        try:
            config.check()
        except ValueError as error:
            raise ValueError(f"{owner}: {error}") from None
        with _threads(self.threads):
            torch.manual_seed(seed)
            model = self.build(fitted)
            evaluate = (lambda m: self.validate(m, valid)) if valid else None
            result = training.fit(
                model, self.loss, train, config, evaluate=evaluate, quiet=not verbose,
                sort_key=train[1] if len(train) == 3 else None, device=self.device,
            )  # fmt: skip
        return self.adopt(model, fitted, result.history)

    def prepare(self, X, y, owner: str) -> tuple[tuple, Tensor, dict]:
        """(inputs, target, fitted): X and y as the model reads them, and what fit learns of
        the data; `fit` and `gru.tasks.classify` train through this, `build` and `adopt`."""
        X, lengths = read_sequences(X, owner)
        if y is None:
            raise ValueError(f"{owner} requires y to be passed, but the target y is None")
        target, fitted = self.encode(y, len(lengths), owner)
        mean, scale = standardizer(X) if self.standardize else (0.0, 1.0)
        fitted.update(x_mean_=mean, x_scale_=scale, n_features_in_=_features(X))
        return as_inputs(X, lengths, np.asarray(mean), np.asarray(scale)), target, fitted

    def train_config(self, seed: int, epochs: int, batch_size: int) -> training.TrainConfig:
        """The `gru.training.TrainConfig` of these hyperparameters (unchecked)."""
        names = ("lr", "optimizer", "weight_decay", "clip_grad_norm", "schedule", "warmup")
        same = {name: getattr(self, name) for name in names}
        return training.TrainConfig(epochs=epochs, batch_size=batch_size, seed=seed, **same)

    def adopt(self, model: SequenceModel, fitted: dict, history: list[dict]):
        """Take ``model``, trained on data that ``fitted`` describes, as the fitted model."""
        for name, value in fitted.items():
            setattr(self, name, value)
        self.model_ = model.eval()
        self.history_, self.n_iter_ = history, len(history)
        return self

    def build(self, fitted: dict) -> SequenceModel:
        """The untrained model of these hyperparameters for the data ``fitted`` describes."""
        return SequenceModel(
            int(fitted["n_features_in_"]), int(self.hidden_size), self.output_size(fitted),
            num_layers=int(self.num_layers), bidirectional=bool(self.bidirectional),
            reset_after=bool(self.reset_after), pooling=self.pooling, dropout=float(self.dropout),
            jitter=float(self.jitter), scaling=float(self.scaling), backend=self.backend,
        )  # fmt: skip

    def validate(self, model: SequenceModel, valid: tuple) -> dict[str, float]:
        """val_loss and val_score of ``model`` on the held-out (inputs..., target)."""
        *inputs, target = valid
        output = self.forward(model, inputs)
        return {
            "val_loss": float(self.loss(output, target)),
            "val_score": self.metric(output, target),
        }

    # --- prediction ----------------------------------------------------------------------------

    def forward(self, model: SequenceModel, inputs: tuple) -> Tensor:
        """The model's outputs (N, k) for ``inputs``, in batches of similar lengths."""
        order = torch.argsort(inputs[1]) if len(inputs) == 2 else None
        with _threads(self.threads):
            return batched_predict(model, *inputs, batch_size=256, order=order)

    def outputs(self, X, owner: str) -> Tensor:
        """The fitted model's outputs (N, k) for X, checked to have the fitted features."""
        if not hasattr(self, "model_"):
            raise _not_fitted(owner)
        X, lengths = read_sequences(X, owner)
        if _features(X) != self.n_features_in_:
            raise ValueError(
                f"{owner}: X has {_features(X)} features per step, but this estimator was "
                f"fitted with n_features_in_={self.n_features_in_} features"
            )
        return self.forward(self.model_, as_inputs(X, lengths, self.x_mean_, self.x_scale_))

    # --- save and load -------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted estimator as a run folder ``path`` (which must not exist yet, or be
        empty): config.json (the hyperparameters and what fit learned of the data),
        model.safetensors and metrics.json (the history). Returns the folder."""
        owner = f"{type(self).__name__}.save"
        if not hasattr(self, "model_"):
            raise _not_fitted(owner)
        path = Path(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise ValueError(f"{owner}: path {str(path)!r} already exists and is not empty")
        params = {k: to_json(v) for k, v in self.get_params().items()}  # NumPy scalars too
        if not isinstance(params["random_state"], int | type(None)):
            params["random_state"] = None  # a generator object: its draw is in the weights
        fitted = {k: to_json(getattr(self, k)) for k in (*_FITTED, *self.fitted_names)}
        config = {"task": type(self).__name__, "params": params, "fitted": fitted}
        path.mkdir(parents=True, exist_ok=True)
        checkpoint.save_config(path, config)
        config = checkpoint.load_config(path)
        state = {k: v.cpu() for k, v in self.model_.state_dict().items()}
        checkpoint.save_model(path, state, config)
        checkpoint.write_json(path / checkpoint.METRICS_FILE, {"history": self.history_})
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str = "cpu"):
        """The estimator `save` wrote to ``path``, its weights checked against their checksums."""
        config = checkpoint.load_config(path)
        if config["task"] != cls.__name__:
            raise ValueError(
                f"{cls.__name__}.load: {str(path)!r} holds a {config['task']}, not a "
                f"{cls.__name__}; load it with {config['task']}.load"
            )
        estimator = cls(**{**config["params"], "device": device})
        fitted = {k: from_json(v) for k, v in config["fitted"].items()}
        model = estimator.build(fitted)
        model.load_state_dict(checkpoint.load_model_state(path, config))
        for name, value in fitted.items():
            setattr(estimator, name, value)
        estimator.model_ = model.to(device).eval()
        metrics = json.loads((Path(path) / checkpoint.METRICS_FILE).read_text(encoding="utf-8"))
        estimator.history_ = metrics["history"]
        estimator.n_iter_ = len(estimator.history_)
        return estimator


def _features(X) -> int:
    return int(X.shape[-1] if isinstance(X, np.ndarray) else X[0].shape[-1])


def _split(inputs: tuple, target: Tensor, fraction: float, seed: int, owner: str):
    """(train, valid) tuples of (inputs..., target): a random ``fraction`` of the sequences,
    drawn from ``seed``, held out (valid is None when fraction is 0)."""
    n = len(target)
    held = math.floor(n * fraction)
    if fraction and not 0 < held < n:
        raise ValueError(
            f"{owner}: validation_split={fraction} of {n} sequences holds out {held}; it must "
            "leave at least one for validation and one for training"
        )
    if not held:
        return (*inputs, target), None
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    parts = []
    for index in (order[held:], order[:held]):
        part = [x[index] if isinstance(x, Tensor) else x.subset(index) for x in inputs]
        parts.append((*part, target[index]))
    return parts[0], parts[1]


class GRURegressor(_SequenceEstimator):
    """A GRU that reads each sequence and predicts one value or k values from it (see
    `gru.estimators` for X, y and every hyperparameter); `score` is R², averaged over the
    outputs. The loss is the mean squared error."""

    kind = "regressor"
    fitted_names = ("n_outputs_", "y_ndim_", "y_mean_", "y_scale_")

    def encode(self, y, n: int, owner: str) -> tuple[Tensor, dict]:
        y = real_numbers(y, "y", owner)
        check_rows(y, n, owner)
        if y.ndim > 2 or (y.ndim == 2 and y.shape[1] == 0):
            raise ValueError(f"{owner}: y must be (N,) or (N, k) with k ≥ 1, got shape {y.shape}")
        values = y.reshape(n, -1)  # (N, k)
        mean, scale = standardizer(values) if self.standardize else (0.0, 1.0)
        mean, scale = np.zeros(values.shape[1]) + mean, np.zeros(values.shape[1]) + scale
        fitted = {
            "n_outputs_": values.shape[1],
            "y_ndim_": y.ndim,
            "y_mean_": mean,
            "y_scale_": scale,
        }
        return torch.from_numpy(((values - mean) / scale).astype(np.float32)), fitted

    def output_size(self, fitted: dict) -> int:
        return int(fitted["n_outputs_"])

    loss = staticmethod(F.mse_loss)

    def metric(self, output: Tensor, target: Tensor) -> float:
        return _r2(output.double().numpy(), target.double().numpy())

    def predict(self, X) -> np.ndarray:
        """The predicted values: (N,) float64 if y was (N,), else (N, k)."""
        out = (
            self.outputs(X, "GRURegressor.predict").double().numpy() * self.y_scale_ + self.y_mean_
        )
        return out[:, 0] if self.y_ndim_ == 1 else out

    def score(self, X, y) -> float:
        """R² of `predict` on X against y (1 is perfect, 0 predicts the mean), averaged over
        the k outputs as scikit-learn's ``r2_score`` does."""
        y = real_numbers(y, "y", "GRURegressor.score")
        prediction = self.predict(X)
        check_rows(y, len(prediction), "GRURegressor.score")
        return _r2(prediction.reshape(len(y), -1), y.reshape(len(y), -1))


def _r2(prediction: np.ndarray, y: np.ndarray) -> float:
    """R² per output column, averaged; a constant column scores 1 if predicted exactly, else 0."""
    residual = ((y - prediction) ** 2).sum(axis=0)
    total = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    exact = np.where(residual == 0, 1.0, 0.0)
    r2 = np.where(total > 0, 1 - residual / np.where(total > 0, total, 1), exact)
    return float(r2.mean())


class GRUClassifier(_SequenceEstimator):
    """A GRU that reads each sequence and predicts its label, one of ``classes_`` (any labels:
    ints, strings; see `gru.estimators` for X, y and every hyperparameter). The loss is the
    cross entropy of C logits; `predict_proba` gives their softmax and `score` the accuracy.
    For sequences of different lengths, ``bidirectional=True`` with ``pooling="mean_max"`` is
    often a stronger design than the last state alone."""

    kind = "classifier"
    fitted_names = ("classes_",)

    def encode(self, y, n: int, owner: str) -> tuple[Tensor, dict]:
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            warnings.warn(_column_warning(), stacklevel=3)
            y = y[:, 0]
        check_rows(y, n, owner)
        if y.ndim != 1:
            raise ValueError(f"{owner}: y must be (N,) labels, got shape {y.shape}")
        if y.dtype.kind in "fc" and (real_numbers(y, "y", owner) % 1).any():
            raise ValueError(
                f"{owner}: y holds continuous values ({y[(y % 1) != 0].tolist()[0]!r} is not a "
                "label); a classifier needs labels (ints, strings): for values use GRURegressor"
            )
        try:
            classes, codes = np.unique(y, return_inverse=True)
        except TypeError:
            raise TypeError(
                f"{owner}: y must hold labels of one kind (all numbers or all strings), got "
                f"{sorted({type(v).__name__ for v in y.tolist()})}"
            ) from None
        if len(classes) < 2:
            raise ValueError(
                f"{owner}: y holds one class only ({classes.tolist()[0]!r}); a classifier needs at "
                "least 2 classes"
            )
        return torch.from_numpy(codes.reshape(-1).astype(np.int64)), {"classes_": classes}

    def output_size(self, fitted: dict) -> int:
        return len(fitted["classes_"])

    loss = staticmethod(F.cross_entropy)

    def metric(self, output: Tensor, target: Tensor) -> float:
        return float((output.argmax(dim=1) == target).double().mean())

    def predict_proba(self, X) -> np.ndarray:
        """P(class) (N, C) float64, columns in the order of ``classes_``; rows sum to 1."""
        logits = self.outputs(X, "GRUClassifier.predict_proba").double()
        return torch.softmax(logits, dim=1).numpy()

    def predict(self, X) -> np.ndarray:
        """The most probable label of each sequence (N,), from ``classes_``."""
        logits = self.outputs(X, "GRUClassifier.predict")
        return self.classes_[logits.argmax(dim=1).numpy()]

    def score(self, X, y) -> float:
        """The accuracy of `predict` on X against the labels y."""
        prediction, y = self.predict(X), np.asarray(y).reshape(-1)
        check_rows(y, len(prediction), "GRUClassifier.score")
        return float(np.mean(prediction == y))


def _column_warning() -> Warning:
    message = "A column-vector y was passed when a 1d array was expected; y is read as (N,) labels"
    try:
        from sklearn.exceptions import DataConversionWarning
    except ImportError:
        return UserWarning(message)
    return DataConversionWarning(message)
