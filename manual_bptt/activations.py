"""The nonlinearity φ of h(t) = φ(a(t)) and its derivative φ'(a(t)).

The derivative is read off what the forward pass already stored, so the
backward pass never evaluates φ again.
"""

from __future__ import annotations

import numpy as np


def phi(name: str, a: np.ndarray, out: np.ndarray) -> np.ndarray:
    """h = φ(a), written into `out` (a row of the cache, so no temporary)."""
    if name == "tanh":
        return np.tanh(a, out=out)
    return np.maximum(a, 0, out=out)  # relu


def dphi(name: str, a: np.ndarray, h: np.ndarray) -> np.ndarray:
    """φ'(a) for every step at once, from a = a(t) and h = φ(a(t)) (same shapes)."""
    if name == "tanh":
        # tanh' = 1 - tanh², and tanh(a(t)) is h(t), already in the cache.
        return 1 - h * h
    # relu' = 1 where a > 0, else 0 (also at a = 0, as torch's relu backward).
    return a > 0
