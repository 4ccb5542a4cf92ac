"""How close two gradients must be to count as equal: one table, per dtype.

The measure is taken per gradient, on its largest element:

    max |actual - reference|  <=  rtol · max |reference|  +  atol

Element-wise relative error is the wrong measure here: an element near zero is
the difference of larger terms (a sum over t and over the batch), and its
relative error says nothing about the gradient's correctness.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model.params import as_float_dtype


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float
    reason: str

    def allowed(self, max_abs_reference: float) -> float:
        """The largest max |Δ| accepted for a reference whose largest element is this."""
        return self.rtol * max_abs_reference + self.atol


TOLERANCES = {
    np.dtype(np.float64): Tolerance(
        rtol=1e-11,
        atol=1e-13,
        reason=(
            "Two evaluations of the same sums in a different order differ by a few "
            "ulps (2.2e-16) per operation; over T ≤ a few hundred steps of products "
            "with |W| ≈ 1 that stays far below 1e-11 of the largest element. "
            "atol covers gradients that are exactly zero in one and ~1e-17 in the other."
        ),
    ),
    np.dtype(np.float32): Tolerance(
        rtol=1e-4,
        atol=1e-6,
        reason=(
            "float32 has 24-bit mantissas (1.2e-7 per operation); torch and NumPy sum "
            "over T·B rows in different orders and with different BLAS blockings, so "
            "the difference grows with T·B and the recursion depth: 1e-4 of the largest "
            "element leaves headroom for T ≈ 40 and hidden sizes in the tens."
        ),
    ),
}


def tolerance_for(dtype) -> Tolerance:
    """The tolerance for gradients of this dtype (float32 or float64)."""
    return TOLERANCES[as_float_dtype(dtype)]
