"""What a cell's trace holds: arrays of the problem's dtype, states of shape (T+1, B, ·), and
final states equal to torch's (h_n, c_n).

The numerical properties cannot see these: a float64 buffer in a float32 pass computes
slightly *more* precisely, and c(T) reaches no loss. Mutation testing of the cells
(docs/testing.md) left them alive until these tests stated them. The scratch blocks of
begin_backward are local to it (np.empty_like of a trace buffer: its dtype by construction),
so they are not among the buffers read here.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manual_bptt.fast.cells import cell_for
from manual_bptt.fast.network import network_forward_checked
from manual_bptt.inputs.network_validation import check_network_problem
from manual_bptt.inputs.options import Options
from manual_bptt.fast.sequence import sequence_backward

from .strategies import network_problems


def checked(problem):
    return check_network_problem(problem.params, problem.x, problem.y, problem.h0, Options(**problem.options))


def arrays_of(trace):
    return {name: value for name, value in vars(trace).items() if isinstance(value, np.ndarray)}


@settings(max_examples=60, deadline=None)
@given(network_problems(dtype=st.just("float32"), num_layers=st.just(1), bidirectional=st.just(False)))
def test_a_float32_pass_keeps_every_buffer_in_float32(problem):
    checked_problem = checked(problem)
    cache = network_forward_checked(checked_problem).layers[0]
    p, T, B = checked_problem.params, checked_problem.T, checked_problem.B
    trace = cache.trace
    held = arrays_of(trace)
    sequence_backward(cell_for(p.cell), p.layer(0, 0), cache, np.ones((T, B, p.output_hidden_size), np.float32))
    held.update(arrays_of(trace))                                # and what the backward pass made
    wrong = {name: str(a.dtype) for name, a in held.items() if a.dtype != np.float32}
    assert not wrong, f"{p.cell}: buffers not in float32: {wrong}"


@given(network_problems(num_layers=st.just(1), bidirectional=st.just(False)))
def test_states_have_one_row_per_step_and_the_initial_one(problem):
    checked_problem = checked(problem)
    trace = network_forward_checked(checked_problem).layers[0].trace
    p, T, B = checked_problem.params, checked_problem.T, checked_problem.B
    widths = {"h": p.output_hidden_size, "c": p.hidden_size}
    names = cell_for(p.cell).state_names
    assert [s.shape for s in trace.states] == [(T + 1, B, widths[name]) for name in names]


@settings(max_examples=60, deadline=None)
@given(network_problems(cell=st.just("lstm"), lengths=st.just("none"), layout=st.just("time_major"),
                        random_h0=st.just(True)))
def test_the_lstm_final_states_are_torchs_h_n_and_c_n(problem):
    torch = pytest.importorskip("torch")
    from torch_reference.network_twin import build_network

    checked_problem = checked(problem)
    cache = network_forward_checked(checked_problem)
    rnn, _ = build_network(checked_problem.params)
    p = checked_problem.params
    states = [checked_problem.initial_state(i) for i in range(p.num_layers * p.num_directions)]
    h0, c0 = (torch.from_numpy(np.stack([s[k] for s in states])) for k in (0, 1))
    with torch.no_grad():
        _, (h_n, c_n) = rnn(torch.from_numpy(checked_problem.x), (h0, c0))
    rtol = 1e-12 if p.dtype == np.float64 else 1e-5
    for index, sequence in enumerate(cache.layers):
        h, c = sequence.trace.states
        np.testing.assert_allclose(h[-1], h_n[index].numpy(), rtol=rtol, atol=rtol, err_msg=f"h_n[{index}]")
        np.testing.assert_allclose(c[-1], c_n[index].numpy(), rtol=rtol, atol=rtol, err_msg=f"c_n[{index}]")
