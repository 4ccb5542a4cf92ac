"""The readable reference: BPTT for every cell and network option, written as the derivation reads.

`bptt(params, x, y, h0=None, **options)` takes what `manual_bptt.bptt` takes and
returns what it returns, computed the plain way: each cell's step forward and
backward one formula a line (elman.py, lstm.py, gru.py), one direction over time
as a loop over t (sequence.py), layers and directions as composition (network.py),
the one-layer RNNParams model as the Elman chapter (rnn.py). Whole-array NumPy
expressions, a named cache per step, nothing written in place.

`manual_bptt.bptt`, the fast path, is tested equal to this (float64 within 1e-12
relative, tests/test_reference.py), and this is tested against torch.autograd
(tests/test_reference_against_torch.py). It needs NumPy alone.

`rtrl(params, x, y, h0=None, **options)` (rtrl.py) computes the one-layer model's same
gradients the other way round, forward in time through the sensitivities ∂h(t)/∂θ
(real-time recurrent learning), tested equal to `bptt` (tests/test_rtrl.py).

Conventions, here and in every module of the package: rows are batch elements, so the
derivation's U x(t) is `x @ U.T` and Wᵀ ∂L/∂a(t) is `da @ W`; `h[t]` is h(t), `h[0]` = h0.
"""

from __future__ import annotations

import numpy as np

from ..inputs.network_validation import check_network_problem
from ..inputs.options import Options, takes_options
from ..inputs.validation import check_problem
from .network import network_bptt
from .rnn import rnn_bptt
from .rtrl import rtrl


@takes_options
def bptt(params, x, y, h0=None, **options):
    """The loss L and its gradient for every parameter, for h0 and for x: `manual_bptt.bptt`'s
    arguments, options, checks, results and errors, message for message.

    params: RNNParams (U (H, I), W (H, H), V (O, H), b (H,), c (O,)) or NetworkParams (torch's keys)
    x:      (T, B, I); (B, T, I) with batch_first; (T, I) unbatched
    y:      labels (T, B) or MSE targets (T, B, O), in x's layout; with target="last" (B,) / (B, O)
    h0:     (B, H) for an RNNParams; (L·D, B, H_out) for a network, an LSTM's a pair (h0, c0); None: zeros
    Returns (L as a Python float, RNNGrads or NetworkGrads), every gradient shaped like its
    argument and of the parameters' dtype.
    """
    network, options = Options.for_params("bptt", params, options)
    with np.errstate(under="ignore"):                  # underflow to 0 is rounding, not an error (as in manual_bptt.bptt)
        if network:
            return network_bptt(check_network_problem(params, x, y, h0, options))
        return rnn_bptt(check_problem(params, x, y, h0, options))


__all__ = ["bptt", "rtrl"]
