"""The kit on networks (issue 20): network problems from plain values, a reproduce line that runs
as printed, a transposed weight as a shape mismatch, the worst entry's time step in either layout."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("torch")

from manual_bptt import NetworkGrads, bptt  # noqa: E402
from manual_bptt.verification.strategies import network_problems  # noqa: E402
from torch_reference.kit import check_bptt  # noqa: E402

from .candidates import dx_after_step_1_dropped  # noqa: E402
from .test_kit import reproduce_line, run_as_printed  # noqa: E402

#: Small networks, one layer one way: each search stays a few seconds.
SMALL = dict(num_layers=1, bidirectional=False, max_T=4, max_B=2, max_size=3)


def test_network_problems_take_plain_values_in_the_kit():
    seen = set()

    def recording(params, x, y, h0=None, **options):
        seen.add((params.cell, options["target"], params.dtype.name, options["batch_first"]))
        return bptt(params, x, y, h0, **options)

    result = check_bptt(recording, max_examples=8,
                        problems=network_problems(cell="lstm", target="last", dtype="float32", layout="time_major",
                                                  **SMALL))
    assert result.ok and result.tried == 8
    assert seen == {("lstm", "last", "float32", False)}


@pytest.mark.parametrize("layout, axis", [("time_major", 0), ("batch_first", 1)])
def test_a_network_failure_reproduces_as_printed_and_names_the_time_step(layout, axis):
    result = check_bptt(dx_after_step_1_dropped, max_examples=30,
                        problems=network_problems(cell="gru", layout=layout, **SMALL))
    assert not result.ok and result.failed_rows == ("x",)
    assert repr(result.problem).startswith("random_network_problem(T=2, ")    # the least that shows it
    line = reproduce_line(result)
    printed = run_as_printed(line)                                 # a NameError before: random_problem imported
    assert line.startswith("from tests.candidates import dx_after_step_1_dropped; "
                           "from manual_bptt.verification.problems import random_network_problem; ")
    assert line == result.reproduce
    assert printed.startswith("dx_after_step_1_dropped vs torch.autograd (float64)\n")
    assert re.search(r"\n1 of \d+ FAIL: x \(", printed)
    # Only step 1's ∂L/∂x survives: the worst entry is at t = 2, wherever the layout puts time.
    row = result.report["x"]
    assert row.worst_index[axis] == 1
    index = ", ".join(map(str, row.worst_index))
    assert [line for line in str(result).splitlines() if line.startswith("worst ")] == [
        f"worst x[{index}] (time step t = 2): dx_after_step_1_dropped {row.worst_actual:.6e}, "
        f"torch.autograd {row.worst_reference:.6e}"]


def transposed_head(params, x, y, h0=None, **options):
    """∂L/∂head.weight returned transposed: (D·H_out, O) for (O, D·H_out)."""
    L, g = bptt(params, x, y, h0, **options)
    wrong = {**g.state_dict(), "head.weight": g.params["head.weight"].T.copy()}
    return L, NetworkGrads(params=wrong, h0=g.h0, x=g.x, c0=g.c0)


def test_a_transposed_network_gradient_is_a_shape_mismatch():
    result = check_bptt(transposed_head, max_examples=30, problems=network_problems(cell="rnn_tanh", **SMALL))
    assert result.failed_rows == ("head.weight",)
    O, H = result.problem.recipe["O"], result.problem.recipe["H"]
    (line,) = [line for line in str(result).splitlines() if line.startswith("head.weight ")]
    assert line.endswith(f"shape mismatch: got ({H}, {O}), expected ({O}, {H})") and "inf" not in line
    assert "worst head.weight" not in str(result)       # no entries compared, so no worst entry
