import pytest
import torch

from gru.data.synthetic import adding_problem


def test_adding_problem_marks_one_value_in_each_half_and_sums_them():
    x, y = adding_problem(500, 20, generator=torch.Generator().manual_seed(0))
    assert x.shape == (500, 20, 2) and y.shape == (500,)
    values, markers = x[..., 0], x[..., 1]
    assert torch.all((values >= 0) & (values < 1))
    assert torch.all(markers[:, :10].sum(1) == 1) and torch.all(markers[:, 10:].sum(1) == 1)
    first, second = markers[:, :10].argmax(1), markers[:, 10:].argmax(1) + 10
    rows = torch.arange(500)
    assert torch.allclose(y, values[rows, first] + values[rows, second])
    # The baseline the demo quotes: Var(U + U') = 1/6.
    assert torch.var(y).item() == pytest.approx(1 / 6, abs=0.02)


def test_adding_problem_is_reproducible_and_checks_its_length():
    a = adding_problem(4, 6, generator=torch.Generator().manual_seed(3))
    b = adding_problem(4, 6, generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    with pytest.raises(ValueError, match="seq_len must be at least 2, got 1"):
        adding_problem(4, 1, generator=torch.Generator())
