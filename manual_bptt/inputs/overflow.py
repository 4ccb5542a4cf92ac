"""Finite inputs, non-finite results: say what overflowed and at which step.

The inputs are checked for NaN and infinity before the computation; the
computation itself can still leave the float range: relu does not bound h(t),
so a large W grows it by up to ‖W‖₂ per step; a huge c or target makes
½‖o(t) − y(t)‖² overflow; a long backward chain through a large W overflows
∂L/∂a(t). NumPy then only warns and returns inf or NaN, and a comparison of two
NaN gradients reads like a bug in one of them.

The results are looked at once, after the computation (no check per step, so
nothing slows down and finite results are unchanged): `check_finite_result` in
fast/rnn.py for an RNNParams, `check_finite_network_result` in fast/network.py for
a network. When anything is not finite they replay the forward pass on the
engine to find where it first left the float range, and raise `NonFiniteError`
saying so. This module holds the error and the one-layer RNN's messages:
`first_forward_overflow` reads the replayed states, `gradient_overflow`,
`backward_overflow` and `product_overflow` name the backward pass's; the
derivation's helpers (tools/derivation.py) use them too. Nothing here runs a
forward pass: inputs/ never imports the engine.
"""

from __future__ import annotations

import math

import numpy as np

from ..model import losses
from ..model.params import RNNGrads


class NonFiniteError(FloatingPointError, ValueError):
    """The computation on finite inputs overflowed (or produced NaN).

    A FloatingPointError, and a ValueError because the remedy is a change of
    input. `quantity` names what first became non-finite, such as "h(t)",
    "o(t)", "L(t)", "L" or "∂L/∂a(t)"; `step` is its t (None for a sum over t).
    """

    def __init__(self, message: str, *, quantity: str, step: int | None):
        super().__init__(message)
        self.quantity = quantity
        self.step = step


def all_finite(*arrays: np.ndarray) -> bool:
    """True if every element of every array is finite: one summing pass each, a
    full test only of an array whose sum is not finite (its values could still be
    finite and huge)."""
    with np.errstate(over="ignore", invalid="ignore"):
        sums = [array.sum() for array in arrays]
    return all(math.isfinite(total) or bool(np.isfinite(array).all()) for total, array in zip(sums, arrays))


def first_forward_overflow(problem, h: np.ndarray, L: float | None, *, computed_by: str,
                           last_step: int | None = None, readout: bool = True) -> NonFiniteError | None:
    """The NonFiniteError naming the first h(t), o(t) or L(t) that is not finite (then L, when
    given), None if all of them are finite. h: (T+1, B, H), h[t] = h(t), the states of a forward
    pass (the engine's: fast/rnn.py's `forward_overflow` replays it); o(t) and L(t) are computed
    here a step at a time, after h(t), so that the first to leave the float range is named.

    last_step: read only steps 1..last_step (default T); readout=False: h(t) alone, for
    what depends on the states only (∂h(t)/∂h(k)).
    """
    p = problem.params
    T = problem.T if last_step is None else last_step
    where = message_head(problem, computed_by)
    with np.errstate(all="ignore"):
        for t in range(1, T + 1):
            h_prev, h_t = h[t - 1], h[t]
            if not np.isfinite(h_t).all():
                return NonFiniteError(
                    f"{where}: the forward pass overflowed: h(t) = {problem.nonlinearity}(a(t)) is not finite "
                    f"at step t = {t} (max |h(t-1)| = {_max_abs(h_prev):.3g}, ‖W‖₂ = {_norm(p.W):.3g}); "
                    "relu does not bound h(t): scale W or x down, or use tanh",
                    quantity="h(t)", step=t)
            if not readout:
                continue
            o_t = h_t @ p.V.T + p.c                                            # o(t) = V h(t) + c
            if not np.isfinite(o_t).all():
                return NonFiniteError(
                    f"{where}: o(t) = V h(t) + c is not finite at step t = {t} "
                    f"(max |h(t)| = {_max_abs(h_t):.3g}, max |V| = {_max_abs(p.V):.3g}, "
                    f"max |c| = {_max_abs(p.c):.3g})",
                    quantity="o(t)", step=t)
            if problem.y is not None and not math.isfinite(_step_loss(problem, o_t, t)):
                return NonFiniteError(
                    f"{where}: the loss L(t) ({problem.loss}) overflowed at step t = {t} "
                    f"(max |o(t)| = {_max_abs(o_t):.3g}"
                    + (f", max |o(t) - y(t)| = {_max_abs(o_t - problem.y[t - 1]):.3g})"
                       if problem.loss == "mse" else ")"),
                    quantity="L(t)", step=t)
    if L is not None and not math.isfinite(L):
        return NonFiniteError(f"{where}: L = Σ_t L(t) overflowed, although every L(t) is finite",
                              quantity="L", step=None)
    return None


def gradient_overflow(problem, grads: RNNGrads, *, computed_by: str) -> NonFiniteError:
    """The NonFiniteError of gradients that are not finite although the forward pass is: the first
    step (the backward pass meets step T first) whose ∂L/∂x(t) is not finite, else the sums over t."""
    dx = _time_major(grads.x, problem)
    bad_steps = [t for t in range(problem.T, 0, -1) if not np.isfinite(dx[t - 1]).all()]
    if bad_steps:
        return backward_overflow(problem, bad_steps[0], computed_by=computed_by)
    names = [name for name, g in grads.items() if not np.isfinite(g).all()]
    return NonFiniteError(
        f"{message_head(problem, computed_by)}: the sum over t of {', '.join('∂L/∂' + n for n in names)} overflowed, "
        "although every step's term is finite",
        quantity="∂L/∂" + names[0], step=None)


def backward_overflow(problem, step: int, *, computed_by: str,
                      seen_in: str = "∂L/∂x(t) = Uᵀ ∂L/∂a(t)") -> NonFiniteError:
    """The NonFiniteError of a backward pass whose ∂L/∂a(t) first left the float range at `step`
    (counted from 1; the backward pass meets step T first), `seen_in` saying where it was seen."""
    p = problem.params
    return NonFiniteError(
        f"{message_head(problem, computed_by)}: the backward pass overflowed: ∂L/∂a(t) (seen in {seen_in}) is not "
        f"finite at step t = {step}, {problem.T - step} steps back from T (‖W‖₂ = {_norm(p.W):.3g} each step)",
        quantity="∂L/∂a(t)", step=step)


def product_overflow(problem, *, t: int, k: int, step: int, computed_by: str) -> NonFiniteError:
    """The NonFiniteError of ∂h(t)/∂h(k) = J(t) J(t-1) … J(k+1) whose partial product ∂h(t)/∂h(step)
    is the first to leave the float range, every h(j) being finite."""
    return NonFiniteError(
        f"{message_head(problem, computed_by)}: the product ∂h(t)/∂h(k) = J(t) … J(k+1), "
        f"J(j) = diag(φ'(a(j))) W, for t = {t}, k = {k}, overflowed: ∂h(t)/∂h(j) is not finite at step "
        f"j = {step}, {t - step} steps back from t (‖W‖₂ = {_norm(problem.params.W):.3g} each step); scale W down",
        quantity="∂h(t)/∂h(k)", step=step)


def _step_loss(problem, o_t: np.ndarray, t: int) -> float:
    """Σ over the batch of L(t) (unreduced: "mean" only divides, it cannot overflow), by the
    loss of bptt itself (losses.py) on step t alone."""
    L, _ = losses.loss_and_grad(problem.loss, "sum", o_t[None], problem.y[t - 1][None])
    return L


def message_head(problem, computed_by: str) -> str:
    """The head of every overflow message: who computed it, in which dtype, for which T."""
    return f"{computed_by} ({problem.params.dtype}, T = {problem.T})"


def _time_major(per_step: np.ndarray, problem) -> np.ndarray:
    if not problem.batched:
        return per_step[:, None]
    return per_step.swapaxes(0, 1) if problem.batch_first else per_step


def _max_abs(array: np.ndarray) -> float:
    return float(np.abs(array).max()) if array.size else 0.0


def _norm(matrix: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        return float(np.linalg.norm(matrix.astype(np.float64), 2))
