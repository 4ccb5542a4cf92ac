"""`bptt` for both kinds of params; the derivation's one-layer Elman RNN as a one-layer network.

The model of an RNNParams, for t = 1 … T, with h(0) = h0 (zeros when not given):

    a(t) = U x(t) + W h(t-1) + b
    h(t) = φ(a(t))                      φ = tanh or relu
    o(t) = V h(t) + c
    L    = Σ_t L(t)                     (see losses.py for L(t) and "mean")

is nn.RNN with one layer and one direction followed by nn.Linear: U = weight_ih_l0,
W = weight_hh_l0, b = bias_ih_l0 + bias_hh_l0, V = head.weight, c = head.bias. So it
runs the network engine (network.py, sequence.py, cells/elman.py) on that stack, with
b_ih = b and b_hh = 0; ∂L/∂b is ∂L/∂b_ih = Σ_t ∂L/∂a(t). The recursion, section 6.9
of the source derivation as the O(T) loop that evaluates its sum over k, is the Elman
cell's step (cells/elman.py) run by sequence.py:

    ∂L/∂h(t) = Vᵀ ∂L(t)/∂o(t)  +  Wᵀ ∂L/∂a(t+1)      (the second term is 0 for t = T)
    ∂L/∂a(t) = φ'(a(t)) ⊙ ∂L/∂h(t)

Index convention, used throughout: Python index i of x, a, o, y is time step
t = i + 1 (x[0] is x(1)); h has one more row, h[t] is h(t) and h[0] is h(0).
All arrays here are time-major and batched: (T, B, ...).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..inputs.options import Options, takes_options
from ..inputs.overflow import NonFiniteError, all_finite, first_forward_overflow, gradient_overflow
from ..inputs.validation import check_problem
from ..model.names import ELMAN_CELLS
from ..model.network_params import LayerWeights, NetworkGrads
from ..model.params import RNNGrads, RNNParams
from .cells import cell_for
from .network import Stack, TimeOrder, network_bptt, stack_bptt, stack_forward


@dataclass
class RNNCache:
    """What the forward pass computed, time-major and batched.

    x: (T, B, I)      x[t-1] = x(t), the input as given (a view, never a copy)
    a: (T, B, H)      a[t-1] = a(t) = U x(t) + W h(t-1) + b
    h: (T+1, B, H)    h[t] = h(t), with h[0] = h(0) = h0
    o: (T, B, O)      o[t-1] = o(t) = V h(t) + c

    `rnn_forward` returns this layout whatever the layout of its input
    (batch_first, or unbatched with B = 1).
    """

    x: np.ndarray
    a: np.ndarray
    h: np.ndarray
    o: np.ndarray
    nonlinearity: str


def rnn_forward(params: RNNParams, x, h0=None, *, nonlinearity="tanh", batch_first=False) -> RNNCache:
    """Run the network over a sequence and keep a(t), h(t), o(t) for every step.

    params: RNNParams with U (H, I), W (H, H), V (O, H), b (H,), c (O,)
    x:      (T, B, I); (B, T, I) with batch_first; (T, I) unbatched
    h0:     (B, H), or (H,) unbatched; None means zeros
    Returns an RNNCache, always time-major and batched (see its docstring).
    Raises NonFiniteError (a ValueError) naming the step if the outputs overflow.
    """
    options = Options(nonlinearity=nonlinearity, batch_first=batch_first)
    problem = check_problem(params, x, None, h0, options, need_y=False)
    cache = _forward(problem.params, problem.x, problem.h0, problem.nonlinearity)
    if not all_finite(cache.o):                                      # o(t) is non-finite if h(t) is
        raise first_forward_overflow(problem, cache.h, None, computed_by="rnn_forward")
    return cache


@takes_options
def bptt(params, x, y, h0=None, **options) -> tuple[float, RNNGrads | NetworkGrads]:
    """The loss L and its gradient for every parameter, for h0 and for x.

    params:       RNNParams with U (H, I), W (H, H), V (O, H), b (H,), c (O,);
                  or a NetworkParams (see below)
    x:            (T, B, I); (B, T, I) with batch_first; (T, I) unbatched
    y:            cross_entropy: integer labels in [0, O), (T, B) / (B, T) / (T,)
                  mse: targets of the dtype of params, (T, B, O) / (B, T, O) / (T, O)
    h0:           (B, H), or (H,) unbatched; None means zeros
    nonlinearity: "tanh" or "relu"
    loss:         "cross_entropy" or "mse" (½‖o(t) - y(t)‖²)
    reduction:    "sum" (L = Σ_t L(t), summed over the batch too) or "mean"
    batch_first:  x and y are (B, T, ...); never applies to h0

    Returns (L as a Python float, RNNGrads), every gradient shaped like its
    argument and of the dtype of params. Bad input raises ValueError/TypeError
    before any computation; no argument is modified. If finite input makes the
    computation overflow, NonFiniteError (a ValueError and a FloatingPointError)
    says what overflowed first and at which step.

    With a NetworkParams (stacked, bidirectional, any cell), the network's keywords
    apply instead of nonlinearity (the cell says it): lengths ((B,) ints in [1, T]),
    target ("each_step" or "last"), truncate (None or k); h0 is (L·D, B, H_out), an
    LSTM's a pair (h0, c0). The result is (L, NetworkGrads); manual_bptt.fast.network
    says the rest. The options are those of `manual_bptt.inputs.options.Options`.
    """
    network, options = Options.for_params("bptt", params, options)
    # A gradient too small for the dtype rounds to a subnormal or to 0: a softmax's far-off
    # classes, a saturated gate's derivative times a small upstream signal. That is rounding,
    # the right answer and no error, so an np.errstate(under="raise") of the caller's does not
    # apply inside (one context a call, nothing per step). Overflow and invalid operations keep
    # the caller's setting; an overflow is a NonFiniteError anyway (check_finite_result).
    with np.errstate(under="ignore"):
        if network:
            return network_bptt(params, x, y, h0, options)
        problem = check_problem(params, x, y, h0, options)
        p = problem.params
        g = stack_bptt(elman_stack(p, problem.nonlinearity), problem.x, problem.y, [(_initial_state(p, problem.B, problem.h0),)],
                       loss=problem.loss, reduction=problem.reduction)
        (layer,), ((dh0,),) = g.weights, g.state0
        grads = RNNGrads(
            U=layer["U"], W=layer["W"], V=g.readout.V, b=layer["b_ih"], c=g.readout.c,
            h0=problem.h0_to_caller_layout(dh0),
            x=problem.to_caller_layout(g.x),
        )
        check_finite_result(problem, g.readout.L, grads, computed_by="bptt")   # once, on the results: no cost per step
        return g.readout.L, grads


def elman_stack(p: RNNParams, nonlinearity: str) -> Stack:
    """The one-layer, one-direction Elman network of an RNNParams: b_ih = b, b_hh = 0 (b = b_ih + b_hh)."""
    layer = LayerWeights(U=p.U, W=p.W, b_ih=p.b, b_hh=np.zeros_like(p.b))
    return Stack(cell=cell_for(ELMAN_CELLS[nonlinearity]), layers=(layer,), num_directions=1, V=p.V, c=p.c)


def _initial_state(p: RNNParams, B: int, h0: np.ndarray | None) -> np.ndarray:
    """h(0): (B, H), zeros when h0 was not given."""
    return np.zeros((B, p.hidden_size), dtype=p.dtype) if h0 is None else h0


def _elman_trace(p: RNNParams, x: np.ndarray, h0: np.ndarray | None, nonlinearity: str):
    """The engine's forward pass of the one-layer Elman stack on validated, time-major arrays
    x: (T, B, I), h0: (B, H) or None; its trace holds a(t) and h(t)."""
    stack = elman_stack(p, nonlinearity)
    return stack_forward(stack, x, [(_initial_state(p, x.shape[1], h0),)], None, TimeOrder()).layers[0].trace


def _forward(p: RNNParams, x: np.ndarray, h0: np.ndarray | None, nonlinearity: str) -> RNNCache:
    """The forward pass on validated, time-major arrays x: (T, B, I), h0: (B, H) or None:
    the network engine's, read off the Elman trace, then o(t) = V h(t) + c."""
    T, B, _ = x.shape
    trace = _elman_trace(p, x, h0, nonlinearity)
    h = trace.h
    o = (h[1:].reshape(T * B, -1) @ p.V.T).reshape(T, B, -1)        # V h(t), all steps in one product
    o += p.c                                                         # o(t) = V h(t) + c
    return RNNCache(x=x, a=trace.a, h=h, o=o, nonlinearity=nonlinearity)


def check_finite_result(problem, L: float | None, grads: RNNGrads | None, *, computed_by: str) -> None:
    """NonFiniteError if L or any gradient is not finite, naming what overflowed first.

    problem: the validated `Problem` the result was computed from (time-major). The network's
    twin is fast/network.py's `check_finite_network_result`.
    """
    if (L is None or math.isfinite(L)) and (grads is None or all_finite(*(g for _, g in grads.items()))):
        return
    raise locate_overflow(problem, L, grads, computed_by=computed_by)


def locate_overflow(problem, L, grads, *, computed_by: str) -> NonFiniteError:
    """The first h(t), o(t) or L(t) that is not finite, replayed on the engine; else the first
    step of the backward pass whose ∂L/∂a(t) is not, else the sums over t (inputs/overflow.py
    words each)."""
    error = forward_overflow(problem, L, computed_by=computed_by)
    if error is not None:
        return error
    return gradient_overflow(problem, grads, computed_by=computed_by)


def forward_overflow(problem, L: float | None, *, computed_by: str, last_step: int | None = None,
                     readout: bool = True) -> NonFiniteError | None:
    """The NonFiniteError naming the first h(t), o(t) or L(t) that is not finite (then L, when
    given), None if all of them are finite: the engine's forward pass run again (it runs only
    once something is known to be non-finite), its states read by `first_forward_overflow`.

    last_step: read only steps 1..last_step (default T); readout=False: h(t) alone, for
    what depends on the states only (∂h(t)/∂h(k)).
    """
    with np.errstate(all="ignore"):
        h = _elman_trace(problem.params, problem.x, problem.h0, problem.nonlinearity).h
    return first_forward_overflow(problem, h, L, computed_by=computed_by, last_step=last_step, readout=readout)
