"""Gradients of the twin model from torch.autograd, and the comparison report."""

from __future__ import annotations

import copy
import functools

import numpy as np
import torch

from manual_bptt import GradientReport, NetworkGrads, NetworkParams, RNNGrads, bptt, compare_grads, tolerance_for
from manual_bptt.verification.conditioning import rounding_spread
from manual_bptt.inputs.network_validation import NetworkProblem, check_network_problem
from manual_bptt.model.names import CELL_FACTS, HEAD_SYMBOLS, torch_name
from manual_bptt.inputs.options import Options, takes_options
from manual_bptt.fast.rnn import check_finite_result
from manual_bptt.inputs.validation import Problem, check_problem

from .network_twin import network_autograd, network_torch_bptt, with_autograd


@takes_options
def torch_bptt(params, x, y, h0=None, **options) -> tuple[float, RNNGrads | NetworkGrads]:
    """`bptt`'s result computed by torch.autograd on the twin model.

    Same arguments, same checks, same result types as `manual_bptt.bptt`: L as
    a Python float and an RNNGrads of NumPy arrays of the dtype of params. The
    twin receives the caller's layout as it is (batch_first, unbatched), so
    PyTorch's own handling of it is what is tested. Raises AssertionError if
    the two RNN biases of the twin get different gradients, NonFiniteError as
    `bptt` does if the result overflows. Works inside torch.no_grad() and
    torch.inference_mode() too. Leaves torch's global state (default dtype,
    grad mode, threads, random generator) untouched.

    A NetworkParams goes to its twin, nn.RNN / nn.LSTM / nn.GRU + nn.Linear
    (torch_reference.network_twin), with the network's keywords.
    """
    network, options = Options.for_params("torch_bptt", params, options)
    if network:
        return network_torch_bptt(params, x, y, h0, options)
    problem = check_problem(params, x, y, h0, options)
    with with_autograd():
        L, grads = _torch_bptt(problem)
    check_finite_result(problem, L, grads, computed_by="torch.autograd")
    return L, grads


def _torch_bptt(problem: Problem) -> tuple[float, RNNGrads]:
    """Autograd on the network twin of the one-layer network (b_ih = b, b_hh = 0), from the
    checked arguments: the network's witness, its gradients read back as U W b V c."""
    p = problem.params
    network = NetworkParams.from_rnn_params(p, nonlinearity=problem.nonlinearity)
    L, g = network_autograd(NetworkProblem(
        params=network, x=problem.x, y=problem.y, state0=[(problem.h0,)], lengths=None, mask=None,
        target="each_step", truncate=None, loss=problem.loss, reduction=problem.reduction,
        batched=problem.batched, batch_first=problem.batch_first,
    ))
    layer = {symbol: g.params[torch_name(symbol, 0, 0)] for symbol in ("U", "W", "b_ih", "b_hh")}
    tol = tolerance_for(p.dtype)
    db_ih, db_hh = layer["b_ih"], layer["b_hh"]
    scale = float(np.abs(db_ih).max()) if db_ih.size else 0.0
    if float(np.abs(db_ih - db_hh).max(initial=0.0)) > tol.allowed(scale):
        raise AssertionError(
            f"torch gave {torch_name('b_ih', 0, 0)} and {torch_name('b_hh', 0, 0)} different gradients; "
            "both should be ∂L/∂b"
        )
    grads = RNNGrads(
        U=layer["U"], W=layer["W"], V=g.params[HEAD_SYMBOLS["V"]], b=db_ih, c=g.params[HEAD_SYMBOLS["c"]],
        h0=g.h0[0],                                        # layer 0's of (1, B, H), or of (1, H) unbatched
        x=g.x,
    )
    return L, grads


@takes_options
def compare(params, x, y, h0=None, *, manual=None, **options) -> GradientReport:
    """Run `bptt` (or `manual`) and `torch_bptt` on the same problem; a row per gradient and for L.

    `manual`: any callable with bptt's signature and result, (L, RNNGrads) — or
    (L, NetworkGrads) for a NetworkParams — checked instead of the project's own
    `bptt`; the report names it. It gets copies of the arrays (params, x, y, h0
    and every array option, such as lengths), so it cannot change what torch sees
    or the caller's. What it returns must be a pair (L, grads): L a real number,
    grads of the expected class with every gradient present as a NumPy array of
    real floats; anything else is a TypeError (ValueError for a missing or unknown
    gradient) naming the candidate, what it returned and what was expected. A
    gradient of the wrong shape is not an error but a FAIL row (max |Δ| = inf).

    The problem's precision is judged: every row's tolerance is that of the
    dtype of params, whatever dtype the candidate returns. Gradients of another
    dtype are compared by value and named in a note under the table (see
    `compare_grads`): float32 gradients for a float64 problem are held to
    float64's tolerance, float64 ones for a float32 problem to float32's.

    `report.ok` is True when every row is within the tolerance of the dtype
    (manual_bptt.TOLERANCES) or, on an ill-conditioned problem, within what
    rounding alone explains there: when some row is beyond the tolerance, the
    spread of the project's own `bptt` under ulp-sized perturbations of every
    input is measured (manual_bptt.verification.conditioning; a few `bptt` calls) and each
    row is judged against it. `print(report)` shows the table. For a NetworkParams
    the rows are named by the state-dict keys, then h0 (c0) and x.
    """
    network, checked = Options.for_params("compare", params, options)
    if network:
        check_network_problem(params, x, y, h0, checked)
        if "batch_first" not in options:                  # the module's layout, said to every side
            options = {**options, "batch_first": checked.batch_first}
    else:
        check_problem(params, x, y, h0, checked)
    name = _candidate_name(manual)
    if manual is None:
        L, grads = bptt(params, x, y, h0, **options)
    else:
        result = manual(*_copies(params, x, y, h0), **_option_copies(options))
        L, grads = _checked_candidate_result(name, result, params)
    L_ref, grads_ref = torch_bptt(params, x, y, h0, **options)
    report_of = functools.partial(
        compare_grads, grads, grads_ref, dtype=params.dtype, loss=L, reference_loss=L_ref,
        actual_name=name, reference_name="torch.autograd",
    )
    notes = ()
    if network and params.dropout:
        notes = (f"dropout={params.dropout:g} between layers is not applied: the network is checked as its "
                 "eval-mode function (model.eval()), dropout's mask being random",)
    report = report_of(notes=notes)
    if report.ok:
        return report   # within the fixed tolerances: as strict as ever, and no extra cost
    return report_of(notes=notes, rounding=rounding_spread(params, x, y, h0, **options).allowances())


# ---- compare(manual=fn): checking someone else's bptt ------------------------------


def _candidate_name(manual) -> str:
    """The name the report gives the function checked (raises TypeError for a non-callable)."""
    if manual is None:
        return "manual bptt"
    if not callable(manual):
        raise TypeError(
            f"manual: expected a callable with bptt's signature, got {type(manual).__name__}"
        )
    return getattr(manual, "__qualname__", None) or repr(manual)


def _copies(params, x, y, h0):
    """Deep copies of the arguments, so a candidate that writes into them harms nothing."""
    if isinstance(h0, (tuple, list)):                              # an LSTM's (h0, c0)
        h0 = tuple(np.array(state) for state in h0)
    elif h0 is not None:
        h0 = np.array(h0)
    return params.copy(), np.array(x), np.array(y), h0


def _option_copies(options: dict) -> dict:
    """The keyword options with every mutable value (lengths as an array or a list) copied."""
    return {name: copy.deepcopy(value) for name, value in options.items()}


def _checked_candidate_result(name: str, result, params) -> tuple[float, RNNGrads | NetworkGrads]:
    """(L, grads) from what the candidate returned, or a TypeError/ValueError saying what is wrong.

    Checked: a pair; L a real number; grads of the class bptt returns for these
    params; every gradient present (no unknown one) as an array of real floats,
    not a torch tensor. Shapes are not checked here: a wrong shape is a FAIL row.
    """
    expected = NetworkGrads if isinstance(params, NetworkParams) else RNNGrads
    like_bptt = f"(L, {expected.__name__}) like bptt"
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        got = _described(result)
        if isinstance(result, (tuple, list)):
            got = f"a {type(result).__name__} of {len(result)} item{'' if len(result) == 1 else 's'}"
        raise TypeError(f"manual: expected {name} to return {like_bptt}, got {got}")
    L, grads = result
    if not isinstance(grads, expected):
        raise TypeError(
            f"manual: expected {name} to return {like_bptt}, got ({type(L).__name__}, {type(grads).__name__})"
        )
    if isinstance(L, (bool, np.bool_)) or not isinstance(L, (float, int, np.floating, np.integer)):
        hint = "; return float(L)" if isinstance(L, (torch.Tensor, np.ndarray)) else ""
        raise TypeError(f"manual: expected {name} to return L as a real number first, got {_described(L)}{hint}")
    _check_gradient_names(name, grads, params)
    for key, value in grads.items():
        _check_gradient(name, key, value, params.dtype)
    return L, grads


def _check_gradient_names(name: str, grads, params) -> None:
    """Every gradient bptt returns for these params is there, and nothing else."""
    if isinstance(grads, RNNGrads):
        return                                                     # a dataclass: its fields are the names
    wanted = list(params.keys())
    got = list(grads.params) if isinstance(grads.params, dict) else None
    if got is None:
        raise TypeError(
            f"manual: expected {name} to return NetworkGrads whose params is a dict {{name: array}}, "
            f"got {type(grads.params).__name__}"
        )
    missing = [key for key in wanted if key not in got]
    unknown = [key for key in got if key not in wanted]
    has_c = "c" in CELL_FACTS[params.cell].states                 # an LSTM's c0
    if has_c and grads.c0 is None:
        missing.append("c0")
    if missing or unknown:
        said = "; ".join(part for part in (
            f"none for {', '.join(map(repr, missing))}" if missing else "",
            f"unknown {', '.join(map(repr, unknown))}" if unknown else "") if part)
        raise ValueError(
            f"manual: expected {name} to return NetworkGrads with a gradient for every key of "
            f"params.keys(), h0{', c0' if has_c else ''} and x, got {said}"
        )


def _check_gradient(name: str, key: str, value, dtype) -> None:
    """One gradient: a NumPy array (or array-like) of real floats."""
    expected = f"a NumPy array of real floats ({dtype}, the dtype of params)"
    if isinstance(value, torch.Tensor):
        raise TypeError(
            f"manual: expected {name} to return {key} as {expected}, got a torch Tensor; "
            "return .detach().cpu().numpy()"
        )
    try:
        array = np.asarray(value)
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(
            f"manual: expected {name} to return {key} as {expected}, got {_described(value)} ({error})"
        ) from None
    if array.dtype.kind != "f":
        raise TypeError(f"manual: expected {name} to return {key} as {expected}, got {_described(value)}")


def _described(value) -> str:
    """What a candidate returned, in a few words: its type, and dtype and shape for an array."""
    if value is None:
        return "None"
    kind = "NumPy array" if isinstance(value, np.ndarray) else type(value).__name__
    article = "an" if kind[0] in "aeiou" else "a"
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return f"{article} {kind} of dtype {value.dtype} and shape {tuple(value.shape)}"
    if isinstance(value, (int, float, complex, np.number)):
        return f"{article} {kind} ({value!r})"
    return f"{article} {kind}"
