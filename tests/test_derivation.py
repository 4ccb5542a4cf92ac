"""Witness 3: the derivation's own formula, term by term, against the recursion and autograd."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from manual_bptt import bptt, tolerance_for
from manual_bptt.tools.derivation import (
    contribution_norms,
    contributions,
    hidden_jacobian,
    seed_formula_grads,
)
from manual_bptt.verification.problems import random_problem

from .helpers import assert_grads_agree
from .strategies import rnn_problems

WRT = st.sampled_from(["U", "W", "b"])
# The O(T²) witnesses are kept to T ≤ 12; the recursion's equality with them
# does not depend on T, and the suite stays fast.
short_problems = rnn_problems(max_T=12, max_B=3, max_size=6)


def assert_close(actual, reference, dtype, what):
    """The suite's measure (largest element, DESIGN tolerances), for plain arrays."""
    tol = tolerance_for(dtype)
    diff = float(np.max(np.abs(np.asarray(actual, np.float64) - reference))) if np.size(reference) else 0.0
    scale = float(np.max(np.abs(reference))) if np.size(reference) else 0.0
    assert diff <= tol.allowed(scale), (
        f"{what}: max|Δ| = {diff:.3e} > {tol.rtol:g}·{scale:.3e} + {tol.atol:g}"
    )


@example(random_problem(T=1, B=1, I=1, H=1, O=1, seed=0))
@example(random_problem(T=3, B=1, I=2, H=2, O=3, seed=1, batched=False))
@given(short_problems)
def test_seed_formula_equals_the_recursion(problem):
    _, g = problem.run(bptt)
    assert_grads_agree(problem.run(seed_formula_grads), g, problem,
                       actual_name="Σ_t Σ_k Jacobian products", reference_name="O(T) recursion")


@given(short_problems, WRT)
def test_terms_sum_to_the_gradient_and_vanish_for_k_after_t(problem, wrt):
    terms = problem.run(contributions, wrt=wrt)
    _, g = problem.run(bptt)
    T = terms.shape[0]
    assert terms.shape == (T, T) + getattr(g, wrt).shape
    later = np.triu(np.ones((T, T), dtype=bool), k=1)             # k > t
    assert not terms[later].any(), f"{problem!r}: a term with k > t is not zero"
    assert_close(terms.sum(axis=(0, 1)), getattr(g, wrt), problem.params.dtype, f"{problem!r} Σ terms of {wrt}")


@given(short_problems, WRT)
def test_norms_are_the_norms_of_the_terms(problem, wrt):
    terms = problem.run(contributions, wrt=wrt)
    T = terms.shape[0]
    expected = np.linalg.norm(terms.reshape(T, T, -1).astype(np.float64), axis=-1)
    assert_close(problem.run(contribution_norms, wrt=wrt), expected, problem.params.dtype, f"{problem!r} norms")


@given(rnn_problems(max_T=8, max_B=3, max_size=5, random_h0=st.just(True)))
def test_with_W_zero_only_the_term_k_equals_t_survives(problem):
    p = problem.params
    zeroed = problem.params.replace(W=np.zeros_like(p.W))
    terms = contributions(zeroed, problem.x, problem.y, problem.h0, wrt="U", **problem.options)
    T = terms.shape[0]
    off_diagonal = ~np.eye(T, dtype=bool)
    assert not terms[off_diagonal].any(), f"{problem!r}: with W = 0 a term with k != t survived"


@given(rnn_problems(max_T=10, nonlinearity=st.just("tanh")), st.data())
def test_tanh_jacobian_norm_is_bounded_by_the_product_of_norms_of_W(problem, data):
    """‖∂h(t)/∂h(k)‖₂ ≤ Π_{j=k+1..t} ‖diag(φ'(a(j)))‖₂ ‖W‖₂ ≤ ‖W‖₂^(t-k), since 0 < tanh' ≤ 1."""
    T = problem.recipe["T"]
    t = data.draw(st.integers(0, T), label="t")
    k = data.draw(st.integers(0, t), label="k")
    J = hidden_jacobian(problem.params, problem.x, problem.h0, t=t, k=k,
                        nonlinearity="tanh", batch_first=problem.options["batch_first"])
    W_norm = np.linalg.norm(problem.params.W.astype(np.float64), 2)
    bound = W_norm ** (t - k)
    slack = 1 + 10 * (t - k + 1) * np.finfo(problem.params.dtype).eps
    assert np.all(J.spectral_norm <= bound * slack + 1e-30), (
        f"{problem!r}: ‖∂h({t})/∂h({k})‖₂ = {J.spectral_norm} > ‖W‖₂^{t - k} = {bound}"
    )


# The same product of at most 5 one-step Jacobians (8 × 8), associated two ways:
# each product rounds to a few ulps (2.2e-16) of its largest terms.
REASSOCIATION_RTOL, REASSOCIATION_ATOL = 1e-12, 1e-15


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_jacobians_compose_over_an_intermediate_step(nonlinearity):
    """∂h(t)/∂h(k) = ∂h(t)/∂h(j) · ∂h(j)/∂h(k) for every k ≤ j ≤ t, and ∂h(t)/∂h(t) = I.

    A product taken in the wrong order, or one factor too many or too few,
    breaks the composition (the one-step test alone sees neither).
    """
    problem = random_problem(T=5, B=2, nonlinearity=nonlinearity, seed=4)
    J = {(t, k): np.asarray(hidden_jacobian(problem.params, problem.x, problem.h0, t=t, k=k,
                                            nonlinearity=nonlinearity))
         for t in range(6) for k in range(t + 1)}
    for (t, k), J_tk in J.items():
        if t == k:
            np.testing.assert_array_equal(J_tk, np.broadcast_to(np.eye(8), (2, 8, 8)))
        assert np.abs(J_tk).max() > 0, (t, k)
        for j in range(k, t + 1):
            np.testing.assert_allclose(J_tk, J[t, j] @ J[j, k], rtol=REASSOCIATION_RTOL,
                                       atol=REASSOCIATION_ATOL, err_msg=f"t={t} j={j} k={k}")


def test_one_step_jacobian_is_diag_dphi_times_W():
    problem = random_problem(T=3, B=2, nonlinearity="relu")
    from manual_bptt import rnn_forward

    cache = rnn_forward(problem.params, problem.x, problem.h0, nonlinearity="relu")
    J = np.asarray(hidden_jacobian(problem.params, problem.x, problem.h0, t=2, k=1, nonlinearity="relu"))
    for n in range(2):
        expected = np.diag((cache.a[1, n] > 0).astype(float)) @ problem.params.W
        np.testing.assert_array_equal(J[n], expected)


@pytest.mark.parametrize("t, k, error, message", [
    (5, 1, ValueError, "t, k: expected 0 <= k <= t <= T = 4, got t = 5, k = 1"),
    (2, 3, ValueError, "t, k: expected 0 <= k <= t <= T = 4, got t = 2, k = 3"),
    (1, -1, ValueError, "t, k: expected 0 <= k <= t <= T = 4, got t = 1, k = -1"),
    (1.0, 0, TypeError, "t: expected an int step index, got 1.0"),
    (True, 0, TypeError, "t: expected an int step index, got True"),
    (2, 1.0, TypeError, "k: expected an int step index, got 1.0"),
])
def test_hidden_jacobian_rejects_bad_steps(t, k, error, message):
    problem = random_problem(T=4, B=2)
    with pytest.raises(error) as caught:
        hidden_jacobian(problem.params, problem.x, problem.h0, t=t, k=k)
    assert str(caught.value) == message


@pytest.mark.parametrize("fn", [contributions, contribution_norms])
def test_wrt_must_be_U_W_or_b(fn):
    problem = random_problem(T=2, B=1)
    with pytest.raises(ValueError, match=r"^wrt: expected one of 'U', 'W', 'b', got 'V'"):
        problem.run(fn, wrt="V")


def test_contribution_norms_scale_to_hundreds_of_steps():
    # Not a timing: a shape and finiteness check at T = 300, which the O(T²)
    # table would need 300² (H, H) terms to store.
    problem = random_problem(T=300, B=2, I=3, H=16, O=4, seed=3)
    norms = problem.run(contribution_norms, wrt="W")
    assert norms.shape == (300, 300) and np.isfinite(norms).all()
    assert not np.triu(norms, k=1).any()
