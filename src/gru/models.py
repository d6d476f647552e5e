"""Small models built from the recurrent layers.

Every model takes its recurrent layer as a factory, ``layer(input_size, hidden_size, **options)
-> module``, whose module reads (B, T, I) batch first and returns ``(output (B, T, D·H), state)``
as `gru.GRU` does: the tasks build them on `gru.GRU` (`gru_layer`, the default), and
`gru.tasks.compare` builds the same models on torch.nn.RNN, LSTM, GRU and `gru.MinGRU`. A model
gives the factory only the options it needs (``num_layers``, ``dropout`` between layers, and
``bidirectional`` when it is), so a factory of any of those layers fits.

Shapes: B batch, T time steps, I input features, E embedding size, H hidden units,
D directions (1 or 2), L layers (stacked GRU layers); for forecasters W lookback steps,
F horizon steps, C input channels, K output channels, S segment length, N = W / S input
segments, M = F / S output segments, d the SegRNN width; for the language model V characters.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from gru.nn import GRU, Augment

__all__ = [
    "FORECASTERS",
    "POOLINGS",
    "CharLM",
    "GRUForecaster",
    "LayerFactory",
    "SegRNN",
    "SequenceModel",
    "SequenceRegressor",
    "TextClassifier",
    "batched_predict",
    "build",
    "final_state",
    "forecaster",
    "gru_layer",
    "out_of_memory",
]

FEATURES = ("last", "pool")
POOLINGS = ("last", "mean", "max", "mean_max")

# (input_size, hidden_size, **options) -> a batch-first layer returning (output, state).
LayerFactory = Callable[..., nn.Module]


def gru_layer(backend: str = "auto", **options) -> LayerFactory:
    """`gru.GRU` as a layer factory: batch first, computed by ``backend``, with ``options``
    (``reset_after``, ``layer_norm``, ...) added to those a model gives."""
    return partial(GRU, batch_first=True, backend=backend, **options)


def out_of_memory(error: BaseException) -> str | None:
    """How much memory ``error`` says an allocation asked for ("1.1 PiB"; "" when it does not
    say) if it is an out-of-memory error of Python, NumPy, torch's CPU allocator or CUDA; None
    for any other error."""
    text = str(error)
    if not isinstance(error, MemoryError | torch.OutOfMemoryError) and not (
        isinstance(error, RuntimeError)
        and ("can't allocate memory" in text or "out of memory" in text)
    ):
        return None
    exact = re.search(r"tried to allocate (\d+) bytes", text)
    if exact:
        size, unit = float(exact.group(1)), "bytes"
        for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
            if size < 1024 or unit == "EiB":
                break
            size /= 1024
        return f"{size:.3g} {unit}" if unit != "bytes" else f"{int(size)} bytes"
    stated = re.search(r"(?:[Tt]ried|[Uu]nable) to allocate ([\d.]+ ?[KMGTPE]i?B)", text)
    return stated.group(1) if stated else ""


def build(make: Callable[[], nn.Module], owner: str, sizes: str) -> nn.Module:
    """``make()``, a model; running out of memory while building it is a ValueError naming
    ``owner``, how much was asked for, and the ``sizes`` (settings) to make smaller."""
    try:
        return make()
    except (MemoryError, RuntimeError) as error:
        asked = out_of_memory(error)
        if asked is None:
            raise
        asked = f" (an allocation of {asked})" if asked else ""
        raise ValueError(
            f"{owner}: the model does not fit in memory: building it failed{asked}; try a "
            f"smaller {sizes}"
        ) from None


@torch.no_grad()
def batched_predict(
    model: nn.Module, *inputs: Tensor, batch_size: int = 512, order: Tensor | None = None
) -> Tensor:
    """``model(*inputs)`` in eval mode without gradients, ``batch_size`` rows of the inputs at
    a time, taken in ``order`` (default: as given; rows of similar length together cost less
    padding), on the model's device. Returns the outputs as float32 on the CPU, in the inputs'
    row order (empty (0,) for no rows), and leaves the model in the mode it was in."""
    if len(inputs[0]) == 0:
        return torch.empty(0)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    order = torch.arange(len(inputs[0])) if order is None else order
    out = None
    for index in order.split(batch_size):
        y = model(*(t[index].to(device) for t in inputs)).float().cpu()
        if out is None:
            out = y.new_empty(len(order), *y.shape[1:])
        out[index] = y
    model.train(was_training)
    return out


def final_state(state: Tensor | tuple[Tensor, Tensor]) -> Tensor:
    """h_n (L·D, B, H) of the state a layer returns: the state itself, or an LSTM's
    (h_n, c_n)'s first part."""
    return state[0] if isinstance(state, tuple) else state


class SequenceRegressor(nn.Module):
    """A GRU (or the ``layer`` given) reads a sequence; a linear layer maps its last state to
    ``output_size`` values.

    Input (B, T, I), output (B, output_size), or (B,) when output_size is 1.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int = 1,
        num_layers: int = 1,
        *,
        layer: LayerFactory | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        layer = layer or gru_layer(backend)
        self.rnn = layer(input_size, hidden_size, num_layers=num_layers)
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x: Tensor) -> Tensor:
        _, state = self.rnn(x)
        h_n = final_state(state)  # (L, B, H)
        y = self.head(h_n[-1])  # (B, output_size)
        return y.squeeze(-1) if y.shape[-1] == 1 else y


class SequenceModel(nn.Module):
    """x (B, T, I) -> `gru.GRU` -> pooled over time -> dropout -> Linear -> (B, output_size):
    the model of `gru.GRURegressor` and `gru.GRUClassifier`. ``pooling`` is what the head reads
    of the last layer: "last", its final state (D·H values, both directions'); "mean" or "max"
    of its outputs over time; "mean_max", both (2·D·H). With ``lengths`` (B,) in [1, T] the
    batch is cut to its longest sequence, the GRU stops at each length and the pooling reads no
    padding. ``options`` go to `gru.GRU`; ``jitter`` and ``scaling`` to `gru.nn.Augment`.
    """

    def __init__(
        self, input_size: int, hidden_size: int, output_size: int, *, pooling: str = "last",
        dropout: float = 0.0, num_layers: int = 1, jitter: float = 0, scaling: float = 0, **options,
    ) -> None:  # fmt: skip
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"SequenceModel: pooling must be one of {POOLINGS}, got {pooling!r}")
        self.pooling, self.directions = pooling, 2 if options.get("bidirectional") else 1
        layer_dropout = dropout if num_layers > 1 else 0.0
        self.rnn = GRU(input_size, hidden_size, num_layers, True, True, layer_dropout, **options)
        width = self.directions * hidden_size * (2 if pooling == "mean_max" else 1)
        self.dropout, self.augment = nn.Dropout(dropout), Augment(jitter, scaling)
        self.head = nn.Linear(width, output_size)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        if lengths is not None:
            x = x[:, : int(lengths.max())]  # (B, T, I) with T the longest length
        out, h_n = self.rnn(self.augment(x), lengths=lengths)  # (B, T, D·H), (L·D, B, H)
        B, T = out.shape[:2]
        if self.pooling == "last":
            features = h_n[-self.directions :].transpose(0, 1).reshape(B, -1)  # (B, D·H)
        else:
            steps = lengths.to(out) if lengths is not None else out.new_full((B,), T)
            valid = (torch.arange(T, device=out.device) < steps.unsqueeze(1)).unsqueeze(-1)
            mean = out.sum(dim=1) / steps.unsqueeze(1)  # (B, D·H): outputs past a length are 0
            top = out.masked_fill(~valid, float("-inf")).amax(dim=1)  # (B, D·H)
            pooled = {"mean": [mean], "max": [top], "mean_max": [mean, top]}[self.pooling]
            features = torch.cat(pooled, dim=-1)  # (B, D·H) or (B, 2·D·H)
        return self.head(self.dropout(features))  # (B, output_size)


class TextClassifier(nn.Module):
    """Token ids -> Embedding -> GRU -> features -> Linear: the logit of the positive class.

    With the defaults this is Keras's ``Embedding(num_words, E) -> GRU(H) -> Dense(1)``; the
    Dense layer's sigmoid is left to the loss (``binary_cross_entropy_with_logits``, the same
    model computed stably) and to `probabilities`.

    ``features`` is what the head sees: "last", the final state of the last layer (both
    directions' concatenated), D·H values; or "pool", that state beside the maximum and the
    mean over time of the last layer's outputs, 3·D·H values. ``embedding_dropout`` drops
    whole embedding channels of a sequence (spatial dropout); ``dropout`` acts on the
    features, and between layers when L > 1. ``torch_layer=True`` builds the same model on
    `torch.nn.GRU` (only ``reset_after=True``), with the same parameter names; ``layer`` on any
    layer factory (then ``reset_after`` and ``backend`` are the factory's business).

    Input ``x`` (B, T) int64 ids, 0 = padding, and optionally ``lengths`` (B,) ≥ 1: with
    lengths the ids come first and padding after ('post'), the batch is cut to its longest
    sequence and the GRU stops at each length, as packing does; without, every step is read
    (Keras with 'pre' padding). Output (B,) logits.
    """

    def __init__(
        self,
        num_words: int,
        embedding_dim: int,
        hidden_size: int,
        *,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        embedding_dropout: float = 0.0,
        features: str = "last",
        reset_after: bool = True,
        torch_layer: bool = False,
        layer: LayerFactory | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        if features not in FEATURES:
            raise ValueError(
                f"TextClassifier: features must be one of {FEATURES}, got {features!r}"
            )
        if torch_layer and not reset_after:
            raise ValueError(
                "TextClassifier: torch_layer=True computes only reset_after=True (torch.nn.GRU's "
                "convention), got reset_after=False"
            )
        if layer is None:
            torch_gru = partial(nn.GRU, batch_first=True)
            layer = torch_gru if torch_layer else gru_layer(backend, reset_after=reset_after)
        self.features = features
        self.torch_layer = torch_layer
        self.embedding = nn.Embedding(num_words, embedding_dim)
        self.embedding_dropout = nn.Dropout1d(embedding_dropout)
        options = {"num_layers": num_layers, "dropout": dropout if num_layers > 1 else 0.0}
        if bidirectional:
            options["bidirectional"] = True
        self.rnn = layer(embedding_dim, hidden_size, **options)
        self.directions = 2 if bidirectional else 1
        width = self.directions * hidden_size * (3 if features == "pool" else 1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, 1)

    @torch.no_grad()
    def keras_init_(self) -> TextClassifier:
        """Initialize as Keras does: embedding U(−0.05, 0.05); GRU input weights Glorot
        uniform, recurrent weights orthogonal, biases zero; Dense Glorot uniform, bias zero."""
        nn.init.uniform_(self.embedding.weight, -0.05, 0.05)
        for name, weight in self.rnn.named_parameters():
            if name.startswith("weight_ih"):
                nn.init.xavier_uniform_(weight)  # (3H, I): limit √(6 / (I + 3H)), as Keras's
            elif name.startswith("weight_hh"):
                nn.init.orthogonal_(weight)  # (3H, H): orthonormal columns = Keras's rows
            else:
                nn.init.zeros_(weight)
        nn.init.xavier_uniform_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        return self

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        B = x.shape[0]
        if lengths is not None:
            x = x[:, : int(lengths.max())]  # (B, T) with T the longest length
        e = self.embedding(x)  # (B, T, E)
        e = self.embedding_dropout(e.transpose(1, 2)).transpose(1, 2)  # drops whole channels
        if lengths is None:
            out, state = self.rnn(e)  # (B, T, D·H), (L·D, B, H)
        elif isinstance(self.rnn, GRU):
            out, state = self.rnn(e, lengths=lengths)
        else:  # torch's layers read lengths from a packed sequence
            packed = pack_padded_sequence(e, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, state = self.rnn(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        last = final_state(state)[-self.directions :].transpose(0, 1).reshape(B, -1)  # (B, D·H)
        if self.features == "pool":
            if lengths is None:
                top, mean = out.amax(dim=1), out.mean(dim=1)  # (B, D·H) each
            else:
                steps = torch.arange(x.shape[1], device=x.device)
                valid = (steps.unsqueeze(0) < lengths.to(x.device).unsqueeze(1)).unsqueeze(-1)
                top = out.masked_fill(~valid, float("-inf")).amax(dim=1)  # (B, D·H)
                mean = out.sum(dim=1) / lengths.to(out).unsqueeze(1)  # padding outputs are 0
            last = torch.cat([last, top, mean], dim=-1)  # (B, 3·D·H)
        return self.head(self.dropout(last)).squeeze(-1)  # (B,)

    def probabilities(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """P(positive) (B,) = σ(logit)."""
        return torch.sigmoid(self.forward(x, lengths))


class GRUForecaster(nn.Module):
    """A plain GRU encoder (or the ``layer`` given) with a linear head that forecasts all F
    steps at once.

    Input x (B, W, C): the lookback window of C channels. Each channel's last value is
    subtracted from the window (so the GRU reads changes relative to "now", which keeps a
    series that drifts away from its training range in range) and added back to the forecast.
    The GRU reads the W steps; a linear layer maps its last state h_W (B, H) to F·K values,
    the forecast (B, F, K) of the K channels ``targets`` (indices into the C inputs).
    """

    def __init__(
        self,
        channels: int,
        horizon: int,
        hidden_size: int,
        *,
        targets: list[int] | None = None,
        num_layers: int = 1,
        dropout: float = 0.0,
        layer: LayerFactory | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        self.targets = list(range(channels)) if targets is None else list(targets)
        self.horizon = horizon
        layer = layer or gru_layer(backend)
        layer_dropout = dropout if num_layers > 1 else 0.0
        self.rnn = layer(channels, hidden_size, num_layers=num_layers, dropout=layer_dropout)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, horizon * len(self.targets))

    def forward(self, x: Tensor) -> Tensor:
        last = x[:, -1:, :]  # (B, 1, C)
        _, state = self.rnn(x - last)
        h_n = final_state(state)  # (L, B, H)
        y = self.head(self.dropout(h_n[-1]))  # (B, F·K)
        y = y.view(-1, self.horizon, len(self.targets))  # (B, F, K)
        return y + last[:, :, self.targets]


class SegRNN(nn.Module):
    """SegRNN (Lin et al. 2023, arXiv 2308.11200): a GRU over segments of the lookback window,
    one channel at a time, decoding every output segment in parallel.

    Input x (B, W, C). Each channel is a separate series (channel independence: the C
    channels are folded into the batch and share all weights):

    1. subtract each series' last value ("now"), to be added back at the end;
    2. cut the last N·S values of the window into N segments of S steps, embed each as
       ReLU(Linear(S, d)) and run the GRU (d → d) over the N segments: its last state h_N
       summarizes the window;
    3. parallel multi-step forecasting (PMF): for each of the M output segments m and each
       channel c, one GRU step from h_N reads the embedding [pos_m | chan_c] (d/2 values each,
       learned) and a dropout + Linear(d, S) turns the new state into segment m's S values.
       The same GRU encodes and decodes. All B·C·M steps run as one batch.

    Output (B, F, K): the first F of the M·S forecast steps (M = ⌈F / S⌉) of the channels
    ``targets``. W need not be a multiple of S: the first W mod S steps are not read.
    """

    def __init__(
        self,
        channels: int,
        lookback: int,
        horizon: int,
        *,
        segment: int = 24,
        d_model: int = 512,
        dropout: float = 0.5,
        targets: list[int] | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        if not 1 <= segment <= lookback:
            raise ValueError(
                f"SegRNN: segment must be between 1 and lookback={lookback}, got {segment}"
            )
        if d_model < 2 or d_model % 2:
            raise ValueError(f"SegRNN: d_model must be an even int ≥ 2, got {d_model}")
        self.channels, self.lookback, self.horizon, self.segment = (
            channels,
            lookback,
            horizon,
            segment,
        )
        self.targets = list(range(channels)) if targets is None else list(targets)
        self.n_in = lookback // segment  # N
        self.n_out = -(-horizon // segment)  # M = ⌈F / S⌉
        self.embed = nn.Sequential(nn.Linear(segment, d_model), nn.ReLU())
        self.rnn = GRU(d_model, d_model, batch_first=True, backend=backend)
        self.pos_emb = nn.Parameter(torch.randn(self.n_out, d_model // 2))
        self.channel_emb = nn.Parameter(torch.randn(channels, d_model // 2))
        self.predict = nn.Sequential(nn.Dropout(dropout), nn.Linear(d_model, segment))

    def forward(self, x: Tensor) -> Tensor:
        B, _, C = x.shape
        S, N, M = self.segment, self.n_in, self.n_out
        d = self.rnn.hidden_size
        last = x[:, -1:, :].detach()  # (B, 1, C)
        series = (x[:, x.shape[1] - N * S :, :] - last).transpose(1, 2)  # (B, C, N·S)
        segments = series.reshape(B * C, N, S)  # (B·C, N, S)
        _, h_n = self.rnn(self.embed(segments))  # (1, B·C, d)
        queries = torch.cat(
            [
                self.pos_emb.unsqueeze(0).expand(C, M, d // 2),
                self.channel_emb.unsqueeze(1).expand(C, M, d // 2),
            ],
            dim=-1,
        )  # (C, M, d): one query per (channel, output segment)
        queries = queries.unsqueeze(0).expand(B, C, M, d).reshape(B * C * M, 1, d)
        h0 = h_n.reshape(B * C, 1, d).expand(B * C, M, d).reshape(1, B * C * M, d)
        _, h_dec = self.rnn(queries, h0)  # (1, B·C·M, d): one step for every query
        y = self.predict(h_dec[0]).view(B, C, M * S)[:, :, : self.horizon]  # (B, C, F)
        y = y.transpose(1, 2) + last  # (B, F, C)
        return y[:, :, self.targets]  # (B, F, K)


class CharLM(nn.Module):
    """A character-level language model: Embedding(V, E) -> GRU(E, H, L layers) -> Linear(H, V).

    ``forward(x, h0=None)`` takes ids x (B, T) int64 and the state h0 (L, B, H) (zeros when
    None) and returns ``(logits (B, T, V), h_n (L, B, H))``: the logits of the next character
    after each position and the state to carry into the next chunk of the same text (truncated
    back-propagation through time). ``dropout`` acts between layers and before the output
    layer. For generation one character at a time, see `gru.tasks.textgen`.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        hidden_size: int,
        num_layers: int = 2,
        *,
        dropout: float = 0.0,
        layer: LayerFactory | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        layer = layer or gru_layer(backend)
        layer_dropout = dropout if num_layers > 1 else 0.0
        self.rnn = layer(embedding_dim, hidden_size, num_layers=num_layers, dropout=layer_dropout)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, x: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        e = self.embedding(x)  # (B, T, E)
        out, h_n = self.rnn(e, h0)  # (B, T, H), (L, B, H)
        return self.head(self.dropout(out)), h_n  # (B, T, V), (L, B, H)


FORECASTERS = ("segrnn", "gru")


def forecaster(
    name: str,
    channels: int,
    lookback: int,
    horizon: int,
    hidden_size: int,
    *,
    segment: int = 24,
    num_layers: int = 1,
    dropout: float = 0.0,
    targets: list[int] | None = None,
    backend: str = "auto",
) -> nn.Module:
    """The forecasting model ``name`` (one of `FORECASTERS`) of ``channels`` inputs: "segrnn",
    `SegRNN` of width d = ``hidden_size`` over segments of ``segment`` steps (one layer), or
    "gru", `GRUForecaster` of ``num_layers`` layers of ``hidden_size`` units."""
    if name == "segrnn":
        return SegRNN(
            channels,
            lookback,
            horizon,
            segment=segment,
            d_model=hidden_size,
            dropout=dropout,
            targets=targets,
            backend=backend,
        )
    if name == "gru":
        return GRUForecaster(
            channels,
            horizon,
            hidden_size,
            targets=targets,
            num_layers=num_layers,
            dropout=dropout,
            backend=backend,
        )
    raise ValueError(f"forecaster: name must be one of {FORECASTERS}, got {name!r}")
