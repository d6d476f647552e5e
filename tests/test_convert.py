"""gru.interop.convert and `gru convert`: any supported file to any other, exactly, atomically."""

import itertools
import json
import os
import re
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras on torch, for the whole-model tests

import h5py
import numpy as np
import onnxruntime as ort
import pytest
import torch

import gru
from checks import assert_close
from gru._extras import MissingExtra
from gru.cli import main
from gru.interop.convert import convert, load_safetensors, read, save_safetensors, write
from gru.interop.keras import from_keras, load_model
from gru.interop.onnx import export_onnx, load_onnx

T, B, I, H = 6, 2, 3, 4


def same_layer(a, b):
    assert a.extra_repr() == b.extra_repr()
    for (name, p), (name_b, q) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert name == name_b and torch.equal(p, q), name


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"num_layers": 2, "bidirectional": True, "batch_first": True},
        {"reset_after": False, "bias": False},
        {"dtype": torch.float64, "reset_after": False},
    ],
)
def test_safetensors_round_trip_is_exact(kw, tmp_path):
    torch.manual_seed(0)
    ours = gru.GRU(I, H, **kw)
    save_safetensors(ours, tmp_path / "gru.safetensors")
    back = load_safetensors(tmp_path / "gru.safetensors")
    same_layer(back, ours)
    assert back.weight_ih_l0.dtype == ours.weight_ih_l0.dtype


@pytest.mark.parametrize("reset_after", [True, False])
def test_a_chain_through_every_format_is_exact(reset_after, tmp_path, capsys):
    torch.manual_seed(1)
    ours = gru.GRU(I, H, 2, batch_first=True, bidirectional=True, reset_after=reset_after)
    if not reset_after:  # Keras keeps one bias (b_ih + b_hh); give the layer that form
        for name, p in ours.named_parameters():
            if name.startswith("bias_hh"):
                p.data.zero_()
    save_safetensors(ours, tmp_path / "a.safetensors")
    chain = ["a.safetensors", "b.onnx", "c.keras", "d.weights.h5", "e.safetensors"]
    for source, dest in itertools.pairwise(chain):
        assert main(["convert", str(tmp_path / source), str(tmp_path / dest)]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"converted {tmp_path / source} (") and str(tmp_path / dest) in out
        assert "gru.GRU(3, 4, num_layers=2" in out
    same_layer(read(tmp_path / "e.safetensors"), ours)

    x = torch.randn(B, T, I)
    session = ort.InferenceSession(str(tmp_path / "b.onnx"), providers=["CPUExecutionProvider"])
    (output,) = session.run(["output"], {"input": x.numpy()})
    with torch.no_grad():
        assert_close(output, ours(x)[0], what="ONNX written by gru convert")


def test_torch_state_dict_in_and_out(tmp_path, capsys):
    torch.manual_seed(2)
    theirs = torch.nn.GRU(I, H, 2, bidirectional=True)
    torch.save(theirs.state_dict(), tmp_path / "theirs.pt")
    assert main(["convert", str(tmp_path / "theirs.pt"), str(tmp_path / "ours.onnx")]) == 0
    assert "(PyTorch state dict) to" in capsys.readouterr().out
    x = torch.randn(T, B, I)
    session = ort.InferenceSession(str(tmp_path / "ours.onnx"), providers=["CPUExecutionProvider"])
    (output,) = session.run(["output"], {"input": x.numpy()})
    with torch.no_grad():
        assert_close(output, theirs(x)[0], what="torch.nn.GRU through gru convert")
    convert(tmp_path / "ours.onnx", tmp_path / "back.pt")
    state = torch.load(tmp_path / "back.pt", weights_only=True)
    assert state.keys() == theirs.state_dict().keys()
    for key, value in theirs.state_dict().items():
        assert torch.equal(state[key], value), key


def test_go_backwards_stays_in_keras_files(tmp_path):
    from gru.interop.modules import GoBackwards

    module = GoBackwards(gru.GRU(I, H, batch_first=True))
    write(module, tmp_path / "back.keras")
    again = read(tmp_path / "back.keras")
    assert isinstance(again, GoBackwards)
    with pytest.raises(
        ValueError,
        match=r"write: '.*x\.onnx': this is a Keras GRU with go_backwards=True, which only a Keras file represents",
    ):
        convert(tmp_path / "back.keras", tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


class Payload:
    """Unpickled, runs ``code``: what a hostile .pt holds in place of a state dict."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):
        return (exec, (self.code,))


def test_bad_sources_are_named_and_nothing_is_written(tmp_path, capsys):
    dest = tmp_path / "dest.onnx"
    dest.write_bytes(b"precious")

    # A state dict whose weight runs code when unpickled: it would write the marker file.
    marker = tmp_path / "code-ran"
    payload = Payload(f"import pathlib; pathlib.Path({str(marker)!r}).write_text('ran')")
    torch.save({"weight_ih_l0": payload, "weight_hh_l0": payload}, tmp_path / "pickled.pt")
    torch.save(torch.nn.Linear(2, 2).state_dict(), tmp_path / "linear.pt")
    (tmp_path / "fake.onnx").write_bytes(b"\x00\x01not onnx")
    (tmp_path / "fake.pt").write_text("just text")
    (tmp_path / "fake.safetensors").write_text("just text")
    save_safetensors(gru.GRU(I, H), tmp_path / "named_wrong.onnx")
    cases = [
        (
            "pickled.pt",
            r"'.*pickled\.pt': cannot be loaded with weights_only=True, so it needs pickle to run code from the file, which gru refuses",
        ),
        (
            "linear.pt",
            r"'.*linear\.pt': is not the state dict of a torch\.nn\.GRU \(no weight_ih_l0 / weight_hh_l0; keys \['bias', 'weight'\]\)",
        ),
        ("fake.pt", r"'.*fake\.pt': is not a PyTorch file \(torch\.save writes a zip archive\)"),
        ("fake.onnx", r"load_onnx: '.*fake\.onnx': is not an ONNX model"),
        ("named_wrong.onnx", r"load_onnx: '.*named_wrong\.onnx': is not an ONNX model"),
        ("fake.safetensors", r"load_safetensors: '.*fake\.safetensors': is not a safetensors file"),
        (
            "model.txt",
            r"read: '.*model\.txt' has no known extension; expected one of \.keras, \.weights\.h5, \.h5, \.onnx, \.safetensors, \.pt",
        ),
    ]
    for source, message in cases:  # even where dest may be replaced, a bad source keeps it
        with pytest.raises(ValueError, match=message):
            convert(tmp_path / source, dest, overwrite=True)
        assert dest.read_bytes() == b"precious"
    with pytest.raises(FileNotFoundError, match=r"read: no such file '.*absent\.pt'"):
        convert(tmp_path / "absent.pt", dest, overwrite=True)

    # The command line reports the same errors with exit code 2.
    assert main(["convert", str(tmp_path / "pickled.pt"), str(dest), "--overwrite"]) == 2
    assert "gru: error: read: " in capsys.readouterr().err
    assert dest.read_bytes() == b"precious"
    leftovers = [n for n in os.listdir(tmp_path) if n.startswith(".")]
    assert leftovers == []
    assert not marker.exists()  # nothing in the file ran
    torch.load(tmp_path / "pickled.pt", weights_only=False)  # what plain unpickling would do
    assert marker.read_text() == "ran"


def test_bad_destinations_are_refused_before_reading(tmp_path):
    with pytest.raises(
        ValueError,
        match=r"convert: '.*out\.h5': Keras 2 HDF5 files are read, not written; write one of \.keras, \.weights\.h5, \.onnx, \.safetensors, \.pt",
    ):
        convert(tmp_path / "absent.pt", tmp_path / "out.h5")
    with pytest.raises(ValueError, match=r"convert: '.*out\.bin' has no known extension"):
        convert(tmp_path / "absent.pt", tmp_path / "out.bin")
    with pytest.raises(
        ValueError,
        match=r"write: '.*cho\.pt': a \.pt state dict is read as a torch\.nn\.GRU, which computes only reset_after=True",
    ):
        write(gru.GRU(I, H, reset_after=False), tmp_path / "cho.pt")
    assert os.listdir(tmp_path) == []


def test_safetensors_without_our_metadata_is_refused(tmp_path):
    from safetensors.torch import save_file

    save_file({"weight_ih_l0": torch.zeros(3 * H, I)}, str(tmp_path / "bare.safetensors"))
    with pytest.raises(
        ValueError,
        match=r"'.*bare\.safetensors': its metadata lacks input_size, hidden_size, num_layers, bias, batch_first, bidirectional, reset_after; it was not written by gru",
    ):
        load_safetensors(tmp_path / "bare.safetensors")
    ours = gru.GRU(I, H)
    save_safetensors(ours, tmp_path / "ok.safetensors")
    np.testing.assert_array_equal(
        load_safetensors(tmp_path / "ok.safetensors").weight_hh_l0.detach().numpy(),
        ours.weight_hh_l0.detach().numpy(),
    )


def test_convert_never_writes_over_its_source_and_an_existing_file_only_when_asked(
    tmp_path, capsys
):
    source = tmp_path / "a.safetensors"
    save_safetensors(gru.GRU(I, H), source)
    original = source.read_bytes()
    (tmp_path / "link.safetensors").symlink_to(source)
    for dest in (source, tmp_path / "." / "a.safetensors", tmp_path / "link.safetensors"):
        for overwrite in (False, True):
            with pytest.raises(ValueError, match=r"convert: dest: '.*' is the source '.*a\.safetensors', which it would overwrite; a command never replaces its input"):  # fmt: skip
                convert(source, dest, overwrite=overwrite)
        assert main(["convert", str(source), str(dest), "--overwrite"]) == 2
        assert "gru: error: DEST: " in capsys.readouterr().err
    assert source.read_bytes() == original

    dest = tmp_path / "b.onnx"
    dest.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match=r"convert: dest: '.*b\.onnx' already exists; choose another name, or replace it with overwrite=True"):  # fmt: skip
        convert(source, dest)
    assert main(["convert", str(source), str(dest)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"gru: error: DEST: '{dest}' already exists; choose another name, or replace it with --overwrite"  # fmt: skip
    assert dest.read_bytes() == b"precious"
    assert main(["convert", str(source), str(dest), "--overwrite"]) == 0
    same_layer(read(dest), read(source))


def test_an_unwritable_destination_is_named_not_its_temporary_file(tmp_path, capsys):
    source = tmp_path / "a.safetensors"
    save_safetensors(gru.GRU(I, H), source)
    # No one can create a file in /proc, not even root: the write itself fails.
    assert main(["convert", str(source), "/proc/gru-test.onnx"]) == 2
    err = capsys.readouterr().err
    assert "'/proc/gru-test.onnx'" in err and ".tmp" not in err and "[Errno" not in err, err
    with pytest.raises(OSError, match=r"cannot write '/proc/gru-test\.onnx'") as error:
        write(gru.GRU(I, H), "/proc/gru-test.onnx")
    assert ".tmp" not in str(error.value)


def test_a_folder_is_not_a_file_to_read(tmp_path, capsys):
    (tmp_path / "model.onnx").mkdir()
    with pytest.raises(IsADirectoryError, match=r"read: '.*model\.onnx' is a folder; give the file to read"):  # fmt: skip
        convert(tmp_path / "model.onnx", tmp_path / "x.safetensors")
    assert main(["convert", str(tmp_path / "model.onnx"), str(tmp_path / "x.safetensors")]) == 2
    assert "is a folder; give the file to read" in capsys.readouterr().err


def test_a_pt_zip_bomb_is_refused_before_torch_reads_it(tmp_path):
    import zipfile

    path = tmp_path / "bomb.pt"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb/data.pkl", b"\0" * (64 << 20))  # 64 MiB of zeros: 64 KB packed
    assert path.stat().st_size < 100_000
    with pytest.raises(ValueError, match=r"read: '.*bomb\.pt': its member 'bomb/data\.pkl' would inflate \d[\d,]* bytes to 67,108,864 \([\d,]+ times, more than 100\): refused as a zip bomb"):  # fmt: skip
        convert(path, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


# --- a missing extra ----------------------------------------------------------------------

EXTRA_HINT = r"needs the 'onnx' extra: pip install 'gru\[onnx\]' \(import onnx failed: .+\)$"


def test_onnx_without_its_extra_names_the_extra_in_python_and_on_the_command_line(
    tmp_path, monkeypatch, capsys
):
    layer = gru.GRU(I, H)
    export_onnx(layer, tmp_path / "a.onnx")
    save_safetensors(layer, tmp_path / "a.safetensors")
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    cases = [
        (lambda: export_onnx(layer, tmp_path / "b.onnx"), r"^export_onnx: writing ONNX "),
        (lambda: write(layer, tmp_path / "b.onnx"), r"^export_onnx: writing ONNX "),
        (lambda: load_onnx(tmp_path / "a.onnx"), r"^load_onnx: reading ONNX "),
        (lambda: read(tmp_path / "a.onnx"), r"^load_onnx: reading ONNX "),
        (
            lambda: convert(tmp_path / "a.safetensors", tmp_path / "b.onnx"),
            r"^convert: writing '.*b\.onnx' \(ONNX\) ",
        ),
        (
            lambda: convert(tmp_path / "a.onnx", tmp_path / "b.safetensors"),
            r"^convert: reading '.*a\.onnx' \(ONNX\) ",
        ),
    ]
    for call, feature in cases:
        with pytest.raises(MissingExtra, match=feature + EXTRA_HINT) as error:
            call()
        assert isinstance(error.value, ModuleNotFoundError) and error.value.name == "onnx"
    for source, dest in (("a.safetensors", "b.onnx"), ("a.onnx", "b.safetensors")):
        assert main(["convert", str(tmp_path / source), str(tmp_path / dest)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("gru: error: convert: "), err
        assert err.rstrip().endswith("(import onnx failed: import of onnx halted; None in sys.modules)")  # fmt: skip
        assert "pip install 'gru[onnx]'" in err and "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == ["a.onnx", "a.safetensors"]


# --- every constructor setting through .pt and .safetensors -------------------------------

SETTINGS = [
    {"batch_first": True},
    {"hidden_size": 7},
    {"num_layers": 3},
    {"bidirectional": True},
    {"bias": False},
    {"reset_after": False},
    {"dropout": 0.25, "num_layers": 2},
    {"layer_norm": True},
    {"zoneout": 0.1},
    {"recurrent_dropout": 0.2},
    {"backend": "torch"},
    {"dtype": torch.float64},
    {"batch_first": True, "num_layers": 2, "bidirectional": True, "bias": False, "dropout": 0.5},
]
ATTRIBUTES = (
    "input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional",
    "reset_after", "layer_norm", "zoneout", "recurrent_dropout", "backend",
)  # fmt: skip


def same_settings(a, b):
    for key in ATTRIBUTES:
        assert getattr(a, key) == getattr(b, key), key
    same_layer(a, b)
    for (name, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert p.dtype == q.dtype and torch.equal(p, q), name


@pytest.mark.parametrize("kw", SETTINGS, ids=lambda kw: ",".join(map(str, kw.items())))
def test_every_setting_survives_pt_and_safetensors(kw, tmp_path):
    torch.manual_seed(3)
    ours = gru.GRU(I, kw.pop("hidden_size", H), **kw)
    save_safetensors(ours, tmp_path / "a.safetensors")
    same_settings(load_safetensors(tmp_path / "a.safetensors"), ours)
    if not ours.reset_after:  # a .pt is read by torch.nn.GRU: refused (tested above)
        return
    convert(tmp_path / "a.safetensors", tmp_path / "b.pt")
    convert(tmp_path / "b.pt", tmp_path / "c.safetensors")
    same_settings(read(tmp_path / "b.pt"), ours)
    same_settings(load_safetensors(tmp_path / "c.safetensors"), ours)
    state = torch.load(tmp_path / "b.pt", weights_only=True)
    if not ours.layer_norm:  # the settings ride in _metadata, where torch.nn.GRU reads past them
        D = dict(num_layers=ours.num_layers, bias=ours.bias, bidirectional=ours.bidirectional)
        theirs = torch.nn.GRU(I, ours.hidden_size, **D, dtype=ours.weight_ih_l0.dtype)
        theirs.load_state_dict(state)
        for key, value in ours.state_dict().items():
            assert torch.equal(theirs.state_dict()[key], value), key


def test_a_bare_state_dict_is_read_as_torch_builds_it(tmp_path):
    torch.manual_seed(4)
    theirs = torch.nn.GRU(I, H, 2, batch_first=True)  # a state dict cannot say batch_first
    torch.save(theirs.state_dict(), tmp_path / "theirs.pt")
    back = read(tmp_path / "theirs.pt")
    assert not back.batch_first and back.reset_after and back.num_layers == 2
    ours = gru.GRU(I, H, layer_norm=True)  # its parameters say layer_norm
    torch.save(ours.state_dict(), tmp_path / "ours.pt")
    same_settings(read(tmp_path / "ours.pt"), ours)


def test_recorded_settings_of_the_wrong_kind_are_refused(tmp_path):
    from safetensors.torch import save_file

    ours = gru.GRU(I, H)
    tensors = {k: v.detach() for k, v in ours.state_dict().items()}
    metadata = {k: json.dumps(getattr(ours, k)) for k in ATTRIBUTES}
    for key, value, message in [
        ("batch_first", "1", r"its recorded batch_first must be a bool, got 1"),
        ("dropout", '"a"', r"its recorded dropout must be a float, got 'a'"),
        ("backend", '"gpu"', r"records settings no gru\.GRU has \(GRU: backend must be one of"),
    ]:
        save_file(tensors, str(tmp_path / "x.safetensors"), metadata={**metadata, key: value})
        with pytest.raises(ValueError, match=r"load_safetensors: '.*x\.safetensors': " + message):
            load_safetensors(tmp_path / "x.safetensors")
    # A file written before the other settings were recorded reads them as the defaults.
    first = ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "bidirectional")
    old = {k: metadata[k] for k in (*first, "reset_after")}
    save_file(tensors, str(tmp_path / "old.safetensors"), metadata=old)
    same_settings(load_safetensors(tmp_path / "old.safetensors"), ours)

    state = ours.state_dict()
    state._metadata[""]["gru"] = {"batch_first": True, "time_major": True}
    torch.save(state, tmp_path / "future.pt")
    with pytest.raises(ValueError, match=r"read: '.*future\.pt': records settings this version of gru does not know: \['time_major'\]"):  # fmt: skip
        read(tmp_path / "future.pt")


# --- whole models: converted whole to ONNX, or refused naming what would be dropped --------

OTHERS = (
    r"Embedding\(20, 3\), Dropout\(p=0\.1, inplace=False\), "
    r"Linear\(in_features=4, out_features=1, bias=True\), Sigmoid\(\) besides its GRU layers"
)
GRU_ONLY = [
    ("x.safetensors", "safetensors"),
    ("x.pt", "PyTorch state dict"),
    ("x.keras", "Keras 3 archive"),
    ("x.weights.h5", "Keras 3 weights"),
]


def onnx_output(path, tokens):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["output"], {"input": tokens})[0]


def refused_everywhere_but_onnx(source, tmp_path, capsys):
    for dest, kind in GRU_ONLY:
        message = rf"write: '.*{re.escape(dest)}': the model holds {OTHERS}, which a {kind} file does not hold; write \.onnx to keep the whole model, or convert the GRU alone with layer=NAME \(gru convert --layer NAME\)$"  # fmt: skip
        with pytest.raises(ValueError, match=message):
            convert(source, tmp_path / dest)
        assert main(["convert", str(source), str(tmp_path / dest)]) == 2
        assert re.fullmatch("gru: error: " + message + "\n", capsys.readouterr().err, re.S)
        assert not (tmp_path / dest).exists()


@pytest.mark.filterwarnings(  # Keras 3.15 on NumPy 2 warns about its own variables
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)
def test_a_keras_model_converts_whole_to_onnx_or_is_refused_naming_its_other_layers(
    tmp_path, capsys
):
    import keras

    model = keras.Sequential(
        [
            keras.Input((T,), dtype="int32"),
            keras.layers.Embedding(20, I, name="embedding"),
            keras.layers.GRU(H, name="gru"),
            keras.layers.Dropout(0.1, name="dropout"),
            keras.layers.Dense(1, activation="sigmoid", name="dense"),
        ]
    )
    rng = np.random.default_rng(5)
    model.set_weights([(0.5 * rng.normal(size=w.shape)).astype(w.dtype) for w in model.get_weights()])  # fmt: skip
    tokens = rng.integers(0, 20, size=(B, T))
    expected = keras.ops.convert_to_numpy(model(tokens.astype("int32")))
    model.save(tmp_path / "m.keras")
    model.save_weights(tmp_path / "m.weights.h5")

    assert main(["convert", str(tmp_path / "m.keras"), str(tmp_path / "m.onnx")]) == 0
    assert (
        capsys.readouterr()
        .out.strip()
        .endswith(
            "(ONNX): the whole model, Embedding(20, 3) -> gru.GRU(3, 4, batch_first=True)[last] -> "
            "Dropout(p=0.1, inplace=False) -> Linear(in_features=4, out_features=1, bias=True) -> "
            "Sigmoid()"
        )
    )
    assert_close(onnx_output(tmp_path / "m.onnx", tokens), expected, what="whole model via ONNX")
    refused_everywhere_but_onnx(tmp_path / "m.keras", tmp_path, capsys)

    # A weights file cannot rebuild the other layers (its groups are read in name order); the
    # whole model's ONNX is not its GRU.
    with pytest.raises(ValueError, match=r"read: '.*m\.weights\.h5': holds 'dense' \(Dense\), 'dropout' \(Dropout\), 'embedding' \(Embedding\) besides its GRU layers, and a weights file has no configuration to rebuild them from; convert the model's \.keras file, or the GRU alone with layer=NAME"):  # fmt: skip
        convert(tmp_path / "m.weights.h5", tmp_path / "x.onnx")
    with pytest.raises(ValueError, match=r"load_onnx: '.*m\.onnx': computes more than GRU layers \(Gather '\w+', MatMul '\w+', Add '\w+', Sigmoid '\w+': 4 nodes\), which reading it as a gru\.GRU would drop"):  # fmt: skip
        convert(tmp_path / "m.onnx", tmp_path / "x.safetensors")
    assert sorted(os.listdir(tmp_path)) == ["m.keras", "m.onnx", "m.weights.h5"]

    # The GRU alone when it is named, from the model or from its weights.
    for source in ("m.keras", "m.weights.h5"):
        conversion = convert(tmp_path / source, tmp_path / "g.safetensors", layer="gru", overwrite=True)  # fmt: skip
        assert str(conversion).endswith(": layer 'gru' alone, gru.GRU(3, 4, batch_first=True)")
        same_layer(read(tmp_path / "g.safetensors"), from_keras(model.get_layer("gru")))


def write_keras2(path, layers, *, config=True):
    """A Keras 2 HDF5 file (the documented layout: model_config, model_weights/layer_names,
    per layer weight_names) of layers [(name, class_name, config, {weight name: array})]."""
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.15.0"
        root = f
        if config:
            layers_config = [{"class_name": c, "config": {"name": n, **k}} for n, c, k, _ in layers]
            model_config = {"class_name": "Sequential", "config": {"layers": layers_config}}
            f.attrs["model_config"] = json.dumps(model_config).encode()
            root = f.create_group("model_weights")
        root.attrs["layer_names"] = [n.encode() for n, *_ in layers]
        for name, _, _, weights in layers:
            root.create_group(name).attrs["weight_names"] = [w.encode() for w in weights]
            for weight_name, array in weights.items():
                root.create_dataset(f"{name}/{weight_name}", data=array)


def test_a_keras2_model_converts_whole_to_onnx_or_is_refused(tmp_path, capsys):
    rng = np.random.default_rng(6)
    draw = lambda *shape: (0.5 * rng.normal(size=shape)).astype(np.float32)
    gru_config = {"units": H, "reset_after": True, "return_sequences": False}
    layers = [
        (
            "embedding",
            "Embedding",
            {"input_dim": 20, "output_dim": I},
            {"embedding/embeddings:0": draw(20, I)},
        ),
        (
            "gru",
            "GRU",
            gru_config,
            {
                f"gru/gru_cell/{n}:0": draw(*s)
                for n, s in (
                    ("kernel", (I, 3 * H)),
                    ("recurrent_kernel", (H, 3 * H)),
                    ("bias", (2, 3 * H)),
                )
            },
        ),
        ("dropout", "Dropout", {"rate": 0.1}, {}),
        (
            "dense",
            "Dense",
            {"units": 1, "activation": "sigmoid"},
            {"dense/kernel:0": draw(H, 1), "dense/bias:0": draw(1)},
        ),
    ]
    write_keras2(tmp_path / "m.h5", layers)
    tokens = rng.integers(0, 20, size=(B, T))
    with torch.no_grad():  # load_model itself is tested against Keras in test_interop_keras
        expected = load_model(tmp_path / "m.h5")(torch.from_numpy(tokens))
    assert str(convert(tmp_path / "m.h5", tmp_path / "m.onnx")).startswith(
        f"converted {tmp_path / 'm.h5'} (Keras 2 HDF5) to {tmp_path / 'm.onnx'} (ONNX): the whole model, Embedding(20, 3)"
    )
    assert_close(onnx_output(tmp_path / "m.onnx", tokens), expected, what="Keras 2 model via ONNX")
    refused_everywhere_but_onnx(tmp_path / "m.h5", tmp_path, capsys)
    write_keras2(tmp_path / "w.h5", layers, config=False)
    with pytest.raises(ValueError, match=r"read: '.*w\.h5': holds 'embedding' \(unknown class\), 'dropout' \(unknown class\), 'dense' \(unknown class\) besides its GRU layers, and a weights file has no configuration"):  # fmt: skip
        convert(tmp_path / "w.h5", tmp_path / "x.onnx")


def test_state_dicts_and_safetensors_of_more_than_a_gru_are_refused(tmp_path):
    model = torch.nn.Sequential(torch.nn.Embedding(20, I), gru.GRU(I, H))
    torch.save(model.state_dict(), tmp_path / "model.pt")
    with pytest.raises(ValueError, match=r"read: '.*model\.pt': is not the state dict of a torch\.nn\.GRU \(no weight_ih_l0 / weight_hh_l0; keys \['0\.weight', '1\.bias_hh_l0'"):  # fmt: skip
        convert(tmp_path / "model.pt", tmp_path / "x.onnx")
    state = {**gru.GRU(I, H).state_dict(), "fc.weight": torch.zeros(1, H)}
    torch.save(state, tmp_path / "extra.pt")
    with pytest.raises(ValueError, match=r"read: '.*extra\.pt': does not hold the parameters of gru\.GRU\(3, 4\): missing \[\], unexpected \['fc\.weight'\]"):  # fmt: skip
        convert(tmp_path / "extra.pt", tmp_path / "x.onnx")
    from safetensors.torch import save_file

    ours = gru.GRU(I, H)
    save_safetensors(ours, tmp_path / "a.safetensors")
    metadata = {k: json.dumps(getattr(ours, k)) for k in ATTRIBUTES}
    save_file(state, str(tmp_path / "extra.safetensors"), metadata=metadata)
    with pytest.raises(ValueError, match=r"load_safetensors: '.*extra\.safetensors': does not hold the parameters of gru\.GRU\(3, 4\): missing \[\], unexpected \['fc\.weight'\]"):  # fmt: skip
        convert(tmp_path / "extra.safetensors", tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
