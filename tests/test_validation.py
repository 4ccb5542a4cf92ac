"""Every bad input is rejected before any computation, with the argument named.

Each case takes a valid problem, breaks one thing, and says which exception and
which argument name the message must start with, plus a fragment of what it
must say it got. The same checks guard bptt, rnn_forward, torch_bptt and
compare, and every case runs with computation forbidden in all of them.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import manual_bptt.fast.network
from manual_bptt import RNNParams, bptt, rnn_forward
from manual_bptt.verification.problems import random_problem

T, B, I, H, O = 4, 3, 2, 5, 3


def valid(**overrides):
    problem = random_problem(T=T, B=B, I=I, H=H, O=O, seed=0, **overrides)
    return dict(params=problem.params, x=problem.x, y=problem.y, h0=problem.h0, **problem.options)


def with_nan(array, index=(0,)):
    broken = array.copy()
    broken[index] = np.nan
    return broken


def params_with(**arrays):
    return valid()["params"].replace(**arrays)


def as_matrix(array):
    with warnings.catch_warnings():  # np.matrix warns that it is not recommended: that is the point
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return np.asmatrix(array)


P = valid()["params"]
X = valid()["x"]

# (case id, changes to the valid arguments, exception, argument named, fragment of "got")
BAD_INPUTS = [
    ("params not RNNParams", dict(params={"U": P.U}), TypeError, "params", "dict"),
    ("params NaN", dict(params=params_with(W=with_nan(P.W, (1, 2)))), ValueError, "params.W", "nan"),
    ("params inf", dict(params=params_with(c=P.c + np.inf)), ValueError, "params.c", "inf"),
    ("x int", dict(x=np.ones((T, B, I), dtype=np.int64)), TypeError, "x", "got dtype int64"),
    ("x complex", dict(x=X.astype(np.complex128)), TypeError, "x", "got dtype complex128"),
    ("x bool", dict(x=X > 0), TypeError, "x", "got dtype bool"),
    ("x float32 with float64 params", dict(x=X.astype(np.float32)), TypeError, "x", "got dtype float32"),
    ("x 1-d", dict(x=X[:, 0, 0]), ValueError, "x", "(4,)"),
    ("x 4-d", dict(x=X[None]), ValueError, "x", "(1, 4, 3, 2)"),
    ("x wrong I", dict(x=np.zeros((T, B, I + 1))), ValueError, "x", "(4, 3, 3)"),
    ("x empty sequence", dict(x=X[:0], y=valid()["y"][:0]), ValueError, "x", "(0, 3, 2)"),
    ("x empty batch", dict(x=X[:, :0], y=valid()["y"][:, :0], h0=None), ValueError, "x", "(4, 0, 2)"),
    ("x NaN", dict(x=with_nan(X, (2, 1, 0))), ValueError, "x", "nan"),
    ("x inf", dict(x=X - np.inf), ValueError, "x", "inf"),
    ("x None", dict(x=None), TypeError, "x", "None"),
    ("x ragged", dict(x=[[1.0], [1.0, 2.0]]), TypeError, "x", "list"),
    ("h0 wrong shape", dict(h0=np.zeros((B + 1, H))), ValueError, "h0", "(4, 5)"),
    ("h0 unbatched for batched x", dict(h0=np.zeros(H)), ValueError, "h0", "(5,)"),
    ("h0 float32", dict(h0=np.zeros((B, H), dtype=np.float32)), TypeError, "h0", "float32"),
    ("h0 NaN", dict(h0=with_nan(np.zeros((B, H)), (0, 0))), ValueError, "h0", "nan"),
    ("y float labels", dict(y=np.zeros((T, B))), TypeError, "y", "float64"),
    ("y label -1", dict(y=np.full((T, B), -1)), ValueError, "y", "-1"),
    ("y label O", dict(y=np.full((T, B), O)), ValueError, "y", str(O)),
    ("y wrong shape", dict(y=np.zeros((T, B + 1), dtype=np.int64)), ValueError, "y", "(4, 4)"),
    ("y None", dict(y=None), TypeError, "y", "None"),
    ("mse y int", dict(loss="mse", y=np.zeros((T, B, O), dtype=np.int64)), TypeError, "y", "int64"),
    ("mse y labels", dict(loss="mse", y=np.zeros((T, B))), ValueError, "y", "(4, 3)"),
    ("mse y NaN", dict(loss="mse", y=with_nan(np.zeros((T, B, O)), (0, 0, 0))), ValueError, "y", "nan"),
    ("nonlinearity unknown", dict(nonlinearity="sigmoid"), ValueError, "nonlinearity", "'sigmoid'"),
    ("nonlinearity not a string", dict(nonlinearity=None), TypeError, "nonlinearity", "None"),
    ("loss unknown", dict(loss="nll"), ValueError, "loss", "'nll'"),
    ("reduction unknown", dict(reduction="none"), ValueError, "reduction", "'none'"),
    ("batch_first not a bool", dict(batch_first="yes"), TypeError, "batch_first", "'yes'"),
    # Found by trying the API as a new user would: each crashed later, or said something false.
    ("y timedelta64", dict(y=np.zeros((T, B), dtype="m8[s]")), TypeError, "y", "timedelta64"),
    ("y bool labels", dict(y=np.zeros((T, B), dtype=bool)), TypeError, "y", "bool"),
    ("y uint64 beyond intp", dict(y=np.full((T, B), 2**63 + 1, dtype=np.uint64)), ValueError, "y",
     str(2**63 + 1)),
    ("y big-endian label O", dict(y=np.full((T, B), O, dtype=">i8")), ValueError, "y",
     "got values from 3 to 3"),
    ("x np.matrix", dict(x=as_matrix(X[:, 0]), y=valid()["y"][:, 0], h0=None), TypeError, "x", "matrix"),
    ("x masked array", dict(x=np.ma.masked_array(X, mask=X > 1)), TypeError, "x", "masked array"),
    ("x big-endian", dict(x=X.astype(">f8")), TypeError, "x", "non-native byte order"),
    ("h0 big-endian", dict(h0=np.zeros((B, H), dtype=">f8")), TypeError, "h0", ">f8"),
    ("x ragged nested list", dict(x=[[[1.0, 2.0]], [[1.0]]]), TypeError, "x", "list"),
    # A broadcast view claims any size for free: the check must come before any pass over it.
    ("x too large for memory", dict(x=np.broadcast_to(X[:1], (10**12, B, I)),
                                    y=np.broadcast_to(valid()["y"][:1], (10**12, B))),
     ValueError, "x", "fit in memory"),
]


@pytest.fixture
def no_computation(monkeypatch):
    """Make every computation fail loudly, so a check must come before it: the
    manual forward and backward passes, and, for the torch entry points, building
    the twin and running it."""

    def forbidden(*args, **kwargs):
        raise AssertionError("a computation ran before the input was checked")

    monkeypatch.setattr(manual_bptt.fast.network, "sequence_forward", forbidden)   # the engine bptt and rnn_forward run
    monkeypatch.setattr(manual_bptt.fast.network, "sequence_backward", forbidden)
    try:
        import torch_reference.network_twin
    except ImportError:  # torch absent: the torch cases are skipped anyway
        return
    # The one twin: the one-layer RNN's is the network's (network_twin.build_network).
    monkeypatch.setattr(torch_reference.network_twin, "build_network", forbidden)


def call_bptt(args):
    return bptt(args.pop("params"), args.pop("x"), args.pop("y"), args.pop("h0"), **args)


def call_rnn_forward(args):
    return rnn_forward(args["params"], args["x"], args["h0"],
                       nonlinearity=args["nonlinearity"], batch_first=args["batch_first"])


def call_torch_bptt(args):
    torch_reference = pytest.importorskip("torch_reference")
    return torch_reference.torch_bptt(args.pop("params"), args.pop("x"), args.pop("y"), args.pop("h0"), **args)


def call_compare(args):
    torch_reference = pytest.importorskip("torch_reference")
    return torch_reference.compare(args.pop("params"), args.pop("x"), args.pop("y"), args.pop("h0"), **args)


FORWARD_ARGUMENTS = ("params", "x", "h0", "nonlinearity", "batch_first")


def cases_for(call):
    """The BAD_INPUTS that apply to `call`: rnn_forward takes no y, loss or reduction."""
    for case_id, changes, error, name, got in BAD_INPUTS:
        if call is call_rnn_forward and name.split(".")[0] not in FORWARD_ARGUMENTS:
            continue
        yield pytest.param(call, changes, error, name, got, id=f"{call.__name__[5:]}: {case_id}")


@pytest.mark.parametrize(
    "call, changes, error, name, got",
    [case for call in (call_bptt, call_rnn_forward, call_torch_bptt, call_compare) for case in cases_for(call)],
)
def test_bad_input_is_rejected_naming_the_argument(call, changes, error, name, got, no_computation):
    with pytest.raises(error) as caught:
        call({**valid(), **changes})
    message = str(caught.value)
    assert re.match(rf"{re.escape(name)}[:.]", message), f"message does not start with {name!r}: {message}"
    assert got in message, f"message does not say it got {got!r}: {message}"
    assert "expected" in message, f"message does not say what was expected: {message}"


@pytest.mark.parametrize("layout, expected", [
    (dict(batch_first=True), r"\(B, H\) = \(3, 5\)"),
    (dict(batched=False, B=1), r"\(H,\) for an unbatched x = \(5,\)"),
])
def test_h0_errors_name_the_layout(layout, expected):
    problem = random_problem(**{**dict(T=T, B=B, I=I, H=H, O=O), **layout})
    with pytest.raises(ValueError, match=rf"^h0: expected shape {expected}"):
        bptt(problem.params, problem.x, problem.y, np.zeros((7, H)), **problem.options)


BAD_PARAMS = [
    ("W not square", dict(W=np.zeros((H, H + 1))), ValueError, "params.W"),
    ("V wrong hidden size", dict(V=np.zeros((O, H + 1))), ValueError, "params.V"),
    ("b wrong size", dict(b=np.zeros(H + 1)), ValueError, "params.b"),
    ("c 2-d", dict(c=np.zeros((O, 1))), ValueError, "params.c"),
    ("U 1-d", dict(U=np.zeros(H)), ValueError, "params.U"),
    ("mixed dtypes", dict(b=P.b.astype(np.float32)), TypeError, "params"),
    ("integer array", dict(W=np.zeros((H, H), dtype=np.int32)), TypeError, "params.W"),
    ("float16", dict(c=np.zeros(O, dtype=np.float16)), TypeError, "params.c"),
    ("H = 0", dict(U=np.zeros((0, I)), W=np.zeros((0, 0)), V=np.zeros((O, 0)), b=np.zeros(0)),
     ValueError, "params"),
]


@pytest.mark.parametrize("changes, error, name", [pytest.param(*c[1:], id=c[0]) for c in BAD_PARAMS])
def test_inconsistent_params_are_rejected_at_construction(changes, error, name):
    with pytest.raises(error, match=rf"^{re.escape(name)}[:.]"):
        RNNParams(**{**dict(P.items()), **changes})


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(input_size=0), ValueError, "input_size"),
    (dict(hidden_size=2.5), TypeError, "hidden_size"),
    (dict(output_size=True), TypeError, "output_size"),
    (dict(dtype=np.int32), TypeError, "dtype"),
    (dict(dtype="float16"), TypeError, "dtype"),
    (dict(dtype="not a dtype"), TypeError, "dtype"),
])
def test_random_params_reject_bad_sizes_and_dtypes(kwargs, error, name):
    sizes = dict(input_size=2, hidden_size=3, output_size=4)
    with pytest.raises(error, match=rf"^{name}:"):
        RNNParams.random(**{**sizes, **kwargs})


def test_huge_finite_values_are_accepted():
    # The finiteness check's fast path (Σ a² finite) overflows on values like
    # these; the full check must then let them through.
    problem = random_problem(T=3, B=2, I=I, H=H, O=O, loss="mse")
    huge = problem.x.copy()
    huge[0, 0, 0] = 1e200
    L, g = bptt(problem.params, huge, problem.y, problem.h0, **problem.options)
    assert np.isfinite(L) and np.isfinite(g.W).all()


@pytest.mark.parametrize("layout, loss, expected", [
    (dict(), "cross_entropy", "y: expected class labels of shape (T, B) = (4, 3)"),
    (dict(batch_first=True), "cross_entropy", "y: expected class labels of shape (B, T) = (3, 4)"),
    (dict(batched=False, B=1), "cross_entropy", "y: expected class labels of shape (T,) = (4,)"),
    (dict(), "mse", "y: expected MSE targets shaped like o, (T, B, O) = (4, 3, 3)"),
    (dict(batch_first=True), "mse", "y: expected MSE targets shaped like o, (B, T, O) = (3, 4, 3)"),
    (dict(batched=False, B=1), "mse", "y: expected MSE targets shaped like o, (T, O) = (4, 3)"),
])
def test_target_shape_errors_spell_out_the_layout(layout, loss, expected):
    problem = random_problem(**{**dict(T=T, B=B, I=I, H=H, O=O, loss=loss), **layout})
    wrong = np.concatenate([problem.y, problem.y], axis=-1)
    with pytest.raises(ValueError) as caught:
        bptt(problem.params, problem.x, wrong, problem.h0, **problem.options)
    assert str(caught.value).startswith(expected), str(caught.value)


@pytest.mark.parametrize("batch_first, expected", [(False, "(T, B, I)"), (True, "(B, T, I)")])
def test_x_rank_error_spells_out_the_layout(batch_first, expected):
    with pytest.raises(ValueError) as caught:
        bptt(P, X[None], valid()["y"], None, batch_first=batch_first)
    assert str(caught.value) == (
        f"x: expected a 3-d array {expected} or an unbatched 2-d array (T, I), got shape (1, 4, 3, 2)"
    )


def test_messages_in_full():
    """A few whole messages, as a reader sees them."""
    args = valid()
    cases = [
        (dict(x=with_nan(X, (2, 1, 0))),
         "x: expected finite values, got nan at index (2, 1, 0) (1 non-finite of 24)"),
        (dict(x=X.astype(np.float32)),
         "x: expected a float64 array (the dtype of params; nothing is cast), got dtype float32"),
        (dict(y=np.full((T, B), O)),
         "y: expected class labels in [0, O) = [0, 3), got values from 3 to 3"),
        (dict(params=[P.U]),
         "params: expected an RNNParams or a NetworkParams, got list; build one with "
         "RNNParams.random(...) or NetworkParams.random(...) (or RNNParams(U=..., ...), "
         "NetworkParams.from_state_dict(state, cell=...))"),
    ]
    for changes, message in cases:
        with pytest.raises((ValueError, TypeError)) as caught:
            call_bptt({**args, **changes})
        assert str(caught.value) == message


@pytest.mark.parametrize("changes, message", [
    (dict(b=P.b.astype(np.float32)),
     "params: expected one dtype for U, W, V, b, c, got U float64, W float64, V float64, b float32, c float64"),
    (dict(U=np.zeros((H, I + 1)), W=np.zeros((H, H + 1))),
     "params.W: expected shape (H, H) = (5, 5) (H=5 and I=3 from U, O=3 from V), got (5, 6)"),
    (dict(U=np.zeros((H, I)), V=np.zeros((O, H + 1))),
     "params.V: expected shape (O, H) = (3, 5) (H=5 and I=2 from U, O=3 from V), got (3, 6)"),
    (dict(b=np.zeros(H + 1)),
     "params.b: expected shape (H,) = (5,) (H=5 and I=2 from U, O=3 from V), got (6,)"),
    (dict(c=np.zeros(O + 1)),
     "params.c: expected shape (O,) = (3,) (H=5 and I=2 from U, O=3 from V), got (4,)"),
    (dict(U=np.zeros((H, 0))),
     "params: expected I >= 1, got I = 0"),
    (dict(V=np.zeros((0, H)), c=np.zeros(0)),
     "params: expected O >= 1, got O = 0"),
    (dict(U=np.zeros((0, I)), W=np.zeros((0, 0)), V=np.zeros((O, 0)), b=np.zeros(0)),
     "params: expected H >= 1, got H = 0"),
])
def test_params_messages_in_full(changes, message):
    with pytest.raises((ValueError, TypeError)) as caught:
        RNNParams(**{**dict(P.items()), **changes})
    assert str(caught.value) == message


def test_problem_is_time_major_and_batched_whatever_the_layout():
    from manual_bptt.inputs.validation import check_problem

    for layout in (dict(), dict(batch_first=True), dict(batched=False, B=1)):
        problem = random_problem(**{**dict(T=T, B=B, I=I, H=H, O=O, loss="mse"), **layout})
        checked = check_problem(problem.params, problem.x, problem.y, problem.h0, **problem.options)
        n = 1 if "batched" in layout else B
        assert checked.x.shape == (T, n, I) and checked.y.shape == (T, n, O)
        assert checked.h0.shape == (n, H)
        assert check_problem(problem.params, problem.x, None, problem.h0, **problem.options,
                             need_y=False).y is None
