"""bptt-check, the main job: prints the table, exits 0 on agreement and 1 otherwise,
2 on a usage error and 3 when the problem overflows."""

from __future__ import annotations

import ast
import dataclasses
import importlib.metadata
import re
import subprocess
import sys

import numpy as np
import pytest

from manual_bptt.verification.problems import random_problem

pytest.importorskip("torch")

import torch_reference.autograd as autograd  # noqa: E402
import torch_reference.cli as cli  # noqa: E402
from torch_reference.cli import main, parser  # noqa: E402


def test_default_problem_agrees(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "random_problem(T=20, B=4, I=5, H=8, O=6, seed=0, dtype='float64'" in out
    assert "all agree" in out


def recipe_printed(out: str) -> dict[str, str]:
    """The keyword arguments of the printed `problem: random_problem(...)` line, as text."""
    line = re.search(r"^problem: random_problem\((.*)\)$", out, re.MULTILINE).group(1)
    return dict(re.findall(r"(\w+)=('[^']*'|[^,]+)", line))


# Each option, a non-default value, and what the problem must then record.
OPTIONS = [
    (["-T", "7"], dict(T="7")), (["--seq-len", "3"], dict(T="3")),
    (["-B", "2"], dict(B="2")), (["-I", "3"], dict(I="3")), (["-H", "4"], dict(H="4")),
    (["-O", "2"], dict(O="2")), (["--seed", "5"], dict(seed="5")),
    (["--dtype", "float32"], dict(dtype="'float32'")),
    (["--nonlinearity", "relu"], dict(nonlinearity="'relu'")),
    (["--loss", "mse"], dict(loss="'mse'")), (["--reduction", "mean"], dict(reduction="'mean'")),
    (["--batch-first"], dict(batch_first="True")), (["--zero-h0"], dict(random_h0="False")),
]
DEFAULT_RECIPE = dict(T="20", B="4", I="5", H="8", O="6", seed="0", dtype="'float64'",
                      nonlinearity="'tanh'", loss="'cross_entropy'", reduction="'sum'",
                      batch_first="False", batched="True", random_h0="True")


@pytest.mark.parametrize("argv, changed", OPTIONS, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_each_option_reaches_the_problem_that_is_compared(argv, changed, capsys, monkeypatch):
    compared = []
    real_compare = cli.compare

    def recording_compare(params, x, y, h0, **options):
        compared.append((params, x, y, h0, options))
        return real_compare(params, x, y, h0, **options)

    monkeypatch.setattr(cli, "compare", recording_compare)
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "all agree" in out
    assert recipe_printed(out) == {**DEFAULT_RECIPE, **changed}
    # The arrays compared are those of the recipe printed: rebuild it and check.
    expected = random_problem(**{k: ast.literal_eval(v) for k, v in recipe_printed(out).items()})
    params, x, y, h0, options = compared[0]
    assert options == expected.options
    np.testing.assert_array_equal(x, expected.x)
    np.testing.assert_array_equal(y, expected.y)
    assert (h0 is None) == (expected.h0 is None)
    np.testing.assert_array_equal(params.W, expected.params.W)


def test_several_options_together(capsys):
    argv = ["--dtype", "float32", "--nonlinearity", "relu", "--loss", "mse", "--reduction", "mean",
            "-T", "1", "-B", "1", "-I", "1", "-H", "1", "-O", "1", "--zero-h0", "--batch-first", "--seed", "3"]
    assert main(argv) == 0
    changed = dict(dtype="'float32'", nonlinearity="'relu'", loss="'mse'", reduction="'mean'", T="1", B="1",
                   I="1", H="1", O="1", random_h0="False", batch_first="True", seed="3")
    assert recipe_printed(capsys.readouterr().out) == {**DEFAULT_RECIPE, **changed}


def test_options_are_recorded_in_the_problem_line(capsys):
    main(["--dtype", "float32", "--loss", "mse", "-T", "7", "--batch-first"])
    out = capsys.readouterr().out
    assert "T=7" in out and "dtype='float32'" in out and "loss='mse'" in out and "batch_first=True" in out


def test_a_disagreement_exits_non_zero(monkeypatch, capsys):
    real_bptt = autograd.bptt

    def off_by_a_little(*args, **kwargs):
        L, g = real_bptt(*args, **kwargs)
        return L, type(g)(**{**dict(g.items()), "V": g.V * (1 + 1e-8)})

    monkeypatch.setattr(autograd, "bptt", off_by_a_little)
    assert main([]) == 1
    assert "FAIL" in capsys.readouterr().out


@pytest.mark.parametrize("argv, says", [
    (["-T", "0"], "argument -T/--seq-len: expected a positive integer, got '0'"),
    (["-T", "abc"], "argument -T/--seq-len: expected a positive integer, got 'abc'"),
    (["-B", "2.5"], "argument -B/--batch: expected a positive integer, got '2.5'"),
    (["--seed", "-1"], "argument --seed: expected an integer >= 0, got '-1'"),
    (["--seed", "x"], "argument --seed: expected an integer >= 0, got 'x'"),
    (["--loss", "nll"], "argument --loss: invalid choice: 'nll'"),
    (["--dtype", "float16"], "argument --dtype: invalid choice: 'float16'"),
    (["-H", "10000000"], "H: expected sizes that fit in memory"),
    (["-T", "1000000000000"], "T, B, I: expected sizes that fit in memory"),
    (["--no-such-option"], "unrecognized arguments: --no-such-option"),
])
def test_bad_arguments_are_usage_errors(argv, says, capsys, monkeypatch):
    monkeypatch.setattr(cli, "compare", lambda *a, **k: pytest.fail("compared despite a usage error"))
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == cli.EXIT_CODES["usage"] == 2
    err = capsys.readouterr().err
    assert err.startswith(f"bptt-check: error: {says}"), err
    assert err.count("\n") == 1, err                               # one line, the usage text left to --help
    assert "Traceback" not in err and "_integer" not in err and "parse" not in err, err


def test_exit_codes_are_distinct():
    assert sorted(cli.EXIT_CODES.values()) == [0, 1, 2, 3, 130]


def test_an_overflow_is_reported_as_such_with_its_own_exit_code(capsys, monkeypatch):
    real = cli.random_problem

    def exploding(**kwargs):
        problem = real(**kwargs)                                  # relu, W = 1e10·I: h(t) overflows at t = 31
        H = problem.params.hidden_size
        params = problem.params.replace(W=1e10 * np.eye(H), U=np.zeros_like(problem.params.U))
        return dataclasses.replace(problem, params=params, h0=np.ones_like(problem.h0))

    monkeypatch.setattr(cli, "random_problem", exploding)
    with pytest.warns(RuntimeWarning):
        assert main(["--nonlinearity", "relu", "-T", "40"]) == cli.EXIT_CODES["unchecked"] == 3
    captured = capsys.readouterr()
    assert "FAIL" not in captured.out
    assert captured.err.startswith("bptt-check: overflow: bptt (float64, T = 40): the forward pass overflowed: "
                                   "h(t) = relu(a(t)) is not finite at step t = 31"), captured.err


def test_help_describes_every_option_with_its_default(capsys):
    for action in parser()._actions:
        if action.dest in ("help", "version"):
            continue
        assert action.help, f"{action.option_strings} has no help text"
        if action.default is not False:                           # flags: "off" goes without saying
            assert "(default %(default)s)" in action.help, action.option_strings
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for text in ("(default tanh)", "(default cross_entropy)", "(default sum)", "(default float64)",
                 "(default 20)", "(default 0)", "exit status: 0"):
        assert text in out, text


def test_version(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith(f"bptt-check {importlib.metadata.version('manual-bptt')} (numpy ")


def test_runs_as_a_module():
    done = subprocess.run([sys.executable, "-m", "torch_reference", "-T", "3"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "all agree" in done.stdout
    assert np.isfinite(float(done.stdout.split("L     scalar")[1].split()[1]))


@pytest.mark.parametrize("argv, recorded", [
    (["--num-layers", "3"], "num_layers=3"),
    (["--bidirectional"], "bidirectional=True"),
    (["--no-bias"], "bias=False"),
    (["--lengths", "random"], "lengths='random'"),
    (["--target", "last"], "target='last'"),
    (["--truncate", "4"], "truncate=4"),
    (["--cell", "lstm"], "cell='lstm'"),
    (["--cell", "gru"], "cell='gru'"),
    (["--cell", "lstm", "--proj-size", "3"], "proj_size=3"),
    (["--nonlinearity", "relu", "--num-layers", "2"], "cell='rnn_relu'"),
])
def test_each_network_option_reaches_the_network(argv, recorded, capsys):
    assert main(argv + ["-T", "9"]) == 0
    out = capsys.readouterr().out
    assert "random_network_problem(" in out and recorded in out and "all agree" in out
    rows = [line.split()[0] for line in out.splitlines()[2:-1]]
    if "--num-layers" in argv:
        top = int(argv[argv.index("--num-layers") + 1]) - 1
        assert f"weight_hh_l{top}" in rows and f"weight_hh_l{top + 1}" not in rows
    if "--bidirectional" in argv:
        assert "weight_hh_l0_reverse" in rows
    if "--no-bias" in argv:
        assert not any(row.startswith("bias_") for row in rows)
    if "--proj-size" in argv:
        assert "weight_hr_l0" in rows and "c0" in rows


@pytest.mark.parametrize("argv, named", [
    (["--truncate", "2", "--bidirectional"], "--truncate"),
    (["--proj-size", "2"], "--proj-size"),
    (["--cell", "lstm", "--proj-size", "8"], "--proj-size"),
])
def test_impossible_network_options_are_usage_errors(argv, named, capsys):
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert named in capsys.readouterr().err
# ---- --weight-scale and the verdicts of ill-conditioned problems ---------------------


def test_weight_scale_reaches_the_problem_and_the_verdict(capsys):
    assert main(["--weight-scale", "6", "-T", "60", "-H", "32"]) == 0
    out = capsys.readouterr().out
    assert "weight_scale=6.0)" in out and "ok (ill-conditioned: ~" in out
    assert "all agree (max|Δ| <= 1e-11·max|ref| + 1e-13, or within what rounding explains on this problem)" in out


def test_no_meaningful_digit_exits_3_not_1(capsys):
    assert main(["--weight-scale", "12", "-T", "60", "-H", "32"]) == 3
    out = capsys.readouterr().out
    assert "no meaningful digit" in out and "FAIL" not in out


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "big"])
def test_a_bad_weight_scale_is_a_usage_error(value, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--weight-scale", value])
    assert exited.value.code == 2
    assert "argument --weight-scale: expected a positive" in capsys.readouterr().err


@pytest.mark.parametrize("run_as, says", [
    (lambda argv: main(argv), "bptt-check"),
    (lambda argv: __import__("torch_reference.commands", fromlist=["main"]).main(["check", *argv]), "bptt check"),
])
def test_the_command_names_itself_as_it_was_run(run_as, says, capsys, monkeypatch):
    """`bptt-check --help` says bptt-check; `bptt check --help` says bptt check, and so do its errors."""
    with pytest.raises(SystemExit) as exited:
        run_as(["--help"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: {says} [-h]")
    monkeypatch.setattr(cli, "compare", lambda *a, **k: pytest.fail("compared despite a usage error"))
    with pytest.raises(SystemExit) as exited:
        run_as(["-T", "0"])
    assert exited.value.code == 2
    assert capsys.readouterr().err == f"{says}: error: argument -T/--seq-len: expected a positive integer, got '0'\n"


def test_every_option_of_check_and_explain_has_help_and_a_default():
    pytest.importorskip("matplotlib")
    from tests.figure_checks import assert_help_gives_defaults
    from torch_reference import explain

    assert_help_gives_defaults(parser())
    assert_help_gives_defaults(explain.parser())
