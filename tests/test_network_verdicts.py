"""The condition-aware verdict and compare(manual=fn) for networks."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from manual_bptt import bptt  # noqa: E402
from manual_bptt.verification.problems import random_network_problem  # noqa: E402
from torch_reference import compare  # noqa: E402


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_no_false_alarm_on_ill_conditioned_networks(cell, dtype):
    """W×8 in every layer: the project's own gradients are never FAIL (at most 'no meaningful digit')."""
    for seed in range(3):
        problem = random_network_problem(T=40, B=3, I=4, H=16, O=5, cell=cell, num_layers=2, bidirectional=True,
                                         lengths="random", seed=seed, dtype=dtype, weight_scale=8.0)
        report = problem.run(compare)
        assert not report.failures(), f"{problem!r}\n{report}"


def test_a_wrong_network_candidate_fails_and_the_report_names_it():
    problem = random_network_problem(T=6, B=3, cell="gru", lengths="random", seed=2)

    def off_by_a_percent(params, x, y, h0=None, **options):
        L, g = bptt(params, x, y, h0, **options)
        g.params["weight_hh_l1_reverse"] = g.params["weight_hh_l1_reverse"] * 1.01
        return L, g

    report = problem.run(compare, manual=off_by_a_percent)
    assert [row.name for row in report.failures()] == ["weight_hh_l1_reverse"]
    assert "off_by_a_percent" in str(report)
    assert problem.run(compare, manual=bptt).ok


def test_a_network_candidate_must_return_network_grads():
    problem = random_network_problem(T=3, B=2, seed=0)

    def wrong_type(params, x, y, h0=None, **options):
        L, g = bptt(params, x, y, h0, **options)
        return L, g.state_dict()

    with pytest.raises(TypeError, match=r"^manual: expected .*wrong_type to return \(L, NetworkGrads\)"):
        problem.run(compare, manual=wrong_type)


def test_ill_conditioned_network_rows_are_marked():
    problem = random_network_problem(T=60, B=4, I=4, H=32, O=5, num_layers=1, bidirectional=False, seed=0,
                                     weight_scale=6.0)
    report = problem.run(compare)
    assert report.ok and "ill-conditioned" in str(report), str(report)
    assert np.isfinite(report["weight_hh_l0"].max_abs_diff)
