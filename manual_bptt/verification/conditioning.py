"""How much of a disagreement rounding alone can explain, on one problem.

Two correct implementations of the same gradient differ by rounding: each
operation of each adds an error of about one unit in the last place (u), and
the backward recursion multiplies what was added at step t by the Jacobians
∂h(t)/∂h(k) = Π diag(φ'(a(j))) W of the steps before. With |W| near PyTorch's
initial scale those products shrink, and the fixed tolerances of tolerances.py
hold with room to spare. With W a few times larger (a trained or exploding
network) they grow by orders of magnitude per tens of steps, and two correct
results can differ in their fifth digit, or in every digit.

The estimate here is a small experiment in stochastic arithmetic: run the
project's own `bptt` again with every input (U, W, V, b, c, x, h0 and float
targets) multiplied by 1 + δ, δ drawn uniformly within one ulp, and take the
largest change of each gradient over a few such runs. Rounding inside a
computation perturbs intermediate values by about as much, and the same
Jacobian products amplify both; so the spread measures how many digits this
problem lets any floating-point computation get right. It uses the project's
`bptt` on purpose: a candidate under test cannot widen its own allowance.

Its cost is `RUNS + 1` calls of `bptt`; `torch_reference.compare` pays it only
when some gradient is already outside the fixed tolerance, so well-conditioned
problems cost nothing extra. Limits (docs/testing.md has the measurements): a
spread from four runs is a sample, not a bound, hence the safety factor of
`RoundingSpread.allowances`; and it cannot see a problem whose error comes from
somewhere other than rounding (an ill-posed loss, a wrong reference).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..fast.rnn import bptt
from ..inputs.network_validation import check_network_problem
from ..inputs.options import Options, takes_options
from ..inputs.validation import check_problem
from ..model.params import RNNParams

#: Perturbed runs per estimate: the spread is the largest change over these.
RUNS = 4
#: How far each input moves: |δ| ≤ ULPS · u relative, u the dtype's unit roundoff:
#: one rounding's worth, the size of what each operation of a computation adds.
ULPS = 1
#: The allowance is this many times the measured spread. The spread is the
#: largest of a few samples, and two implementations, each with its own
#: rounding, can differ by more: manual vs torch.autograd differed by up to
#: 5.2 times the spread over 960 float32 rows of problems with W×1 … ×12 and
#: 2.6 times over 450 float64 rows (docs/testing.md). 10 leaves a factor 2
#: above the worst float32 row and 4 above the worst float64 row, while the
#: estimate stays tight enough to FAIL a gradient off by 1% at W×8, T = 60.
SAFETY = 10.0


@dataclass(frozen=True)
class RoundingSpread:
    """Per row (L and every gradient): `spread[name]`, the largest max |g_perturbed - g|
    over `runs` runs with every input perturbed by up to `ulps` units of roundoff."""

    spread: dict
    runs: int
    ulps: float

    def allowances(self) -> dict:
        """Per row, the largest max |Δ| that rounding alone explains: SAFETY · spread."""
        return {name: SAFETY * spread for name, spread in self.spread.items()}


@takes_options
def rounding_spread(params, x, y, h0=None, *, runs: int = RUNS, ulps: float = ULPS, rng=0,
                    **options) -> RoundingSpread:
    """The spread of `bptt`'s L and gradients under ulp-sized perturbations of every input.

    Arguments as `bptt` (validated the same way, before any computation); runs
    perturbed runs with |δ| ≤ ulps · u. `rng` seeds the perturbations (a seed
    or a np.random.Generator; the default 0 makes the verdict reproducible).
    Returns a RoundingSpread whose `spread[name]` is max over runs of
    max |g_perturbed - g| for every row name: L, U, W, V, b, c, h0, x for an
    RNNParams; L, every state-dict key, h0 (c0) and x for a NetworkParams.
    """
    network, checked = Options.for_params("rounding_spread", params, options)
    if network:
        check_network_problem(params, x, y, h0, checked)
    else:
        check_problem(params, x, y, h0, checked)
    if isinstance(runs, bool) or not isinstance(runs, (int, np.integer)) or runs < 1:
        raise ValueError(f"runs: expected a positive int, got {runs!r}")
    if not (isinstance(ulps, (int, float, np.floating, np.integer)) and math.isfinite(ulps) and ulps > 0):
        raise ValueError(f"ulps: expected a positive finite number, got {ulps!r}")
    generator = np.random.default_rng(rng)
    dtype = params.dtype
    width = float(ulps) * float(np.finfo(dtype).eps) / 2   # u = eps / 2, the unit roundoff

    def nudge(array):
        """array · (1 + δ), δ uniform on [-width, width] per element, rounded once to dtype."""
        if array is None:
            return None
        array = np.asarray(array)
        delta = generator.uniform(-width, width, size=array.shape)
        return (array.astype(np.float64) * (1.0 + delta)).astype(dtype)

    def moved_params():
        if network:
            return params.with_arrays({name: nudge(array) for name, array in params.items()})   # its layout kept
        return RNNParams(**{name: nudge(array) for name, array in params.items()})

    def moved_state():
        if isinstance(h0, (tuple, list)):                # an LSTM's (h0, c0)
            return tuple(nudge(state) for state in h0)
        return nudge(h0)

    L, g = bptt(params, x, y, h0, **options)
    grads = dict(g.items())
    changes = {name: [] for name in ("L", *grads)}
    for _ in range(runs):
        moved_y = nudge(y) if checked.loss == "mse" else y   # class labels are exact
        L_k, g_k = bptt(moved_params(), nudge(x), moved_y, moved_state(), **options)
        changes["L"].append(abs(L_k - L))
        for name, moved in g_k.items():
            changes[name].append(np.max(np.abs(moved.astype(np.float64) - grads[name])))
    # np.max, not max(): a NaN (an overflow in some run) must stay visible.
    spread = {name: float(np.max(values)) for name, values in changes.items()}
    return RoundingSpread(spread=spread, runs=runs, ulps=float(ulps))
