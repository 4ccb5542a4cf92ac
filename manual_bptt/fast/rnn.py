"""Forward pass and back-propagation through time for the Elman RNN.

The model, for t = 1 … T, with h(0) = h0 (zeros when not given):

    a(t) = U x(t) + W h(t-1) + b
    h(t) = φ(a(t))                      φ = tanh or relu
    o(t) = V h(t) + c
    L    = Σ_t L(t)                     (see losses.py for L(t) and "mean")

Index convention, used throughout: Python index i of x, a, o, y is time step
t = i + 1 (x[0] is x(1)); h has one more row, h[t] is h(t) and h[0] is h(0).
All arrays here are time-major and batched: (T, B, ...).

Back-propagation through time (section 6.9 of the source derivation) written as
the O(T) recursion that evaluates its sum over k: the gradient carried back
into step t is

    ∂L/∂h(t) = Vᵀ ∂L(t)/∂o(t)  +  Wᵀ ∂L/∂a(t+1)      (the second term is 0 for t = T)
    ∂L/∂a(t) = φ'(a(t)) ⊙ ∂L/∂h(t)

and each parameter collects, over every step, the immediate partial of that
step (h(t-1) held fixed):

    ∂L/∂W = Σ_t ∂L/∂a(t) h(t-1)ᵀ     ∂L/∂U = Σ_t ∂L/∂a(t) x(t)ᵀ     ∂L/∂b = Σ_t ∂L/∂a(t)
    ∂L/∂V = Σ_t ∂L(t)/∂o(t) h(t)ᵀ    ∂L/∂c = Σ_t ∂L(t)/∂o(t)

Only the recursion runs as a Python loop; every sum over t is one matrix
product over all T·B rows at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..inputs.options import Options, takes_options
from ..inputs.overflow import all_finite, check_finite_result, locate_overflow
from ..inputs.validation import check_problem
from ..model import activations, losses
from ..model.network_params import NetworkGrads
from ..model.params import RNNGrads, RNNParams
from ..model.reductions import column_sums
from .network import network_bptt


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
        raise locate_overflow(problem, None, None, computed_by="rnn_forward")
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
        cache = _forward(problem.params, problem.x, problem.h0, problem.nonlinearity)
        # The cache is bptt's own and dropped on return, so its buffers are reused:
        # o becomes ∂L/∂o and a becomes φ'(a) (peak memory stays near the activations).
        L, do = losses.loss_and_grad(problem.loss, problem.reduction, cache.o, problem.y, overwrite_o=True)
        g = _backward(problem.params, cache, do)
        grads = RNNGrads(
            U=g["U"], W=g["W"], V=g["V"], b=g["b"], c=g["c"],
            h0=problem.h0_to_caller_layout(g["h0"]),
            x=problem.to_caller_layout(g["x"]),
        )
        check_finite_result(problem, L, grads, computed_by="bptt")       # once, on the results: no cost per step
        return L, grads


def _forward(p: RNNParams, x: np.ndarray, h0: np.ndarray | None, nonlinearity: str) -> RNNCache:
    """The forward pass on validated, time-major arrays x: (T, B, I), h0: (B, H) or None."""
    T, B, I = x.shape
    H, O = p.hidden_size, p.output_size
    h = np.empty((T + 1, B, H), dtype=p.dtype)
    h[0] = 0 if h0 is None else h0                                   # h(0) = h0
    a = (x.reshape(T * B, I) @ p.U.T).reshape(T, B, H)               # U x(t), all steps in one product
    a += p.b                                                         # + b
    WT = np.ascontiguousarray(p.W.T)                                 # Wᵀ, one (H, H) copy: BLAS is faster on it
    # Local names, positional out= and rows as views from iteration (not a[t - 1]):
    # each saves a lookup or a temporary in the one loop that runs T times.
    phi, dot, add = activations.PHI[nonlinearity], np.dot, np.add
    for a_t, h_prev, h_t in zip(a, h[:-1], h[1:]):
        dot(h_prev, WT, h_t)                                         # W h(t-1), into h(t)'s row: no temporary
        add(a_t, h_t, a_t)                                           # a(t) = U x(t) + b + W h(t-1)
        phi(a_t, h_t)                                                # h(t) = φ(a(t))
    o = (h[1:].reshape(T * B, H) @ p.V.T).reshape(T, B, O)           # V h(t), all steps in one product
    o += p.c                                                         # o(t) = V h(t) + c
    return RNNCache(x=x, a=a, h=h, o=o, nonlinearity=nonlinearity)


def _backward(p: RNNParams, cache: RNNCache, do: np.ndarray) -> dict[str, np.ndarray]:
    """Gradients (time-major) from the upstream signal do: (T, B, O), do[t-1] = ∂L/∂o(t).

    Consumes the cache: its a is overwritten by φ'(a(t)), saving a (T, B, H)
    buffer. bptt makes the cache for this call alone and drops it after.
    """
    x, a, h = cache.x, cache.a, cache.h
    T, B, I = x.shape
    H, O = p.hidden_size, p.output_size
    rows_h, rows_h_prev = h[1:].reshape(T * B, H), h[:-1].reshape(T * B, H)
    dphi = activations.dphi(cache.nonlinearity, a, h[1:], out=a)     # φ'(a(t)) for every t, in a's buffer

    # Output layer: no recursion, one product over all T·B rows.
    do_rows = do.reshape(T * B, O)
    dV = do_rows.T @ rows_h                                          # Σ_t ∂L(t)/∂o(t) h(t)ᵀ
    dc = column_sums(do_rows)                                        # Σ_t ∂L(t)/∂o(t)
    da = (do_rows @ p.V).reshape(T, B, H)                            # for now Vᵀ ∂L(t)/∂o(t), the local part of ∂L/∂h(t)

    # The recursion, t = T down to 1. Row t-1 of da holds ∂L/∂h(t) and becomes
    # ∂L/∂a(t) in place (one (T, B, H) buffer for both); dh_next is ∂L/∂h(t-1),
    # carried back into the step before.
    W, dot, add, multiply = p.W, np.dot, np.add, np.multiply         # local names for the loop
    dh_next = np.empty((B, H), dtype=p.dtype)                        # one buffer for every step (out=)
    multiply(da[T - 1], dphi[T - 1], da[T - 1])                      # t = T: nothing is carried from T+1
    dot(da[T - 1], W, dh_next)
    for da_t, dphi_t in zip(da[-2::-1], dphi[-2::-1]):              # t = T-1, ..., 1
        add(da_t, dh_next, da_t)                                     # ∂L/∂h(t) = local + carried from t+1
        multiply(da_t, dphi_t, da_t)                                 # ∂L/∂a(t) = φ'(a(t)) ⊙ ∂L/∂h(t)
        dot(da_t, W, dh_next)                                        # ∂L/∂h(t-1) = Wᵀ ∂L/∂a(t)
    dh0 = dh_next                                                    # ∂L/∂h(0)

    # Immediate partials of a(t), summed over t: one product each.
    da_rows = da.reshape(T * B, H)
    dW = da_rows.T @ rows_h_prev                                     # Σ_t ∂L/∂a(t) h(t-1)ᵀ
    dU = da_rows.T @ x.reshape(T * B, I)                             # Σ_t ∂L/∂a(t) x(t)ᵀ
    db = column_sums(da_rows)                                        # Σ_t ∂L/∂a(t)
    dx = (da_rows @ p.U).reshape(T, B, I)                            # ∂L/∂x(t) = Uᵀ ∂L/∂a(t)
    return {"U": dU, "W": dW, "V": dV, "b": db, "c": dc, "h0": dh0, "x": dx}
