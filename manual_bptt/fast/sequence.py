"""One cell over time: the forward pass and BPTT given ∂L/∂h(t) for every step.

This is the engine's contract, the one CS231n's `rnn_forward` / `rnn_backward(dh, cache)`
pair has: the backward pass takes the upstream gradient of every step's output
h(t) (from the readout, or from the layer above) and returns the weights'
gradients, ∂L/∂state(0) and ∂L/∂x. Stacking layers and running the reverse
direction are then compositions of this one function (network.py).

Time runs forward here; the reverse direction calls the engine on a reversed
copy of its input (network.py). Two options change the recursion, neither the cell:

- mask (T, B, 1), True on a sequence's real steps: a padded step keeps the state,
  state(t) = state(t-1), and passes the carried gradient through unchanged; its
  pre-activation gradients are zero, so its input gets ∂L/∂x = 0.
- truncate = k: the state entering each chunk of k steps (steps k+1, 2k+1, …) is
  a constant for the backward pass, so the carried gradient is cut there — for
  the rows whose sequence is still running; a finished (padded) row holds its
  last state as it is, which carries no chunk boundary.

Index convention: Python index t of x, mask and the per-step arrays is step t+1;
states[i][t] is state(t), with states[i][0] the initial state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model.reductions import column_sums


@dataclass
class SequenceCache:
    """What the forward pass of one layer and direction kept.

    x:     (T, B, I_l), the input as the cell saw it (time-major, in this direction's order)
    trace: the cell's values; trace.states[0] is h: (T+1, B, H_out), h[t] = h(t)
    mask:  (T, B, 1) bool, True on real steps; None when every step is real
    """

    x: np.ndarray
    trace: object
    mask: np.ndarray | None

    @property
    def h(self) -> np.ndarray:
        """h: (T+1, B, H_out), h[0] = h(0); the outputs are h[1:]."""
        return self.trace.states[0]


@dataclass
class SequenceGrads:
    """weights: {symbol: ∂L/∂w} for U, W (and b_ih, b_hh, W_hr where present);
    state0: ∂L/∂state(0), a tuple like the cell's state; x: ∂L/∂x, (T, B, I_l)."""

    weights: dict
    state0: tuple
    x: np.ndarray


def sequence_forward(cell, w, x: np.ndarray, state0: tuple, mask: np.ndarray | None) -> SequenceCache:
    """Run `cell` over x: (T, B, I_l) from state0 (a tuple of (B, ·) arrays)."""
    T, B, I = x.shape
    ax = (x.reshape(T * B, I) @ w.U.T).reshape(T, B, -1)           # U x(t) for every step, one product
    bias = cell.input_bias(w)
    if bias is not None:
        ax += bias
    trace = cell.start(w, ax, state0)
    step = trace.step                                              # bound once: the loop runs T times
    if mask is None:
        for t in range(T):
            step(t)
    else:
        padded = ~mask
        for t in range(T):
            step(t)
            for state in trace.states:                             # a padded step keeps the state
                np.copyto(state[t + 1], state[t], where=padded[t])
    return SequenceCache(x=x, trace=trace, mask=mask)


def sequence_backward(
    cell,
    w,
    cache: SequenceCache,
    dh: np.ndarray | None,
    dstate_final: tuple | None = None,
    truncate: int | None = None,
) -> SequenceGrads:
    """BPTT for one layer and direction. Consumes the cache (its buffers are reused).

    dh:           (T, B, H_out), dh[t-1] = the upstream ∂L/∂h(t) of every step's output
                  (readout or the layer above), or None where no output is read
    dstate_final: ∂L/∂state(T) from a reader of the final state (target "last"), or None
    truncate:     cut the carried gradient at the start of every chunk of this many steps
    """
    trace, mask, x = cache.trace, cache.mask, cache.x
    T, B, I = x.shape
    trace.begin_backward()
    if dstate_final is None:
        dstate = tuple([np.zeros_like(state[0]) for state in trace.states])
    else:
        dstate = tuple([np.zeros_like(state[0]) if d is None else d.copy() for d, state in zip(dstate_final, trace.states)])
    step_backward = trace.step_backward                            # bound once: the loops run T times
    if mask is None and truncate is None:
        # Every step real, nothing cut: the recursion alone, rows of dh taken by zip (measured A/B
        # at bench_rnn.py's "long" size, float32: 1.99 µs a step, the general loop below 2.11).
        if dh is None:
            for t in range(T - 1, -1, -1):
                step_backward(t, dstate)                            # ∂L/∂state(t), through the cell
        else:
            add, dh_carried = np.add, dstate[0]
            for t, dh_t in zip(range(T - 1, -1, -1), dh[::-1]):
                add(dh_carried, dh_t, dh_carried)                   # ∂L/∂h(t) = from above + carried from t+1
                step_backward(t, dstate)                            # now ∂L/∂state(t), through the cell
        return _weight_grads(cell, w, trace, x, dstate)
    held = tuple(np.empty_like(d) for d in dstate) if mask is not None else ()
    for t in range(T - 1, -1, -1):
        if dh is not None:
            np.add(dstate[0], dh[t], out=dstate[0])                 # ∂L/∂h(t) = from above + carried from t+1
        if mask is not None:
            padded, real = ~mask[t], mask[t]
            for d, kept in zip(dstate, held):
                np.multiply(d, padded, out=kept)                    # a padded step passes it through ...
                d *= real                                           # ... and its cell sees none of it
        step_backward(t, dstate)                                    # now ∂L/∂state(t), through the cell
        if mask is not None:
            for d, kept in zip(dstate, held):
                d += kept
        if truncate is not None and t > 0 and t % truncate == 0:
            for d in dstate:                                        # state(t) enters a chunk as a constant
                if mask is None:
                    d.fill(0)
                else:
                    d *= ~mask[t]                                   # rows still running; padded rows hold
    return _weight_grads(cell, w, trace, x, dstate)


def _weight_grads(cell, w, trace, x: np.ndarray, dstate: tuple) -> SequenceGrads:
    """The sums over t of the immediate partials: one product each over all T·B rows."""
    T, B, I = x.shape
    h = trace.states[0]
    one_side = cell.one_pre_activation                              # then da_h and da_x are one array
    da_x = trace.da_x.reshape(T * B, -1)                            # rows (t, n): ∂L/∂a_x(t) of sequence n
    da_h = da_x if one_side else trace.da_h.reshape(T * B, -1)
    grads = {"W": da_h.T @ h[:-1].reshape(T * B, -1)}               # Σ_t ∂L/∂a_h(t) h(t-1)ᵀ
    if w.b_ih is not None and not one_side:
        grads["b_hh"] = column_sums(da_h)                           # Σ_t ∂L/∂a_h(t)
    grads.update(trace.extra_grads())
    grads["U"] = da_x.T @ x.reshape(T * B, I)                       # Σ_t ∂L/∂a_x(t) x(t)ᵀ
    if w.b_ih is not None:
        grads["b_ih"] = column_sums(da_x)                           # Σ_t ∂L/∂a_x(t)
        if one_side:
            grads["b_hh"] = grads["b_ih"].copy()                    # the same sum, not summed twice
    dx = (da_x @ w.U).reshape(T, B, I)                              # ∂L/∂x(t) = Uᵀ ∂L/∂a_x(t)
    return SequenceGrads(weights=grads, state0=dstate, x=dx)
