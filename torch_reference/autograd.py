"""Gradients of the twin model from torch.autograd, and the comparison report."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from manual_bptt import GradientReport, NetworkGrads, NetworkParams, RNNGrads, bptt, compare_grads, tolerance_for
from manual_bptt.options import Options, takes_options
from manual_bptt.validation import Problem, check_problem

from .network_twin import network_torch_bptt
from .twin import build_twin


@takes_options
def torch_bptt(params, x, y, h0=None, **options) -> tuple[float, RNNGrads | NetworkGrads]:
    """`bptt`'s result computed by torch.autograd on the twin model.

    Same arguments, same checks, same result types as `manual_bptt.bptt`: L as
    a Python float and an RNNGrads of NumPy arrays of the dtype of params. The
    twin receives the caller's layout as it is (batch_first, unbatched), so
    PyTorch's own handling of it is what is tested. Raises AssertionError if
    the two RNN biases of the twin get different gradients. Leaves torch's
    global state (default dtype, threads, random generator) untouched.

    A NetworkParams goes to its twin, nn.RNN / nn.LSTM / nn.GRU + nn.Linear
    (torch_reference.network_twin), with the network's keywords.
    """
    network, options = Options.for_params("torch_bptt", params, options)
    if network:
        return network_torch_bptt(params, x, y, h0, options)
    problem = check_problem(params, x, y, h0, options)
    twin = build_twin(params, nonlinearity=problem.nonlinearity, batch_first=problem.batch_first)
    # Copies, so autograd can never write into the caller's arrays.
    x_t = torch.tensor(np.asarray(x), requires_grad=True)
    H = params.hidden_size
    h0_shape = (problem.B, H) if problem.batched else (H,)
    h0_array = np.zeros(h0_shape, dtype=params.dtype) if h0 is None else np.asarray(h0)
    h0_t = torch.tensor(h0_array, requires_grad=True)

    o = twin(x_t, h0_t.unsqueeze(0))  # nn.RNN takes h0 as (layers, B, H) / (layers, H)
    L = _loss(o, y, problem)
    L.backward()

    rnn, out = twin.rnn, twin.out
    db_ih, db_hh = rnn.bias_ih_l0.grad, rnn.bias_hh_l0.grad
    tol = tolerance_for(params.dtype)
    scale = float(db_ih.abs().max()) if db_ih.numel() else 0.0
    if float((db_ih - db_hh).abs().max()) > tol.allowed(scale):
        raise AssertionError(
            "torch gave bias_ih_l0 and bias_hh_l0 different gradients; both should be ∂L/∂b"
        )

    def numpy(t: torch.Tensor) -> np.ndarray:
        return t.detach().numpy()

    grads = RNNGrads(
        U=numpy(rnn.weight_ih_l0.grad),
        W=numpy(rnn.weight_hh_l0.grad),
        V=numpy(out.weight.grad),
        b=numpy(db_ih),
        c=numpy(out.bias.grad),
        h0=numpy(h0_t.grad),
        x=numpy(x_t.grad),
    )
    return float(L.detach()), grads


def _loss(o: torch.Tensor, y, problem: Problem) -> torch.Tensor:
    """L from the outputs in the caller's layout, with torch's own reductions."""
    if problem.loss == "cross_entropy":
        labels = torch.as_tensor(np.asarray(y), dtype=torch.long)
        return F.cross_entropy(o.reshape(-1, o.shape[-1]), labels.reshape(-1), reduction=problem.reduction)
    targets = torch.tensor(np.asarray(y))
    return 0.5 * F.mse_loss(o, targets, reduction=problem.reduction)


@takes_options
def compare(params, x, y, h0=None, **options) -> GradientReport:
    """Run `bptt` and `torch_bptt` on the same problem; a row per gradient and for L.

    `report.ok` is True when every row is within the tolerance of the dtype
    (manual_bptt.TOLERANCES); `print(report)` shows the table. For a NetworkParams
    the rows are named by the state-dict keys, then h0 (c0) and x.
    """
    Options.for_params("compare", params, options)                 # a misspelt keyword names compare
    L, grads = bptt(params, x, y, h0, **options)
    L_ref, grads_ref = torch_bptt(params, x, y, h0, **options)
    return compare_grads(
        grads, grads_ref, loss=L, reference_loss=L_ref,
        actual_name="manual bptt", reference_name="torch.autograd",
    )
