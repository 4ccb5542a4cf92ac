"""RTRL (manual_bptt.reference.rtrl) equals BPTT, without torch.

The two compute the derivation's one double sum bracketed the two ways: BPTT sums over the
later steps t first, backwards, RTRL over the earlier steps k first, forwards, through the
sensitivities P(t) = ∂h(t)/∂θ. Both are the project's own code, so they must agree to rounding:
float64 within 1e-12 of the largest element of every gradient. A comparison that could not fail
would prove nothing, so the mutants below (planted bugs in a copy of rtrl.py's source) must each
be told apart from bptt on a problem with random labels, targets and h0.

The autograd witness is tests/test_rtrl_against_torch.py.
"""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import manual_bptt.reference as reference
from manual_bptt import NetworkParams, Tolerance, compare_grads, tolerance_for
from manual_bptt.verification.problems import random_problem

from .strategies import rnn_problems

#: RTRL against BPTT in float64: the same terms of the same double sum, added in another order
#: (over k inside each sensitivity, then over t; BPTT the other way round). A few ulps (2.2e-16)
#: per term over at most a few hundred terms stays far below 1e-12 of the largest element; atol
#: covers a gradient that is zero in exact arithmetic and comes out as ~1e-17 of rounding.
RTRL_EQUALS_BPTT_FLOAT64 = Tolerance(
    rtol=1e-12, atol=1e-14,
    reason="the same float64 terms summed in another order: a few ulps each, far below 1e-12 of the largest")
TOLERANCE = {np.dtype(np.float64): RTRL_EQUALS_BPTT_FLOAT64, np.dtype(np.float32): tolerance_for(np.float32)}

#: Sizes that keep RTRL's H⁴ a step quick while every option has room.
SMALL = dict(max_T=8, max_B=3, max_size=5)

SOURCE = Path(reference.__file__).with_name("rtrl.py")


def report_of(problem, rtrl=reference.rtrl):
    L, grads = problem.run(rtrl)
    L_ref, grads_ref = problem.run(reference.bptt)
    assert type(L) is float and type(grads) is type(grads_ref)
    dtype = np.asarray(grads_ref.x).dtype
    return compare_grads(grads, grads_ref, loss=L, reference_loss=L_ref, tolerance=TOLERANCE[dtype],
                         actual_name="manual_bptt.reference.rtrl", reference_name="manual_bptt.reference.bptt")


def assert_rtrl_equals_bptt(problem) -> None:
    report = report_of(problem)
    assert report.ok, "\n".join([
        "rtrl disagrees with bptt (witness: manual_bptt.reference.bptt)",
        str(report),
        f"drawn problem: {problem!r}",
        "reproduce: import manual_bptt.reference as r; from manual_bptt import compare_grads; "
        "from manual_bptt.verification.problems import random_problem; "
        f"p = {problem!r}; (L, g), (L_ref, g_ref) = p.run(r.rtrl), p.run(r.bptt); "
        "print(compare_grads(g, g_ref, loss=L, reference_loss=L_ref))",
    ])


@example(random_problem(T=1, B=1, I=1, H=1, O=1, seed=1))
@example(random_problem(T=8, B=3, I=2, H=5, O=3, seed=2, nonlinearity="relu", loss="mse", reduction="mean",
                        batch_first=True))
@example(random_problem(T=6, B=1, I=3, H=4, O=2, seed=3, batched=False, random_h0=False))
@example(random_problem(T=7, B=2, I=2, H=3, O=4, seed=4, reduction="mean", dtype="float32"))
@given(rnn_problems(**SMALL))
def test_rtrl_equals_bptt_on_drawn_problems(problem):
    """Both φ, both losses and reductions, every layout, h0 or zeros, both dtypes; random labels,
    targets and h0. Every gradient: U, W, V, b, c, h0 and x."""
    assert_rtrl_equals_bptt(problem)


@given(rnn_problems(dtype=st.just("float64"), **SMALL))
def test_rtrl_equals_bptt_in_float64_within_1e_12(problem):
    """The float64 bar of the issue, drawn on its own so that every CI example is float64."""
    assert_rtrl_equals_bptt(problem)


def test_rtrl_leaves_the_callers_arrays_alone():
    problem = random_problem(T=5, B=2, I=3, H=4, O=3, seed=5)
    arrays = [a for _, a in problem.params.items()] + [problem.x, problem.y, problem.h0]
    before = [a.copy() for a in arrays]
    problem.run(reference.rtrl)
    for was, now in zip(before, arrays):
        np.testing.assert_array_equal(was, now, err_msg="rtrl modified an argument")


# --- planted bugs: the comparison must see each ---------------------------------------------------

#: (what the bug is, a line of rtrl.py, what it becomes). Each is a mistake a hand derivation makes.
MUTANTS = {
    "immediate partial of W reads h(t), not h(t-1)": (
        'np.einsum("ip,bq->bipq", eye, h_prev))       # E[i, p, q] = δ_ip h(t-1)_q',
        'np.einsum("ip,bq->bipq", eye, h))'),
    "the carried term W P(t-1) dropped for W (only k = t: truncation to one step)": (
        'P.W = d[..., None] * (np.einsum("ij,bjpq->bipq", p.W, P.W, optimize=True)',
        'P.W = d[..., None] * (0 * np.einsum("ij,bjpq->bipq", p.W, P.W, optimize=True)'),
    "Wᵀ in place of W in the carried term": (
        'P.U = d[..., None] * (np.einsum("ij,bjpq->bipq", p.W, P.U, optimize=True)',
        'P.U = d[..., None] * (np.einsum("ji,bjpq->bipq", p.W, P.U, optimize=True)'),
    "φ' applied before W P(t-1) is added (diag(φ') W P(t-1) + E)": (
        'P.b = d * (np.einsum("ij,bjp->bip", p.W, P.b, optimize=True) + eye)',
        'P.b = d * np.einsum("ij,bjp->bip", p.W, P.b, optimize=True) + eye'),
    "\"mean\" divides by B alone, not by T·B": (
        'per_step = 1.0 / T if problem.reduction == "mean" else 1.0',
        'per_step = 1.0'),
    "past inputs not carried by J(t)": (
        'P.x = d * np.einsum("ij,kbjq->kbiq", p.W, P.x, optimize=True)',
        'P.x = 0 * P.x'),
}


def mutant(line: str, replacement: str) -> types.ModuleType:
    """rtrl.py with one line changed, as a module of the same package (its relative imports work)."""
    source = SOURCE.read_text(encoding="utf-8")
    assert source.count(line) == 1, f"the mutant's line is no longer in {SOURCE.name} exactly once: {line}"
    module = types.ModuleType("manual_bptt.reference.rtrl_mutant")
    module.__package__ = "manual_bptt.reference"
    exec(compile(source.replace(line, replacement), f"{SOURCE} (mutant)", "exec"), module.__dict__)
    return module


#: A problem every mutant above changes: tanh, h0 random, "mean", labels random, T long enough
#: that the carried terms matter.
MUTANT_PROBLEM = random_problem(T=6, B=2, I=3, H=4, O=3, seed=11, reduction="mean")


@pytest.mark.parametrize("line, replacement", MUTANTS.values(), ids=MUTANTS.keys())
def test_a_planted_bug_in_rtrl_is_caught(line, replacement):
    assert report_of(MUTANT_PROBLEM).ok, "the unmutated rtrl must pass first"
    report = report_of(MUTANT_PROBLEM, rtrl=mutant(line, replacement).rtrl)
    assert not report.ok, f"the planted bug went unseen:\n{report}"


# --- what rtrl refuses ---------------------------------------------------------------------------

RNN = random_problem(T=4, B=2, I=3, H=3, O=2, seed=7)

SAME_ERRORS_AS_BPTT = {
    "misspelt keyword": dict(reductoin="mean"),
    "unknown loss": dict(loss="hinge"),
    "unknown nonlinearity": dict(nonlinearity="gelu"),
    "x of the wrong width": dict(x=np.zeros((4, 2, 2))),
    "a label outside [0, O)": dict(y=np.full((4, 2), 2)),
    "h0 of the wrong shape": dict(h0=np.zeros((3, 3))),
    "NaN in x": dict(x=np.full((4, 2, 3), np.nan)),
}


@pytest.mark.parametrize("change", SAME_ERRORS_AS_BPTT.values(), ids=SAME_ERRORS_AS_BPTT.keys())
def test_bad_input_gets_bptts_error(change):
    """rtrl validates with the project's own checks: the same exception, message for message."""
    arguments = dict(params=RNN.params, x=RNN.x, y=RNN.y, h0=RNN.h0, **RNN.options)
    arguments.update(change)
    errors = []
    for function in (reference.bptt, reference.rtrl):
        with pytest.raises((ValueError, TypeError)) as caught:
            function(**arguments)
        errors.append(caught.value)
    ref, rtrl = errors
    assert (type(rtrl), str(rtrl).replace("rtrl()", "bptt()")) == (type(ref), str(ref))


def test_a_network_is_refused_naming_params():
    network = NetworkParams.from_rnn_params(RNN.params)
    with pytest.raises(TypeError, match=r"^params: .*expected an RNNParams, got NetworkParams"):
        reference.rtrl(network, RNN.x, RNN.y)


@pytest.mark.parametrize("name, value", [("lengths", np.array([4, 2])), ("target", "last"), ("truncate", 2)])
def test_the_network_options_are_refused_naming_them(name, value):
    with pytest.raises(ValueError, match=rf"^{name}: not an option of rtrl.*got {name}="):
        reference.rtrl(RNN.params, RNN.x, RNN.y, **{name: value})
