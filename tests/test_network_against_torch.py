"""Networks against the autograd witness: the twin built from nn.RNN / nn.LSTM / nn.GRU + nn.Linear."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("torch")

from torch_reference import compare  # noqa: E402

from .helpers import assert_agree  # noqa: E402
from .strategies import network_problems  # noqa: E402
from .test_networks import with_edge_cases  # noqa: E402


@with_edge_cases
@given(network_problems())
def test_network_equals_autograd(problem):
    assert_agree(problem.run(compare), problem, "manual network bptt vs torch.autograd (witness: autograd)")


@given(network_problems(cell=st.sampled_from(("lstm", "gru"))))
def test_gated_network_equals_autograd(problem):
    """As above, drawing only LSTM (with or without a projection) and GRU networks."""
    assert_agree(problem.run(compare), problem, "manual LSTM/GRU network bptt vs torch.autograd (witness: autograd)")
