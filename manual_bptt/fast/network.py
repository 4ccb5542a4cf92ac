"""Layers × directions: a whole network as compositions of the one-sequence engine.

    layer 0 reads x; layer l reads the outputs of layer l-1, both directions concatenated
    direction 1 (reverse) = the engine on each sequence's own steps reversed, flipped back after
    the readout (readout.py) reads the top layer: every step, or the final state h_n

Backward, by the chain rule in the other order: the readout gives ∂L/∂h of the top
layer's outputs (or of h_n); the engine turns ∂L/∂h of a layer into that layer's
weight gradients and its ∂L/∂input, which is ∂L/∂h of the layer below
("dx of layer l is dh of layer l-1"); the reverse direction's gradients are
flipped back per sequence like its outputs.

The engine runs a `Stack`: a cell, the weights of every layer and direction, the
head. A NetworkParams gives one (`Stack.of`); so does the derivation's one-layer
RNNParams (fast/rnn.py), the same engine with one layer, one direction and the
names U, W, b, V, c.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..inputs.network_validation import NetworkProblem, check_network_problem
from ..inputs.options import Options
from ..inputs.overflow import NonFiniteError, all_finite
from ..model.names import HEAD_SYMBOLS, torch_name
from ..model.network_params import LayerWeights, NetworkGrads, NetworkParams
from ..model.readout import ReadoutGrads, readout
from .cells import cell_for
from .sequence import sequence_backward, sequence_forward


@dataclass
class Stack:
    """What the engine runs: a cell, the weights of every layer and direction (index l·D + d)
    and the head o = V h_top + c. Built per call, never changed (not frozen: a frozen
    dataclass costs a microsecond more to build, 1% of the smallest bench_rnn.py row)."""

    cell: object
    layers: tuple[LayerWeights, ...]
    num_directions: int
    V: np.ndarray
    c: np.ndarray

    @classmethod
    def of(cls, p: NetworkParams) -> "Stack":
        """The stack of a NetworkParams."""
        D = p.num_directions
        layers = tuple(p.layer(layer, direction) for layer in range(p.num_layers) for direction in range(D))
        return cls(cell=cell_for(p.cell), layers=layers, num_directions=D,
                   V=p[HEAD_SYMBOLS["V"]], c=p[HEAD_SYMBOLS["c"]])

    @property
    def num_layers(self) -> int:
        return len(self.layers) // self.num_directions

    @property
    def output_hidden_size(self) -> int:
        """H_out, the size of h(t): W is (G·H, H_out)."""
        return self.layers[0].W.shape[1]


@dataclass
class NetworkCache:
    """Every layer and direction's SequenceCache (index l·D + d, in its own time order)
    and the top layer's outputs (T, B, D·H_out) in natural time order."""

    layers: list
    top: np.ndarray
    num_directions: int

    def final_state(self) -> np.ndarray:
        """h_n of the top layer, both directions concatenated: (B, D·H_out).

        A padded step holds the state, so the last row of every direction's h is that
        direction's final state: the forward direction at each sequence's own last step,
        the reverse direction after step 1.
        """
        tops = self.layers[-self.num_directions:]
        return np.concatenate([cache.h[-1] for cache in tops], axis=-1)


@dataclass
class StackGrads:
    """The readout's L, ∂L/∂V, ∂L/∂c; per layer and direction (index l·D + d) the weights'
    gradients by symbol and ∂L/∂state(0); ∂L/∂x, time-major."""

    readout: ReadoutGrads
    weights: list
    state0: list
    x: np.ndarray


def stack_bptt(stack: Stack, x: np.ndarray, y: np.ndarray, state0: list, *, loss: str, reduction: str,
               target: str = "each_step", mask: np.ndarray | None = None, truncate: int | None = None,
               order: "TimeOrder | None" = None) -> StackGrads:
    """The forward pass, the readout and the backward pass of a stack, on validated time-major arrays.

    state0: per layer and direction, a tuple like the cell's state of (B, ·) arrays;
    order:  the reverse direction's time order (None: no lengths, each sequence reversed whole).
    """
    order = TimeOrder() if order is None and stack.num_directions > 1 else order
    cache = stack_forward(stack, x, state0, mask, order)
    if target == "each_step":
        scored = None if mask is None else mask[..., 0]
        r = readout(stack.V, stack.c, cache.top, y, loss=loss, reduction=reduction, scored=scored)
        dtop, dfinal = r.h_top, None
    else:
        r = readout(stack.V, stack.c, cache.final_state(), y, loss=loss, reduction=reduction)
        dtop, dfinal = None, r.h_top
    weights, dstate0, dx = stack_backward(stack, cache, dtop, dfinal, truncate, order)
    return StackGrads(readout=r, weights=weights, state0=dstate0, x=dx)


def network_bptt(params, x, y, h0, options: Options) -> tuple[float, NetworkGrads]:
    """L and ∂L/∂ every parameter, h0 (c0) and x, for a NetworkParams (`manual_bptt.bptt` calls this)."""
    problem = check_network_problem(params, x, y, h0, options)
    p = problem.params
    g = stack_bptt(Stack.of(p), problem.x, problem.y, [problem.initial_state(i) for i in range(len(problem.state0))],
                   loss=problem.loss, reduction=problem.reduction, target=problem.target, mask=problem.mask,
                   truncate=problem.truncate, order=TimeOrder(problem))
    grads = _named(p, g.weights, g.state0, g.x)
    grads[HEAD_SYMBOLS["V"]], grads[HEAD_SYMBOLS["c"]] = g.readout.V, g.readout.c
    result = _assemble(problem, grads)
    check_finite_network_result(problem, g.readout.L, result, computed_by="bptt")   # once, on the results
    return g.readout.L, result


def check_finite_network_result(problem: NetworkProblem, L: float, grads: NetworkGrads, *, computed_by: str) -> None:
    """NonFiniteError if L or any gradient is not finite, naming the first state that overflowed.

    Runs the forward pass again only when something is not finite, and scans every
    layer and direction for the first step whose state left the float range.
    """
    if math.isfinite(L) and all_finite(*(g for _, g in grads.items())):
        return
    error = network_forward_overflow(problem, L, computed_by=computed_by)
    if error is not None:
        raise error
    names = [name for name, g in grads.items() if not np.isfinite(g).all()]
    raise NonFiniteError(f"{_where(problem, computed_by)}: the backward pass overflowed: "
                         f"{', '.join('∂L/∂' + n for n in names)} not finite, although L is",
                         quantity="∂L/∂" + names[0], step=None)


def network_forward_overflow(problem: NetworkProblem, L: float | None, *, computed_by: str,
                             upto: tuple[int, int, int] | None = None) -> NonFiniteError | None:
    """The NonFiniteError naming the first state that left the float range (then L, when given
    and not finite), or None if the forward pass and L are finite. It runs the forward pass again.

    Layers are scanned bottom up, each direction step by step in its own order. With
    upto = (layer, direction, t), only what state t of that layer and direction depends on:
    every state of the layers below, and that direction's own steps 1..t.
    """
    p = problem.params
    with np.errstate(all="ignore"):
        cache = network_forward_checked(problem)
    for index, sequence in enumerate(cache.layers):
        layer, direction = divmod(index, p.num_directions)
        last = problem.T
        if upto is not None:
            if layer > upto[0] or (layer == upto[0] and direction != upto[1]):
                continue
            last = upto[2] if layer == upto[0] else problem.T
        for name, states in zip(cell_for(p.cell).state_names, sequence.trace.states):
            bad = [t for t in range(1, last + 1) if not np.isfinite(states[t]).all()]
            if bad:
                return NonFiniteError(
                    f"{_where(problem, computed_by)}: the forward pass overflowed: {name}(t) of layer {layer}, "
                    f"{'reverse' if direction else 'forward'} direction, is not finite at step t = {bad[0]} "
                    "(counted in that direction's own order); scale the weights or x down",
                    quantity=f"{name}(t)", step=bad[0])
    if L is not None and not math.isfinite(L):
        return NonFiniteError(f"{_where(problem, computed_by)}: o = V h + c or the loss L overflowed, "
                              "although every state is finite", quantity="L", step=None)
    return None


def _where(problem: NetworkProblem, computed_by: str) -> str:
    """The head of every overflow message: who computed it, in which dtype, for which cell and T."""
    return f"{computed_by} ({problem.params.dtype}, {problem.params.cell}, T = {problem.T})"


def network_forward_checked(problem: NetworkProblem) -> NetworkCache:
    """The forward pass of every layer and direction, on validated arrays."""
    states = [problem.initial_state(index) for index in range(len(problem.state0))]
    return stack_forward(Stack.of(problem.params), problem.x, states, problem.mask, TimeOrder(problem))


def stack_forward(stack: Stack, x: np.ndarray, state0: list, mask: np.ndarray | None, order: "TimeOrder") -> NetworkCache:
    """The forward pass of every layer and direction of a stack, x: (T, B, I) time-major."""
    cell, D = stack.cell, stack.num_directions
    T, B = x.shape[:2]
    inputs = x
    layers = []
    for layer in range(stack.num_layers):
        if D == 1:
            cache = sequence_forward(cell, stack.layers[layer], inputs, state0[layer], mask)
            layers.append(cache)
            inputs = cache.h[1:]                                    # one direction: a view, no copy
            continue
        H_out = stack.output_hidden_size
        outputs = np.empty((T, B, D * H_out), dtype=x.dtype)
        for direction in range(D):
            index = layer * D + direction
            cache = sequence_forward(cell, stack.layers[index], order.into(direction, inputs), state0[index], mask)
            layers.append(cache)
            outputs[..., direction * H_out:(direction + 1) * H_out] = order.back(direction, cache.h[1:], copy=False)
        inputs = outputs                                            # both directions, concatenated
    return NetworkCache(layers=layers, top=inputs, num_directions=D)


def network_backward(problem: NetworkProblem, cache: NetworkCache, dtop, dfinal) -> dict:
    """Parameter gradients by name; also sets grads['h0'] ('c0') and grads['x'] (time-major)."""
    p = problem.params
    weights, dstate0, dx = stack_backward(Stack.of(p), cache, dtop, dfinal, problem.truncate, TimeOrder(problem))
    return _named(p, weights, dstate0, dx)


def stack_backward(stack: Stack, cache: NetworkCache, dtop, dfinal, truncate: int | None,
                   order: "TimeOrder") -> tuple[list, list, np.ndarray]:
    """BPTT through every layer and direction, top down, from ∂L/∂(top outputs) dtop (T, B, D·H_out)
    and/or ∂L/∂h_n dfinal (B, D·H_out). Consumes the cache. Returns per layer and direction
    (index l·D + d) the weights' gradients by symbol and ∂L/∂state(0), and ∂L/∂x time-major."""
    cell = stack.cell
    D, H_out, top = stack.num_directions, stack.output_hidden_size, stack.num_layers - 1
    weights, dstate0 = [None] * len(stack.layers), [None] * len(stack.layers)
    dabove = dtop                                                   # ∂L/∂(outputs of the layer being done)
    for layer in range(top, -1, -1):
        dinput = None
        for direction in range(D):
            index = layer * D + direction
            part = slice(direction * H_out, (direction + 1) * H_out)
            dh = dabove if dabove is None or D == 1 else order.into(direction, dabove[..., part], copy=False)
            final = None
            if dfinal is not None and layer == top:
                final = (np.ascontiguousarray(dfinal[:, part]),) + (None,) * (len(cell.state_names) - 1)
            g = sequence_backward(cell, stack.layers[index], cache.layers[index], dh, final, truncate)
            weights[index], dstate0[index] = g.weights, g.state0
            if D == 1:
                dinput = g.x
            elif dinput is None:                                    # ∂L/∂(this layer's input), natural order
                dinput = order.back(direction, g.x)
            else:                                                   # the sum over directions
                dinput += order.back(direction, g.x, copy=False)
        dabove = dinput                                             # dx of layer l is dh of layer l-1
    return weights, dstate0, dabove


def _named(p: NetworkParams, weights: list, dstate0: list, dx: np.ndarray) -> dict:
    """The stack's gradients under PyTorch's names, with 'h0' ('c0' for the LSTM) and 'x'."""
    D = p.num_directions
    grads = {torch_name(symbol, layer, direction): array
             for index, by_symbol in enumerate(weights)
             for layer, direction in [divmod(index, D)]
             for symbol, array in by_symbol.items()}
    grads["h0"] = np.stack([d[0] for d in dstate0])
    if len(dstate0[0]) > 1:
        grads["c0"] = np.stack([d[1] for d in dstate0])
    grads["x"] = dx
    return grads


def _assemble(problem: NetworkProblem, grads: dict) -> NetworkGrads:
    p = problem.params
    return NetworkGrads(
        params={name: grads[name] for name in p.keys()},
        h0=problem.state_to_caller_layout(grads["h0"]),
        c0=problem.state_to_caller_layout(grads["c0"]) if "c0" in grads else None,
        x=problem.to_caller_layout(grads["x"]),
    )


class TimeOrder:
    """Time order per direction: forward as given; reverse = each sequence's real steps reversed.

    Without lengths (or with problem=None) the reverse order is x[::-1]. With lengths, step t
    of sequence n (t < length n) goes to position length_n - 1 - t and padded steps stay where
    they are, so every sequence starts at its own last real step and the padding stays at
    the end, where the mask holds the state. The map is its own inverse.
    """

    def __init__(self, problem: NetworkProblem | None = None):
        self.index = None
        if problem is not None and problem.lengths is not None and problem.mask is not None:
            T, B = problem.T, problem.B
            t = np.arange(T)[:, None]
            n = problem.lengths[None, :]
            self.index = (np.where(t < n, n - 1 - t, t), np.arange(B)[None, :])

    def into(self, direction: int, per_step: np.ndarray, *, copy: bool = True) -> np.ndarray:
        """per_step (T, B, ...) in `direction`'s order: the array itself for the forward direction;
        for the reverse one a contiguous copy, or with copy=False a view where the map is one
        (no lengths), for a reader that takes any strides."""
        if direction == 0:
            return per_step
        if self.index is None:
            return np.ascontiguousarray(per_step[::-1]) if copy else per_step[::-1]
        return per_step[self.index]

    back = into
