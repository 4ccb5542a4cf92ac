"""The cells' whole-sequence passes, done a few steps at a time (manual_bptt/fast/cells/chunks.py).

The test problems are small enough to be one chunk, so the chunked path is forced
here by shrinking CHUNK_ELEMENTS: each chunk then holds one to a few steps and the
last one is short. Every step's values go through the same element-wise operations
whatever the chunking, so the results must be bit-identical, not merely close.
"""

from __future__ import annotations

from unittest import mock

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from manual_bptt import bptt
from manual_bptt.fast.cells import chunks
from manual_bptt.fast.cells.chunks import CHUNK_ELEMENTS, time_chunks

from .strategies import network_problems


@example(T=CHUNK_ELEMENTS + 1, row=1)                               # one element per step: chunks of CHUNK_ELEMENTS
@given(T=st.integers(1, 3 * CHUNK_ELEMENTS), row=st.integers(1, 3 * CHUNK_ELEMENTS))
def test_time_chunks_cover_every_step_once_in_order(T, row):
    steps = time_chunks(T, row)
    assert [t for s in steps for t in range(s.start, s.stop)] == list(range(T))
    n = max(1, CHUNK_ELEMENTS // row)
    assert all(s.stop - s.start == n for s in steps[:-1]), steps
    assert 1 <= steps[-1].stop - steps[-1].start <= n, steps


@settings(max_examples=60, deadline=None)
@given(network_problems(cell=st.sampled_from(("lstm", "gru"))), st.integers(1, 40))
def test_gated_gradients_do_not_depend_on_the_chunking(problem, elements):
    L_whole, whole = problem.run(bptt)
    with mock.patch.object(chunks, "CHUNK_ELEMENTS", elements):
        L_chunked, chunked = problem.run(bptt)
    assert L_chunked == L_whole
    for (name, a), (_, b) in zip(whole.items(), chunked.items()):
        np.testing.assert_array_equal(b, a, err_msg=f"{name} with chunks of {elements} elements per block")
