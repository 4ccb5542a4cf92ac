"""Bidirectional layers that share their buffers (manual_bptt/network.py, BidirectionalLayer).

For the Elman cell, without lengths and from SHARED_BUFFER_BYTES per step block, both
directions of a layer keep h(t) in one (T+2, B, 2·H_out) array and share one input-side
product forward, one pass for φ' and one product each for ∂L/∂U and ∂L/∂x backward. The drawn test problems are far below the
size where that happens, so the tests here force it by setting the threshold to 0, as
tests/test_chunks.py does for the chunked passes.

The shared path sums in another order (both directions' ∂L/∂x inside one product, the
reverse direction's weight sums in memory order), so it agrees with the separate path to
a few float64 ulps, not bit for bit.
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manual_bptt import Tolerance, bptt, network
from manual_bptt.network import BidirectionalLayer, network_forward_checked
from manual_bptt.network_validation import check_network_problem
from manual_bptt.options import Options
from manual_bptt.problems import random_network_problem

from .helpers import assert_agree, assert_grads_agree
from .strategies import ELMAN_CELLS, network_problems

#: The same float64 sums in another order, as tests/test_networks.py's REORDERED.
REORDERED = Tolerance(rtol=1e-12, atol=1e-14, reason="the same float64 sums, accumulated in another order")


def shared(problem):
    """The problem's forward pass with every bidirectional layer sharing its buffers where it may."""
    with mock.patch.object(network, "SHARED_BUFFER_BYTES", 0):
        return problem.run(bptt)


def joints(problem, threshold=None):
    checked = check_network_problem(problem.params, problem.x, problem.y, problem.h0, Options(**problem.options))
    if threshold is None:
        return network_forward_checked(checked).joint
    with mock.patch.object(network, "SHARED_BUFFER_BYTES", threshold):
        return network_forward_checked(checked).joint


@given(network_problems(cell=st.sampled_from(ELMAN_CELLS), bidirectional=st.just(True),
                        lengths=st.sampled_from(("none", "full"))))
def test_shared_buffers_equal_autograd(problem):
    pytest.importorskip("torch")
    from torch_reference import compare

    with mock.patch.object(network, "SHARED_BUFFER_BYTES", 0):
        report = problem.run(compare)
    assert_agree(report, problem, "bidirectional layers sharing their buffers vs torch.autograd")


@settings(max_examples=100)
@given(network_problems(cell=st.sampled_from(ELMAN_CELLS), bidirectional=st.just(True),
                        lengths=st.sampled_from(("none", "full")), dtype=st.just("float64")))
def test_shared_and_separate_buffers_give_the_same_gradients(problem):
    L_separate, separate = problem.run(bptt)
    L_shared, together = shared(problem)
    assert_grads_agree(together, separate, problem, loss=L_shared, reference_loss=L_separate, tolerance=REORDERED,
                       actual_name="shared", reference_name="separate", what="shared vs separate buffers")


@pytest.mark.parametrize("cell", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_which_layers_share_and_what(cell):
    kw = dict(T=3, I=2, O=2, cell=cell, num_layers=2, bidirectional=True, seed=0)
    problem = random_network_problem(B=2, H=4, **kw)
    if not cell.startswith("rnn"):                                  # the LSTM and GRU copy ax: never shared
        assert joints(problem, threshold=0) == [None, None]
        return
    # B·H_out·itemsize = 2·4·8 = 64 bytes: at a threshold of 64 both layers share, at 65 neither.
    assert all(isinstance(j, BidirectionalLayer) for j in joints(problem, threshold=64))
    assert joints(problem, threshold=65) == [None, None]
    # Per-sequence reversal is a copy, not a view: layers with lengths never share.
    padded = random_network_problem(B=2, H=4, lengths="random", **kw)
    assert joints(padded, threshold=0) == [None, None]
    # At the default threshold, the benchmark's large block (B = 64, H = 256) shares.
    large = random_network_problem(B=64, H=256, **kw)
    assert all(isinstance(j, BidirectionalLayer) for j in joints(large))


def test_the_outputs_are_rows_1_to_T_of_the_shared_buffer():
    problem = random_network_problem(T=5, B=2, I=3, H=4, O=2, num_layers=1, bidirectional=True, seed=1)
    checked = check_network_problem(problem.params, problem.x, problem.y, problem.h0, Options(**problem.options))
    with mock.patch.object(network, "SHARED_BUFFER_BYTES", 0):
        cache = network_forward_checked(checked)
    forward, reverse = (layer.trace.states[0] for layer in cache.layers)
    assert np.shares_memory(cache.top, forward) and np.shares_memory(cache.top, reverse)
    np.testing.assert_array_equal(cache.top[..., :4], forward[1:])            # h(t) in natural order
    np.testing.assert_array_equal(cache.top[..., 4:], reverse[1:][::-1])      # reverse: own order, flipped
    separate = network_forward_checked(checked).top
    np.testing.assert_allclose(cache.top, separate, rtol=1e-13, atol=1e-15)
