"""The per-step losses L(t) of the derivation, summed into L, and ∂L/∂o(t).

    cross_entropy:  L(t) = -log softmax(o(t))[y(t)]       ∂L(t)/∂o(t) = softmax(o(t)) - onehot(y(t))
    mse:            L(t) = ½ ‖o(t) - y(t)‖²               ∂L(t)/∂o(t) = o(t) - y(t)

L = Σ_t Σ_batch L(t) for reduction "sum". "mean" divides by what torch's
reduction="mean" divides by: T·B for cross-entropy (one term per label), T·B·O
for MSE (one term per element); the ½ stays. `mean_count` is that rule, the one
every "mean" here and in torch_reference's derivations uses.
"""

from __future__ import annotations

import numpy as np

from .reductions import row_sums


def loss_and_grad(
    name: str, reduction: str, o: np.ndarray, y: np.ndarray, *, overwrite_o: bool = False
) -> tuple[float, np.ndarray]:
    """L and ∂L/∂o for outputs o: (T, B, O) and labels y: (T, B) or targets y: (T, B, O).

    With overwrite_o=True, ∂L/∂o is computed in o's own buffer (no (T, B, O) copy).
    """
    do = o if overwrite_o else o.copy()
    L = _cross_entropy(do, y) if name == "cross_entropy" else _half_squared_error(do, y)
    count = mean_count(y)                         # N, the "mean" divisor
    if reduction == "mean":
        L = L / count
        do *= 1 / count
    return float(L), do


def mean_count(y: np.ndarray) -> int:
    """N, what reduction "mean" divides L by, as torch's does: the number of labels scored
    (cross-entropy, y (…,)) or of target elements (MSE, y (…, O)): y.size either way."""
    return y.size


def _cross_entropy(o: np.ndarray, y: np.ndarray) -> np.floating:
    """L, turning o into ∂L/∂o = softmax(o(t)) - onehot(y(t)) in place."""
    O = o.shape[-1]
    rows = o.reshape(-1, O)                       # (T·B, O), a view: o is contiguous
    # Flat positions of the labels in o: one 1-d index, cheaper than (row, label) pairs.
    picked = np.arange(0, rows.size, O) + y.reshape(-1)
    flat = rows.reshape(-1)
    rows -= rows.max(axis=1, keepdims=True)       # z = o - max o: exp never overflows, softmax unchanged
    L = -flat[picked].sum()                       # -Σ z[y(t)] ...
    # e^z, and e^z / Σ e^z, underflow to 0 (or to a subnormal) where a logit lies far
    # below its row's largest: that class's probability is 0 to the dtype's precision,
    # the right answer and no error. So the underflow is ignored here, also when the
    # caller asked np.errstate to raise on it (Σ e^z >= 1: the max's term is e^0).
    with np.errstate(under="ignore"):
        np.exp(rows, out=rows)                    # e^z
        sums = row_sums(rows)                     # Σ e^z per row, (T·B, 1)
        rows /= sums                              # softmax(o(t))
    L += np.log(sums).sum()                       # ... + Σ log Σ e^z  =  Σ -log softmax(o(t))[y(t)]
    flat[picked] -= 1                             # - onehot(y(t))
    return L


def _half_squared_error(o: np.ndarray, y: np.ndarray) -> np.floating:
    """L, turning o into ∂L/∂o = o(t) - y(t) in place."""
    o -= y
    return 0.5 * np.vdot(o, o)
