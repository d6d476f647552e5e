"""An RNN encoder–decoder (Cho et al. 2014) with additive attention (Bahdanau et al. 2014),
built so that every GRU trains as one whole-sequence call of the engine.

Encoder: a bidirectional `gru.GRU` over the source embeddings with ``lengths=`` (it never reads
padding). Decoder, under teacher forcing, in three whole-sequence passes instead of a loop of
steps: layer 1, a `gru.GRU` over the target embeddings; the additive attention of each of its
states over the encoder's outputs (masked by the source lengths), all steps at once; layer 2, a
`gru.GRU` over [layer-1 state; context]. The output is a "deep output" (Bahdanau et al.): tanh
of a projection of [layer-2 state; context; previous word's embedding] to the embedding size,
scored against the embedding table (tied weights), so one table of joint subwords serves the
source, the target and the output.

Without attention (``attention=False``, the ``cho2014`` preset) the context at every step is the
same summary of the source (a projection of the encoder's final states), as in Cho et al.

Decoding runs the same layers one step at a time (`Seq2Seq.step`, each GRU called on one step
with its state), so greedy and beam search (`gru.decoding`) use the trained weights as they are.

Shapes: B batch, S source length, T target length, V vocabulary, E embedding size,
H encoder units per direction, K decoder units, A attention size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gru.nn import GRU

__all__ = [
    "BOS",
    "EOS",
    "PAD",
    "Encoded",
    "Seq2Seq",
    "allowed",
    "beam_search",
    "beam_search_batch",
    "gates_of_step",
    "greedy",
    "normalized",
    "sequence_loss",
]

# The ids the tokenizer reserves (`gru.data.translation`): padding (the loss ignores it), start
# and end of a sentence.
PAD, BOS, EOS = 0, 2, 3


class Encoded:
    """What the decoder reads of a batch of sources: the encoder's outputs (B, S, 2H), their
    attention keys (B, S, A) (None without attention), the mask (B, S) of real positions, and
    the fixed context (B, 2H) used without attention."""

    def __init__(self, outputs: Tensor, keys: Tensor | None, mask: Tensor, summary: Tensor):
        self.outputs, self.keys, self.mask, self.summary = outputs, keys, mask, summary

    def select(self, index: Tensor) -> Encoded:
        """The rows ``index`` (e.g. each sentence repeated once per beam)."""
        keys = None if self.keys is None else self.keys[index]
        return Encoded(self.outputs[index], keys, self.mask[index], self.summary[index])


class Seq2Seq(nn.Module):
    """The encoder–decoder; ``forward(src, src_lengths, tgt_in)`` gives the logits (B, T, V) of
    each next target id under teacher forcing. ``attention=False`` drops the attention."""

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 256,
        encoder_size: int = 256,
        encoder_layers: int = 2,
        decoder_size: int = 512,
        attention_size: int = 256,
        *,
        attention: bool = True,
        dropout: float = 0.2,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        E, H, K = embedding_dim, encoder_size, decoder_size
        self.attention = attention
        self.embedding = nn.Embedding(vocab_size, E, padding_idx=PAD)
        nn.init.normal_(self.embedding.weight, std=E**-0.5)
        with torch.no_grad():
            self.embedding.weight[PAD].zero_()
        self.encoder = GRU(
            E, H, num_layers=encoder_layers, dropout=dropout if encoder_layers > 1 else 0.0,
            bidirectional=True, batch_first=True, backend=backend,
        )  # fmt: skip
        self.bridge = nn.Linear(2 * H, 2 * K)  # the encoder's summary → both decoder states
        self.summary = nn.Linear(2 * H, 2 * H)  # the fixed context without attention
        self.decoder1 = GRU(E, K, batch_first=True, backend=backend)
        self.decoder2 = GRU(K + 2 * H, K, batch_first=True, backend=backend)
        if attention:
            self.key = nn.Linear(2 * H, attention_size, bias=False)
            self.query = nn.Linear(K, attention_size)
            self.score = nn.Linear(attention_size, 1, bias=False)
        self.deep = nn.Linear(K + 2 * H + E, E)
        self.out_bias = nn.Parameter(torch.zeros(vocab_size))
        self.drop = nn.Dropout(dropout)

    # --- the encoder ------------------------------------------------------------------------

    def encode(self, src: Tensor, lengths: Tensor) -> tuple[Encoded, Tensor]:
        """The encoding of src (B, S) and the decoder's initial states (2, B, K)."""
        x = self.drop(self.embedding(src))
        outputs, h_n = self.encoder(x, lengths=lengths)  # (B, S, 2H), (2L, B, H)
        final = torch.cat([h_n[-2], h_n[-1]], dim=-1)  # last layer, both directions (B, 2H)
        states = torch.tanh(self.bridge(final)).view(len(src), 2, -1).transpose(0, 1)
        mask = torch.arange(src.shape[1], device=src.device) < lengths.to(src.device)[:, None]
        keys = self.key(outputs) if self.attention else None
        summary = torch.tanh(self.summary(final))
        return Encoded(self.drop(outputs), keys, mask, summary), states.contiguous()

    # --- attention ----------------------------------------------------------------------------

    def attend(self, queries: Tensor, enc: Encoded) -> tuple[Tensor, Tensor | None]:
        """Context (B, T, 2H) and attention weights (B, T, S) of decoder states (B, T, K)."""
        if not self.attention:
            context = enc.summary[:, None, :].expand(-1, queries.shape[1], -1)
            return context, None
        q = self.query(queries)  # (B, T, A)
        energy = self.score(torch.tanh(q[:, :, None, :] + enc.keys[:, None, :, :])).squeeze(-1)
        energy = energy.masked_fill(~enc.mask[:, None, :], float("-inf"))  # (B, T, S)
        weights = torch.softmax(energy, dim=-1)
        return torch.bmm(weights, enc.outputs), weights

    # --- the decoder --------------------------------------------------------------------------

    def logits(self, h2: Tensor, context: Tensor, embedded: Tensor) -> Tensor:
        """Scores (…, V) of the next id from layer 2's state, the context and the input word."""
        deep = torch.tanh(self.deep(self.drop(torch.cat([h2, context, embedded], dim=-1))))
        return F.linear(self.drop(deep), self.embedding.weight, self.out_bias)

    def decode(self, tgt_in: Tensor, enc: Encoded, states: Tensor):
        """Teacher-forced decoding of tgt_in (B, T): (logits (B, T, V), attention (B, T, S)),
        each GRU layer one whole-sequence call."""
        y = self.drop(self.embedding(tgt_in))  # (B, T, E)
        h1, _ = self.decoder1(y, states[0:1].contiguous())
        context, weights = self.attend(h1, enc)
        h2, _ = self.decoder2(torch.cat([self.drop(h1), context], dim=-1), states[1:2].contiguous())
        return self.logits(h2, context, y), weights

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor:
        enc, states = self.encode(src, src_lengths)
        return self.decode(tgt_in, enc, states)[0]

    def step(self, previous: Tensor, enc: Encoded, states: Tensor):
        """One decoding step: the previous ids (B,), the encoding and states (2, B, K) →
        (log-probabilities (B, V), new states (2, B, K), attention (B, S) or None, the
        decoder's layer-1 and layer-2 outputs (B, K))."""
        y = self.embedding(previous)[:, None, :]  # (B, 1, E)
        h1, s1 = self.decoder1(y, states[0:1].contiguous())
        context, weights = self.attend(h1, enc)
        h2, s2 = self.decoder2(torch.cat([h1, context], dim=-1), states[1:2].contiguous())
        logits = self.logits(h2, context, y)[:, 0]
        weights = None if weights is None else weights[:, 0]
        return torch.log_softmax(logits.float(), dim=-1), torch.cat([s1, s2]), weights


def update_gate(layer: GRU, x: Tensor, h: Tensor) -> Tensor:
    """The update gate z (B, K) of the one-layer GRU ``layer`` reading x (B, I) in state
    h (B, K): σ(W_iz x + b_iz + W_hz h + b_hz), rows K..2K of its packed [r | z | n]."""
    w_ih, w_hh, b_ih, b_hh = layer.layer_weights(0)
    K = layer.hidden_size
    z = x @ w_ih[K : 2 * K].T + h @ w_hh[K : 2 * K].T
    if b_ih is not None:
        z = z + b_ih[K : 2 * K] + b_hh[K : 2 * K]
    return torch.sigmoid(z)


@torch.no_grad()
def gates_of_step(model: Seq2Seq, previous: Tensor, enc: Encoded, states: Tensor):
    """The update gates (B, K) of decoder layers 1 and 2 in the step `Seq2Seq.step` takes
    from ``previous`` ids (B,) and ``states`` (2, B, K)."""
    y = model.embedding(previous)
    z1 = update_gate(model.decoder1, y, states[0])
    h1, _ = model.decoder1(y[:, None], states[0:1].contiguous())
    context, _ = model.attend(h1, enc)
    z2 = update_gate(model.decoder2, torch.cat([h1, context], dim=-1)[:, 0], states[1])
    return z1, z2


def sequence_loss(logits: Tensor, target: Tensor, smoothing: float = 0.0) -> Tensor:
    """Mean cross-entropy per target token (padding ignored), with label smoothing."""
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=PAD,
        label_smoothing=smoothing,
    )  # fmt: skip


# --- decoding ------------------------------------------------------------------------------------


def allowed(log_probs: Tensor) -> Tensor:
    """The log-probabilities with padding and the start id forbidden (they never follow)."""
    log_probs[:, PAD] = float("-inf")
    log_probs[:, BOS] = float("-inf")
    return log_probs


@torch.no_grad()
def greedy(model: Seq2Seq, src: Tensor, lengths: Tensor, max_len: int):
    """The likeliest next id at every step for each source of the batch src (B, S): a list of B
    id lists (without the end id), and the attention (B, T, S) (None without attention)."""
    enc, states = model.encode(src, lengths)
    B = len(src)
    previous = torch.full((B,), BOS, dtype=torch.int64)
    out, attention = [], []
    done = torch.zeros(B, dtype=torch.bool)
    for _ in range(max_len):
        log_probs, states, weights = model.step(previous, enc, states)
        previous = allowed(log_probs).argmax(-1)
        out.append(previous)
        if weights is not None:
            attention.append(weights)
        done |= previous == EOS
        if done.all():
            break
    ids = torch.stack(out, 1).tolist()
    result = [row[: row.index(EOS)] if EOS in row else row for row in ids]
    return result, (torch.stack(attention, 1) if attention else None)


def normalized(score: float, length: int, penalty: float) -> float:
    """A hypothesis's score: its summed log-probability over length ** penalty (the ids it
    generated, the end id included); penalty 0 is the plain sum."""
    return score / (length**penalty)


@torch.no_grad()
def beam_search(
    model: Seq2Seq, src: Tensor, max_len: int, width: int = 5, penalty: float = 1.0
) -> tuple[list[int], float, Tensor | None]:
    """The best translation of one source src (S,) by beam search (`beam_search_batch`): (ids
    without the end id, its normalized score, attention (T, S) or None)."""
    return beam_search_batch(model, src[None], torch.tensor([len(src)]), [max_len], width, penalty)[
        0
    ]


class _Beams:
    """The finished hypotheses of one source and whether its search is over."""

    def __init__(self, width: int, max_len: int) -> None:
        self.width, self.max_len = width, max_len
        self.finished: list[tuple[list[int], float, Tensor]] = []  # (ids, score, attention)
        self.done = False


@torch.no_grad()
def beam_search_batch(
    model: Seq2Seq,
    src: Tensor,
    lengths: Tensor,
    max_lens: list[int],
    width: int = 5,
    penalty: float = 1.0,
) -> list[tuple[list[int], float, Tensor | None]]:
    """The best translation of each source of the batch src (B, S) by beam search, all
    sources' beams stepped together: a list of (ids without the end id, normalized score,
    attention (T, S_b) or None).

    ``width`` hypotheses are kept per source at each step (the best of 2·width extensions); one
    that ends (the end id) is set aside with its score `normalized` by ``penalty``; a source's
    search stops when ``width`` have ended, or after ``max_lens[b]`` ids (then its live ones
    count as ended)."""
    B, k = len(src), width
    enc, states = model.encode(src, lengths)
    rows = torch.arange(B).repeat_interleave(k)  # row b·k + j: hypothesis j of source b
    enc, states = enc.select(rows), states[:, rows]
    scores = torch.full((B, k), float("-inf"))
    scores[:, 0] = 0.0  # one live hypothesis to start: the empty one
    ids = torch.full((B * k, 0), BOS, dtype=torch.int64)
    attention = torch.zeros(B * k, 0, src.shape[1])
    previous = torch.full((B * k,), BOS, dtype=torch.int64)
    beams = [_Beams(k, m) for m in max_lens]
    for t in range(max(max_lens)):
        log_probs, states, weights = model.step(previous, enc, states)
        if weights is not None:
            attention = torch.cat([attention, weights[:, None]], dim=1)
        totals = (allowed(log_probs) + scores.view(-1, 1)).view(B, -1)  # (B, k·V)
        best = torch.topk(totals, min(2 * k, totals.shape[1]), dim=1)
        V = log_probs.shape[1]
        keep = torch.arange(B * k)  # the row each next hypothesis extends
        tokens = torch.full((B * k,), EOS, dtype=torch.int64)
        scores = torch.full((B, k), float("-inf"))
        values, indices = best.values.tolist(), best.indices.tolist()
        for b, beam in enumerate(beams):
            if beam.done:
                continue
            chosen = 0
            for value, index in zip(values[b], indices[b], strict=True):
                if value == float("-inf"):
                    break
                row, token = b * k + index // V, index % V
                if token == EOS:
                    score = normalized(value, t + 1, penalty)
                    beam.finished.append((ids[row].tolist(), score, attention[row].clone()))
                    continue
                keep[b * k + chosen], tokens[b * k + chosen] = row, token
                scores[b, chosen] = value
                chosen += 1
                if chosen == k:
                    break
            if len(beam.finished) >= k or chosen == 0:
                beam.done = True
        ids = torch.cat([ids[keep], tokens[:, None]], dim=1)
        attention, states, previous = attention[keep], states[:, keep], tokens
        for b, beam in enumerate(beams):
            if not beam.done and t + 1 == beam.max_len:
                for j in range(k):
                    if scores[b, j] > float("-inf"):
                        row = b * k + j
                        value = normalized(float(scores[b, j]), t + 1, penalty)
                        beam.finished.append((ids[row].tolist(), value, attention[row].clone()))
                beam.done = True
        if all(beam.done for beam in beams):
            break
    out = []
    for b, beam in enumerate(beams):
        found, score, att = max(beam.finished, key=lambda h: h[1])
        att = att[: len(found) + 1, : int(lengths[b])] if model.attention else None
        out.append((found, score, att))
    return out
