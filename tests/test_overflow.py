"""Finite inputs whose computation overflows: the error says what, and at which step.

Each problem is built so that the step where the float range is left follows
from the numbers alone (a power of a diagonal W), not from the code under test.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from manual_bptt import bptt, rnn_forward
from manual_bptt.inputs.overflow import NonFiniteError
from manual_bptt.verification.problems import random_problem

T, B, I, H, O = 40, 2, 3, 4, 3


def entry_points():
    """bptt, and the torch entry points when torch is there."""
    yield bptt
    try:
        from torch_reference import compare, torch_bptt
    except ImportError:
        return
    yield torch_bptt
    yield compare


def raised(fn, params, x, y, h0, **options) -> NonFiniteError:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)         # NumPy's overflow warnings: expected here
        with pytest.raises(NonFiniteError) as caught:
            fn(params, x, y, h0, **options)
    return caught.value


def growing_relu_problem(scale: float, T: int = T, dtype: str = "float64"):
    """U = 0, b = 0, W = scale·I, h0 = 1, relu: h(t) = scale^t exactly."""
    p = random_problem(T=T, B=B, I=I, H=H, O=O, seed=3, nonlinearity="relu", dtype=dtype)
    zeros = np.zeros
    params = p.params.replace(U=zeros((H, I), dtype), b=zeros(H, dtype), W=(scale * np.eye(H)).astype(dtype))
    return params, p.x, p.y, np.ones((B, H), dtype)


@pytest.mark.parametrize("fn", list(entry_points()), ids=lambda f: f.__name__)
def test_relu_forward_overflow_names_h_and_the_step(fn):
    params, x, y, h0 = growing_relu_problem(1e10)
    # h(t) = 1e10^t: finite up to t = 30 (1e300), inf at t = 31 (1e310 > 1.8e308).
    error = raised(fn, params, x, y, h0, nonlinearity="relu")
    assert (error.quantity, error.step) == ("h(t)", 31)
    assert "the forward pass overflowed: h(t) = relu(a(t)) is not finite at step t = 31" in str(error)
    assert "max |h(t-1)| = 1e+300" in str(error)
    assert isinstance(error, ValueError) and isinstance(error, FloatingPointError)


@pytest.mark.parametrize("fn", list(entry_points()), ids=lambda f: f.__name__)
def test_float32_overflows_at_its_own_range(fn):
    # float32 ends at 3.4e38: h(t) = 1000^t is 1e36 at t = 12 and inf at t = 13.
    params, x, y, h0 = growing_relu_problem(1e3, dtype="float32")
    error = raised(fn, params, x, y, h0, nonlinearity="relu")
    assert (error.quantity, error.step) == ("h(t)", 13)
    assert "(float32, T = 40)" in str(error)


def test_rnn_forward_reports_the_same_step():
    params, x, _, h0 = growing_relu_problem(1e10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(NonFiniteError, match=r"^rnn_forward \(float64, T = 40\): .* at step t = 31 "):
            rnn_forward(params, x, h0, nonlinearity="relu")


@pytest.mark.parametrize("fn", list(entry_points()), ids=lambda f: f.__name__)
def test_mse_overflow_names_the_loss_at_step_one(fn):
    p = random_problem(T=T, B=B, I=I, H=H, O=O, seed=3, loss="mse")
    params = p.params.replace(c=np.full(O, 1e200))                # o(t) ≈ 1e200: finite; ½‖o - y‖² ≈ 1e400: not
    error = raised(fn, params, p.x, p.y, p.h0, loss="mse")
    assert (error.quantity, error.step) == ("L(t)", 1)
    assert "the loss L(t) (mse) overflowed at step t = 1" in str(error)


def test_cross_entropy_overflow_names_the_loss():
    p = random_problem(T=T, B=B, I=I, H=H, O=O, seed=3)
    params = p.params.replace(c=np.array([1e308, -1e308, 0.0]))  # o(1) - max o(1) = -2e308 = -inf
    y = np.ones_like(p.y)                                         # the label whose logit is -1e308
    error = raised(bptt, params, p.x, y, p.h0)
    assert (error.quantity, error.step) == ("L(t)", 1)


@pytest.mark.parametrize("fn", list(entry_points()), ids=lambda f: f.__name__)
def test_backward_overflow_names_da_and_a_step_counted_from_the_end(fn):
    # tanh at a = 0 (U = 0, b = 0, h0 = 0): φ' = 1, so ∂L/∂h(t) = Σ_{s≥t} 10^(s-t) Vᵀ ∂L(s)/∂o(s).
    # With |Vᵀ ∂L/∂o| between 1e-3 and 10 it passes 1.8e308 between 306 and 312 steps back.
    T_long = 400
    p = random_problem(T=T_long, B=B, I=I, H=H, O=O, seed=3)
    params = p.params.replace(U=np.zeros((H, I)), b=np.zeros(H), W=10 * np.eye(H))
    error = raised(fn, params, p.x, p.y, None)
    assert error.quantity == "∂L/∂a(t)"
    assert 306 <= T_long - error.step <= 312, error
    assert ("the backward pass overflowed: ∂L/∂a(t) (seen in ∂L/∂x(t) = Uᵀ ∂L/∂a(t)) "
            f"is not finite at step t = {error.step}") in str(error)


def test_an_overflowing_sum_over_t_names_the_gradients():
    # h(t) = 1e307 for every t (W = I, relu, U = 0, b = 0): each term of ∂L/∂V = Σ_t ∂L(t)/∂o(t) h(t)ᵀ
    # is finite, their sum over T = 40 steps is not; ∂L/∂W sums 1e307-sized terms too.
    params, x, y, _ = growing_relu_problem(1.0)
    h0 = np.full((B, H), 1e307)
    error = raised(bptt, params.replace(V=params.V / H), x, y, h0, nonlinearity="relu")
    assert error.step is None and error.quantity == "∂L/∂W"
    assert "the sum over t of ∂L/∂W, ∂L/∂V overflowed" in str(error)


def test_finite_results_are_unchanged_and_checked_once(monkeypatch):
    import manual_bptt.fast.rnn as rnn

    calls = []
    real = rnn.all_finite
    monkeypatch.setattr(rnn, "all_finite", lambda *arrays: calls.append(len(arrays)) or real(*arrays))
    p = random_problem(T=T, B=B, I=I, H=H, O=O, seed=3)
    L, g = p.run(bptt)
    assert calls == [7]                                           # once, on the 7 gradients; never per step
    monkeypatch.setattr(rnn, "check_finite_result", lambda *a, **k: None)
    L_unchecked, g_unchecked = p.run(bptt)
    assert L == L_unchecked
    for (name, a), (_, b) in zip(g.items(), g_unchecked.items()):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_huge_but_finite_results_pass():
    # The check's fast path (a sum) overflows on these; the full test then lets them through.
    params, x, y, _ = growing_relu_problem(1.0)
    h0 = np.full((B, H), 1e306)
    L, g = bptt(params.replace(V=params.V / H), x, y, h0, nonlinearity="relu")
    assert np.isfinite(L) and np.abs(g.V).max() > 1e307 / 8
    with np.errstate(over="ignore"):
        assert not np.isfinite(g.W.sum())                         # so the full test did run
