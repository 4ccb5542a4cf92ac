"""The Elman cell (nn.RNN): the derivation's own model, one step forward and back.

    a(t) = U x(t) + W h(t-1) + b        b = b_ih + b_hh
    h(t) = φ(a(t))                      φ = tanh or relu

Backward, for one step, given ∂L/∂h(t) (from above plus carried back from t+1):

    ∂L/∂a(t)   = φ'(a(t)) ⊙ ∂L/∂h(t)
    ∂L/∂h(t-1) = Wᵀ ∂L/∂a(t)           ∂L/∂x(t) = Uᵀ ∂L/∂a(t)
    ∂L/∂W     += ∂L/∂a(t) h(t-1)ᵀ      ∂L/∂U   += ∂L/∂a(t) x(t)ᵀ      ∂L/∂b += ∂L/∂a(t)

Rows are batch elements: U x(t) is `x @ U.T` and Wᵀ ∂L/∂a(t) is `da @ W`; a
transposed product over the rows, `da.T @ h_prev`, sums ∂L/∂a(t) h(t-1)ᵀ over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model.names import CELL_FACTS, ELMAN_CELLS
from .step import StepGrads


def tanh_derivative(a: np.ndarray, h: np.ndarray) -> np.ndarray:
    return 1 - h * h                                   # tanh'(a) = 1 - tanh²(a) = 1 - h², from the cached h


def relu(a: np.ndarray) -> np.ndarray:
    return np.maximum(a, 0)


def relu_derivative(a: np.ndarray, h: np.ndarray) -> np.ndarray:
    return (a > 0).astype(a.dtype)                     # 1 where a > 0, else 0 (0 at a = 0, as torch)


#: φ and φ' by name; φ' takes a(t) and h(t) = φ(a(t)), so that nothing is evaluated twice.
NONLINEARITIES = {"tanh": (np.tanh, tanh_derivative), "relu": (relu, relu_derivative)}


@dataclass
class ElmanStep:
    """What one step keeps for its backward pass: x(t), h(t-1), a(t), h(t), each (B, ·)."""

    x: np.ndarray
    h_prev: np.ndarray
    a: np.ndarray
    h: np.ndarray


class ElmanCell:
    """One state, h; φ is tanh (nn.RNN's default) or relu."""

    def __init__(self, nonlinearity: str):
        self.nonlinearity = nonlinearity
        self.state_names = CELL_FACTS[ELMAN_CELLS[nonlinearity]].states      # ("h",)
        self.phi, self.phi_derivative = NONLINEARITIES[nonlinearity]

    def step_forward(self, w, x: np.ndarray, state: dict) -> tuple[dict, ElmanStep]:
        h_prev = state["h"]
        a = x @ w.U.T + h_prev @ w.W.T + (w.b_ih + w.b_hh)      # a(t) = U x(t) + W h(t-1) + b
        h = self.phi(a)                                         # h(t) = φ(a(t))
        return {"h": h}, ElmanStep(x=x, h_prev=h_prev, a=a, h=h)

    def step_backward(self, w, dstate: dict, step: ElmanStep) -> StepGrads:
        da = self.phi_derivative(step.a, step.h) * dstate["h"]  # ∂L/∂a(t) = φ'(a(t)) ⊙ ∂L/∂h(t)
        db = da.sum(axis=0)                                     # this step's term of ∂L/∂b: ∂L/∂a(t), summed over the batch
        return StepGrads(
            state={"h": da @ w.W},                              # ∂L/∂h(t-1) = Wᵀ ∂L/∂a(t)
            x=da @ w.U,                                         # ∂L/∂x(t) = Uᵀ ∂L/∂a(t)
            weights={
                "U": da.T @ step.x,                             # ∂L/∂a(t) x(t)ᵀ
                "W": da.T @ step.h_prev,                        # ∂L/∂a(t) h(t-1)ᵀ
                "b_ih": db,                                     # b_ih and b_hh both add to a(t):
                "b_hh": db,                                     # both get ∂L/∂b
            },
        )

    def __repr__(self) -> str:
        return f"ElmanCell({self.nonlinearity!r})"
