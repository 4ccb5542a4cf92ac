"""The LSTM and GRU cells: their limiting cases, exactly, and what they reject."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from manual_bptt import NetworkParams, bptt
from manual_bptt.fast.cells import cell_for
from manual_bptt.verification.problems import random_network_problem
from manual_bptt.fast.sequence import sequence_backward, sequence_forward

SATURATED = 60.0  # σ(60) = 1 and σ(-60) = 0 exactly in float64 (σ(a) = ½(1 + tanh(a/2)))


def one_layer(cell: str, seed: int, H: int = 4, I: int = 3, **blocks) -> NetworkParams:
    """A one-layer network whose gate blocks named in `blocks` get that bias (in b_ih), the rest random."""
    p = NetworkParams.random(cell=cell, input_size=I, hidden_size=H, output_size=2, rng=seed)
    state = p.state_dict()
    order = {"lstm": "ifgo", "gru": "rzn"}[cell]
    b_ih = state["bias_ih_l0"].copy()
    for gate, value in blocks.items():
        k = order.index(gate)
        b_ih[k * H:(k + 1) * H] = value
    state["bias_ih_l0"] = b_ih
    return NetworkParams.from_state_dict(state, cell=cell)


@given(st.integers(0, 2**32 - 1), st.integers(1, 12))
def test_lstm_with_forget_gate_one_and_input_gate_zero_carries_c_and_its_gradient(seed, T):
    rng = np.random.default_rng(seed)
    p = one_layer("lstm", seed, f=SATURATED, i=-SATURATED)
    w = p.layer(0, 0)
    B, H = 3, p.hidden_size
    x = rng.standard_normal((T, B, p.input_size))
    h0, c0 = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    cell = cell_for("lstm")
    cache = sequence_forward(cell, w, x, (h0, c0), None)
    c = cache.trace.states[1]
    for t in range(T + 1):
        np.testing.assert_array_equal(c[t], c0, err_msg=f"c({t}) must be c(0)")
    dcT = rng.standard_normal((B, H))                             # a loss on c(T) alone
    grads = sequence_backward(cell, w, cache, None, (np.zeros((B, H)), dcT))
    np.testing.assert_array_equal(grads.state0[1], dcT, err_msg="∂L/∂c(0) must be ∂L/∂c(T)")


@given(st.integers(0, 2**32 - 1), st.integers(1, 12))
def test_gru_with_update_gate_one_copies_h_and_its_gradient(seed, T):
    rng = np.random.default_rng(seed)
    p = one_layer("gru", seed, z=SATURATED)
    w = p.layer(0, 0)
    B, H = 3, p.hidden_size
    x = rng.standard_normal((T, B, p.input_size))
    h0 = rng.standard_normal((B, H))
    cell = cell_for("gru")
    cache = sequence_forward(cell, w, x, (h0,), None)
    h = cache.h
    for t in range(T + 1):
        # h(t) = n + z ⊙ (h(t-1) - n) with z = 1: h(t-1) up to the rounding of the two additions
        np.testing.assert_allclose(h[t], h0, rtol=0, atol=8 * np.finfo(float).eps * (1 + np.abs(h0).max()))
    dhT = rng.standard_normal((B, H))
    grads = sequence_backward(cell, w, cache, None, (dhT,))
    np.testing.assert_array_equal(grads.state0[0], dhT, err_msg="∂L/∂h(0) must be ∂L/∂h(T)")


def test_the_saturated_gates_are_needed():
    """Guards the two tests above: with ordinary gates, c and h move and so do their gradients."""
    rng = np.random.default_rng(0)
    x, state = rng.standard_normal((5, 3, 3)), rng.standard_normal((3, 4))
    lstm = sequence_forward(cell_for("lstm"), one_layer("lstm", 0).layer(0, 0), x, (state, state), None)
    assert np.abs(lstm.trace.states[1][-1] - state).max() > 1e-3
    gru = sequence_forward(cell_for("gru"), one_layer("gru", 0).layer(0, 0), x, (state,), None)
    assert np.abs(gru.h[-1] - state).max() > 1e-3


LSTM = random_network_problem(T=4, B=3, I=2, H=4, O=3, cell="lstm", proj_size=2, seed=0)
GRU = random_network_problem(T=4, B=3, I=2, H=4, O=3, cell="gru", seed=0)


@pytest.mark.parametrize("problem, h0, error, fragment", [
    (LSTM, LSTM.h0[0], TypeError, "h0: expected a pair (h0, c0) for cell 'lstm'"),
    (LSTM, (LSTM.h0[0],), TypeError, "h0: expected a pair (h0, c0)"),
    (LSTM, (LSTM.h0[0], LSTM.h0[1][:, :, :2]), ValueError, "c0: expected shape (L·D, B, H) = (4, 3, 4)"),
    (LSTM, (LSTM.h0[1], LSTM.h0[1]), ValueError, "h0: expected shape (L·D, B, H_out) = (4, 3, 2)"),
    (LSTM, (LSTM.h0[0], LSTM.h0[1].astype(np.float32)), TypeError, "c0: expected a float64 array"),
    (LSTM, (LSTM.h0[0], LSTM.h0[1] * np.nan), ValueError, "c0: expected finite values"),
    (GRU, (GRU.h0, GRU.h0), TypeError, "h0: expected one array for cell 'gru'"),
])
def test_bad_states_of_gated_cells(problem, h0, error, fragment):
    with pytest.raises(error) as caught:
        bptt(problem.params, problem.x, problem.y, h0, **problem.options)
    assert str(caught.value).startswith(fragment), str(caught.value)


def test_proj_size_must_be_below_hidden_size():
    with pytest.raises(ValueError, match=r"^proj_size: expected 0 or less than hidden_size = 4, got 4"):
        NetworkParams.random(cell="lstm", input_size=2, hidden_size=4, output_size=2, proj_size=4)
    state = LSTM.params.state_dict()
    state["weight_hr_l0"] = np.zeros((4, 4))
    with pytest.raises(ValueError, match=r"weight_hr_l0"):
        NetworkParams.from_state_dict(state, cell="lstm")


def test_gate_blocks_follow_torchs_order():
    """nn.LSTM's i, f, g, o and nn.GRU's r, z, n: a block swapped in the weights changes the result."""
    pytest.importorskip("torch")
    from torch_reference import compare

    for problem, swap in ((LSTM, (0, 1)), (GRU, (0, 1))):
        p = problem.params
        G, H = p.gates, p.hidden_size
        state = p.state_dict()
        rows = np.arange(G * H).reshape(G, H)
        rows[list(swap)] = rows[list(reversed(swap))]
        state["weight_hh_l0"] = state["weight_hh_l0"][rows.reshape(-1)]
        swapped = NetworkParams.from_state_dict(state, cell=p.cell)
        L, _ = bptt(swapped, problem.x, problem.y, problem.h0, **problem.options)
        L_ref, _ = bptt(p, problem.x, problem.y, problem.h0, **problem.options)
        assert L != L_ref
        assert problem.run(compare).ok
