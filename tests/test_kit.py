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


# ---- What a failure prints (issue 20) ---------------------------------------------------


def run_as_printed(line: str, **defined) -> str:
    """Exec a reproduce line in a fresh namespace (holding only `defined`), as a reader pasting it
    would; what it prints."""
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(line, dict(defined))
    return printed.getvalue()


def reproduce_line(result) -> str:
    (line,) = [line for line in str(result).splitlines() if line.startswith("reproduce: ")]
    return line.removeprefix("reproduce: ")


def test_the_reproduce_line_runs_as_printed_its_imports_included():
    result = check_bptt(transposed_dW, max_examples=30)
    line = reproduce_line(result)
    printed = run_as_printed(line)                     # a NameError before: transposed_dW was not imported
    assert line.startswith("from tests.candidates import transposed_dW; ") and line == result.reproduce
    # The witness named, the same table: the reproduction is the failure.
    assert printed.startswith("transposed_dW vs torch.autograd (float64)\n")
    assert printed.rstrip("\n") == str(result.report)
    assert "1 of 8 FAIL: W" in printed


def test_a_local_candidate_is_called_by_its_own_name():
    def vandal(params, x, y, h0=None, **options):
        L, g = bptt(params, x, y, h0, **options)
        return L * 2, g

    result = check_bptt(vandal, max_examples=5)
    line = reproduce_line(result)
    assert line.endswith(".run(compare, manual=vandal))")   # not "...<locals>.vandal", a SyntaxError
    assert "import vandal" not in line and "L" in result.failed_rows
    assert run_as_printed(line, vandal=vandal).startswith("test_a_local_candidate_is_called_by_its_own_name")


def test_the_candidates_exception_comes_with_its_own_frames_only():
    from .candidates import crashes_on_batches

    result = check_bptt(crashes_on_batches, max_examples=50)
    assert not result.ok and result.report is None
    text = str(result)
    assert "Traceback (most recent call last), the candidate's frames:\n" in text
    trace = result.traceback
    assert trace.startswith("Traceback (most recent call last), the candidate's frames:\n")
    assert [line.split(", in ")[1] for line in trace.splitlines() if line.startswith("  File ")] == [
        "crashes_on_batches", "_unbatch"]
    assert trace.rstrip().endswith("IndexError: batch not supported: x has shape (2, 2, 1)")
    for machinery in ("kit.py", "autograd.py", "problems.py", "hypothesis"):
        assert machinery not in trace, machinery
    assert trace.rstrip("\n") in text and text.index("raised IndexError") < text.index("Traceback")
    with pytest.raises(IndexError, match="batch not supported"):   # the line raises the same error
        run_as_printed(reproduce_line(result))


def test_an_error_of_the_kits_own_checks_has_no_candidate_frames():
    result = check_bptt(lambda *a, **k: None, max_examples=1)
    assert reproduce_line(result).endswith("manual=fn))")              # a lambda has no name to call it by
    assert result.error.startswith("TypeError: manual: expected ") and result.traceback is None
    assert "Traceback" not in str(result)


def test_a_transposed_gradient_is_reported_as_a_shape_mismatch():
    from .candidates import transposed_dU

    result = check_bptt(transposed_dU, max_examples=30)
    assert result.failed_rows == ("U",)
    (line,) = [line for line in str(result).splitlines() if line.startswith("U ")]
    H, I = result.problem.recipe["H"], result.problem.recipe["I"]
    assert line.endswith(f"shape mismatch: got ({I}, {H}), expected ({H}, {I})") and "inf" not in line


def test_the_worst_entry_is_printed_under_the_table():
    result = check_bptt(transposed_dW, max_examples=30)
    row = result.report["W"]
    i, j = row.worst_index
    assert (f"worst W[{i}, {j}]: transposed_dW {row.worst_actual:.6e}, torch.autograd {row.worst_reference:.6e}"
            in str(result).splitlines())
    assert abs(row.worst_actual - row.worst_reference) == pytest.approx(row.max_abs_diff)


def test_a_result_at_a_prompt_is_its_text_and_in_a_notebook_a_table():
    failed = check_bptt(transposed_dW, max_examples=30)
    passed = check_bptt(bptt, max_examples=3)
    assert repr(failed) == str(failed) and repr(passed) == str(passed)
    assert "KitResult(" not in repr(failed) and "reason" not in repr(failed)
    html = failed._repr_html_()
    assert html.startswith("<div><p><b>transposed_dW</b> FAILs") and failed.report._repr_html_() in html
    assert '<tr class="fail"' in html and "<p>rows that FAIL: W</p>" in html
    from html import escape

    assert f"<pre>{escape(failed.reproduce)}</pre>" in html
    assert passed._repr_html_() == "<p>bptt agrees with torch.autograd on 3 problems</p>"
    from .candidates import crashes_on_batches

    crashed = check_bptt(crashes_on_batches, max_examples=50)
    assert f"<pre>{escape(crashed.traceback)}</pre>" in crashed._repr_html_()
