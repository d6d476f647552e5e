import pytest
import torch
import torch.nn.functional as F

from gru.training import TrainConfig, fit


def test_fit_reaches_the_known_minimum_of_a_linear_problem():
    torch.manual_seed(0)
    x = torch.randn(256, 3)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.25
    model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0))
    lines = []
    history = fit(
        model,
        F.mse_loss,
        lambda epoch: list(zip(x.split(32), y.split(32), strict=True)),
        TrainConfig(epochs=60, lr=0.05, quiet=False),
        evaluate=lambda m: {"mse": F.mse_loss(m(x), y).item()},
        log=lines.append,
    )
    assert len(history) == 60 and len(lines) == 60
    assert history[0]["mse"] > 1.0
    assert history[-1]["mse"] < 1e-4  # the noise-free optimum is 0
    assert lines[-1].startswith("epoch 60  train_loss ")
    assert torch.allclose(model[0].weight, torch.tensor([[1.0, -2.0, 0.5]]), atol=1e-2)


def test_fit_quiet_logs_nothing_and_clips_gradients():
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    lines = []
    fit(
        model,
        lambda out, target: (out * 1e6).sum(),
        lambda epoch: [(torch.ones(1, 1), torch.ones(1))],
        TrainConfig(epochs=1, lr=0.1, clip_grad_norm=1.0, quiet=True),
        log=lines.append,
    )
    assert lines == []
    assert model.weight.grad.norm().item() == pytest.approx(1.0, rel=1e-6)  # raw norm was 1e6
