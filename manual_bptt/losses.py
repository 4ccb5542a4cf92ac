"""The per-step losses L(t) of the derivation, summed into L, and ∂L/∂o(t).

    cross_entropy:  L(t) = -log softmax(o(t))[y(t)]       ∂L(t)/∂o(t) = softmax(o(t)) - onehot(y(t))
    mse:            L(t) = ½ ‖o(t) - y(t)‖²               ∂L(t)/∂o(t) = o(t) - y(t)

L = Σ_t Σ_batch L(t) for reduction "sum". "mean" divides by what torch's
reduction="mean" divides by: T·B for cross-entropy (one term per label), T·B·O
for MSE (one term per element); the ½ stays.
"""

from __future__ import annotations

import numpy as np


def loss_and_grad(name: str, reduction: str, o: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """L and ∂L/∂o for outputs o: (T, B, O) and labels y: (T, B) or targets y: (T, B, O)."""
    if name == "cross_entropy":
        L, do = _cross_entropy(o, y)
        count = y.size
    else:
        L, do = _half_squared_error(o, y)
        count = o.size
    if reduction == "mean":
        L = L / count
        do *= 1 / count  # do is a fresh array of our own
    return float(L), do


def _cross_entropy(o: np.ndarray, y: np.ndarray) -> tuple[np.floating, np.ndarray]:
    O = o.shape[-1]
    z = o - o.max(axis=-1, keepdims=True)  # max subtracted: exp never overflows
    ez = np.exp(z)
    sum_ez = ez.sum(axis=-1, keepdims=True)
    log_softmax = z - np.log(sum_ez)
    labels = y.reshape(-1)
    rows = np.arange(labels.size)
    L = -log_softmax.reshape(-1, O)[rows, labels].sum()
    do = ez / sum_ez  # softmax(o(t)) ...
    do.reshape(-1, O)[rows, labels] -= 1  # ... - onehot(y(t))
    return L, do


def _half_squared_error(o: np.ndarray, y: np.ndarray) -> tuple[np.floating, np.ndarray]:
    do = o - y
    L = 0.5 * np.vdot(do, do)
    return L, do
