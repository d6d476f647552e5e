"""Record what the gates of a GRU do: r_t, z_t, the candidate n_t and h_t, per step and unit.

`record_gates` reads a trained GRU stack (`gru.GRU` or `torch.nn.GRU`) and runs it again on one
input through the oracle's step, `gru.reference.gru_step`, in float64, from the module's own
weights: layer by layer (the input of layer k is the output of layer k − 1) and, for a
bidirectional layer, both directions. It keeps every intermediate value the equations name::

    r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)             reset gate
    z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)             update gate
    n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))  candidate (reset after; reset
                                                                before: W_hn (r_t ⊙ h_{t-1}))
    h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}

so 1 − z_t is the share of each unit's state that step t replaced with the candidate, and a
small r_t hides the past from the candidate. The module is only read: no hook, no change of
mode, no gradient. Dropout between layers is not applied (the recording is what the model
computes in evaluation).

Shapes: T time steps, B batch, I input features, H hidden units, L layers, D directions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from gru import reference

__all__ = ["GateRecording", "LayerGates", "record_gates"]


@dataclass(frozen=True)
class LayerGates:
    """The values of one layer and direction at every step, each (T, B, H) float64.

    Arrays are in the input's time order for both directions: step t of a reverse direction
    is the step at which it read x_t (its own t-th step from the end), as in the module's
    output. ``h`` is the state after step t; past a sequence's length it keeps its last value,
    while r, z and n hold what the step would have computed (as `gru.reference.gru_forward`'s
    cache).
    """

    layer: int
    direction: int  # 0 forward, 1 reverse
    r: np.ndarray
    z: np.ndarray
    n: np.ndarray
    h: np.ndarray


@dataclass(frozen=True)
class GateRecording:
    """Every gate of a GRU stack over one input: ``layers[k][d]`` for layer k, direction d.

    ``output`` (T, B, D·H) is the top layer's output (zero past each length) and ``h_n``
    (L·D, B, H) the final states, both as the module returns them (time-major). An unbatched
    input (T, I) gives arrays without the B axis.
    """

    layers: list[list[LayerGates]]
    output: np.ndarray
    h_n: np.ndarray
    reset_after: bool

    @property
    def top(self) -> list[LayerGates]:
        """The directions of the last layer (the one the model's head reads)."""
        return self.layers[-1]

    def unit_mean(self, gate: str, layer: int = -1) -> np.ndarray:
        """The mean of ``gate`` ("r", "z", "n" or "h") over the units and directions of
        ``layer`` at each step: (T, B), or (T,) unbatched."""
        if gate not in ("r", "z", "n", "h"):
            raise ValueError(f"GateRecording.unit_mean: gate must be r, z, n or h, got {gate!r}")
        values = [getattr(g, gate) for g in self.layers[layer]]  # D arrays (T, [B,] H)
        return np.mean(np.stack(values), axis=(0, -1))


def _module_weights(rnn: nn.Module, index: int) -> list[np.ndarray | None]:
    """(w_ih, w_hh, b_ih, b_hh) of layer/direction ``index`` as float64 arrays."""
    weights = [w.detach().cpu().double().numpy() for w in rnn.all_weights[index]]
    return weights if len(weights) == 4 else [*weights, None, None]


def _reverse(a: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Each sequence of a (T, B, …) array reversed within its length; padding stays put."""
    out = a.copy()
    for b, length in enumerate(lengths):
        out[:length, b] = a[:length, b][::-1]
    return out


def _run_direction(x, h0, weights, active, reset_after: bool):
    """One layer and direction over x (T, B, I): r, z, n and h (T, B, H) each."""
    T, B, _ = x.shape
    H = weights[1].shape[1]
    r, z, n, h = (np.zeros((T, B, H)) for _ in range(4))
    h_prev = h0
    for t in range(T):
        h_new, (r[t], z[t], n[t], _) = reference.gru_step(
            x[t], h_prev, *weights, reset_after=reset_after
        )
        h_prev = active[t] * h_new + (1.0 - active[t]) * h_prev  # a finished sequence keeps h
        h[t] = h_prev
    return r, z, n, h


def _as_array(value, name: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"record_gates: {name} must be a tensor or array of numbers, got {type(value).__name__}"
        ) from None


def record_gates(rnn: nn.Module, x, h0=None, *, lengths=None) -> GateRecording:
    """Run the GRU stack ``rnn`` over ``x`` and record r, z, n and h at every step and unit.

    ``rnn`` is a `gru.GRU` or a `torch.nn.GRU`, either convention, any number of layers and
    directions. ``x`` is (T, I) for one sequence, or batched as the module takes it: (B, T, I)
    when ``rnn.batch_first``, else (T, B, I); a tensor or an array. ``h0`` (L·D, B, H), or
    (L·D, H) unbatched, defaults to zeros. ``lengths`` (B,) stops each sequence at its length,
    as the module's ``lengths=`` does (padding after the sequence).

    Everything is computed in float64 by `gru.reference.gru_step`, so a float32 model's own
    output agrees with the recording to float32 precision. The returned arrays are time-major
    (see `GateRecording`).
    """
    _check_module(rnn)
    x, unbatched = _time_major(rnn, _as_array(x, "x"))  # (T, B, I)
    T, B, _ = x.shape
    h0 = _initial_state(rnn, h0, B, unbatched)  # (L·D, B, H)
    lengths = _lengths(lengths, B, T)  # (B,)
    reset_after = bool(getattr(rnn, "reset_after", True))  # torch.nn.GRU: reset after
    layers, output, h_n = _run_stack(rnn, x, h0, lengths, reset_after)
    if unbatched:
        layers = [[_first_sequence(g) for g in directions] for directions in layers]
        output, h_n = output[:, 0], h_n[:, 0]
    return GateRecording(layers, output, h_n, reset_after)


def _check_module(rnn) -> None:
    """Refuse anything but a plain GRU stack whose equations the recording computes."""
    if not hasattr(rnn, "all_weights") or not isinstance(rnn, nn.Module):
        raise TypeError(
            f"record_gates: rnn must be a gru.GRU or torch.nn.GRU, got {type(rnn).__name__}"
        )
    if isinstance(rnn, nn.RNNBase) and rnn.mode != "GRU":
        raise TypeError(f"record_gates: rnn must be a GRU, got a torch.nn.{rnn.mode}")
    if getattr(rnn, "has_variants", False):
        raise ValueError(
            "record_gates: this GRU uses a variant (layer_norm, zoneout or recurrent_dropout) "
            "whose equations the recording does not compute; record a plain GRU"
        )


def _time_major(rnn: nn.Module, x: np.ndarray) -> tuple[np.ndarray, bool]:
    """``x`` checked and laid out as (T, B, I), and whether it came unbatched (T, I)."""
    if (
        x.ndim not in (2, 3)
        or x.shape[-1] != rnn.input_size
        or x.shape[-2 if x.ndim == 2 else 1] == 0
    ):
        raise ValueError(
            f"record_gates: x must be (T, I), (T, B, I) or (B, T, I) with batch_first, "
            f"I = input_size = {rnn.input_size} and T ≥ 1, got shape {x.shape}"
        )
    if x.ndim == 2:
        return x[:, None], True  # (T, 1, I)
    if rnn.batch_first:
        return x.transpose(1, 0, 2), False  # (T, B, I)
    return x, False


def _initial_state(rnn: nn.Module, h0, B: int, unbatched: bool) -> np.ndarray:
    """``h0`` checked as (L·D, B, H), zeros when None."""
    D = 2 if rnn.bidirectional else 1
    shape = (rnn.num_layers * D, B, rnn.hidden_size)  # (L·D, B, H)
    if h0 is None:
        return np.zeros(shape)
    h0 = _as_array(h0, "h0")
    if unbatched:
        h0 = h0[:, None]
    if h0.shape != shape:
        raise ValueError(
            f"record_gates: h0 must have shape {(shape[0], shape[2]) if unbatched else shape}, "
            f"got {h0.shape[:1] + h0.shape[2:] if unbatched else h0.shape}"
        )
    return h0


def _lengths(lengths, B: int, T: int) -> np.ndarray:
    """``lengths`` checked as B integers in [1, T]; every sequence whole when None."""
    if lengths is None:
        return np.full(B, T)
    lengths = np.asarray(
        lengths.cpu().numpy() if isinstance(lengths, torch.Tensor) else lengths
    ).reshape(-1)
    if lengths.shape != (B,) or not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(f"record_gates: lengths must be {B} integers, got {lengths!r}")
    if lengths.min() < 1 or lengths.max() > T:
        raise ValueError(
            f"record_gates: every length must be in [1, T = {T}], got {lengths.tolist()}"
        )
    return lengths


def _run_stack(rnn: nn.Module, x, h0, lengths, reset_after: bool):
    """Every layer and direction over x (T, B, I): (layers, output (T, B, D·H), h_n (L·D, B, H)).

    The input of layer k is the output of layer k − 1; a reverse direction reads each
    sequence backwards within its length.
    """
    T, B, _ = x.shape
    D = 2 if rnn.bidirectional else 1
    active = (np.arange(T)[:, None] < lengths[None, :]).astype(np.float64)[..., None]  # (T, B, 1)
    layers, h_n = [], []
    layer_input = x  # (T, B, I), then (T, B, D·H)
    for layer in range(rnn.num_layers):
        directions = []
        for d in range(D):
            i = layer * D + d
            weights = _module_weights(rnn, i)
            inp = _reverse(layer_input, lengths) if d == 1 else layer_input
            values = _run_direction(inp, h0[i], weights, active, reset_after)
            if d == 1:
                values = tuple(_reverse(v, lengths) for v in values)
            r, z, n, h = values
            directions.append(LayerGates(layer, d, r, z, n, h))
            # The last state: at each length (forward), at step 0 (reverse, in input order).
            h_n.append(h[lengths - 1, np.arange(B)] if d == 0 else h[0])  # (B, H)
        layers.append(directions)
        layer_input = np.concatenate([g.h for g in directions], axis=-1) * active  # (T, B, D·H)
    return layers, layer_input, np.stack(h_n)


def _first_sequence(g: LayerGates) -> LayerGates:
    """``g`` without its batch axis: (T, 1, H) arrays become (T, H)."""
    return LayerGates(g.layer, g.direction, g.r[:, 0], g.z[:, 0], g.n[:, 0], g.h[:, 0])
