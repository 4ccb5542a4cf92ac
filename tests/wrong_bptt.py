"""Deliberately wrong candidates with bptt's signature, for the sweep's exit-code tests.

`bptt sweep --manual tests.wrong_bptt:NAME` checks one of them instead of bptt.
"""

from __future__ import annotations

from manual_bptt import bptt


def transposed_W(params, x, y, h0=None, **options):
    """The classic slip: ∂L/∂W transposed (h(t-1) ∂L/∂a(t)ᵀ instead of ∂L/∂a(t) h(t-1)ᵀ)."""
    L, g = bptt(params, x, y, h0, **options)
    g.W = g.W.T.copy()
    return L, g


def V_off_by_1e_3(params, x, y, h0=None, **options):
    """∂L/∂V 0.1% too large: beyond float32's tolerance as well as float64's."""
    L, g = bptt(params, x, y, h0, **options)
    g.V = g.V * (1 + 1e-3)
    return L, g


def raises(params, x, y, h0=None, **options):
    raise RuntimeError("this candidate always raises")


def reverse_direction_W_transposed(params, x, y, h0=None, **options):
    """For networks: ∂L/∂W of the top layer's reverse direction (or, with one direction,
    of the top layer) transposed — a square weight only when H_out = H."""
    L, g = bptt(params, x, y, h0, **options)
    top = params.num_layers - 1
    name = f"weight_hh_l{top}" + ("_reverse" if params.bidirectional else "")
    if g.params[name].shape[0] == g.params[name].shape[1]:
        g.params[name] = g.params[name].T.copy()
    else:
        g.params[name] = g.params[name] * 1.01
    return L, g
