"""Pictures of the derivation, drawn with matplotlib (the "plot" extra).

Every function returns or fills a `matplotlib.figure.Figure` made without
pyplot, so nothing is kept in a global list of open figures; in a notebook the
figure shows itself, and `fig.savefig(path)` writes PNG or SVG. The numbers
drawn are exactly the library's: `contribution_norms`, `lag_profile`,
`singular_values_by_lag` and `hidden_jacobian` (the suite reads them back out
of the artists and compares).

Symbols as in the derivation: term (t, k) is the part of ∂L(t)/∂W that flows
back from step t to step k, d = t − k is its lag, and ∂h(t)/∂h(k) =
Π_{j=k+1..t} diag(φ'(a(j))) W.
"""

from __future__ import annotations

import numpy as np

from .extras import require
from .lags import lag_profile

#: The width of one panel and the height of one row of panels, in inches.
PANEL_SIZE = (4.2, 3.0)


def new_figure(rows: int, cols: int, *, purpose: str, panel_size: tuple[float, float] = PANEL_SIZE):
    """A pyplot-free Figure with rows × cols axes (a 2-d array of them) and room for titles."""
    figure_module = require("matplotlib.figure", purpose=purpose)
    fig = figure_module.Figure(figsize=(panel_size[0] * cols, panel_size[1] * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def integer_ticks(axis) -> None:
    """Ticks at whole numbers only: steps and lags have no fractions."""
    ticker = require("matplotlib.ticker", purpose="integer_ticks")
    axis.set_major_locator(ticker.MaxNLocator(integer=True))


def save_figure(fig, path, *, dpi: int = 72) -> None:
    """Write the figure; the format follows the extension (.png, .svg, .pdf).

    A PNG is written with a 256-colour palette: these figures (one colour map
    and a few line colours) lose nothing visible, and the file is about a third
    of the size, which keeps the committed gallery small.
    """
    from pathlib import Path

    path = Path(path)
    if path.suffix.lower() != ".png":
        fig.savefig(path, dpi=dpi)
        return
    import io

    image_module = require("PIL.Image", purpose="save_figure")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    buffer.seek(0)
    with image_module.open(buffer) as image:
        image.convert("RGB").quantize(colors=256, method=image_module.Quantize.MEDIANCUT).save(path, optimize=True)


#: The colours of the heat map's two kinds of cell without a size on the log scale.
NO_TERM_COLOUR = "0.85"                     # light grey: k > t, no such term in the derivation
ZERO_TERM_COLOUR = "tab:red"                # a term that is exactly 0 (a dead relu unit)


def draw_term_sizes(ax, norms, *, wrt: str = "W", title: str | None = None):
    """Heat map of ‖term (t, k)‖ on a log colour scale, with a labelled colour bar.

    norms: (T, T), row t-1 and column k-1 (`contribution_norms`). Three images,
    told apart by their labels: "term sizes" (the norms, masked where there is
    no size to put on a log scale), "no term" (light grey above the diagonal,
    k > t: the derivation has no such term) and "exactly 0" (red: a term that is
    exactly zero, as a dead relu unit gives); a legend names the last two.
    Returns the image of the sizes.
    """
    colors = require("matplotlib.colors", purpose="draw_term_sizes")
    patches = require("matplotlib.patches", purpose="draw_term_sizes")
    norms = np.asarray(norms)
    T = norms.shape[0]
    t_index, k_index = np.indices((T, T)) + 1
    no_term = k_index > t_index
    zero = ~no_term & ~(norms > 0)
    positive = norms[~(no_term | zero)]
    scale = colors.LogNorm(vmin=positive.min(), vmax=positive.max()) if positive.size else None
    placement = dict(origin="lower", interpolation="nearest", extent=(0.5, T + 0.5, 0.5, T + 0.5), aspect="auto")
    image = ax.imshow(np.ma.masked_array(norms, mask=no_term | zero), norm=scale, cmap="viridis",
                      label="term sizes", **placement)
    legend = []
    for mask, colour, label in ((no_term, NO_TERM_COLOUR, "no term (k > t)"), (zero, ZERO_TERM_COLOUR, "exactly 0")):
        if mask.any():
            ax.imshow(np.ma.masked_array(np.ones((T, T)), mask=~mask), cmap=colors.ListedColormap([colour]),
                      label=label, **placement)
            legend.append(patches.Patch(color=colour, label=label))
    if legend:                                                      # the grey triangle, bottom right, holds it
        ax.legend(handles=legend, loc="lower right", fontsize="small")
    bar = ax.figure.colorbar(image, ax=ax, shrink=0.9)
    bar.set_label("‖term (t, k)‖ (log scale)")
    integer_ticks(ax.xaxis)
    integer_ticks(ax.yaxis)
    ax.set_xlabel(f"k: the step {wrt} acts through")
    ax.set_ylabel("t: the step of L(t)")
    ax.set_title(title or f"‖term (t, k) of ∂L(t)/∂{wrt}‖")
    return image


def draw_lag_profile(ax, norms, *, label: str | None = None, title: str | None = None):
    """Σ_t ‖term (t, t−d)‖ against the lag d = t − k, log scale (`lag_profile`)."""
    profile = lag_profile(norms)
    (line,) = ax.plot(np.arange(profile.shape[0]), profile, marker=".", label=label)
    ax.set_yscale("log", nonpositive="mask")
    integer_ticks(ax.xaxis)
    ax.set_xlabel("lag d = t − k")
    ax.set_ylabel("Σ_t ‖term (t, t − d)‖")
    ax.set_title(title or "the gradient's size against the lag")
    return line


def draw_singular_values(ax, singular_values, *, t: int | None = None, state: str = "h", title: str | None = None):
    """σ_1 … σ_H of ∂s(t)/∂s(t−d) against d, log scale: one line per σ_i.

    singular_values: (t+1, H) for one batch element, row d the singular values
    of the product of d one-step Jacobians (`singular_values_by_lag`, or those of
    `state_jacobian(...).block(state, state)`). state: the letter of the state,
    h (an RNN's, a GRU's) or c (an LSTM's cell state), in the labels and the legend.
    """
    singular_values = np.asarray(singular_values)
    lags = np.arange(singular_values.shape[0])
    s = state
    lines = ax.plot(lags, singular_values, color="tab:purple", linewidth=0.8, alpha=0.6)
    lines[0].set(linewidth=2, alpha=1.0, label=f"σ_1 = ‖∂{s}(t)/∂{s}(t − d)‖₂")
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_yscale("log", nonpositive="mask")
    integer_ticks(ax.xaxis)
    ax.set_xlabel("lag d = t − k")
    ax.set_ylabel(f"σ_i(∂{s}(t)/∂{s}(t − d))")
    step = "t" if t is None else f"t = {t}"
    ax.set_title(title or f"singular values of ∂{s}(t)/∂{s}(k), {step}")
    ax.legend(loc="lower left", fontsize="small")
    return lines


def draw_state_norms(ax, norms_by_label, *, title: str | None = None):
    """Several networks' ‖∂s(T)/∂s(T − d)‖₂ against the lag d on one log axis.

    norms_by_label: {legend label: (T+1,) array}, entry d the largest singular value
    of the product of d steps' Jacobians (entry 0 is 1, the identity's). One line each,
    in the order given, with a dashed line at 1: above it a signal grows over d steps,
    below it shrinks.
    """
    lines = []
    for label, norms in norms_by_label.items():
        norms = np.asarray(norms)
        (line,) = ax.plot(np.arange(norms.shape[0]), norms, marker=".", markersize=3, label=label)
        lines.append(line)
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_yscale("log", nonpositive="mask")
    integer_ticks(ax.xaxis)
    ax.set_xlabel("lag d")
    ax.set_ylabel("‖∂s(T)/∂s(T − d)‖₂")
    ax.set_title(title or "the state's Jacobian over d steps")
    ax.legend(loc="best", fontsize="small")
    return lines


def plot_contributions(terms, *, wrt: str = "W", title: str | None = None):
    """A figure of `contributions` (or of `contribution_norms`): the heat map and the lag profile.

    terms: (T, T, *shape of wrt) as `contributions` returns it, or the (T, T)
    table of `contribution_norms`; the Frobenius norm of each term is drawn.
    Returns a matplotlib Figure with two axes.
    """
    terms = np.asarray(terms)
    if terms.ndim < 2 or terms.shape[0] != terms.shape[1]:
        raise ValueError(f"terms: expected a (T, T, ...) array of contributions, got shape {terms.shape}")
    if terms.ndim == 2:
        norms = terms
    else:
        norms = np.linalg.norm(terms.reshape(terms.shape[0], terms.shape[1], -1), axis=-1)
    fig, axes = new_figure(1, 2, purpose="plot_contributions")
    draw_term_sizes(axes[0, 0], norms, wrt=wrt)
    draw_lag_profile(axes[0, 1], norms)
    if title:
        fig.suptitle(title)
    return fig


def plot_hidden_jacobian(jacobian, *, n: int = 0):
    """A figure of one ∂h(t)/∂h(k): the matrix of batch element n, and every element's σ_i.

    Returns a matplotlib Figure with two axes: the (H, H) matrix as a diverging
    heat map (entry [i, j] = ∂h(t)_i/∂h(k)_j) and the singular values per batch element.
    """
    matrix = np.asarray(jacobian.matrix)
    batch = matrix if matrix.ndim == 3 else matrix[None]
    if not 0 <= n < batch.shape[0]:
        raise ValueError(f"n: expected a batch element in [0, {batch.shape[0]}), got {n}")
    t, k = jacobian.t, jacobian.k
    fig, axes = new_figure(1, 2, purpose="plot_hidden_jacobian")
    shown = batch[n]
    bound = float(np.abs(shown).max()) or 1.0
    image = axes[0, 0].imshow(shown, cmap="RdBu_r", vmin=-bound, vmax=bound, interpolation="nearest")
    fig.colorbar(image, ax=axes[0, 0], shrink=0.9).set_label(f"∂h({t})_i/∂h({k})_j")
    for axis in (axes[0, 0].xaxis, axes[0, 0].yaxis, axes[0, 1].xaxis):
        integer_ticks(axis)
    axes[0, 0].set_title(f"∂h({t})/∂h({k}), batch element {n}")
    axes[0, 0].set_xlabel(f"j: component of h({k})")
    axes[0, 0].set_ylabel(f"i: component of h({t})")
    sigma = np.linalg.svd(batch, compute_uv=False)                 # (B, H), decreasing
    for element, values in enumerate(sigma):
        axes[0, 1].plot(np.arange(1, values.shape[0] + 1), values, marker="o", label=f"n = {element}")
    axes[0, 1].set_yscale("log", nonpositive="mask")
    axes[0, 1].set_xlabel("i")
    axes[0, 1].set_ylabel(f"σ_i(∂h({t})/∂h({k}))")
    axes[0, 1].set_title(f"singular values over {t - k} steps")
    if sigma.shape[0] <= 8:
        axes[0, 1].legend(fontsize="small")
    return fig
