"""gru.ops, the layer's single math boundary, against the oracle (one layer, one direction)."""

import numpy as np
import pytest
import torch

from checks import assert_close, reverse_padded
from gru import ops
from gru import reference as R


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, [6, 6, 6], [3, 6, 1]])
@pytest.mark.parametrize("bias", [True, False])
def test_sequence_matches_reference(reset_after, reverse, lengths, bias):
    rng = np.random.default_rng(0)
    T, B, I, H = 6, 3, 4, 5
    arrays = [
        rng.normal(size=s) for s in [(T, B, I), (B, H), (3 * H, I), (3 * H, H), (3 * H,), (3 * H,)]
    ]
    if not bias:
        arrays[4] = arrays[5] = None
    x, h0, w_ih, w_hh, b_ih, b_hh = (
        None if a is None else torch.tensor(a, requires_grad=True) for a in arrays
    )
    lengths_t = None if lengths is None else torch.tensor(lengths)
    output, h_n = ops.gru_sequence(
        x, h0, w_ih, w_hh, b_ih, b_hh, reset_after=reset_after, reverse=reverse, lengths=lengths_t
    )

    x_np = reverse_padded(arrays[0], lengths) if reverse else arrays[0]
    ref_out, ref_h, cache = R.gru_forward(
        x_np, *arrays[1:], reset_after=reset_after, lengths=lengths
    )
    if reverse:
        ref_out = reverse_padded(ref_out, lengths)
    assert_close(output, ref_out, what="output")
    assert_close(h_n, ref_h, what="h_n")
    if lengths is not None:  # padding stays zero
        for b, L in enumerate(lengths):
            assert torch.all(output[L:, b] == 0)

    d_out, d_h = rng.normal(size=(T, B, H)), rng.normal(size=(B, H))
    tensors = [t for t in (x, h0, w_ih, w_hh, b_ih, b_hh) if t is not None]
    grads = torch.autograd.grad(
        (output * torch.tensor(d_out)).sum() + (h_n * torch.tensor(d_h)).sum(), tensors
    )
    g = R.gru_backward(reverse_padded(d_out, lengths) if reverse else d_out, d_h, cache)
    expected = [reverse_padded(g.x, lengths) if reverse else g.x, g.h0, g.w_ih, g.w_hh]
    expected += [g.b_ih, g.b_hh] if bias else []
    for name, a, e in zip(
        ["x", "h0", "w_ih", "w_hh", "b_ih", "b_hh"], grads, expected, strict=False
    ):
        assert_close(a, e, what=name)


@pytest.mark.parametrize("reset_after", [True, False])
def test_cell_is_one_step_of_the_sequence(reset_after):
    torch.manual_seed(0)
    x, h = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    w = [
        torch.randn(6, 3).double(),
        torch.randn(6, 2).double(),
        torch.randn(6).double(),
        torch.randn(6).double(),
    ]
    step = ops.gru_cell(x, h, *w, reset_after=reset_after)
    out, h_n = ops.gru_sequence(x.unsqueeze(0), h, *w, reset_after=reset_after)
    assert_close(step, out[0])
    assert_close(step, h_n)
    expected, _ = R.gru_step(x.numpy(), h.numpy(), *(t.numpy() for t in w), reset_after=reset_after)
    assert_close(step, expected)
