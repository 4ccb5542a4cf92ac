"""Bidirectional layers that share their buffers (manual_bptt/network.py, BidirectionalLayer).

For the Elman cell, without lengths and from SHARED_BUFFER_BYTES per step block, both
directions of a layer keep h(t) in one (T+2, B, 2·H_out) array and share one input-side
product forward, one pass for φ' and one product each for ∂L/∂U and ∂L/∂x backward.
The drawn test problems are far below the size where that happens, so the tests here
force it by setting the threshold to 0, as tests/test_chunks.py does for the chunked passes.

The shared path sums in another order (both directions' ∂L/∂x inside one product, the
reverse direction's weight sums in memory order), so it agrees with the separate path to
a few float64 ulps, not bit for bit.
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from hypothesis import given
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

shared_path = st.sampled_from(ELMAN_CELLS)


def checked(problem):
    return check_network_problem(problem.params, problem.x, problem.y, problem.h0, Options(**problem.options))


def forward(problem, threshold=None):
    """The network's forward pass, with SHARED_BUFFER_BYTES set to `threshold` (as it is when None)."""
    if threshold is None:
        return network_forward_checked(checked(problem))
    with mock.patch.object(network, "SHARED_BUFFER_BYTES", threshold):
        return network_forward_checked(checked(problem))


@given(network_problems(cell=shared_path, bidirectional=st.just(True), lengths=st.sampled_from(("none", "full"))))
def test_shared_buffers_equal_autograd(problem):
    pytest.importorskip("torch")
    from torch_reference import compare

    with mock.patch.object(network, "SHARED_BUFFER_BYTES", 0):
        report = problem.run(compare)
    assert_agree(report, problem, "bidirectional layers sharing their buffers vs torch.autograd")


@given(network_problems(cell=shared_path, bidirectional=st.just(True), lengths=st.sampled_from(("none", "full")),
                        dtype=st.just("float64")))
def test_shared_and_separate_buffers_give_the_same_gradients(problem):
    L_separate, separate = problem.run(bptt)
    with mock.patch.object(network, "SHARED_BUFFER_BYTES", 0):
        L_shared, together = problem.run(bptt)
    assert_grads_agree(together, separate, problem, loss=L_shared, reference_loss=L_separate, tolerance=REORDERED,
                       actual_name="shared", reference_name="separate", what="shared vs separate buffers")
    for name, array in together.items():                            # one pre-activation: one sum for both biases
        if name.startswith("bias_hh"):
            np.testing.assert_array_equal(array, together[name.replace("bias_hh", "bias_ih")], err_msg=name)


@pytest.mark.parametrize("cell", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_which_layers_share(cell, dtype):
    kw = dict(T=3, I=2, O=2, cell=cell, num_layers=2, bidirectional=True, dtype=dtype, seed=0)
    problem = random_network_problem(B=2, H=4, **kw)
    if not cell.startswith("rnn"):               # the LSTM and GRU want ax contiguous: never shared
        assert forward(problem, threshold=0).shared == [None, None]
        return
    # B·H_out·itemsize = 2·4·8 = 64 bytes in float64, 32 in float32: the threshold is in bytes.
    block = 8 * np.dtype(dtype).itemsize
    assert all(isinstance(s, BidirectionalLayer) for s in forward(problem, threshold=block).shared)
    assert forward(problem, threshold=block + 1).shared == [None, None]
    # Per-sequence reversal is a copy, not a view: layers with lengths never share.
    padded = random_network_problem(B=2, H=4, lengths="random", **kw)
    assert forward(padded, threshold=0).shared == [None, None]
    # At the default threshold, the benchmark's large block (B = 64, H = 256) shares.
    large = random_network_problem(B=64, H=256, **kw)
    assert all(isinstance(s, BidirectionalLayer) for s in forward(large).shared)


def test_the_outputs_are_rows_1_to_T_of_the_shared_buffer():
    problem = random_network_problem(T=5, B=2, I=3, H=4, O=2, num_layers=1, bidirectional=True, seed=1)
    cache = forward(problem, threshold=0)
    forward_h, reverse_h = (layer.trace.states[0] for layer in cache.layers)
    assert np.shares_memory(cache.top, forward_h) and np.shares_memory(cache.top, reverse_h)
    np.testing.assert_array_equal(cache.top[..., :4], forward_h[1:])          # h(t) in natural order
    np.testing.assert_array_equal(cache.top[..., 4:], reverse_h[1:][::-1])    # reverse: own order, flipped
    np.testing.assert_allclose(cache.top, forward(problem).top, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("nonlinearity", ["rnn_tanh", "rnn_relu"])
def test_a_float32_pass_through_shared_buffers_stays_in_float32(nonlinearity):
    problem = random_network_problem(T=4, B=2, I=3, H=4, O=2, cell=nonlinearity, num_layers=2, bidirectional=True,
                                     dtype="float32", seed=2)
    cache = forward(problem, threshold=0)
    held = {f"layer {i}: {name}": value for i, s in enumerate(cache.shared) for name, value in vars(s).items()
            if isinstance(value, np.ndarray)}
    held.update({f"trace {i}: {name}": value for i, layer in enumerate(cache.layers)
                 for name, value in vars(layer.trace).items() if isinstance(value, np.ndarray)})
    wrong = {name: str(a.dtype) for name, a in held.items() if a.dtype != np.float32}
    assert not wrong, f"buffers not in float32: {wrong}"


@pytest.mark.parametrize("wrt", ["weight_ih_l0_reverse", "bias_ih_l0_reverse", "weight_hh_l1_reverse", "weight_ih_l1"])
def test_contributions_read_the_shared_buffers_as_the_separate_ones(wrt):
    """network_contributions reads each direction's trace after the backward pass: the reverse
    direction's x, ∂L/∂a_x and h are views of the shared buffers, read backwards."""
    from manual_bptt.network_derivation import network_contributions

    problem = random_network_problem(T=4, B=2, I=3, H=3, O=2, num_layers=2, bidirectional=True, seed=3)
    p, options = problem.params, {k: problem.options[k] for k in ("loss", "reduction", "batch_first")}
    separate = network_contributions(p, problem.x, problem.y, problem.h0, wrt=wrt, **options)
    with mock.patch.object(network, "SHARED_BUFFER_BYTES", 0):
        shared = network_contributions(p, problem.x, problem.y, problem.h0, wrt=wrt, **options)
    np.testing.assert_allclose(shared, separate, rtol=1e-12, atol=1e-15, err_msg=wrt)


def test_phi_prime_is_one_pass_per_shared_layer():
    """The point of begin_backward_together: φ' of both directions in one call per layer, not two
    (a trace that computed it again would give the same numbers, only slower)."""
    from manual_bptt import activations

    problem = random_network_problem(T=4, B=2, I=3, H=3, O=2, num_layers=2, bidirectional=True, seed=4)
    calls = []
    real = activations.dphi

    def counted(*args, **kwargs):
        calls.append(args[1].shape)
        return real(*args, **kwargs)

    with mock.patch.object(activations, "dphi", counted), mock.patch.object(network, "SHARED_BUFFER_BYTES", 0):
        problem.run(bptt)
    assert calls == [(4, 2, 6)] * 2, calls                     # (T, B, 2·H): AX of each layer
