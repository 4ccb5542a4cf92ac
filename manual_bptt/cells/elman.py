"""The Elman cell of nn.RNN, in the derivation's notation.

    a(t) = U x(t) + b_ih + W h(t-1) + b_hh      (the derivation's b is b_ih + b_hh)
    h(t) = φ(a(t))                              φ = tanh or relu

Backward, for one step, given ∂L/∂h(t) (the gradient from above plus the one
carried back from step t+1):

    ∂L/∂a(t)   = φ'(a(t)) ⊙ ∂L/∂h(t)
    ∂L/∂h(t-1) = Wᵀ ∂L/∂a(t)

Rows are batch elements, so the derivation's Wᵀ ∂L/∂a(t) is the code's `da_t @ W`
and W h(t-1) is `h_prev @ Wᵀ`.
"""

from __future__ import annotations

import numpy as np

from .. import activations


class ElmanCell:
    """tanh or relu; one gate block (G = 1), one state (h)."""

    state_names = ("h",)
    in_place_ax = True          # works in the ax it is given, any strides; ∂L/∂a(t) ends there too

    def __init__(self, nonlinearity: str):
        self.nonlinearity = nonlinearity

    def input_bias(self, w):
        """What joins U x(t) before the loop: all of b = b_ih + b_hh (None without biases)."""
        return None if w.b_ih is None else w.b_ih + w.b_hh

    def start(self, w, ax: np.ndarray, state0: tuple, h: np.ndarray | None = None) -> "ElmanTrace":
        return ElmanTrace(self.nonlinearity, w, ax, state0[0], h)

    def begin_backward_together(self, traces: list, a: np.ndarray, h: np.ndarray) -> None:
        """begin_backward for traces whose a(t) and h(t), t = 1..T, all lie at matching places of
        a and h, two arrays of one shape (a bidirectional layer's AX and outputs, (T, B, 2·H),
        network.py): φ' in one pass over two whole contiguous arrays, where each trace's own
        pass reads strided blocks, at about three times the cost per element (float64, B = 64,
        H = 256: 16 ms for both directions against 2 × 18). Each trace's begin_backward then
        only names its buffers."""
        activations.dphi(self.nonlinearity, a, h, out=a)
        for trace in traces:
            trace.dphi = trace.a                                   # φ'(a(t)), written above

    def __repr__(self) -> str:
        return f"ElmanCell({self.nonlinearity!r})"


class ElmanTrace:
    """The forward values of one sequence, and its backward pass (consumes the trace)."""

    def __init__(self, nonlinearity: str, w, ax: np.ndarray, h0: np.ndarray, h: np.ndarray | None):
        T, B, H = ax.shape
        self.nonlinearity = nonlinearity
        self.W = w.W
        self.WT = np.ascontiguousarray(w.W.T)                      # Wᵀ once, contiguous, as rnn.py does for BLAS
        self.phi = activations.PHI[nonlinearity]
        self.a = ax                                                # a(t), then φ'(a(t)), then ∂L/∂a(t), in place
        # (with strided rows and tanh it keeps U x(t) + b until φ': tanh' reads h(t) alone)
        self.h = np.empty((T + 1, B, H), dtype=ax.dtype) if h is None else h
        self.h[0] = h0                                             # h(0) = h0
        self.dphi = None                                           # φ'(a(t)), once the backward pass begins
        # np.dot has the least overhead per call, but copies strided operands and writes only
        # into contiguous rows; np.matmul hands strided ones (a network's shared buffers) to BLAS.
        contiguous = h is None and ax.flags.c_contiguous
        self.product = np.dot if contiguous else np.matmul
        # Strided rows: one step's W h(t-1) + a(t) and φ in a contiguous block, then one copy
        # into h(t) (element-wise calls on strided blocks cost about 3x per element).
        self.block = None if contiguous else np.empty((B, H), dtype=ax.dtype)
        self.states = (self.h,)

    def step(self, t: int) -> None:
        a_t, h_prev, h_t = self.a[t], self.h[t], self.h[t + 1]
        if self.block is None:
            np.dot(h_prev, self.WT, out=h_t)                       # W h(t-1), in h(t)'s row: no temporary
            a_t += h_t                                             # a(t) = U x(t) + b + W h(t-1)
            self.phi(a_t, h_t)                                     # h(t) = φ(a(t))
        else:
            z = self.block
            np.matmul(h_prev, self.WT, out=z)
            z += a_t                                               # a(t) = U x(t) + b + W h(t-1)
            if self.nonlinearity == "relu":
                np.copyto(a_t, z)                                  # relu' reads a(t); tanh' reads h(t) alone
            self.phi(z, z)
            np.copyto(h_t, z)                                      # h(t) = φ(a(t))
            # (np.copyto: 14 µs a step at B = 64, H = 256, float64, where h_t[...] = z took 26)

    def begin_backward(self) -> None:
        # φ'(a(t)) for every step in one call, in a's own buffer (a is not needed after); step t
        # then writes ∂L/∂a(t) over φ'(a(t)), which nothing reads again. Already done where the
        # network began the backward pass of both directions together (begin_backward_together).
        if self.dphi is None:
            self.dphi = activations.dphi(self.nonlinearity, self.a, self.h[1:], out=self.a)
        self.da_x = self.da_h = self.dphi                          # one a(t): both sides get ∂L/∂a(t)

    def step_backward(self, t: int, dstate: tuple) -> None:
        (dh,) = dstate
        da_t = self.dphi[t]
        da_t *= dh                                                 # ∂L/∂a(t) = φ'(a(t)) ⊙ ∂L/∂h(t)
        self.product(da_t, self.W, out=dh)                         # ∂L/∂h(t-1) = Wᵀ ∂L/∂a(t)

    def extra_grads(self) -> dict:
        return {}
