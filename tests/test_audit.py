"""The precision audit (`bptt audit`, torch_reference.audit): each path's error against the manual
float64 gradients, beside what rounding predicts at its precision.

The witnesses: torch's float64 path must sit at float64 rounding; a path that is planted
wrong by 0.1% must be flagged; the prediction must be within 10× of the error the manual
float32 pass actually makes; and on a saved LSTM the errors the command reports must match a
recomputation written here with nothing but torch.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

from manual_bptt import NetworkParams, bptt  # noqa: E402
from manual_bptt.verification.problems import random_network_problem, random_problem  # noqa: E402
from torch_reference import audit as audit_module  # noqa: E402
from torch_reference.audit import (FLAG_FACTOR, PRECISIONS, PrecisionPath, TorchRecipe, audit,  # noqa: E402
                                   cpu_paths, cuda_paths, default_paths, manual_path, torch_path)
from torch_reference.commands import main  # noqa: E402

from .strategies import network_problems, rnn_problems  # noqa: E402

#: The problems of the properties: every network option but truncation (which the audit refuses).
audited_networks = network_problems(truncated=st.just(False))
#: Manual float32 against float64: the recurrence is what amplifies rounding, so draw its length and scale.
float32_problems = st.one_of(
    network_problems(truncated=st.just(False), dtype=st.just("float64"), max_T=30, max_size=8),
    rnn_problems(dtype=st.just("float64"), nonlinearity=st.just("tanh"), weight_scale=st.floats(1.0, 4.0),
                 max_T=60, max_size=16),
)


#: The prediction models the rounding of the inputs. φ'(a) = 1 − h² computed from a float32 h
#: near ±1 (σ' = σ(1 − σ) near 1 likewise) loses u / (1 − h²) to cancellation, which no
#: perturbation of the inputs shows (h barely moves); it decides a gradient only when a few
#: saturated units carry all of it: one hidden unit, an LSTM projected to one, a step or two.
MIN_H, MIN_STEPS = 4, 4


def saturates_alone(problem) -> bool:
    """Could a few saturated units carry a whole gradient? Fewer than MIN_H units wide (H, or an
    LSTM's projection P) or fewer than MIN_STEPS steps of the batch in all."""
    width = getattr(problem.params, "output_hidden_size", problem.params.hidden_size)
    return width < MIN_H or problem.x.size // problem.params.input_size < MIN_STEPS


def test_the_paths_are_the_issues():
    names = [path.name for path in default_paths()]
    assert names == ["torch float64", "torch float32", "torch float32 (oneDNN off)", "manual float32",
                     "torch bfloat16 autocast", "torch float16", "cuda float32 (cuDNN)",
                     "cuda float32 (TF32 allowed)", "cuda bfloat16 autocast", "cuda float16 autocast"]


@given(problem=audited_networks)
def test_torch_float64_is_at_float64_rounding(problem):
    assume(not saturates_alone(problem))
    report = problem.run(audit, paths=[torch_path("torch float64", "float64", TorchRecipe(torch.float64))])
    for row in report.rows:
        assert row.relative_error <= FLAG_FACTOR * max(row.predicted_error, PRECISIONS["float64"].floor), (
            f"{problem!r}: {row.gradient}: torch float64 is {row.relative_error:.2e} from the manual float64 "
            f"gradient, rounding predicts {row.predicted_error:.2e}")
        assert not row.worse
        # At PyTorch's initial scale these problems are well conditioned: a few hundred u at most.
        assert row.relative_error < 1e-12, f"{problem!r}: {row.gradient}: {row.relative_error:.2e}"


def planted(name: str, factor: float = 1.001) -> PrecisionPath:
    """The manual float32 pass with ∂L/∂`name` scaled by `factor`: a wrong path, by 0.1%."""
    honest = manual_path("manual float32", np.float32)

    def gradients(problem):
        grads = honest.gradients(problem)
        return {**grads, name: grads[name] * np.float32(factor)}

    return PrecisionPath(f"planted ({name} x {factor})", "float32", gradients)


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru"])
def test_a_gradient_scaled_by_1_001_is_flagged(cell):
    problem = random_network_problem(T=20, B=3, I=4, H=6, O=5, cell=cell, num_layers=1, bidirectional=False, seed=3)
    paths = [manual_path("manual float32", np.float32), planted("weight_hh_l0")]
    report = problem.run(audit, paths=paths)
    flagged = [(row.path, row.gradient) for row in report.worse()]
    assert flagged == [(paths[1].name, "weight_hh_l0")], report
    row = report.row(paths[1].name, "weight_hh_l0")
    assert row.relative_error == pytest.approx(1e-3, rel=0.01)       # the 0.1% planted, float32 noise beside it
    assert "worse than its rounding" in str(report)


@given(problem=float32_problems)
def test_the_prediction_is_within_10x_of_the_manual_float32_error(problem):
    # Not where one saturated unit carries a whole gradient (test_a_saturated_unit_is_flagged).
    assume(not saturates_alone(problem))
    report = problem.run(audit, paths=[manual_path("manual float32", np.float32)])
    rows = report.rows
    for row in rows:
        assert row.relative_error <= FLAG_FACTOR * max(row.predicted_error, PRECISIONS["float32"].floor), (
            f"{problem!r}: {row.gradient}: manual float32 error {row.relative_error:.2e}, "
            f"predicted {row.predicted_error:.2e}")
    # The other way round on the worst gradient: a prediction 10× above what happens is no prediction.
    # (A single gradient can come out exact or nearly so by luck; its worst one cannot.)
    worst_error = max(row.relative_error for row in rows)
    worst_prediction = max(row.predicted_error for row in rows)
    assert worst_prediction <= FLAG_FACTOR * max(worst_error, PRECISIONS["float32"].floor), (
        f"{problem!r}: predicted {worst_prediction:.2e}, the manual float32 pass erred by {worst_error:.2e}")


def test_a_saturated_unit_is_flagged():
    """One tanh unit at a ≈ 5.8 carries all of ∂L/∂U: every path, the float64 reference among them,
    computes 1 − h² from a rounded h, and the paths differ from it by far more than the inputs'
    rounding predicts. The audit says so; the head, which 1 − h² does not touch, stays at rounding."""
    problem = random_problem(T=1, B=1, I=5, H=1, O=3, seed=21670, random_h0=False)
    report = problem.run(audit, paths=cpu_paths()[:4])
    for path in report.paths():
        flagged = {row.gradient for row in report.worse() if row.path == path}
        assert flagged == {"weight_ih_l0", "bias_ih_l0", "bias_hh_l0"}, report
    assert report.row("manual float32", "weight_ih_l0").relative_error > 1e-5


def test_an_rnn_params_is_audited_as_its_one_layer_network():
    problem = random_problem(T=12, B=2, I=3, H=4, O=5, seed=1, nonlinearity="relu")
    report = problem.run(audit, paths=cpu_paths()[:1])
    names = [row.gradient for row in report.rows]
    assert names == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "head.weight", "head.bias"]
    assert report.ok and max(row.relative_error for row in report.rows) < 1e-12


def test_the_callers_arrays_are_not_modified():
    problem = random_network_problem(T=6, B=2, cell="lstm", num_layers=1, bidirectional=False, seed=2,
                                     dtype="float32")
    before = [problem.x.copy(), problem.y.copy(), *[a.copy() for a in problem.h0],
              *[a.copy() for _, a in problem.params.items()]]
    problem.run(audit, paths=cpu_paths())
    after = [problem.x, problem.y, *problem.h0, *[a for _, a in problem.params.items()]]
    for old, new in zip(before, after):
        assert old.dtype == new.dtype and np.array_equal(old, new)


def test_the_json_has_every_path_and_each_row_its_prediction(tmp_path, capsys):
    out = tmp_path / "audit.json"
    assert main(["audit", "-T", "15", "--cell", "gru", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    expected = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "head.weight", "head.bias"]
    for path in default_paths():
        got = [row for row in rows if row["path"] == path.name]
        assert [row["gradient"] for row in got] == expected, path.name
        for row in got:
            assert set(row) >= {"path", "gradient", "relative_error", "predicted_error"}
            assert isinstance(row["predicted_error"], float) and row["predicted_error"] > 0, row
            if "skipped" in row:                    # a CUDA path without a device: no error, and why
                assert row["relative_error"] is None and path.name in cuda_paths_here_skipped()
            else:
                assert isinstance(row["relative_error"], float), row
    printed = capsys.readouterr().out
    for path in default_paths():
        assert path.name in printed


def cuda_paths_here_skipped() -> list:
    return [] if torch.cuda.is_available() else [path.name for path in cuda_paths()]


def test_the_command_exits_1_where_a_path_is_worse(monkeypatch, capsys):
    monkeypatch.setattr(audit_module, "default_paths", lambda: [planted("head.bias")])
    assert main(["audit", "-T", "8"]) == 1
    assert "worse than its rounding" in capsys.readouterr().out


@pytest.mark.parametrize("argv, option", [
    (["--truncate", "3", "--cell", "lstm"], "--truncate"),
    (["--json", "out.txt"], "--json"),
    (["--runs", "0"], "--runs"),
    (["--weights", "no-such-file.pt"], "--weights"),
    (["--data", "d.npz"], "--data"),
    (["-T", "0"], "-T"),
])
def test_bad_input_is_one_line_and_exit_2(argv, option, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["audit", *argv])
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and option in err and "Traceback" not in err


def test_bad_arguments_of_the_function_are_refused_before_any_computation():
    problem = random_network_problem(T=4, B=2, cell="gru", num_layers=1, bidirectional=False)
    with pytest.raises(ValueError, match="truncate"):
        problem.run(audit, truncate=2)
    with pytest.raises(TypeError, match="x"):
        audit(problem.params, problem.x.astype(np.int64), problem.y, problem.h0)
    with pytest.raises(ValueError, match="runs"):
        problem.run(audit, runs=0)
    with pytest.raises(ValueError, match="paths"):
        problem.run(audit, paths=[])
    with pytest.raises(TypeError, match="params"):
        audit({"weight_ih_l0": problem.params["weight_ih_l0"]}, problem.x, problem.y)


# ---- Done when: a saved LSTM, the command's errors against a recomputation in plain torch ----------

I, H, O, T, B = 6, 16, 5, 40, 4


class Tagger(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(I, H)
        self.fc = torch.nn.Linear(H, O)

    def forward(self, x):
        return self.fc(self.lstm(x)[0])


def plain_gradients(model: Tagger, x: np.ndarray, y: np.ndarray, *, dtype, autocast=None) -> dict:
    """∂L/∂ every parameter of a copy of `model` in `dtype`, L = cross-entropy summed, as a user writes it."""
    copy = Tagger().to(dtype)
    copy.load_state_dict(model.state_dict())
    inputs = torch.from_numpy(x).to(dtype)
    labels = torch.from_numpy(y).long()
    if autocast is None:
        logits = copy(inputs)
    else:
        with torch.autocast("cpu", dtype=autocast):
            logits = copy(inputs)
    F.cross_entropy(logits.float().reshape(-1, O) if autocast else logits.reshape(-1, O), labels.reshape(-1),
                    reduction="sum").backward()
    return {name.replace("lstm.", "").replace("fc.", "head."): p.grad.double().numpy()
            for name, p in copy.named_parameters()}


def test_the_command_matches_a_recomputation_on_a_saved_lstm(tmp_path, capsys):
    torch.manual_seed(0)
    model = Tagger()
    rng = np.random.default_rng(5)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    y = rng.integers(0, O, size=(T, B))
    torch.save(model.state_dict(), tmp_path / "m.pt")
    np.savez(tmp_path / "d.npz", x=x, y=y)

    out = tmp_path / "out.json"
    code = main(["audit", "--weights", str(tmp_path / "m.pt"), "--data", str(tmp_path / "d.npz"), "--json", str(out)])
    assert code == 0, capsys.readouterr().out
    rows = json.loads(out.read_text())["rows"]

    reference = plain_gradients(model, x, y, dtype=torch.float64)
    recomputed = {"torch float32": plain_gradients(model, x, y, dtype=torch.float32),
                  "torch bfloat16 autocast": plain_gradients(model, x, y, dtype=torch.float32,
                                                             autocast=torch.bfloat16)}
    assert set(reference) == {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "head.weight", "head.bias"}
    for path, grads in recomputed.items():
        for name, g in grads.items():
            mine = np.max(np.abs(g - reference[name])) / np.max(np.abs(reference[name]))
            reported = next(row for row in rows if row["path"] == path and row["gradient"] == name)
            assert reported["predicted_error"] > 0
            assert mine / 2 <= reported["relative_error"] <= 2 * mine, (
                f"{path} {name}: the command reports {reported['relative_error']:.3e}, plain torch gives {mine:.3e}")


def test_network_params_from_a_module_keep_their_layout():
    """A NetworkParams from a batch_first module is audited in its own layout, as bptt takes it."""
    rnn, head = torch.nn.GRU(3, 4, batch_first=True).double(), torch.nn.Linear(4, 2).double()
    params = NetworkParams.from_torch(rnn, head)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((2, 7, 3)), rng.integers(0, 2, size=(2, 7))      # (B, T, ·)
    report = audit(params, x, y, paths=cpu_paths()[:2])
    _, g = bptt(params, x, y)
    assert report.ok and set(g.state_dict()) == {row.gradient for row in report.rows}
