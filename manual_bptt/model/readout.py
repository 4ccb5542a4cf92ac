"""The output layer and the loss: o = V h + c read off the top layer, L, and the gradients back.

    o = V h_top + c        V = head.weight (O, D·H_out), c = head.bias (O,)
    L = Σ L(·)             over the labels scored (losses.py: cross-entropy or ½‖o - y‖²)

target "each_step": h_top is the top layer's output at every real step (T, B, D·H_out),
and each real step has a label; padded steps are not scored.
target "last": h_top is the top layer's final state h_n (B, D·H_out), one label per
sequence.

"mean" divides by the number of labels scored (elements for MSE): the one rule of
`losses.loss_and_grad`, shared with the single-layer `bptt`, applied to the rows scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import losses
from .reductions import column_sums


@dataclass
class ReadoutGrads:
    """L, ∂L/∂V, ∂L/∂c and ∂L/∂h_top (shaped like h_top)."""

    L: float
    V: np.ndarray
    c: np.ndarray
    h_top: np.ndarray


def readout(V: np.ndarray, c: np.ndarray, h_top: np.ndarray, y: np.ndarray, *, loss: str, reduction: str,
            scored: np.ndarray | None = None) -> ReadoutGrads:
    """L and its gradients for outputs o = V h_top + c.

    h_top:  (N..., F), any leading shape; y: labels (N...) or targets (N..., O)
    scored: a boolean array of the leading shape, True where a label counts; None for all
    """
    lead, F = h_top.shape[:-1], h_top.shape[-1]
    rows = h_top.reshape(-1, F)
    y = y.reshape((-1,) + y.shape[len(lead):])                      # one row per label
    if scored is not None:
        keep = scored.reshape(-1)
        rows, y = rows[keep], y[keep]
    o = rows @ V.T                                                  # V h
    o += c                                                          # o = V h + c
    L, do = losses.loss_and_grad(loss, reduction, o, y, overwrite_o=True)
    dV = do.T @ rows                                                # Σ ∂L/∂o hᵀ
    dc = column_sums(do)                                            # Σ ∂L/∂o
    dh_rows = do @ V                                                # Vᵀ ∂L/∂o
    if scored is None:
        dh = dh_rows.reshape(h_top.shape)
    else:
        dh = np.zeros((keep.size, F), dtype=h_top.dtype)            # unscored rows get no gradient
        dh[keep] = dh_rows
        dh = dh.reshape(h_top.shape)
    return ReadoutGrads(L=L, V=dV, c=dc, h_top=dh)
