"""Reading a figure's data back out of its matplotlib artists, and the sums to compare them with."""

from __future__ import annotations

import numpy as np


def panel_axes(fig):
    """The figure's axes less the colour bars, in the order they were made."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def diagonal_sums(norms):
    """Σ_t norms[t-1, t-1-d] for each d, by an explicit loop over (t, k)."""
    T = norms.shape[0]
    sums = np.zeros(T)
    for t in range(1, T + 1):
        for k in range(1, t + 1):
            sums[t - k] += norms[t - 1, k - 1]
    return sums


def assert_heat_map_shows(image, norms):
    """The drawn array is norms, with exactly the cells k > t (and zero terms) left blank."""
    drawn = image.get_array()
    T = norms.shape[0]
    above = np.triu(np.ones((T, T), dtype=bool), k=1)
    np.testing.assert_array_equal(np.ma.getmaskarray(drawn), above | (norms <= 0))
    np.testing.assert_array_equal(drawn.data[~above], norms[~above])
