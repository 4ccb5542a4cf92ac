"""The comparison report: its measure, its verdicts and its table."""

from __future__ import annotations

import re

import numpy as np
import pytest

from manual_bptt import TOLERANCES, RNNGrads, Tolerance, bptt, compare_grads, tolerance_for
from manual_bptt.verification.problems import random_problem


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


def test_the_tolerances_are_the_ones_the_readme_and_the_testing_notes_state():
    """The documents quote the table; a change to one without the others must fail."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = " ".join((root / "README.md").read_text().split())
    stated = re.search(r"float64: (\S+), (\S+); float32: (\S+), (\S+);", readme)
    assert stated, "README no longer states the tolerances"
    f64, f32 = TOLERANCES[np.dtype(np.float64)], TOLERANCES[np.dtype(np.float32)]
    assert tuple(map(float, stated.groups())) == (f64.rtol, f64.atol, f32.rtol, f32.atol)
    testing = (root / "docs" / "testing.md").read_text()
    for dtype, tol in (("float64", f64), ("float32", f32)):
        row = re.search(rf"^\| {dtype}, manual vs torch[^|]*\| (\S+) \| (\S+) \|", testing, re.MULTILINE)
        assert row and (float(row.group(1)), float(row.group(2))) == (tol.rtol, tol.atol), dtype
    assert set(TOLERANCES) == {np.dtype(np.float32), np.dtype(np.float64)}
    assert all(tol.reason for tol in TOLERANCES.values())


def test_a_missing_row_is_a_key_error():
    with pytest.raises(KeyError, match="no row named"):
        compare_grads(*[grads()[1]] * 2)["nope"]


def test_the_table_format():
    """The exact text a reader sees (README, "Reading a failure"), built from fixed rows."""
    from manual_bptt import GradientReport, GradientRow

    tol = TOLERANCES[np.dtype(np.float64)]
    report = GradientReport(
        rows=(
            GradientRow("L", (), 0.0, 145.1, tol),
            GradientRow("W", (8, 8), 0.2113, 2.029, tol),
            GradientRow("x", (20, 4, 5), 1.11e-16, 0.0, tol),
        ),
        actual_name="manual bptt",
        reference_name="torch.autograd",
        dtype=np.dtype(np.float64),
    )
    assert str(report) == "\n".join([
        "manual bptt vs torch.autograd (float64)",
        "name  shape      max|Δ|   max|ref|      ratio    allowed",
        "L     scalar  0.000e+00  1.451e+02  0.000e+00  1.451e-09    ok",
        "W     8x8     2.113e-01  2.029e+00  1.041e-01  2.039e-11  FAIL",
        "x     20x4x5  1.110e-16  0.000e+00        inf  1.000e-13    ok",
        "1 of 3 FAIL: W (max|Δ| <= 1e-11·max|ref| + 1e-13)",
    ])
    agreeing = GradientReport(rows=report.rows[:1], actual_name="a", reference_name="b",
                              dtype=np.dtype(np.float32))
    assert str(agreeing).splitlines()[0] == "a vs b (float32)"
    assert str(agreeing).splitlines()[-1] == "all agree (max|Δ| <= 1e-11·max|ref| + 1e-13)"


def test_defaults_rows_and_loss_row():
    L, g = grads()
    report = compare_grads(g, g)
    assert str(report).splitlines()[0] == "manual vs reference (float64)"
    assert [row.name for row in report.rows] == ["U", "W", "V", "b", "c", "h0", "x"]
    with_loss = compare_grads(g, g, loss=L, reference_loss=L)
    assert [row.name for row in with_loss.rows] == ["L", "U", "W", "V", "b", "c", "h0", "x"]
    # One loss alone is not a comparison: no L row.
    assert compare_grads(g, g, loss=L).rows[0].name == "U"
    assert compare_grads(g, g, reference_loss=L).rows[0].name == "U"
    mismatch = compare_grads(altered(g, "c", lambda c: c[:1]), g)["c"]
    assert mismatch.shape == (1,) and mismatch.max_abs_reference == np.abs(g.c).max()


def test_every_failing_row_is_named():
    _, g = grads()
    report = compare_grads(altered(g, "V", lambda V: V + 1), altered(g, "x", lambda x: x - 1))
    assert str(report).splitlines()[-1] == (
        "2 of 7 FAIL: V, x (max|Δ| <= 1e-11·max|ref| + 1e-13)"
    )


# ---- The verdict with a rounding estimate (ill-conditioned problems) ----------------


def row_with(diff, reference, rounding, dtype=np.float64):
    from manual_bptt import GradientRow

    return GradientRow("W", (2, 2), diff, reference, TOLERANCES[np.dtype(dtype)], rounding)


@pytest.mark.parametrize("diff, rounding, verdict, label", [
    (1e-12, None, "ok", "ok"),                       # within the fixed tolerance
    (1e-12, 0.5, "ok", "ok"),                        # ... whatever the estimate says
    (1e-6, None, "FAIL", "FAIL"),                    # beyond it, nothing estimated
    (1e-6, 2e-6, "ok (ill-conditioned)", "ok (ill-conditioned: ~5 digits meaningful)"),
    (1e-2, 2e-2, "ok (ill-conditioned)", "ok (ill-conditioned: ~1 digit meaningful)"),
    (3e-6, 2e-6, "FAIL", "FAIL"),                    # beyond what rounding explains
    (1e-6, 0.1, "no meaningful digit", "no meaningful digit"),   # a tenth of max|ref|: no digit
    (5.0, 0.1, "no meaningful digit", "no meaningful digit"),    # ... even far off: no guessing
    (np.nan, 2e-6, "FAIL", "FAIL"),                  # NaN is a FAIL, never "no digit"
    (np.inf, 0.5, "FAIL", "FAIL"),                   # a shape mismatch (inf) too
])
def test_the_verdict_of_a_row(diff, rounding, verdict, label):
    row = row_with(diff, 1.0, rounding)
    assert (row.verdict, row.label) == (verdict, label)
    assert row.ok == verdict.startswith("ok")


def test_digits_and_the_widened_allowance():
    row = row_with(1e-6, 1.0, 2e-6)
    assert row.digits == 5 and row.allowed == 2e-6
    assert row_with(1e-6, 1.0, 1e-20).allowed == TOLERANCES[np.dtype(np.float64)].allowed(1.0)
    assert row_with(0.0, 1.0, 0.0).digits == 16 and row_with(0.0, 0.0, 1e-3).digits == 0
    assert row_with(0.0, 1.0, None).digits is None


def test_the_table_with_rounding_estimates():
    from manual_bptt import GradientReport, GradientRow

    tol = TOLERANCES[np.dtype(np.float64)]
    report = GradientReport(
        rows=(
            GradientRow("L", (), 1e-12, 145.1, tol, 1e-10),
            GradientRow("U", (8, 5), 1e-5, 2.0, tol, 4e-5),
            GradientRow("W", (8, 8), 0.5, 2.0, tol, 0.4),
            GradientRow("x", (20, 4, 5), 1e-3, 1.0, tol, 1e-6),
        ),
        actual_name="manual bptt",
        reference_name="torch.autograd",
        dtype=np.dtype(np.float64),
    )
    assert not report.ok
    assert [r.name for r in report.failures()] == ["x"] and [r.name for r in report.undetermined()] == ["W"]
    assert str(report) == "\n".join([
        "manual bptt vs torch.autograd (float64)",
        "name  shape      max|Δ|   max|ref|      ratio    allowed",
        "L     scalar  1.000e-12  1.451e+02  6.892e-15  1.451e-09  ok",
        "U     8x5     1.000e-05  2.000e+00  5.000e-06  4.000e-05  ok (ill-conditioned: ~4 digits meaningful)",
        "W     8x8     5.000e-01  2.000e+00  2.500e-01  4.000e-01  no meaningful digit",
        "x     20x4x5  1.000e-03  1.000e+00  1.000e-03  1.000e-06  FAIL",
        "1 of 4 FAIL: x; 1 without a meaningful digit on this problem: W "
        "(max|Δ| <= 1e-11·max|ref| + 1e-13, or within what rounding explains on this problem)",
    ])
    only_undetermined = GradientReport(rows=report.rows[:3], actual_name="a", reference_name="b",
                                       dtype=np.dtype(np.float64))
    assert not only_undetermined.ok and not only_undetermined.failures()
    assert str(only_undetermined).splitlines()[-1].startswith("1 without a meaningful digit on this problem: W (")


def test_compare_grads_takes_the_estimate_per_row():
    _, g = grads()
    off = altered(g, "V", lambda V: V * (1 + 1e-6))
    assert not compare_grads(off, g).ok
    widened = compare_grads(off, g, rounding={"V": 1e-5 * np.abs(g.V).max()})
    assert widened.ok and widened["V"].verdict == "ok (ill-conditioned)"
    assert widened["U"].rounding is None and widened["U"].verdict == "ok"


# ---- A shape mismatch, the worst entry, the repr (issue 20) --------------------------------


def test_a_transposed_gradient_is_a_shape_mismatch_and_still_a_fail():
    L, g = grads()
    report = compare_grads(altered(g, "U", lambda U: U.T.copy()), g, loss=L, reference_loss=L)
    row = report["U"]
    assert g.U.shape == (8, 5)
    assert row.label == "shape mismatch: got (5, 8), expected (8, 5)"
    assert row.verdict == "FAIL" and not row.ok and not report.ok and report.failures() == (row,)
    line = next(line for line in str(report).splitlines() if line.startswith("U "))
    # No max|Δ| or ratio to show: no entries were compared (not "inf").
    assert line.split()[:5] == ["U", "5x8", "-", f"{np.abs(g.U).max():.3e}", "-"], line
    assert line.endswith("shape mismatch: got (5, 8), expected (8, 5)") and "inf" not in line
    assert str(report).splitlines()[-1].startswith("1 of 8 FAIL: U (")


def test_every_fail_row_names_its_worst_entry_and_both_values():
    import dataclasses

    L, g = grads()

    def nudged(index, by):
        def change(a):
            a[index] += by
            return a
        return change

    wrong = altered(altered(altered(g, "W", nudged((1, 2), 0.5)), "x", nudged((2, 1, 3), -1.0)), "h0", nudged((1, 4), 2.0))
    report = compare_grads(wrong, g, actual_name="mine", reference_name="torch.autograd")
    lines = str(report).splitlines()
    under = lines[lines.index(next(line for line in lines if line.startswith("x "))) + 1:-1]
    assert under == [
        f"worst W[1, 2]: mine {g.W[1, 2] + 0.5:.6e}, torch.autograd {g.W[1, 2]:.6e}",
        f"worst h0[1, 4] (the initial state): mine {g.h0[1, 4] + 2.0:.6e}, torch.autograd {g.h0[1, 4]:.6e}",
        f"worst x[2, 1, 3]: mine {g.x[2, 1, 3] - 1.0:.6e}, torch.autograd {g.x[2, 1, 3]:.6e}",
    ]
    assert report["W"].worst_index == (1, 2) and report["W"].worst_reference == g.W[1, 2]
    # Told which axis counts time (the kit knows the layout), x's line gives the step: x[2] is x(3).
    timed = dataclasses.replace(report, time_axes=(("x", 0),))
    assert f"worst x[2, 1, 3] (time step t = 3): mine {g.x[2, 1, 3] - 1.0:.6e}" in str(timed)
    # Rows that agree print no such line; a NaN is the worst entry wherever it is.
    assert "worst" not in str(compare_grads(g, g))
    nan = compare_grads(altered(g, "b", nudged((6,), np.nan)), g)
    assert nan["b"].worst_index == (6,) and "worst b[6]: manual nan, reference " in str(nan)


def test_a_report_at_a_prompt_is_its_table():
    L, g = grads()
    report = compare_grads(altered(g, "W", lambda W: W + 1), g, loss=L, reference_loss=L)
    assert repr(report) == str(report)
    assert "reason" not in repr(report) and len(repr(report)) < 1000
    assert repr(report["W"]) == (f"<GradientRow W 8x8: max|Δ| {1.0:.3e}, max|ref| {np.abs(g.W).max():.3e}, FAIL>")
    assert "reason" not in repr(report.rows)
