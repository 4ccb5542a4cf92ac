"""The derivation's network built from PyTorch's own layers.

    derivation   PyTorch
    U            nn.RNN.weight_ih_l0      (H, I)
    W            nn.RNN.weight_hh_l0      (H, H)
    b            nn.RNN.bias_ih_l0 + nn.RNN.bias_hh_l0
    V            nn.Linear(H, O).weight   (O, H)
    c            nn.Linear(H, O).bias     (O,)

nn.RNN computes h(t) = φ(x(t) U^T + b_ih + h(t-1) W^T + b_hh): two biases where
the derivation has one. The twin puts all of b in bias_ih_l0 and zeros in
bias_hh_l0, so it computes exactly the derivation's a(t); both biases still
receive ∂L/∂b (each is added to a(t) unchanged), which `torch_bptt` checks.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn

from manual_bptt import RNNParams

_TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


class RNNTwin(nn.Module):
    """nn.RNN (one layer, tanh or relu) followed by nn.Linear(H, O) at every step."""

    def __init__(self, rnn: nn.RNN, out: nn.Linear):
        super().__init__()
        self.rnn = rnn
        self.out = out

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        """o for every step, in the layout of x. h0: (1, B, H), or (1, H) unbatched."""
        h, _ = self.rnn(x, h0)
        return self.out(h)


def tensor_copy(array: np.ndarray) -> torch.Tensor:
    """A tensor that owns a C-contiguous copy of `array`: any strides (negative
    ones too) and read-only arrays are fine, and torch never shares the caller's memory."""
    return torch.from_numpy(np.array(array, order="C", copy=True))


def with_autograd() -> contextlib.ExitStack:
    """A context in which autograd records, whatever the caller's mode: it lifts
    torch.inference_mode() and torch.no_grad() inside it, and restores both on exit."""
    stack = contextlib.ExitStack()
    stack.enter_context(torch.inference_mode(False))
    stack.enter_context(torch.enable_grad())
    return stack


def torch_dtype(dtype) -> torch.dtype:
    return _TORCH_DTYPES[np.dtype(dtype)]


def build_twin(params: RNNParams, *, nonlinearity: str = "tanh", batch_first: bool = False) -> RNNTwin:
    """An RNNTwin holding copies of params (same dtype, on the CPU).

    The layers are created on the meta device and then filled, so building a
    twin draws nothing from torch's global random generator.
    """
    dtype = torch_dtype(params.dtype)
    I, H, O = params.input_size, params.hidden_size, params.output_size
    rnn = nn.RNN(I, H, nonlinearity=nonlinearity, batch_first=batch_first, dtype=dtype, device="meta")
    out = nn.Linear(H, O, dtype=dtype, device="meta")
    twin = RNNTwin(rnn.to_empty(device="cpu"), out.to_empty(device="cpu"))
    with torch.no_grad():
        twin.rnn.weight_ih_l0.copy_(tensor_copy(params.U))
        twin.rnn.weight_hh_l0.copy_(tensor_copy(params.W))
        twin.rnn.bias_ih_l0.copy_(tensor_copy(params.b))
        twin.rnn.bias_hh_l0.zero_()  # all of b lives in bias_ih_l0 (see the module docstring)
        twin.out.weight.copy_(tensor_copy(params.V))
        twin.out.bias.copy_(tensor_copy(params.c))
    return twin


def twin_to_params(twin: RNNTwin) -> RNNParams:
    """The derivation's parameters of a twin (any twin: b = bias_ih_l0 + bias_hh_l0)."""

    def numpy(t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().numpy().copy()

    return RNNParams(
        U=numpy(twin.rnn.weight_ih_l0),
        W=numpy(twin.rnn.weight_hh_l0),
        V=numpy(twin.out.weight),
        b=numpy(twin.rnn.bias_ih_l0 + twin.rnn.bias_hh_l0),
        c=numpy(twin.out.bias),
    )
