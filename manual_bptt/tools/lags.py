"""The derivation's terms sorted by lag, the numbers behind its pictures.

Term [t-1, k-1] of `contributions` is the part of ∂L(t)/∂W that flows back
from step t to step k, through the product Π_{j=k+1..t} diag(φ'(a(j))) W. How
big it is depends mostly on the lag d = t − k, the number of factors. These two
functions read the two sides of that off the derivation:

- `lag_profile`: the size of the terms at each lag, summed over t;
- `singular_values_by_lag`: the singular values of ∂h(t)/∂h(t−d) for every d,
  which bound how much a signal is shrunk or stretched over d steps.

Pure NumPy; `manual_bptt.tools.plotting` draws them.
"""

from __future__ import annotations

import numpy as np

from ..inputs.overflow import NonFiniteError
from ..inputs.validation import check_problem
from .derivation import check_steps, jacobian_of_problem


def lag_profile(norms) -> np.ndarray:
    """Σ_t ‖term (t, t−d)‖ for d = 0 … T−1, from a (T, T) table of term sizes.

    norms: (T, T), entry [t-1, k-1] the size of the term of ∂L(t) through step k
    (`contribution_norms`), zero above the diagonal. Returns (T,): entry d is
    the sum of the d-th diagonal below the main one, the lag d = t − k.
    A table with NaN or infinity is a ValueError; a sum that overflows a NonFiniteError.
    """
    try:
        norms = np.asarray(norms)
    except ValueError as error:                                     # a ragged list of rows
        raise ValueError("norms: expected a (T, T) array of term sizes, got rows of different lengths") from error
    if norms.ndim != 2 or norms.shape[0] != norms.shape[1]:
        raise ValueError(f"norms: expected a (T, T) array, got shape {norms.shape}")
    if norms.dtype.kind not in "fiu":
        raise TypeError(f"norms: expected a real (T, T) array of term sizes, got dtype {norms.dtype}")
    if not np.isfinite(norms).all():
        t, k = np.argwhere(~np.isfinite(norms))[0]
        raise ValueError(f"norms: expected finite term sizes, got {norms[t, k]} at [{t}, {k}]")
    T = norms.shape[0]
    with np.errstate(over="ignore"):
        profile = np.array([np.trace(norms, offset=-d) for d in range(T)], dtype=norms.dtype)
    if not np.isfinite(profile).all():
        d = int(np.argwhere(~np.isfinite(profile))[0, 0])
        raise NonFiniteError(f"lag_profile ({norms.dtype}, T = {T}): the sum over t of the term sizes at "
                             f"lag d = {d} overflowed, although every term size is finite",
                             quantity="Σ_t ‖term (t, t−d)‖", step=None)
    return profile


def singular_values_by_lag(
    params,
    x,
    h0=None,
    *,
    t: int | None = None,
    nonlinearity: str = "tanh",
    batch_first: bool = False,
) -> np.ndarray:
    """σ_i(∂h(t)/∂h(t−d)) for d = 0 … t: shape (t+1, B, H), or (t+1, H) unbatched.

    Row d holds the singular values, in decreasing order, of the product of d
    one-step Jacobians (row 0 is the identity's: all ones). `t` defaults to T,
    the last step. NonFiniteError, as `hidden_jacobian`, if a state or a product overflows.
    """
    problem = check_problem(params, x, None, h0, nonlinearity=nonlinearity, loss="cross_entropy",
                            reduction="sum", batch_first=batch_first, need_y=False)
    t = problem.T if t is None else t
    check_steps(problem, t, 0)
    return np.stack([
        jacobian_of_problem(problem, t, t - d, computed_by="singular_values_by_lag").singular_values
        for d in range(t + 1)
    ])
