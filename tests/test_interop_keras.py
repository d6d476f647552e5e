"""gru.interop.keras against Keras 3 itself (torch backend): layers, objects and whole models.

Reading and writing the files themselves is tested in test_interop_keras_files.py, the refused
settings in test_interop_keras_config.py; the helpers here serve both."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras on torch: no TensorFlow needed

import keras
import numpy as np
import pytest
import torch

import gru
from checks import assert_close
from gru.interop.keras import (
    GoBackwards,
    KerasModel,
    from_keras,
    keras_to_packed,
    load_model,
    to_keras_weights,
)
from gru.interop.onnx import export_onnx

# Keras 3.15's Variable.numpy() calls np.array(self) on a torch-backed variable whose __array__
# has no copy= keyword; NumPy 2 warns. The warning is Keras' own, about its internals.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

B, T, I, H = 3, 6, 4, 5
STRUCTURES = ["gru", "go_backwards", "bidirectional", "stacked", "stacked_bidirectional"]


def randomize(model, seed=0):
    """Replace every weight of a Keras layer or model by N(0, 0.5²) draws (non-zero biases)."""
    rng = np.random.default_rng(seed)
    model.set_weights(
        [(0.5 * rng.normal(size=w.shape)).astype(w.dtype) for w in model.get_weights()]
    )


def keras_model(structure, reset_after, use_bias):
    """A Keras Sequential model of GRU layers returning sequences, with random weights."""

    def layer(**kw):
        return keras.layers.GRU(
            H, reset_after=reset_after, use_bias=use_bias, return_sequences=True, **kw
        )

    layers = {
        "gru": lambda: [layer()],
        "go_backwards": lambda: [layer(go_backwards=True)],
        "bidirectional": lambda: [keras.layers.Bidirectional(layer())],
        "stacked": lambda: [layer(), layer()],
        "stacked_bidirectional": lambda: [
            keras.layers.Bidirectional(layer()),
            keras.layers.Bidirectional(layer()),
        ],
    }[structure]()
    model = keras.Sequential([keras.Input((None, I)), *layers])
    randomize(model)
    return model


def keras_output(model, x: np.ndarray) -> np.ndarray:
    return keras.ops.convert_to_numpy(model(x))


def our_output(module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(x))[0].numpy()


def inner(module):
    return module.gru if isinstance(module, GoBackwards) else module


def assert_same_parameters(a, b):
    a, b = inner(a), inner(b)
    assert a.extra_repr() == b.extra_repr()
    for (name, p), (name_b, q) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert name == name_b and torch.equal(p, q), name


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(1).normal(size=(B, T, I)).astype(np.float32)


@pytest.mark.parametrize("structure", STRUCTURES)
@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("reset_after", [True, False])
def test_keras_layers_objects_and_files_convert_exactly(
    structure, use_bias, reset_after, x, tmp_path
):
    model = keras_model(structure, reset_after, use_bias)
    expected = keras_output(model, x)
    source = model if structure.startswith("stacked") else model.layers[0]
    ours = from_keras(source)
    assert isinstance(ours, GoBackwards) == (structure == "go_backwards")
    g = inner(ours)
    assert (g.num_layers, g.bidirectional, g.bias, g.reset_after, g.batch_first) == (
        2 if structure.startswith("stacked") else 1,
        "bidirectional" in structure,
        use_bias,
        reset_after,
        True,
    )
    assert_close(our_output(ours, x), expected, what=f"{structure} output")

    # The same layer from a .keras archive, and from a .weights.h5 file (weights only: the
    # convention comes from the bias shape, or from reset_after= without a bias).
    model.save(tmp_path / "model.keras")
    assert_same_parameters(from_keras(tmp_path / "model.keras"), ours)
    model.save_weights(tmp_path / "model.weights.h5")
    hint = None if use_bias else reset_after
    from_weights = from_keras(str(tmp_path / "model.weights.h5"), reset_after=hint)
    assert_same_parameters(from_weights, ours)  # go_backwards is not in a weights file

    # The reverse: our weights into a fresh Keras model give our outputs.
    fresh = keras_model(structure, reset_after, use_bias)
    randomize(fresh, seed=7)
    fresh.set_weights(to_keras_weights(ours))
    assert_close(keras_output(fresh, x), expected, what="to_keras_weights")


@pytest.mark.parametrize("reset_after", [True, False])
def test_weight_lists_need_the_convention_and_match_the_layer(reset_after, x):
    model = keras_model("bidirectional", reset_after, True)
    layer = model.layers[0]
    ours = from_keras(layer.get_weights(), reset_after=reset_after)
    assert_same_parameters(ours, from_keras(layer))
    single = keras_model("gru", reset_after, True).layers[0]
    assert_same_parameters(
        from_keras(single.get_weights(), reset_after=reset_after), from_keras(single)
    )
    with pytest.raises(
        ValueError,
        match=r"from_keras: a list of weights does not say which convention it follows; pass reset_after=",
    ):
        from_keras(layer.get_weights())
    with pytest.raises(
        ValueError,
        match=rf"bias must have shape .* for reset_after={not reset_after} .*belongs to reset_after={reset_after}",
    ):
        from_keras(single.get_weights(), reset_after=not reset_after)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"reset_after": False},
        {"bias": False, "num_layers": 2},
        {"bidirectional": True, "num_layers": 2, "reset_after": False},
        {"dtype": torch.float64},
    ],
)
def test_ours_to_keras_and_back_is_exact(kw):
    torch.manual_seed(0)
    ours = gru.GRU(I, H, batch_first=True, **kw)
    if ours.bias and not ours.reset_after:
        for name, p in ours.named_parameters():  # Keras keeps one bias, b_ih + b_hh
            if name.startswith("bias_hh"):
                p.data.zero_()
    weights = to_keras_weights(ours)
    D = 2 if ours.bidirectional else 1
    per_layer = len(weights) // ours.num_layers
    layers = []
    for layer in range(ours.num_layers):
        chunk = weights[layer * per_layer : (layer + 1) * per_layer]
        layers.append(inner(from_keras(chunk, reset_after=ours.reset_after)))
        assert layers[-1].bidirectional == (D == 2)
    for layer, back in enumerate(layers):
        for name, p in back.named_parameters():
            original = getattr(ours, name.replace("_l0", f"_l{layer}"))
            assert torch.equal(p, original), name
            assert p.dtype == original.dtype


def test_reset_before_biases_sum_into_keras_one_bias():
    torch.manual_seed(0)
    ours = gru.GRU(I, H, batch_first=True, reset_after=False)
    kernel, recurrent, bias = to_keras_weights(ours)
    assert bias.shape == (3 * H,)
    total = (ours.bias_ih_l0 + ours.bias_hh_l0).detach().numpy()
    back = keras_to_packed(kernel, recurrent, bias, reset_after=False)
    np.testing.assert_array_equal(back[2], total)
    np.testing.assert_array_equal(back[3], np.zeros(3 * H, np.float32))
    x = torch.randn(B, T, I)
    again = from_keras([kernel, recurrent, bias], reset_after=False)
    assert_close(again(x)[0], ours(x)[0], what="same layer with one bias")


def test_to_keras_weights_of_go_backwards_into_a_keras_layer(x):
    model = keras_model("go_backwards", True, True)
    ours = from_keras(model.layers[0])
    fresh = keras_model("go_backwards", True, True)
    fresh.set_weights(to_keras_weights(ours))
    assert_close(keras_output(fresh, x), our_output(ours, x), what="go_backwards")


# --- several layers, bad layers ------------------------------------------------------------


def test_layer_picks_one_of_several_and_non_stacks_are_refused(x, tmp_path):
    inputs = keras.Input((None, I))
    a = keras.layers.GRU(H, return_sequences=True, name="first")(inputs)
    b = keras.layers.GRU(H + 1, name="second")(a)  # other units: not one gru.GRU stack
    out = keras.layers.Dense(2, name="head")(b)
    model = keras.Model(inputs, out)
    randomize(model)
    model.save(tmp_path / "two.keras")
    with pytest.raises(
        ValueError,
        match=r"from_keras: '.*two\.keras': holds 2 GRU layers \('first', 'second'\) that are not one stack \('second' has hidden_size=6 but 'first' has hidden_size=5\); pick one with layer=NAME",
    ):
        from_keras(tmp_path / "two.keras")
    second = from_keras(tmp_path / "two.keras", layer="second")
    assert second.hidden_size == H + 1
    assert_same_parameters(second, from_keras(model.get_layer("second")))
    with pytest.raises(
        ValueError, match=r"no layer named 'third'; the layers are 'first', 'second', 'head'"
    ):
        from_keras(tmp_path / "two.keras", layer="third")
    with pytest.raises(
        ValueError, match=r"layer 'head' is a Dense, not a GRU or Bidirectional\(GRU\)"
    ):
        from_keras(tmp_path / "two.keras", layer="head")


# --- whole models -----------------------------------------------------------------------------


def test_imdb_model_loads_with_identical_predictions(tmp_path):
    # The seeds' sentiment model: Embedding -> GRU -> Dense(1, sigmoid) on padded word ids.
    vocab, T_imdb = 200, 40
    model = keras.Sequential(
        [
            keras.Input((T_imdb,), dtype="int32"),
            keras.layers.Embedding(vocab, 16),
            keras.layers.GRU(H),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    randomize(model)
    tokens = np.random.default_rng(2).integers(0, vocab, size=(8, T_imdb))
    expected = keras.ops.convert_to_numpy(model(tokens.astype("int32")))
    model.save(tmp_path / "imdb.keras")
    ours = load_model(tmp_path / "imdb.keras")
    assert isinstance(ours, KerasModel) and not ours.training
    assert [type(m).__name__ for m in ours] == ["Embedding", "Recurrent", "Linear", "Sigmoid"]
    with torch.no_grad():
        actual = ours(torch.from_numpy(tokens)).numpy()
    assert_close(actual, expected, what="IMDB predictions")

    # And on to ONNX Runtime: the same predictions from the exported graph.
    import onnxruntime as ort

    export_onnx(ours, tmp_path / "imdb.onnx")
    session = ort.InferenceSession(str(tmp_path / "imdb.onnx"), providers=["CPUExecutionProvider"])
    (from_onnx,) = session.run(["output"], {"input": tokens})
    assert_close(from_onnx, expected, what="IMDB predictions through ONNX")


def test_masked_padding_anywhere_matches_keras(tmp_path):
    # Embedding(mask_zero=True): Keras skips token 0 wherever it stands.
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(30, I, mask_zero=True),
            keras.layers.Bidirectional(keras.layers.GRU(H, return_sequences=True)),
            keras.layers.Dense(6, activation="tanh"),
            keras.layers.GRU(H, reset_after=False),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    randomize(model)
    tokens = np.random.default_rng(5).integers(1, 30, size=(5, 8))
    tokens[0, :3] = 0  # pre-padding, as keras.utils.pad_sequences writes by default
    tokens[1, 5:] = 0  # post-padding
    tokens[2, [1, 4, 6]] = 0  # padding in the middle
    tokens[3] = 0  # padding only
    expected = keras.ops.convert_to_numpy(model(tokens.astype("int32")))
    model.save(tmp_path / "masked.keras")
    ours = load_model(tmp_path / "masked.keras")
    assert ours.mask_zero
    with torch.no_grad():
        assert_close(ours(torch.from_numpy(tokens)), expected, what="masked model")
    with pytest.raises(ValueError, match=r"export_onnx: this KerasModel masks token 0"):
        export_onnx(ours, tmp_path / "masked.onnx")


def test_functional_chain_with_every_supported_layer(tmp_path):
    tokens = keras.Input((None,), dtype="int32")
    h = keras.layers.Embedding(50, 6)(tokens)
    h = keras.layers.Bidirectional(keras.layers.GRU(H, return_sequences=True, reset_after=False))(h)
    h = keras.layers.Dropout(0.3)(h)
    h = keras.layers.GRU(H, go_backwards=True, return_sequences=True, use_bias=False)(h)
    h = keras.layers.Dense(7, activation="relu")(h)
    h = keras.layers.Dense(3, activation="tanh")(h)
    h = keras.layers.GRU(H)(h)
    out = keras.layers.Dense(4, activation="softmax", use_bias=False)(h)
    model = keras.Model(tokens, out)
    randomize(model)
    ids = np.random.default_rng(3).integers(0, 50, size=(B, 9))
    expected = keras.ops.convert_to_numpy(model(ids.astype("int32")))
    model.save(tmp_path / "chain.keras")
    ours = load_model(str(tmp_path / "chain.keras"))
    with torch.no_grad():
        assert_close(ours(torch.from_numpy(ids)), expected, what="functional chain")


def test_load_model_refuses_what_it_cannot_convert(tmp_path):
    model = keras.Sequential([keras.Input((None, I)), keras.layers.LSTM(H, name="memory")])
    model.save(tmp_path / "lstm.keras")
    with pytest.raises(
        ValueError,
        match=r"load_model: '.*lstm\.keras': layer 'memory' is a LSTM, which load_model does not convert",
    ):
        load_model(tmp_path / "lstm.keras")
    masked = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(9, 3, mask_zero=True),
            keras.layers.GRU(H, return_sequences=True),
        ]
    )
    masked.save(tmp_path / "masked.keras")
    with pytest.raises(
        ValueError, match=r"the mask of Embedding mask_zero=True reaches the model's output"
    ):
        load_model(tmp_path / "masked.keras")
    backwards = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(9, 3, mask_zero=True),
            keras.layers.GRU(H, go_backwards=True, name="back"),
        ]
    )
    backwards.save(tmp_path / "backwards.keras")
    with pytest.raises(
        ValueError,
        match=r"layer 'back' has go_backwards=True after an Embedding with mask_zero=True",
    ):
        load_model(tmp_path / "backwards.keras")
    dense = keras.Sequential(
        [
            keras.Input((None, I)),
            keras.layers.GRU(H),
            keras.layers.Dense(2, activation="gelu", name="d"),
        ]
    )
    dense.save(tmp_path / "gelu.keras")
    with pytest.raises(ValueError, match=r"layer 'd': Dense activation='gelu' is not supported"):
        load_model(tmp_path / "gelu.keras")
    keras_model("gru", True, True).save_weights(tmp_path / "w.weights.h5")
    with pytest.raises(ValueError, match=r"load_model: '.*w\.weights\.h5': holds weights only"):
        load_model(tmp_path / "w.weights.h5")
