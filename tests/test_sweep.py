"""bptt sweep: repeatable recipes over every option, a summary, and exit 1 on a FAIL."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("tqdm")

from manual_bptt.inputs.validation import LOSSES, NONLINEARITIES, REDUCTIONS  # noqa: E402
from torch_reference.commands import main as bptt_main  # noqa: E402
from torch_reference.sweep import (LAYOUTS, draw_network_recipe, draw_recipe, option_values,  # noqa: E402
                                   run_sweep)

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


# ---- what issue 20 found: a candidate beside the user, pinned options, the order of failures, the repr ----

def tanh_time_major_only(params, x, y, h0=None, *, nonlinearity="tanh", batch_first=False, **options):
    """A candidate that supports tanh, time-major, batched problems alone (and is right on them)."""
    from manual_bptt import bptt

    if nonlinearity != "tanh" or batch_first or x.ndim != 3:
        raise NotImplementedError(f"only tanh, time-major, batched: got {nonlinearity}, batch_first={batch_first}, "
                                  f"x.ndim={x.ndim}")
    return bptt(params, x, y, h0, nonlinearity=nonlinearity, batch_first=batch_first, **options)


CANDIDATE_SOURCE = '''
from manual_bptt import bptt as reference


def bptt(params, x, y, h0=None, **options):
    return reference(params, x, y, h0, **options)
'''


def test_manual_finds_its_module_in_the_current_directory(tmp_path, monkeypatch, capsys):
    # A fresh name, so that no earlier import (and no entry of sys.path) can supply it.
    module = f"candidate_beside_the_user_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(CANDIDATE_SOURCE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, module, raising=False)
    path_before = list(sys.path)
    try:
        code = bptt_main(["sweep", "-n", "3", "--no-progress", "--manual", f"{module}:bptt"])
    finally:
        sys.modules.pop(module, None)
    assert code == 0, capsys.readouterr().err
    assert capsys.readouterr().out.startswith("3 problems, 0 FAIL")
    assert sys.path == path_before                          # the current directory was first only for the import


def test_pinned_options_are_drawn_from_their_pinned_values_alone():
    pins = {"nonlinearity": ["tanh"], "layout": ["time_major", "unbatched"], "dtype": ["float64"]}
    rng = np.random.default_rng(0)
    seen = {}
    for _ in range(300):
        for option, value in option_values(draw_recipe(rng, pins)).items():
            seen.setdefault(option, set()).add(value)
    assert seen["nonlinearity"] == {"tanh"} and seen["layout"] == {"time_major", "unbatched"}
    assert seen["dtype"] == {"float64"}
    assert seen["loss"] == set(LOSSES) and seen["reduction"] == set(REDUCTIONS)    # the rest still drawn
    # Networks: the cell, the lengths and the target too.
    net_pins = {"cell": ["lstm", "gru"], "lengths": ["none"], "target": ["last"], "layout": ["batch_first"]}
    seen = {}
    for _ in range(200):
        for option, value in option_values(draw_network_recipe(rng, net_pins)).items():
            seen.setdefault(option, set()).add(value)
    assert {cell.split("+")[0] for cell in seen["cell"]} == {"lstm", "gru"}
    assert seen["lengths"] == {"none"} and seen["target"] == {"last"} and seen["layout"] == {"batch_first"}


def test_unpinned_recipes_are_those_of_before():
    """No pin draws exactly what the sweep drew before pins existed: a seed names the same problems."""
    a, b = np.random.default_rng(11), np.random.default_rng(11)
    assert [draw_recipe(a) for _ in range(20)] == [draw_recipe(b, {}) for _ in range(20)]


def test_a_tanh_only_time_major_candidate_pinned_so_gets_no_fail(capsys):
    candidate = "tests.test_sweep:tanh_time_major_only"
    assert bptt_main(["sweep", "-n", "30", "--seed", "2", "--no-progress", "--manual", candidate]) == 1
    assert "NotImplementedError" in capsys.readouterr().out          # unpinned, it meets what it never claimed
    code = bptt_main(["sweep", "-n", "30", "--seed", "2", "--no-progress", "--manual", candidate,
                      "--nonlinearity", "tanh", "--layout", "time_major"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("30 problems, 0 FAIL\ndrawn only from nonlinearity tanh; layout time_major\n")
    assert "relu" not in out and "batch_first" not in out and "unbatched" not in out


def test_pins_as_comma_lists_and_repeated_options_are_the_same_sweep(capsys):
    assert bptt_main(["sweep", "-n", "6", "--no-progress", "--layout", "time_major,unbatched", "--loss", "mse"]) == 0
    comma = capsys.readouterr().out.split("\n\n")[:-1]                # all but the elapsed time
    assert bptt_main(["sweep", "-n", "6", "--no-progress", "--layout", "unbatched", "--layout", "time_major",
                      "--loss", "mse"]) == 0
    assert capsys.readouterr().out.split("\n\n")[:-1] == comma
    assert comma[0].endswith("drawn only from loss mse; layout time_major, unbatched")


@pytest.mark.parametrize("argv, says", [
    (["--layout", "sideways"], "argument --layout: expected one or more of time_major, batch_first, unbatched"),
    (["--dtype", "float64,float16"], "argument --dtype: expected one or more of float64, float32 (comma-separated), "
                                     "got 'float64,float16'"),
    (["--cell", "lstm"], "--cell: an option of --networks alone; add --networks"),
    (["--networks", "--nonlinearity", "relu"], "--nonlinearity: not an option of --networks, whose cell says it "
                                               "(--cell rnn_tanh or rnn_relu)"),
])
def test_a_bad_pin_is_a_usage_error_before_any_problem(argv, says, capsys, monkeypatch):
    import torch_reference.sweep as sweep

    monkeypatch.setattr(sweep, "run_sweep", lambda *a, **k: pytest.fail("a problem was run"))
    with pytest.raises(SystemExit) as exited:
        bptt_main(["sweep", *argv])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("bptt sweep: error: ") and says in err, err


def test_run_sweep_refuses_a_bad_pin_naming_it():
    with pytest.raises(ValueError, match=r"^cell: not an option a sweep of the one-layer RNN can pin"):
        run_sweep(1, pins={"cell": ["lstm"]}, progress=False)
    with pytest.raises(ValueError, match=r"^layout: expected values among time_major, batch_first, unbatched, "
                                         r"got \['sideways'\]"):
        run_sweep(1, pins={"layout": ["sideways"]}, progress=False)
    with pytest.raises(ValueError, match=r"^dtype: expected values among .*, got \[\]"):
        run_sweep(1, pins={"dtype": []}, progress=False)
    with pytest.raises(TypeError, match=r"^loss: expected a sequence of values, got the string 'mse'"):
        run_sweep(1, pins={"loss": "mse"}, progress=False)


def test_failures_are_listed_by_size_not_as_text():
    table = run_sweep(40, seed=6, manual="tests.wrong_bptt:raises", progress=False).table()
    listed = [line for line in table.splitlines() if line.startswith("  random_problem(")]
    sizes = [tuple(int(re.search(rf"\b{name}=(\d+)", line).group(1)) for name in "TBIHO") for line in listed]
    assert len(sizes) == 40 and sizes == sorted(sizes)
    assert min(T for T, *_ in sizes) < 10 <= max(T for T, *_ in sizes)      # where text puts T=10 before T=2


def test_the_summary_at_a_prompt_is_its_table():
    summary = run_sweep(5, seed=1, manual="tests.wrong_bptt:transposed_W", progress=False)
    assert repr(summary) == str(summary) == summary.table()
    assert repr(summary).startswith("5 problems, ") and "SweepSummary(" not in repr(summary)
