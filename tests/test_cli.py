"""bptt-check, the main job: prints the table, exits 0 on agreement and 1 otherwise."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")

import torch_reference.autograd as autograd  # noqa: E402
from torch_reference.cli import main  # noqa: E402


def test_default_problem_agrees(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "random_problem(T=20, B=4, I=5, H=8, O=6, seed=0, dtype='float64'" in out
    assert "all agree" in out


@pytest.mark.parametrize("argv", [
    ["--dtype", "float32", "--nonlinearity", "relu", "--loss", "mse", "--reduction", "mean"],
    ["-T", "1", "-B", "1", "-I", "1", "-H", "1", "-O", "1", "--zero-h0"],
    ["--batch-first", "--seed", "3", "-T", "40"],
])
def test_options_reach_the_problem(argv, capsys):
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "all agree" in out


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


@pytest.mark.parametrize("argv", [["-T", "0"], ["--loss", "nll"], ["--dtype", "float16"]])
def test_bad_arguments_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "error" in capsys.readouterr().err


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
