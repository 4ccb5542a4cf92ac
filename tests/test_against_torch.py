"""Witness 1: torch.autograd on the nn.RNN + nn.Linear twin gives the same L and gradients."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

pytest.importorskip("torch")

from manual_bptt import RNNParams, bptt  # noqa: E402
from manual_bptt.verification.problems import random_problem  # noqa: E402
from torch_reference import compare, torch_bptt  # noqa: E402

from .helpers import assert_agree, assert_grads_agree  # noqa: E402
from .strategies import dtypes, rnn_problems  # noqa: E402

# The smallest cases, where an index or a transpose goes wrong most visibly.
EDGE_CASES = [
    random_problem(T=1, B=1, I=1, H=1, O=1, seed=1),
    random_problem(T=1, B=1, I=1, H=1, O=2, seed=2, batched=False),
    random_problem(T=2, B=1, I=3, H=1, O=4, seed=3, nonlinearity="relu", loss="mse"),
    random_problem(T=3, B=2, I=1, H=4, O=1, seed=4, loss="mse", reduction="mean", random_h0=False),
    random_problem(T=5, B=3, I=2, H=3, O=2, seed=5, dtype="float32", batch_first=True),
]


def with_edge_cases(test):
    for case in EDGE_CASES:
        test = example(case)(test)
    return test


@with_edge_cases
@given(rnn_problems())
def test_manual_equals_autograd(problem):
    assert_agree(problem.run(compare), problem)


@st.composite
def problems_with_drawn_labels(draw):
    """Labels drawn element by element, so shrinking reaches the label edges 0 and O-1."""
    T, B, O = draw(st.integers(1, 6)), draw(st.integers(1, 3)), draw(st.integers(1, 5))
    from .strategies import label_sequences

    labels = draw(label_sequences(O, T, B))
    problem = random_problem(T=T, B=B, I=3, H=4, O=O, seed=draw(st.integers(0, 100)), dtype=draw(dtypes))
    return problem, labels


@example((random_problem(T=3, B=2, I=3, H=4, O=5, seed=0), np.zeros((3, 2), dtype=np.int64)))
@example((random_problem(T=3, B=2, I=3, H=4, O=5, seed=0), np.full((3, 2), 4, dtype=np.int64)))
@given(problems_with_drawn_labels())
def test_every_label_agrees(drawn):
    problem, labels = drawn
    report = compare(problem.params, problem.x, labels, problem.h0, **problem.options)
    assert_agree(report, problem, f"labels {labels.tolist()}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_results_have_the_dtype_of_params(dtype):
    problem = random_problem(T=4, B=2, dtype=dtype)
    for fn in (bptt, torch_bptt):
        L, g = problem.run(fn)
        assert type(L) is float
        for name, array in g.items():
            assert isinstance(array, np.ndarray), name
            assert array.dtype == np.dtype(dtype), f"{fn.__name__}: g.{name} is {array.dtype}"


def test_twin_accepts_every_layout_that_manual_accepts():
    base = random_problem(T=4, B=3, seed=9)
    for layout in (dict(batch_first=True), dict(batched=False, B=1)):
        problem = random_problem(T=4, seed=9, **{"B": 3, **layout})
        L, g = problem.run(bptt)
        L_ref, g_ref = problem.run(torch_bptt)
        assert_grads_agree(g, g_ref, problem, loss=L, reference_loss=L_ref)
    assert base.run(compare).ok


@pytest.mark.parametrize("layout", [dict(), dict(batched=False, B=1)], ids=["batched", "unbatched"])
def test_h0_none_gives_the_gradient_at_zeros(layout):
    """Each side's None against the other side's explicit zeros, so neither checks itself."""
    problem = random_problem(**{"T": 5, "B": 2, "random_h0": False, **layout})
    H = problem.params.hidden_size
    zeros = np.zeros((2, H) if problem.x.ndim == 3 else (H,))
    args = (problem.params, problem.x, problem.y)
    for manual_h0, torch_h0 in ((None, zeros), (zeros, None)):
        L, g = bptt(*args, manual_h0, **problem.options)
        L_ref, g_ref = torch_bptt(*args, torch_h0, **problem.options)
        assert_grads_agree(g, g_ref, problem, loss=L, reference_loss=L_ref,
                           what=f"bptt with h0={'zeros' if manual_h0 is not None else None} vs "
                                f"torch_bptt with h0={'zeros' if torch_h0 is not None else None}")
        assert g.h0.shape == zeros.shape
    assert np.abs(g.h0).max() > 0  # h(0) feeds a(1), so its gradient is not zero


def test_compare_reports_a_wrong_gradient(monkeypatch):
    # The report must be able to say FAIL: perturb one entry of the manual dW.
    import torch_reference.autograd as autograd

    real_bptt = autograd.bptt

    def wrong_bptt(*args, **kwargs):
        L, g = real_bptt(*args, **kwargs)
        dW = g.W.copy()
        dW[0, 0] += 1e-6 * max(1.0, np.abs(dW).max())
        return L, type(g)(**{**dict(g.items()), "W": dW})

    monkeypatch.setattr(autograd, "bptt", wrong_bptt)
    report = random_problem(T=6, B=2).run(compare)
    assert not report.ok
    assert [row.name for row in report.failures()] == ["W"]
    assert "FAIL" in str(report)


def test_params_round_trip_through_the_twin():
    from torch_reference import build_twin, twin_to_params

    for dtype in (np.float32, np.float64):
        p = RNNParams.random(input_size=3, hidden_size=4, output_size=2, rng=5, dtype=dtype)
        back = twin_to_params(build_twin(p))
        for (name, want), (_, got) in zip(p.items(), back.items()):
            assert got.dtype == want.dtype, name
            np.testing.assert_array_equal(got, want, err_msg=name)


def test_relu_at_exactly_zero_agrees_with_torch():
    # x, h0 and b all zero make every a(t) exactly 0, where relu has no derivative;
    # both sides must take relu'(0) = 0.
    problem = random_problem(T=4, B=2, I=3, H=5, O=3, nonlinearity="relu", random_h0=False)
    params = problem.params.replace(b=np.zeros(5))
    x = np.zeros_like(problem.x)
    assert_agree(compare(params, x, problem.y, None, **problem.options), problem)
