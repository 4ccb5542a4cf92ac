"""Autograd witnesses for manual_bptt.tools.network_derivation, for every cell.

The network is unrolled step by step with one-layer, one-direction PyTorch modules of
the network's own kind (nn.RNN, nn.LSTM with its projection, nn.GRU), each called on
one time step, so every step runs PyTorch's own cell. For `torch_network_contributions`
the weight of interest gets one copy per natural time step (`torch.func.functional_call`
swaps it in): autograd's gradient of L(t) with respect to copy k is then exactly the
term [t-1, k-1]. `torch_state_jacobian` differentiates s(t) with respect to s(k) by
`torch.autograd.functional.jacobian`.

Like the manual helpers, both raise NonFiniteError when finite inputs overflow, with
the manual side's report (network.py's, which replays the forward pass in NumPy).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.autograd.functional import jacobian
from torch.func import functional_call

from manual_bptt import NetworkParams
from manual_bptt.model.losses import mean_count
from manual_bptt.model.names import CELL_FACTS, HEAD_SYMBOLS, LAYER_SYMBOLS, torch_name
from manual_bptt.tools.network_derivation import (check_contributions_problem, check_finite_network_terms,
                                            check_state_jacobian_problem, state_jacobian_overflow)
from manual_bptt.inputs.network_validation import NetworkProblem
from manual_bptt.inputs.options import takes_options

from .network_twin import _MODULES, torch_dtype


class _Unrolled:
    """The network as one-step modules: step(layer, direction, x_t, state, swap) → new state."""

    def __init__(self, problem: NetworkProblem):
        self.problem = problem
        p = problem.params
        self.p = p
        self.modules, self.weights = {}, {}
        for layer in range(p.num_layers):
            for direction in range(p.num_directions):
                w = p.layer(layer, direction)
                options = dict(input_size=w.U.shape[1], hidden_size=p.hidden_size, num_layers=1, bias=p.bias,
                               dtype=torch_dtype(p.dtype))
                if CELL_FACTS[p.cell].nonlinearity is not None:                 # an Elman cell: nn.RNN's φ
                    options["nonlinearity"] = CELL_FACTS[p.cell].nonlinearity
                if p.proj_size:
                    options["proj_size"] = p.proj_size
                # On the meta device: no draw from torch's global generator (every weight is swapped in).
                module = _MODULES[p.cell](**options, device="meta").to_empty(device="cpu")
                self.modules[layer, direction] = module
                self.weights[layer, direction] = {
                    torch_name(symbol, 0, 0): torch.tensor(getattr(w, symbol))
                    for symbol in LAYER_SYMBOLS if getattr(w, symbol) is not None
                }

    def initial_state(self, layer: int, direction: int) -> tuple:
        index = layer * self.p.num_directions + direction
        return tuple(torch.tensor(state) for state in self.problem.initial_state(index))

    def step(self, layer: int, direction: int, x_t: torch.Tensor, state: tuple, swap: dict | None = None) -> tuple:
        """One time step of PyTorch's own cell, with `swap` replacing some of its weights."""
        weights = {**self.weights[layer, direction], **(swap or {})}
        module_state = tuple(s.unsqueeze(0) for s in state)
        _, new = functional_call(self.modules[layer, direction], weights,
                                 (x_t.unsqueeze(0), module_state if len(state) > 1 else module_state[0]))
        new = new if isinstance(new, tuple) else (new,)
        return tuple(s.squeeze(0) for s in new)


@takes_options
def torch_network_contributions(params: NetworkParams, x, y, h0=None, *, wrt: str = torch_name("W", 0, 0),
                                **options) -> np.ndarray:
    """(T, T, *shape of wrt): [t-1, k-1] = ∂L(t)/∂(copy k of wrt), by autograd.

    NonFiniteError if a state, the loss or a term overflows.
    """
    problem, slot = check_contributions_problem("torch_network_contributions", params, x, y, h0, wrt, options)
    p = problem.params
    T, D = problem.T, p.num_directions
    net = _Unrolled(problem)
    shared = torch.tensor(p[wrt])
    copies = [shared.clone().requires_grad_() for _ in range(T)]
    local_name = torch_name(slot.symbol, 0, 0)
    inputs = [torch.tensor(problem.x[t]) for t in range(T)]
    for layer in range(p.num_layers):
        outputs = [[None] * T for _ in range(D)]
        for direction in range(D):
            state = net.initial_state(layer, direction)
            steps = range(T) if direction == 0 else range(T - 1, -1, -1)
            for t in steps:                                           # t: natural time, 0-based
                swap = {local_name: copies[t]} if (layer, direction) == (slot.layer, slot.direction) else None
                state = net.step(layer, direction, inputs[t], state, swap)
                outputs[direction][t] = state[0]
        inputs = [torch.cat([outputs[d][t] for d in range(D)], dim=-1) for t in range(T)]
    V, c = torch.tensor(p[HEAD_SYMBOLS["V"]]), torch.tensor(p[HEAD_SYMBOLS["c"]])
    # The "mean" rule is the package's (losses.mean_count): these terms witness the chain rule,
    # and the rule itself is witnessed by torch's own reduction="mean" in torch_bptt.
    count = mean_count(problem.y)
    terms = np.zeros((T, T) + tuple(shared.shape), dtype=p.dtype)
    L = 0.0
    for t in range(T):
        o = F.linear(inputs[t], V, c)
        if problem.loss == "cross_entropy":
            L_t = F.cross_entropy(o, torch.as_tensor(problem.y[t], dtype=torch.long), reduction="sum")
        else:
            L_t = 0.5 * F.mse_loss(o, torch.tensor(problem.y[t]), reduction="sum")
        if problem.reduction == "mean":
            L_t = L_t / count
        L += float(L_t.detach())                                    # L = Σ_t L(t)
        grads = torch.autograd.grad(L_t, copies, retain_graph=True, allow_unused=True)
        for k, grad in enumerate(grads):
            if grad is not None:
                terms[t, k] = grad.numpy()
    check_finite_network_terms(problem, L, terms, wrt=wrt, computed_by="torch_network_contributions")
    return terms


def torch_state_jacobian(params: NetworkParams, x, h0=None, *, t: int, k: int, layer: int = 0, direction: int = 0,
                         batch_first: bool = False) -> np.ndarray:
    """∂s(t)/∂s(k) of one layer and direction by autograd: (B, S, S), or (S, S) unbatched.

    NonFiniteError if a state it depends on, or the product, overflows.
    """
    problem = check_state_jacobian_problem(params, x, h0, t=t, k=k, layer=layer, direction=direction,
                                           batch_first=batch_first)
    p = problem.params
    net = _Unrolled(problem)
    T, D = problem.T, p.num_directions
    with torch.no_grad():
        inputs = [torch.tensor(problem.x[j]) for j in range(T)]
        for below in range(layer):                                   # the layer's input, by the layers below
            outputs = [[None] * T for _ in range(D)]
            for d in range(D):
                state = net.initial_state(below, d)
                for j in (range(T) if d == 0 else range(T - 1, -1, -1)):
                    state = net.step(below, d, inputs[j], state)
                    outputs[d][j] = state[0]
            inputs = [torch.cat([outputs[d][j] for d in range(D)], dim=-1) for j in range(T)]
        sequence = inputs if direction == 0 else inputs[::-1]
        state = net.initial_state(layer, direction)
        states = []                                                  # s(1) … s(t), to check they are finite
        for j in range(k):
            state = net.step(layer, direction, sequence[j], state)
            states.append(torch.cat(state, dim=-1))
    sizes = [s.shape[-1] for s in state]

    def s_t_of(s_k: torch.Tensor) -> torch.Tensor:
        s = tuple(torch.split(s_k, sizes, dim=-1))
        for j in range(k, t):
            s = net.step(layer, direction, sequence[j], s)
            states.append(torch.cat(s, dim=-1).detach())             # jacobian calls this once, forward
        return torch.cat(s, dim=-1)

    full = jacobian(s_t_of, torch.cat(state, dim=-1))                # (B, S, B, S): examples are independent
    per_example = torch.stack([full[n, :, n, :] for n in range(problem.B)]).numpy()
    # relu's derivative is 0 at a NaN state: an overflowed state can leave a finite (zero) matrix.
    if not (all(bool(torch.isfinite(s).all()) for s in states) and np.isfinite(per_example).all()):
        raise state_jacobian_overflow(problem, t, k, layer, direction, computed_by="torch_state_jacobian")
    return per_example if problem.batched else per_example[0]
