"""torch.nn.GRU / GRUCell <-> gru.GRU / GRUCell."""

import pytest
import torch

import gru
from gru.interop.torch import cell_from_torch, cell_to_torch, from_torch, to_torch


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"num_layers": 2, "bidirectional": True, "batch_first": True, "dropout": 0.25},
        {"bias": False, "dtype": torch.float64},
    ],
)
def test_round_trip_is_exact_and_copies(kw):
    torch.manual_seed(0)
    theirs = torch.nn.GRU(3, 5, **kw).eval()
    ours = gru.GRU.from_torch(theirs)
    assert isinstance(ours, gru.GRU) and not ours.training
    for attr in (
        "input_size",
        "hidden_size",
        "num_layers",
        "bias",
        "batch_first",
        "dropout",
        "bidirectional",
    ):
        assert getattr(ours, attr) == getattr(theirs, attr), attr
    back = ours.to_torch()
    assert type(back) is torch.nn.GRU
    for (name, p), (name_back, q), r in zip(
        theirs.named_parameters(), back.named_parameters(), ours.parameters(), strict=True
    ):
        assert name == name_back
        assert torch.equal(p, q) and torch.equal(p, r)
        assert p.dtype == r.dtype
        assert p.data_ptr() != r.data_ptr()  # a copy: training one leaves the other alone
    x = torch.randn(4, 2, 3, dtype=kw.get("dtype", torch.float32))
    if kw.get("batch_first"):
        x = x.transpose(0, 1)
    assert torch.equal(back(x)[0], theirs(x)[0])


def test_conversion_keeps_requires_grad_and_draws_no_random_numbers():
    theirs = torch.nn.GRU(3, 4)
    theirs.weight_hh_l0.requires_grad_(False)
    state = torch.get_rng_state()
    ours = from_torch(theirs)
    back = to_torch(ours)
    assert torch.equal(torch.get_rng_state(), state)
    assert not ours.weight_hh_l0.requires_grad and ours.weight_ih_l0.requires_grad
    assert not back.weight_hh_l0.requires_grad


def test_cell_round_trip():
    theirs = torch.nn.GRUCell(3, 4)
    ours = gru.GRUCell.from_torch(theirs)
    assert torch.equal(cell_to_torch(ours).weight_hh, theirs.weight_hh)
    x = torch.randn(2, 3)
    assert torch.allclose(ours(x), theirs(x), rtol=1e-5, atol=1e-6)
    assert type(ours.to_torch()) is torch.nn.GRUCell
    with pytest.raises(
        TypeError, match=r"cell_from_torch: module must be a torch\.nn\.GRUCell, got GRU"
    ):
        cell_from_torch(torch.nn.GRU(3, 4))
    with pytest.raises(TypeError, match=r"to_torch: module must be a gru\.GRU, got GRU"):
        to_torch(torch.nn.GRU(3, 4))
