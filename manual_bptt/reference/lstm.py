"""The LSTM cell (nn.LSTM), with torch's gate order i, f, g, o and its optional projection.

    a(t) = U x(t) + W h(t-1) + b                 b = b_ih + b_hh; four blocks stacked, [a_i, a_f, a_g, a_o]
    i = σ(a_i)   f = σ(a_f)   g = tanh(a_g)   o = σ(a_o)
    c(t) = f ⊙ c(t-1) + i ⊙ g
    m(t) = o ⊙ tanh(c(t))
    h(t) = m(t), or W_hr m(t) with proj_size > 0

Backward, for one step, given ∂L/∂h(t) and ∂L/∂c(t) (each from above plus carried
back from step t+1), one gate a line as CS231n's lstm_step_backward:

    ∂L/∂m(t)   = ∂L/∂h(t), or W_hrᵀ ∂L/∂h(t)
    ∂L/∂c(t)  += ∂L/∂m(t) ⊙ o ⊙ (1 - tanh²(c(t)))        c(t) reaches L through h(t) too
    ∂L/∂a_i    = ∂L/∂c(t) ⊙ g ⊙ i(1 - i)                 ∂L/∂a_f = ∂L/∂c(t) ⊙ c(t-1) ⊙ f(1 - f)
    ∂L/∂a_g    = ∂L/∂c(t) ⊙ i ⊙ (1 - g²)                 ∂L/∂a_o = ∂L/∂m(t) ⊙ tanh(c(t)) ⊙ o(1 - o)
    ∂L/∂c(t-1) = ∂L/∂c(t) ⊙ f                            the constant error carousel
    ∂L/∂h(t-1) = Wᵀ ∂L/∂a(t)                            ∂L/∂x(t) = Uᵀ ∂L/∂a(t)

Rows are batch elements: U x(t) is `x @ U.T` and Wᵀ ∂L/∂a(t) is `da @ W`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model.names import CELL_FACTS
from .step import StepGrads, sigmoid


@dataclass
class LSTMStep:
    """What one step keeps for its backward pass, each (B, ·): x(t), h(t-1), c(t-1),
    the gates i, f, g, o, tanh(c(t)) and m(t) = o ⊙ tanh(c(t))."""

    x: np.ndarray
    h_prev: np.ndarray
    c_prev: np.ndarray
    i: np.ndarray
    f: np.ndarray
    g: np.ndarray
    o: np.ndarray
    tanh_c: np.ndarray
    m: np.ndarray


class LSTMCell:
    """Two states, h and c; h is projected by W_hr when the layer has one."""

    state_names = CELL_FACTS["lstm"].states                       # ("h", "c")

    def step_forward(self, w, x: np.ndarray, state: dict) -> tuple[dict, LSTMStep]:
        h_prev, c_prev = state["h"], state["c"]
        a = x @ w.U.T + h_prev @ w.W.T + (w.b_ih + w.b_hh)      # a(t) = U x(t) + W h(t-1) + b
        a_i, a_f, a_g, a_o = np.split(a, 4, axis=-1)            # torch's order: i, f, g, o
        i = sigmoid(a_i)                                        # input gate
        f = sigmoid(a_f)                                        # forget gate
        g = np.tanh(a_g)                                        # candidate
        o = sigmoid(a_o)                                        # output gate
        c = f * c_prev + i * g                                  # c(t) = f ⊙ c(t-1) + i ⊙ g
        tanh_c = np.tanh(c)
        m = o * tanh_c                                          # m(t) = o ⊙ tanh(c(t))
        h = m if w.W_hr is None else m @ w.W_hr.T               # h(t) = m(t), or W_hr m(t)
        step = LSTMStep(x=x, h_prev=h_prev, c_prev=c_prev, i=i, f=f, g=g, o=o, tanh_c=tanh_c, m=m)
        return {"h": h, "c": c}, step

    def step_backward(self, w, dstate: dict, s: LSTMStep) -> StepGrads:
        dh = dstate["h"]
        dm = dh if w.W_hr is None else dh @ w.W_hr              # ∂L/∂m(t) = W_hrᵀ ∂L/∂h(t)
        dc = dstate["c"] + dm * s.o * (1 - s.tanh_c**2)         # ∂L/∂c(t): carried + through h(t)
        da_i = dc * s.g * s.i * (1 - s.i)                       # ∂L/∂a_i = ∂L/∂c(t) ⊙ g ⊙ σ'(a_i)
        da_f = dc * s.c_prev * s.f * (1 - s.f)                  # ∂L/∂a_f = ∂L/∂c(t) ⊙ c(t-1) ⊙ σ'(a_f)
        da_g = dc * s.i * (1 - s.g**2)                          # ∂L/∂a_g = ∂L/∂c(t) ⊙ i ⊙ tanh'(a_g)
        da_o = dm * s.tanh_c * s.o * (1 - s.o)                  # ∂L/∂a_o = ∂L/∂m(t) ⊙ tanh(c(t)) ⊙ σ'(a_o)
        da = np.concatenate([da_i, da_f, da_g, da_o], axis=-1)  # ∂L/∂a(t), stacked like a(t)
        db = da.sum(axis=0)
        weights = {
            "U": da.T @ s.x,                                    # ∂L/∂a(t) x(t)ᵀ
            "W": da.T @ s.h_prev,                               # ∂L/∂a(t) h(t-1)ᵀ
            "b_ih": db,                                         # b_ih and b_hh both add to a(t):
            "b_hh": db,                                         # both get ∂L/∂b
        }
        if w.W_hr is not None:
            weights["W_hr"] = dh.T @ s.m                        # ∂L/∂h(t) m(t)ᵀ
        return StepGrads(
            state={
                "h": da @ w.W,                                  # ∂L/∂h(t-1) = Wᵀ ∂L/∂a(t)
                "c": dc * s.f,                                  # ∂L/∂c(t-1) = ∂L/∂c(t) ⊙ f
            },
            x=da @ w.U,                                         # ∂L/∂x(t) = Uᵀ ∂L/∂a(t)
            weights=weights,
        )

    def __repr__(self) -> str:
        return "LSTMCell()"
