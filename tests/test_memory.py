"""bptt keeps what the derivation needs and no more: a deterministic memory check.

tracemalloc counts every buffer NumPy allocates, so the peak of one call is the
same on every run (no timing involved). What bptt must hold at its peak:

- the activations a(t), h(t), o(t): (T, B, H), (T+1, B, H), (T, B, O);
- ∂L/∂a(t), (T, B, H), and the returned ∂L/∂x(t), (T, B, I) (∂L/∂o and φ'(a)
  reuse the buffers of o and a);
- arrays of the size of the parameters: the returned gradients, ∂L/∂h0 and
  one contiguous copy of Wᵀ.

The bound is that sum plus a margin of a quarter of one (T, B, H) float64
buffer, for NumPy's temporaries of (T·B)-sized rows, which vary between NumPy
versions (measured with NumPy 2.4: 8.2k values, under the parameter-sized
allowance alone). Any further float buffer of a whole sequence breaks it: a
copy of o (T, B, O) by 7k values, a copy of a or of ∂L/∂a (T, B, H) by 27k. A
boolean (T, B, H) mask (an eighth of a float64 buffer) fits within the margin;
that is a choice: the bound is about whole float buffers.
"""

from __future__ import annotations

import tracemalloc

import pytest

from manual_bptt import bptt
from manual_bptt.verification.problems import random_problem

T, B, I, H, O = 40, 16, 8, 64, 32
FLOAT64 = 8
ACTIVATIONS = (T * B * H + (T + 1) * B * H + T * B * O) * FLOAT64      # a, h, o
BACKWARD = (T * B * H + T * B * I) * FLOAT64                           # ∂L/∂a, ∂L/∂x
PARAMETER_SIZED = (2 * H * H + H * I + O * H + H + O + B * H) * FLOAT64  # dW, Wᵀ, dU, dV, db, dc, dh0
MARGIN = T * B * H * FLOAT64 // 4                                      # see the module docstring
BOUND = ACTIVATIONS + BACKWARD + PARAMETER_SIZED + MARGIN


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
def test_no_sequence_sized_buffer_beyond_the_activations(loss, nonlinearity):
    problem = random_problem(T=T, B=B, I=I, H=H, O=O, loss=loss, nonlinearity=nonlinearity)
    peak = peak_bytes(problem)
    assert peak <= BOUND, (
        f"bptt's peak allocation is {peak} bytes, over the bound of {BOUND}: activations {ACTIVATIONS}, "
        f"∂L/∂a and ∂L/∂x {BACKWARD}, parameter-sized {PARAMETER_SIZED}, margin {MARGIN}; "
        f"{(peak - BOUND) / (T * B * FLOAT64):.1f} values per (t, batch) row too many"
    )
