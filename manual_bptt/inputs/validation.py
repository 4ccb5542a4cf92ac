"""Checks of everything a caller passes, done before any computation.

Each failure is a ValueError (wrong shape, value or option) or a TypeError (wrong
type or dtype) whose message starts with the argument's name, then says what was
expected and what was got. Nothing is broadcast, nothing is cast: float32 and
float64 must not be mixed.

`check_problem` also puts the arrays in the one layout the computation uses,
time-major and batched, (T, B, ...), as views: it never copies or writes to the
caller's arrays. `Problem.to_caller_layout` maps results back.

The one-layer problem is a one-layer network's (U, W, b, V, c its names), so x, y,
h0, the options they share and the working set are checked once, by `check_arrays`,
for both: `check_problem` here and `check_network_problem` (network_validation.py)
describe their params in a `Sizes` and add their own options.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..model.names import ELMAN_CELLS
from ..model.params import RNNParams
from .checks import as_array, as_float_array, as_labels, check_fits_in_memory, check_flag, nbytes
from .options import LOSSES, NONLINEARITIES, REDUCTIONS, TARGETS, Options

__all__ = ["LOSSES", "NONLINEARITIES", "REDUCTIONS", "TARGETS",
           "Problem", "Sizes", "check_arrays", "check_options", "check_problem"]


class CallerLayout:
    """T, B and the way back to the caller's layout, for a validated problem whose x is
    time-major and batched (T, B, ...) and whose `batched` and `batch_first` record the
    layout the caller used."""

    x: np.ndarray
    batched: bool
    batch_first: bool

    @property
    def T(self) -> int:
        return self.x.shape[0]

    @property
    def B(self) -> int:
        return self.x.shape[1]

    def to_caller_layout(self, per_step: np.ndarray) -> np.ndarray:
        """A (T, B, ...) array in the layout the caller used for x."""
        if not self.batched:
            return per_step[:, 0]
        if self.batch_first:
            return per_step.swapaxes(0, 1)
        return per_step


@dataclass
class Problem(CallerLayout):
    """The validated inputs of one forward/backward pass, time-major and batched.

    x: (T, B, I); y: (T, B) labels as native np.intp indices, or (T, B, O)
    targets (None for a forward pass alone); h0: (B, H) or None for zeros. `batched` and
    `batch_first` record the caller's layout.
    """

    params: RNNParams
    x: np.ndarray
    y: np.ndarray | None
    h0: np.ndarray | None
    nonlinearity: str
    loss: str
    reduction: str
    batched: bool
    batch_first: bool

    def h0_to_caller_layout(self, state: np.ndarray) -> np.ndarray:
        """A (B, H) array shaped like the caller's h0: (H,) when unbatched."""
        return state if self.batched else state[0]


def check_option(name: str, value, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected one of {_listed(allowed)}, got {value!r}")
    if value not in allowed:
        raise ValueError(f"{name}: expected one of {_listed(allowed)}, got {value!r}")
    return value


def check_params(params) -> RNNParams:
    if not isinstance(params, RNNParams):
        raise TypeError(
            f"params: expected an RNNParams, got {type(params).__name__}; "
            "build one with RNNParams(U=..., W=..., V=..., b=..., c=...) or RNNParams.random(...)"
        )
    for name, array in params.items():
        check_finite(name, array, prefix="params.")
    return params


@dataclass
class Sizes:
    """What the checks of x, y and h0 read off the params, one description for both kinds.

    states:  the initial state's arguments and sizes: (("h0", H_out),), an LSTM's (("h0", H_out), ("c0", H))
    stacked: (L, D) when each state has a leading L·D axis (a network's h0); None for the one-layer
             RNN's h0, (B, H)
    source:  where I comes from, for the message
    cell:    the cell's name, for the message of an h0 given as a pair to a cell with one state
    """

    dtype: np.dtype
    input_size: int
    output_size: int
    gates: int
    hidden_size: int
    states: tuple
    stacked: tuple | None
    source: str
    cell: str

    def working_set(self, T: int, B: int) -> list[tuple[str, int, str]]:
        """What the engine's forward and backward passes allocate, about: per layer and direction,
        the pre-activations, their gradient and the states; then the outputs and ∂L/∂x."""
        G, H, H_out = self.gates, self.hidden_size, self.states[0][1]
        L, D = self.stacked or (1, 1)
        per_sequence = (3 * G * H + 3 * H + 2 * H_out) * (T + 1) * B
        return [                                                        # each what is worded only if it does not fit
            ("x", nbytes((L * D, per_sequence), self.dtype),
             lambda: f"the activations and their gradients of {L}·{D} sequences of T = {T} steps of B = {B} rows"),
            ("x", nbytes((T, B, self.output_size + self.input_size + 2 * D * H_out), self.dtype),
             lambda: f"o(t), ∂L/∂x(t) and the layers' outputs for T = {T}, B = {B}"),
        ]


def check_options(options: Options) -> bool:
    """The options every problem has: target, loss, reduction and batch_first (returned as a bool).
    The caller checks its own first (nonlinearity) or after (truncate)."""
    check_option("target", options.target, TARGETS)
    check_option("loss", options.loss, LOSSES)
    check_option("reduction", options.reduction, REDUCTIONS)
    return check_flag("batch_first", options.batch_first)              # np.bool_ → bool: torch takes bool alone


def check_arrays(sizes: Sizes, x, y, h0, options: Options, batch_first: bool, *, need_y: bool = True) -> tuple:
    """x and the working set, lengths, h0 and y, in this order, for params described by `sizes`
    and checked by the caller (after `check_options`).

    Returns (x time-major and batched, y likewise or None, the initial states {name: (L·D, B, ·)
    or (B, ·) array} or None, lengths, mask, batched).
    """
    x, x_tb, batched = check_x(x, sizes.dtype, sizes.input_size, batch_first, sizes.source, sizes.working_set)
    T, B = x_tb.shape[:2]
    lengths, mask = (None, None) if options.lengths is None else check_lengths(options.lengths, T, B, batched)
    states = None if h0 is None else check_initial_state(sizes, h0, B, batched)
    y_tb = None
    if need_y:
        if options.target == "each_step":
            y_tb = check_targets(y, options.loss, x.shape[:-1], sizes.output_size, sizes.dtype, batched, batch_first)
        else:
            y_tb = check_last_targets(y, options.loss, B, sizes.output_size, sizes.dtype, batched, x.shape[:-1])
    return x_tb, y_tb, states, lengths, mask, batched


def check_initial_state(sizes: Sizes, h0, B: int, batched: bool) -> dict:
    """h0 (an LSTM's pair (h0, c0)) → {name: array with a batch axis}, each of shape
    (L·D, B, size) for a network, (B, size) for the one-layer RNN."""
    names = [name for name, _ in sizes.states]
    if len(names) > 1:
        if not isinstance(h0, (tuple, list)) or len(h0) != 2:
            raise TypeError(f"h0: expected a pair (h0, c0) for cell {sizes.cell!r}, or None, got {type(h0).__name__}")
        given = h0
    else:
        # A tuple of two arrays is an LSTM's (h0, c0); a nested list of numbers is one array.
        if isinstance(h0, tuple) and len(h0) == 2 and all(hasattr(s, "shape") for s in h0):
            raise TypeError(f"h0: expected one array for cell {sizes.cell!r} (a pair (h0, c0) is the LSTM's), got a pair")
        given = (h0,)
    lead = (B,) if batched else ()                                    # h0: (B, H) or (H,) unbatched ...
    if sizes.stacked is not None:
        lead = (sizes.stacked[0] * sizes.stacked[1],) + lead             # ... behind L·D for a network
    arrays = {}
    for (name, size), value in zip(sizes.states, given):
        array = as_float_array(name, value, sizes.dtype)
        if array.shape != lead + (size,):
            raise ValueError(_state_shape_message(sizes, name, size, array.shape, B, batched))
        check_finite(name, array)
        arrays[name] = array if batched else array[..., None, :]
    return arrays


def _state_shape_message(sizes: Sizes, name: str, size: int, got: tuple, B: int, batched: bool) -> str:
    """h0 (c0): expected shape (L·D, B, H_out) = (…) …, or (B, H) = (…) for the one-layer RNN."""
    dims = (("B", B), ("H_out" if sizes.stacked and name == "h0" else "H", size))
    if sizes.stacked is not None:
        L, D = sizes.stacked
        dims = (("L·D", L * D),) + dims
        note = f"L={L} layers, D={D} directions; batch_first never applies to it"
    else:
        note = f"batch_first never applies to {name}"
    if not batched:
        dims = tuple(dim for dim in dims if dim[0] != "B")
    expected = tuple(size for _, size in dims)
    what = "(" + ", ".join(label for label, _ in dims) + ("," if len(dims) == 1 else "") + ")"
    what += "" if batched else " for an unbatched x"
    return f"{name}: expected shape {what} = {expected} ({note}), got {got}"


def check_problem(params, x, y, h0, options: Options | None = None, *, need_y: bool = True, **keywords) -> Problem:
    """Validate every argument of `bptt`; return them time-major and batched.

    The options come as an `Options`, or as its keywords (nonlinearity, loss, ...).
    """
    options = Options(**keywords) if options is None else options
    check_option("nonlinearity", options.nonlinearity, NONLINEARITIES)
    batch_first = check_options(options)
    check_params(params)
    H = params.hidden_size
    sizes = Sizes(dtype=params.dtype, input_size=params.input_size, output_size=params.output_size, gates=1,
                  hidden_size=H, states=(("h0", H),), stacked=None, source="params.U",
                  cell=ELMAN_CELLS[options.nonlinearity])
    x_tb, y_tb, states, _, _, batched = check_arrays(sizes, x, y, h0, options, batch_first, need_y=need_y)
    return Problem(
        params=params,
        x=x_tb,
        y=y_tb,
        h0=None if states is None else states["h0"],
        nonlinearity=options.nonlinearity,
        loss=options.loss,
        reduction=options.reduction,
        batched=batched,
        batch_first=batch_first,
    )


def check_x(x, dtype, I: int, batch_first: bool, source: str, working_set) -> tuple[np.ndarray, np.ndarray, bool]:
    """x as given, x time-major and batched (T, B, I) (a view), and whether it was batched.

    `source` names where I comes from (for the message); `working_set(T, B)` lists the
    buffers the computation will allocate, checked against memory before any pass over x
    (a broadcast x can claim sizes no buffer could hold).
    """
    x = as_float_array("x", x, dtype)
    if x.ndim not in (2, 3):
        raise ValueError(
            f"x: expected a 3-d array {_layout(True, batch_first, 'I')} "
            f"or an unbatched 2-d array (T, I), got shape {x.shape}"
        )
    batched = x.ndim == 3
    if x.shape[-1] != I:
        raise ValueError(f"x: expected last dimension I = {I} (the input size of {source}), got shape {x.shape}")
    x_tb = _time_major(x, batched, batch_first)
    T, B = x_tb.shape[:2]
    if T == 0:
        raise ValueError(f"x: expected at least one time step (T >= 1), got shape {x.shape}")
    if B == 0:
        raise ValueError(f"x: expected a non-empty batch (B >= 1), got shape {x.shape}")
    check_fits_in_memory(working_set(T, B))
    check_finite("x", x)
    return x, x_tb, batched


def check_targets(y, loss, lead_shape, O, dtype, batched, batch_first) -> np.ndarray:
    """Labels (cross-entropy) or targets (MSE), in the layout of x."""
    if loss == "cross_entropy":
        y = as_array("y", y)
        if y.dtype.kind not in "iu":
            raise TypeError(
                f"y: expected integer class labels for loss='cross_entropy', got dtype {y.dtype}"
            )
        if y.shape != lead_shape:
            raise ValueError(
                f"y: expected class labels of shape {_layout(batched, batch_first)} = {lead_shape}, "
                f"matching x, got {y.shape}"
            )
        y = as_labels("y", y, O)
    else:
        y = as_float_array("y", y, dtype)
        expected = lead_shape + (O,)
        if y.shape != expected:
            raise ValueError(
                f"y: expected MSE targets shaped like o, {_layout(batched, batch_first, 'O')} = {expected}, "
                f"got {y.shape}"
            )
        check_finite("y", y)
    return _time_major(y, batched, batch_first)


def check_lengths(lengths, T: int, B: int, batched: bool):
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


def check_last_targets(y, loss, B: int, O: int, dtype, batched: bool, x_lead: tuple) -> np.ndarray:
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


def _layout(batched: bool, batch_first: bool, last: str = "") -> str:
    """The named shape of a per-step array in the caller's layout, e.g. '(B, T, O)'."""
    dims = ("B", "T") if batched and batch_first else (("T", "B") if batched else ("T",))
    dims = dims + ((last,) if last else ())
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def _time_major(array: np.ndarray, batched: bool, batch_first: bool) -> np.ndarray:
    """A view of x or y with time first and a batch axis: (T, B, ...)."""
    if not batched:
        return array[:, None]
    if batch_first:
        return array.swapaxes(0, 1)
    return array


def check_finite(name: str, array: np.ndarray, prefix: str = "") -> None:
    # Fast path: Σ a² is finite only if every element is. A NaN or inf always
    # makes it non-finite; so can huge finite values (overflow), which the full
    # check below then lets through.
    if math.isfinite(np.vdot(array, array)):
        return
    finite = np.isfinite(array)
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        where = tuple(int(i) for i in bad)
        raise ValueError(
            f"{prefix}{name}: expected finite values, got {array[where]} at index {where} "
            f"({int((~finite).sum())} non-finite of {array.size})"
        )


def _listed(allowed: tuple[str, ...]) -> str:
    return ", ".join(repr(a) for a in allowed)
