"""The recurrent cells: the one part of a network that differs between nn.RNN, nn.LSTM and nn.GRU.

A cell computes one step, state(t) from state(t-1) and its input, and that step's
backward pass; the sequence engine (sequence.py) runs it over time, in either
direction, with a mask for padded steps, and does every product over all steps
at once. The contract, for a layer's weights w (names.py) and T steps of B rows:

    cell.state_names                  ("h",) or ("h", "c"): the states, in the order of every tuple below
    cell.one_pre_activation           True when U x(t) + b_ih and W h(t-1) + b_hh add into one pre-activation
                                      (Elman, LSTM): then ∂L/∂(input side) = ∂L/∂(hidden side), one array;
                                      False for the GRU, whose r multiplies the hidden side's n block
    trace = cell.start(w, ax, state0)
        ax:      (T, B, G·H), C-contiguous: the input side of every pre-activation,
                 U x(t) + cell.input_bias(w), computed by the engine in one product
                 (the trace owns it from then on and may overwrite it)
        state0:  a tuple of (B, ·) arrays, (h0,) or (h0, c0)
    trace.states                      a tuple of (T+1, B, ·) arrays, states[i][t] = state(t), [0] = state0
    trace.step(t)                     fills state(t+1) from state(t) (Python index t is step t+1)
    trace.begin_backward()            once, after the forward loop: every step's local derivatives
                                      at once; creates da_x and da_h
    trace.step_backward(t, dstate)    dstate holds ∂L/∂state(t+1) (in place); it writes the step's
                                      pre-activation gradients into trace.da_x[t] and trace.da_h[t]
                                      and leaves ∂L/∂state(t) in dstate; called once per step,
                                      t = T-1, ..., 0 (or a run of them)
    trace.da_x, trace.da_h            (T, B, G·H): ∂L/∂(input side), ∂L/∂(hidden side) of the
                                      pre-activations; one array for cells where they are equal
    trace.extra_grads()               gradients of weights the engine does not know (LSTM W_hr)

begin_backward and step_backward may reuse the buffers of values the backward pass has
finished with: the Elman cell keeps φ'(a(t)), then ∂L/∂a(t), over a(t) in ax; the LSTM
keeps its local derivatives, then ∂L/∂a(t), over its gate activations, and f(t) over
c(t-1); the GRU keeps its multipliers, then ∂L/∂a_x(t), in ax's buffer and ∂L/∂a_h(t)
over its gates. So the backward pass consumes a trace, and
states[1:] (an LSTM's c) are not the states any more once it has begun; states[0], h,
stays whole: the weight gradients read it. These are the fast path's tricks; the
readable form of every cell, one formula a line, is manual_bptt.reference.

From da_x and da_h the engine forms ∂L/∂U = Σ_t da_x(t) x(t)ᵀ, ∂L/∂W = Σ_t da_h(t) h(t-1)ᵀ,
∂L/∂b_ih = Σ_t da_x(t), ∂L/∂b_hh = Σ_t da_h(t) and ∂L/∂x(t) = Uᵀ da_x(t).
"""

from __future__ import annotations

from .elman import ElmanCell
from .gru import GRUCell
from .lstm import LSTMCell

#: PyTorch's mode name → the cell that computes it.
CELLS = {
    "rnn_tanh": ElmanCell("tanh"),
    "rnn_relu": ElmanCell("relu"),
    "lstm": LSTMCell(),
    "gru": GRUCell(),
}


def cell_for(name: str):
    """The cell object for one of PyTorch's mode names."""
    return CELLS[name]
