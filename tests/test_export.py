"""torch.onnx.export of models holding gru.GRU (gru.ops.export): native ONNX GRU nodes, run by
ONNX Runtime and OpenVINO at batch sizes and lengths other than the traced ones, with both of
torch's exporters.

Each exporter is run once over a "zoo": one model holding a gru.GRU of every configuration
(both conventions × 1 or 2 layers × uni- or bidirectional × batch_first × with or without h0,
half of them with lengths=), because an export costs seconds and one export of 32 layers costs
about as much as one of a single layer.
"""

from __future__ import annotations

import itertools
import warnings

import onnx
import onnxruntime as ort
import openvino
import pytest
import torch
from onnx import helper
from torch import nn

import gru
from checks import assert_close

# torch 2.13's exporter calls a pytree function that it has deprecated itself.
pytestmark = pytest.mark.filterwarnings(
    r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"
)

T, B, I, H = 5, 3, 4, 3  # the traced shape
RUNS = ((8, 1), (2, 4))  # (T, B) the exported files run at: other lengths and batch sizes
EXPORTERS = ["dynamo", "torchscript"]

SETTINGS = ("reset_after", "two_layers", "bidirectional", "batch_first", "h0")
CONFIGS = [
    dict(zip(SETTINGS, bits, strict=True), lengths=bits[1] ^ bits[2] ^ bits[3])
    for bits in itertools.product((False, True), repeat=len(SETTINGS))
]
"""Every combination of the settings (32), half of them with lengths= (every pair of settings,
lengths included, takes all four combinations)."""

DYNAMO_CONFIGS = [
    c
    for c in CONFIGS
    if c["h0"] == c["bidirectional"] ^ c["batch_first"]
    and c["reset_after"] == c["two_layers"] ^ c["bidirectional"]
]
"""8 of CONFIGS in which every pair of the six settings (lengths included) still takes all four
combinations (a 2^(6-3) design). The default exporter costs ~1.5 s per layer on a busy 2-core
machine, the TorchScript one a tenth of that, so the default one runs these and the TorchScript
one all 32; both write the nodes from the same code but for the node itself."""


def name(config: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in config.items())


class Zoo(nn.Module):
    """One gru.GRU per configuration, all over the same sequences x (T, B, I)."""

    def __init__(self, configs: list[dict]) -> None:
        super().__init__()
        self.configs = configs
        self.layers = nn.ModuleList(
            gru.GRU(I, H, 1 + c["two_layers"], batch_first=c["batch_first"],
                    bidirectional=c["bidirectional"], reset_after=c["reset_after"])
            for c in configs
        )  # fmt: skip

    def forward(self, x, h0, lengths):  # x (T, B, I), h0 (4, B, H), lengths (B,)
        outputs = []
        for c, layer in zip(self.configs, self.layers, strict=True):
            states = (1 + c["two_layers"]) * (2 if c["bidirectional"] else 1)
            out, h_n = layer(
                x.transpose(0, 1) if c["batch_first"] else x,
                h0[:states] if c["h0"] else None,
                lengths=lengths if c["lengths"] else None,
            )
            outputs += [out, h_n]
        return tuple(outputs)


def export(model: nn.Module, args: tuple, path, exporter: str, dims: dict, **options) -> None:
    """torch.onnx.export with its default arguments (and ``options``), plus the dynamic axes:
    ``dims`` maps each input's name to {axis: "T" or "B"}."""
    if exporter == "dynamo":
        dynamic = torch.export.Dim.DYNAMIC
        shapes = {arg: dict.fromkeys(axes, dynamic) for arg, axes in dims.items()}
        torch.onnx.export(model, args, path, dynamic_shapes=shapes, **options)
    else:
        # The TorchScript exporter, tested because users still call it, is deprecated as a
        # whole: it and the internals it calls warn so.
        # It also warns where the layer's shape checks read sizes as Python numbers while
        # tracing: the checks hold for the traced input, and no GRU node keeps those sizes.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(
                model, args, path, dynamo=False, input_names=list(dims), dynamic_axes=dims,
                **options,
            )  # fmt: skip


def inputs(T_run: int, B_run: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = torch.randn(T_run, B_run, I)
    h0 = torch.randn(4, B_run, H)
    lengths = torch.tensor([T_run, 1, max(T_run - 1, 1), 2][:B_run])
    return x, h0, lengths


def gru_nodes(path) -> list:
    return [n for n in onnx.load(str(path)).graph.node if n.op_type == "GRU"]


def attributes(node) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def test_the_default_exporters_configurations_take_every_pair_of_settings():
    settings = [*SETTINGS, "lengths"]
    for a, b in itertools.combinations(settings, 2):
        assert len({(c[a], c[b]) for c in DYNAMO_CONFIGS}) == 4, (a, b)


@pytest.fixture(scope="module", params=EXPORTERS)
def zoo(request, tmp_path_factory):
    """(the Zoo in eval mode, the path of its export, the exporter)."""
    torch.manual_seed(0)
    model = Zoo(DYNAMO_CONFIGS if request.param == "dynamo" else CONFIGS).eval()
    path = tmp_path_factory.mktemp(request.param) / "zoo.onnx"
    dims = {"x": {0: "T", 1: "B"}, "h0": {1: "B"}, "lengths": {0: "B"}}
    export(model, inputs(T, B), path, request.param, dims)
    return model, path, request.param


def test_the_graph_holds_one_native_gru_node_per_layer(zoo):
    model, path, _ = zoo
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert {n.domain for n in proto.graph.node} <= {"", "ai.onnx"}  # no custom operator
    nodes = gru_nodes(path)
    found = sorted(
        (attributes(n)["linear_before_reset"], attributes(n)["direction"].decode()) for n in nodes
    )
    expected = sorted(
        (int(c["reset_after"]), "bidirectional" if c["bidirectional"] else "forward")
        for c in model.configs
        for _ in range(1 + c["two_layers"])
    )
    assert found == expected
    assert all(attributes(n)["hidden_size"] == H for n in nodes)
    with_lengths = sum(1 + c["two_layers"] for c in model.configs if c["lengths"])
    assert sum(len(n.input) > 4 and n.input[4] != "" for n in nodes) == with_lengths


def compare_zoo(model, outputs_of, label: str, *, with_lengths: bool = True) -> None:
    """Compare ``outputs_of(x, h0, lengths)`` (NumPy arrays) with the model's, at RUNS
    (without the configurations that take lengths= unless ``with_lengths``)."""
    torch.manual_seed(1)
    compared = 0
    for T_run, B_run in RUNS:
        x, h0, lengths = inputs(T_run, B_run)
        with torch.no_grad():
            expected = model(x, h0, lengths)
        got = outputs_of(x, h0, lengths)
        assert len(got) == len(expected)
        for index, (a, e) in enumerate(zip(got, expected, strict=True)):
            config = model.configs[index // 2]
            if config["lengths"] and not with_lengths:
                continue
            what = "h_n" if index % 2 else "output"
            # float32 as the house compares it (rtol 1e-5, atol 1e-6), not looser: both sides
            # compute in float32 and differ only by rounding and the activations' last bits.
            assert_close(torch.from_numpy(a), e, what=f"{label}: {what} of {name(config)}")
            compared += 1
    assert compared >= len(RUNS) * len(model.configs)  # at least half of them


def test_onnxruntime_gives_the_layers_outputs_at_other_shapes(zoo):
    model, path, exporter = zoo
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def outputs_of(x, h0, lengths):
        feed = {"x": x.numpy(), "h0": h0.numpy(), "lengths": lengths.numpy()}
        return session.run(None, {n: feed[n] for n in names})

    compare_zoo(model, outputs_of, f"onnxruntime ({exporter})")


def test_openvino_gives_the_layers_outputs_at_other_shapes(zoo):
    model, path, exporter = zoo
    core = openvino.Core()
    compiled = core.compile_model(
        core.read_model(str(path)), "CPU", {"INFERENCE_PRECISION_HINT": "f32"}
    )
    # An input's names hold the graph input's (and, after the TorchScript exporter, others).
    names = [({"x", "h0", "lengths"} & p.get_names()).pop() for p in compiled.inputs]

    def outputs_of(x, h0, lengths):
        feed = {"x": x.numpy(), "h0": h0.numpy(), "lengths": lengths.numpy()}
        result = compiled([feed[n] for n in names])
        return [result[out] for out in compiled.outputs]

    # OpenVINO 2026.4 ignores a GRU node's sequence_lens (this export's and gru convert's
    # alike): every sequence runs all T steps there, so the layers given lengths= are left out.
    compare_zoo(model, outputs_of, f"openvino ({exporter})", with_lengths=False)


class Tagger(nn.Module):
    """A whole model: token ids (B, T) -> Embedding -> gru.GRU -> Linear -> logits (B, T, V)."""

    def __init__(self, vocabulary: int = 11, embedding: int = 4) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocabulary, embedding)
        self.gru = gru.GRU(embedding, H, num_layers=2, batch_first=True, bidirectional=True)
        self.linear = nn.Linear(2 * H, vocabulary)

    def forward(self, tokens):
        output, _ = self.gru(self.embedding(tokens))
        return self.linear(output)


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_a_whole_model_exports_and_runs_at_other_shapes(exporter, tmp_path):
    torch.manual_seed(2)
    model = Tagger().eval()
    path = tmp_path / "tagger.onnx"
    export(model, (torch.randint(0, 11, (B, T)),), path, exporter, {"tokens": {0: "B", 1: "T"}})
    assert len(gru_nodes(path)) == 2
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for T_run, B_run in RUNS:
        tokens = torch.randint(0, 11, (B_run, T_run))
        (got,) = session.run(None, {session.get_inputs()[0].name: tokens.numpy()})
        with torch.no_grad():
            assert_close(torch.from_numpy(got), model(tokens), what=f"T={T_run}, B={B_run}")


def test_the_layer_alone_exports_with_no_argument_but_the_input(tmp_path):
    """``torch.onnx.export(layer, (x,), path)``, nothing else: the default exporter, the
    traced shape."""
    torch.manual_seed(3)
    layer = gru.GRU(I, H, reset_after=False).eval()
    x = torch.randn(T, B, I)
    torch.onnx.export(layer, (x,), tmp_path / "gru.onnx")
    (node,) = gru_nodes(tmp_path / "gru.onnx")
    assert attributes(node)["linear_before_reset"] == 0
    session = ort.InferenceSession(str(tmp_path / "gru.onnx"), providers=["CPUExecutionProvider"])
    output, h_n = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        expected = layer(x)
    assert_close(torch.from_numpy(output), expected[0], what="output")
    assert_close(torch.from_numpy(h_n), expected[1], what="h_n")


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_the_layer_alone_runs_at_other_shapes_with_both_exporters(exporter, tmp_path):
    """The TorchScript exporter passes every argument with a default by position: lengths
    is an ordinary argument so that a bare layer exports there too."""
    torch.manual_seed(5)
    layer = gru.GRU(I, H, num_layers=2, bidirectional=True).eval()
    export(layer, (torch.randn(T, B, I),), tmp_path / "gru.onnx", exporter, {"x": {0: "T", 1: "B"}}
           if exporter == "torchscript" else {"input": {0: "T", 1: "B"}})  # fmt: skip
    session = ort.InferenceSession(str(tmp_path / "gru.onnx"), providers=["CPUExecutionProvider"])
    for T_run, B_run in RUNS:
        x = torch.randn(T_run, B_run, I)
        output, h_n = session.run(None, {session.get_inputs()[0].name: x.numpy()})
        with torch.no_grad():
            expected = layer(x)
        assert_close(torch.from_numpy(output), expected[0], what=f"output, T={T_run}")
        assert_close(torch.from_numpy(h_n), expected[1], what=f"h_n, T={T_run}")


class MinTagger(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = gru.MinGRU(I, H, num_layers=2)

    def forward(self, x, h0):
        return self.layer(x, h0)


def test_a_mingru_exports_as_onnx_operations_right_at_every_length(tmp_path):
    """No ONNX operator computes a minGRU: the default exporter writes its scan as ONNX
    operations, traced at T = 5 and right at lengths across chunk boundaries and long enough
    that a log-space scan in ONNX would lose its early terms (T = 100 was off by 0.8)."""
    torch.manual_seed(6)
    model = MinTagger().eval()
    export(model, (torch.randn(T, B, I), torch.randn(2, B, H)), tmp_path / "min.onnx",
           "dynamo", {"x": {0: "T", 1: "B"}, "h0": {1: "B"}})  # fmt: skip
    session = ort.InferenceSession(str(tmp_path / "min.onnx"), providers=["CPUExecutionProvider"])
    for T_run, B_run in ((1, 2), (33, 1), (100, 3), (1000, 2)):
        x, h0 = torch.randn(T_run, B_run, I), torch.randn(2, B_run, H)
        output, h_n = session.run(None, {"x": x.numpy(), "h0": h0.numpy()})
        with torch.no_grad():
            expected = model(x, h0)
        assert_close(torch.from_numpy(output), expected[0], what=f"output, T={T_run}")
        assert_close(torch.from_numpy(h_n), expected[1], what=f"h_n, T={T_run}")


def test_a_mingru_names_the_exporter_that_takes_it(tmp_path):
    with pytest.raises(ValueError, match=r"MinGRU: torch.onnx.export\(..., dynamo=False\) "
                       r"cannot export a MinGRU: .* export with the default exporter"):  # fmt: skip
        export(MinTagger().eval(), (torch.randn(T, B, I), torch.randn(2, B, H)),
               tmp_path / "min.onnx", "torchscript", {"x": {}, "h0": {}})  # fmt: skip


class Wrapper(nn.Module):
    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x)[0]


@pytest.mark.parametrize(
    ("settings", "training", "message"),
    [
        ({"layer_norm": True}, False, "cannot export layer_norm=True to ONNX: ONNX's GRU operator "
         "has no layer normalization; export a layer without layer_norm"),
        ({"zoneout": 0.25}, False, "cannot export zoneout=0.25 to ONNX: zoneout keeps p of the "
         "previous state at inference too"),
        ({"recurrent_dropout": 0.25}, True, r"cannot export recurrent_dropout=0.25 to ONNX: "
         r"recurrent dropout acts in training mode only; call model.eval\(\)"),
        ({"dropout": 0.5, "num_layers": 2}, True, r"cannot export dropout=0.5 to ONNX: dropout "
         r"between layers acts in training mode only; call model.eval\(\)"),
    ],
)  # fmt: skip
def test_what_onnx_cannot_compute_is_refused_naming_the_option(
    settings, training, message, tmp_path
):
    model = Wrapper(gru.GRU(I, H, **settings)).train(training)
    with pytest.raises(ValueError, match=f"^GRU: {message}"):
        export(
            model, (torch.randn(T, B, I),), tmp_path / "x.onnx", "torchscript", {"x": {}},
            training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False,
        )  # fmt: skip


def test_the_default_exporter_shows_the_refusal(tmp_path):
    """torch.export wraps the layer's ValueError in its own error; the message still reaches
    the user."""
    model = Wrapper(gru.GRU(I, H, layer_norm=True)).eval()
    with pytest.raises(torch.onnx.OnnxExporterError, match="GRU: cannot export layer_norm=True"):
        torch.onnx.export(model, (torch.randn(T, B, I),), tmp_path / "x.onnx")


def test_recurrent_dropout_exports_as_the_plain_gru_in_evaluation(tmp_path):
    """In evaluation recurrent dropout and the dropout between layers are the identity, so the
    layer exports as the plain GRU with its weights."""
    torch.manual_seed(4)
    model = Wrapper(gru.GRU(I, H, num_layers=2, dropout=0.5, recurrent_dropout=0.3)).eval()
    plain = gru.GRU(I, H, num_layers=2).eval()
    plain.load_state_dict(model.layer.state_dict())
    x = torch.randn(T, B, I)
    export(model, (x,), tmp_path / "gru.onnx", "torchscript", {"x": {0: "T", 1: "B"}})
    session = ort.InferenceSession(str(tmp_path / "gru.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        assert_close(torch.from_numpy(got), plain(x)[0])


def test_a_packed_sequence_is_refused_with_what_to_give_instead(tmp_path):
    class Packed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = gru.GRU(I, H)

        def forward(self, x, lengths):
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
            return self.layer(packed)[1]

    args = (torch.randn(T, B, I), torch.tensor([T, 2, 1]))
    with pytest.raises(ValueError, match=r"a PackedSequence cannot be exported to ONNX; give "
                       r"the padded tensor and its lengths \(GRU\(x, lengths=lengths\)\)"):  # fmt: skip
        export(Packed().eval(), args, tmp_path / "x.onnx", "torchscript", {"x": {}, "lengths": {}})
