"""The test kit: it finds a wrong bptt, shrinks the problem, and says which rows fail."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("torch")

from manual_bptt import bptt  # noqa: E402
from manual_bptt.verification.problems import random_problem  # noqa: E402
from torch_reference import compare  # noqa: E402
from torch_reference.kit import assert_bptt_correct, check_bptt  # noqa: E402

from .candidates import first_step_dropped, transposed_dW  # noqa: E402


def test_the_projects_own_bptt_passes_and_says_how_much_was_tried():
    result = check_bptt(bptt, max_examples=20)
    assert result.ok and result.tried == 20 and result.failed_rows == ()
    assert str(result) == "bptt agrees with torch.autograd on 20 problems"


def test_no_false_alarm_on_ill_conditioned_problems():
    result = check_bptt(bptt, max_examples=30, ill_conditioned=True)
    assert result.ok, str(result)


def test_a_transposed_dW_is_found_and_shrunk_to_the_smallest_problem():
    result = check_bptt(transposed_dW, max_examples=30)
    assert not result.ok and result.failed_rows == ("W",)
    # The least that shows it: H = 2 (a 1x1 dW is its own transpose), O = 2 (one class
    # has no gradient), T = 2 with h0 = 0 (at T = 1, dW = da(1) h(0)ᵀ is zero).
    assert repr(result.problem) == (
        "random_problem(T=2, B=1, I=1, H=2, O=2, seed=0, dtype='float64', nonlinearity='tanh', "
        "loss='cross_entropy', reduction='sum', batch_first=False, batched=True, random_h0=False)"
    )
    text = str(result)
    assert text.startswith("transposed_dW FAILs; the smallest failing problem found:\n    random_problem(")
    assert "rows that FAIL: W\n" in text and ".run(compare, manual=transposed_dW)" in text


def test_the_answer_does_not_depend_on_the_loaded_hypothesis_profile():
    """A caller's profile without shrinking (tests/conftest.py's "mutation" one) still gets the
    smallest problem: the kit pins its own phases."""
    from hypothesis import Phase, settings

    loaded = settings.get_current_profile_name()
    settings.register_profile("kit-no-shrink", phases=(Phase.generate,), derandomize=True, database=None)
    settings.load_profile("kit-no-shrink")
    try:
        result = check_bptt(transposed_dW, max_examples=30)
    finally:
        settings.load_profile(loaded)
    assert result.problem.recipe["T"] == 2 and result.problem.recipe["H"] == 2, repr(result.problem)


def test_a_dropped_step_is_found_on_the_ill_conditioned_problems_too():
    result = check_bptt(first_step_dropped, max_examples=30, ill_conditioned=True)
    assert not result.ok and set(result.failed_rows) <= {"U", "W", "b", "h0", "x"}
    assert result.problem.recipe["T"] == 1   # one step is enough: then nothing is computed at all


def test_a_candidate_that_raises_is_reported_with_its_error():
    def crashes_on_batches(params, x, y, h0=None, **options):
        if np.ndim(x) == 3 and np.shape(x)[1] > 1:
            raise IndexError("batch not supported")
        return bptt(params, x, y, h0, **options)

    result = check_bptt(crashes_on_batches, max_examples=50)
    assert not result.ok and result.report is None
    with pytest.raises(IndexError):               # the problem reproduces the crash
        result.problem.run(crashes_on_batches)
    assert "crashes_on_batches raised IndexError: batch not supported" in str(result)


def test_pinned_options_are_the_only_ones_drawn():
    seen = set()

    def recording(params, x, y, h0=None, **options):
        seen.add((options["loss"], options["batch_first"], np.ndim(x), params.dtype.name))
        return bptt(params, x, y, h0, **options)

    check_bptt(recording, max_examples=15, loss="mse", layout="time_major", dtype="float32")
    assert seen == {("mse", False, 3, "float32")}


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match=r"^fn: expected a callable with bptt's signature, got int$"):
        check_bptt(3)
    with pytest.raises(ValueError, match=r"^colour: not an option the kit can pin; expected one of dtype, "):
        check_bptt(bptt, colour="red")


def test_the_pytest_helper_fails_with_the_text():
    assert_bptt_correct(bptt, max_examples=5)
    with pytest.raises(AssertionError, match="rows that FAIL: W"):
        assert_bptt_correct(transposed_dW, max_examples=5)


def test_compare_names_the_candidate_and_shields_the_arguments():
    problem = random_problem(T=3, B=2, loss="mse")
    originals = [problem.x.copy(), problem.y.copy(), problem.h0.copy(), problem.params.W.copy()]

    def vandal(params, x, y, h0=None, **options):
        result = bptt(params, x, y, h0, **options)
        for array in (x, y, h0, params.W):
            array[...] = 0
        return result

    report = problem.run(compare, manual=vandal)
    name = "test_compare_names_the_candidate_and_shields_the_arguments.<locals>.vandal"
    assert report.ok and str(report).startswith(f"{name} vs torch.autograd")
    for want, got in zip(originals, (problem.x, problem.y, problem.h0, problem.params.W)):
        np.testing.assert_array_equal(got, want)


def test_compare_rejects_what_is_not_a_bptt():
    problem = random_problem(T=2, B=1)
    with pytest.raises(TypeError, match=r"^manual: expected a callable with bptt's signature, got str$"):
        problem.run(compare, manual="bptt")
    with pytest.raises(TypeError, match=r"^manual: expected .*to return \(L, RNNGrads\) like bptt, got \(float, dict\)$"):
        problem.run(compare, manual=lambda *a, **k: (1.0, dict(bptt(*a, **k)[1].items())))


def test_manual_bptt_needs_neither_torch_nor_hypothesis_and_the_strategies_say_what_is_missing():
    script = textwrap.dedent(
        """
        import sys

        class Blocked:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "hypothesis"):
                    raise ImportError(name + " is blocked in this test")

        sys.meta_path.insert(0, Blocked())
        import manual_bptt
        from manual_bptt.verification.problems import random_problem
        from manual_bptt.verification.conditioning import rounding_spread
        random_problem(T=3, B=2, weight_scale=4).run(rounding_spread)
        try:
            import manual_bptt.verification.strategies
        except ImportError as error:
            print(error)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "manual_bptt.verification.strategies needs hypothesis, which is not installed: "
        "pip install 'manual-bptt[kit]' (or pip install hypothesis)"
    )


def test_the_kit_module_example_runs():
    import doctest

    import torch_reference.kit as kit

    failures, tried = doctest.testmod(kit, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert tried >= 3 and failures == 0
