"""The derivation's own model (defined in the book's section 6.8, differentiated in 6.9): the one-layer
Elman RNN of an RNNParams.

    a(t) = U x(t) + W h(t-1) + b       h(t) = φ(a(t))       o(t) = V h(t) + c       L = Σ_t L(t)

It is the Elman cell (elman.py) run over the sequence (sequence.py) and read out
at every step (manual_bptt.model.readout): the network of network.py with one layer and
one direction, whose parameters are named U, W, b, V, c. Arrays are time-major,
(T, B, ·); h[t] is h(t) and h[0] is h0.
"""

from __future__ import annotations

import numpy as np

from ..fast.rnn import check_finite_result
from ..inputs.validation import Problem
from ..model.network_params import LayerWeights
from ..model.params import RNNGrads
from ..model.readout import readout
from .elman import ElmanCell
from .sequence import sequence_backward, sequence_forward


def rnn_bptt(problem: Problem) -> tuple[float, RNNGrads]:
    """L and ∂L/∂ U, W, V, b, c, h0 and x, for a validated one-layer problem."""
    p = problem.params
    cell = ElmanCell(problem.nonlinearity)
    w = LayerWeights(U=p.U, W=p.W, b_ih=p.b, b_hh=np.zeros_like(p.b))    # b = b_ih + b_hh, with b_hh = 0
    h0 = np.zeros((problem.B, p.hidden_size), dtype=p.dtype) if problem.h0 is None else problem.h0
    forward = sequence_forward(cell, w, problem.x, {"h": h0}, mask=None)
    r = readout(p.V, p.c, forward.h[1:], problem.y, loss=problem.loss, reduction=problem.reduction)
    back = sequence_backward(cell, w, forward, r.h_top)
    grads = RNNGrads(
        U=back.weights["U"], W=back.weights["W"], V=r.V, b=back.weights["b_ih"], c=r.c,
        h0=problem.h0_to_caller_layout(back.state0["h"]),
        x=problem.to_caller_layout(back.x),
    )
    check_finite_result(problem, r.L, grads, computed_by="bptt")
    return r.L, grads
