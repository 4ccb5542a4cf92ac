"""Checks of everything a caller passes, done before any computation.

Each failure is a ValueError (wrong shape, value or option) or a TypeError (wrong
type or dtype) whose message starts with the argument's name, then says what was
expected and what was got. Nothing is broadcast, nothing is cast: float32 and
float64 must not be mixed.

`check_problem` also puts the arrays in the one layout the computation uses,
time-major and batched, (T, B, ...), as views: it never copies or writes to the
caller's arrays. `Problem.to_caller_layout` maps results back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..model.params import RNNParams
from .checks import as_array, as_float_array, as_labels, check_fits_in_memory, check_flag, nbytes
from .options import Options

NONLINEARITIES = ("tanh", "relu")
LOSSES = ("cross_entropy", "mse")
REDUCTIONS = ("sum", "mean")


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


def check_problem(params, x, y, h0, options: Options | None = None, *, need_y: bool = True, **keywords) -> Problem:
    """Validate every argument of `bptt`; return them time-major and batched.

    The options come as an `Options`, or as its keywords (nonlinearity, loss, ...).
    """
    options = Options(**keywords) if options is None else options
    nonlinearity, loss = options.nonlinearity, options.loss
    reduction, batch_first = options.reduction, options.batch_first
    check_option("nonlinearity", nonlinearity, NONLINEARITIES)
    check_option("loss", loss, LOSSES)
    check_option("reduction", reduction, REDUCTIONS)
    batch_first = check_flag("batch_first", batch_first)               # np.bool_ → bool: torch takes bool alone
    params = check_params(params)
    dtype = params.dtype
    I, H, O = params.input_size, params.hidden_size, params.output_size

    x, x_tb, batched = check_x(x, dtype, I, batch_first, "params.U",
                               lambda T, B: _working_set(T, B, I, H, O, dtype))
    T, B = x_tb.shape[:2]

    if h0 is not None:
        h0 = as_float_array("h0", h0, dtype)
        expected = (B, H) if batched else (H,)
        if h0.shape != expected:
            what = "(B, H)" if batched else "(H,) for an unbatched x"
            raise ValueError(
                f"h0: expected shape {what} = {expected} (batch_first never applies to h0), "
                f"got {h0.shape}"
            )
        check_finite("h0", h0)
        h0 = h0 if batched else h0[None]

    y_tb = check_targets(y, loss, x.shape[:-1], O, dtype, batched, batch_first) if need_y else None
    return Problem(
        params=params,
        x=x_tb,
        y=y_tb,
        h0=h0,
        nonlinearity=nonlinearity,
        loss=loss,
        reduction=reduction,
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


def _working_set(T: int, B: int, I: int, H: int, O: int, dtype) -> list[tuple[str, int, str]]:
    """What a forward and backward pass allocate: a(t), h(t), ∂L/∂a(t), o(t) and ∂L/∂x(t)."""
    return [
        ("x", nbytes((3 * T + 1, B, H), dtype),
         f"a(t), h(t) and ∂L/∂a(t) for T = {T} steps of B = {B} rows of H = {H}"),
        ("x", nbytes((T, B, O + I), dtype), f"o(t) and ∂L/∂x(t) for T = {T}, B = {B}"),
    ]


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
