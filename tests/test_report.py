"""The comparison report: its measure, its verdicts and its table."""

from __future__ import annotations

import numpy as np
import pytest

from manual_bptt import TOLERANCES, RNNGrads, Tolerance, bptt, compare_grads, tolerance_for
from manual_bptt.problems import random_problem


def grads(dtype="float64"):
    return random_problem(T=3, B=2, dtype=dtype).run(bptt)


def altered(g, name, change):
    return RNNGrads(**{**dict(g.items()), name: change(getattr(g, name).copy())})


def test_identical_gradients_agree_and_the_table_names_every_row():
    L, g = grads()
    report = compare_grads(g, g, loss=L, reference_loss=L)
    assert report.ok and not report.failures()
    text = str(report)
    for name in ("L", "U", "W", "V", "b", "c", "h0", "x"):
        assert any(line.startswith(f"{name} ") for line in text.splitlines()), name
    assert "all agree" in text


def test_the_measure_is_relative_to_the_largest_element():
    _, g = grads()
    tol = tolerance_for(np.float64)
    biggest = np.abs(g.W).max()

    def nudge(by):
        def change(W):
            W.flat[0] += by
            return W
        return change

    inside = compare_grads(altered(g, "W", nudge(0.5 * tol.allowed(biggest))), g)
    outside = compare_grads(altered(g, "W", nudge(2.0 * tol.allowed(biggest))), g)
    assert inside.ok
    assert not outside.ok and [r.name for r in outside.failures()] == ["W"]
    assert outside["W"].ratio == pytest.approx(2.0 * tol.allowed(biggest) / biggest)
    assert "1 of 7 FAIL: W" in str(outside)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_values_fail(bad):
    _, g = grads()
    report = compare_grads(altered(g, "b", lambda b: b + bad), g)
    assert not report["b"].ok


def test_a_shape_mismatch_fails_instead_of_broadcasting():
    _, g = grads()
    report = compare_grads(altered(g, "c", lambda c: c[:1]), g)
    assert not report["c"].ok and report["c"].max_abs_diff == np.inf


def test_tolerance_follows_the_dtype_and_can_be_given():
    _, g = grads("float32")
    assert compare_grads(g, g).rows[0].tolerance is TOLERANCES[np.dtype(np.float32)]
    strict = Tolerance(rtol=0.0, atol=0.0, reason="exact")
    assert compare_grads(g, g, tolerance=strict).ok
    assert not compare_grads(altered(g, "x", lambda x: x + 1e-30 + np.abs(x).max() * 1e-6), g,
                             tolerance=strict).ok


def test_design_tolerances():
    assert (TOLERANCES[np.dtype(np.float64)].rtol, TOLERANCES[np.dtype(np.float64)].atol) == (1e-11, 1e-13)
    assert (TOLERANCES[np.dtype(np.float32)].rtol, TOLERANCES[np.dtype(np.float32)].atol) == (1e-4, 1e-6)
    with pytest.raises(KeyError, match="no row named"):
        compare_grads(*[grads()[1]] * 2)["nope"]
