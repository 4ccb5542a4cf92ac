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
    """The drawn array is norms, with exactly the cells k > t (and zero terms) left out of the log
    scale; those cells drawn by the images labelled "no term (k > t)" and "exactly 0", colours apart."""
    drawn = image.get_array()
    T = norms.shape[0]
    above = np.triu(np.ones((T, T), dtype=bool), k=1)
    zero = ~above & (norms <= 0)
    np.testing.assert_array_equal(np.ma.getmaskarray(drawn), above | zero)
    np.testing.assert_array_equal(drawn.data[~above], norms[~above])
    layers = {layer.get_label(): layer for layer in image.axes.images if layer is not image}
    legend = [text.get_text() for text in image.axes.get_legend().get_texts()] if image.axes.get_legend() else []
    for label, cells in (("no term (k > t)", above), ("exactly 0", zero)):
        if cells.any():
            np.testing.assert_array_equal(~np.ma.getmaskarray(layers[label].get_array()), cells)
            assert label in legend, legend
        else:
            assert label not in layers and label not in legend
    if above.any() and zero.any():
        colour = {label: tuple(layers[label].cmap(0.5)) for label in layers}
        assert colour["no term (k > t)"] != colour["exactly 0"]
    assert image.colorbar is not None and "‖term (t, k)‖" in image.colorbar.ax.get_ylabel()


def assert_integer_ticks(axis):
    """Every tick of the axis (within its view) is at a whole number: steps and lags have no fractions."""
    low, high = sorted(axis.get_view_interval())
    ticks = [tick for tick in axis.get_majorticklocs() if low <= tick <= high]
    assert ticks and all(float(tick).is_integer() for tick in ticks), ticks


def assert_help_gives_defaults(parser):
    """Every option of the parser has help text, and every option that takes a value names its default."""
    for action in parser._actions:
        if action.dest == "help" or action.option_strings == []:
            continue
        name = "/".join(action.option_strings)
        assert action.help, f"{name} has no help text"
        if action.nargs != 0 and not action.required:
            assert "default" in action.help, f"{name}'s help does not give its default: {action.help!r}"
