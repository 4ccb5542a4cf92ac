"""The GRU cell of nn.GRU, with PyTorch's gate order r, z, n.

    r = σ(U_r x(t) + b_ir + W_r h(t-1) + b_hr)                  reset gate
    z = σ(U_z x(t) + b_iz + W_z h(t-1) + b_hz)                  update gate
    n = tanh(U_n x(t) + b_in + r ⊙ (W_n h(t-1) + b_hn))         candidate; b_hn sits inside r ⊙ (·)
    h(t) = (1 - z) ⊙ n + z ⊙ h(t-1)

The input side U x(t) + b_ih (+ b_hr, b_hz, which add like the Elman bias) is formed
for all steps before the loop; the hidden side W h(t-1) + [0, 0, b_hn] in the loop,
because r multiplies its n block. So the two sides get different gradients in the n
block: the engine's da_x and da_h.

Backward, for one step, given ∂L/∂h(t):

    ∂L/∂n      = ∂L/∂h(t) ⊙ (1 - z)          ∂L/∂z = ∂L/∂h(t) ⊙ (h(t-1) - n)
    ∂L/∂a_n    = ∂L/∂n ⊙ (1 - n²)            the input side's n block
    ∂L/∂hn     = ∂L/∂a_n ⊙ r                 the hidden side's n block (hn = W_n h(t-1) + b_hn)
    ∂L/∂a_r    = ∂L/∂a_n ⊙ hn ⊙ r(1 - r)     ∂L/∂a_z = ∂L/∂z ⊙ z(1 - z)
    ∂L/∂h(t-1) = ∂L/∂h(t) ⊙ z + Wᵀ [∂L/∂a_r, ∂L/∂a_z, ∂L/∂hn]      the z shortcut, plus through W

With z near 1 the shortcut ∂L/∂h(t) ⊙ z carries the gradient back almost unchanged.
"""

from __future__ import annotations

import numpy as np

from ..activations import sigmoid
from .chunks import time_chunks


class GRUCell:
    """Three gate blocks (G = 3), one state (h)."""

    state_names = ("h",)

    def input_bias(self, w):
        """b_ih, plus the r and z blocks of b_hh (they add to the pre-activation like b_ih does)."""
        if w.b_ih is None:
            return None
        H = w.b_hh.shape[0] // 3
        bias = w.b_ih.copy()
        bias[:2 * H] += w.b_hh[:2 * H]
        return bias

    def start(self, w, ax: np.ndarray, state0: tuple) -> "GRUTrace":
        return GRUTrace(w, ax, state0[0])

    def __repr__(self) -> str:
        return "GRUCell()"


class GRUTrace:
    """One sequence's GRU values. `gate` is the engine's ax, overwritten by the activations
    [r, z, n], and in the backward pass by ∂L/∂a_h(t); `hn` keeps W_hn h(t-1) + b_hn, which
    the backward pass needs for ∂L/∂r."""

    def __init__(self, w, ax: np.ndarray, h0: np.ndarray):
        T, B, G_H = ax.shape
        H = G_H // 3
        self.H = H
        self.W = w.W
        self.WT = np.ascontiguousarray(w.W.T)
        self.b_hn = None if w.b_hh is None else w.b_hh[2 * H:]
        self.gate = ax                                             # becomes [r, z, n] in place
        self.hn = np.empty((T, B, H), dtype=ax.dtype)              # W_n h(t-1) + b_hn, for the backward pass
        self.h = np.empty((T + 1, B, H), dtype=ax.dtype)
        self.h[0] = h0
        self.states = (self.h,)
        self.recurrent = np.empty((B, G_H), dtype=ax.dtype)
        self.r_hn = np.empty((B, H), dtype=ax.dtype)

    def step(self, t: int) -> None:
        H, a, gh = self.H, self.gate[t], self.recurrent
        np.dot(self.h[t], self.WT, out=gh)                         # W h(t-1), all three blocks
        rz = a[:, :2 * H]
        rz += gh[:, :2 * H]
        sigmoid(rz, rz)                                           # r, z = σ(input side + W_r,z h(t-1))
        hn = self.hn[t]
        if self.b_hn is None:
            hn[...] = gh[:, 2 * H:]
        else:
            np.add(gh[:, 2 * H:], self.b_hn, out=hn)               # hn = W_n h(t-1) + b_hn
        r, z, n = a[:, :H], a[:, H:2 * H], a[:, 2 * H:]
        np.multiply(r, hn, out=self.r_hn)
        n += self.r_hn
        np.tanh(n, out=n)                                          # n = tanh(U_n x + b_in + r ⊙ hn)
        h_prev, h = self.h[t], self.h[t + 1]
        np.subtract(h_prev, n, out=h)
        h *= z
        h += n                                                     # h(t) = n + z ⊙ (h(t-1) - n)

    def begin_backward(self) -> None:
        T, B, G_H = self.gate.shape
        H = self.H
        # What multiplies ∂L/∂h(t) or ∂L/∂n to give each pre-activation gradient, for every
        # step, written into da_x (the backward loop then turns it into ∂L/∂a_x(t) in place):
        #   r block: hn ⊙ r(1 - r)            (times ∂L/∂a_n)
        #   z block: (h(t-1) - n) ⊙ z(1 - z)   (times ∂L/∂h(t))
        #   n block: (1 - z) ⊙ (1 - n²)        (times ∂L/∂h(t))
        # A few steps at a time, with one scratch block in cache (chunks.py); r and z stay in gate.
        self.da_x = np.empty_like(self.gate)
        self.da_h = self.gate                                      # step t writes ∂L/∂a_h(t) over r, z, n of step t
        steps = time_chunks(T, B * H)
        scratch = np.empty((steps[0].stop, B, H), dtype=self.gate.dtype)
        for s in steps:
            r, z, n = (self.gate[s, :, k * H:(k + 1) * H] for k in range(3))
            to_r, to_z, to_n = (self.da_x[s, :, k * H:(k + 1) * H] for k in range(3))
            u = scratch[:s.stop - s.start]
            np.subtract(1, r, out=u)
            u *= r
            np.multiply(u, self.hn[s], out=to_r)                   # hn ⊙ r(1-r)
            np.multiply(n, n, out=to_n)
            np.subtract(1, to_n, out=to_n)
            np.subtract(1, z, out=u)
            to_n *= u                                              # (1-z) ⊙ (1-n²)
            u *= z
            np.subtract(self.h[s], n, out=to_z)
            to_z *= u                                              # (h(t-1) - n) ⊙ z(1-z)
        self.carried = np.empty((B, H), dtype=self.gate.dtype)

    def step_backward(self, t: int, dstate: tuple) -> None:
        (dh,) = dstate
        H = self.H
        r, z = self.gate[t, :, :H], self.gate[t, :, H:2 * H]
        da_x, da_h = self.da_x[t], self.da_h[t]
        da_r, da_z, da_n = da_x[:, :H], da_x[:, H:2 * H], da_x[:, 2 * H:]
        da_n *= dh                                                 # ∂L/∂a_n = ∂L/∂h(t) ⊙ (1 - z) ⊙ (1 - n²)
        da_r *= da_n                                               # ∂L/∂a_r = ∂L/∂a_n ⊙ hn ⊙ r(1 - r)
        da_z *= dh                                                 # ∂L/∂a_z = ∂L/∂h(t) ⊙ (h(t-1) - n) ⊙ z(1 - z)
        np.multiply(da_n, r, out=da_h[:, 2 * H:])                  # ∂L/∂hn = ∂L/∂a_n ⊙ r (over n)
        dh *= z                                                    # the shortcut ∂L/∂h(t) ⊙ z ...
        da_h[:, :2 * H] = da_x[:, :2 * H]                          # r, z: both sides alike (over r, z)
        np.dot(da_h, self.W, out=self.carried)
        dh += self.carried                                         # ... + Wᵀ [∂L/∂a_r, ∂L/∂a_z, ∂L/∂hn]

    def extra_grads(self) -> dict:
        return {}
