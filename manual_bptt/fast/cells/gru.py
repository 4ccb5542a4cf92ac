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

from ...model.names import CELL_FACTS
from .chunks import time_chunks


class GRUCell:
    """Three gate blocks (G = 3), one state (h)."""

    state_names = CELL_FACTS["gru"].states                        # ("h",)
    one_pre_activation = False                  # r multiplies the hidden side's n block: two sums

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
    """One sequence's GRU values, gate-major: every step's r, z and n are contiguous (B, H) blocks.

    NumPy's element-wise calls cost a few µs more on a column block of a (B, 3H) row than on a
    contiguous array (at B = 4, H = 64: an add 4.3 µs against 1.2 µs), which at small sizes is
    most of a step; so the trace keeps
    gm (T, 3, B, H) = [r, z, n] per step, and forms W h(t-1) gate by gate. The engine's ax,
    (T, B, 3H), is free once copied into gm; the backward pass keeps its per-step
    multipliers there, gate-major, and then writes ∂L/∂a_x(t) over them, row-major, step by
    step; ∂L/∂a_h(t) goes over gm[t] the same way. `hn` keeps W_hn h(t-1) + b_hn, which the
    backward pass needs for ∂L/∂r.

    r and z are computed from halved pre-activations, σ(a) = ½ tanh(a/2) + ½, with the halving
    folded into the copy of ax and into the weights W_r, W_z used here (exact: a power of 2).
    Against the row-major trace it replaced, time per call (float32 / float64): small
    1.34 / 1.22x, long 1.47 / 1.31x, medium 1.19 / 1.08x, large 1.10 / 1.07x faster, tiny
    0.92x (with B = 1 every block was contiguous already, and the step now makes two products).
    """

    def __init__(self, w, ax: np.ndarray, h0: np.ndarray):
        T, B, G_H = ax.shape
        H = G_H // 3
        self.H = H
        self.W = w.W
        Wg = w.W.reshape(3, H, H)
        self.WT_rz = np.ascontiguousarray(Wg[:2].transpose(0, 2, 1)) * 0.5    # ½ W_rᵀ, ½ W_zᵀ
        self.WT_n = np.ascontiguousarray(Wg[2].T)
        self.b_hn = None if w.b_hh is None else w.b_hh[2 * H:]
        self.ax = ax                                               # (T, B, 3H), contiguous: the reshapes below are views
        self.gm = np.empty((T, 3, B, H), dtype=ax.dtype)           # a(t), then [r, z, n], gate-major
        by_gate = self.ax.reshape(T, B, 3, H).transpose(0, 2, 1, 3)
        np.multiply(by_gate[:, :2], 0.5, out=self.gm[:, :2])       # ½ (U_r,z x + b): halved for σ
        self.gm[:, 2] = by_gate[:, 2]                              # U_n x + b_in
        self.hn = np.empty((T, B, H), dtype=ax.dtype)              # W_n h(t-1) + b_hn, for the backward pass
        self.h = np.empty((T + 1, B, H), dtype=ax.dtype)
        self.h[0] = h0
        self.states = (self.h,)
        self.gh_rz = np.empty((2, B, H), dtype=ax.dtype)
        self.r_hn = np.empty((B, H), dtype=ax.dtype)

    def step(self, t: int) -> None:
        rz, n, hn, h_prev = self.gm[t, :2], self.gm[t, 2], self.hn[t], self.h[t]
        np.matmul(h_prev, self.WT_rz, out=self.gh_rz)              # ½ W_r,z h(t-1), gate by gate
        rz += self.gh_rz
        np.tanh(rz, out=rz)
        rz *= 0.5
        rz += 0.5                                                  # r, z = σ(U_r,z x + b + W_r,z h(t-1))
        np.dot(h_prev, self.WT_n, out=hn)
        if self.b_hn is not None:
            hn += self.b_hn                                        # hn = W_n h(t-1) + b_hn
        r, z = rz
        np.multiply(r, hn, out=self.r_hn)
        n += self.r_hn
        np.tanh(n, out=n)                                          # n = tanh(U_n x + b_in + r ⊙ hn)
        h = self.h[t + 1]
        np.subtract(h_prev, n, out=h)
        h *= z
        h += n                                                     # h(t) = n + z ⊙ (h(t-1) - n)

    def begin_backward(self) -> None:
        T, B, G_H = self.ax.shape
        H = self.H
        # What multiplies ∂L/∂h(t) or ∂L/∂a_n to give each pre-activation gradient, for every
        # step, gate-major in ax's buffer (`to_da`):
        #   r: hn ⊙ r(1 - r)            (times ∂L/∂a_n)
        #   z: (h(t-1) - n) ⊙ z(1 - z)   (times ∂L/∂h(t))
        #   n: (1 - z) ⊙ (1 - n²)        (times ∂L/∂h(t))
        # A few steps at a time, with one scratch block in cache (chunks.py).
        self.to_da = self.ax.reshape(T, 3, B, H)
        steps = time_chunks(T, B * H)
        scratch = np.empty_like(self.hn[:steps[0].stop])              # (n, B, H) in hn's dtype, by construction
        for s in steps:
            r, z, n = self.gm[s, 0], self.gm[s, 1], self.gm[s, 2]
            to_r, to_z, to_n = self.to_da[s, 0], self.to_da[s, 1], self.to_da[s, 2]
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
        # Step t reads to_da[t] and gm[t], then writes its row-major gradients over them.
        self.da_x = self.ax                                        # ∂L/∂a_x(t) over to_da[t]
        self.da_h = self.gm.reshape(T, B, G_H)                     # ∂L/∂a_h(t) over [r, z, n](t)
        self.d = np.empty((3, B, H), dtype=self.ax.dtype)          # one step's [∂L/∂a_r, ∂L/∂a_z, ∂L/∂a_n]
        self.carried = np.empty((B, H), dtype=self.ax.dtype)

    def step_backward(self, t: int, dstate: tuple) -> None:
        (dh,) = dstate
        B, H = dh.shape
        d, to_da, (r, z) = self.d, self.to_da[t], self.gm[t, :2]
        np.multiply(to_da[2], dh, out=d[2])                        # ∂L/∂a_n = ∂L/∂h(t) ⊙ (1 - z) ⊙ (1 - n²)
        np.multiply(to_da[0], d[2], out=d[0])                      # ∂L/∂a_r = ∂L/∂a_n ⊙ hn ⊙ r(1 - r)
        np.multiply(to_da[1], dh, out=d[1])                        # ∂L/∂a_z = ∂L/∂h(t) ⊙ (h(t-1) - n) ⊙ z(1 - z)
        np.copyto(self.da_x[t].reshape(B, 3, H), d.transpose(1, 0, 2))    # row-major, over to_da[t]
        d[2] *= r                                                  # ∂L/∂hn = ∂L/∂a_n ⊙ r (r, z: both sides alike)
        dh *= z                                                    # the shortcut ∂L/∂h(t) ⊙ z ...
        da_h = self.da_h[t]
        np.copyto(da_h.reshape(B, 3, H), d.transpose(1, 0, 2))     # row-major, over r, z, n of step t
        np.dot(da_h, self.W, out=self.carried)
        dh += self.carried                                         # ... + Wᵀ [∂L/∂a_r, ∂L/∂a_z, ∂L/∂hn]

    def extra_grads(self) -> dict:
        return {}
