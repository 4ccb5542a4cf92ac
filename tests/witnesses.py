"""Witnesses that need no torch: a dumb reference loop and finite differences.

`reference_loss` is the model written as plainly as possible, one example and
one step at a time, sharing no code with manual_bptt's forward pass, so that
finite differences of it check the forward and the backward pass together.
"""

from __future__ import annotations

import numpy as np

from manual_bptt import GRAD_NAMES, RNNGrads
from manual_bptt.verification.problems import RandomProblem


def reference_loss(params, x, y, h0, *, nonlinearity, loss, reduction, batch_first) -> float:
    """L for the caller's layout, by the definition, in float64 whatever the input dtype."""
    U, W, V, b, c = (np.asarray(a, dtype=np.float64) for _, a in params.items())
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    if x.ndim == 2:  # unbatched: one sequence
        x, y = x[:, None], y[:, None]
        h0 = None if h0 is None else np.asarray(h0)[None]
    elif batch_first:
        x, y = x.swapaxes(0, 1), y.swapaxes(0, 1)
    T, B, _ = x.shape
    phi = np.tanh if nonlinearity == "tanh" else (lambda v: np.maximum(v, 0.0))
    total = 0.0
    for n in range(B):
        h = np.zeros(W.shape[0]) if h0 is None else np.asarray(h0[n], dtype=np.float64)
        for t in range(T):
            h = phi(U @ x[t, n] + W @ h + b)
            o = V @ h + c
            if loss == "cross_entropy":
                total += np.log(np.sum(np.exp(o - o.max()))) + o.max() - o[y[t, n]]
            else:
                total += 0.5 * np.sum((o - y[t, n]) ** 2)
    if reduction == "mean":
        total /= T * B * (1 if loss == "cross_entropy" else V.shape[0])
    return float(total)


def _inputs(problem: RandomProblem) -> dict[str, np.ndarray]:
    """Float64 copies of every differentiable input, h0 as zeros when None."""
    p = problem.params
    h0 = problem.h0
    if h0 is None:
        h0 = np.zeros(_h0_shape(problem))
    arrays = dict(p.items())
    arrays.update(h0=h0, x=problem.x)
    return {name: np.array(a, dtype=np.float64) for name, a in arrays.items()}


def _h0_shape(problem: RandomProblem) -> tuple:
    H = problem.params.hidden_size
    if problem.x.ndim == 2:
        return (H,)
    B = problem.x.shape[0] if problem.options["batch_first"] else problem.x.shape[1]
    return (B, H)


def _loss_at(problem: RandomProblem, arrays: dict[str, np.ndarray]) -> float:
    from manual_bptt import RNNParams

    params = RNNParams(**{k: arrays[k] for k in ("U", "W", "V", "b", "c")})
    return reference_loss(params, arrays["x"], problem.y, arrays["h0"], **problem.options)


def central_differences(loss_at, arrays: dict[str, np.ndarray], eps: float = 1e-5) -> dict[str, np.ndarray]:
    """(L(θ + ε) - L(θ - ε)) / 2ε for every element of every array; loss_at(arrays) → L.

    The arrays are moved in place one element at a time and restored."""
    grads = {}
    for name, array in arrays.items():
        grad = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            saved = array[index]
            array[index] = saved + eps
            up = loss_at(arrays)
            array[index] = saved - eps
            down = loss_at(arrays)
            array[index] = saved
            grad[index] = (up - down) / (2 * eps)
        grads[name] = grad
    return grads


def finite_difference_grads(problem: RandomProblem, eps: float = 1e-5) -> tuple[float, RNNGrads]:
    """Central differences (L(θ + ε) - L(θ - ε)) / 2ε of the reference loss, element by element."""
    arrays = _inputs(problem)
    grads = central_differences(lambda moved: _loss_at(problem, moved), arrays, eps)
    return _loss_at(problem, arrays), RNNGrads(**{name: grads[name] for name in GRAD_NAMES})


def directional_derivative(problem: RandomProblem, direction: dict[str, np.ndarray], eps: float = 1e-5) -> float:
    """(L(θ + εd) - L(θ - εd)) / 2ε along one direction d over every input at once."""
    arrays = _inputs(problem)
    up = {k: a + eps * direction[k] for k, a in arrays.items()}
    down = {k: a - eps * direction[k] for k, a in arrays.items()}
    return (_loss_at(problem, up) - _loss_at(problem, down)) / (2 * eps)
