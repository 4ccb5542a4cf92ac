"""One layer and direction over time: a cell's step, run forward and then back.

The contract of CS231n's `rnn_forward` / `rnn_backward(dh, cache)`: the backward
pass takes the upstream ∂L/∂h(t) of every step's output (from the readout or the
layer above) and returns the sum over t of each step's weight gradients,
∂L/∂state(0) and ∂L/∂x. Layers and directions are compositions of it (network.py).

Time runs forward here; the caller hands the reverse direction its input reversed.
Index convention: x[t] and dh[t] belong to step t+1 (Python counts from 0);
`states[t]` is state(t), with `states[0]` the initial state. Two options change
the recursion, never the cell:

- mask (T, B, 1), True on a sequence's real steps: a padded step keeps the state,
  state(t) = state(t-1), and passes the carried gradient through unchanged; its cell
  sees a zero gradient, so it adds nothing to the weights and gives ∂L/∂x(t) = 0.
- truncate = k: the state entering each chunk of k steps (steps k+1, 2k+1, …) is a
  constant for the backward pass (torch's h.detach()), so the carried gradient stops
  there, for the rows still running; a finished row holds its last state, uncut.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SequenceCache:
    """What the forward pass kept.

    x:      (T, B, I_l), the input in this direction's order
    states: T+1 dicts {name: (B, ·)}, states[t] = state(t)
    steps:  T cell caches, steps[t] for step t+1
    mask:   (T, B, 1) bool, True on real steps; None when every step is real
    """

    x: np.ndarray
    states: list
    steps: list
    mask: np.ndarray | None

    @property
    def h(self) -> np.ndarray:
        """h: (T+1, B, H_out), h[t] = h(t); the outputs are h[1:]."""
        return np.stack([state["h"] for state in self.states])


@dataclass
class SequenceGrads:
    """weights: {symbol: Σ_t ∂L/∂w at step t}; state0: {name: ∂L/∂state(0)}; x: ∂L/∂x, (T, B, I_l)."""

    weights: dict
    state0: dict
    x: np.ndarray


def sequence_forward(cell, w, x: np.ndarray, state0: dict, mask: np.ndarray | None) -> SequenceCache:
    """Run `cell` with weights w over x: (T, B, I_l) from state0 ({name: (B, ·)})."""
    states, steps = [state0], []
    for t in range(x.shape[0]):
        state, step = cell.step_forward(w, x[t], states[t])
        if mask is not None:                                    # a padded step keeps the state
            state = {name: np.where(mask[t], state[name], states[t][name]) for name in cell.state_names}
        states.append(state)
        steps.append(step)
    return SequenceCache(x=x, states=states, steps=steps, mask=mask)


def sequence_backward(cell, w, cache: SequenceCache, dh: np.ndarray | None, dstate_final: dict | None = None,
                      truncate: int | None = None) -> SequenceGrads:
    """BPTT for one layer and direction.

    dh:           (T, B, H_out), dh[t] = the upstream ∂L/∂h(t+1) of every step's output,
                  or None where no output is read
    dstate_final: {name: ∂L/∂state(T)} from a reader of the final state (target "last"), or None;
                  a state it does not name gets 0
    truncate:     cut the carried gradient at the start of every chunk of this many steps
    """
    T = cache.x.shape[0]
    dstate = {name: np.zeros_like(state) for name, state in cache.states[T].items()}   # ∂L/∂state(T): ...
    dstate.update(dstate_final or {})                           # ... what a reader of the final state sends
    done = []                                                   # each step's StepGrads, t = T down to 1
    for t in reversed(range(T)):
        if dh is not None:
            dstate["h"] = dstate["h"] + dh[t]                   # ∂L/∂h(t+1) = from above + carried (index t: step t+1)
        real = True if cache.mask is None else cache.mask[t]
        seen = {name: np.where(real, d, 0) for name, d in dstate.items()}    # a padded step's cell sees none
        step = cell.step_backward(w, seen, cache.steps[t])
        dstate = {name: np.where(real, step.state[name], dstate[name])       # ∂L/∂state(t-1); a padded step
                  for name in cell.state_names}                              # passes it through unchanged
        done.append(step)
        if truncate is not None and t > 0 and t % truncate == 0:
            dstate = {name: np.where(real, 0, d) for name, d in dstate.items()}   # state(t) enters a chunk: a constant
    weights = {symbol: sum(step.weights[symbol] for step in done) for symbol in done[0].weights}   # Σ_t
    dx = np.stack([step.x for step in reversed(done)])          # ∂L/∂x(t), in time order
    return SequenceGrads(weights=weights, state0=dstate, x=dx)
