"""The GRU cell (nn.GRU), with torch's gate order r, z, n.

    r = σ(U_r x(t) + b_ir + W_r h(t-1) + b_hr)                  reset gate
    z = σ(U_z x(t) + b_iz + W_z h(t-1) + b_hz)                  update gate
    n = tanh(U_n x(t) + b_in + r ⊙ (W_n h(t-1) + b_hn))         candidate: b_hn sits inside r ⊙ (·)
    h(t) = (1 - z) ⊙ n + z ⊙ h(t-1)

Because r multiplies the hidden side of the n block, the two sides of the
pre-activations are kept apart: a_x = U x(t) + b_ih and a_h = W h(t-1) + b_hh,
each stacked [r, z, n]. Backward, for one step, given ∂L/∂h(t):

    ∂L/∂n    = ∂L/∂h(t) ⊙ (1 - z)             ∂L/∂z = ∂L/∂h(t) ⊙ (h(t-1) - n)
    ∂L/∂a_n  = ∂L/∂n ⊙ (1 - n²)               the input side's n block
    ∂L/∂hn   = ∂L/∂a_n ⊙ r                    the hidden side's n block, hn = W_n h(t-1) + b_hn
    ∂L/∂a_r  = ∂L/∂a_n ⊙ hn ⊙ r(1 - r)        ∂L/∂a_z = ∂L/∂z ⊙ z(1 - z)   (both sides alike)
    ∂L/∂h(t-1) = ∂L/∂h(t) ⊙ z + Wᵀ ∂L/∂a_h    the z shortcut, plus through W
    ∂L/∂x(t)   = Uᵀ ∂L/∂a_x

Rows are batch elements: U x(t) is `x @ U.T` and Wᵀ ∂L/∂a_h is `da_h @ W`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model.names import CELL_FACTS
from .step import StepGrads, sigmoid


@dataclass
class GRUStep:
    """What one step keeps for its backward pass, each (B, ·): x(t), h(t-1), the gates
    r, z, the candidate n and hn = W_n h(t-1) + b_hn (what r multiplies)."""

    x: np.ndarray
    h_prev: np.ndarray
    r: np.ndarray
    z: np.ndarray
    n: np.ndarray
    hn: np.ndarray


class GRUCell:
    """One state, h."""

    state_names = CELL_FACTS["gru"].states                        # ("h",)

    def step_forward(self, w, x: np.ndarray, state: dict) -> tuple[dict, GRUStep]:
        h_prev = state["h"]
        a_x = x @ w.U.T + w.b_ih                                # U x(t) + b_ih, stacked [r, z, n]
        a_h = h_prev @ w.W.T + w.b_hh                           # W h(t-1) + b_hh, stacked [r, z, n]
        x_r, x_z, x_n = np.split(a_x, 3, axis=-1)               # torch's order: r, z, n
        h_r, h_z, hn = np.split(a_h, 3, axis=-1)
        r = sigmoid(x_r + h_r)                                  # r = σ(U_r x + b_ir + W_r h + b_hr)
        z = sigmoid(x_z + h_z)                                  # z = σ(U_z x + b_iz + W_z h + b_hz)
        n = np.tanh(x_n + r * hn)                               # n = tanh(U_n x + b_in + r ⊙ hn)
        h = (1 - z) * n + z * h_prev                            # h(t) = (1 - z) ⊙ n + z ⊙ h(t-1)
        return {"h": h}, GRUStep(x=x, h_prev=h_prev, r=r, z=z, n=n, hn=hn)

    def step_backward(self, w, dstate: dict, s: GRUStep) -> StepGrads:
        dh = dstate["h"]
        dn = dh * (1 - s.z)                                     # ∂L/∂n = ∂L/∂h(t) ⊙ (1 - z)
        dz = dh * (s.h_prev - s.n)                              # ∂L/∂z = ∂L/∂h(t) ⊙ (h(t-1) - n)
        da_n = dn * (1 - s.n**2)                                # ∂L/∂a_n = ∂L/∂n ⊙ tanh'
        dhn = da_n * s.r                                        # ∂L/∂hn = ∂L/∂a_n ⊙ r
        da_r = da_n * s.hn * s.r * (1 - s.r)                    # ∂L/∂a_r = ∂L/∂a_n ⊙ hn ⊙ σ'(a_r)
        da_z = dz * s.z * (1 - s.z)                             # ∂L/∂a_z = ∂L/∂z ⊙ σ'(a_z)
        da_x = np.concatenate([da_r, da_z, da_n], axis=-1)      # ∂L/∂a_x, stacked like a_x
        da_h = np.concatenate([da_r, da_z, dhn], axis=-1)       # ∂L/∂a_h, stacked like a_h
        return StepGrads(
            state={"h": dh * s.z + da_h @ w.W},                 # ∂L/∂h(t-1) = ∂L/∂h(t) ⊙ z + Wᵀ ∂L/∂a_h
            x=da_x @ w.U,                                       # ∂L/∂x(t) = Uᵀ ∂L/∂a_x
            weights={
                "U": da_x.T @ s.x,                              # ∂L/∂a_x x(t)ᵀ
                "W": da_h.T @ s.h_prev,                         # ∂L/∂a_h h(t-1)ᵀ
                "b_ih": da_x.sum(axis=0),                       # ∂L/∂a_x
                "b_hh": da_h.sum(axis=0),                       # ∂L/∂a_h
            },
        )

    def __repr__(self) -> str:
        return "GRUCell()"
