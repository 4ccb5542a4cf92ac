"""The LSTM cell of nn.LSTM, with PyTorch's gate order i, f, g, o and its optional projection.

    [a_i, a_f, a_g, a_o] = U x(t) + b_ih + W h(t-1) + b_hh      one (4H,) pre-activation, stacked
    i = σ(a_i)   f = σ(a_f)   g = tanh(a_g)   o = σ(a_o)        input, forget, candidate, output
    c(t) = f ⊙ c(t-1) + i ⊙ g                                   the cell state
    m(t) = o ⊙ tanh(c(t))
    h(t) = m(t), or W_hr m(t) with proj_size > 0 (W_hr = weight_hr, (H_out, H))

Backward, for one step, given ∂L/∂h(t) and ∂L/∂c(t) carried back from step t+1:

    ∂L/∂m(t)   = ∂L/∂h(t), or W_hrᵀ ∂L/∂h(t) with a projection
    ∂L/∂c(t)  += ∂L/∂m(t) ⊙ o ⊙ (1 - tanh²(c(t)))                 c(t) reaches L through h(t) too
    ∂L/∂a_i    = ∂L/∂c(t) ⊙ g ⊙ i(1 - i)       ∂L/∂a_f = ∂L/∂c(t) ⊙ c(t-1) ⊙ f(1 - f)
    ∂L/∂a_g    = ∂L/∂c(t) ⊙ i ⊙ (1 - g²)       ∂L/∂a_o = ∂L/∂m(t) ⊙ tanh(c(t)) ⊙ o(1 - o)
    ∂L/∂c(t-1) = ∂L/∂c(t) ⊙ f                                    the constant error carousel
    ∂L/∂h(t-1) = Wᵀ ∂L/∂a(t)
    ∂L/∂W_hr   = Σ_t ∂L/∂h(t) m(t)ᵀ                              one product after the loop

With f near 1, ∂L/∂c(t-1) = ∂L/∂c(t) ⊙ f passes back almost unchanged: no W and
no squashing derivative on that path, which is why the LSTM's gradient decays so
slowly in t - k. Rows are batch elements: Wᵀ ∂L/∂a(t) is the code's `da_t @ W`.
"""

from __future__ import annotations

import numpy as np

from ...model.names import CELL_FACTS
from .chunks import time_chunks


class LSTMCell:
    """Four gate blocks (G = 4), two states (h, c); h is projected when W_hr is present."""

    state_names = CELL_FACTS["lstm"].states                       # ("h", "c")
    one_pre_activation = True                   # both sides add into one a(t) before the gates

    def input_bias(self, w):
        return None if w.b_ih is None else w.b_ih + w.b_hh

    def start(self, w, ax: np.ndarray, state0: tuple) -> "LSTMTrace":
        return LSTMTrace(w, ax, state0)

    def __repr__(self) -> str:
        return "LSTMCell()"


class LSTMTrace:
    """One sequence's LSTM values. `gate` is the engine's ax, overwritten by a(t), then by the
    activations [i, f, g, o], and in the backward pass by to_da and then ∂L/∂a(t); tanh_c
    becomes dm_to_dc and c[:-1] keeps f(t) once the backward pass begins (begin_backward).
    Without a projection `m` is a view of h[1:], so the engine's mask, holding h at padded
    steps, holds m there too (those steps get no gradient)."""

    def __init__(self, w, ax: np.ndarray, state0: tuple):
        T, B, G_H = ax.shape
        H = G_H // 4
        H_out = w.W.shape[1]
        self.H = H
        self.W, self.W_hr = w.W, w.W_hr
        self.WT = np.ascontiguousarray(w.W.T)
        self.W_hrT = None if w.W_hr is None else np.ascontiguousarray(w.W_hr.T)
        self.gate = ax                                             # a(t), then [i, f, g, o] in place
        self.h = np.empty((T + 1, B, H_out), dtype=ax.dtype)
        self.c = np.empty((T + 1, B, H), dtype=ax.dtype)
        self.h[0], self.c[0] = state0                              # h(0) = h0, c(0) = c0
        self.tanh_c = np.empty((T, B, H), dtype=ax.dtype)
        self.m = self.h[1:] if w.W_hr is None else np.empty((T, B, H), dtype=ax.dtype)
        self.states = (self.h, self.c)
        self.recurrent = np.empty((B, G_H), dtype=ax.dtype)
        self.ig = np.empty((B, H), dtype=ax.dtype)
        # All four gates with one tanh: σ(a) = ½ tanh(a/2) + ½ for i, f, o and tanh(a) for g,
        # i.e. tanh(a ⊙ scale) ⊙ scale + shift with scale = ½ (1 on g) and shift = ½ (0 on g).
        # Four calls per step instead of nine (with the backward's to_da: 1.07x, 1.18x and
        # 1.24x faster per call at the tiny, small and long sizes, measured A/B in one process).
        self.scale = np.full(G_H, 0.5, dtype=ax.dtype)
        self.scale[2 * H:3 * H] = 1
        self.shift = np.full(G_H, 0.5, dtype=ax.dtype)
        self.shift[2 * H:3 * H] = 0

    def step(self, t: int) -> None:
        H, a = self.H, self.gate[t]
        np.dot(self.h[t], self.WT, out=self.recurrent)             # W h(t-1)
        a += self.recurrent                                        # a(t) = U x(t) + b + W h(t-1)
        a *= self.scale
        np.tanh(a, out=a)
        a *= self.scale
        a += self.shift                                               # i, f, o = σ(a_i, a_f, a_o); g = tanh(a_g)
        i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        c = self.c[t + 1]
        np.multiply(f, self.c[t], out=c)                           # c(t) = f ⊙ c(t-1)
        np.multiply(i, g, out=self.ig)
        c += self.ig                                               #        + i ⊙ g
        np.tanh(c, out=self.tanh_c[t])
        np.multiply(o, self.tanh_c[t], out=self.m[t])              # m(t) = o ⊙ tanh(c(t))
        if self.W_hrT is not None:
            np.dot(self.m[t], self.W_hrT, out=self.h[t + 1])       # h(t) = W_hr m(t)

    def begin_backward(self) -> None:
        T, B, G_H = self.gate.shape
        H = self.H
        # Every step's local derivatives, read off what the forward pass kept, written over
        # buffers the backward pass no longer needs (no (T, B, 4H) temporaries):
        #   gate   [i, f, g, o]  ->  to_da = [g ⊙ i(1-i), c(t-1) ⊙ f(1-f), i ⊙ (1-g²), tanh c(t) ⊙ o(1-o)],
        #          what multiplies ∂L/∂c(t) (blocks i, f, g) or ∂L/∂m(t) (block o) to give ∂L/∂a(t);
        #          the backward loop then overwrites it with ∂L/∂a(t) itself;
        #   tanh_c tanh(c(t))    ->  dm_to_dc = o ⊙ (1 - tanh²(c(t))), how ∂L/∂m(t) reaches c(t);
        #   c[:-1] c(t-1)        ->  f(t), for the carousel ∂L/∂c(t-1) = ∂L/∂c(t) ⊙ f.
        # A few steps at a time, so that the two scratch blocks stay in cache (chunks.py); at the
        # large size in float64 this took 302 ms in one go with (T, B, 4H) temporaries, 57 ms now.
        steps = time_chunks(T, B * H)
        scratch = np.empty_like(self.tanh_c, shape=(2, steps[0].stop, B, H))   # tanh_c's dtype, by construction
        for s in steps:
            i, f, g, o = (self.gate[s, :, k * H:(k + 1) * H] for k in range(4))
            tc, c_prev = self.tanh_c[s], self.c[s]
            u, v = scratch[0, :s.stop - s.start], scratch[1, :s.stop - s.start]
            np.subtract(1, o, out=u)
            u *= o
            u *= tc                                                # tanh c(t) ⊙ o(1-o)
            np.multiply(tc, tc, out=tc)
            np.subtract(1, tc, out=tc)
            tc *= o                                                # dm_to_dc = o ⊙ (1 - tanh²(c(t)))
            np.copyto(o, u)
            np.subtract(1, f, out=u)
            u *= f
            u *= c_prev                                            # c(t-1) ⊙ f(1-f)
            np.copyto(c_prev, f)                                   # c[t] now keeps f(t)
            np.copyto(f, u)
            np.subtract(1, i, out=u)
            u *= i
            u *= g                                                 # g ⊙ i(1-i)
            np.multiply(g, g, out=v)
            np.subtract(1, v, out=v)
            np.multiply(v, i, out=g)                               # i ⊙ (1-g²)
            np.copyto(i, u)
        self.dm_to_dc, self.f = self.tanh_c, self.c[:-1]
        self.da_x = self.da_h = self.gate                          # to_da, overwritten step by step by ∂L/∂a(t)
        self.dh_all = None if self.W_hr is None else np.empty_like(self.h[1:])
        self.dc_total = np.empty((B, H), dtype=self.gate.dtype)

    def step_backward(self, t: int, dstate: tuple) -> None:
        dh, dc = dstate
        H = self.H
        f = self.f[t]
        if self.W_hr is None:
            dm = dh                                                # h(t) = m(t)
        else:
            self.dh_all[t] = dh                                    # kept for ∂L/∂W_hr
            dm = dh @ self.W_hr                                    # ∂L/∂m(t) = W_hrᵀ ∂L/∂h(t)
        dct = self.dc_total
        np.multiply(dm, self.dm_to_dc[t], out=dct)
        dct += dc                                                  # ∂L/∂c(t): carried + through h(t)
        da = self.gate[t].reshape(-1, 4, H)                        # to_da(t), turned into ∂L/∂a(t) here
        # ∂L/∂a_i = ∂L/∂c(t) ⊙ g ⊙ σ'   ∂L/∂a_f = ∂L/∂c(t) ⊙ c(t-1) ⊙ σ'   ∂L/∂a_g = ∂L/∂c(t) ⊙ i ⊙ tanh'
        da[:, :3] *= dct[:, None, :]
        da[:, 3] *= dm                                             # ∂L/∂a_o = ∂L/∂m(t) ⊙ tanh(c(t)) ⊙ σ'
        np.multiply(dct, f, out=dc)                                # ∂L/∂c(t-1) = ∂L/∂c(t) ⊙ f
        np.dot(self.gate[t], self.W, out=dh)                       # ∂L/∂h(t-1) = Wᵀ ∂L/∂a(t)

    def extra_grads(self) -> dict:
        if self.W_hr is None:
            return {}
        T, B, H_out = self.dh_all.shape
        dh_rows, m_rows = self.dh_all.reshape(T * B, H_out), self.m.reshape(T * B, self.H)
        return {"W_hr": dh_rows.T @ m_rows}                        # Σ_t ∂L/∂h(t) m(t)ᵀ
