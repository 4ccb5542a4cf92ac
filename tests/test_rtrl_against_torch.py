"""RTRL against torch.autograd: the forward-in-time gradients of manual_bptt.reference.rtrl
checked by the independent witness, on drawn one-layer problems (torch_reference.compare with
rtrl as the candidate, at the project's tolerance for the dtype)."""

from __future__ import annotations

import pytest
from hypothesis import example, given

import manual_bptt.reference as reference
from manual_bptt.verification.problems import random_problem

from .helpers import assert_agree
from .strategies import rnn_problems

pytest.importorskip("torch")

from torch_reference import compare  # noqa: E402  (after the skip: torch is needed)


@example(random_problem(T=9, B=3, I=2, H=5, O=3, seed=21, nonlinearity="relu", loss="mse", reduction="mean"))
@example(random_problem(T=5, B=1, I=3, H=4, O=2, seed=22, batched=False, batch_first=False))
@given(rnn_problems(max_T=8, max_B=3, max_size=5))
def test_rtrl_agrees_with_autograd(problem):
    report = problem.run(compare, manual=reference.rtrl)
    assert_agree(report, problem, "rtrl disagrees with torch.autograd")
