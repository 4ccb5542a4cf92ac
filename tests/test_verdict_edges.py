"""The verdict at its edges (issue 18): the problem's precision is judged, a candidate's
result is checked before it is read, and neither its writes nor the caller's global
state (np.bool_ flags, torch's default device, np.errstate) change the answer."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from manual_bptt import NetworkGrads, NetworkParams, RNNGrads, RNNParams, bptt, compare_grads  # noqa: E402
from manual_bptt.model import losses  # noqa: E402
from manual_bptt import TOLERANCES, reference  # noqa: E402
from manual_bptt.verification.conditioning import rounding_spread  # noqa: E402
from manual_bptt.inputs.network_validation import check_network_problem  # noqa: E402
from manual_bptt.inputs.options import Options  # noqa: E402
from manual_bptt.verification.problems import random_network_problem, random_problem  # noqa: E402
from manual_bptt.inputs.validation import check_problem  # noqa: E402
from torch_reference import compare, torch_bptt  # noqa: E402
from torch_reference.kit import check_bptt  # noqa: E402
from torch_reference.sweep import check_one  # noqa: E402

#: How far off the float32 candidate is, relative to each gradient's largest element:
#: 100 000 times float64's rtol (1e-11), a tenth of float32's (1e-4).
OFF = 1e-5
#: The seeds on which the old verdict (tolerance from the candidate's dtype) failed a
#: float32 problem's exact float64 gradients in 2 of 6; the issue found 3 of 6.
SEEDS = range(6)


# ---- 1. the tolerance is the problem's ---------------------------------------------------


def float32_gradients_off(params, x, y, h0=None, **options):
    """Every gradient OFF too large (relative to its largest element), returned as float32."""
    L, g = bptt(params, x, y, h0, **options)
    shifted = {name: (a + OFF * np.abs(a).max()).astype(np.float32) for name, a in g.items()}
    if isinstance(g, NetworkGrads):
        params_part = {name: shifted[name] for name in g.params}
        return L, NetworkGrads(params=params_part, h0=shifted["h0"], x=shifted["x"], c0=shifted.get("c0"))
    return L, RNNGrads(**shifted)


def exact_float64_gradients(params, x, y, h0=None, **options):
    """bptt on the problem cast up to float64: more exact than any float32 computation."""
    up = params.astype(np.float64)
    y = y if options.get("loss", "cross_entropy") == "cross_entropy" else y.astype(np.float64)
    return bptt(up, x.astype(np.float64), y, None if h0 is None else h0.astype(np.float64), **options)


def test_float32_gradients_off_by_1e_5_fail_a_float64_problem():
    problem = random_problem(T=6, B=3, I=3, H=4, O=3, seed=1, dtype="float64")
    report = problem.run(compare, manual=float32_gradients_off)
    assert not report.ok, str(report)
    assert report.dtype == np.float64
    gradient_rows = [row for row in report.rows if row.name != "L"]
    assert all(row.tolerance is TOLERANCES[np.dtype(np.float64)] for row in report.rows)
    assert {row.name for row in report.failures()} == {row.name for row in gradient_rows}
    assert "note: float32_gradients_off returned U, W, V, b, c, h0, x are float32; the problem is float64, " \
           "so every row is judged at float64's tolerance" in str(report)
    assert str(report).splitlines()[0] == "float32_gradients_off vs torch.autograd (float64)"
    assert report.other_dtypes() == tuple(gradient_rows)


def test_float32_gradients_off_fail_a_float64_network_problem_too():
    problem = random_network_problem(T=4, B=2, I=3, H=3, O=3, cell="gru", seed=0, lengths="random")
    report = problem.run(compare, manual=float32_gradients_off)
    assert not report.ok and report.dtype == np.float64
    assert "the problem is float64" in str(report) and "<p>note: " in report._repr_html_()


@pytest.mark.parametrize("seed", SEEDS)
def test_exact_float64_gradients_pass_a_float32_problem_on_every_seed(seed):
    problem = random_problem(T=20, B=4, seed=seed, dtype="float32")
    report = problem.run(compare, manual=exact_float64_gradients)
    assert report.ok, str(report)
    assert report.dtype == np.float32
    assert all(row.tolerance is TOLERANCES[np.dtype(np.float32)] for row in report.rows)
    assert "are float64; the problem is float32" in str(report)


def test_the_kit_and_the_sweep_judge_the_problems_precision():
    result = check_bptt(float32_gradients_off, dtype="float64", max_examples=3)
    assert not result.ok and result.report is not None and result.report.dtype == np.float64
    outcome = check_one(dict(T=4, B=2, I=3, H=3, O=3, seed=0, dtype="float64"), manual=float32_gradients_off)
    assert not outcome.ok and outcome.error is None and "U" in outcome.failed


def test_compare_grads_takes_the_problems_dtype_or_the_references_never_the_actuals():
    _, g = random_problem(T=4, B=2, seed=0).run(bptt)                 # float64, the reference
    lowered = RNNGrads(**{name: a.astype(np.float32) for name, a in g.items()})
    by_default = compare_grads(lowered, g)
    assert by_default.dtype == np.float64 and not by_default.ok      # float32 rounding is beyond float64's rtol
    assert compare_grads(lowered, g, dtype=np.float32).ok            # the same values at a float32 problem's
    assert compare_grads(lowered, g, dtype="float32").dtype == np.float32
    with pytest.raises(TypeError, match=r"^dtype: expected float32 or float64, got float16$"):
        compare_grads(lowered, g, dtype=np.float16)
    assert compare_grads(g, g).other_dtypes() == () and "note:" not in str(compare_grads(g, g))


# ---- 2. the candidate gets copies of every array option ----------------------------------


def _lengths_overwriting(after: bool):
    def overwrites_lengths(params, x, y, h0=None, *, lengths=None, **options):
        if not after:
            lengths[:] = [len(x)] * len(lengths)                     # every step taken as data
        result = bptt(params, x, y, h0, lengths=lengths, **options)
        if after:
            lengths[:] = [1] * len(lengths)
        return result
    return overwrites_lengths


@pytest.mark.parametrize("as_list", [False, True])
def test_a_candidate_that_overwrites_lengths_changes_neither_the_callers_nor_what_torch_sees(as_list):
    problem = random_network_problem(T=5, B=4, I=3, H=3, O=3, seed=0, lengths="random", bidirectional=False)
    lengths = problem.options["lengths"]
    assert lengths.min() < 5                                         # some padding to lose
    given = lengths.tolist() if as_list else lengths
    kept = list(given)
    options = {**problem.options, "lengths": given}
    report = compare(problem.params, problem.x, problem.y, problem.h0, manual=_lengths_overwriting(True), **options)
    assert report.ok, str(report)                                    # torch saw the caller's lengths
    assert list(given) == kept                                       # and the caller still has them
    wrong = compare(problem.params, problem.x, problem.y, problem.h0, manual=_lengths_overwriting(False), **options)
    assert not wrong.ok and list(given) == kept                      # its own copy changed its own answer


# ---- 3. np.bool_ flags -------------------------------------------------------------------


NETWORK_CASES = [
    dict(cell=cell, bidirectional=two_way, **extra)
    for cell in ("rnn_tanh", "rnn_relu", "lstm", "gru")
    for two_way, extra in ((True, {}), (True, dict(lengths="random", target="last")),
                           (False, dict(truncate=2, lengths="random")), (False, dict(batched=False, B=1)))
]


@pytest.mark.parametrize("flag", [np.bool_(False), np.bool_(True)])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_np_bool_batch_first_reaches_torch_as_bool_for_the_rnn(flag, nonlinearity):
    problem = random_problem(T=4, B=2, I=3, H=3, O=3, seed=0, nonlinearity=nonlinearity, batch_first=bool(flag))
    options = {**problem.options, "batch_first": flag}
    args = (problem.params, problem.x, problem.y, problem.h0)
    assert type(check_problem(*args, Options(**options)).batch_first) is bool
    L, g = bptt(*args, **options)
    L_t, g_t = torch_bptt(*args, **options)
    assert compare(*args, **options).ok
    assert compare(*args, manual=bptt, **options).ok
    np.testing.assert_allclose(g.W, g_t.W, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("flag", [np.bool_(False), np.bool_(True)])
@pytest.mark.parametrize("case", NETWORK_CASES, ids=lambda case: "-".join(f"{k}={v}" for k, v in case.items()))
def test_np_bool_flags_reach_torch_as_bool_for_every_network(case, flag):
    case = {**dict(T=4, B=3, I=3, H=3, O=3, num_layers=2, seed=0), **case}
    problem = random_network_problem(**case, batch_first=bool(flag))
    options = {**problem.options, "batch_first": flag}
    args = (problem.params, problem.x, problem.y, problem.h0)
    assert type(check_network_problem(*args, Options(**options)).batch_first) is bool
    bptt(*args, **options)
    torch_bptt(*args, **options)
    assert compare(*args, **options).ok
    assert compare(*args, manual=bptt, **options).ok


def test_np_bool_flags_of_the_problem_makers_and_of_networkparams():
    params = NetworkParams.random(cell="lstm", input_size=2, hidden_size=3, output_size=2,
                                  bidirectional=np.bool_(True), bias=np.bool_(False), rng=0)
    assert params.bidirectional is True and params.bias is False
    problem = random_problem(T=3, B=2, batch_first=np.bool_(True), random_h0=np.bool_(True))
    assert problem.run(compare).ok and problem.run(torch_bptt)[0] == pytest.approx(problem.run(bptt)[0])


# ---- 8. what a candidate returns ---------------------------------------------------------


def _returning(make):
    def candidate(params, x, y, h0=None, **options):
        return make(*bptt(params, x, y, h0, **options))
    return candidate


def _without(key):
    return lambda L, g: (L, NetworkGrads(params={k: v for k, v in g.params.items() if k != key}, h0=g.h0, x=g.x, c0=g.c0))


def _replaced(name, change):
    return lambda L, g: (L, RNNGrads(**{**dict(g.items()), name: change(getattr(g, name))}))


RNN_RESULTS = {
    "None": (lambda L, g: None, r"got None$"),
    "a float": (lambda L, g: L, r"got a float \([-0-9.e]+\)$"),
    "a 3-tuple": (lambda L, g: (L, g, None), r"got a tuple of 3 items$"),
    "a 1-list": (lambda L, g: [g], r"got a list of 1 item$"),
    "swapped": (lambda L, g: (g, L), r"got \(RNNGrads, float\)$"),
    "L a tensor": (lambda L, g: (torch.tensor(L, dtype=torch.float64), g),
                   r"L as a real number first, got a Tensor of dtype torch.float64 and shape \(\); return float\(L\)$"),
    "L complex": (lambda L, g: (complex(L), g), r"L as a real number first, got a complex \("),
    "L a bool": (lambda L, g: (True, g), r"L as a real number first, got a bool \(True\)$"),
    "L a string": (lambda L, g: ("1.0", g), r"L as a real number first, got a str$"),
    "a tensor": (_replaced("U", lambda a: torch.from_numpy(a)),
                 r"U as a NumPy array of real floats \(float64, the dtype of params\), got a torch Tensor; "
                 r"return \.detach\(\)\.cpu\(\)\.numpy\(\)$"),
    "a tensor requiring grad": (_replaced("W", lambda a: torch.tensor(a, requires_grad=True)),
                                r"W as .*got a torch Tensor"),
    "complex": (_replaced("V", lambda a: a.astype(complex)),
                r"V as .*got a NumPy array of dtype complex128 and shape \(3, 3\)$"),
    "integers": (_replaced("b", lambda a: a.astype(np.int64)),
                 r"b as .*got a NumPy array of dtype int64 and shape \(3,\)$"),
    "None for a gradient": (_replaced("h0", lambda a: None), r"h0 as .*got None$"),
    "ragged": (_replaced("c", lambda a: [[1.0], [1.0, 2.0]]), r"c as .*got a list \("),
}


@pytest.mark.parametrize("what", list(RNN_RESULTS))
def test_a_bad_candidate_result_is_a_clear_error_naming_the_candidate(what):
    make, message = RNN_RESULTS[what]
    candidate = _returning(make)
    candidate.__qualname__ = "my_bptt"
    problem = random_problem(T=3, B=2, I=2, H=3, O=3, seed=0)
    with pytest.raises(TypeError, match=r"^manual: expected my_bptt to return .*" + message):
        problem.run(compare, manual=candidate)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_a_network_candidate_missing_or_adding_a_gradient_is_named(cell):
    problem = random_network_problem(T=3, B=2, I=2, H=3, O=3, cell=cell, seed=0)
    expected = (r"^manual: expected {} to return NetworkGrads with a gradient for every key of params\.keys\(\), "
                r"h0{} and x, got {}$")
    c0 = ", c0" if cell == "lstm" else ""
    missing = _returning(_without("weight_hh_l1_reverse"))
    missing.__qualname__ = "drops"
    with pytest.raises(ValueError, match=expected.format("drops", c0, "none for 'weight_hh_l1_reverse'")):
        problem.run(compare, manual=missing)
    extra = _returning(lambda L, g: (L, NetworkGrads(params={**g.params, "weight_hr_l0": g.params["weight_hh_l0"]},
                                                    h0=g.h0, x=g.x, c0=g.c0)))
    extra.__qualname__ = "adds"
    with pytest.raises(ValueError, match=expected.format("adds", c0, "unknown 'weight_hr_l0'")):
        problem.run(compare, manual=extra)
    if cell == "lstm":
        no_c0 = _returning(lambda L, g: (L, NetworkGrads(params=g.params, h0=g.h0, x=g.x)))
        no_c0.__qualname__ = "no_c0"
        with pytest.raises(ValueError, match=expected.format("no_c0", c0, "none for 'c0'")):
            problem.run(compare, manual=no_c0)
    tensors = _returning(lambda L, g: (L, NetworkGrads(params={k: torch.from_numpy(v) for k, v in g.params.items()},
                                                      h0=g.h0, x=g.x, c0=g.c0)))
    tensors.__qualname__ = "tensors"
    with pytest.raises(TypeError, match=r"^manual: expected tensors to return weight_ih_l0 as a NumPy array .*torch Tensor"):
        problem.run(compare, manual=tensors)


def test_a_gradient_of_the_wrong_shape_stays_a_fail_row():
    problem = random_problem(T=3, B=2, I=2, H=3, O=3, seed=0)
    candidate = _returning(_replaced("W", lambda a: a[:, :1]))
    report = problem.run(compare, manual=candidate)
    assert not report.ok and [row.name for row in report.failures()] == ["W"]
    assert report["W"].max_abs_diff == np.inf and report["W"].shape == (3, 1)


def test_compare_grads_names_a_missing_or_complex_gradient():
    _, g = random_problem(T=3, B=2, seed=0).run(bptt)
    with pytest.raises(ValueError, match=r"^actual: expected a gradient for every name of the reference .*got none for b$"):
        compare_grads(_Items({n: a for n, a in g.items() if n != "b"}), g)
    with pytest.raises(TypeError, match=r"^actual\['x'\]: expected an array of real floats, got dtype complex128$"):
        compare_grads(RNNGrads(**{**dict(g.items()), "x": g.x + 0j}), g)


class _Items:
    """Anything with items(): compare_grads reads no more of its `actual`."""

    def __init__(self, arrays):
        self.arrays = arrays

    def items(self):
        return self.arrays.items()


# ---- 10. the caller's global state -------------------------------------------------------


DEFAULT_DEVICE_CASES = [
    dict(cell="rnn_tanh", lengths="random", bidirectional=False),
    dict(cell="lstm", lengths="random", bidirectional=True, target="last"),
    dict(cell="gru", truncate=2, bidirectional=False),
    dict(cell="lstm", truncate=2, lengths="random", bidirectional=False),
    dict(cell="rnn_relu", truncate=3, lengths="random", bidirectional=False, batch_first=True),
    dict(cell="gru", batched=False, B=1, truncate=2, bidirectional=False),
]


@pytest.mark.parametrize("case", DEFAULT_DEVICE_CASES, ids=lambda case: "-".join(f"{k}={v}" for k, v in case.items()))
def test_torch_bptt_builds_on_the_cpu_whatever_the_default_device(case):
    problem = random_network_problem(**{**dict(T=5, B=3, I=3, H=3, O=3, seed=0), **case})
    L, g = problem.run(bptt)
    torch.set_default_device("meta")                                 # standing for "cuda"
    try:
        L_t, g_t = problem.run(torch_bptt)
        report = problem.run(compare)
    finally:
        torch.set_default_device(None)
    assert report.ok, str(report)
    assert L_t == pytest.approx(L, rel=1e-12)
    np.testing.assert_allclose(g_t.x, g.x, rtol=1e-9, atol=1e-12)


def test_the_rnn_twin_builds_on_the_cpu_whatever_the_default_device():
    problem = random_problem(T=4, B=2, seed=0, batch_first=True)
    torch.set_default_device("meta")
    try:
        report = problem.run(compare)
    finally:
        torch.set_default_device(None)
    assert report.ok, str(report)


#: Weights this many times their initial scale: logits a thousand apart, so that
#: most classes' e^z underflows even in float64, and saturated gates. relu's states
#: grow with the scale per layer: 100 is as far as float32 goes without overflow.
LARGE = {"relu": 100.0, "other": 2000.0}


def test_a_softmax_underflow_is_no_error_under_errstate_raise():
    o = np.array([[[0.0, -800.0, 5.0], [1000.0, 0.0, -1000.0]]])      # (T, B, O) = (1, 2, 3)
    y = np.array([[0, 1]])
    L_plain, do_plain = losses.loss_and_grad("cross_entropy", "sum", o, y)
    with np.errstate(all="raise"):
        L, do = losses.loss_and_grad("cross_entropy", "sum", o, y)
    assert L == L_plain and np.array_equal(do, do_plain) and do[0, 1, 2] == 0.0


def _scaled(problem, scale):
    if isinstance(problem.params, NetworkParams):
        return NetworkParams(problem.params.cell, {n: a * scale for n, a in problem.params.items()})
    return RNNParams(**{n: a * scale for n, a in problem.params.items()})


ERRSTATE_CASES = [("elman", nl, None) for nl in ("tanh", "relu")] + [
    ("network", cell, extra) for cell in ("rnn_tanh", "rnn_relu", "lstm", "gru")
    for extra in (dict(lengths="random"), dict(target="last"), dict(truncate=2, bidirectional=False, loss="mse"))
]


@pytest.mark.parametrize("implementation", [bptt, reference.bptt], ids=["fast", "reference"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind, cell, extra", ERRSTATE_CASES)
def test_bptt_for_every_cell_with_large_weights_under_errstate_raise(kind, cell, extra, dtype, implementation):
    if kind == "elman":
        problem = random_problem(T=6, B=3, seed=0, dtype=dtype, nonlinearity=cell)
    else:
        problem = random_network_problem(T=6, B=3, seed=0, cell=cell, dtype=dtype, **extra)
    params = _scaled(problem, LARGE["relu" if "relu" in cell else "other"])
    args = (params, problem.x, problem.y, problem.h0)
    L_plain, g_plain = implementation(*args, **problem.options)
    with np.errstate(all="raise"):
        L, g = implementation(*args, **problem.options)
        rounding_spread(*args, **problem.options)
    assert L == L_plain
    for (name, got), (_, want) in zip(g.items(), g_plain.items()):
        assert np.array_equal(got, want), name
