"""gru.interop.keras_files against Keras 3 itself (torch backend): the files Keras reads and
writes, Keras 2 .h5 files built by hand, and files that are not what they claim."""

import json
import os
import zipfile

os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras on torch: no TensorFlow needed

import h5py
import keras
import numpy as np
import pytest
import torch

import gru
import test_interop_keras
from checks import assert_close
from gru.interop.keras import from_keras, load_model, save_keras
from test_interop_keras import (
    B,
    H,
    I,
    T,
    assert_same_parameters,
    keras_model,
    keras_output,
    our_output,
    randomize,
)

pytestmark = test_interop_keras.pytestmark  # Keras' own NumPy 2 warning, as there


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(1).normal(size=(B, T, I)).astype(np.float32)


# --- files we write ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw", [{}, {"reset_after": False, "bias": False}, {"num_layers": 2, "bidirectional": True}]
)
def test_save_keras_writes_files_keras_loads(kw, x, tmp_path):
    torch.manual_seed(0)
    ours = gru.GRU(I, H, batch_first=True, **kw)
    save_keras(ours, tmp_path / "ours.keras")
    theirs = keras.saving.load_model(tmp_path / "ours.keras")
    assert_close(keras_output(theirs, x), our_output(ours, x), what="Keras loads our .keras")
    assert_same_parameters(from_keras(tmp_path / "ours.keras"), ours)
    save_keras(ours, tmp_path / "ours.weights.h5")
    randomize(theirs, seed=5)
    theirs.load_weights(tmp_path / "ours.weights.h5")
    assert_close(keras_output(theirs, x), our_output(ours, x), what="Keras loads our .weights.h5")


# --- Keras 2 .h5 files, built by hand ---------------------------------------------------------
# Keras 3 cannot write them. These follow the documented Keras 2 HDF5 layout: the root
# attribute model_config (JSON), a model_weights group whose layer_names attribute lists the
# layers, and per layer a weight_names attribute naming datasets below the layer's group.


def write_legacy(path, layers, *, config=True):
    """layers: [(name, class_name, layer_config, [(weight_name, array)])]."""
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.15.0"
        f.attrs["backend"] = b"tensorflow"
        if config:
            model_config = {
                "class_name": "Sequential",
                "config": {
                    "name": "sequential",
                    "layers": [
                        {"class_name": c, "config": {"name": n, **cfg}} for n, c, cfg, _ in layers
                    ],
                },
            }
            f.attrs["model_config"] = json.dumps(model_config).encode()
            root = f.create_group("model_weights")
        else:
            root = f
        root.attrs["layer_names"] = [n.encode() for n, *_ in layers]
        for name, _, _, weights in layers:
            group = root.create_group(name)
            group.attrs["weight_names"] = [w.encode() for w, _ in weights]
            for weight_name, array in weights:
                group.create_dataset(weight_name, data=array)


def legacy_gru(name, layer, cell="gru_cell"):
    names = ["kernel:0", "recurrent_kernel:0", "bias:0"]
    return [(f"{name}/{cell}/{n}", w) for n, w in zip(names, layer.get_weights(), strict=False)]


@pytest.mark.parametrize("reset_after", [True, False])
def test_keras2_h5_model_and_weights_files(reset_after, tmp_path):
    tokens = np.random.default_rng(4).integers(0, 30, size=(B, T))
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(30, I),
            keras.layers.Bidirectional(keras.layers.GRU(H, reset_after=reset_after)),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    randomize(model)
    emb, bi, dense = model.layers
    forward, backward = bi.forward_layer, bi.backward_layer
    gru_config = {
        "units": H,
        "activation": "tanh",
        "recurrent_activation": "sigmoid",
        "use_bias": True,
        "reset_after": reset_after,
        "return_sequences": False,
    }
    layers = [
        (
            "embedding",
            "Embedding",
            {"input_dim": 30, "output_dim": I},
            [("embedding/embeddings:0", emb.get_weights()[0])],
        ),
        (
            "bidirectional",
            "Bidirectional",
            {
                "merge_mode": "concat",
                "layer": {"class_name": "GRU", "config": {"name": "gru", **gru_config}},
            },
            legacy_gru("bidirectional/forward_gru", forward)
            + legacy_gru("bidirectional/backward_gru", backward),
        ),
        (
            "dense",
            "Dense",
            {"units": 1, "activation": "sigmoid", "use_bias": True},
            [("dense/kernel:0", dense.get_weights()[0]), ("dense/bias:0", dense.get_weights()[1])],
        ),
    ]
    write_legacy(tmp_path / "model.h5", layers)
    ours = load_model(tmp_path / "model.h5")
    expected = keras.ops.convert_to_numpy(model(tokens.astype("int32")))
    with torch.no_grad():
        assert_close(ours(torch.from_numpy(tokens)), expected, what="Keras 2 model")
    assert_same_parameters(from_keras(tmp_path / "model.h5"), from_keras(bi))

    write_legacy(tmp_path / "weights.h5", layers, config=False)
    assert_same_parameters(from_keras(tmp_path / "weights.h5"), from_keras(bi))


# --- bad files ------------------------------------------------------------------------------


def test_bad_files_are_named_with_what_is_wrong(tmp_path):
    (tmp_path / "text.keras").write_text("not a zip")
    with pytest.raises(
        ValueError,
        match=r"from_keras: '.*text\.keras': is not a \.keras archive \(not a zip file\)",
    ):
        from_keras(tmp_path / "text.keras")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match=r"from_keras: '.*text\.h5': is not an HDF5 file"):
        from_keras(tmp_path / "text.h5")
    with pytest.raises(FileNotFoundError, match=r"from_keras: no such file '.*missing\.keras'"):
        from_keras(tmp_path / "missing.keras")
    with pytest.raises(
        ValueError,
        match=r"is not a Keras file; expected a name ending in \.keras, \.weights\.h5 or \.h5",
    ):
        (tmp_path / "model.pt").write_bytes(b"")
        from_keras(tmp_path / "model.pt")

    with zipfile.ZipFile(tmp_path / "empty.keras", "w") as archive:
        archive.writestr("config.json", "{}")
    with pytest.raises(
        ValueError,
        match=r"'.*empty\.keras': the \.keras archive has no model\.weights\.h5 \(it holds \['config\.json'\]\)",
    ):
        from_keras(tmp_path / "empty.keras")

    dense = np.ones((3, 2), np.float32)
    write_legacy(
        tmp_path / "dense.h5", [("dense", "Dense", {"units": 2}, [("dense/kernel:0", dense)])]
    )
    with pytest.raises(
        ValueError,
        match=r"from_keras: '.*dense\.h5': holds no GRU weights \(layers: 'dense' \(Dense\)\)",
    ):
        from_keras(tmp_path / "dense.h5")

    layer = keras_model("gru", True, True).layers[0]
    kernel, recurrent, bias = layer.get_weights()
    broken = [
        ("gru/gru_cell/kernel:0", kernel[:, :6]),
        ("gru/gru_cell/recurrent_kernel:0", recurrent),
        ("gru/gru_cell/bias:0", bias),
    ]
    write_legacy(tmp_path / "broken.h5", [("gru", "GRU", {"units": H}, broken)])
    with pytest.raises(
        ValueError,
        match=r"from_keras: '.*broken\.h5': layer 'gru': kernel must have shape \(I, 3H\) = \(I, 15\) to fit recurrent_kernel \(5, 15\), got \(4, 6\)",
    ):
        from_keras(tmp_path / "broken.h5")

    no_bias = keras_model("gru", True, False)
    no_bias.save_weights(tmp_path / "nobias.weights.h5")
    with pytest.raises(
        ValueError,
        match=r"the convention cannot be read from weights without a bias and no configuration; pass reset_after=True or False",
    ):
        from_keras(tmp_path / "nobias.weights.h5")
    with pytest.raises(
        TypeError,
        match=r"from_keras: source must be a Keras GRU, Bidirectional or model object, .*got int",
    ):
        from_keras(3)


def rewritten(path, tmp_path, name: str, config: str, weights: bytes | None = None):
    """A copy of the .keras archive ``path`` as ``name`` with another config.json (and
    model.weights.h5)."""
    with zipfile.ZipFile(path) as archive:
        weights = archive.read("model.weights.h5") if weights is None else weights
    with zipfile.ZipFile(tmp_path / name, "w") as archive:
        archive.writestr("config.json", config)
        archive.writestr("model.weights.h5", weights)
    return tmp_path / name


def test_a_configuration_that_is_not_a_model_is_refused_naming_the_file(tmp_path, capsys):
    from gru.cli import main

    save_keras(gru.GRU(I, H, batch_first=True), tmp_path / "good.keras")
    with zipfile.ZipFile(tmp_path / "good.keras") as archive:
        config = json.loads(archive.read("config.json"))
    layers = config["config"]["layers"]
    cases = {
        "[1, 2]": r"its config\.json must be a JSON object \(a Keras model's configuration\), got list",
        "{": r"its config\.json is not JSON",
        json.dumps({**config, "config": "x"}): r"its model configuration or weights are not laid out as Keras writes them \(AttributeError",
        json.dumps({**config, "config": {"layers": [1, 2]}}): r"not laid out as Keras writes them",
        json.dumps({**config, "config": {"layers": [layers[0], {**layers[1], "config": [1]}]}}): r"not laid out as Keras writes them",
        json.dumps(config).replace(f'"units": {H}', '"units": "five"'): r"invalid literal for int\(\)",
    }  # fmt: skip
    for i, (text, message) in enumerate(cases.items()):
        path = rewritten(tmp_path / "good.keras", tmp_path, f"bad{i}.keras", text)
        for read in (from_keras, load_model):
            with pytest.raises(
                ValueError, match=rf"{read.__name__}: '.*bad{i}\.keras': .*{message}"
            ):
                read(path)
        assert main(["convert", str(path), str(tmp_path / f"out{i}.onnx")]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"gru: error: read: '{path}': ") and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.glob("out*")) == []


def test_a_zip_bomb_is_refused_before_it_is_inflated(tmp_path):
    import tracemalloc

    save_keras(gru.GRU(I, H, batch_first=True), tmp_path / "good.keras")
    with zipfile.ZipFile(tmp_path / "good.keras") as archive:
        config = archive.read("config.json")
    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", config)
        with archive.open("model.weights.h5", "w") as member:
            for _ in range(100):
                member.write(bytes(1 << 20))  # 100 MiB of zeros, about 100 KB packed
    assert bomb.stat().st_size < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"from_keras: '.*bomb\.keras': its member 'model\.weights\.h5' would inflate [\d,]+ bytes to 104,857,600 \([\d,]+ times, more than 100\): refused as a zip bomb; nothing of it was read"):  # fmt: skip
            from_keras(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak  # not one inflated megabyte held
    big = rewritten(bomb, tmp_path, "big_config.keras", " " * (65 << 20), b"")
    with pytest.raises(ValueError, match=r"its member 'config\.json' declares 68,157,440 bytes, more than the 67,108,864 such a member may hold"):  # fmt: skip
        from_keras(big)
