"""What every cell's step gives back, and the one squashing function two cells share.

A cell is a class with `state_names` (("h",) or ("h", "c")) and two methods,
the strict pair of CS231n's `rnn_step_forward` / `rnn_step_backward`:

    state, cache = cell.step_forward(w, x_t, state_prev)
    grads        = cell.step_backward(w, dstate, cache)        a StepGrads

w is one layer and direction's LayerWeights (U, W, b_ih, b_hh, W_hr); a state is a
dict {name: (B, ·) array} keyed by `state_names`; dstate holds ∂L/∂state(t), the
gradient that reaches state(t) from above and from step t+1 together.

Rows are batch elements throughout: x_t is (B, I), h is (B, H_out), so the
derivation's U x(t) is the code's `x_t @ U.T` and its Wᵀ ∂L/∂a(t) is `da @ W`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class StepGrads:
    """One step's backward pass.

    state:   {name: ∂L/∂state(t-1)}, the gradient carried back to the step before
    x:       ∂L/∂x(t), (B, I)
    weights: {symbol: this step's immediate partial ∂L/∂w}, state(t-1) held fixed; the
             sequence sums them over t (symbols as LayerWeights: U, W, b_ih, b_hh, W_hr)
    """

    state: dict
    x: np.ndarray
    weights: dict


def sigmoid(a: np.ndarray) -> np.ndarray:
    """σ(a) = 1 / (1 + e^-a), written as ½ tanh(a/2) + ½: the same function, with no e^-a to overflow."""
    return 0.5 * np.tanh(0.5 * a) + 0.5
