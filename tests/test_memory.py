"""bptt keeps what the derivation needs and little more: a deterministic memory check.

tracemalloc counts every buffer NumPy allocates, so the peak of one call is the
same on every run (no timing involved). For this problem the activations a, h,
o take 103,424 float64 values; ∂L/∂a and the returned ∂L/∂x add 46,080 (1.45×),
and per-row vectors of the loss bring the measured peak to 1.53×. Computing
∂L/∂o in a copy of o would take it to 1.72×; φ'(a) in a fresh buffer to 1.92×
for tanh and 1.58× for relu (a boolean array). The bound, 1.55×, lies between.
"""

from __future__ import annotations

import tracemalloc

import pytest

from manual_bptt import bptt
from manual_bptt.problems import random_problem

T, B, I, H, O = 40, 16, 8, 64, 32
ACTIVATIONS = (T * B * H + (T + 1) * B * H + T * B * O) * 8  # a, h, o in float64


def peak_bytes(problem) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        problem.run(bptt)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_peak_allocation_stays_near_the_activations(loss, nonlinearity):
    problem = random_problem(T=T, B=B, I=I, H=H, O=O, loss=loss, nonlinearity=nonlinearity)
    ratio = peak_bytes(problem) / ACTIVATIONS
    assert ratio < 1.55, f"bptt allocated {ratio:.2f}x the activations a, h, o (expected about 1.53x)"
