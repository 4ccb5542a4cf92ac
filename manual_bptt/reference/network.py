"""A whole network, layers × directions, as compositions of one direction over time (sequence.py).

    layer 0 reads x; layer l reads the outputs of layer l-1, both directions concatenated
    the reverse direction: the same pass over each sequence's own real steps, reversed
    the readout (manual_bptt.model.readout) reads the top layer: every real step, or the final state h_n

Backward, by the chain rule in the other order: the readout gives ∂L/∂(the top layer's
outputs), or ∂L/∂h_n; each layer and direction's backward pass turns ∂L/∂(its outputs)
into its weights' gradients, ∂L/∂state(0) and ∂L/∂(its input), and ∂L/∂(a layer's
input), summed over the directions, is ∂L/∂(the outputs of the layer below).

Arrays are time-major, (T, B, ·); layer l and direction d (0 forward, 1 reverse) sit
at index l·D + d of h0 and of the per-sequence lists, as torch stacks them. A network
without biases is the same function with b_ih = b_hh = 0: zeros stand in, and their
gradients are left out of the result.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..fast.network import check_finite_network_result
from ..inputs.network_validation import NetworkProblem
from ..model.names import HEAD_SYMBOLS, torch_name
from ..model.network_params import LayerWeights, NetworkGrads, NetworkParams
from ..model.readout import readout
from .elman import ElmanCell
from .gru import GRUCell
from .lstm import LSTMCell
from .sequence import sequence_backward, sequence_forward

#: torch's mode name → the cell that computes it.
CELLS = {"rnn_tanh": ElmanCell("tanh"), "rnn_relu": ElmanCell("relu"), "lstm": LSTMCell(), "gru": GRUCell()}


@dataclass
class NetworkForward:
    """What the forward pass kept.

    sequences:   the SequenceCache of every layer and direction (index l·D + d), in its own time order
    outputs:     (T, B, D·H_out), the top layer's h(t), both directions, in natural time order
    final_state: (B, D·H_out), the top layer's h_n: each direction's last state (a padded
                 step holds the state, so it is the state after each sequence's own last step)
    """

    sequences: list
    outputs: np.ndarray
    final_state: np.ndarray


def network_bptt(problem: NetworkProblem) -> tuple[float, NetworkGrads]:
    """L and ∂L/∂ every parameter, h0 (c0) and x, for a validated network problem."""
    p = problem.params
    cell = CELLS[p.cell]
    forward = network_forward(problem, cell)
    V, c = p[HEAD_SYMBOLS["V"]], p[HEAD_SYMBOLS["c"]]
    if problem.target == "each_step":
        scored = None if problem.mask is None else problem.mask[..., 0]        # padded steps have no label
        r = readout(V, c, forward.outputs, problem.y, loss=problem.loss, reduction=problem.reduction, scored=scored)
        doutputs, dfinal = r.h_top, None
    else:
        r = readout(V, c, forward.final_state, problem.y, loss=problem.loss, reduction=problem.reduction)
        doutputs, dfinal = None, r.h_top
    grads, dstate0, dx = network_backward(problem, cell, forward, doutputs, dfinal)
    grads[HEAD_SYMBOLS["V"]], grads[HEAD_SYMBOLS["c"]] = r.V, r.c
    stacked = {name: problem.state_to_caller_layout(np.stack([d[name] for d in dstate0]))
               for name in cell.state_names}                                   # (L·D, B, ·), as h0 was given
    result = NetworkGrads(params={name: grads[name] for name in p.keys()}, h0=stacked["h"], c0=stacked.get("c"),
                          x=problem.to_caller_layout(dx))
    check_finite_network_result(problem, r.L, result, computed_by="bptt")
    return r.L, result


def network_forward(problem: NetworkProblem, cell) -> NetworkForward:
    """Every layer and direction's forward pass, bottom to top."""
    p = problem.params
    D, lengths = p.num_directions, sequence_lengths(problem)
    inputs, sequences = problem.x, []
    for layer in range(p.num_layers):
        outputs = []
        for direction in range(D):
            state0 = dict(zip(cell.state_names, problem.initial_state(layer * D + direction)))
            x = in_direction(inputs, direction, lengths)
            sequence = sequence_forward(cell, layer_weights(p, layer, direction), x, state0, problem.mask)
            sequences.append(sequence)
            outputs.append(in_direction(sequence.h[1:], direction, lengths))    # back in natural time order
        inputs = np.concatenate(outputs, axis=-1)                               # both directions side by side
    final_state = np.concatenate([sequence.states[-1]["h"] for sequence in sequences[-D:]], axis=-1)
    return NetworkForward(sequences=sequences, outputs=inputs, final_state=final_state)


def network_backward(problem: NetworkProblem, cell, forward: NetworkForward, doutputs, dfinal):
    """({torch name: ∂L/∂w}, [{name: ∂L/∂state(0)} per layer and direction], ∂L/∂x (T, B, I)).

    doutputs: (T, B, D·H_out), ∂L/∂ the top layer's outputs, or None (target "last")
    dfinal:   (B, D·H_out), ∂L/∂h_n, or None (target "each_step")
    """
    p = problem.params
    D, H_out, lengths = p.num_directions, p.output_hidden_size, sequence_lengths(problem)
    grads, dstate0 = {}, [None] * (p.num_layers * D)
    dabove = doutputs                                           # ∂L/∂(the outputs of the layer being done)
    for layer in reversed(range(p.num_layers)):
        dinput = 0                                              # ∂L/∂(this layer's input), summed over directions
        for direction in range(D):
            index = layer * D + direction
            part = slice(direction * H_out, (direction + 1) * H_out)          # this direction's columns
            dh = None if dabove is None else in_direction(dabove[..., part], direction, lengths)
            final = None if dfinal is None or layer < p.num_layers - 1 else {"h": dfinal[:, part]}
            g = sequence_backward(cell, layer_weights(p, layer, direction), forward.sequences[index], dh, final,
                                  problem.truncate)
            for symbol, grad in g.weights.items():
                grads[torch_name(symbol, layer, direction)] = grad
            dstate0[index] = g.state0
            dinput = dinput + in_direction(g.x, direction, lengths)           # back in natural time order
        dabove = dinput                                         # dx of layer l is dh of layer l-1
    return grads, dstate0, dabove


def layer_weights(p: NetworkParams, layer: int, direction: int) -> LayerWeights:
    """The weights of one layer and direction; zeros for b_ih and b_hh in a network without biases."""
    w = p.layer(layer, direction)
    if w.b_ih is None:
        zeros = np.zeros(w.U.shape[0], dtype=p.dtype)
        w = dataclasses.replace(w, b_ih=zeros, b_hh=zeros)
    return w


def sequence_lengths(problem: NetworkProblem) -> np.ndarray:
    """(B,) the number of real steps of every sequence: T for each when no lengths were given."""
    return np.full(problem.B, problem.T) if problem.lengths is None else problem.lengths


def in_direction(per_step: np.ndarray, direction: int, lengths: np.ndarray) -> np.ndarray:
    """per_step (T, B, ·) in `direction`'s time order: as it is for the forward direction; for the
    reverse one, each sequence's real steps reversed and its padded steps left at the end (where the
    mask holds the state), so that every sequence starts from its own last step. Its own inverse."""
    if direction == 0:
        return per_step
    columns = [np.concatenate([per_step[:n, b][::-1], per_step[n:, b]]) for b, n in enumerate(lengths)]
    return np.stack(columns, axis=1)
