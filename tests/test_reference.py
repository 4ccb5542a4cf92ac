"""The fast path equals the readable reference (manual_bptt.reference), without torch.

`manual_bptt.bptt` is the fast path: buffers reused, products over all steps, tricks
that measure. `manual_bptt.reference.bptt` computes the same function one formula a
line. Both are the project's own code, so they must agree to rounding: float64 within
1e-12 of the largest element of every gradient. The reference is itself checked
against autograd in tests/test_reference_against_torch.py.

This module needs no torch, and imports nothing that does
(test_this_module_runs_without_torch checks it in a fresh interpreter).
"""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings

import manual_bptt
import manual_bptt.reference as reference
from manual_bptt import NetworkParams, RNNParams, Tolerance, compare_grads, tolerance_for
from manual_bptt.inputs.overflow import NonFiniteError
from manual_bptt.verification.problems import random_network_problem, random_problem

from .strategies import network_problems, rnn_problems

#: Fast path against reference in float64: the same sums of the same terms, accumulated in
#: another order (per step here, over all T·B rows at once there; σ and the gate products
#: grouped differently). A few ulps (2.2e-16) per term over at most a few hundred terms
#: stays far below 1e-12 of the largest element; atol covers gradients that are zero in
#: exact arithmetic and come out as ~1e-17 of rounding in one of the two.
FAST_EQUALS_REFERENCE_FLOAT64 = Tolerance(
    rtol=1e-12, atol=1e-14,
    reason="the same float64 sums in another order: a few ulps per term, far below 1e-12 of the largest")
#: In float32 the same argument gives about 1e-7 per term; the project's float32 tolerance.
TOLERANCE = {np.dtype(np.float64): FAST_EQUALS_REFERENCE_FLOAT64, np.dtype(np.float32): tolerance_for(np.float32)}

#: The issue's bar: fast equals reference over at least this many drawn networks in CI.
MIN_NETWORKS = 300
#: Sizes that keep the reference's Python loops quick (T·layers·directions steps of a few µs each)
#: while every option still has room: several truncation chunks, padding in every position.
SMALL = dict(max_T=8, max_B=3, max_size=5)

EDGE_CASES = [
    random_network_problem(T=1, B=1, I=1, H=1, O=1, num_layers=1, bidirectional=False, seed=1),
    random_network_problem(T=5, B=3, I=2, H=3, O=2, cell="lstm", lengths="one", seed=2),
    random_network_problem(T=6, B=3, I=2, H=3, O=3, cell="gru", lengths="random", target="last", seed=3,
                           batch_first=True),
    random_network_problem(T=7, B=3, I=2, H=4, O=3, cell="lstm", proj_size=2, num_layers=3, bidirectional=False,
                           lengths="random", truncate=2, seed=4, loss="mse", reduction="mean"),
    random_network_problem(T=4, B=1, I=3, H=2, O=2, cell="rnn_relu", bias=False, batched=False, target="last",
                           seed=5, random_h0=False),
    random_network_problem(T=8, B=3, I=2, H=3, O=2, cell="gru", bidirectional=False, truncate=1, lengths="random",
                           dtype="float32", seed=6),
]


def with_edge_cases(test):
    for case in EDGE_CASES:
        test = example(case)(test)
    return test


def assert_fast_equals_reference(problem) -> None:
    """Both on the same problem: same types, keys, shapes and dtypes, and every gradient (and L)
    within TOLERANCE; on failure a row per gradient and a line that reproduces it."""
    L, grads = problem.run(manual_bptt.bptt)
    L_ref, grads_ref = problem.run(reference.bptt)
    assert type(grads) is type(grads_ref) and type(L) is type(L_ref) is float
    names = [name for name, _ in grads.items()]
    assert names == [name for name, _ in grads_ref.items()], "the two results name different gradients"
    for (name, g), (_, g_ref) in zip(grads.items(), grads_ref.items()):
        assert (g.shape, g.dtype) == (g_ref.shape, g_ref.dtype), f"{name}: fast {g.shape} {g.dtype}, " \
                                                                 f"reference {g_ref.shape} {g_ref.dtype}"
    dtype = np.asarray(grads_ref.x).dtype
    report = compare_grads(grads, grads_ref, loss=L, reference_loss=L_ref, tolerance=TOLERANCE[dtype],
                           actual_name="manual_bptt.bptt (fast)", reference_name="manual_bptt.reference.bptt")
    if not report.ok:
        raise AssertionError(disagreement(
            "the fast path disagrees with the reference (witness: manual_bptt.reference)", report, problem,
            "import manual_bptt, manual_bptt.reference; from manual_bptt import compare_grads; "
            f"p = {problem!r}; (L, g), (L_ref, g_ref) = p.run(manual_bptt.bptt), p.run(manual_bptt.reference.bptt); "
            "print(compare_grads(g, g_ref, loss=L, reference_loss=L_ref))"))


def disagreement(what: str, report, problem, reproduce: str) -> str:
    """What failed, the table (a row per gradient), the drawn problem and a line that rebuilds it."""
    return "\n".join([
        what,
        str(report),
        f"drawn problem: {problem!r}",
        f"reproduce: from manual_bptt.verification.problems import random_problem, random_network_problem; {reproduce}",
    ])


def arrays_of(problem) -> list[np.ndarray]:
    """Copies of every array the caller passes: the parameters, x, y, h0 (c0) and lengths."""
    arrays = [a for _, a in problem.params.items()] + [problem.x, problem.y]
    h0 = problem.h0
    arrays += [] if h0 is None else list(h0) if isinstance(h0, tuple) else [h0]
    lengths = problem.options.get("lengths")
    arrays += [] if lengths is None else [lengths]
    return [np.array(a, copy=True) for a in arrays]


@with_edge_cases
@settings(max_examples=max(MIN_NETWORKS, settings().max_examples))     # the profile's count, never under 300
@given(network_problems(**SMALL))
def test_fast_path_equals_the_reference_on_drawn_networks(problem):
    """Every cell (an LSTM with and without a projection), 1-3 layers, both directions, with and
    without biases, lengths in any order, both targets, truncation, both losses and reductions,
    every layout, random labels, targets, h0 (c0) and lengths, float64 and float32."""
    before = arrays_of(problem)
    assert_fast_equals_reference(problem)
    for was, now in zip(before, arrays_of(problem)):
        np.testing.assert_array_equal(was, now, err_msg="an argument was modified")


@example(random_problem(T=1, B=1, I=1, H=1, O=1, seed=1))
@example(random_problem(T=8, B=3, I=2, H=5, O=3, seed=2, nonlinearity="relu", loss="mse", reduction="mean",
                        batch_first=True))
@example(random_problem(T=6, B=1, I=3, H=4, O=2, seed=3, batched=False, random_h0=False, dtype="float32"))
@given(rnn_problems(**SMALL))
def test_fast_path_equals_the_reference_on_the_one_layer_rnn(problem):
    """RNNParams: the derivation's model, both φ, both losses and reductions, every layout."""
    assert_fast_equals_reference(problem)


# --- the same checks and the same errors ----------------------------------------------------------

NETWORK = random_network_problem(T=4, B=2, I=3, H=3, O=2, cell="lstm", num_layers=1, seed=7)
RNN = random_problem(T=4, B=2, I=3, H=3, O=2, seed=7)

BAD_CALLS = {
    "misspelt keyword": (RNN, dict(reductoin="mean")),
    "network option for an RNNParams": (RNN, dict(lengths=np.array([4, 4]))),
    "unknown loss": (NETWORK, dict(loss="hinge")),
    "truncate with two directions": (NETWORK, dict(truncate=2)),
    "lengths beyond T": (NETWORK, dict(lengths=np.array([5, 1]))),
    "x of the wrong width": (NETWORK, dict(x=np.zeros((4, 2, 2)))),
    "a label outside [0, O)": (RNN, dict(y=np.full((4, 2), 2))),
    "h0 of the wrong shape": (RNN, dict(h0=np.zeros((3, 3)))),
}


@pytest.mark.parametrize("problem, change", BAD_CALLS.values(), ids=BAD_CALLS.keys())
def test_bad_input_gets_the_fast_paths_error(problem, change):
    """The reference validates with the project's own checks: the same exception, message for message."""
    arguments = dict(params=problem.params, x=problem.x, y=problem.y, h0=problem.h0, **problem.options)
    arguments.update(change)
    errors = []
    for bptt in (manual_bptt.bptt, reference.bptt):
        with pytest.raises((ValueError, TypeError)) as caught:
            bptt(**arguments)
        errors.append(caught.value)
    fast, ref = errors
    assert (type(ref), str(ref)) == (type(fast), str(fast))


def overflowing_rnn(dtype) -> tuple:
    """A relu RNN whose h(t) = s^t exactly (U = 0, b = 0, h0 = 1, W = s·I): it overflows at a known step."""
    H, s = 3, {np.float64: 1e10, np.float32: 1e4}[dtype]
    problem = random_problem(T=40, B=2, I=2, H=H, O=2, seed=3, nonlinearity="relu", dtype=np.dtype(dtype).name)
    p = problem.params
    params = RNNParams(U=np.zeros_like(p.U), W=(s * np.eye(H)).astype(dtype), V=p.V, b=np.zeros_like(p.b), c=p.c)
    return (params, problem.x, problem.y, np.ones((2, H), dtype)), dict(nonlinearity="relu")


def overflowing_network(dtype) -> tuple:
    """A 2-layer bidirectional relu network in which the reverse direction of layer 1 grows as s^t."""
    H, s = 3, {np.float64: 1e10, np.float32: 1e4}[dtype]
    problem = random_network_problem(T=40, B=2, I=2, H=H, O=2, cell="rnn_relu", lengths="random", seed=3,
                                     dtype=np.dtype(dtype).name)
    state = {name: np.zeros_like(a) if name.startswith(("weight_ih", "bias")) else a
             for name, a in problem.params.items()}
    for name in state:
        if name.startswith("weight_hh"):
            state[name] = ((s if name == "weight_hh_l1_reverse" else 0.5) * np.eye(H)).astype(dtype)
    params = NetworkParams.from_state_dict(state, cell="rnn_relu")
    return (params, problem.x, problem.y, np.ones((4, 2, H), dtype)), dict(lengths=problem.options["lengths"])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("make", [overflowing_rnn, overflowing_network], ids=["rnn", "network"])
def test_overflow_raises_the_fast_paths_nonfinite_error(make, dtype):
    args, options = make(dtype)
    errors = []
    for bptt in (manual_bptt.bptt, reference.bptt):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)         # NumPy's overflow warnings: expected here
            with pytest.raises(NonFiniteError) as caught:
                bptt(*args, **options)
        errors.append(caught.value)
    fast, ref = errors
    assert fast.quantity == "h(t)" and fast.step is not None, str(fast)
    assert (ref.quantity, ref.step, str(ref)) == (fast.quantity, fast.step, str(fast))


# --- what the reference is made of ------------------------------------------------------------------

REFERENCE = pathlib.Path(reference.__file__).parent
#: Names that mean buffer reuse, layout tricks or chunking: the fast path's, never the reference's.
FAST_PATH_NAMES = {"copyto", "ascontiguousarray", "strides", "time_chunks", "empty", "empty_like"}


def written_into_an_array(target) -> bool:
    """`a[1:] = …`, `a[:, n] = …`: a subscript by a slice or a tuple (a dict's `d["h"] = …` is neither)."""
    targets = target.elts if isinstance(target, ast.Tuple) else [target]
    return any(isinstance(t, ast.Subscript) and isinstance(t.slice, (ast.Slice, ast.Tuple)) for t in targets)


@pytest.mark.parametrize("path", sorted(REFERENCE.glob("*.py")), ids=lambda path: path.name)
def test_the_reference_writes_nothing_in_place(path):
    """No out=, no augmented assignment, no assignment into a slice, no copyto / ascontiguousarray /
    strides / chunks / uninitialised buffers: every value is a new whole-array expression (dicts of
    arrays get new entries; no array is written)."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "out":
            found.append(f"line {node.lineno}: out=")
        elif isinstance(node, ast.AugAssign):
            found.append(f"line {node.lineno}: an augmented assignment")
        elif isinstance(node, ast.Assign) and any(written_into_an_array(target) for target in node.targets):
            found.append(f"line {node.lineno}: an assignment into part of an array")
        elif isinstance(node, (ast.Name, ast.Attribute)) and getattr(node, "attr", getattr(node, "id", "")) \
                in FAST_PATH_NAMES:
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    assert not found, f"{path.name}: " + "; ".join(found)


def test_this_module_runs_without_torch():
    """manual_bptt.reference, and this test module with its strategies and helpers, import and run
    with torch blocked: the fast-vs-reference check needs NumPy (and hypothesis) alone."""
    script = textwrap.dedent(
        """
        import sys

        class NoTorch:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "torch_reference"):
                    raise ImportError(name + " is blocked in this test")

        sys.meta_path.insert(0, NoTorch())
        import tests.test_reference as module
        from manual_bptt.verification.problems import random_network_problem
        module.assert_fast_equals_reference(random_network_problem(T=5, B=2, cell="lstm", lengths="random"))
        assert "torch" not in sys.modules and "torch_reference" not in sys.modules
        print("ok")
        """
    )
    root = pathlib.Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=root)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
