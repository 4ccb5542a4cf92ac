"""Random problems: a network, a sequence, labels or targets and h0, from one seed.

The command line, the benchmark and the tests all draw their problems here, so a
problem is named by its recipe: `random_problem(T=3, B=2, ..., seed=7)` printed
in a failure message rebuilds exactly that problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .checks import check_count, check_fits_in_memory, check_flag, nbytes
from .params import RNNParams, as_float_dtype, random_params_need
from .validation import LOSSES, NONLINEARITIES, REDUCTIONS, check_option


@dataclass(frozen=True)
class RandomProblem:
    """Arguments for `bptt(params, x, y, h0, **options)`, and the recipe that made them."""

    recipe: dict
    params: RNNParams = field(repr=False)
    x: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    h0: np.ndarray | None = field(repr=False)
    options: dict = field(repr=False)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.recipe.items())
        return f"random_problem({args})"

    def run(self, fn, **overrides):
        """fn(params, x, y, h0, **options), e.g. `problem.run(bptt)`."""
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
) -> RandomProblem:
    """A reproducible problem: parameters as PyTorch initialises them, x and MSE
    targets standard normal, class labels uniform on [0, O), h0 normal with
    standard deviation 0.5 (or None when `random_h0` is False).

    Shapes follow the layout asked for: (T, B, ...) by default, (B, T, ...) with
    batch_first, (T, ...) when not batched (B must then be 1).

    Every argument is checked here, before anything is drawn: a bad one is a
    ValueError/TypeError naming it, and so are sizes too large for memory.
    """
    T, B, I, H, O = (check_count(name, value) for name, value in zip("TBIHO", (T, B, I, H, O)))
    seed = check_count("seed", seed, minimum=0)                      # an int: the recipe must print it
    np_dtype = as_float_dtype(dtype)
    check_option("nonlinearity", nonlinearity, NONLINEARITIES)
    check_option("loss", loss, LOSSES)
    check_option("reduction", reduction, REDUCTIONS)
    for name, flag in (("batch_first", batch_first), ("batched", batched), ("random_h0", random_h0)):
        check_flag(name, flag)
    check_fits_in_memory(_problem_needs(T, B, I, H, O, np_dtype, loss))
    if not batched and B != 1:
        raise ValueError(f"B: expected B = 1 for an unbatched problem, got B = {B}")
    recipe = dict(T=T, B=B, I=I, H=H, O=O, seed=seed, dtype=np_dtype.name,
                  nonlinearity=nonlinearity, loss=loss, reduction=reduction,
                  batch_first=batch_first, batched=batched, random_h0=random_h0)
    rng = np.random.default_rng(seed)
    params = RNNParams.random(input_size=I, hidden_size=H, output_size=O, rng=rng, dtype=np_dtype)
    x = rng.standard_normal((T, B, I)).astype(np_dtype)
    if loss == "cross_entropy":
        y = rng.integers(0, O, size=(T, B))
    else:
        y = rng.standard_normal((T, B, O)).astype(np_dtype)
    h0 = (0.5 * rng.standard_normal((B, H))).astype(np_dtype) if random_h0 else None
    if not batched:
        x, y = x[:, 0], y[:, 0]
        h0 = None if h0 is None else h0[0]
    elif batch_first:
        x, y = x.swapaxes(0, 1).copy(), y.swapaxes(0, 1).copy()
    options = dict(nonlinearity=nonlinearity, loss=loss, reduction=reduction, batch_first=batch_first)
    return RandomProblem(recipe=recipe, params=params, x=x, y=y, h0=h0, options=options)


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
