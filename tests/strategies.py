"""The strategies the suite draws from: the one place tests import them from.

They live in `manual_bptt.verification.strategies`, where the test kit (`torch_reference.kit`)
finds them too; this module re-exports them, with the helpers only tests use.
"""

from __future__ import annotations

from hypothesis import strategies as st

from manual_bptt.verification.strategies import (  # noqa: F401  (re-exported)
    CELLS,
    DTYPES,
    ELMAN_CELLS,
    LAYOUTS,
    MAX_T,
    MAX_T_ILL_CONDITIONED,
    MAX_NETWORK_T,
    MAX_WEIGHT_SCALE,
    dtypes,
    ill_conditioned_problems,
    layouts,
    losses,
    network_problems,
    nonlinearities,
    reductions,
    rnn_problems,
    seeds,
    sizes,
    weight_scales,
)


def label_sequences(O: int, T: int, B: int):
    """Class labels of shape (T, B), every label in [0, O)."""
    from hypothesis.extra import numpy as hnp

    return hnp.arrays(dtype="int64", shape=(T, B), elements=st.integers(0, O - 1))
