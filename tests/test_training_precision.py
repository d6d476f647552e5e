"""gru.training.precision: ``precision="bf16"`` trains each step's forward under autocast to
bfloat16 with float32 master weights; gru.GRU and GRUCell take what an autocast product gives."""

import json
import warnings

import pytest
import torch
import torch.nn.functional as F

import gru
from checks import run_cli
from gru.training import TrainConfig, fit
from gru.training import precision as precision_module

# bfloat16 keeps 8 significant bits: each product input is rounded by up to 2**-9 relative.
# Over a few chained products the gradients of one step move by up to a few percent of their
# norm; 5e-2 of the norm leaves room for that and is still far below a wrong gradient (~1).
BF16_GRADIENT_RTOL = 5e-2


class Tiny(torch.nn.Module):
    """Linear → gru.GRU → Linear on the last step: autocast's products around the engine."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = torch.nn.Linear(4, 16)
        self.rnn = gru.GRU(16, 24, batch_first=True)
        self.out = torch.nn.Linear(24, 3)

    def forward(self, x):
        output, _ = self.rnn(self.inp(x))
        return self.out(output[:, -1])


def problem(n=64):
    torch.manual_seed(0)
    x = torch.randn(n, 7, 4)
    return x, (x[:, :, 0].sum(1) > 0).long() + (x[:, -1, 1] > 1).long()


def dtypes_seen(model):
    seen = []
    for name in ("inp", "rnn", "out"):
        module = getattr(model, name)
        module.register_forward_hook(
            lambda m, i, o, name=name: seen.append(
                (name, (o[0] if isinstance(o, tuple) else o).dtype)
            )
        )
    return seen


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_bf16_runs_the_products_in_bfloat16_and_keeps_float32_weights(precision):
    x, y = problem()
    torch.manual_seed(1)
    model = Tiny()
    seen = dtypes_seen(model)
    config = TrainConfig(epochs=8, batch_size=16, lr=1e-2, precision=precision)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the no-hardware notice (tested below)
        result = fit(model, F.cross_entropy, (x, y), config, quiet=True)
    wanted = torch.bfloat16 if precision == "bf16" else torch.float32
    steps = seen[-3 * result.steps :]  # the steps' (the warm-up before them is float32)
    assert len(steps) == 3 * 32 and {d for _, d in steps} == {wanted}
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the master weights
    losses = [h["train_loss"] for h in result.history]
    assert all(map(torch.isfinite, torch.tensor(losses))) and losses[-1] < 0.8 * losses[0]


def test_one_bf16_step_has_the_gradients_of_float32_within_bfloat16_precision():
    x, y = problem(32)
    torch.manual_seed(2)
    model = Tiny()
    grads = {}
    for precision in ("fp32", "bf16"):
        model.zero_grad()
        with precision_module.autocast(precision, "cpu"):
            output = model(x)
        F.cross_entropy(precision_module.in_float32(output), y).backward()
        grads[precision] = [p.grad.clone() for p in model.parameters()]
    for g32, g16 in zip(grads["fp32"], grads["bf16"], strict=True):
        assert g16.dtype == torch.float32
        assert (g16 - g32).norm() <= BF16_GRADIENT_RTOL * g32.norm()
    assert any(not torch.equal(a, b) for a, b in zip(grads["fp32"], grads["bf16"], strict=True))


def test_gru_and_cell_take_the_bfloat16_an_autocast_product_gives_as_torch_does():
    torch.manual_seed(3)
    ours, theirs = gru.GRU(16, 8, num_layers=2), torch.nn.GRU(16, 8, num_layers=2)
    cell = gru.GRUCell(16, 8)
    x = torch.randn(5, 3, 16).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output, h_n = ours(x)
        expected = theirs(x)
        step = cell(x[0])
    assert output.dtype == h_n.dtype == expected[0].dtype == torch.bfloat16
    # With a state of the other dtype, the result takes the state's, as torch.nn.GRU's does.
    h0 = torch.zeros(2, 3, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for given, state in ((x, h0.bfloat16()), (x.float(), h0.bfloat16()), (x, h0)):
            got, want = ours(given, state), theirs(given, state)
            assert got[0].dtype == got[1].dtype == want[0].dtype == want[1].dtype == state.dtype
    assert step.dtype == torch.bfloat16
    # The float32 layer on the same (bfloat16-valued) input, rounded once to bfloat16: within
    # one rounding of 8 significant bits (2**-8 relative) of the float32 values.
    bf16 = {"rtol": 2**-8, "atol": 1e-6}
    torch.testing.assert_close(output.float(), ours(x.float())[0], **bf16)
    # The cell steps on composed torch operations, whose products autocast runs in bfloat16,
    # as torch.nn.GRUCell's: the two agree within a few roundings of 8 significant bits.
    theirs_cell = torch.nn.GRUCell(16, 8)
    theirs_cell.load_state_dict(cell.state_dict())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected_step = theirs_cell(x[0])
    assert expected_step.dtype == torch.bfloat16
    torch.testing.assert_close(step.float(), expected_step.float(), rtol=2**-6, atol=2**-8)
    with pytest.raises(TypeError, match=r"input has dtype torch.bfloat16 but the weights are"):
        ours(x)  # outside autocast a mismatch is still the user's to fix


def test_training_accepts_only_the_named_precisions():
    with pytest.raises(
        ValueError, match=r"precision must be one of \('fp32', 'bf16'\), got 'fp16'"
    ):
        TrainConfig(precision="fp16").check()


@pytest.mark.parametrize(
    ("precision", "hardware", "warns"),
    [("bf16", False, True), ("bf16", True, False), ("fp32", False, False)],
)
def test_bf16_without_the_instructions_says_it_is_not_faster(
    monkeypatch, precision, hardware, warns
):
    monkeypatch.setattr(precision_module, "bf16_hardware", lambda: hardware)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        precision_module.say_without_hardware(precision, "cpu")
    said = [str(w.message) for w in caught]
    assert bool(said) == warns
    assert not said or "no faster than fp32" in said[0]


def test_the_command_line_trains_in_bf16_and_records_it(capsys, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # as outside pytest, where warnings are not errors
        code, out, err = run_cli(
            capsys, "train", "adding", "--seq-len", 8, "--n-train", 256, "--n-test", 64,
            "--epochs", 1, "--quiet", "--precision", "bf16", "--out", tmp_path / "a",
        )  # fmt: skip
    assert code == 0, err
    notice = "gru: warning: --precision bf16 on a CPU without bfloat16 matrix units"
    assert (notice in err) == (not precision_module.bf16_hardware())
    assert "test MSE" in out
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["config"]["train"]["precision"] == "bf16"
    assert "gru: warning: gru:" not in err  # the library's prefix is not said twice
    with pytest.raises(SystemExit) as exit_info:  # argparse's refusal, exit 2
        run_cli(capsys, "train", "adding", "--precision", "fp16", "--out", tmp_path / "b")
    assert exit_info.value.code == 2
    assert "--precision: invalid choice: 'fp16'" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
