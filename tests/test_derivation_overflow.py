"""The derivation helpers on finite inputs that overflow: NonFiniteError naming what and where, as bptt.

As in tests/test_overflow.py, each step follows from the numbers alone: with U = 0,
b = 0, W = s·I and relu, h(t) = s^t h0 exactly and every one-step Jacobian is s·I,
so ∂h(t)/∂h(j) = s^(t-j) I. Before, these helpers returned NaN terms, or a Jacobian
of zeros (relu's derivative is 0 at a NaN state), where bptt raised.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from manual_bptt import NetworkParams
from manual_bptt.tools.derivation import contribution_norms, contributions, hidden_jacobian, seed_formula_grads
from manual_bptt.tools.lags import lag_profile, singular_values_by_lag
from manual_bptt.tools.network_derivation import network_contributions, state_jacobian
from manual_bptt.inputs.overflow import NonFiniteError
from manual_bptt.verification.problems import random_network_problem, random_problem

from .test_network_overflow import B, H, I, O, T, growing   # a network in which one layer and direction grows as s^t


def growing_relu_problem(scale: float, h0: float = 1.0):
    """U = 0, b = 0, W = scale·I, relu: h(t) = scale^t · h0, random labels and V."""
    p = random_problem(T=T, B=B, I=I, H=H, O=O, seed=3, nonlinearity="relu")
    params = p.params.replace(U=np.zeros((H, I)), b=np.zeros(H), W=scale * np.eye(H))
    return params, p.x, p.y, np.full((B, H), h0)


def raised(fn, *args, **options) -> NonFiniteError:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)         # NumPy's overflow warnings: expected here
        with pytest.raises(NonFiniteError) as caught:
            fn(*args, **options)
    return caught.value


def rnn_helpers():
    """(name, call(params, x, y, h0)) for every helper of the derivation on RNNParams, manual and autograd."""
    helpers = [
        ("hidden_jacobian", lambda p, x, y, h0: hidden_jacobian(p, x, h0, t=T, k=0, nonlinearity="relu")),
        ("contributions", lambda p, x, y, h0: contributions(p, x, y, h0, nonlinearity="relu")),
        ("contribution_norms", lambda p, x, y, h0: contribution_norms(p, x, y, h0, nonlinearity="relu")),
        ("seed_formula_grads", lambda p, x, y, h0: seed_formula_grads(p, x, y, h0, nonlinearity="relu")),
        ("singular_values_by_lag", lambda p, x, y, h0: singular_values_by_lag(p, x, h0, nonlinearity="relu")),
    ]
    try:
        from torch_reference.derivation import torch_contributions, torch_hidden_jacobian
    except ImportError:
        return helpers
    return helpers + [
        ("torch_hidden_jacobian", lambda p, x, y, h0: torch_hidden_jacobian(p, x, h0, t=T, k=0, nonlinearity="relu")),
        ("torch_contributions", lambda p, x, y, h0: torch_contributions(p, x, y, h0, nonlinearity="relu")),
    ]


@pytest.mark.parametrize("name, helper", rnn_helpers(), ids=[name for name, _ in rnn_helpers()])
def test_a_state_that_overflows_is_named_with_its_step(name, helper):
    # h(t) = 1e10^t: finite up to t = 30 (1e300), inf at t = 31.
    error = raised(helper, *growing_relu_problem(1e10))
    assert (error.quantity, error.step) == ("h(t)", 31), str(error)
    assert str(error).startswith(f"{name} (float64, T = 40): the forward pass overflowed: "
                                 "h(t) = relu(a(t)) is not finite at step t = 31"), str(error)
    assert isinstance(error, ValueError) and isinstance(error, FloatingPointError)


def test_the_jacobian_needs_only_the_states_up_to_t():
    # h(30) = 1e300 is finite, so ∂h(30)/∂h(0) = 1e300·I is the answer, although h(31) overflows.
    params, x, _, h0 = growing_relu_problem(1e10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        J = hidden_jacobian(params, x, h0, t=30, k=0, nonlinearity="relu")
    np.testing.assert_allclose(J.matrix, np.broadcast_to(1e300 * np.eye(H), (B, H, H)), rtol=1e-13)
    error = raised(hidden_jacobian, params, x, h0, t=31, k=30, nonlinearity="relu")
    assert (error.quantity, error.step) == ("h(t)", 31), str(error)


@pytest.mark.parametrize("name", ["hidden_jacobian", "torch_hidden_jacobian"])
def test_a_product_that_overflows_with_every_state_finite_names_the_step(name):
    # h0 = 1e-300: h(40) = 1e100 is finite, but ∂h(40)/∂h(j) = 1e10^(40-j) I is inf from j = 9 (31 steps back).
    params, x, _, h0 = growing_relu_problem(1e10, h0=1e-300)
    if name == "hidden_jacobian":
        fn = hidden_jacobian
    else:
        fn = pytest.importorskip("torch_reference.derivation").torch_hidden_jacobian
    error = raised(fn, params, x, h0, t=T, k=0, nonlinearity="relu")
    assert (error.quantity, error.step) == ("∂h(t)/∂h(k)", 9), str(error)
    assert "∂h(t)/∂h(j) is not finite at step j = 9, 31 steps back from t" in str(error)


@pytest.mark.parametrize("fn", [contributions, contribution_norms], ids=lambda f: f.__name__)
def test_a_term_that_overflows_in_the_backward_pass_names_its_step(fn):
    # Every state and L are finite (h(40) = 1e100); ∂L(t)/∂a(k) grows as 1e10^(t-k) and passes
    # the float range about 31 steps back from its own t: the columns k ≤ 9 or so are not finite.
    params, x, y, h0 = growing_relu_problem(1e10, h0=1e-300)
    error = raised(fn, params, x, y, h0, nonlinearity="relu")
    assert error.quantity == "∂L/∂a(t)", str(error)
    assert 5 <= error.step <= 11, str(error)
    assert f"the backward pass overflowed: ∂L/∂a(t) (seen in the terms of ∂L/∂W that flow through step t) " \
           f"is not finite at step t = {error.step}" in str(error)


def test_lag_profile_refuses_non_finite_sizes_and_names_an_overflowing_sum():
    norms = np.zeros((3, 3))
    norms[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"^norms: expected finite term sizes, got nan at \[2, 1\]"):
        lag_profile(norms)
    with pytest.raises(ValueError, match=r"^norms: expected a \(T, T\) array of term sizes, got rows of different lengths"):
        lag_profile([[1.0], [1.0, 2.0]])                          # ragged rows: NumPy's own error named no argument
    huge = np.diag(np.full(3, 1e308))                              # every size finite, Σ over the diagonal not
    error = raised(lag_profile, huge)
    assert "lag d = 0 overflowed" in str(error)


def network_helpers():
    helpers = [("state_jacobian", state_jacobian), ("network_contributions", network_contributions)]
    try:
        from torch_reference.network_derivation import torch_network_contributions, torch_state_jacobian
    except ImportError:
        return helpers
    return helpers + [("torch_state_jacobian", torch_state_jacobian),
                      ("torch_network_contributions", torch_network_contributions)]


@pytest.mark.parametrize("name, fn", network_helpers(), ids=[name for name, _ in network_helpers()])
def test_a_network_state_that_overflows_is_named_with_its_layer_direction_and_step(name, fn):
    params, x, y, h0 = growing(1, 1)
    if "jacobian" in name:
        error = raised(fn, params, x, h0, t=T, k=0, layer=1, direction=1)
    else:
        error = raised(fn, params, x, y, h0, wrt="weight_hh_l0")
    assert (error.quantity, error.step) == ("h(t)", 31), str(error)
    assert str(error).startswith(f"{name} (float64, rnn_relu, T = 40): the forward pass overflowed: "
                                 "h(t) of layer 1, reverse direction, is not finite at step t = 31"), str(error)


def test_the_state_jacobian_needs_only_what_its_state_depends_on():
    # Layer 1's reverse direction overflows; layer 0's forward Jacobian does not depend on it.
    params, x, _, h0 = growing(1, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)         # the forward pass of layer 1 overflows
        J = state_jacobian(params, x, h0, t=T, k=0, layer=0, direction=0)
    np.testing.assert_allclose(J.matrix, np.broadcast_to(0.5 ** T * np.eye(H), (B, H, H)), rtol=1e-13)


@pytest.mark.parametrize("name", ["state_jacobian", "torch_state_jacobian"])
def test_a_network_product_that_overflows_with_every_state_finite_names_the_step(name):
    params, x, _, _ = growing(0, 0)
    h0 = np.full((4, B, H), 1e-300)                                # h(40) = 1e100: every state finite
    if name == "state_jacobian":
        fn = state_jacobian
    else:
        fn = pytest.importorskip("torch_reference.network_derivation").torch_state_jacobian
    error = raised(fn, params, x, h0, t=T, k=0, layer=0, direction=0)
    # ∂s(40)/∂s(j) = 1e10^(40-j) I: 1e300 at j = 10, inf at j = 9.
    assert (error.quantity, error.step) == ("∂s(t)/∂s(k)", 9), str(error)
    assert "∂s(t)/∂s(j) is not finite at step j = 9 (counted in that direction's own order), 31 steps back" \
        in str(error)


def test_a_network_term_that_overflows_in_the_backward_pass_is_named():
    # One relu layer, U = 0, W = 1e10·I, h0 = 1e-300: every state is finite (h(40) = 1e100), but
    # ∂L(t)/∂a(k) grows as 1e10^(t-k) and leaves the float range about 31 steps back from t.
    problem = random_network_problem(T=T, B=B, I=I, H=H, O=O, cell="rnn_relu", num_layers=1, bidirectional=False,
                                     seed=5)
    state = problem.params.state_dict()
    state.update(weight_ih_l0=np.zeros((H, I)), bias_ih_l0=np.zeros(H), bias_hh_l0=np.zeros(H),
                 weight_hh_l0=1e10 * np.eye(H))
    params = NetworkParams.from_state_dict(state, cell="rnn_relu")
    error = raised(network_contributions, params, problem.x, problem.y, np.full((1, B, H), 1e-300),
                   wrt="weight_hh_l0")
    assert error.quantity == "∂L(t)/∂weight_hh_l0", str(error)
    where = re.search(r"not finite at t = (\d+), k = (\d+) \((\d+) steps apart\)", str(error))
    assert where and error.step == int(where[2]) and 29 <= int(where[3]) <= 33, str(error)
    assert "the backward pass overflowed: the term of ∂L(t)/∂weight_hh_l0 through step k is not finite" \
        in str(error)


@pytest.mark.parametrize("wrt", ["W", "b"])
def test_term_norms_whose_squares_overflow_are_computed_on_scaled_factors(wrt):
    # T = 25: ∂L(t)/∂a(k) reaches about 1e240 (its square overflows), h(k-1) = 1e-150·1e10^(k-1)
    # keeps every term δ h(k-1)ᵀ within 1e90 and h·h above 1e-300; for b the term is Σ_n δ_n.
    p = random_problem(T=25, B=B, I=I, H=H, O=O, seed=3, nonlinearity="relu")
    params = p.params.replace(U=np.zeros((H, I)), b=np.zeros(H), W=1e10 * np.eye(H))
    h0 = np.full((B, H), 1e-150)
    terms = contributions(params, p.x, p.y, h0, nonlinearity="relu", wrt=wrt)
    assert np.isfinite(terms).all()
    # Each term's norm, scaled by its own largest entry: no square leaves the float range.
    flat = terms.reshape(25, 25, -1)
    scale = np.abs(flat).max(axis=-1, keepdims=True)
    scale[scale == 0] = 1
    expected = np.sqrt(((flat / scale) ** 2).sum(axis=-1)) * scale[..., 0]
    # Σ_n δ_n reaches 1e160: the Gram matrices' δ_n·δ_m leave the float range.
    assert np.abs(contributions(params, p.x, p.y, h0, nonlinearity="relu", wrt="b")).max() > 1e160
    norms = contribution_norms(params, p.x, p.y, h0, nonlinearity="relu", wrt=wrt)
    np.testing.assert_allclose(norms, expected, rtol=1e-12, atol=0)
