"""The condition-aware verdict: no false alarm on ill-conditioned problems, and
still a FAIL for wrong gradients wherever the problem leaves digits to see them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

pytest.importorskip("torch")

from manual_bptt import bptt  # noqa: E402
from manual_bptt.verification.conditioning import rounding_spread  # noqa: E402
from manual_bptt.verification.problems import random_problem  # noqa: E402
from manual_bptt.verification.report import FAIL, OK, OK_ILL_CONDITIONED, UNDETERMINED  # noqa: E402
from torch_reference import compare  # noqa: E402

from .candidates import dU_off_by_1_percent, first_step_dropped, off_by, transposed_dW  # noqa: E402
from .strategies import ill_conditioned_problems, rnn_problems  # noqa: E402

# The problem of the report that asked for this verdict: PyTorch's initial
# weights with W scaled, T = 60, H = 32, B = 4 (every other size as the default).
def scaled(S, seed, dtype="float64"):
    return random_problem(T=60, B=4, H=32, seed=seed, dtype=dtype, weight_scale=S)


SCALES = (4, 6, 8, 10, 12)
# Each example of these properties runs bptt several times over up to 80 steps,
# and the candidates' property compares three candidates: a third (a sixth) of
# the profile's examples keeps each to a few seconds in CI (100 and 50 there;
# 666 and 333 in the thorough profile).
fewer_examples = settings(max_examples=max(10, settings.default.max_examples // 3))
far_fewer_examples = settings(max_examples=max(6, settings.default.max_examples // 6))
SEEDS = range(3)

#: A planted error counts as visible on a row when it exceeds what rounding
#: explains there this many times over: manual vs torch differ by up to the
#: allowance themselves, so an error of twice it cannot hide in that difference.
VISIBLE = 2.0
WRONG = {
    "transposed dW": (transposed_dW, ("W",)),
    "dU off by 1%": (dU_off_by_1_percent, ("U",)),
    "first step dropped": (first_step_dropped, ("U", "W", "b", "h0", "x")),
}


def planted_error(own, problem, candidate, name):
    """max |candidate - own| on one row: the size of the bug, as the project's bptt sees it."""
    _, wrong = problem.run(candidate)
    return float(np.max(np.abs(getattr(wrong, name) - getattr(own, name))))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("S", SCALES)
def test_own_gradients_are_never_fail_on_scaled_weights(S, dtype):
    for seed in SEEDS:
        report = scaled(S, seed, dtype).run(compare)
        assert not report.failures(), f"W×{S}, seed {seed}:\n{report}"


@fewer_examples
@example(scaled(8, 0))
@example(scaled(12, 0, "float32"))
@given(ill_conditioned_problems())
def test_no_false_alarm_anywhere_in_the_ill_conditioned_range(problem):
    report = problem.run(compare)
    event(f"{problem.recipe['dtype']}: {'undetermined' if report.undetermined() else 'decided'}")
    assert not report.failures(), f"{problem!r}\n{report}"


@far_fewer_examples
@given(ill_conditioned_problems())
def test_wrong_candidates_fail_wherever_the_problem_leaves_digits(problem):
    _, own = problem.run(bptt)
    for what, (candidate, rows) in WRONG.items():
        report = problem.run(compare, manual=candidate)
        for name in rows:
            row = report[name]
            if row.verdict == UNDETERMINED:
                event(f"{what}: {name} undetermined")
                continue
            if planted_error(own, problem, candidate, name) > VISIBLE * row.allowed:
                event(f"{what}: visible")
                assert row.verdict == FAIL, f"{what} not caught on {name}: {problem!r}\n{report}"


@pytest.mark.parametrize("S", [4, 6, 8])
@pytest.mark.parametrize("what", WRONG)
def test_wrong_candidates_fail_up_to_W_times_8_in_float64(what, S):
    candidate, rows = WRONG[what]
    for seed in SEEDS:
        report = scaled(S, seed).run(compare, manual=candidate)
        assert report.failures(), f"{what}, W×{S}, seed {seed}:\n{report}"
        assert {row.name for row in report.failures()} <= set(rows) | {"L"}


def test_at_W_times_12_the_verdict_says_no_digit_instead_of_guessing():
    problem = scaled(12, 0)
    own, wrong = problem.run(compare), problem.run(compare, manual=transposed_dW)
    for report in (own, wrong):
        assert report["W"].verdict == UNDETERMINED and not report.ok
        assert "no meaningful digit" in str(report)
    assert not own.failures()


@fewer_examples
@given(rnn_problems(dtype=st.just("float64")))
def test_at_the_default_scale_one_part_in_1e8_still_fails(problem):
    report = problem.run(compare, manual=off_by(1e-8))
    for row in report.rows:
        if row.max_abs_reference > 1e-4:   # below it, 1e-8 of it is within atol = 1e-13
            assert row.verdict == FAIL, f"{row.name}: {problem!r}\n{report}"


def test_a_well_conditioned_problem_costs_no_estimate(monkeypatch):
    import torch_reference.autograd as autograd

    def forbidden(*args, **kwargs):
        raise AssertionError("the rounding estimate ran on a problem within the fixed tolerance")

    monkeypatch.setattr(autograd, "rounding_spread", forbidden)
    report = random_problem(T=40, H=16).run(compare)
    assert report.ok and all(row.rounding is None for row in report.rows)
    assert str(report).splitlines()[-1] == "all agree (max|Δ| <= 1e-11·max|ref| + 1e-13)"


def test_ill_conditioned_rows_show_their_digits():
    report = scaled(6, 0).run(compare)
    ill = [row for row in report.rows if row.verdict == OK_ILL_CONDITIONED]
    assert ill and report.ok
    for row in ill:
        assert 1 <= row.digits <= 11 and f"~{row.digits} digit" in row.label
        assert row.max_abs_diff <= row.rounding < 0.1 * row.max_abs_reference
    assert {row.verdict for row in report.rows} <= {OK, OK_ILL_CONDITIONED}


def test_the_spread_grows_with_the_scale_and_is_reproducible():
    rel = []
    for S in (1, 4, 8):
        problem = scaled(S, 1)
        spread = problem.run(rounding_spread)
        assert spread == problem.run(rounding_spread)              # seeded: the same verdict every run
        _, g = problem.run(bptt)
        rel.append(spread.spread["W"] / np.abs(g.W).max())
    assert rel[0] < 1e-14 and rel[0] < rel[1] < rel[2]


def test_the_spread_leaves_the_arguments_alone_and_checks_its_own():
    problem = random_problem(T=4, B=2, loss="mse")
    before = [a.copy() for a in (problem.x, problem.y, problem.h0, *dict(problem.params.items()).values())]
    problem.run(rounding_spread)
    after = (problem.x, problem.y, problem.h0, *dict(problem.params.items()).values())
    for want, got in zip(before, after):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match=r"^runs: expected a positive int, got 0$"):
        problem.run(rounding_spread, runs=0)
    with pytest.raises(ValueError, match=r"^ulps: expected a positive finite number, got nan$"):
        problem.run(rounding_spread, ulps=float("nan"))
    with pytest.raises(ValueError, match=r"^loss: "):
        problem.run(rounding_spread, loss="nll")


def test_every_float_input_moves_by_at_most_one_ulp_and_labels_stay(monkeypatch):
    import manual_bptt.verification.conditioning as conditioning

    calls = []

    def recording_bptt(params, x, y, h0, **options):
        calls.append((params, x, y, h0))
        return bptt(params, x, y, h0, **options)

    monkeypatch.setattr(conditioning, "bptt", recording_bptt)
    for loss in ("mse", "cross_entropy"):
        calls.clear()
        problem = random_problem(T=5, B=3, loss=loss, dtype="float32")
        problem.run(rounding_spread)
        (p0, x0, y0, h00), perturbed = calls[0], calls[1:]
        assert len(perturbed) == conditioning.RUNS and p0 is problem.params and x0 is problem.x
        u = np.finfo(np.float32).eps / 2
        moved_ever = {}
        for p, x, y, h0 in perturbed:
            pairs = {n: (getattr(p, n), getattr(p0, n)) for n in "UWVbc"}
            pairs.update(x=(x, x0), h0=(h0, h00))
            if loss == "mse":
                pairs["y"] = (y, y0)
            else:
                assert y is y0                                           # class labels are exact
            moved_fraction = []
            for name, (moved, original) in pairs.items():
                assert moved.dtype == original.dtype == np.float32
                relative = np.abs(moved.astype(float) / original - 1)
                assert relative.max() <= 2 * u, name                     # at most one ulp, rounded once
                moved_fraction.append(np.mean(relative > 0))
                moved_ever[name] = moved_ever.get(name, False) or relative.max() > 0
            # |δ| ≤ u moves an element to a neighbouring float when it crosses half
            # the spacing (u to 2u relative, by the mantissa): a quarter of the time.
            assert 0.1 < np.mean(moved_fraction) < 0.5
        assert all(moved_ever.values()) and len(moved_ever) == (8 if loss == "mse" else 7)

