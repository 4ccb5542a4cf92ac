"""Witnesses for networks that need no torch: a plain loop of the whole network, and its differences.

`reference_network_loss` is the network written as plainly as possible: one
sequence at a time, only its real steps, one layer and direction at a time, the
reverse direction as a reversed Python list, the concatenations explicit. It shares
no code with manual_bptt.fast.network. Finite differences of it check the forward and
backward passes together (no truncation: a truncated gradient is not the
derivative of L).
"""

from __future__ import annotations

import numpy as np

from manual_bptt import NetworkGrads, NetworkParams
from manual_bptt.model.names import torch_name

from .witnesses import central_differences


def reference_network_loss(problem, arrays: dict, seen_a: list | None = None) -> float:
    """L of a RandomNetworkProblem, in float64, with `arrays` holding every parameter, h0 and x.

    seen_a, if given, collects every pre-activation a(t) (to keep relu's kinks away).
    """
    p: NetworkParams = problem.params
    opts = problem.options
    x, y = arrays["x"], np.asarray(problem.y)
    h0 = arrays["h0"]
    if x.ndim == 2:                                                # unbatched: one sequence
        x, h0 = x[:, None], h0[:, None]
        y = y[:, None] if opts["target"] == "each_step" else y[None]
    elif opts["batch_first"]:
        x = x.swapaxes(0, 1)
        y = y.swapaxes(0, 1) if opts["target"] == "each_step" else y
    c0 = arrays.get("c0")
    if c0 is not None and c0.ndim == 2:
        c0 = c0[:, None]
    T, B, _ = x.shape
    D = p.num_directions
    lengths = opts["lengths"] if opts["lengths"] is not None else np.full(B, T)
    V, c = arrays["head.weight"], arrays["head.bias"]
    total, count = 0.0, 0
    for n in range(B):
        sequence = [x[t, n] for t in range(lengths[n])]
        for layer in range(p.num_layers):
            per_direction, finals = [], []
            for d in range(D):
                def w(symbol):
                    return arrays.get(torch_name(symbol, layer, d))
                h = h0[layer * D + d, n]
                cell_state = None if c0 is None else c0[layer * D + d, n]
                outputs = []
                for x_t in (sequence if d == 0 else sequence[::-1]):
                    h, cell_state = CELL_STEPS[p.cell](w, x_t, h, cell_state, p.bias, seen_a)
                    outputs.append(h)
                finals.append(h)
                per_direction.append(outputs if d == 0 else outputs[::-1])
            sequence = [np.concatenate([outs[t] for outs in per_direction]) for t in range(lengths[n])]
        if opts["target"] == "each_step":
            scored = [(V @ sequence[t] + c, y[t, n]) for t in range(lengths[n])]
        else:
            scored = [(V @ np.concatenate(finals) + c, y[n])]
        for o, label in scored:
            if opts["loss"] == "cross_entropy":
                total += np.log(np.sum(np.exp(o - o.max()))) + o.max() - o[label]
                count += 1
            else:
                total += 0.5 * np.sum((o - label) ** 2)
                count += o.size
    return float(total / count if opts["reduction"] == "mean" else total)


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _elman_step(w, x_t, h, c, bias, seen_a, phi):
    a = w("U") @ x_t + w("W") @ h + ((w("b_ih") + w("b_hh")) if bias else 0.0)
    if seen_a is not None:
        seen_a.append(a)
    return phi(a), None


def _lstm_step(w, x_t, h, c, bias, seen_a):
    a = w("U") @ x_t + w("W") @ h + ((w("b_ih") + w("b_hh")) if bias else 0.0)
    a_i, a_f, a_g, a_o = np.split(a, 4)
    c = _sigmoid(a_f) * c + _sigmoid(a_i) * np.tanh(a_g)
    h = _sigmoid(a_o) * np.tanh(c)
    if w("W_hr") is not None:
        h = w("W_hr") @ h
    return h, c


def _gru_step(w, x_t, h, c, bias, seen_a):
    gi = w("U") @ x_t + (w("b_ih") if bias else 0.0)
    gh = w("W") @ h + (w("b_hh") if bias else 0.0)
    i_r, i_z, i_n = np.split(gi, 3)
    h_r, h_z, h_n = np.split(gh, 3)
    r, z = _sigmoid(i_r + h_r), _sigmoid(i_z + h_z)
    n = np.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h, None


CELL_STEPS = {
    "rnn_tanh": lambda *args: _elman_step(*args, np.tanh),
    "rnn_relu": lambda *args: _elman_step(*args, lambda v: np.maximum(v, 0.0)),
    "lstm": _lstm_step,
    "gru": _gru_step,
}


def network_inputs(problem) -> dict[str, np.ndarray]:
    """Float64 copies of every differentiable input: the parameters by name, h0 (zeros when None), x."""
    p = problem.params
    arrays = {name: np.array(a, dtype=np.float64) for name, a in p.items()}
    x = np.array(problem.x, dtype=np.float64)
    batched = x.ndim == 3
    B = (x.shape[0] if problem.options["batch_first"] else x.shape[1]) if batched else None
    LD = p.num_layers * p.num_directions
    shape = (LD, B, p.output_hidden_size) if batched else (LD, p.output_hidden_size)
    h0, c0 = (problem.h0 if p.cell == "lstm" and problem.h0 is not None else (problem.h0, None))
    arrays["h0"] = np.zeros(shape) if h0 is None else np.array(h0, dtype=np.float64)
    if p.cell == "lstm":
        c_shape = shape[:-1] + (p.hidden_size,)
        arrays["c0"] = np.zeros(c_shape) if c0 is None else np.array(c0, dtype=np.float64)
    arrays["x"] = x
    return arrays


def network_finite_differences(problem, eps: float = 1e-5) -> tuple[float, NetworkGrads]:
    """Central differences of `reference_network_loss`, element by element, for every input."""
    arrays = network_inputs(problem)
    grads = central_differences(lambda moved: reference_network_loss(problem, moved), arrays, eps)
    params = {name: grads[name] for name in problem.params.keys()}
    return reference_network_loss(problem, arrays), NetworkGrads(params=params, h0=grads["h0"], x=grads["x"],
                                                                 c0=grads.get("c0"))
