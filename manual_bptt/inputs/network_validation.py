"""Checks of a network problem's arguments, done before any computation.

The same rules as validation.py (messages start with the argument's name, say what
was expected and what was got; nothing is cast or broadcast; the caller's arrays
are never written), plus the network's own: h0 as (L·D, B, H_out), an LSTM's
(h0, c0) pair, lengths in [1, T], the target and truncation options.
`check_network_problem` returns the arrays time-major and batched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model.network_params import NetworkParams
from .checks import as_array, as_float_array, as_labels, check_flag, nbytes
from .options import Options
from .validation import LOSSES, REDUCTIONS, CallerLayout, check_finite, check_option, check_targets, check_x

TARGETS = ("each_step", "last")


@dataclass
class NetworkProblem(CallerLayout):
    """The validated inputs of one network pass, time-major and batched.

    x:       (T, B, I)
    y:       each_step: (T, B) labels or (T, B, O) targets; last: (B,) or (B, O); None for a forward pass
    state0:  per layer and direction, a tuple like the cell's state ((h0,) or (h0, c0)) of (B, ·)
             arrays, index l·D + d; None entries mean zeros
    lengths: (B,) int64 or None; mask: (T, B, 1) bool, True on real steps, or None
    """

    params: NetworkParams
    x: np.ndarray
    y: np.ndarray | None
    state0: list
    lengths: np.ndarray | None
    mask: np.ndarray | None
    target: str
    truncate: int | None
    loss: str
    reduction: str
    batched: bool
    batch_first: bool

    def initial_state(self, index: int) -> tuple:
        """The initial state of layer·D + direction `index`: (B, ·) arrays, zeros where h0 was None."""
        sizes = (self.params.output_hidden_size, self.params.hidden_size)
        return tuple(np.zeros((self.B, sizes[i]), dtype=self.params.dtype) if state is None else state
                     for i, state in enumerate(self.state0[index]))

    def state_to_caller_layout(self, stacked: np.ndarray) -> np.ndarray:
        """(L·D, B, ·) as the caller's h0: (L·D, ·) when unbatched."""
        return stacked if self.batched else stacked[:, 0]


def check_network_problem(params, x, y, h0, options: Options, *, need_y: bool = True) -> NetworkProblem:
    """Validate every argument of the network `bptt`; return them time-major and batched."""
    lengths, target, truncate = options.lengths, options.target, options.truncate
    loss, reduction, batch_first = options.loss, options.reduction, options.batch_first
    check_option("target", target, TARGETS)
    check_option("loss", loss, LOSSES)
    check_option("reduction", reduction, REDUCTIONS)
    batch_first = check_flag("batch_first", batch_first)               # np.bool_ → bool: torch takes bool alone
    if not isinstance(params, NetworkParams):
        raise TypeError(
            f"params: expected a NetworkParams, got {type(params).__name__}; build one with "
            "NetworkParams.random(...), NetworkParams.from_state_dict(state, cell=...) or NetworkParams.from_torch(rnn, head)"
        )
    _check_truncate(truncate, params)
    for name, array in params.items():
        check_finite(f"[{name!r}]", array, prefix="params")
    dtype, I = params.dtype, params.input_size

    x, x_tb, batched = check_x(x, dtype, I, batch_first, "weight_ih_l0",
                               lambda T, B: _working_set(params, T, B))
    T, B = x_tb.shape[:2]

    lengths, mask = _check_lengths(lengths, T, B, batched)
    state0 = _check_initial_state(h0, params, B, batched)
    y_checked = None
    if need_y:
        if target == "each_step":
            y_checked = check_targets(y, loss, x.shape[:-1], params.output_size, dtype, batched, batch_first)
        else:
            y_checked = _check_last_targets(y, loss, B, params.output_size, dtype, batched, x.shape[:-1])
    return NetworkProblem(
        params=params, x=x_tb, y=y_checked, state0=state0, lengths=lengths, mask=mask, target=target,
        truncate=truncate, loss=loss, reduction=reduction, batched=batched, batch_first=batch_first,
    )


def _working_set(p: NetworkParams, T: int, B: int) -> list[tuple[str, int, str]]:
    """What a network's forward and backward passes allocate, about: per layer and direction,
    the pre-activations, their gradient and the states; then the outputs and ∂L/∂x."""
    G, H, H_out, D, L = p.gates, p.hidden_size, p.output_hidden_size, p.num_directions, p.num_layers
    per_sequence = (3 * G * H + 3 * H + 2 * H_out) * (T + 1) * B
    return [
        ("x", nbytes((L * D, per_sequence), p.dtype),
         f"the activations and their gradients of {L}·{D} sequences of T = {T} steps of B = {B} rows"),
        ("x", nbytes((T, B, p.output_size + p.input_size + 2 * D * H_out), p.dtype),
         f"o(t), ∂L/∂x(t) and the layers' outputs for T = {T}, B = {B}"),
    ]


def _check_truncate(truncate, params: NetworkParams) -> None:
    if truncate is None:
        return
    if isinstance(truncate, bool) or not isinstance(truncate, (int, np.integer)):
        raise TypeError(f"truncate: expected None or a positive int (steps per chunk), got {truncate!r}")
    if truncate < 1:
        raise ValueError(f"truncate: expected None or a positive int (steps per chunk), got {truncate}")
    if params.bidirectional:
        raise ValueError(
            f"truncate: expected None for a bidirectional network (the reverse direction has no chunks), got {truncate}"
        )


def _check_lengths(lengths, T: int, B: int, batched: bool):
    """(B,) integers in [1, T] → (lengths as int64, mask (T, B, 1)); (None, None) when not given."""
    if lengths is None:
        return None, None
    if not batched:
        raise ValueError("lengths: expected None for an unbatched x (T, I): one sequence has one length, T")
    array = as_array("lengths", lengths)
    if array.dtype.kind not in "iu":
        raise TypeError(f"lengths: expected integers, got dtype {array.dtype}")
    if array.shape != (B,):
        raise ValueError(f"lengths: expected shape (B,) = ({B},), one length per sequence, got {array.shape}")
    values = array.astype(np.int64)
    if int(values.min()) < 1 or int(values.max()) > T or not np.array_equal(values, array):
        raise ValueError(f"lengths: expected integers in [1, T] = [1, {T}], got values from {array.min()} to {array.max()}")
    mask = (np.arange(T)[:, None] < values[None, :])[:, :, None]
    return values, None if bool(mask.all()) else mask


def _check_initial_state(h0, params: NetworkParams, B: int, batched: bool) -> list:
    """h0 (and c0 for the LSTM) → per layer and direction, a tuple of (B, ·) arrays or None."""
    LD = params.num_layers * params.num_directions
    shapes = {"h0": params.output_hidden_size}
    if params.cell == "lstm":
        shapes["c0"] = params.hidden_size
    if h0 is None:
        return [tuple(None for _ in shapes) for _ in range(LD)]
    if params.cell == "lstm":
        if not isinstance(h0, (tuple, list)) or len(h0) != 2:
            raise TypeError(f"h0: expected a pair (h0, c0) for cell 'lstm', or None, got {type(h0).__name__}")
        given = dict(zip(shapes, h0))
    else:
        # A tuple of two arrays is an LSTM's (h0, c0); a nested list of numbers is one array.
        if isinstance(h0, tuple) and len(h0) == 2 and all(hasattr(s, "shape") for s in h0):
            raise TypeError(f"h0: expected one array for cell {params.cell!r} (a pair (h0, c0) is the LSTM's), got a pair")
        given = {"h0": h0}
    arrays = {}
    for name, size in shapes.items():
        array = as_float_array(name, given[name], params.dtype)
        expected = (LD, B, size) if batched else (LD, size)
        if array.shape != expected:
            what = "(L·D, B, H_out)" if name == "h0" else "(L·D, B, H)"
            if not batched:
                what = what.replace(", B", "") + " for an unbatched x"
            raise ValueError(
                f"{name}: expected shape {what} = {expected} (L={params.num_layers} layers, D={params.num_directions} "
                f"directions; batch_first never applies to it), got {array.shape}"
            )
        check_finite(name, array)
        arrays[name] = array if batched else array[:, None]
    return [tuple(arrays[name][i] for name in shapes) for i in range(LD)]


def _check_last_targets(y, loss, B: int, O: int, dtype, batched: bool, x_lead: tuple) -> np.ndarray:
    """One label (or target) per sequence: (B,) / (B, O), or 0-d / (O,) unbatched → (B,) / (B, O)."""
    lead = (B,) if batched else ()
    what = "labels" if loss == "cross_entropy" else "targets"
    per_step_shape = x_lead if loss == "cross_entropy" else x_lead + (O,)

    def hint(shape) -> str:
        return f" (per-step {what} {per_step_shape} are for target='each_step')" if shape == per_step_shape else ""

    if loss == "cross_entropy":
        y = as_array("y", y)
        if y.dtype.kind not in "iu":
            raise TypeError(f"y: expected integer class labels for loss='cross_entropy', got dtype {y.dtype}")
        if y.shape != lead:
            raise ValueError(
                f"y: expected one class label per sequence for target='last', shape {lead}, got {y.shape}{hint(y.shape)}"
            )
        y = as_labels("y", y, O)
    else:
        y = as_float_array("y", y, dtype)
        if y.shape != lead + (O,):
            raise ValueError(
                f"y: expected one MSE target per sequence for target='last', shape {lead + (O,)}, "
                f"got {y.shape}{hint(y.shape)}"
            )
        check_finite("y", y)
    return y if batched else y[None]
