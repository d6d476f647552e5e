"""The GRU's math for the PyTorch layers: the autograd boundary, torch tensors in and out.

`gru.nn` validates its arguments and then calls only what is exported here, so every way of
computing a GRU plugs in at this boundary:

    dispatch.py   the one backend decision ("auto", "fused", "torch"), `gru_sequence`
    fused.py      the compiled engine (`gru.kernels`) as autograd Functions and custom ops
    composed.py   the same math composed from torch operations, any device; `gru_cell`
    cudnn.py      whole stacks through torch's native GRU on CUDA
    stream.py     stacks advanced one step at a time (GRU and minGRU streams)
    export.py     native ONNX GRU nodes in place of all of these under torch.onnx.export
    scan.py       minGRU's whole-sequence scan and its backward

Shapes: T time steps, B batch, I input features, H hidden units, L layers, D directions.
Weights use the packed layout of `gru.reference` (rows ``[r | z | n]``): w_ih (3H, I),
w_hh (3H, H), b_ih and b_hh (3H,).
"""

from gru.ops.composed import LN_EPS, gru_cell
from gru.ops.cudnn import cudnn_stack
from gru.ops.dispatch import (
    BACKENDS,
    bf16_hardware,
    gru_sequence,
    resolve_backend,
    start_engine,
    stream_backend,
    uses_cudnn,
)
from gru.ops.export import exporting_to_onnx, onnx_stack, refuse_for_onnx
from gru.ops.scan import min_gru_scan
from gru.ops.stream import MinGRUStepper, Stepper

__all__ = [
    "BACKENDS",
    "LN_EPS",
    "MinGRUStepper",
    "Stepper",
    "bf16_hardware",
    "cudnn_stack",
    "exporting_to_onnx",
    "gru_cell",
    "gru_sequence",
    "min_gru_scan",
    "onnx_stack",
    "refuse_for_onnx",
    "resolve_backend",
    "start_engine",
    "stream_backend",
    "uses_cudnn",
]
