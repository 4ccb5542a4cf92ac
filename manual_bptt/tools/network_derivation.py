"""The derivation's objects for every cell: Jacobians of the state, and the terms of the sum over k.

For the Elman RNN (derivation.py) the state is h and ∂h(t)/∂h(k) = Π_j diag(φ'(a(j))) W.
For an LSTM the state is the pair s = (h, c), for a GRU it is h again, and in every
case

    ∂s(t)/∂s(k) = ∂s(t)/∂s(t-1) · … · ∂s(k+1)/∂s(k)          (the empty product, k = t, is I)

`state_jacobian` evaluates that product with the cells' own one-step backward
(cells/): a row of ∂s(t)/∂s(k) is the vector-Jacobian product of a unit vector
carried back from step t to step k, exactly what BPTT does with ∂L/∂s(t).

`network_contributions` splits a weight's gradient the way the source splits ∂L/∂W:
term [t-1, k-1] is the part of ∂L(t)/∂w that flows through step k's use of w (its
immediate partial at step k, times the chain from k to t). Summed over t and k it is
∂L/∂w; a truncated BPTT keeps only the terms with k in t's chunk.

Both raise `NonFiniteError`, as `bptt` does, when finite inputs make the computation
leave the float range, naming the state, layer, direction and step that overflowed
(network.py's report), or the step at which the backward product did. The results
are checked once; the computation is replayed only when something is not finite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..fast.cells import cell_for
from ..fast.network import TimeOrder, network_backward, network_forward_checked, network_forward_overflow
from ..inputs.network_validation import check_network_problem
from ..inputs.options import Options, takes_options
from ..inputs.overflow import NonFiniteError, all_finite
from ..model.names import HEAD_SYMBOLS, slot_of, torch_name
from ..model.network_params import NetworkParams
from ..model.readout import readout
from .derivation import HiddenJacobian, check_steps


@dataclass(frozen=True)
class StateJacobian(HiddenJacobian):
    """∂s(t)/∂s(k) for one layer and direction: (B, S, S), or (S, S) unbatched.

    The state s stacks the cell's states in order: h (H_out) for the Elman and GRU
    cells, h then c (H_out + H) for the LSTM. `block("c", "c")` is ∂c(t)/∂c(k).
    """

    names: tuple
    sizes: tuple

    def block(self, of: str, wrt: str) -> HiddenJacobian:
        """∂of(t)/∂wrt(k), e.g. block("c", "c") for the LSTM's cell state."""
        for name in (of, wrt):
            if name not in self.names:
                raise ValueError(f"block: expected one of {self.names}, got {name!r}")
        edges = np.cumsum((0,) + tuple(self.sizes))
        rows = slice(edges[self.names.index(of)], edges[self.names.index(of) + 1])
        cols = slice(edges[self.names.index(wrt)], edges[self.names.index(wrt) + 1])
        return HiddenJacobian(matrix=np.array(self.matrix[..., rows, cols]), t=self.t, k=self.k)


def state_jacobian(params: NetworkParams, x, h0=None, *, t: int, k: int, layer: int = 0, direction: int = 0,
                   batch_first: bool = False) -> StateJacobian:
    """∂s(t)/∂s(k) of one layer and direction, for 0 ≤ k ≤ t ≤ T, with x held fixed.

    t and k count that direction's own steps: for the reverse direction, step 1 is
    the last element of the sequence. h0 as for `bptt` ((L·D, B, H_out), an LSTM's
    pair (h0, c0)). NonFiniteError if a state it depends on, or the product, overflows.
    """
    problem = check_state_jacobian_problem(params, x, h0, t=t, k=k, layer=layer, direction=direction,
                                           batch_first=batch_first)
    return state_jacobian_of_problem(problem, t, k, layer, direction, computed_by="state_jacobian")


def check_state_jacobian_problem(params, x, h0, *, t, k, layer, direction, batch_first):
    """The checked problem of `state_jacobian` and its autograd witness; layer, direction, t, k checked."""
    problem = check_network_problem(params, x, None, h0, Options(batch_first=batch_first), need_y=False)
    p = problem.params
    for name, value, limit in (("layer", layer, p.num_layers), ("direction", direction, p.num_directions)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name}: expected an int, got {value!r}")
        if not 0 <= value < limit:
            raise ValueError(f"{name}: expected 0 <= {name} < {limit}, got {value}")
    check_steps(problem, t, k)
    return problem


def state_jacobian_of_problem(problem, t: int, k: int, layer: int, direction: int, *,
                              computed_by: str) -> StateJacobian:
    """∂s(t)/∂s(k) on a checked problem, steps, layer and direction."""
    p = problem.params
    index = layer * p.num_directions + direction
    trace = network_forward_checked(problem).layers[index].trace
    # The states the product is evaluated at, checked before the backward pass overwrites them:
    # relu's φ' is 0 at a NaN a(j), so an overflowed state can leave a finite (zero) product.
    if not all_finite(*(states[:t + 1] for states in trace.states)):
        raise state_jacobian_overflow(problem, t, k, layer, direction, computed_by=computed_by)
    sizes = tuple(state.shape[-1] for state in trace.states)
    S, B = sum(sizes), problem.B
    matrix = np.zeros((B, S, S), dtype=p.dtype)
    for row in range(S):
        if row > 0:                                                  # each row consumes a trace
            trace = network_forward_checked(problem).layers[index].trace
        dstate, _ = _carried_back(trace, row, sizes, t, k)
        matrix[:, row, :] = np.concatenate(dstate, axis=-1)
    if not all_finite(matrix):
        raise state_jacobian_overflow(problem, t, k, layer, direction, computed_by=computed_by)
    names = cell_for(p.cell).state_names
    return StateJacobian(matrix=matrix if problem.batched else matrix[0], t=t, k=k, names=names, sizes=sizes)


def _carried_back(trace, row: int, sizes: tuple, t: int, k: int, *, watch: bool = False) -> tuple:
    """Row `row` of ∂s(t)/∂s(k): the unit vector e_row carried back from s(t) to s(k), as a tuple
    of the states' parts (B, ·); and, with watch, the first step j (the backward pass meets the
    largest first) at which ∂s(t)/∂s(j) was not finite, else None.

    The trace must be fresh from a forward pass: begin_backward and step_backward overwrite
    what the forward pass kept (cells/__init__.py), so a trace carries one row.
    """
    trace.begin_backward()
    B, dtype = trace.states[0].shape[1], trace.states[0].dtype
    dstate = tuple(np.zeros((B, size), dtype=dtype) for size in sizes)
    edges = np.cumsum((0,) + sizes)
    part = int(np.searchsorted(edges, row, side="right")) - 1
    dstate[part][:, row - edges[part]] = 1
    for j in range(t - 1, k - 1, -1):
        trace.step_backward(j, dstate)                               # dstate: ∂s(t)/∂s(j+1) → ∂s(t)/∂s(j)
        if watch and not all(np.isfinite(part).all() for part in dstate):
            return dstate, j
    return dstate, None


def state_jacobian_overflow(problem, t: int, k: int, layer: int, direction: int, *,
                            computed_by: str) -> NonFiniteError:
    """Why ∂s(t)/∂s(k) is not finite: the first state it depends on that overflowed (network.py's
    report); else the step j at which a row of the product, carried back from t, first did.
    Replays the computation one row and one step at a time (only on this failure path)."""
    error = network_forward_overflow(problem, None, computed_by=computed_by, upto=(layer, direction, t))
    if error is not None:
        return error
    p = problem.params
    index = layer * p.num_directions + direction
    where = (f"{computed_by} ({p.dtype}, {p.cell}, T = {problem.T}): ∂s(t)/∂s(k) of layer {layer}, "
             f"{'reverse' if direction else 'forward'} direction, for t = {t}, k = {k}")
    with np.errstate(all="ignore"):
        sizes = tuple(state.shape[-1] for state in network_forward_checked(problem).layers[index].trace.states)
        steps = [_carried_back(network_forward_checked(problem).layers[index].trace, row, sizes, t, k, watch=True)[1]
                 for row in range(sum(sizes))]
    bad = [j for j in steps if j is not None]
    if not bad:
        return NonFiniteError(f"{where}, is not finite, although the states and the product, replayed here, are",
                              quantity="∂s(t)/∂s(k)", step=None)
    j = max(bad)                                                     # the backward pass meets it first
    return NonFiniteError(
        f"{where}: the backward product overflowed: ∂s(t)/∂s(j) is not finite at step j = {j} "
        f"(counted in that direction's own order), {t - j} steps back from t; scale the weights down",
        quantity="∂s(t)/∂s(k)", step=j)


@takes_options
def network_contributions(params: NetworkParams, x, y, h0=None, *, wrt: str = torch_name("W", 0, 0),
                          **options) -> np.ndarray:
    """(T, T, *shape of wrt): [t-1, k-1] = the term of ∂L(t)/∂wrt through step k.

    wrt: a recurrent weight's name (weight_ih_l*, weight_hh_l*, bias_*, weight_hr_l*,
    with _reverse); k counts time in the natural order for either direction, so the
    reverse direction's terms sit at k ≥ t. Needs target "each_step", no lengths and no
    truncation (the terms are those of the full gradient); the keywords are otherwise
    `bptt`'s. O(T) backward passes. NonFiniteError if a state, the loss or a term overflows.
    """
    problem, slot = check_contributions_problem("network_contributions", params, x, y, h0, wrt, options)
    p = problem.params
    index = slot.layer * p.num_directions + slot.direction
    T = problem.T
    terms = np.zeros((T, T) + p[wrt].shape, dtype=p.dtype)
    r = readout(p[HEAD_SYMBOLS["V"]], p[HEAD_SYMBOLS["c"]], network_forward_checked(problem).top, problem.y,
                loss=problem.loss, reduction=problem.reduction)
    whole = r.h_top                                                  # ∂L/∂h_top, every L(t)
    order = TimeOrder(problem)
    for t in range(1, T + 1):
        cache = network_forward_checked(problem)                     # the backward pass consumes a cache
        dtop = np.zeros_like(whole)
        dtop[t - 1] = whole[t - 1]                                   # L(t) alone
        network_backward(problem, cache, dtop, None)
        terms[t - 1] = _terms_by_step(cache.layers[index], slot.symbol, order, slot.direction)
    check_finite_network_terms(problem, r.L, terms, wrt=wrt, computed_by="network_contributions")
    return terms


def check_finite_network_terms(problem, L: float, terms: np.ndarray, *, wrt: str, computed_by: str) -> None:
    """NonFiniteError if L or a term [t-1, k-1] is not finite: the first state that overflowed, or
    the loss (network.py's report); else the first term, in the backward pass's order, that did."""
    if math.isfinite(L) and all_finite(terms):
        return
    error = network_forward_overflow(problem, L, computed_by=computed_by)
    if error is None:
        finite = np.isfinite(terms.reshape(terms.shape[:2] + (-1,))).all(axis=-1)     # (T, T): [t-1, k-1]
        # The chain from t reaches step k after |t - k| steps: the shortest chain that overflowed.
        t, k = min(((t + 1, k + 1) for t, k in np.argwhere(~finite)), key=lambda tk: (abs(tk[0] - tk[1]), tk[0]))
        p = problem.params
        error = NonFiniteError(
            f"{computed_by} ({p.dtype}, {p.cell}, T = {problem.T}): the backward pass overflowed: the term of "
            f"∂L(t)/∂{wrt} through step k is not finite at t = {t}, k = {k} ({abs(t - k)} steps apart), "
            "although L is; scale the weights down", quantity=f"∂L(t)/∂{wrt}", step=k)
    raise error


def check_contributions_problem(function: str, params, x, y, h0, wrt, options: dict):
    """The checked problem and the Slot of `wrt`, for `network_contributions` and its autograd witness:
    a recurrent weight of this network, target "each_step", no lengths, no truncation."""
    checked = Options.parse(function, options, network=True)
    problem = check_network_problem(params, x, y, h0, checked)
    p = problem.params
    slot = slot_of(wrt) if isinstance(wrt, str) else None
    if slot is None or slot.layer is None or wrt not in p.arrays:
        recurrent = [name for name in p.keys() if slot_of(name).layer is not None]
        raise ValueError(f"wrt: expected one of the network's recurrent weights {recurrent}, got {wrt!r}")
    if problem.target != "each_step":
        raise ValueError(f"target: {function} needs target='each_step', got {problem.target!r}")
    for name in ("lengths", "truncate"):
        if getattr(problem, name) is not None:
            raise ValueError(f"{name}: {function} needs {name}=None, got {getattr(problem, name)!r}")
    return problem, slot


def _terms_by_step(sequence_cache, symbol: str, order: TimeOrder, direction: int) -> np.ndarray:
    """Per natural step k, the immediate partial of that step times the gradient it received."""
    trace = sequence_cache.trace
    back = lambda per_step: order.back(direction, per_step)          # noqa: E731 (frame → natural time)
    if symbol in ("U", "b_ih"):
        delta, z = back(trace.da_x), back(sequence_cache.x)
    elif symbol in ("W", "b_hh"):
        delta, z = back(trace.da_h), back(trace.states[0][:-1])
    else:                                                            # W_hr: ∂L/∂h(t) m(t)ᵀ
        delta, z = back(trace.dh_all), back(trace.m)
    if symbol.startswith("b_"):
        return delta.sum(axis=1)                                     # Σ over the batch, per step
    return np.einsum("kbi,kbj->kij", delta, z)
