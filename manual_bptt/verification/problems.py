"""Random problems: a network, a sequence, labels or targets and h0, from one seed.

The command line, the benchmark and the tests all draw their problems here, so a
problem is named by its recipe: `random_problem(T=3, B=2, ..., seed=7)` printed
in a failure message rebuilds exactly that problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..inputs.checks import check_count, check_fits_in_memory, check_flag, nbytes
from ..inputs.options import LENGTH_KINDS, LOSSES, NONLINEARITIES, REDUCTIONS, TARGETS
from ..inputs.validation import check_option
from ..model.names import CELL_FACTS, slot_of
from ..model.params import RNNParams, as_float_dtype, random_params_need


@dataclass(frozen=True)
class RandomProblem:
    """Arguments for `bptt(params, x, y, h0, **options)`, and the recipe that made them."""

    recipe: dict
    params: RNNParams = field(repr=False)
    x: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    h0: np.ndarray | None = field(repr=False)
    options: dict = field(repr=False)

    #: The function whose call, with the recipe as its arguments, rebuilds the problem.
    maker = "random_problem"

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.recipe.items())
        return f"{self.maker}({args})"

    def run(self, fn, **overrides):
        """fn(params, x, y, h0, **options), e.g. `problem.run(bptt)` or `problem.run(compare)`."""
        return fn(self.params, self.x, self.y, self.h0, **{**self.options, **overrides})


def random_problem(
    T: int = 20,
    B: int = 4,
    I: int = 5,
    H: int = 8,
    O: int = 6,
    *,
    seed: int = 0,
    dtype: str = "float64",
    nonlinearity: str = "tanh",
    loss: str = "cross_entropy",
    reduction: str = "sum",
    batch_first: bool = False,
    batched: bool = True,
    random_h0: bool = True,
    weight_scale: float = 1.0,
) -> RandomProblem:
    """A reproducible problem: parameters as PyTorch initialises them, x and MSE
    targets standard normal, class labels uniform on [0, O), h0 normal with
    standard deviation 0.5 (or None when `random_h0` is False).

    `weight_scale` S multiplies the recurrent matrix W alone, after every draw:
    W = S · (PyTorch's initial W, drawn in float64), then cast to dtype; U, V,
    b, c, x, y and h0 are those of S = 1 with the same seed. At S = 1 the
    spectral radius of W is about 1/√3 ≈ 0.58 (entries uniform on ±1/√H);
    S = 4 … 12 is what a trained or exploding network looks like (tanh
    saturates, gradients grow by orders of magnitude over tens of steps).
    The recipe (and repr) names it only when it is not 1.

    Shapes follow the layout asked for: (T, B, ...) by default, (B, T, ...) with
    batch_first, (T, ...) when not batched (B must then be 1).

    Every argument is checked here, before anything is drawn: a bad one is a
    ValueError/TypeError naming it, and so are sizes too large for memory.
    """
    T, B, I, H, O, seed, np_dtype = _checked_recipe(T, B, I, H, O, seed, dtype, loss, reduction, batch_first,
                                                    batched, random_h0, weight_scale)
    check_option("nonlinearity", nonlinearity, NONLINEARITIES)
    recipe = dict(T=T, B=B, I=I, H=H, O=O, seed=seed, dtype=np_dtype.name,
                  nonlinearity=nonlinearity, loss=loss, reduction=reduction,
                  batch_first=batch_first, batched=batched, random_h0=random_h0)
    if weight_scale != 1:
        recipe["weight_scale"] = weight_scale
    rng = np.random.default_rng(seed)
    params = RNNParams.random(input_size=I, hidden_size=H, output_size=O, rng=rng, dtype=np.float64)
    params = params.replace(W=params.W * float(weight_scale)).astype(np_dtype)   # W = S · W, then cast
    # h0 (B, H) draws what the one-layer network's (1, B, H) draws: the same B·H normals.
    x, y, states = _draw_data(rng, T=T, B=B, I=I, O=O, dtype=np_dtype, loss=loss, per_step=True,
                              state_shapes=((B, H),) if random_h0 else ())
    x, y, states = _in_caller_layout(x, y, states, per_step=True, batched=batched, batch_first=batch_first)
    h0 = states[0] if states else None
    options = dict(nonlinearity=nonlinearity, loss=loss, reduction=reduction, batch_first=batch_first)
    return RandomProblem(recipe=recipe, params=params, x=x, y=y, h0=h0, options=options)


@dataclass(frozen=True, repr=False)
class RandomNetworkProblem(RandomProblem):
    """A RandomProblem whose params are a NetworkParams (h0 an LSTM's pair, or an array)."""

    maker = "random_network_problem"


def random_network_problem(
    T: int = 12,
    B: int = 4,
    I: int = 5,
    H: int = 8,
    O: int = 6,
    *,
    cell: str = "rnn_tanh",
    num_layers: int = 2,
    bidirectional: bool = True,
    bias: bool = True,
    proj_size: int = 0,
    lengths: str = "none",
    target: str = "each_step",
    truncate: int | None = None,
    seed: int = 0,
    dtype: str = "float64",
    loss: str = "cross_entropy",
    reduction: str = "sum",
    batch_first: bool = False,
    batched: bool = True,
    random_h0: bool = True,
    weight_scale: float = 1.0,
) -> RandomNetworkProblem:
    """A reproducible network problem: parameters as PyTorch initialises them, x and
    MSE targets standard normal, labels uniform on [0, O), h0 (and c0) normal with
    standard deviation 0.5, or None when `random_h0` is False.

    lengths: "none" (no lengths), "full" (every length T), "random" (each uniform on
    [1, T], in any order) or "one" (every length 1). `weight_scale` S multiplies every
    recurrent matrix weight_hh_l* alone, after every draw (as `random_problem` does W).
    Shapes follow the layout asked for, as in `random_problem`.
    """
    from ..model.network_params import NetworkParams

    T, B, I, H, O, seed, np_dtype = _checked_recipe(T, B, I, H, O, seed, dtype, loss, reduction, batch_first,
                                                    batched, random_h0, weight_scale)
    check_option("target", target, TARGETS)
    check_option("lengths", lengths, LENGTH_KINDS)
    if truncate is not None:
        check_count("truncate", truncate)
    if not batched and lengths != "none":
        raise ValueError(f"lengths: expected 'none' for an unbatched problem (one sequence), got {lengths!r}")
    recipe = dict(T=T, B=B, I=I, H=H, O=O, cell=cell, num_layers=num_layers, bidirectional=bidirectional,
                  bias=bias, proj_size=proj_size, lengths=lengths, target=target, truncate=truncate, seed=seed,
                  dtype=np_dtype.name, loss=loss, reduction=reduction, batch_first=batch_first, batched=batched,
                  random_h0=random_h0)
    if weight_scale != 1:
        recipe["weight_scale"] = weight_scale
    rng = np.random.default_rng(seed)
    params = NetworkParams.random(cell=cell, input_size=I, hidden_size=H, output_size=O, num_layers=num_layers,
                                  bidirectional=bidirectional, bias=bias, proj_size=proj_size, rng=rng,
                                  dtype=np_dtype)
    LD = params.num_layers * params.num_directions
    sizes = {"h": params.output_hidden_size, "c": H}                 # h0 (L·D, B, H_out), an LSTM's c0 (L·D, B, H)
    state_shapes = tuple((LD, B, sizes[state]) for state in CELL_FACTS[cell].states) if random_h0 else ()
    per_step = target == "each_step"
    x, y, states = _draw_data(rng, T=T, B=B, I=I, O=O, dtype=np_dtype, loss=loss, per_step=per_step,
                              state_shapes=state_shapes)
    drawn = {"none": None, "full": np.full(B, T), "one": np.ones(B, dtype=np.int64),
             "random": rng.integers(1, T + 1, size=B)}[lengths]
    x, y, states = _in_caller_layout(x, y, states, per_step=per_step, batched=batched, batch_first=batch_first)
    h0 = (states if len(states) > 1 else states[0]) if states else None   # an LSTM's (h0, c0), else h0
    if weight_scale != 1:
        state = params.state_dict()
        for name in state:
            if slot_of(name).symbol == "W":                          # W = S · W for every layer and direction
                state[name] = (state[name] * float(weight_scale)).astype(np_dtype)
        params = NetworkParams(cell, state)
    options = dict(lengths=drawn, target=target, truncate=truncate, loss=loss, reduction=reduction,
                   batch_first=batch_first)
    return RandomNetworkProblem(recipe=recipe, params=params, x=x, y=y, h0=h0, options=options)


def _draw_data(rng: np.random.Generator, *, T: int, B: int, I: int, O: int, dtype, loss: str, per_step: bool,
               state_shapes: tuple) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
    """x, y and the initial states, time-major and batched, drawn in this order after the params
    (both makers, so one seed draws the same data for the one-layer RNN and its network):

        x ~ N(0, 1)                 (T, B, I)
        y ~ U{0 … O-1}              labels (T, B), or (B,) for one per sequence
            or N(0, 1)              MSE targets (T, B, O), or (B, O)
        state ~ N(0, 0.5²)          each of state_shapes in turn (h0, then an LSTM's c0)
    """
    x = rng.standard_normal((T, B, I)).astype(dtype)
    per = (T, B) if per_step else (B,)
    y = rng.integers(0, O, size=per) if loss == "cross_entropy" else rng.standard_normal(per + (O,)).astype(dtype)
    states = tuple((0.5 * rng.standard_normal(shape)).astype(dtype) for shape in state_shapes)
    return x, y, states


def _in_caller_layout(x: np.ndarray, y: np.ndarray, states: tuple, *, per_step: bool, batched: bool,
                      batch_first: bool) -> tuple[np.ndarray, np.ndarray, tuple]:
    """The drawn arrays in the layout asked for: without the batch axis when unbatched (B = 1),
    x and per-step y as (B, T, ·) copies with batch_first; a state's batch axis is its
    second last, and batch_first never applies to it."""
    if not batched:
        return x[:, 0], (y[:, 0] if per_step else y[0]), tuple(s[..., 0, :] for s in states)
    if batch_first:
        return x.swapaxes(0, 1).copy(), (y.swapaxes(0, 1).copy() if per_step else y), states
    return x, y, states


def weight_scale_is_valid(value) -> bool:
    """A real, finite, positive number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    return bool(np.isfinite(value) and value > 0)


def _checked_recipe(T, B, I, H, O, seed, dtype, loss, reduction, batch_first, batched, random_h0, weight_scale):
    """The checks both problem makers share, before anything is drawn: the sizes and seed as
    Python ints, the dtype, the options, the flags, the weight scale, and the memory needed."""
    T, B, I, H, O = (check_count(name, value) for name, value in zip("TBIHO", (T, B, I, H, O)))
    seed = check_count("seed", seed, minimum=0)                      # an int: the recipe must print it
    np_dtype = as_float_dtype(dtype)
    check_option("loss", loss, LOSSES)
    check_option("reduction", reduction, REDUCTIONS)
    for name, flag in (("batch_first", batch_first), ("batched", batched), ("random_h0", random_h0)):
        check_flag(name, flag)
    if not weight_scale_is_valid(weight_scale):
        raise ValueError(f"weight_scale: expected a positive finite number, got {weight_scale!r}")
    check_fits_in_memory(_problem_needs(T, B, I, H, O, np_dtype, loss))
    if not batched and B != 1:
        raise ValueError(f"B: expected B = 1 for an unbatched problem, got B = {B}")
    return T, B, I, H, O, seed, np_dtype


def _problem_needs(T: int, B: int, I: int, H: int, O: int, dtype, loss: str) -> list[tuple[str, int, str]]:
    """The bytes random_problem allocates: the parameters, x, y and h0 (each drawn in float64)."""
    shapes = {"U": (H, I), "W": (H, H), "V": (O, H), "b": (H,), "c": (O,)}
    renamed = {"hidden_size": "H", "input_size": "I", "output_size": "O"}
    needs = []
    for names, nbytes_, what in random_params_need(shapes, dtype):
        needs.append((", ".join(renamed[n] for n in names.split(", ")), nbytes_, what))
    both = nbytes((T, B, I), np.float64) + nbytes((T, B, I), dtype)
    needs.append(("T, B, I", both, f"x (T, B, I) = {(T, B, I)}"))
    y_shape = (T, B) if loss == "cross_entropy" else (T, B, O)
    needs.append(("T, B" if loss == "cross_entropy" else "T, B, O", 2 * nbytes(y_shape, np.float64),
                  f"y {y_shape}"))
    needs.append(("B, H", 2 * nbytes((B, H), np.float64), f"h0 (B, H) = {(B, H)}"))
    return needs
