"""The nonlinearity φ of h(t) = φ(a(t)) and its derivative φ'(a(t)).

The derivative is read off what the forward pass already stored, so the
backward pass never evaluates φ again.
"""

from __future__ import annotations

import numpy as np


def _relu(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    return np.maximum(a, 0, out=out)


#: φ by name, each called as phi(a, out=h): h = φ(a) written into `out` (a row of
#: the cache, so no temporary). A plain dict lookup, as it runs once per step.
PHI = {"tanh": np.tanh, "relu": _relu}


def dphi(name: str, a: np.ndarray, h: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """φ'(a) for every step at once, from a = a(t) and h = φ(a(t)) (same shapes).

    `out` may be `a` itself: each element of a is read before it is overwritten.
    """
    if name == "tanh":
        # tanh' = 1 - tanh², and tanh(a(t)) is h(t), already in the cache.
        out = np.multiply(h, h, out=out)
        return np.subtract(1, out, out=out)
    # relu' = 1 where a > 0, else 0 (also at a = 0, as torch's relu backward).
    if out is None:
        return a > 0
    return np.greater(a, 0, out=out)
