"""The derivation's one-layer network as a twin module: the network twin, named U W b V c.

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

The modules are the network twin's (network_twin.build_network of the one-layer
NetworkParams), so the one-layer RNN and the network have one twin; `RNNTwin` only
holds them under the names `rnn` and `out` that a twin's state dict has always used.
"""

from __future__ import annotations

import torch
from torch import nn

from manual_bptt import NetworkParams, RNNParams
from manual_bptt.model.names import HEAD_SYMBOLS

from .network_twin import build_network


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


def build_twin(params: RNNParams, *, nonlinearity: str = "tanh", batch_first: bool = False) -> RNNTwin:
    """An RNNTwin holding copies of params (same dtype, on the CPU): the network twin of the
    one-layer NetworkParams (b_ih = b, b_hh = 0).

    The layers are created on the meta device and then filled, so building a
    twin draws nothing from torch's global random generator.
    """
    network = NetworkParams.from_rnn_params(params, nonlinearity=nonlinearity)
    return RNNTwin(*build_network(network, batch_first=batch_first))


def twin_to_params(twin: RNNTwin) -> RNNParams:
    """The derivation's parameters of a twin (any twin: b = bias_ih_l0 + bias_hh_l0)."""
    network = NetworkParams.from_torch(twin.rnn, twin.out)                 # copies, on the CPU
    layer = network.layer(0, 0)
    return RNNParams(U=layer.U, W=layer.W, V=network[HEAD_SYMBOLS["V"]], b=layer.b_ih + layer.b_hh,
                     c=network[HEAD_SYMBOLS["c"]])
