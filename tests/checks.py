"""Shared test helpers: the one comparison with per-dtype tolerances, the reference oracle
stacked into layers and directions the way `gru.GRU` and `torch.nn.GRU` stack them, the
command line run in-process, and the real data beside the repository."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gru import reference

# (rtol, atol) per dtype, always used together.
TOLERANCE = {
    torch.float64: (1e-7, 1e-9),
    torch.float32: (1e-5, 1e-6),
    np.dtype(np.float64): (1e-7, 1e-9),
    np.dtype(np.float32): (1e-5, 1e-6),
}


def assert_close(
    actual, expected, dtype=None, *, scale: float = 1.0, atol_scale: float = 1.0, what: str = ""
) -> None:
    """Assert ``actual`` ≈ ``expected`` within the tolerance of ``dtype`` (default: actual's).

    ``scale`` multiplies both rtol and atol, ``atol_scale`` atol alone; a caller that passes
    either > 1 says why.
    """
    a = actual.detach().cpu().numpy() if isinstance(actual, torch.Tensor) else np.asarray(actual)
    e = (
        expected.detach().cpu().numpy()
        if isinstance(expected, torch.Tensor)
        else np.asarray(expected)
    )
    if dtype is None:
        dtype = actual.dtype if isinstance(actual, torch.Tensor) else a.dtype
    if not isinstance(dtype, torch.dtype):
        dtype = np.dtype(dtype)
    rtol, atol = TOLERANCE[dtype]
    assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
    np.testing.assert_allclose(
        a.astype(np.float64),
        e.astype(np.float64),
        rtol=rtol * scale,
        atol=atol * scale * atol_scale,
        err_msg=what,
    )


def reverse_padded(a: np.ndarray, lengths) -> np.ndarray:
    """Reverse each sequence of a (T, B, …) array within its length; padding stays in place."""
    T, B = a.shape[:2]
    lengths = np.full(B, T) if lengths is None else np.asarray(lengths)
    out = a.copy()
    for b in range(B):
        out[: lengths[b], b] = a[: lengths[b], b][::-1]
    return out


def layer_weights(module, index: int) -> list:
    """The (w_ih, w_hh, b_ih, b_hh) of a layer/direction of a GRU module, as float64 arrays."""
    w = [p.detach().double().numpy() for p in module.all_weights[index]]
    return w if len(w) == 4 else [*w, None, None]


def reference_stack(
    x, h0, weights, *, num_layers, bidirectional, reset_after, lengths=None, variants=None
):
    """The oracle for a whole multi-layer (bi)directional GRU, without dropout.

    x (T, B, I), h0 (L·D, B, H), weights[l·D + d] = (w_ih, w_hh, b_ih, b_hh); ``variants``,
    if given, holds per layer and direction the keyword arguments of
    `gru.reference.variant_forward` (layer_norm, zoneout by position, recurrent_mask).
    Returns (output (T, B, D·H), h_n (L·D, B, H), caches for `reference_stack_backward`).
    """
    D = 2 if bidirectional else 1
    layer_input = np.asarray(x, np.float64)
    h_n, caches = [], []
    for layer in range(num_layers):
        outputs = []
        for d in range(D):
            i = layer * D + d
            inp = reverse_padded(layer_input, lengths) if d == 1 else layer_input
            if variants is None:
                out, h, cache = reference.gru_forward(
                    inp, h0[i], *weights[i], reset_after=reset_after, lengths=lengths
                )
            else:
                kw = dict(variants[i])
                if d == 1 and kw.get("zoneout") is not None:  # d_t belongs to position t
                    kw["zoneout"] = reverse_padded(np.asarray(kw["zoneout"], np.float64), lengths)
                out, h, cache = reference.variant_forward(
                    inp, h0[i], *weights[i], reset_after=reset_after, lengths=lengths, **kw
                )
            outputs.append(reverse_padded(out, lengths) if d == 1 else out)
            h_n.append(h)
            caches.append(cache)
        layer_input = np.concatenate(outputs, axis=-1)
    return layer_input, np.stack(h_n), caches


def reference_stack_backward(d_output, d_h_n, caches, *, num_layers, bidirectional, lengths=None):
    """Gradients for `reference_stack`: (dx, dh0 (L·D, B, H), [GRUGradients per layer/dir])."""
    D = 2 if bidirectional else 1
    H = d_h_n.shape[-1]
    grads = [None] * (num_layers * D)
    d_layer_output = np.asarray(d_output, np.float64)
    for layer in reversed(range(num_layers)):
        d_input = 0.0
        for d in range(D):
            i = layer * D + d
            d_out = d_layer_output[..., d * H : (d + 1) * H]
            if d == 1:
                d_out = reverse_padded(d_out, lengths)
            if isinstance(caches[i], reference.VariantCache):
                g = reference.variant_backward(d_out, d_h_n[i], caches[i])
            else:
                g = reference.gru_backward(d_out, d_h_n[i], caches[i])
            d_input = d_input + (reverse_padded(g.x, lengths) if d == 1 else g.x)
            grads[i] = g
        d_layer_output = d_input
    return d_layer_output, np.stack([g.h0 for g in grads]), grads


SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data beside the repository. A missing one fails the test, never
    skips it: CI has ../shared beside the clone."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"the shared data {path} is missing (../shared/data beside the clone)")
    return path


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``gru argv``, run in-process."""
    from gru.cli import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def torchrun_train(trace_dir: Path, *argv) -> tuple:
    """``gru train ARGV`` under torchrun, two processes on loopback with one thread each and
    GRU_TRACE_DIR set to ``trace_dir``: (the finished process, each rank's step records, each
    rank's final digest of its parameters). Asserts that it exited 0."""
    import json
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ, "GRU_TRACE_DIR": str(trace_dir), "GLOO_SOCKET_IFNAME": "lo",
        "OMP_NUM_THREADS": "1",
    }  # fmt: skip
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
        "--master_addr=127.0.0.1", f"--master_port={port}", "-m", "gru", "train",
        *map(str, argv),
    ]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    traces = [
        [json.loads(line) for line in (trace_dir / f"trace-rank{r}.jsonl").read_text().splitlines()]
        for r in (0, 1)
    ]
    steps = [[t for t in records if "step" in t] for records in traces]
    return result, steps, [records[-1]["final"] for records in traces]
