"""The baselines every task's model is measured against: what a simple rule scores on the same
data, so that a result says how much the GRU adds.

    persistence, seasonal_naive, LinearBaseline   forecasting (`gru.tasks.forecast`), all
                                                  three at once: forecast_baselines
    rolling_zscore, rolling_zscore_part           anomaly detection (`gru.tasks.anomaly`)
    majority_class                                binary classification (`gru.tasks.sentiment`)
    most_frequent, nearest_neighbour, dtw         sequence classification (`gru.tasks.classify`)
    pooled_frames                                 words (`gru.tasks.speech`): logistic
                                                  regression on mean and std of the frames
    ngram_loss                                    language modelling (`gru.tasks.textgen`)
    training_mean                                 regression (`gru.tasks.adding`)

Shapes: N windows or cases, W lookback, F horizon, C channels read, K channels forecast,
T points, M characters scored, V vocabulary size.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch
from torch import Tensor

from gru.data.timeseries import Windows

__all__ = [
    "LinearBaseline",
    "dtw",
    "forecast_baselines",
    "majority_class",
    "most_frequent",
    "nearest_neighbour",
    "ngram_loss",
    "persistence",
    "pooled_frames",
    "rolling_zscore",
    "rolling_zscore_part",
    "seasonal_naive",
    "training_mean",
]


# --- forecasting ---------------------------------------------------------------------------------


def persistence(x: Tensor, horizon: int) -> Tensor:
    """The last value of each channel, repeated: x (N, W, K) -> (N, F, K)."""
    return x[:, -1:, :].expand(-1, horizon, -1)


def seasonal_naive(x: Tensor, horizon: int, season: int) -> Tensor:
    """The last ``season`` steps of the window, repeated: x (N, W, K) -> (N, F, K);
    step h of the forecast is x[W − season + (h mod season)]."""
    W = x.shape[1]
    if not 1 <= season <= W:
        raise ValueError(f"seasonal_naive: season must be between 1 and W={W}, got {season}")
    steps = W - season + torch.arange(horizon) % season  # (F,)
    return x[:, steps, :]


class LinearBaseline:
    """Least squares from the lookback window to the horizon, with a bias.

    ``shared=True`` (features S and M): one map (W + 1) -> F for every channel, each channel's
    window predicting its own future (channel independence, as DLinear's "Linear" without
    individual heads). ``shared=False`` (MS): all C channels' windows (W·C + 1 values) predict
    the K forecast channels. Solved by the normal equations in float64 with a tiny ridge
    (1e-6 of the mean diagonal) so that constant inputs cannot make them singular.
    """

    def __init__(self, shared: bool) -> None:
        self.shared = shared
        self.weight: Tensor | None = None  # (P + 1, F) or (P + 1, F·K)

    def _design(self, x: Tensor) -> Tensor:
        if self.shared:
            rows = x.transpose(1, 2).reshape(-1, x.shape[1])  # (N·C, W)
        else:
            rows = x.reshape(len(x), -1)  # (N, W·C)
        rows = rows.double()
        return torch.cat([rows, torch.ones(len(rows), 1, dtype=rows.dtype)], dim=1)

    def _target(self, y: Tensor) -> Tensor:
        if self.shared:
            return y.transpose(1, 2).reshape(-1, y.shape[1]).double()  # (N·K, F)
        return y.reshape(len(y), -1).double()  # (N, F·K)

    def fit(self, x: Windows, y: Windows, *, batch: int = 2048) -> LinearBaseline:
        """Fit on the training windows ``x`` (N, W, C) -> ``y`` (N, F, K)."""
        gram, cross = None, None
        for index in torch.arange(len(x)).split(batch):
            a, b = self._design(x[index]), self._target(y[index])
            gram = a.T @ a if gram is None else gram + a.T @ a  # (P + 1, P + 1)
            cross = a.T @ b if cross is None else cross + a.T @ b  # (P + 1, F·)
        ridge = 1e-6 * gram.diagonal().mean()
        gram = gram + ridge * torch.eye(len(gram), dtype=gram.dtype)
        self.weight = torch.linalg.solve(gram, cross)
        return self

    def __call__(self, x: Tensor, horizon: int, channels: int) -> Tensor:
        """The forecast (N, F, K) of windows x (N, W, C)."""
        out = (self._design(x) @ self.weight).float()
        if self.shared:
            return out.view(len(x), channels, horizon).transpose(1, 2)
        return out.view(len(x), horizon, channels)


def forecast_baselines(
    train: tuple[Windows, Windows],
    x: Tensor,
    own: list[int],
    horizon: int,
    season: int | None,
    *,
    shared: bool,
) -> dict[str, Tensor | None]:
    """The forecasts (N, F, K) of every forecasting baseline for the windows x (N, W, C):
    persistence and seasonal naive (None without a ``season``) from each forecast channel's
    own past (``own``: their indices among the C), and the `LinearBaseline` (``shared`` map)
    fitted on the ``train`` windows (x (N, W, C), y (N, F, K))."""
    past = x[:, :, own]  # (N, W, K): the forecast channels
    linear = LinearBaseline(shared=shared).fit(*train)
    return {
        "persistence": persistence(past, horizon),
        "seasonal_naive": None if season is None else seasonal_naive(past, horizon, season),
        "linear": linear(x, horizon, len(own)),
    }


# --- anomaly detection ---------------------------------------------------------------------------


def rolling_zscore(x: np.ndarray, window: int) -> np.ndarray:
    """z_t = (x_t − mean) / std of the ``window`` values before t (T,); NaN for t < window.

    A std of 0 (a flat stretch) is replaced by the smallest positive one seen, so a change
    after a flat stretch scores high instead of infinite.
    """
    x = np.asarray(x, dtype=np.float64)
    z = np.full(len(x), np.nan)
    if len(x) <= window:
        return z
    past = np.lib.stride_tricks.sliding_window_view(x[:-1], window)  # (T − window, window)
    mean, std = past.mean(axis=1), past.std(axis=1)
    positive = std[std > 0]
    std = np.where(std > 0, std, positive.min() if len(positive) else 1.0)
    z[window:] = (x[window:] - mean) / std
    return z


def rolling_zscore_part(
    x: np.ndarray, part: tuple[int, int], window: int, values: np.ndarray | None = None
) -> np.ndarray:
    """`rolling_zscore` of the points [a, b) of ``x`` (T,) (b − a,), the ``window`` values
    before a read as their past; ``values`` (b − a,) in place of x[a:b] when given (a copy
    with anomalies planted)."""
    a, b = part
    inside = x[a:b] if values is None else values
    return rolling_zscore(np.concatenate([x[max(a - window, 0) : a], inside]), window)[-(b - a) :]


# --- classification and regression ---------------------------------------------------------------


def majority_class(train_labels: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Always the training majority, i.e. P(positive) = the share of positive ``train_labels``
    (0/1), scored on ``labels`` (N,): its accuracy and its binary cross-entropy."""
    prior = float(np.mean(train_labels))
    y = np.asarray(labels).astype(np.float64)
    p = min(max(prior, 1e-7), 1 - 1e-7)
    return {
        "accuracy": float(np.mean(y == (prior >= 0.5))),
        "loss": float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))),
    }


def training_mean(train_targets: Tensor, like: Tensor) -> Tensor:
    """The mean of the training targets, for every case of ``like``: what a model that knows
    only the targets' level predicts."""
    return torch.full_like(like, float(train_targets.mean()))


# --- language modelling --------------------------------------------------------------------------


def ngram_loss(train: Tensor, context: Tensor, target: Tensor, vocab_size: int, n: int) -> float:
    """Mean negative log-likelihood (nats per character) of the characters ``target`` (M,),
    each preceded by ``context`` (M,), under a character n-gram model of the ids ``train``
    (N,) with add-one (Laplace) smoothing over the ``vocab_size`` characters:

        n = 0  uniform   P(c) = 1 / V
        n = 1  unigram   P(c) = (count(c) + 1) / (N + V)
        n = 2  bigram    P(c | p) = (count(p c) + 1) / (count(p ·) + V)

    where count(p ·) counts the bigrams of ``train`` that start with p.
    """
    V = vocab_size
    train = np.asarray(train, dtype=np.int64)
    context = np.asarray(context, dtype=np.int64).ravel()
    target = np.asarray(target, dtype=np.int64).ravel()
    if n == 0:
        return math.log(V)
    if n == 1:
        counts = np.bincount(train, minlength=V).astype(np.float64)  # (V,)
        p = (counts[target] + 1.0) / (len(train) + V)  # (M,)
    elif n == 2:
        pairs = np.bincount(train[:-1] * V + train[1:], minlength=V * V).reshape(V, V)
        pairs = pairs.astype(np.float64)  # (V, V): count(p c)
        p = (pairs[context, target] + 1.0) / (pairs.sum(axis=1)[context] + V)  # (M,)
    else:
        raise ValueError(f"ngram_loss: n must be 0, 1 or 2, got {n!r}")
    return float(-np.mean(np.log(p)))


# --- sequence classification ---------------------------------------------------------------------


def most_frequent(train_labels: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Always the most frequent training label (the first in sorted order on a tie), scored on
    ``labels`` (N,): its accuracy, and the cross-entropy of the training labels' frequencies
    (what a model that knows only how common each class is scores; 1e-12 for a class the
    training labels lack)."""
    classes, counts = np.unique(train_labels, return_counts=True)
    labels = np.asarray(labels)
    share = dict(zip(classes.tolist(), (counts / counts.sum()).tolist(), strict=True))
    p = np.array([max(share.get(label, 0.0), 1e-12) for label in labels.tolist()])
    return {
        "accuracy": float(np.mean(labels == classes[np.argmax(counts)])),
        "loss": float(-np.mean(np.log(p))),
    }


@numba.njit(cache=True)
def dtw(a: np.ndarray, b: np.ndarray) -> float:
    """The dynamic-time-warping distance of two sequences a (T_a, C) and b (T_b, C): the least
    sum of squared Euclidean distances between aligned steps over every warping path (no
    window; all C channels warped together, the archive's "dependent" DTW)."""
    Ta, Tb = a.shape[0], b.shape[0]
    cost = np.full((Ta + 1, Tb + 1), np.inf)
    cost[0, 0] = 0.0
    for i in range(1, Ta + 1):
        for j in range(1, Tb + 1):
            d = 0.0
            for c in range(a.shape[1]):
                d += (a[i - 1, c] - b[j - 1, c]) ** 2
            cost[i, j] = d + min(cost[i - 1, j], cost[i, j - 1], cost[i - 1, j - 1])
    return cost[Ta, Tb]


def nearest_neighbour(
    train: list[np.ndarray], train_labels: np.ndarray, test: list[np.ndarray]
) -> np.ndarray:
    """The label of each ``test`` sequence's nearest ``train`` sequence by `dtw` (1-NN DTW,
    the archive's classic benchmark): (N_test,) labels. Sequences are (T_i, C) arrays of any
    lengths, as the caller scaled them."""
    train = [np.ascontiguousarray(x, dtype=np.float64) for x in train]
    found = []
    for x in test:
        x = np.ascontiguousarray(x, dtype=np.float64)
        found.append(int(np.argmin([dtw(x, t) for t in train])))
    return np.asarray(train_labels)[found]


def pooled_frames(train: list[np.ndarray], train_labels, test: list[np.ndarray], labels) -> dict:
    """A model without recurrence: multinomial logistic regression (scikit-learn) on the mean
    and standard deviation over time of each sequence's frames (T_i, F), standardized; fit on
    ``train``, scored on ``test``: {"accuracy", "loss"}."""
    from gru._extras import require

    linear_model = require("sklearn.linear_model", "sklearn", "the pooled-frames baseline")
    preprocessing = require("sklearn.preprocessing", "sklearn", "the pooled-frames baseline")

    def pooled(frames):
        return np.stack([np.concatenate([f.mean(0), f.std(0)]) for f in frames])  # (N, 2F)

    scale = preprocessing.StandardScaler().fit(pooled(train))
    model = linear_model.LogisticRegression(C=1.0, max_iter=2000)
    model.fit(scale.transform(pooled(train)), np.asarray(train_labels))
    p = model.predict_proba(scale.transform(pooled(test)))  # (N, K) over model.classes_
    labels = np.asarray(labels)
    column = {c: i for i, c in enumerate(model.classes_)}
    truth = np.array([p[i, column[y]] if y in column else 0.0 for i, y in enumerate(labels)])
    return {
        "accuracy": float(np.mean(model.classes_[p.argmax(1)] == labels)),
        "loss": float(-np.mean(np.log(np.clip(truth, 1e-7, 1.0)))),
    }
