"""The readable reference (manual_bptt.reference) equals torch.autograd on the twin model.

This is what makes the reference a reference: the fast path is tested equal to it
without torch (tests/test_reference.py), and it is tested here against autograd, at
the tolerances of DESIGN.md (manual_bptt.TOLERANCES), on drawn networks with random
labels, targets, h0 and lengths.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

pytest.importorskip("torch")

import manual_bptt.reference as reference  # noqa: E402
from manual_bptt.verification.problems import random_network_problem, random_problem  # noqa: E402
from torch_reference import compare  # noqa: E402

from .strategies import network_problems, rnn_problems  # noqa: E402
from .test_reference import EDGE_CASES, SMALL, disagreement  # noqa: E402

#: Each example here costs a torch forward and backward pass (about 25 ms for these sizes, 3 ms
#: for the reference): each test runs a third of the profile's examples, 100 in CI, so that the
#: four together take about 12 s; the fast path meets autograd on the profile's full count in
#: tests/test_networks.py, and the reference on 300 networks through it in tests/test_reference.py.
EXAMPLES = settings(max_examples=max(1, settings().max_examples // 3))


def assert_reference_equals_autograd(problem) -> None:
    """compare(manual=reference.bptt): a row per gradient, within the dtype's tolerance."""
    report = problem.run(compare, manual=reference.bptt)
    if not report.ok:
        raise AssertionError(disagreement(
            "the reference disagrees with torch.autograd (witness: autograd)", report, problem,
            "import manual_bptt.reference; from torch_reference import compare; "
            f"print({problem!r}.run(compare, manual=manual_bptt.reference.bptt))"))


def with_edge_cases(test):
    for case in EDGE_CASES:
        test = example(case)(test)
    return test


@with_edge_cases
@EXAMPLES
@given(network_problems(**SMALL))
def test_reference_equals_autograd_on_drawn_networks(problem):
    assert_reference_equals_autograd(problem)


@example(random_network_problem(T=6, B=3, I=2, H=3, O=2, cell="gru", lengths="random", seed=11))
@example(random_network_problem(T=6, B=3, I=2, H=4, O=2, cell="lstm", proj_size=2, lengths="random",
                                target="last", seed=12))
@EXAMPLES
@given(network_problems(cell=st.sampled_from(("lstm", "gru")), **SMALL))
def test_reference_equals_autograd_on_gated_networks(problem):
    """As above, drawing only LSTM (with or without a projection) and GRU networks."""
    assert_reference_equals_autograd(problem)


@EXAMPLES
@given(network_problems(cell=st.sampled_from(("lstm", "gru", "rnn_tanh")), bidirectional=st.just(True),
                        lengths=st.just("random"), **SMALL))
def test_reference_equals_autograd_on_padded_bidirectional_networks(problem):
    """Lengths in any order, both directions: the reverse direction starts at each sequence's own last step."""
    assert_reference_equals_autograd(problem)


@example(random_problem(T=8, B=3, I=2, H=4, O=3, seed=2, nonlinearity="relu", loss="mse", reduction="mean"))
@EXAMPLES
@given(rnn_problems(**SMALL))
def test_reference_equals_autograd_on_the_one_layer_rnn(problem):
    assert_reference_equals_autograd(problem)
