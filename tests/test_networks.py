"""Networks (stacked, bidirectional, padded, one label per sequence, truncated) against the witnesses
that need no torch: finite differences of a plain loop, the one-layer core, and invariants.
The autograd witness is tests/test_network_against_torch.py."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from manual_bptt import NetworkParams, Tolerance, bptt
from manual_bptt.tools.derivation import contributions
from manual_bptt.verification.problems import random_network_problem, random_problem

from .helpers import assert_grads_agree, assert_within
from .network_witnesses import network_finite_differences, network_inputs, reference_network_loss
from .strategies import network_problems

EDGE_CASES = [
    random_network_problem(T=1, B=1, I=1, H=1, O=1, num_layers=1, bidirectional=False, seed=1),
    random_network_problem(T=5, B=3, I=2, H=3, O=2, lengths="one", seed=2),
    random_network_problem(T=6, B=4, I=2, H=3, O=3, lengths="random", target="last", seed=3, batch_first=True),
    random_network_problem(T=7, B=3, I=2, H=3, O=3, num_layers=3, bidirectional=False, lengths="random",
                           truncate=2, target="last", seed=4, loss="mse", reduction="mean"),
    random_network_problem(T=4, B=1, I=3, H=2, O=2, bias=False, batched=False, target="last", seed=5,
                           cell="rnn_relu", random_h0=False),
    random_network_problem(T=6, B=2, I=2, H=3, O=2, lengths="full", dtype="float32", seed=6),
]


def with_edge_cases(test):
    for case in EDGE_CASES:
        test = example(case)(test)
    return test


# --- witness 2: finite differences of a plain loop (no torch) ---------------------------------

FINITE_DIFFERENCE = Tolerance(rtol=1e-6, atol=1e-7, reason="as tests/test_finite_differences.py: ε = 1e-5 central differences")
#: Two float64 evaluations of the same sums (over sequences, over steps) in another order:
#: a few ulps per term over at most a few hundred terms, far below 1e-12 of the largest.
REORDERED = Tolerance(rtol=1e-12, atol=1e-14, reason="the same float64 sums, accumulated in another order")


@settings(max_examples=40)
@given(network_problems(dtype=st.just("float64"), truncated=st.just(False), max_T=5, max_B=3, max_size=3,
                        num_layers=st.integers(1, 2)))
def test_network_equals_finite_differences_of_a_plain_loop(problem):
    seen_a: list = []
    reference_network_loss(problem, network_inputs(problem), seen_a)
    assume(problem.params.cell != "rnn_relu" or min(np.abs(a).min() for a in seen_a) > 1e-3)
    L_fd, g_fd = network_finite_differences(problem)
    L, g = problem.run(bptt)
    assert_grads_agree(g, g_fd, problem, loss=L, reference_loss=L_fd, tolerance=FINITE_DIFFERENCE,
                       reference_name="finite differences", what="witness: finite differences of a plain loop")


# --- invariants -------------------------------------------------------------------------------

@given(st.integers(0, 2**32 - 1), st.sampled_from(("tanh", "relu")), st.sampled_from(("cross_entropy", "mse")),
       st.sampled_from(("sum", "mean")), st.sampled_from(("float64", "float32")), st.booleans())
def test_one_layer_network_is_the_core_bptt(seed, nonlinearity, loss, reduction, dtype, batch_first):
    core = random_problem(T=7, B=3, I=2, H=4, O=3, seed=seed, nonlinearity=nonlinearity, loss=loss,
                          reduction=reduction, dtype=dtype, batch_first=batch_first)
    net = NetworkParams.from_rnn_params(core.params, nonlinearity=nonlinearity)
    L_core, g_core = core.run(bptt)
    options = {k: v for k, v in core.options.items() if k != "nonlinearity"}
    L_net, g_net = bptt(net, core.x, core.y, core.h0[None], **options)
    assert L_net == L_core
    pairs = {"weight_ih_l0": "U", "weight_hh_l0": "W", "bias_ih_l0": "b", "bias_hh_l0": "b",
             "head.weight": "V", "head.bias": "c"}
    for name, symbol in pairs.items():
        np.testing.assert_array_equal(g_net[name], getattr(g_core, symbol), err_msg=name)
    np.testing.assert_array_equal(g_net.h0[0], g_core.h0)
    np.testing.assert_array_equal(g_net.x, g_core.x)


@given(network_problems(lengths=st.just("random"), layout=st.sampled_from(("time_major", "batch_first"))),
       st.integers(0, 2**32 - 1))
def test_padding_changes_nothing_and_gets_no_gradient(problem, seed):
    rng = np.random.default_rng(seed)
    opts = problem.options
    lengths = opts["lengths"]
    T = problem.x.shape[1] if opts["batch_first"] else problem.x.shape[0]
    padded = np.arange(T)[:, None] >= lengths[None, :]              # (T, B)
    if opts["batch_first"]:
        padded = padded.T
    x = problem.x.copy()
    x[padded] = 100 * rng.standard_normal(x[padded].shape)          # garbage beyond each length
    y = np.array(problem.y, copy=True)
    if opts["target"] == "each_step":
        y[padded] = rng.integers(0, problem.params.output_size, y[padded].shape) if opts["loss"] == "cross_entropy" \
            else rng.standard_normal(y[padded].shape)
    L, g = problem.run(bptt)
    L_garbage, g_garbage = bptt(problem.params, x, y, problem.h0, **opts)
    assert L_garbage == L
    for (name, a), (_, b) in zip(g.items(), g_garbage.items()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert not g_garbage.x[padded].any(), "padded entries of x must get ∂L/∂x = 0"


@given(network_problems(lengths=st.just("random"), layout=st.just("time_major"), reduction=st.just("sum"),
                        dtype=st.just("float64")))
def test_a_sequence_alone_or_in_a_padded_batch(problem):
    L, g = problem.run(bptt)
    lengths = problem.options["lengths"]
    total_L, total = 0.0, {name: np.zeros_like(a) for name, a in g.params.items()}
    for n, length in enumerate(lengths):
        if problem.h0 is None:
            alone_h0 = None
        elif problem.params.cell == "lstm":
            alone_h0 = tuple(state[:, n:n + 1] for state in problem.h0)
        else:
            alone_h0 = problem.h0[:, n:n + 1]
        y = problem.y[:length, n:n + 1] if problem.options["target"] == "each_step" else problem.y[n:n + 1]
        options = {**problem.options, "lengths": None}
        L_n, g_n = bptt(problem.params, problem.x[:length, n:n + 1], y, alone_h0, **options)
        total_L += L_n
        for name in total:
            total[name] += g_n[name]
        assert_within(g.x[:length, n], g_n.x[:, 0], REORDERED, f"x of sequence {n}")
        assert_within(g.h0[:, n], g_n.h0[:, 0], REORDERED, f"h0 of sequence {n}")
        if g.c0 is not None:
            assert_within(g.c0[:, n], g_n.c0[:, 0], REORDERED, f"c0 of sequence {n}")
    assert_within(total_L, L, REORDERED, "L: Σ of sequences alone")
    for name, a in total.items():
        assert_within(a, g[name], REORDERED, f"{name}: Σ of sequences alone vs the batch")


@given(network_problems(bidirectional=st.just(False), truncated=st.just(False)), st.integers(0, 4))
def test_truncating_at_T_or_beyond_is_no_truncation(problem, beyond):
    T = problem.x.shape[0] if problem.x.ndim == 2 or not problem.options["batch_first"] else problem.x.shape[1]
    L, g = problem.run(bptt)
    L_k, g_k = problem.run(bptt, truncate=T + beyond)
    assert L_k == L
    for (name, a), (_, b) in zip(g.items(), g_k.items()):
        np.testing.assert_array_equal(a, b, err_msg=name)


@given(st.integers(0, 2**32 - 1), st.sampled_from(("tanh", "relu")), st.integers(1, 8))
def test_truncate_one_keeps_only_the_immediate_partials(seed, nonlinearity, T):
    """With chunks of one step, ∂L(t)/∂W keeps the k = t term alone: the diagonal of `contributions`."""
    core = random_problem(T=T, B=3, I=2, H=4, O=3, seed=seed, nonlinearity=nonlinearity)
    net = NetworkParams.from_rnn_params(core.params, nonlinearity=nonlinearity)
    _, g = bptt(net, core.x, core.y, core.h0[None], truncate=1)
    for symbol, name in (("W", "weight_hh_l0"), ("U", "weight_ih_l0"), ("b", "bias_ih_l0")):
        terms = contributions(core.params, core.x, core.y, core.h0, wrt=symbol, nonlinearity=nonlinearity)
        diagonal = np.einsum("tt...->...", terms)
        assert_within(g[name], diagonal, REORDERED, f"{symbol}: truncate=1 vs the diagonal of contributions")


def test_truncation_changes_the_gradient():
    """Guards the two properties above against a truncate that does nothing."""
    problem = random_network_problem(T=8, bidirectional=False, seed=3)
    _, g = problem.run(bptt)
    _, g_2 = problem.run(bptt, truncate=2)
    assert np.abs(g["weight_hh_l0"] - g_2["weight_hh_l0"]).max() > 1e-3 * np.abs(g["weight_hh_l0"]).max()
