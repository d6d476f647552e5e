"""gru.checkpoint: bit-exact round trips, no pickle, and every damaged file refused."""

import json
import random

import numpy as np
import pytest
import safetensors.torch
import torch

from gru import checkpoint
from gru._io import atomic_write

CONFIG = {"task": "toy", "config": {"hidden_size": 4, "lr": 0.01}}


def trained_model_and_optimizer():
    torch.manual_seed(0)
    model = torch.nn.GRU(3, 4)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, betas=(0.8, 0.9))
    for _ in range(3):
        out, _ = model(torch.randn(5, 2, 3))
        optimizer.zero_grad()
        out.square().sum().backward()
        optimizer.step()
    return model, optimizer


@pytest.fixture
def run_dir(tmp_path):
    checkpoint.save_config(tmp_path, CONFIG)
    return tmp_path


def test_model_round_trip_is_bit_exact(run_dir):
    model, _ = trained_model_and_optimizer()
    checkpoint.save_model(run_dir, model.state_dict(), checkpoint.load_config(run_dir))
    loaded = checkpoint.load_model_state(run_dir)
    assert loaded.keys() == model.state_dict().keys()
    for name, value in model.state_dict().items():
        assert torch.equal(loaded[name], value), name
    # A plain safetensors file, readable by any safetensors reader.
    plain = safetensors.torch.load_file(run_dir / checkpoint.MODEL_FILE)
    assert torch.equal(plain["weight_hh_l0"], model.weight_hh_l0)


def test_optimizer_and_rng_round_trip_is_bit_exact(run_dir):
    model, optimizer = trained_model_and_optimizer()
    tensors, info = checkpoint.optimizer_to_flat(optimizer)
    torch_rng, rng_info = checkpoint.get_rng_state()
    checkpoint.save_training_state(
        run_dir,
        {**tensors, "rng/torch/0": torch_rng},
        {"optimizer": info, "rng": rng_info},
        {**CONFIG, "format": checkpoint.FORMAT},
    )
    expected = (torch.rand(3), random.random(), np.random.random())  # noqa: NPY002

    loaded, state = checkpoint.load_training_state(run_dir, checkpoint.load_config(run_dir))
    fresh = torch.optim.AdamW(model.parameters(), lr=0.5)
    checkpoint.optimizer_from_flat(fresh, loaded, state["optimizer"])
    a, b = optimizer.state_dict(), fresh.state_dict()
    assert a["param_groups"] == b["param_groups"]  # lr, betas (a tuple again), eps, ...
    for index, entries in a["state"].items():
        for key, value in entries.items():
            assert torch.equal(b["state"][index][key], value), (index, key)
    checkpoint.set_rng_state(loaded["rng/torch/0"], state["rng"])
    got = (torch.rand(3), random.random(), np.random.random())  # noqa: NPY002
    assert torch.equal(got[0], expected[0]) and got[1:] == expected[1:]


def test_a_folder_without_config_is_not_a_run_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"run: .*nope' does not exist"):
        checkpoint.load_config(tmp_path / "nope")
    with pytest.raises(ValueError, match=r"is not a run folder: it has no config.json"):
        checkpoint.load_config(tmp_path)
    (tmp_path / "config.json").write_text('{"some": "other json"}')
    with pytest.raises(ValueError, match=r"is not a gru run configuration"):
        checkpoint.load_config(tmp_path)


def test_truncated_and_altered_files_are_refused(run_dir):
    model, _ = trained_model_and_optimizer()
    checkpoint.save_model(run_dir, model.state_dict(), checkpoint.load_config(run_dir))
    path = run_dir / checkpoint.MODEL_FILE
    good = path.read_bytes()

    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(
        ValueError, match=r"model.safetensors' is truncated or not a safetensors file"
    ):
        checkpoint.load_model_state(run_dir)

    altered = bytearray(good)
    altered[-3] ^= 0x40  # one bit of the last weight
    path.write_bytes(bytes(altered))
    with pytest.raises(
        ValueError, match=r"model.safetensors' was altered: its tensors do not match the checksum"
    ):
        checkpoint.load_model_state(run_dir)

    path.write_bytes(good)
    config_path = run_dir / checkpoint.CONFIG_FILE
    config = json.loads(config_path.read_text())
    config["config"]["hidden_size"] = 8
    config_path.write_text(json.dumps(config))
    with pytest.raises(
        ValueError,
        match=r"config.json of .* does not match model.safetensors \(it was changed after the weights were saved\)",
    ):
        checkpoint.load_model_state(run_dir)
    config_path.write_text(json.dumps(config)[:20])
    with pytest.raises(
        ValueError, match=r"config.json' is not valid JSON \(truncated or altered\?\)"
    ):
        checkpoint.load_model_state(run_dir)

    foreign = run_dir / "foreign.safetensors"
    safetensors.torch.save_file({"w": torch.zeros(2)}, foreign)
    with pytest.raises(ValueError, match=r"was not written by gru \(it has no checksum\)"):
        checkpoint.load_tensors(foreign)


def test_a_run_without_weights_yet_says_so(run_dir):
    with pytest.raises(ValueError, match=r"has no model.safetensors yet \(no epoch finished\)"):
        checkpoint.load_model_state(run_dir)
    assert checkpoint.load_training_state(run_dir, checkpoint.load_config(run_dir)) is None


def test_a_crash_while_saving_leaves_the_previous_checkpoint(run_dir, monkeypatch):
    config = checkpoint.load_config(run_dir)
    checkpoint.save_training_state(run_dir, {"w": torch.ones(3)}, {"step": 1}, config)
    before = sorted(p.name for p in run_dir.iterdir())

    def crash(file):
        file.write(b"half a checkpoint")
        raise KeyboardInterrupt  # killed mid-write

    monkeypatch.setattr(checkpoint, "atomic_write", lambda path, write: atomic_write(path, crash))
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save_training_state(run_dir, {"w": torch.zeros(3)}, {"step": 2}, config)
    assert sorted(p.name for p in run_dir.iterdir()) == before  # no temporary file left
    tensors, state = checkpoint.load_training_state(run_dir, config)
    assert state == {"step": 1} and torch.equal(tensors["w"], torch.ones(3))


def edit_state(path, change) -> None:
    """Edit the training state JSON in the header of the checkpoint ``path`` as a person with a
    text editor would: ``change(state)``, tensors and checksums left as they are."""
    blob = path.read_bytes()
    size = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + size])
    state = json.loads(header["__metadata__"]["gru.state"])
    change(state)
    header["__metadata__"]["gru.state"] = json.dumps(state, separators=(",", ":"))
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + blob[8 + size :])


def scale_lr(state):
    state["optimizer"]["param_groups"][0]["lr"] *= 100


def step_back(state):
    state["loop"]["step_in_epoch"] -= 7


def finish(state):
    state["loop"]["finished"] = True


@pytest.mark.parametrize("change", [scale_lr, step_back, finish])
def test_an_edited_training_state_is_refused(run_dir, change):
    _, optimizer = trained_model_and_optimizer()
    tensors, info = checkpoint.optimizer_to_flat(optimizer)
    loop = {"epoch": 2, "step_in_epoch": 9, "finished": False}
    config = checkpoint.load_config(run_dir)
    checkpoint.save_training_state(run_dir, tensors, {"loop": loop, "optimizer": info}, config)
    path = run_dir / checkpoint.CHECKPOINT_FILE
    edit_state(path, lambda state: None)  # rewritten unchanged: still loads
    assert checkpoint.load_training_state(run_dir, config)[1]["loop"] == loop

    edit_state(path, change)
    with pytest.raises(
        ValueError,
        match=r"run: '.*checkpoint.safetensors' was altered: its metadata \(the training state",
    ):
        checkpoint.load_training_state(run_dir, config)


def test_dropping_the_metadata_checksum_is_refused_but_older_model_files_load(run_dir):
    model, _ = trained_model_and_optimizer()
    config = checkpoint.load_config(run_dir)
    checkpoint.save_training_state(run_dir, model.state_dict(), {"loop": {"epoch": 1}}, config)
    path = run_dir / checkpoint.CHECKPOINT_FILE
    tensors, metadata = checkpoint.load_tensors(path)
    del metadata["gru.metadata_sha256"]
    safetensors.torch.save_file(tensors, path, metadata)
    with pytest.raises(ValueError, match=r"checkpoint.safetensors' was altered: its metadata"):
        checkpoint.load_training_state(run_dir, config)

    # A model.safetensors of a version before the metadata checksum: its only metadata is the
    # config's checksum, which config.json checks.
    checkpoint.save_model(run_dir, model.state_dict(), config)
    path = run_dir / checkpoint.MODEL_FILE
    tensors, metadata = checkpoint.load_tensors(path)
    del metadata["gru.metadata_sha256"]
    safetensors.torch.save_file(tensors, path, metadata)
    loaded = checkpoint.load_model_state(run_dir)
    assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())
    config["config"]["hidden_size"] = 8
    with pytest.raises(ValueError, match=r"config.json of .* does not match model.safetensors"):
        checkpoint.load_model_state(run_dir, config)
