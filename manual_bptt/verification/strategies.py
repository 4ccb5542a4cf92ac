"""Hypothesis strategies for problems: sizes, options, layouts, weight scales, whole problems.

The project's suite draws its problems here (tests/strategies.py re-exports
this module), and so does the test kit (`torch_reference.kit`) that runs them
against anyone's bptt. This module needs hypothesis, an optional dependency
(`pip install 'manual-bptt[kit]'`); `manual_bptt` itself never imports it.

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

from manual_bptt.inputs.validation import LOSSES, NONLINEARITIES, REDUCTIONS
from manual_bptt.verification.problems import random_network_problem, random_problem

MAX_T = 40  # long enough for the recursion to matter, short enough for float32
DTYPES = ("float64", "float32")
LAYOUTS = ("time_major", "batch_first", "unbatched")

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


@st.composite
def rnn_problems(
    draw,
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
    """A whole problem: every option drawn unless a strategy (or st.just) is given.
    W keeps PyTorch's initial scale unless a `weight_scale` strategy is given.

    Labels are uniform on [0, O), MSE targets and x standard normal, h0 random
    (or None, meaning zeros): random upstream signals, so a gradient that runs
    the wrong way through time cannot pass by symmetry.
    """
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
    return rnn_problems(dtype=dtype, nonlinearity=st.just("tanh"), weight_scale=weight_scales,
                        max_T=max_T, max_size=max_size, **options)



# Networks: the nn.RNN family (manual_bptt.fast.network), drawn whole.
ELMAN_CELLS = ("rnn_tanh", "rnn_relu")
CELLS = ELMAN_CELLS + ("lstm", "gru")
LENGTHS = ("none", "full", "random", "one")
TARGETS = ("each_step", "last")
MAX_NETWORK_T = 12  # several chunks for truncation, padding in every position; torch stays ~5 ms


@st.composite
def network_problems(
    draw,
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
    (proj_size in [1, H)) when `projected` draws True and H > 1.
    """
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
