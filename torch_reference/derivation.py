"""Autograd witnesses for the terms of the derivation (manual_bptt.tools.derivation).

nn.RNN shares one W across all steps, so it cannot say which step a gradient
came through. Here the network is unrolled with PyTorch operations and the
parameter of interest gets one copy per step: the model computes the same
function, and autograd's gradient of L(t) with respect to copy k is exactly the
term of ∂L(t)/∂W that flows through step k, [t-1, k-1] of `contributions`.

Like the manual helpers, they raise NonFiniteError when finite inputs overflow,
with the manual side's report (which replays the forward pass in NumPy).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.autograd.functional import jacobian

from manual_bptt import RNNParams
from manual_bptt.model.losses import mean_count
from manual_bptt.tools.derivation import WRT, check_finite_terms, check_steps, hidden_jacobian_overflow
from manual_bptt.inputs.options import Options, takes_options
from manual_bptt.inputs.validation import Problem, check_option, check_problem

from .network_twin import tensor_copy, torch_dtype, with_autograd


@takes_options
def torch_contributions(params: RNNParams, x, y, h0=None, *, wrt: str = "W", **options) -> np.ndarray:
    """(T, T, *shape of wrt): [t-1, k-1] = ∂L(t)/∂(copy k of wrt), by autograd.

    NonFiniteError if a state, the loss or a term overflows.
    """
    check_option("wrt", wrt, WRT)
    problem = check_problem(params, x, y, h0, Options.parse("torch_contributions", options, network=False))
    with with_autograd():                                          # also inside no_grad / inference_mode
        L, terms = _contributions(problem, wrt)
    check_finite_terms(problem, L, terms, wrt=wrt, computed_by="torch_contributions")
    return terms


def _contributions(problem: Problem, wrt: str) -> tuple[float, np.ndarray]:
    T = problem.T
    shared = _tensors(problem.params)
    copies = [shared[wrt].clone().requires_grad_() for _ in range(T)]
    h = _initial_state(problem)
    step_losses = []
    for k in range(1, T + 1):
        step_params = {**shared, wrt: copies[k - 1]}
        h = _cell(problem, step_params, k, h)
        o = F.linear(h, shared["V"], shared["c"])
        step_losses.append(_step_loss(problem, o, k))

    terms = np.zeros((T, T) + tuple(shared[wrt].shape), dtype=problem.params.dtype)
    for t, L_t in enumerate(step_losses, start=1):
        grads = torch.autograd.grad(L_t, copies[:t], retain_graph=True)
        for k, grad in enumerate(grads, start=1):
            terms[t - 1, k - 1] = grad.numpy()
    L = sum(float(L_t.detach()) for L_t in step_losses)             # L = Σ_t L(t)
    return L, terms


def torch_hidden_jacobian(
    params: RNNParams,
    x,
    h0=None,
    *,
    t: int,
    k: int,
    nonlinearity: str = "tanh",
    batch_first: bool = False,
) -> np.ndarray:
    """∂h(t)/∂h(k) by torch.autograd.functional.jacobian: (B, H, H), or (H, H) unbatched.

    NonFiniteError if a state h(j), j ≤ t, or the product overflows.
    """
    options = Options(nonlinearity=nonlinearity, batch_first=batch_first)
    problem = check_problem(params, x, None, h0, options, need_y=False)
    check_steps(problem, t, k)
    with with_autograd():                                          # also inside no_grad / inference_mode
        states_finite, matrix = _hidden_jacobian(problem, t, k)
    # relu's derivative is 0 at a NaN state: an overflowed state can leave a finite (zero) matrix.
    if not (states_finite and np.isfinite(matrix).all()):
        raise hidden_jacobian_overflow(problem, t, k, computed_by="torch_hidden_jacobian")
    return matrix


def _hidden_jacobian(problem: Problem, t: int, k: int) -> tuple[bool, np.ndarray]:
    """(whether every h(j), j ≤ t, is finite; the Jacobian)."""
    shared = _tensors(problem.params)
    h_k = _initial_state(problem)
    states = []
    with torch.no_grad():
        for j in range(1, k + 1):
            h_k = _cell(problem, shared, j, h_k)
            states.append(h_k)

    def h_t_of(h_start: torch.Tensor) -> torch.Tensor:
        h = h_start
        for j in range(k + 1, t + 1):
            h = _cell(problem, shared, j, h)
            states.append(h.detach())                              # jacobian calls this once, forward
        return h

    full = jacobian(h_t_of, h_k)                                   # (B, H, B, H): batch elements are independent
    B = problem.B
    per_example = torch.stack([full[n, :, n, :] for n in range(B)]).numpy()
    states_finite = all(bool(torch.isfinite(h).all()) for h in states)
    return states_finite, per_example if problem.batched else per_example[0]


def _tensors(p: RNNParams) -> dict[str, torch.Tensor]:
    return {name: tensor_copy(array) for name, array in p.items()}


def _initial_state(problem: Problem) -> torch.Tensor:
    H = problem.params.hidden_size
    if problem.h0 is None:
        return torch.zeros((problem.B, H), dtype=torch_dtype(problem.params.dtype))
    return tensor_copy(problem.h0)


def _cell(problem: Problem, q: dict[str, torch.Tensor], k: int, h_prev: torch.Tensor) -> torch.Tensor:
    """h(k) = φ(U x(k) + W h(k-1) + b), with whichever tensors q holds for step k."""
    x_k = tensor_copy(problem.x[k - 1])
    a = F.linear(x_k, q["U"]) + F.linear(h_prev, q["W"]) + q["b"]
    return torch.tanh(a) if problem.nonlinearity == "tanh" else torch.relu(a)


def _step_loss(problem: Problem, o: torch.Tensor, k: int) -> torch.Tensor:
    """L(k) with the reduction's factor: L = Σ_k L(k) matches bptt's L."""
    if problem.loss == "cross_entropy":
        L = F.cross_entropy(o, tensor_copy(problem.y[k - 1]).long(), reduction="sum")
    else:
        L = 0.5 * F.mse_loss(o, tensor_copy(problem.y[k - 1]), reduction="sum")
    # The "mean" rule is the package's (losses.mean_count): these terms witness the chain rule,
    # and the rule itself is witnessed by torch's own reduction="mean" in torch_bptt.
    return L / mean_count(problem.y) if problem.reduction == "mean" else L
