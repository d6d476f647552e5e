"""Your own arrays as sequences: the X that `gru.GRURegressor` and `gru.GRUClassifier` take,
checked and made into what `gru.training.fit` and `gru.models.batched_predict` index.

X is an (N, T, F) array, an (N, T) array (one feature per step), or a list of N arrays (T_i, F)
or (T_i,) of different lengths. Sequences of equal length become one (N, T, F) tensor; of
different lengths, `Sequences`, which pads a batch only to its longest sequence and keeps each
length. Every check raises an error naming the argument ("X", "X[3]", "y"), what was expected
and what came.

Shapes: N sequences, T time steps, F features per step, B batch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

__all__ = [
    "Sequences",
    "as_inputs",
    "check_rows",
    "read_sequences",
    "real_numbers",
    "standardizer",
]


class Sequences:
    """N sequences of F features and different lengths, indexed as `gru.training.fit` and
    `gru.models.batched_predict` index tensors: ``sequences[index]`` is the batch (B, T_b, F)
    padded with zeros to its longest sequence, T_b. ``lengths`` (N,) int64."""

    def __init__(self, items: list[Tensor]) -> None:
        self.items = items
        self.lengths = torch.tensor([len(x) for x in items], dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: Tensor) -> Tensor:
        return pad_sequence([self.items[i] for i in index.tolist()], batch_first=True)

    def subset(self, index: Tensor) -> Sequences:
        """The sequences ``index`` (B,), in that order."""
        return Sequences([self.items[i] for i in index.tolist()])


def real_numbers(value, name: str, owner: str) -> np.ndarray:
    """``value`` as a float64 array of finite numbers, or a ValueError/TypeError naming
    ``name`` (NaN, infinity, complex numbers, what is not a number)."""
    array = np.asarray(value)
    if np.iscomplexobj(array):
        raise ValueError(f"{owner}: {name} must hold real numbers: Complex data not supported")
    try:
        array = np.asarray(array, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{owner}: {name} must hold numbers, got dtype {array.dtype}: {error}"
        ) from None
    if array.size and not np.isfinite(array).all():
        bad = np.argwhere(~np.isfinite(array))[0].tolist()
        raise ValueError(
            f"{owner}: {name} holds NaN or infinite values (the first at index {bad}); fill or "
            "drop them first"
        )
    return array


def read_sequences(X, owner: str) -> tuple[np.ndarray | list[np.ndarray], np.ndarray]:
    """X as (N, T, F) float64, or a list of (T_i, F) float64 when the lengths differ; and
    the lengths (N,). ValueError naming X for any other shape."""
    if type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(
            f"{owner}: X is a sparse {type(X).__name__}; sparse input is not supported (a "
            "sequence's steps are dense): pass X.toarray()"
        )
    if isinstance(X, list | tuple):
        if not X:
            raise ValueError(f"{owner}: X holds no sequences (an empty list)")
        items = [real_numbers(x, f"X[{i}]", owner) for i, x in enumerate(X)]
        items = [x[:, None] if x.ndim == 1 else x for x in items]
        for i, x in enumerate(items):
            if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] != items[0].shape[1]:
                raise ValueError(
                    f"{owner}: X[{i}] must be a sequence (T_i, F) with T_i ≥ 1 and the F of "
                    f"X[0] (F={items[0].shape[-1]}), got shape {x.shape}"
                )
        lengths = np.array([len(x) for x in items])
        if (lengths == lengths[0]).all():
            return np.stack(items), lengths
        return items, lengths
    array = real_numbers(X, "X", owner)
    if array.ndim not in (2, 3):
        hint = ""
        if array.ndim == 1:
            hint = "; Reshape your data: X.reshape(1, -1) is one sequence of one feature"
        raise ValueError(
            f"{owner}: X must be an (N, T, F) array, an (N, T) array (one feature per step) "
            f"or a list of (T_i, F) arrays, got an array of shape {array.shape}{hint}"
        )
    array = array[:, :, None] if array.ndim == 2 else array
    if 0 in array.shape:
        raise ValueError(
            f"{owner}: X must hold at least one sequence of one step and one feature, got "
            f"shape {array.shape} (N, T, F)"
        )
    return array, np.full(len(array), array.shape[1])


def standardizer(X) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's (last axis's) mean and standard deviation (1 where it is constant) over
    every step of X: an array, or a list of (T_i, F) arrays."""
    steps = X.reshape(-1, X.shape[-1]) if isinstance(X, np.ndarray) else np.concatenate(X)
    mean, scale = steps.mean(axis=0), steps.std(axis=0)
    return mean, np.where(scale > 0, scale, 1.0)


def as_inputs(X, lengths: np.ndarray, mean, scale) -> tuple:
    """The model's inputs: ((N, T, F) float32,) or (Sequences, lengths (N,))."""
    if isinstance(X, np.ndarray):
        return (torch.from_numpy(((X - mean) / scale).astype(np.float32)),)
    items = [torch.from_numpy(((x - mean) / scale).astype(np.float32)) for x in X]
    return Sequences(items), torch.from_numpy(lengths)


def check_rows(y: np.ndarray, n: int, owner: str) -> None:
    """ValueError unless the targets ``y`` have one row for each of the ``n`` sequences."""
    if y.ndim == 0 or len(y) != n:
        got = "a scalar" if y.ndim == 0 else f"{len(y)} rows (shape {y.shape})"
        raise ValueError(f"{owner}: y must have one row per sequence of X ({n}), got {got}")
