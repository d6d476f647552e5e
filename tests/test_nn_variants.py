"""gru.GRU's variants (layer norm, zoneout, recurrent dropout) against the variant oracle, on
every backend: forward, every gradient, the masks' statistics, and bad input."""

import numpy as np
import pytest
import torch

import gru
from checks import assert_close, layer_weights, reference_stack, reference_stack_backward
from gru import kernels, ops
from gru import reference as R
from gru.kernels import recurrence
from gru.kernels.padding import padded_size

VARIANTS = {
    "layer_norm": {"layer_norm": True},
    "zoneout": {"zoneout": 0.3},
    "recurrent_dropout": {"recurrent_dropout": 0.4},
    "all": {"layer_norm": True, "zoneout": 0.3, "recurrent_dropout": 0.4},
}


def recorded_inputs(model, monkeypatch):
    """Record every variant input the layer hands to ops (the masks it drew)."""
    recorded = []
    original = gru.GRU._variant_inputs

    def record(self, index, T, B, x):
        inputs = original(self, index, T, B, x)
        recorded.append(inputs)
        return inputs

    monkeypatch.setattr(gru.GRU, "_variant_inputs", record)
    return recorded


def oracle_kwargs(inputs: dict, T: int, B: int, H: int) -> dict:
    """The variant oracle's keyword arguments for what the layer used."""
    kw = {}
    if "layer_norm" in inputs:
        kw["layer_norm"] = [p.detach().double().numpy() for p in inputs["layer_norm"]]
    z = inputs.get("zoneout")
    if z is not None:
        kw["zoneout"] = np.full((T, B, H), z) if isinstance(z, float) else z.double().numpy()
    if inputs.get("recurrent_mask") is not None:
        kw["recurrent_mask"] = inputs["recurrent_mask"].double().numpy()
    return kw


def randomize_layer_norm(model):
    """Move the gains and biases off 1 and 0 so that a mistake in either shows."""
    with torch.no_grad():
        for names in model._ln_names:
            for name in names:
                p = getattr(model, name)
                p.add_(torch.randn(p.shape, dtype=p.dtype) * 0.3)


CASES = [
    # variant, reset_after, num_layers, bidirectional, lengths, training, backend
    ("layer_norm", True, 1, False, None, True, "auto"),
    ("layer_norm", True, 2, True, [6, 2, 5], True, "torch"),
    ("zoneout", True, 2, True, None, True, "auto"),
    ("zoneout", False, 1, True, [6, 3, 1], True, "auto"),
    ("zoneout", True, 2, False, [6, 3, 4], False, "auto"),  # evaluation: d_t = p
    ("recurrent_dropout", True, 1, True, [4, 6, 2], True, "auto"),
    ("recurrent_dropout", False, 2, False, None, True, "torch"),
    ("all", True, 2, True, [6, 1, 5], True, "auto"),
    ("all", True, 1, False, None, False, "auto"),
]


@pytest.mark.parametrize(
    ("variant", "reset_after", "num_layers", "bidirectional", "lengths", "training", "backend"),
    CASES,
)
def test_layer_equals_the_variant_oracle(
    variant, reset_after, num_layers, bidirectional, lengths, training, backend, monkeypatch
):
    torch.manual_seed(1)
    model = gru.GRU(
        4, 5, num_layers, bidirectional=bidirectional, reset_after=reset_after, backend=backend,
        dtype=torch.float64, **VARIANTS[variant],
    ).train(training)  # fmt: skip
    assert_layer_matches_the_oracle(model, 6, 3, lengths, monkeypatch)


def assert_layer_matches_the_oracle(model, T, B, lengths, monkeypatch, *, scale=1.0):
    """Run ``model`` on random input and compare output, h_n and every gradient with the
    variant oracle on the masks the layer drew (float64 oracle, tolerance of model's dtype)."""
    dtype = model.weight_hh_l0.dtype
    I, H, num_layers = model.input_size, model.hidden_size, model.num_layers
    D = 2 if model.bidirectional else 1
    reset_after, bidirectional = model.reset_after, model.bidirectional
    randomize_layer_norm(model)
    recorded = recorded_inputs(model, monkeypatch)
    x = torch.randn(T, B, I, dtype=dtype, requires_grad=True)
    hx = torch.randn(num_layers * D, B, H, dtype=dtype, requires_grad=True)
    output, h_n = model(x, hx, lengths=lengths)

    assert len(recorded) == num_layers * D
    weights = [layer_weights(model, i) for i in range(num_layers * D)]
    variants = [oracle_kwargs(inputs, T, B, H) for inputs in recorded]
    kw = {"num_layers": num_layers, "bidirectional": bidirectional, "lengths": lengths}
    ref_out, ref_h, caches = reference_stack(
        x.detach().double().numpy(), hx.detach().double().numpy(), weights,
        reset_after=reset_after, variants=variants, **kw,
    )  # fmt: skip
    assert_close(output, ref_out, scale=scale, what="output")
    assert_close(h_n, ref_h, scale=scale, what="h_n")

    g = torch.Generator().manual_seed(0)
    d_out = torch.randn(output.shape, generator=g, dtype=dtype)
    d_h = torch.randn(h_n.shape, generator=g, dtype=dtype)
    params = dict(model.named_parameters())
    grads = torch.autograd.grad(
        (output * d_out).sum() + (h_n * d_h).sum(), [x, hx, *params.values()]
    )
    dx, dhx, by_name = grads[0], grads[1], dict(zip(params, grads[2:], strict=True))
    ref_dx, ref_dh, ref_grads = reference_stack_backward(
        d_out.double().numpy(), d_h.double().numpy(), caches, **kw
    )
    assert_close(dx, ref_dx, scale=scale, what="dx")
    assert_close(dhx, ref_dh, scale=scale, what="dhx")
    for i, names in enumerate(model._all_weights):
        ref = ref_grads[i]
        for name, value in zip(names, (ref.w_ih, ref.w_hh, ref.b_ih, ref.b_hh), strict=False):
            assert_close(by_name[name], value, scale=scale, what=name)
        if model.layer_norm:
            ln = (ref.ln_gain_ih, ref.ln_bias_ih, ref.ln_gain_hh, ref.ln_bias_hh)
            for name, value in zip(model._ln_names[i], ln, strict=True):
                assert_close(by_name[name], value, scale=scale, what=name)


BLAS_CASES = [
    # variant, reset_after, bidirectional, lengths, training
    ("layer_norm", True, True, [5, 2, 4], True),
    ("zoneout", False, True, [5, 3, 1], True),
    ("recurrent_dropout", False, False, None, True),
    ("recurrent_dropout", True, True, [3, 5, 2], True),
    ("all", True, True, [5, 1, 4], True),
    ("all", True, False, None, False),  # evaluation: d_t = p, no mask
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("packed", [False, True], ids=["blas", "packed"])
@pytest.mark.parametrize(
    ("variant", "reset_after", "bidirectional", "lengths", "training"), BLAS_CASES
)
def test_blas_path_equals_the_variant_oracle(
    variant, reset_after, bidirectional, lengths, training, dtype, packed, monkeypatch
):
    """From kernels.BLAS_MIN_HIDDEN on the variants run one GEMM per step over the batch
    (`gru.kernels.blas`), in float32 on W_hh packed, in two shards of the batch
    (`gru.kernels.packed`); H = 197 pads to 200, so the layer norm's statistics skip 3 units."""
    H = 197
    assert recurrence.BLAS_MIN_HIDDEN <= padded_size(H) != H
    calls = []
    packs = packed and dtype == torch.float32  # torch's BLAS packs float32 only
    owner = kernels.packed if packs else kernels.blas
    if not packed:
        monkeypatch.setattr(kernels.packed, "available", lambda: False)

    def spy(name):
        original = getattr(owner, name)

        def call(*args):
            calls.append(name)
            return original(*args)

        return call

    for name in ("forward_variants", "backward_variants"):
        monkeypatch.setattr(owner, name, spy(name))
    torch.manual_seed(11)
    model = gru.GRU(
        4, H, bidirectional=bidirectional, reset_after=reset_after, dtype=dtype,
        **VARIANTS[variant],
    ).train(training)  # fmt: skip
    # float32: dW_ih sums T·B products through torch's own input layer norm over 3H = 591
    # values, in float32 (seen: 6.4× the tolerance on the BLAS loop, 12× on the packed one,
    # in one element of 0.008 beside others of 4.6, and 16× on the row kernels at this H);
    # everything else stays within 1.2×.
    scale = 16.0 if dtype == torch.float32 else 1.0
    assert_layer_matches_the_oracle(model, 5, 3, lengths, monkeypatch, scale=scale)
    D = 2 if bidirectional else 1
    assert calls == ["forward_variants"] * D + ["backward_variants"] * D


@pytest.mark.parametrize("variant", ["layer_norm", "zoneout", "recurrent_dropout"])
def test_gradcheck(variant):
    torch.manual_seed(2)
    model = gru.GRU(3, 2, 2, bidirectional=True, dtype=torch.float64, **VARIANTS[variant]).eval()
    names = [n for n, _ in model.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for p in model.parameters()]
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)

    def f(x, *params):
        return torch.func.functional_call(model, dict(zip(names, params, strict=True)), (x,))

    assert torch.autograd.gradcheck(f, (x, *params))


def test_variants_off_change_nothing():
    torch.manual_seed(3)
    plain = gru.GRU(4, 5, 2)
    off = gru.GRU(4, 5, 2, zoneout=0.0, recurrent_dropout=0.0, layer_norm=False)
    off.load_state_dict(plain.state_dict())
    x = torch.randn(7, 3, 4)
    assert torch.equal(plain(x)[0], off(x)[0])
    assert not off.has_variants


def test_layer_norm_starts_neutral_and_keeps_torch_initialization():
    torch.manual_seed(4)
    theirs = torch.nn.GRU(4, 5, 2)
    torch.manual_seed(4)
    ours = gru.GRU(4, 5, 2, layer_norm=True)
    for name, p in theirs.named_parameters():
        assert torch.equal(getattr(ours, name), p), name  # the same random numbers, in order
    assert torch.all(ours.ln_ih_weight_l1 == 1) and torch.all(ours.ln_hh_bias_l0 == 0)
    assert [n for n in ours.state_dict() if n.startswith("ln_")] == [
        "ln_ih_weight_l0", "ln_ih_bias_l0", "ln_hh_weight_l0", "ln_hh_bias_l0",
        "ln_ih_weight_l1", "ln_ih_bias_l1", "ln_hh_weight_l1", "ln_hh_bias_l1",
    ]  # fmt: skip


def test_masks_have_the_stated_distributions(monkeypatch):
    torch.manual_seed(5)
    model = gru.GRU(2, 64, zoneout=0.25, recurrent_dropout=0.4)
    recorded = recorded_inputs(model, monkeypatch)
    model(torch.randn(50, 40, 2))
    zone, mask = recorded[0]["zoneout"], recorded[0]["recurrent_mask"]
    assert zone.shape == (50, 40, 64) and set(zone.unique().tolist()) == {0.0, 1.0}
    assert zone.mean().item() == pytest.approx(0.25, abs=0.01)
    assert mask.shape == (40, 64)
    assert mask.unique().tolist() == [0.0, pytest.approx(1 / 0.6)]
    assert (mask == 0).float().mean().item() == pytest.approx(0.4, abs=0.03)
    model.eval()
    model(torch.randn(5, 2, 2))
    assert recorded[1] == {"zoneout": 0.25}  # evaluation: the expectation, no dropout


def test_training_masks_change_the_output_and_evaluation_is_deterministic():
    torch.manual_seed(6)
    model = gru.GRU(3, 8, zoneout=0.5, recurrent_dropout=0.5)
    x = torch.randn(10, 4, 3)
    a, b = model(x)[0], model(x)[0]
    assert not torch.allclose(a, b)
    model.eval()
    assert torch.equal(model(x)[0], model(x)[0])


BAD = [
    (
        lambda: gru.GRU(3, 4, zoneout=1.0),
        ValueError,
        r"GRU: zoneout must be a probability in \[0, 1\), got 1.0",
    ),
    (
        lambda: gru.GRU(3, 4, zoneout=-0.1),
        ValueError,
        r"GRU: zoneout must be a probability in \[0, 1\), got -0.1",
    ),
    (
        lambda: gru.GRU(3, 4, recurrent_dropout=1.5),
        ValueError,
        r"recurrent_dropout must be a probability in \[0, 1\), got 1.5",
    ),
    (
        lambda: gru.GRU(3, 4, recurrent_dropout=1.0),
        ValueError,
        r"GRU: recurrent_dropout must be a probability in \[0, 1\), got 1.0",
    ),
    (
        lambda: gru.GRU(3, 4, recurrent_dropout=-0.25),
        ValueError,
        r"GRU: recurrent_dropout must be a probability in \[0, 1\), got -0.25",
    ),
    (
        lambda: gru.GRU(3, 4, zoneout=float("nan")),
        ValueError,
        r"GRU: zoneout must be a probability in \[0, 1\), got nan",
    ),
    (
        lambda: gru.GRUCell(3, 4, zoneout=1.0),
        ValueError,
        r"GRUCell: zoneout must be a probability in \[0, 1\), got 1.0",
    ),
    (
        lambda: gru.GRUCell(3, 4, zoneout=True),
        TypeError,
        r"GRUCell: zoneout must be a float, got bool",
    ),
    (
        lambda: gru.GRU(3, 4, recurrent_dropout="0.1"),
        TypeError,
        r"GRU: recurrent_dropout must be a float, got str",
    ),
    (
        lambda: gru.GRU(3, 4, layer_norm=True, reset_after=False),
        ValueError,
        r"GRU: layer_norm=True is defined for reset_after=True",
    ),
    (
        lambda: gru.GRU(3, 4, layer_norm=True).to_torch(),
        ValueError,
        r"GRU.to_torch: the target has no GRU with layer_norm=True",
    ),
    (
        lambda: gru.GRU(3, 4, recurrent_dropout=0.2).to_torch(),
        ValueError,
        r"the target has no GRU with recurrent_dropout=0.2",
    ),
]


@pytest.mark.parametrize(("call", "error", "match"), BAD)
def test_bad_variants_are_refused(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_exports_refuse_what_they_cannot_compute(tmp_path):
    from gru.interop.keras import to_keras_weights
    from gru.interop.onnx import export_onnx

    with pytest.raises(ValueError, match=r"export_onnx: the target has no GRU with zoneout=0.1"):
        export_onnx(gru.GRU(3, 4, zoneout=0.1), tmp_path / "a.onnx")
    assert not (tmp_path / "a.onnx").exists()
    with pytest.raises(
        ValueError, match=r"to_keras_weights: the target has no GRU with layer_norm"
    ):
        to_keras_weights(gru.GRU(3, 4, layer_norm=True))
    # Recurrent dropout acts in training only: the exported layer computes the same.
    model = gru.GRU(3, 4, recurrent_dropout=0.3).eval()
    export_onnx(model, tmp_path / "b.onnx")
    assert (tmp_path / "b.onnx").exists()


def test_variant_oracle_without_variants_is_the_plain_oracle():
    rng = np.random.default_rng(0)
    T, B, I, H = 5, 2, 3, 4
    args = [
        rng.normal(size=s) for s in [(T, B, I), (B, H), (3 * H, I), (3 * H, H), (3 * H,), (3 * H,)]
    ]
    for reset_after in (True, False):
        a = R.gru_forward(*args, reset_after=reset_after, lengths=[5, 3])
        b = R.variant_forward(*args, reset_after=reset_after, lengths=[5, 3])
        assert_close(b[0], a[0])
        d_out, d_h = rng.normal(size=(T, B, H)), rng.normal(size=(B, H))
        ga, gb = R.gru_backward(d_out, d_h, a[2]), R.variant_backward(d_out, d_h, b[2])
        for name in ("x", "h0", "w_ih", "w_hh", "b_ih", "b_hh"):
            assert_close(getattr(gb, name), getattr(ga, name), what=name)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reset_after", [True, False])
def test_engine_and_composed_backends_agree(dtype, reset_after, monkeypatch):
    """The engine's variant kernels against composed torch operations, on the same masks."""
    torch.manual_seed(7)
    kw = {"zoneout": 0.2, "recurrent_dropout": 0.3, "layer_norm": reset_after}
    fused = gru.GRU(6, 20, 2, bidirectional=True, reset_after=reset_after, dtype=dtype, **kw)
    composed = gru.GRU(6, 20, 2, bidirectional=True, reset_after=reset_after, dtype=dtype, backend="torch", **kw)  # fmt: skip
    randomize_layer_norm(fused)
    composed.load_state_dict(fused.state_dict())
    x = torch.randn(15, 5, 6, dtype=dtype)
    lengths = torch.tensor([15, 4, 9, 1, 12])
    results = []
    for model in (fused, composed):
        torch.manual_seed(8)  # the same masks for both
        out, h_n = model(x, lengths=lengths)
        grads = torch.autograd.grad(out.square().sum() + h_n.sum(), list(model.parameters()))
        results.append((out, h_n, grads))
    (o1, h1, g1), (o2, h2, g2) = results
    assert_close(o1, o2)
    assert_close(h1, h2)
    for a, b in zip(g1, g2, strict=True):
        # float32: sums over 15 steps in different orders, through the layer norms' divisions
        # by s (which amplify rounding): 10× the tolerance (seen: 1.4e-4 relative on one of
        # 1,200 weight gradients).
        assert_close(a, b, scale=10.0 if dtype == torch.float32 else 1.0)


@pytest.mark.parametrize("variant", ["layer_norm", "zoneout", "recurrent_dropout", "all"])
def test_stream_computes_the_evaluation_variant(variant):
    torch.manual_seed(9)
    # float64: the layer runs on the engine and the stream on torch operations; the check is
    # of what they compute, not of two float32 roundings.
    model = gru.GRU(3, 6, 2, dtype=torch.float64, **VARIANTS[variant]).eval()
    randomize_layer_norm(model)
    x = torch.randn(9, 2, 3, dtype=torch.float64)
    expected, h_n = model(x)
    stream = model.stream(batch_size=2)
    steps = torch.stack([stream(x[t]).clone() for t in range(9)])
    assert_close(steps, expected)
    assert_close(stream.state, h_n)


@pytest.mark.parametrize("training", [True, False])
def test_a_loop_of_variant_cells_equals_the_variant_layer(training, monkeypatch):
    torch.manual_seed(10)
    layer = gru.GRU(3, 4, layer_norm=True, zoneout=0.3, dtype=torch.float64).train(training)
    randomize_layer_norm(layer)
    cell = gru.GRUCell(3, 4, layer_norm=True, zoneout=0.3, dtype=torch.float64).train(training)
    cell.load_state_dict({k.removesuffix("_l0"): v for k, v in layer.state_dict().items()})
    recorded = recorded_inputs(layer, monkeypatch)
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    output, _ = layer(x)
    keep = recorded[0]["zoneout"]
    draws = iter(keep if training else [])
    monkeypatch.setattr(torch, "bernoulli", lambda p: next(draws))  # the layer's own draws
    h = torch.zeros(2, 4, dtype=torch.float64)
    steps = []
    for t in range(6):
        h = cell(x[t], h)
        steps.append(h)
    assert_close(torch.stack(steps), output)
    assert repr(cell) == "GRUCell(3, 4, layer_norm=True, zoneout=0.3)"
    with pytest.raises(
        ValueError, match=r"GRUCell.to_torch: torch.nn.GRUCell has no layer_norm or zoneout"
    ):
        cell.to_torch()


@pytest.mark.parametrize("variant", ["plain", *VARIANTS])
def test_on_cuda_only_the_plain_layer_takes_the_native_stack(variant):
    """cuDNN computes neither layer norm nor zoneout nor recurrent dropout: on CUDA a layer
    with any of them runs on composed torch operations, which compute them on any device (the
    routing is decided from the device alone, so it is checked here without a GPU)."""
    model = gru.GRU(3, 4, 2, **VARIANTS.get(variant, {}))
    cuda = torch.device("cuda")
    native = (model.backend, model.reset_after, model.has_variants)
    assert ops.uses_cudnn(cuda, *native) == (variant == "plain")
    assert not ops.uses_cudnn(torch.device("cpu"), *native)
    meta = torch.empty(5, 2, 3, device="meta")  # any tensor off the CPU, as a CUDA one
    assert ops.resolve_backend("auto", meta, 4) == "torch"
    with pytest.raises(ValueError, match=r"backend='fused' runs on CPU tensors .* on meta"):
        ops.resolve_backend("fused", meta, 4)


@pytest.mark.parametrize("variant", [*VARIANTS])
def test_evaluation_without_autograd_equals_evaluation_with_it(variant):
    """Without autograd the engine saves nothing for backward and runs its own copy of the
    loop; it must compute the same (a layer norm once read past its row there)."""
    torch.manual_seed(10)
    model = gru.GRU(3, 6, 2, bidirectional=True, **VARIANTS[variant]).eval()
    randomize_layer_norm(model)
    x = torch.randn(12, 5, 3)
    with_grad, h_with = model(x)
    with torch.no_grad():
        without, h_without = model(x)
    assert torch.isfinite(without).all()
    assert_close(without, with_grad, what="output")
    assert_close(h_without, h_with, what="h_n")
