"""Gradients of the twin model from torch.autograd, and the comparison report."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from manual_bptt import GradientReport, RNNGrads, RNNParams, bptt, compare_grads, tolerance_for
from manual_bptt.overflow import check_finite_result
from manual_bptt.validation import Problem, check_problem

from .twin import build_twin, tensor_copy, with_autograd


def torch_bptt(
    params: RNNParams,
    x,
    y,
    h0=None,
    *,
    nonlinearity: str = "tanh",
    loss: str = "cross_entropy",
    reduction: str = "sum",
    batch_first: bool = False,
) -> tuple[float, RNNGrads]:
    """`bptt`'s result computed by torch.autograd on the twin model.

    Same arguments, same checks, same result types as `manual_bptt.bptt`: L as
    a Python float and an RNNGrads of NumPy arrays of the dtype of params. The
    twin receives the caller's layout as it is (batch_first, unbatched), so
    PyTorch's own handling of it is what is tested. Raises AssertionError if
    the two RNN biases of the twin get different gradients, NonFiniteError as
    `bptt` does if the result overflows. Works inside torch.no_grad() and
    torch.inference_mode() too. Leaves torch's global state (default dtype,
    grad mode, threads, random generator) untouched.
    """
    problem = check_problem(
        params, x, y, h0,
        nonlinearity=nonlinearity, loss=loss, reduction=reduction, batch_first=batch_first,
    )
    with with_autograd():
        L, grads = _torch_bptt(problem)
    check_finite_result(problem, L, grads, computed_by="torch.autograd")
    return L, grads


def _torch_bptt(problem: Problem) -> tuple[float, RNNGrads]:
    """Autograd on the twin, from the checked arguments in the caller's layout."""
    params = problem.params
    twin = build_twin(params, nonlinearity=problem.nonlinearity, batch_first=problem.batch_first)
    # Copies, so autograd can never write into the caller's arrays (and any strides,
    # even negative ones, are fine).
    x_t = tensor_copy(problem.to_caller_layout(problem.x)).requires_grad_()
    H = params.hidden_size
    h0_array = np.zeros((problem.B, H), dtype=params.dtype) if problem.h0 is None else problem.h0
    h0_t = tensor_copy(problem.h0_to_caller_layout(h0_array)).requires_grad_()

    o = twin(x_t, h0_t.unsqueeze(0))  # nn.RNN takes h0 as (layers, B, H) / (layers, H)
    L = _loss(o, problem)
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


def _loss(o: torch.Tensor, problem: Problem) -> torch.Tensor:
    """L from the outputs in the caller's layout, with torch's own reductions."""
    y = problem.to_caller_layout(problem.y)                        # checked: native intp labels or float targets
    if problem.loss == "cross_entropy":
        labels = tensor_copy(y).long()
        return F.cross_entropy(o.reshape(-1, o.shape[-1]), labels.reshape(-1), reduction=problem.reduction)
    return 0.5 * F.mse_loss(o, tensor_copy(y), reduction=problem.reduction)


def compare(
    params: RNNParams,
    x,
    y,
    h0=None,
    *,
    nonlinearity: str = "tanh",
    loss: str = "cross_entropy",
    reduction: str = "sum",
    batch_first: bool = False,
) -> GradientReport:
    """Run `bptt` and `torch_bptt` on the same problem; a row per gradient and for L.

    `report.ok` is True when every row is within the tolerance of the dtype
    (manual_bptt.TOLERANCES); `print(report)` shows the table.
    """
    options = dict(nonlinearity=nonlinearity, loss=loss, reduction=reduction, batch_first=batch_first)
    L, grads = bptt(params, x, y, h0, **options)
    L_ref, grads_ref = torch_bptt(params, x, y, h0, **options)
    return compare_grads(
        grads, grads_ref, loss=L, reference_loss=L_ref,
        actual_name="manual bptt", reference_name="torch.autograd",
    )
