"""`MinGRU` (Feng et al. 2024): the layer's contract, and `MinGRUStream`, which runs it a step
at a time. Its math is `gru.ops.scan` (the whole-sequence scan) and `gru.ops.MinGRUStepper`.

Shapes: T time steps, B batch, I input features, H hidden units, L layers.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gru import ops
from gru.nn import script
from gru.nn._base import RecurrentBase, check_size

__all__ = ["MinGRU", "MinGRUStream"]

EQUATIONS = r"""
    z_t = σ(W_z x_t + b_z)                        update gate
    h̃_t = g(W_h x_t + b_h)                        candidate state
    h_t = (1 − z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t
    g(a) = a + 1/2 for a ≥ 0, σ(a) for a < 0     (continuous and always positive)

where x_t is the input at time t, h_t the hidden state (h_0 = ``hx`` or zeros), σ the logistic
sigmoid and ⊙ the elementwise product. Neither z_t nor h̃_t reads h_{t-1}, so the recurrence is
linear in h, h_t = c_t ⊙ h_{t-1} + v_t with c_t = 1 − z_t and v_t = z_t ⊙ h̃_t, and a whole
sequence is computed by a scan over time instead of one step after another. As in the paper
(and the seeds' GRU), z is the fraction of the candidate taken: the packed GRU layout's 1 − z.
"""


class MinGRU(RecurrentBase):
    __doc__ = (
        r"""A multi-layer minGRU (Feng et al. 2024, "Were RNNs All We Needed?", arXiv 2410.01201).

For each layer and each element of the input sequence, it computes
"""
        + EQUATIONS
        + r"""
``forward`` (and so training) computes each layer over the whole sequence at once with the
paper's log-space scan; `stream` runs the same equations one step at a time. This is the
recurrent layer alone: the paper's minGRU models wrap it in blocks with a residual
connection, normalization and an MLP, which belong to the model that uses the layer. In a
multi-layer MinGRU the input of layer l ≥ 1 is the output of layer l − 1, multiplied by a
dropout mask (probability ``dropout``) in training mode.

Args:
    input_size: I, the number of features of x_t.
    hidden_size: H, the number of features of h_t.
    num_layers: L, the number of stacked layers. Default 1.
    bias: if False, the layer has no b_z and b_h. Default True.
    batch_first: if True, input and output are (B, T, feature) instead of (T, B, feature);
        ``hx`` and ``h_n`` are never batch first. Default False.
    dropout: probability of zeroing each output of every layer but the last in training
        mode. Default 0.
    device, dtype: where and as what the parameters are created.

Parameters (k = layer; I_k = I for k = 0, else H), each drawn from U(−1/√I_k, 1/√I_k), the
default of torch.nn.Linear, which the paper's code uses for both projections:
    weight_z_l{k}: (H, I_k) — W_z
    bias_z_l{k}: (H,) — b_z
    weight_h_l{k}: (H, I_k) — W_h
    bias_h_l{k}: (H,) — b_h

Inputs: ``input, hx=None``
    input: (T, B, I), (B, T, I) with batch_first, or (T, I) unbatched.
    hx: (L, B, H), or (L, H) for unbatched input; zeros when None. Any real values.

Outputs: ``(output, h_n)``
    output: (T, B, H) (batch first if asked) or (T, H) unbatched: h_t of the last layer.
    h_n: (L, B, H), or (L, H) unbatched: the final state of every layer.
"""
    )

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self._set_sizes(input_size, hidden_size, num_layers, bias, batch_first, dropout)

        factory = {"device": device, "dtype": dtype}
        H = self.hidden_size
        self._all_weights: list[list[str]] = []
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else H
            shapes = {f"weight_z_l{layer}": (H, layer_input)}
            if self.bias:
                shapes[f"bias_z_l{layer}"] = (H,)
            shapes[f"weight_h_l{layer}"] = (H, layer_input)
            if self.bias:
                shapes[f"bias_h_l{layer}"] = (H,)
            for name, shape in shapes.items():
                self.register_parameter(name, nn.Parameter(torch.empty(shape, **factory)))
            self._all_weights.append(list(shapes))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw every parameter of layer k from U(−1/√I_k, 1/√I_k), as torch.nn.Linear does."""
        for layer, names in enumerate(self._all_weights):
            bound = 1.0 / math.sqrt(self.input_size if layer == 0 else self.hidden_size)
            for name in names:
                nn.init.uniform_(getattr(self, name), -bound, bound)

    def extra_repr(self) -> str:
        return self._base_repr()

    @property
    def _hx_layers(self) -> int:
        return self.num_layers

    def layer_weights(self, layer: int) -> tuple[Tensor, Tensor | None, Tensor, Tensor | None]:
        """(w_z, b_z, w_h, b_h) of a layer; the biases are None without bias."""
        w_z, w_h = getattr(self, f"weight_z_l{layer}"), getattr(self, f"weight_h_l{layer}")
        if not self.bias:
            return w_z, None, w_h, None
        return w_z, getattr(self, f"bias_z_l{layer}"), w_h, getattr(self, f"bias_h_l{layer}")

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """See the class docstring for shapes: returns ``(output, h_n)``."""
        if torch.jit.is_tracing():
            if torch.onnx.is_in_onnx_export():  # the TorchScript exporter, dynamo=False
                raise ValueError(
                    "MinGRU: torch.onnx.export(..., dynamo=False) cannot export a MinGRU: ONNX "
                    "has no minGRU operator and that exporter cannot translate its log-space "
                    "scan (it stops at aten::softplus); export with the default exporter "
                    "(dynamo=True), which writes the scan as ONNX operations"
                )
            self.__prepare_scriptable__()
        self._refuse_packed(input)
        weight = self.weight_z_l0
        x, batched = self._time_major(input, weight)
        h0 = self._check_hx(hx, x.shape[1], batched, weight)

        h_n = []
        layer_input = x
        for layer in range(self.num_layers):
            w_z, b_z, w_h, b_h = self.layer_weights(layer)
            k = F.linear(layer_input, w_z, b_z)  # (T, B, H)
            a = F.linear(layer_input, w_h, b_h)  # (T, B, H)
            out = ops.min_gru_scan(k, a, None if h0 is None else h0[layer])  # (T, B, H)
            h_n.append(out[-1])
            layer_input = self._between_layers(out, layer)
        return self._batch_major(layer_input, torch.stack(h_n), batched)  # (T, B, H), (L, B, H)

    def __prepare_scriptable__(self):
        """TorchScript can neither compile nor trace the scan: refused with a message."""
        script.refuse_scripting(
            "MinGRU", "MinGRU",
            "its scan is an autograd.Function with a hand-written backward, and runs chunks "
            "of the sequence in Python, which a trace would fix to the length it saw",
            "run it in eager mode or under torch.compile or torch.export, or deploy a gru.GRU",
        )  # fmt: skip

    def stream(self, batch_size: int = 1) -> MinGRUStream:
        """A stateful one-step-at-a-time runner of this MinGRU, for generation and online use.

        ``stream(x_t)`` advances every layer by one step and returns the top layer's output;
        see `MinGRUStream`. The stream copies the weights now: make a new one after training.
        """
        return MinGRUStream(self, batch_size)


class MinGRUStream:
    """Runs a `MinGRU` one time step at a time, keeping its state between calls.

    ``stream(x_t)`` takes x_t of shape (batch_size, I), or (I,) when batch_size is 1, as a
    torch tensor or a NumPy array, advances every layer by one step (the equations of
    `MinGRU`) and returns the top layer's h_t (batch_size, H) (or (H,)) of the same kind. No
    autograd. For float32 and float64 weights on the CPU a step runs in NumPy on buffers made
    once, so it allocates nothing, and the returned array is a buffer that the next step
    overwrites (copy it to keep it); elsewhere it runs torch operations. ``state`` is h
    (num_layers, batch_size, H); ``reset()`` zeroes it.
    """

    def __init__(self, module: MinGRU, batch_size: int = 1) -> None:
        self.batch_size = check_size("MinGRU.stream", "batch_size", batch_size)
        self.input_size = module.input_size
        self.hidden_size = H = module.hidden_size
        weight = module.weight_z_l0
        self._dtype, self._device = weight.dtype, weight.device
        with torch.no_grad():
            state = weight.new_zeros(module.num_layers, batch_size, H)  # (L, B, H)
        layers = [module.layer_weights(layer) for layer in range(module.num_layers)]
        self._stepper = ops.MinGRUStepper(layers, state)

    @property
    def state(self) -> Tensor:
        """h of every layer, (num_layers, batch_size, H); assign to it to set the state."""
        return self._stepper.state

    @state.setter
    def state(self, value) -> None:
        value = torch.as_tensor(value, dtype=self._dtype, device=self._device)
        state = self._stepper.state
        if tuple(value.shape) != tuple(state.shape):
            raise ValueError(
                f"MinGRUStream.state must have shape {tuple(state.shape)}, got {tuple(value.shape)}"
            )
        with torch.no_grad():
            state.copy_(value)

    def reset(self) -> None:
        """Zero the state of every layer."""
        with torch.no_grad():
            self._stepper.state.zero_()

    def _check(self, x, is_numpy: bool) -> None:
        shape = tuple(x.shape)
        B, I = self.batch_size, self.input_size
        if shape != (B, I) and not (B == 1 and shape == (I,)):
            raise ValueError(
                f"MinGRUStream: x_t must have shape ({B}, {I})"
                + (f" or ({I},)" if B == 1 else "")
                + f", got {shape}"
            )
        numpy_step = self._stepper.numpy
        expected = self._stepper.state_np.dtype if (is_numpy and numpy_step) else self._dtype
        if not is_numpy and x.dtype != self._dtype:
            raise TypeError(f"MinGRUStream: x_t must have dtype {self._dtype}, got {x.dtype}")
        if is_numpy and numpy_step and x.dtype != expected:
            raise TypeError(f"MinGRUStream: x_t must have dtype {expected}, got {x.dtype}")
        if not is_numpy and x.device != self._device:
            raise ValueError(
                f"MinGRUStream: x_t is on {x.device} but the stream's weights are on "
                f"{self._device}; move it, e.g. x_t.to('{self._device}')"
            )

    def __call__(self, x):
        is_numpy = isinstance(x, np.ndarray)
        if not is_numpy and not isinstance(x, Tensor):
            raise TypeError(
                f"MinGRUStream: x_t must be a torch.Tensor or a NumPy array, got {type(x).__name__}"
            )
        self._check(x, is_numpy)
        B, I = self.batch_size, self.input_size
        stepper = self._stepper
        if stepper.numpy:
            xn = x if is_numpy else x.detach().numpy()
            out_np = stepper.step_numpy(xn.reshape(B, I))
            out = out_np if is_numpy else stepper.out
        else:
            xt = torch.as_tensor(x, dtype=self._dtype, device=self._device)
            out = stepper.step(xt.reshape(B, I))
            if is_numpy:
                out = out.cpu().numpy()
        return out if x.ndim == 2 else out[0]
