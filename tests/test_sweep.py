"""bptt sweep: repeatable recipes over every option, a summary, and exit 1 on a FAIL."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("tqdm")

from manual_bptt.inputs.validation import LOSSES, NONLINEARITIES, REDUCTIONS  # noqa: E402
from torch_reference.commands import main as bptt_main  # noqa: E402
from torch_reference.sweep import LAYOUTS, draw_recipe, option_values, run_sweep  # noqa: E402

# Enough problems to meet every option value and a few failures, few enough to
# keep the suite quick (about 20 ms a problem).
PROBLEMS = 50


def test_a_correct_implementation_sweeps_clean_and_exits_zero(capsys):
    assert bptt_main(["sweep", "-n", str(PROBLEMS), "--seed", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{PROBLEMS} problems, 0 FAIL")
    assert "failures" not in out


@pytest.mark.parametrize("candidate, row", [("transposed_W", "W"), ("V_off_by_1e_3", "V")])
def test_a_wrong_implementation_exits_non_zero_with_reproductions(candidate, row, capsys):
    code = bptt_main(["sweep", "-n", str(PROBLEMS), "--seed", "1", "--no-progress",
                      "--manual", f"tests.wrong_bptt:{candidate}"])
    out = capsys.readouterr().out
    assert code == 1
    failure_lines = [line for line in out.splitlines() if line.startswith("  random_problem(")]
    assert failure_lines and all(f"FAIL {row}" in line for line in failure_lines)
    # Each line rebuilds a problem on which the candidate really fails.
    from manual_bptt.verification.problems import random_problem  # noqa: F401  (used by eval)
    from torch_reference.sweep import check_one
    from tests.wrong_bptt import V_off_by_1e_3, transposed_W

    wrong = {"transposed_W": transposed_W, "V_off_by_1e_3": V_off_by_1e_3}[candidate]
    rebuilt = eval(failure_lines[0].split("  #")[0].strip())
    assert not check_one(rebuilt.recipe, wrong).ok


def test_an_implementation_that_raises_is_a_failure(capsys):
    assert bptt_main(["sweep", "-n", "3", "--no-progress", "--manual", "tests.wrong_bptt:raises"]) == 1
    assert "RuntimeError: this candidate always raises" in capsys.readouterr().out


def test_worker_processes_give_the_same_summary_as_one_process():
    one = run_sweep(24, seed=3, jobs=1, manual="tests.wrong_bptt:transposed_W", progress=False)
    two = run_sweep(24, seed=3, jobs=2, manual="tests.wrong_bptt:transposed_W", progress=False)
    assert one.table() == two.table()
    assert not one.ok


def test_recipes_are_repeatable_and_cover_every_option():
    draw = lambda seed: [draw_recipe(np.random.default_rng(seed)) for _ in range(1)]  # noqa: E731
    assert draw(7) == draw(7)
    rng = np.random.default_rng(0)
    seen = {}
    for _ in range(400):
        for option, value in option_values(draw_recipe(rng)).items():
            seen.setdefault(option, set()).add(value)
    assert seen == {"dtype": {"float32", "float64"}, "nonlinearity": set(NONLINEARITIES),
                    "loss": set(LOSSES), "reduction": set(REDUCTIONS), "layout": set(LAYOUTS),
                    "h0": {"random", "None"}}


def test_summary_counts_and_worst_ratios():
    summary = run_sweep(PROBLEMS, seed=1, manual="tests.wrong_bptt:V_off_by_1e_3", progress=False)
    assert summary.count == PROBLEMS
    for option, counter in summary.per_option.items():
        assert sum(counter.values()) == PROBLEMS, option
    # A relative error of 1e-3 on V shows as a worst ratio of about 1e-3 for V alone.
    for dtype in ("float64", "float32"):
        assert summary.worst[("V", dtype)][0] == pytest.approx(1e-3, rel=1e-2)
        assert summary.worst[("W", dtype)][0] < 1e-3


def test_bad_manual_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        bptt_main(["sweep", "--manual", "no_such_module_here:f"])
    assert exited.value.code == 2
    assert "--manual" in capsys.readouterr().err


def test_networks_sweep_clean_and_a_wrong_network_candidate_fails(capsys):
    from torch_reference.sweep import main

    assert main(["--networks", "-n", "40", "--seed", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "40 problems, 0 FAIL" in out and "weight_hh" in out and "cell " in out
    assert main(["--networks", "-n", "40", "--seed", "2", "--no-progress",
                 "--manual", "tests.wrong_bptt:reverse_direction_W_transposed"]) == 1
    out = capsys.readouterr().out
    assert "random_network_problem(" in out and "FAIL weight_hh_l" in out
