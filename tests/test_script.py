"""TorchScript (`gru.nn.script`): ``torch.jit.script`` and ``torch.jit.trace`` of models holding a
`gru.GRU` compute what the eager model computes (outputs, h_n and gradients) at the traced
shapes and others, survive ``torch.jit.save`` / ``torch.jit.load`` (in a new process after
``import gru``), and what they cannot take is refused with a message.

Each scripted or traced model is compared with a deep copy of the eager model made before:
scripting replaces the GRU inside the model itself (torch's rule for ``__prepare_scriptable__``).
"""

from __future__ import annotations

import copy
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

import gru
from checks import assert_close
from gru.nn.script import ScriptableGRU

# torch 2.13 deprecates TorchScript in favour of torch.compile / torch.export; the deprecation
# is torch's, and every other warning stays an error.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:DeprecationWarning")

SRC = Path(gru.__file__).resolve().parents[1]


class Tagger(nn.Module):
    """Embedding → gru.GRU → Linear, the shape of a real model."""

    def __init__(self, dtype=torch.float32, **gru_kwargs) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 6, dtype=dtype)
        self.gru = gru.GRU(6, 5, dtype=dtype, **gru_kwargs)
        D = 2 if gru_kwargs.get("bidirectional") else 1
        self.out = nn.Linear(D * 5, 3, dtype=dtype)

    def forward(self, tokens: torch.Tensor, hx: torch.Tensor | None = None):
        y, h_n = self.gru(self.embed(tokens), hx)
        return self.out(y), h_n


class Holder(nn.Module):
    """A module holding a layer, as a model does: TorchScript compiles the overloads of the
    layer's forward (tensor or PackedSequence) where a caller uses them, so a GRU scripted alone
    has no forward (as torch.nn.GRU has none)."""

    def __init__(self, layer) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor, hx: torch.Tensor | None = None):
        return self.layer(x, hx)


class PackedHolder(Holder):
    def forward(self, x: PackedSequence, hx: torch.Tensor | None = None):
        return self.layer(x, hx)


CONFIGS = [
    pytest.param(dict(num_layers=1, bidirectional=False), id="1layer"),
    pytest.param(dict(num_layers=2, bidirectional=True), id="2layers-bi"),
]


def _inputs(kwargs, T, B, with_h0, dtype=torch.float32, seed=0):
    """(tokens, h0 or None) for a Tagger of these settings: tokens (T, B), or (B, T)."""
    g = torch.Generator().manual_seed(seed)
    shape = (B, T) if kwargs.get("batch_first") else (T, B)
    tokens = torch.randint(0, 20, shape, generator=g)
    D = 2 if kwargs.get("bidirectional") else 1
    L = kwargs.get("num_layers", 1)
    h0 = torch.randn(D * L, B, 5, generator=g, dtype=dtype) if with_h0 else None
    return tokens, h0


def _compare(model, eager, kwargs, with_h0, dtype=torch.float32, shapes=((7, 3), (4, 6), (1, 1))):
    """``model`` (scripted or traced) equals ``eager``: outputs, h_n, and the gradients of
    every parameter and of h0, at each (T, B) of ``shapes``."""
    for seed, (T, B) in enumerate(shapes):
        tokens, h0 = _inputs(kwargs, T, B, with_h0, dtype, seed)
        results = []
        for m in (model, eager):
            m.zero_grad()
            h = None if h0 is None else h0.clone().requires_grad_()
            y, h_n = m(tokens) if h is None else m(tokens, h)  # a trace without h0 takes one
            (y.square().sum() + h_n.sum()).backward()
            grads = [p.grad.clone() for p in m.parameters()]
            results.append((y, h_n, grads, None if h is None else h.grad))
        (y, h_n, grads, dh0), (y_e, h_n_e, grads_e, dh0_e) = results
        what = f"T={T} B={B}"
        assert_close(y, y_e, what=f"output {what}")
        assert_close(h_n, h_n_e, what=f"h_n {what}")
        for g, g_e in zip(grads, grads_e, strict=True):
            assert_close(g, g_e, what=f"gradient {what}")
        if with_h0:
            assert_close(dh0, dh0_e, what=f"dh0 {what}")


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("with_h0", [False, True])
def test_script_equals_eager(reset_after, config, batch_first, with_h0):
    kwargs = dict(config, reset_after=reset_after, batch_first=batch_first)
    torch.manual_seed(0)
    model = Tagger(**kwargs)
    eager = copy.deepcopy(model)
    scripted = torch.jit.script(model)
    assert "gru::sequence_forward" in str(scripted.inlined_graph)  # the engine
    _compare(scripted, eager, kwargs, with_h0)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("with_h0", [False, True])
def test_trace_with_gradients_runs_other_shapes(reset_after, config, batch_first, with_h0):
    kwargs = dict(config, reset_after=reset_after, batch_first=batch_first)
    torch.manual_seed(0)
    model = Tagger(**kwargs)
    eager = copy.deepcopy(model)
    tokens, h0 = _inputs(kwargs, 7, 3, with_h0)
    traced = torch.jit.trace(model, (tokens,) if h0 is None else (tokens, h0))
    assert "gru::sequence_forward" in str(traced.inlined_graph)
    _compare(traced, eager, kwargs, with_h0)


def test_trace_under_no_grad_runs_other_shapes():
    torch.manual_seed(0)
    model = Tagger(num_layers=2)
    tokens, _ = _inputs({}, 7, 3, False)
    with torch.no_grad():
        traced = torch.jit.trace(model, tokens)
        for T, B in [(7, 3), (12, 1), (2, 9)]:
            x, _ = _inputs({}, T, B, False, seed=T)
            for a, e in zip(traced(x), model(x), strict=True):
                assert_close(a, e, what=f"T={T} B={B}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reset_after", [True, False])
def test_script_and_trace_of_the_layer_alone(dtype, reset_after):
    """The GRU in a minimal module scripted, and alone traced, batched and unbatched, in
    float32 and float64."""
    torch.manual_seed(0)
    layer = gru.GRU(4, 6, num_layers=2, bidirectional=True, reset_after=reset_after, dtype=dtype)
    scripted = torch.jit.script(Holder(layer))
    traced = torch.jit.trace(layer, torch.randn(5, 2, 4, dtype=dtype))
    for shape in [(5, 2, 4), (9, 3, 4), (8, 4)]:
        x = torch.randn(shape, dtype=dtype)
        expected = layer(x)
        for name, m in [("script", scripted), ("trace", traced)]:
            if name == "trace" and len(shape) == 2:
                continue  # a trace records the layout it saw (as torch.nn.GRU's does)
            for a, e in zip(m(x), expected, strict=True):
                assert_close(a, e, what=f"{name} {shape}")


@pytest.mark.parametrize("reset_after", [True, False])
def test_script_off_the_engine(reset_after):
    """backend='torch' (as on other devices and dtypes): torch's native GRU for reset after, a
    loop of torch operations for reset before; equal to eager, gradients included."""
    kwargs = dict(num_layers=2, bidirectional=True, reset_after=reset_after, backend="torch")
    torch.manual_seed(0)
    model = Tagger(dtype=torch.float64, **kwargs)
    eager = copy.deepcopy(model)
    scripted = torch.jit.script(model)
    assert not scripted.gru.engine
    _compare(scripted, eager, kwargs, True, dtype=torch.float64, shapes=((6, 3), (2, 5)))


@pytest.mark.filterwarnings("ignore:dropout option adds dropout:UserWarning")
def test_the_model_after_scripting_still_computes_in_eager_mode():
    """torch.jit.script puts a ScriptableGRU in the model; it shares the Parameters (and their
    names), runs the GRU itself from Python (lengths= included), and follows .eval()."""
    torch.manual_seed(0)
    model = Tagger(num_layers=2, dropout=0.5)
    eager = copy.deepcopy(model).eval()
    keys = list(model.state_dict())
    scripted = torch.jit.script(model)
    assert isinstance(model.gru, ScriptableGRU)
    assert list(model.state_dict()) == keys
    model.eval()
    scripted.eval()
    tokens, _ = _inputs({}, 6, 4, False)
    for m in (model, scripted):
        for a, e in zip(m(tokens), eager(tokens), strict=True):
            assert_close(a, e)
    x = torch.randn(6, 4, 6)
    lengths = torch.tensor([6, 3, 2, 5])
    for a, e in zip(
        model.gru(x, lengths=lengths), eager.gru(x, lengths=lengths), strict=True
    ):  # fmt: skip
        assert_close(a, e)
    with torch.no_grad():  # the scripted module reads the same Parameters
        model.gru.weight_hh_l1.mul_(0.5)
        eager.gru.weight_hh_l1.mul_(0.5)
    assert_close(scripted(tokens)[0], eager(tokens)[0])


def test_training_through_a_scripted_model():
    """A few SGD steps through the scripted model move the weights as eager steps do."""
    torch.manual_seed(0)
    model = Tagger(num_layers=2, bidirectional=True)
    eager = copy.deepcopy(model)
    scripted = torch.jit.script(model)
    tokens, _ = _inputs({}, 8, 4, False)
    target = torch.randn(8, 4, 3)
    for m in (scripted, eager):
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        for _ in range(3):
            opt.zero_grad()
            nn.functional.mse_loss(m(tokens)[0], target).backward()
            opt.step()
    for (name, p), p_e in zip(scripted.named_parameters(), eager.parameters(), strict=True):
        assert_close(p, p_e, what=name)


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = Tagger(num_layers=2, bidirectional=True, reset_after=False)
    tokens, h0 = _inputs({"num_layers": 2, "bidirectional": True}, 5, 2, True)
    for name, m in [
        ("script", torch.jit.script(copy.deepcopy(model))),
        ("trace", torch.jit.trace(copy.deepcopy(model), (tokens, h0))),
    ]:
        path = tmp_path / f"{name}.pt"
        torch.jit.save(m, path)
        loaded = torch.jit.load(path)
        x, h = _inputs({"num_layers": 2, "bidirectional": True}, 9, 4, True, seed=1)
        for a, e in zip(loaded(x, h), model(x, h), strict=True):
            assert_close(a, e, what=name)


def test_a_saved_model_loads_in_a_new_process_after_import_gru(tmp_path):
    """Without ``import gru`` the engine's operator is unknown to torch; with it, the file runs
    (a wide layer too: the operator starts the engine, binding the BLAS of large layers)."""
    torch.manual_seed(0)
    model = Tagger(num_layers=2)
    path = tmp_path / "model.pt"
    torch.jit.save(torch.jit.script(copy.deepcopy(model)), path)
    tokens, _ = _inputs({}, 6, 3, False)
    # above 512 hidden units the engine runs a BLAS GEMM per step: the operator binds it itself
    wide = gru.GRU(3, 520)
    x = torch.randn(4, 2, 3)
    torch.jit.save(torch.jit.trace(wide, x), tmp_path / "wide.pt")
    expected = {"tokens": tokens, "expected": model(tokens)[0].detach(), "x": x}
    expected["wide"] = wide(x)[0].detach()
    torch.save(expected, tmp_path / "io.pt")
    code = textwrap.dedent(
        f"""
        import torch
        try:
            torch.jit.load({str(path)!r})
        except RuntimeError as e:
            assert "gru::sequence_forward" in str(e), e
        else:
            raise SystemExit("loaded without the operator")
        import gru
        loaded = torch.jit.load({str(path)!r})
        io = torch.load({str(tmp_path / "io.pt")!r})
        torch.testing.assert_close(loaded(io["tokens"])[0], io["expected"], rtol=1e-5, atol=1e-6)
        wide = torch.jit.load({str(tmp_path / "wide.pt")!r})
        torch.testing.assert_close(wide(io["x"])[0], io["wide"], rtol=1e-5, atol=1e-6)
        print("ok")
        """
    )
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("backend", ["auto", "torch"])
def test_script_of_packed_sequences(reset_after, backend):
    """PackedSequence in a scripted model, sorted and not, with and without h0: on the engine
    (lengths), torch's packed GRU (reset after) and the masked loop (reset before)."""
    torch.manual_seed(0)
    layer = gru.GRU(3, 4, num_layers=2, bidirectional=True, reset_after=reset_after,
                    backend=backend, dtype=torch.float64)  # fmt: skip
    eager = copy.deepcopy(layer)
    scripted = torch.jit.script(PackedHolder(layer))
    x = torch.randn(6, 4, 3, dtype=torch.float64)
    lengths = torch.tensor([3, 6, 2, 6])
    for enforce_sorted in (True, False):
        order = lengths.argsort(descending=True) if enforce_sorted else torch.arange(4)
        packed = pack_padded_sequence(x[:, order], lengths[order], enforce_sorted=enforce_sorted)
        for h0 in (None, torch.randn(4, 4, 4, dtype=torch.float64)):
            (y, h_n), (y_e, h_n_e) = scripted(packed, h0), eager(packed, h0)
            assert torch.equal(y.batch_sizes, y_e.batch_sizes)
            what = f"sorted={enforce_sorted} h0={h0 is not None}"
            assert_close(y.data, y_e.data, what=what)
            assert_close(h_n, h_n_e, what=what)
            (y.data.square().sum() + h_n.sum()).backward()
            grads = [p.grad.clone() for p in layer.parameters()]
            layer.zero_grad()
            (y_e.data.square().sum() + h_n_e.sum()).backward()
            for g, p in zip(grads, eager.parameters(), strict=True):
                assert_close(g, p.grad, what=f"gradient {what}")
            eager.zero_grad()


class CellLoop(nn.Module):
    """A loop of gru.GRUCell over time, as a decoder runs one."""

    def __init__(self, **kwargs) -> None:
        super().__init__()
        self.cell = gru.GRUCell(3, 4, **kwargs)

    def forward(self, x: torch.Tensor, h: torch.Tensor):
        outputs = []
        for t in range(x.size(0)):
            h = self.cell(x[t], h)
            outputs.append(h)
        return torch.stack(outputs)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_script_and_trace_of_gru_cell(reset_after, bias):
    """GRUCell scripted in a loop over time and traced alone equal eager, gradients included,
    and the loop equals gru.GRU with the same weights."""
    torch.manual_seed(0)
    model = CellLoop(reset_after=reset_after, bias=bias)
    eager = copy.deepcopy(model)
    scripted = torch.jit.script(model)
    traced = torch.jit.trace(copy.deepcopy(eager.cell), (torch.randn(2, 3), torch.randn(2, 4)))
    x, h0 = torch.randn(6, 5, 3), torch.randn(5, 4)
    for m in (scripted, eager):
        m.zero_grad()
        m(x, h0).square().sum().backward()
    for p, p_e in zip(scripted.parameters(), eager.parameters(), strict=True):
        assert_close(p.grad, p_e.grad)
    assert_close(scripted(x, h0), eager(x, h0))
    layer = gru.GRU(3, 4, reset_after=reset_after, bias=bias)
    layer.load_state_dict({f"{k}_l0": v for k, v in eager.cell.state_dict().items()})
    assert_close(scripted(x, h0), layer(x, h0[None])[0])
    for shape in [(7, 3), (3,)]:  # other batch sizes; unbatched
        x1, h1 = torch.randn(shape), torch.randn((*shape[:-1], 4))
        assert_close(
            traced(x1.reshape(-1, 3), h1.reshape(-1, 4)), eager.cell(x1, h1).reshape(-1, 4)
        )


# --- what TorchScript cannot take -----------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [(dict(layer_norm=True), "layer_norm=True"), (dict(zoneout=0.1), "zoneout=0.1")],
)
def test_variants_are_refused_by_name(kwargs, setting):
    layer = gru.GRU(3, 4, **kwargs)
    x = torch.randn(5, 2, 3)
    for make in (lambda: torch.jit.script(Holder(layer)), lambda: torch.jit.trace(layer, x)):
        with pytest.raises(RuntimeError, match=f"GRU: {setting} cannot be compiled.*eager mode"):
            make()


def test_recurrent_dropout_runs_in_evaluation_and_is_refused_in_training():
    torch.manual_seed(0)
    layer = gru.GRU(3, 4, recurrent_dropout=0.2)
    x = torch.randn(5, 2, 3)
    scripted = torch.jit.script(Holder(layer))
    message = r"recurrent_dropout=0.2 acts in training.*call \.eval\(\)"
    with pytest.raises(torch.jit.Error, match=message):
        scripted(x)
    with pytest.raises(RuntimeError, match=message):
        torch.jit.trace(layer, x)
    layer.eval()
    scripted.eval()
    traced = torch.jit.trace(layer, x)
    x2 = torch.randn(8, 3, 3)
    for m in (scripted, traced):
        for a, e in zip(m(x2), layer(x2), strict=True):
            assert_close(a, e)


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [(dict(layer_norm=True), "layer_norm=True"), (dict(zoneout=0.1), "zoneout=0.1")],
)
def test_cell_variants_are_refused_by_name(kwargs, setting):
    cell = gru.GRUCell(3, 4, **kwargs)
    message = f"GRUCell: {setting} cannot be compiled.*eager mode"
    with pytest.raises(RuntimeError, match=message):
        torch.jit.script(cell)
    with pytest.raises(RuntimeError, match=message):
        torch.jit.trace(cell, torch.randn(2, 3))


def test_min_gru_is_refused():
    layer = gru.MinGRU(3, 4)
    with pytest.raises(RuntimeError, match=r"MinGRU: MinGRU cannot be compiled.*torch.compile"):
        torch.jit.script(Holder(layer))
    with pytest.raises(RuntimeError, match=r"MinGRU: MinGRU cannot be compiled.*eager mode"):
        torch.jit.trace(layer, torch.randn(5, 2, 3))


def test_lengths_and_packed_input_are_refused_under_trace():
    layer = gru.GRU(3, 4)
    x = torch.randn(5, 2, 3)
    packed = nn.utils.rnn.pack_padded_sequence(x, torch.tensor([5, 3]))
    lengths = torch.tensor([5, 3])
    with pytest.raises(RuntimeError, match=r"PackedSequence or lengths= cannot be .*padded"):
        torch.jit.trace(lambda x: layer(x, lengths=lengths)[0], x)
    with pytest.raises(RuntimeError, match="PackedSequence or lengths= cannot be"):
        torch.jit.trace(lambda d: layer(packed._replace(data=d))[0].data, packed.data)


class LengthsHolder(Holder):
    def forward(self, x: torch.Tensor, lengths: torch.Tensor):
        return self.layer(x, None, lengths)


def test_a_scripted_module_checks_its_input():
    layer = gru.GRU(3, 4, num_layers=2)
    with pytest.raises(torch.jit.Error, match="lengths= is not supported by a scripted GRU"):
        torch.jit.script(LengthsHolder(layer))(torch.randn(5, 2, 3), torch.tensor([5, 3]))
    scripted = torch.jit.script(Holder(layer))
    with pytest.raises(torch.jit.Error, match=r"input.shape.-1. must equal input_size=3"):
        scripted(torch.randn(5, 2, 7))
    with pytest.raises(torch.jit.Error, match="input must be a floating-point tensor"):
        scripted(torch.zeros(5, 2, 3, dtype=torch.long))
    with pytest.raises(torch.jit.Error, match=r"hx must have shape .*\[2, 2, 4\]"):
        scripted(torch.randn(5, 2, 3), torch.zeros(1, 2, 4))
