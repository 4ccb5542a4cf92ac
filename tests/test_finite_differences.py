"""Witness 2, needing no torch: central finite differences of a dumb reference loop.

Tolerance, and why it is looser than the torch comparison: a central difference
with step ε has truncation error ~ε²·|L'''|/6 and rounding error ~u·|L|/ε
(u = 2.2e-16). With ε = 1e-5 and |L| up to ~10² on these sizes, both stay
below ~1e-8 absolute; 1e-6 of the largest element plus 1e-7 leaves a margin
without letting a wrong term through (a wrong term is of the order of the
gradient itself). These tests run in float64 only: in float32, u/ε would be
~1e-2.
"""

from __future__ import annotations

import numpy as np
from hypothesis import assume, example, given
from hypothesis import strategies as st

from manual_bptt import Tolerance, bptt, rnn_forward
from manual_bptt.verification.problems import random_problem

from .helpers import assert_grads_agree
from .strategies import rnn_problems
from .witnesses import directional_derivative, finite_difference_grads, reference_loss

FINITE_DIFFERENCE = Tolerance(rtol=1e-6, atol=1e-7, reason="see the module docstring")
STEP = 1e-5


def away_from_relu_kinks(problem) -> bool:
    """relu is not differentiable at a = 0: a difference that steps across a kink is no derivative.

    A step of ε in one entry moves a(t) by at most ε·max|x| (or ε·|h|, or less
    through W); demand |a(t)| > 1e-3, far beyond it.
    """
    if problem.options["nonlinearity"] != "relu":
        return True
    cache = rnn_forward(problem.params, problem.x, problem.h0,
                        nonlinearity="relu", batch_first=problem.options["batch_first"])
    return bool(np.abs(cache.a).min() > 1e-3)


small_float64_problems = rnn_problems(dtype=st.just("float64"), max_T=6, max_B=3, max_size=4)


@example(random_problem(T=1, B=1, I=1, H=1, O=1, seed=0))
@example(random_problem(T=3, B=1, I=2, H=3, O=2, seed=1, batched=False))
@given(small_float64_problems)
def test_every_element_matches_central_differences(problem):
    assume(away_from_relu_kinks(problem))
    L, g = problem.run(bptt)
    L_fd, g_fd = finite_difference_grads(problem, eps=STEP)
    assert_grads_agree(g, g_fd, problem, loss=L, reference_loss=L_fd, tolerance=FINITE_DIFFERENCE,
                       actual_name="manual bptt", reference_name="finite differences")


@given(rnn_problems(dtype=st.just("float64"), max_T=40, max_size=10), st.integers(0, 2**32 - 1))
def test_directional_derivatives_match_on_long_sequences(problem, seed):
    """The adjoint identity <∇L, d> = dL(θ + s·d)/ds at s = 0, along a random direction d.

    One derivative checks every gradient at once, so this reaches T = 40 cheaply.
    """
    assume(away_from_relu_kinks(problem))
    _, g = problem.run(bptt)
    rng = np.random.default_rng(seed)
    direction = {name: rng.standard_normal(np.shape(array)) for name, array in g.items()}
    predicted = sum(float(np.vdot(array, direction[name])) for name, array in g.items())
    measured = directional_derivative(problem, direction, eps=STEP)
    scale = sum(float(np.abs(array).sum()) for _, array in g.items())
    assert abs(predicted - measured) <= 1e-6 * max(scale, 1.0), (
        f"{problem!r}: <∇L, d> = {predicted!r}, finite difference {measured!r}"
    )


@given(rnn_problems(dtype=st.just("float64")))
def test_loss_equals_the_reference_loop(problem):
    L, _ = problem.run(bptt)
    L_ref = reference_loss(problem.params, problem.x, problem.y, problem.h0, **problem.options)
    assert abs(L - L_ref) <= 1e-11 * max(abs(L_ref), 1.0), f"{problem!r}: L = {L!r}, reference {L_ref!r}"


