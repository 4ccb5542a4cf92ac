"""Hypothesis strategies for problems: sizes, options, layouts, weight scales, whole problems.

The project's suite draws its problems here (tests/strategies.py re-exports
this module), and so does the test kit (`torch_reference.kit`) that runs them
against anyone's bptt. This module needs hypothesis, an optional dependency
(`pip install 'manual-bptt[kit]'`); `manual_bptt` itself never imports it.

Every option of `rnn_problems`, `ill_conditioned_problems` and `network_problems`
takes either a strategy (`st.sampled_from(("lstm", "gru"))`) or a plain value
(`cell="lstm"`, the same as `st.just("lstm")`), as the kit's pinned options do. A
plain value is checked at once against the tables of manual_bptt.inputs.options:
a bad one is an error naming the option and listing what it can be.

A drawn problem is a `RandomProblem` (manual_bptt.verification.problems): its repr is the
`random_problem(...)` call that rebuilds it, so a failing example can be pasted
into a REPL. The arrays come from a drawn seed rather than from element-wise
strategies: the derivation's claims hold for every input, and shrinking the
sizes (to T = 1, B = 1, ...) is what makes a failure readable.
"""

from __future__ import annotations

try:
    from hypothesis import strategies as st
except ImportError as missing:  # pragma: no cover - exercised in a subprocess by the suite
    raise ImportError(
        "manual_bptt.verification.strategies needs hypothesis, which is not installed: "
        "pip install 'manual-bptt[kit]' (or pip install hypothesis)"
    ) from missing

from manual_bptt.inputs.checks import check_count, check_flag
from manual_bptt.inputs.options import (CELLS, DTYPES, LAYOUTS, LENGTH_KINDS, LOSSES, NONLINEARITIES, REDUCTIONS,
                                        TARGETS)
from manual_bptt.inputs.validation import check_option
from manual_bptt.model.names import ELMAN_CELLS as ELMAN_CELL_NAMES
from manual_bptt.model.params import as_float_dtype
from manual_bptt.verification.problems import random_network_problem, random_problem, weight_scale_is_valid

MAX_T = 40  # long enough for the recursion to matter, short enough for float32

dtypes = st.sampled_from(DTYPES)
nonlinearities = st.sampled_from(NONLINEARITIES)
losses = st.sampled_from(LOSSES)
reductions = st.sampled_from(REDUCTIONS)
layouts = st.sampled_from(LAYOUTS)
seeds = st.integers(min_value=0, max_value=2**32 - 1)
#: W scaled from PyTorch's initial scale (1) to ten times it; shrinks towards 1.
MAX_WEIGHT_SCALE = 10.0
weight_scales = st.floats(1.0, MAX_WEIGHT_SCALE)
#: Ill-conditioned problems need long sequences: the growth compounds per step.
MAX_T_ILL_CONDITIONED = 80


# ---- An option: a strategy, or a plain value checked and wrapped in st.just ---------


def _dtype_name(name: str, value) -> str:
    """"float64" / "float32" from a name or a NumPy dtype (np.float32, np.dtype("float64"))."""
    if isinstance(value, str):
        return check_option(name, value, DTYPES)
    return as_float_dtype(value, name=name).name


def _weight_scale(name: str, value) -> float:
    if not weight_scale_is_valid(value):
        raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
    return value


#: How a plain value of each option is checked: a table of inputs/options.py, or a check of its kind.
_CHECKS = {
    "dtype": _dtype_name,
    "nonlinearity": lambda name, value: check_option(name, value, NONLINEARITIES),
    "loss": lambda name, value: check_option(name, value, LOSSES),
    "reduction": lambda name, value: check_option(name, value, REDUCTIONS),
    "layout": lambda name, value: check_option(name, value, LAYOUTS),
    "cell": lambda name, value: check_option(name, value, CELLS),
    "lengths": lambda name, value: check_option(name, value, LENGTH_KINDS),
    "target": lambda name, value: check_option(name, value, TARGETS),
    "num_layers": check_count,
    "weight_scale": _weight_scale,
    "random_h0": check_flag,
    "projected": check_flag,
    "bidirectional": check_flag,
    "bias": check_flag,
    "truncated": check_flag,
}


def as_strategy(name: str, value) -> st.SearchStrategy:
    """`value` itself when it is a strategy; else the checked plain value, as st.just(value).

    A bad plain value is an error naming the option: a ValueError listing the values
    it can take (`cell: expected one of 'rnn_tanh', ..., got 'lstn'`), a TypeError
    for a value of the wrong kind (a flag that is not True or False).
    """
    if isinstance(value, st.SearchStrategy):
        return value
    return st.just(_CHECKS[name](name, value))


def _strategies(**options) -> dict:
    """Every option of a problem strategy as a strategy (see `as_strategy`)."""
    return {name: as_strategy(name, value) for name, value in options.items()}


def _limits(**limits) -> dict:
    """max_T, max_B, max_size: ints >= 1, checked before anything is drawn."""
    return {name: check_count(name, value) for name, value in limits.items()}


@st.composite
def sizes(draw, *, max_T: int = MAX_T, max_B: int = 5, max_size: int = 10) -> dict:
    """T, B, I, H, O, each from 1 up. T shrinks towards 1, the other sizes too."""
    return dict(
        T=draw(st.integers(1, max_T)),
        B=draw(st.integers(1, max_B)),
        I=draw(st.integers(1, max_size)),
        H=draw(st.integers(1, max_size)),
        O=draw(st.integers(1, max_size)),
    )


def _sizes_in_a_layout(draw, layout, **limits) -> tuple[dict, dict]:
    """Drawn sizes and the layout keywords (batch_first, batched); B = 1 when unbatched."""
    drawn = draw(sizes(**limits))
    chosen = draw(layout)
    if chosen == "unbatched":
        drawn["B"] = 1
    return drawn, dict(batch_first=chosen == "batch_first", batched=chosen != "unbatched")


def rnn_problems(
    *,
    dtype=dtypes,
    nonlinearity=nonlinearities,
    loss=losses,
    reduction=reductions,
    layout=layouts,
    random_h0=st.booleans(),
    weight_scale=st.just(1.0),
    max_T: int = MAX_T,
    max_B: int = 5,
    max_size: int = 10,
):
    """A whole problem: every option drawn unless a strategy or a plain value is given
    (`loss="mse"` pins it, `loss=st.sampled_from(...)` draws it; see `as_strategy`).
    W keeps PyTorch's initial scale unless a `weight_scale` is given.

    Labels are uniform on [0, O), MSE targets and x standard normal, h0 random
    (or None, meaning zeros): random upstream signals, so a gradient that runs
    the wrong way through time cannot pass by symmetry.
    """
    options = _strategies(dtype=dtype, nonlinearity=nonlinearity, loss=loss, reduction=reduction, layout=layout,
                          random_h0=random_h0, weight_scale=weight_scale)
    return _rnn_problems(**options, **_limits(max_T=max_T, max_B=max_B, max_size=max_size))


@st.composite
def _rnn_problems(draw, *, dtype, nonlinearity, loss, reduction, layout, random_h0, weight_scale,
                  max_T, max_B, max_size):
    """rnn_problems' draws, every option a strategy."""
    drawn, laid_out = _sizes_in_a_layout(draw, layout, max_T=max_T, max_B=max_B, max_size=max_size)
    return random_problem(
        **drawn,
        seed=draw(seeds),
        dtype=draw(dtype),
        nonlinearity=draw(nonlinearity),
        loss=draw(loss),
        reduction=draw(reduction),
        **laid_out,
        random_h0=draw(random_h0),
        weight_scale=draw(weight_scale),
    )


def ill_conditioned_problems(*, dtype=dtypes, max_T: int = MAX_T_ILL_CONDITIONED, max_size: int = 32, **options):
    """Problems whose W is scaled up to MAX_WEIGHT_SCALE times, with sequences up to
    80 steps and hidden sizes up to 32: where two correct implementations can
    disagree in the fifth digit, or in all of them. tanh only (relu with a large
    W overflows in tens of steps); the other options as `rnn_problems`."""
    return rnn_problems(dtype=dtype, nonlinearity="tanh", weight_scale=weight_scales,
                        max_T=max_T, max_size=max_size, **options)



# Networks: the nn.RNN family (manual_bptt.fast.network), drawn whole.
ELMAN_CELLS = tuple(ELMAN_CELL_NAMES.values())
LENGTHS = LENGTH_KINDS
MAX_NETWORK_T = 12  # several chunks for truncation, padding in every position; torch stays ~5 ms


def network_problems(
    *,
    cell=st.sampled_from(CELLS),
    projected=st.booleans(),
    dtype=dtypes,
    num_layers=st.integers(1, 3),
    bidirectional=st.booleans(),
    bias=st.booleans(),
    lengths=st.sampled_from(LENGTHS),
    target=st.sampled_from(TARGETS),
    truncated=st.booleans(),
    loss=losses,
    reduction=reductions,
    layout=layouts,
    random_h0=st.booleans(),
    max_T: int = MAX_NETWORK_T,
    max_B: int = 4,
    max_size: int = 6,
):
    """A whole network problem (`random_network_problem`), every option drawn unless given.

    Lengths are drawn in any order, including all full and all 1; truncation only
    for one direction (a bidirectional network has no chunks), with chunk sizes
    from 1 to beyond T; unbatched problems have no lengths; an LSTM projects
    (proj_size in [1, H)) when `projected` draws True and H > 1. Every option is a
    strategy or a plain value (`cell="lstm"`, `num_layers=2`; see `as_strategy`).
    """
    options = _strategies(cell=cell, projected=projected, dtype=dtype, num_layers=num_layers,
                          bidirectional=bidirectional, bias=bias, lengths=lengths, target=target,
                          truncated=truncated, loss=loss, reduction=reduction, layout=layout, random_h0=random_h0)
    return _network_problems(**options, **_limits(max_T=max_T, max_B=max_B, max_size=max_size))


@st.composite
def _network_problems(draw, *, cell, projected, dtype, num_layers, bidirectional, bias, lengths, target, truncated,
                      loss, reduction, layout, random_h0, max_T, max_B, max_size):
    """network_problems' draws, every option a strategy."""
    drawn, laid_out = _sizes_in_a_layout(draw, layout, max_T=max_T, max_B=max_B, max_size=max_size)
    two_way = draw(bidirectional)
    truncate = None
    if not two_way and draw(truncated):
        truncate = draw(st.integers(1, drawn["T"] + 2))
    chosen_cell = draw(cell)
    proj_size = 0
    if chosen_cell == "lstm" and drawn["H"] > 1 and draw(projected):
        proj_size = draw(st.integers(1, drawn["H"] - 1))
    return random_network_problem(
        **drawn,
        cell=chosen_cell,
        proj_size=proj_size,
        num_layers=draw(num_layers),
        bidirectional=two_way,
        bias=draw(bias),
        lengths="none" if not laid_out["batched"] else draw(lengths),
        target=draw(target),
        truncate=truncate,
        seed=draw(seeds),
        dtype=draw(dtype),
        loss=draw(loss),
        reduction=draw(reduction),
        **laid_out,
        random_h0=draw(random_h0),
    )
