"""gru.interop.onnx against ONNX Runtime: every exported configuration runs and matches."""

import os
import warnings

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

import gru
from checks import assert_close
from gru.interop.modules import GoBackwards, KerasModel, Recurrent
from gru.interop.onnx import DEFAULT_OPSET, export_onnx, load_onnx

T, B, I, H = 7, 3, 4, 5


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def gru_nodes(path):
    return [n for n in onnx.load(str(path)).graph.node if n.op_type == "GRU"]


CONFIGS = [
    {},
    {"reset_after": False},
    {"bidirectional": True},
    {"num_layers": 2},
    {"num_layers": 2, "bidirectional": True, "reset_after": False},
    {"batch_first": True, "bias": False},
    {"batch_first": True, "num_layers": 2, "bidirectional": True},
]


@pytest.mark.parametrize("with_lengths", [False, True])
@pytest.mark.parametrize("kw", CONFIGS)
def test_exported_model_matches_the_layer_and_loads_back_exactly(kw, with_lengths, tmp_path):
    torch.manual_seed(0)
    ours = gru.GRU(I, H, **kw).eval()
    D = 2 if ours.bidirectional else 1
    path = export_onnx(ours, tmp_path / "gru.onnx", lengths=with_lengths, initial_state=True)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    nodes = gru_nodes(path)
    assert len(nodes) == ours.num_layers
    for node in nodes:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        assert attrs["linear_before_reset"] == int(ours.reset_after)
        assert attrs["direction"] == (b"bidirectional" if D == 2 else b"forward")

    # Two batch sizes and two lengths through one file: batch and time are dynamic.
    for T_run, B_run in ((T, B), (2, 1)):
        x = torch.randn((B_run, T_run, I) if ours.batch_first else (T_run, B_run, I))
        h0 = torch.randn(ours.num_layers * D, B_run, H)
        lengths = torch.tensor([T_run, 1, max(T_run - 2, 1)][:B_run]) if with_lengths else None
        feeds = {"input": x.numpy(), "h0": h0.numpy()}
        if with_lengths:
            feeds["lengths"] = lengths.numpy()
        output, h_n = session(path).run(["output", "h_n"], feeds)
        with torch.no_grad():
            expected_output, expected_h_n = ours(x, h0, lengths=lengths)
        assert_close(output, expected_output, what="output")
        assert_close(h_n, expected_h_n, what="h_n")

    back = load_onnx(path)
    assert back.extra_repr() == ours.extra_repr()
    for (name, p), (name_back, q) in zip(
        ours.named_parameters(), back.named_parameters(), strict=True
    ):
        assert name == name_back and torch.equal(p, q), name


def test_exported_graph_without_optional_inputs(tmp_path):
    ours = gru.GRU(I, H).eval()
    path = export_onnx(ours, tmp_path / "plain.onnx", opset=DEFAULT_OPSET + 2)
    model = onnx.load(str(path))
    assert [i.name for i in model.graph.input] == ["input"]
    assert model.opset_import[0].version == DEFAULT_OPSET + 2
    x = torch.randn(T, B, I)
    (output,) = session(path).run(["output"], {"input": x.numpy()})
    assert_close(output, ours(x)[0], what="output")


def test_torch_nn_gru_through_onnx_keeps_reset_after(tmp_path):
    # The case of pytorch/pytorch#189225: an nn.GRU exported must say linear_before_reset=1.
    torch.manual_seed(1)
    theirs = torch.nn.GRU(I, H, 2, batch_first=True).eval()
    path = export_onnx(gru.GRU.from_torch(theirs), tmp_path / "torch_gru.onnx")
    assert [
        helper.get_attribute_value(a)
        for n in gru_nodes(path)
        for a in n.attribute
        if a.name == "linear_before_reset"
    ] == [1, 1]
    x = torch.randn(B, T, I)
    (output,) = session(path).run(["output"], {"input": x.numpy()})
    with torch.no_grad():
        assert_close(output, theirs(x)[0], what="torch.nn.GRU through ONNX")


def keras_like_model():
    torch.manual_seed(2)
    embedding = torch.nn.Embedding(20, I)
    first = Recurrent(gru.GRU(I, H, batch_first=True, bidirectional=True, reset_after=False), True)
    second = Recurrent(GoBackwards(gru.GRU(2 * H, H, batch_first=True)), True)
    third = Recurrent(gru.GRU(6, H, batch_first=True), False)
    steps = [
        embedding,
        first,
        torch.nn.Dropout(0.5),
        second,
        torch.nn.Linear(H, 6),
        torch.nn.ReLU(),
        third,
        torch.nn.Linear(H, 3, bias=False),
        torch.nn.Softmax(dim=-1),
    ]
    return KerasModel(*steps).eval()


def test_a_model_containing_grus_exports_and_matches(tmp_path):
    model = keras_like_model()
    path = export_onnx(model, tmp_path / "model.onnx")
    tokens = torch.randint(0, 20, (B, T))
    (output,) = session(path).run(["output"], {"input": tokens.numpy()})
    with torch.no_grad():
        assert_close(output, model(tokens), what="KerasModel through ONNX")
    with pytest.raises(
        ValueError,
        match=r"load_onnx: '.*model\.onnx': computes more than GRU layers \(Gather 'gather_\d+', Slice 'slice_\d+', MatMul 'matmul_\d+', Add 'add_\d+', Relu 'relu_\d+', MatMul 'matmul_\d+', \.\.\.: 7 nodes\), which reading it as a gru\.GRU would drop; only an ONNX model of GRU layers converts to one",
    ):
        load_onnx(path)


def graph_with(node_attrs, *, with_gru=True, tmp_path, name="custom.onnx"):
    """A one-node GRU model written with onnx.helper, with extra attributes on the node."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(size=(1, 3 * H, I)).astype(np.float32), "W"),
        numpy_helper.from_array(rng.normal(size=(1, 3 * H, H)).astype(np.float32), "R"),
    ]
    if with_gru:
        node = helper.make_node("GRU", ["X", "W", "R"], ["Y", "Y_h"], hidden_size=H, **node_attrs)
        outputs = [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)]
    else:
        node = helper.make_node("Relu", ["X"], ["Y"])
        outputs = [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)]
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "B", I])],
        outputs,
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def test_gru_nodes_side_by_side_are_not_a_stack(tmp_path):
    W = numpy_helper.from_array(np.ones((1, 3 * H, I), np.float32), "W")
    R = numpy_helper.from_array(np.ones((1, 3 * H, H), np.float32), "R")
    nodes = [
        helper.make_node("GRU", ["X", "W", "R"], [f"Y{i}", f"Y_h{i}"], hidden_size=H)
        for i in range(2)
    ]
    graph = helper.make_graph(
        [*nodes, helper.make_node("Concat", ["Y0", "Y1"], ["Y"], axis=-1)],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "B", I])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        [W, R],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(tmp_path / "side.onnx"))
    with pytest.raises(
        ValueError,
        match=r"load_onnx: '.*side\.onnx': holds 2 GRU nodes and node 1 does not read the output of node 0; only a stack of GRU layers converts",
    ):
        load_onnx(tmp_path / "side.onnx")


def test_load_onnx_reads_a_foreign_default_gru_node(tmp_path):
    path = graph_with({"activations": ["Sigmoid", "Tanh"]}, tmp_path=tmp_path)
    ours = load_onnx(path)
    assert (ours.bias, ours.reset_after, ours.batch_first) == (False, False, False)
    x = np.random.default_rng(1).normal(size=(T, B, I)).astype(np.float32)
    (y,) = session(path).run(["Y"], {"X": x})  # (T, 1, B, H)
    with torch.no_grad():
        assert_close(ours(torch.from_numpy(x))[0], y[:, 0], what="foreign GRU node")


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        (
            {"clip": 3.0},
            r"GRU node 'Y' sets clip=3\.0, which gru\.GRU does not compute; refusing to convert approximately",
        ),
        (
            {"activations": ["HardSigmoid", "Tanh"]},
            r"GRU node 'Y' has activations=\['HardSigmoid', 'Tanh'\]; gru\.GRU computes only \['Sigmoid', 'Tanh'\]",
        ),
        ({"direction": "reverse"}, r"GRU node 'Y' has direction='reverse'"),
    ],
)
def test_load_onnx_refuses_what_it_cannot_compute(attrs, message, tmp_path):
    path = graph_with(attrs, tmp_path=tmp_path)
    with pytest.raises(ValueError, match=r"load_onnx: '.*custom\.onnx': " + message):
        load_onnx(path)


def test_bad_onnx_files_and_arguments(tmp_path):
    path = graph_with({}, with_gru=False, tmp_path=tmp_path, name="relu.onnx")
    with pytest.raises(
        ValueError, match=r"load_onnx: '.*relu\.onnx': has no GRU node \(its operators: Relu\)"
    ):
        load_onnx(path)
    (tmp_path / "text.onnx").write_text("this is not protobuf at all")
    with pytest.raises(ValueError, match=r"load_onnx: '.*text\.onnx': is not an ONNX model"):
        load_onnx(tmp_path / "text.onnx")
    with pytest.raises(FileNotFoundError, match=r"load_onnx: no such file '.*none\.onnx'"):
        load_onnx(tmp_path / "none.onnx")

    dest = tmp_path / "out.onnx"
    with pytest.raises(
        ValueError, match=r"export_onnx: opset must be an int in \[13, \d+\], got 7"
    ):
        export_onnx(gru.GRU(I, H), dest, opset=7)
    with pytest.raises(
        ValueError,
        match=r"export_onnx: ONNX Runtime's GRU computes in float32 and the layer is torch\.float64; export module\.float\(\)",
    ):
        export_onnx(gru.GRU(I, H, dtype=torch.float64), dest)
    with pytest.raises(
        TypeError, match=r"export_onnx: module must be a gru\.GRU or a KerasModel, got GRU"
    ):
        export_onnx(torch.nn.GRU(I, H), dest)
    assert not dest.exists()
    assert sorted(os.listdir(tmp_path)) == ["relu.onnx", "text.onnx"]  # nothing half-written


class LinearOnGRU(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = torch.nn.GRU(I, H, batch_first=True)
        self.fc = torch.nn.Linear(H, 1)

    def forward(self, x):
        return self.fc(self.rnn(x)[0])


def test_torch_exports_read_as_their_gru_or_refused_for_what_else_they_compute(tmp_path):
    # The TorchScript exporter (fast; the dynamo one gives the same verdicts) computes the zero
    # initial state from the input's shape: Shape, Gather, Expand that are not on the data's way.
    torch.manual_seed(3)
    theirs = torch.nn.GRU(I, H, 2, batch_first=True).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(theirs, (torch.randn(B, T, I),), tmp_path / "gru.onnx", dynamo=False)
        torch.onnx.export(LinearOnGRU().eval(), (torch.randn(B, T, I),), tmp_path / "fc.onnx", dynamo=False)  # fmt: skip
    ops = {node.op_type for node in onnx.load(str(tmp_path / "gru.onnx")).graph.node}
    assert {"Shape", "Gather", "Expand"} <= ops
    ours = load_onnx(tmp_path / "gru.onnx")
    assert ours.extra_repr() == "4, 5, num_layers=2, batch_first=True"
    for (name, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters(), strict=True):
        assert torch.equal(p, q), name
    with pytest.raises(
        ValueError,
        match=r"load_onnx: '.*fc\.onnx': computes more than GRU layers \(MatMul '/fc/MatMul', Add '/fc/Add': 2 nodes\), which reading it as a gru\.GRU would drop",
    ):
        load_onnx(tmp_path / "fc.onnx")
