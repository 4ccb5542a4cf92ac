"""A network whose finite inputs overflow: the error names the layer, the direction and the step.

As in tests/test_overflow.py, the step follows from the numbers alone: with U = 0, zero
biases, h0 = 1 and W = s·I in a relu layer, that layer's h(t) = s^t exactly, in its own
time order; the other layers get W = ½·I and stay bounded.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from manual_bptt import NetworkParams, bptt
from manual_bptt.inputs.overflow import NonFiniteError
from manual_bptt.verification.problems import random_network_problem

T, B, I, H, O = 40, 2, 3, 4, 3


def growing(layer: int, direction: int, scale: float = 1e10, dtype: str = "float64", steps: int = T, **options):
    """A 2-layer bidirectional relu network in which only (layer, direction) grows, as scale^t."""
    problem = random_network_problem(T=steps, B=B, I=I, H=H, O=O, cell="rnn_relu", num_layers=2, bidirectional=True,
                                     dtype=dtype, seed=5, **options)
    state = problem.params.state_dict()
    for name in state:
        if name.startswith(("weight_ih", "bias")):
            state[name] = np.zeros_like(state[name])
    for l in range(2):
        for d in range(2):
            suffix = f"_l{l}" + ("_reverse" if d else "")
            s = scale if (l, d) == (layer, direction) else 0.5
            state["weight_hh" + suffix] = (s * np.eye(H)).astype(dtype)
    params = NetworkParams.from_state_dict(state, cell="rnn_relu")
    return params, problem.x, problem.y, np.ones((4, B, H), dtype)


def raised(*args, **options) -> NonFiniteError:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)         # NumPy's overflow warnings: expected here
        with pytest.raises(NonFiniteError) as caught:
            bptt(*args, **options)
    return caught.value


@pytest.mark.parametrize("layer, direction", [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_a_state_that_overflows_is_named_with_its_layer_direction_and_step(layer, direction):
    args = growing(layer, direction)
    # h(t) = 1e10^t: finite up to t = 30 (1e300), inf at t = 31, counted in that direction's order.
    error = raised(*args)
    assert (error.quantity, error.step) == ("h(t)", 31)
    name = "reverse" if direction else "forward"
    assert f"h(t) of layer {layer}, {name} direction, is not finite at step t = 31" in str(error), str(error)
    assert "bptt (float64, rnn_relu, T = 40)" in str(error)
    assert "is not finite at step t = 31 (counted in that direction's own order); scale the weights or x down" \
        in str(error)
    assert isinstance(error, ValueError) and isinstance(error, FloatingPointError)


@pytest.mark.parametrize("h0, scale, step", [(1e300, 1e10, 1), (1.0, 10 ** 7.8, T)], ids=["first step", "last step"])
def test_the_first_and_the_last_step_are_searched(h0, scale, step):
    params, x, y, ones = growing(1, 1, scale=scale)
    # h(1) = 1e300 · 1e10 overflows at once; (10^7.8)^39 = 1e304.2 is finite, (10^7.8)^40 = 1e312 is not.
    error = raised(params, x, y, h0 * ones)
    assert (error.quantity, error.step) == ("h(t)", step)


def test_a_gradient_that_overflows_with_L_finite_is_named():
    """V = 0, c = 1e10, MSE: L = ½ Σ (c - y)² ≈ 1e21 is finite, but ∂L/∂V = Σ_t (o - y) h(t)ᵀ
    meets h(30) = 1e300 of the growing top layer and overflows; nothing else does (Vᵀ ∂L/∂o = 0)."""
    params, x, _, h0 = growing(1, 0, steps=30, loss="mse")
    state = params.state_dict()
    state["head.weight"] = np.zeros_like(state["head.weight"])
    state["head.bias"] = np.full_like(state["head.bias"], 1e10)
    y = np.zeros((30, B, O))
    error = raised(NetworkParams.from_state_dict(state, cell="rnn_relu"), x, y, h0, loss="mse")
    assert (error.quantity, error.step) == ("∂L/∂head.weight", None)
    assert "the backward pass overflowed: ∂L/∂head.weight not finite, although L is" in str(error), str(error)


def test_float32_overflows_at_its_own_range():
    args = growing(1, 1, scale=1e3, dtype="float32")
    # 1e3^t: 1e36 at t = 12 is finite in float32 (max 3.4e38), 1e39 at t = 13 is not.
    error = raised(*args)
    assert (error.quantity, error.step) == ("h(t)", 13)
    assert "bptt (float32, rnn_relu, T = 40)" in str(error)


def test_an_output_that_overflows_with_every_state_finite_is_named_as_the_loss():
    params, x, y, h0 = growing(0, 0, scale=0.5)                   # every state bounded
    state = params.state_dict()
    state["head.weight"] = np.full_like(state["head.weight"], 1e308)
    error = raised(NetworkParams.from_state_dict(state, cell="rnn_relu"), x, y, h0)
    assert error.quantity == "L" and error.step is None
    assert "o = V h + c or the loss L overflowed, although every state is finite" in str(error)


def test_a_finite_result_is_returned_as_it_is():
    L, grads = bptt(*growing(1, 1, scale=0.5))
    assert np.isfinite(L) and all(np.isfinite(g).all() for _, g in grads.items())
