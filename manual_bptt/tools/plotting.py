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


def new_figure(rows: int, cols: int, *, purpose: str):
    """A pyplot-free Figure with rows × cols axes (a 2-d array of them) and room for titles."""
    figure_module = require("matplotlib.figure", purpose=purpose)
    fig = figure_module.Figure(figsize=(PANEL_SIZE[0] * cols, PANEL_SIZE[1] * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


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


def draw_term_sizes(ax, norms, *, wrt: str = "W", title: str | None = None):
    """Heat map of ‖term (t, k)‖ on a log colour scale; above the diagonal (k > t) is blank.

    norms: (T, T), row t-1 and column k-1 (`contribution_norms`). Terms that are
    exactly zero (a dead relu unit) are blank too: a log scale has no place for them.
    """
    colors = require("matplotlib.colors", purpose="draw_term_sizes")
    norms = np.asarray(norms)
    T = norms.shape[0]
    t_index, k_index = np.indices((T, T))
    hidden = (k_index > t_index) | ~(norms > 0)
    shown = np.ma.masked_array(norms, mask=hidden)
    positive = norms[~hidden]
    scale = colors.LogNorm(vmin=positive.min(), vmax=positive.max()) if positive.size else None
    image = ax.imshow(shown, origin="lower", norm=scale, cmap="viridis", interpolation="nearest",
                      extent=(0.5, T + 0.5, 0.5, T + 0.5), aspect="auto")
    ax.figure.colorbar(image, ax=ax, shrink=0.9)
    ax.set_xlabel("k: the step W acts through")
    ax.set_ylabel("t: the step of L(t)")
    ax.set_title(title or f"‖term (t, k) of ∂L(t)/∂{wrt}‖")
    return image


def draw_lag_profile(ax, norms, *, label: str | None = None, title: str | None = None):
    """Σ_t ‖term (t, t−d)‖ against the lag d = t − k, log scale (`lag_profile`)."""
    profile = lag_profile(norms)
    (line,) = ax.plot(np.arange(profile.shape[0]), profile, marker=".", label=label)
    ax.set_yscale("log", nonpositive="mask")
    ax.set_xlabel("lag d = t − k")
    ax.set_ylabel("Σ_t ‖term (t, t − d)‖")
    ax.set_title(title or "the gradient's size against the lag")
    return line


def draw_singular_values(ax, singular_values, *, t: int | None = None, title: str | None = None):
    """σ_1 … σ_H of ∂h(t)/∂h(t−d) against d, log scale: one line per σ_i.

    singular_values: (t+1, H) for one batch element, row d the singular values
    of the product of d one-step Jacobians (`singular_values_by_lag`).
    """
    singular_values = np.asarray(singular_values)
    lags = np.arange(singular_values.shape[0])
    lines = ax.plot(lags, singular_values, color="tab:purple", linewidth=0.8, alpha=0.6)
    lines[0].set(linewidth=2, alpha=1.0, label="σ_1 = ‖∂h(t)/∂h(t − d)‖₂")
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_yscale("log", nonpositive="mask")
    ax.set_xlabel("lag d = t − k")
    ax.set_ylabel("σ_i(∂h(t)/∂h(t − d))")
    step = "t" if t is None else f"t = {t}"
    ax.set_title(title or f"singular values of ∂h(t)/∂h(k), {step}")
    ax.legend(loc="lower left", fontsize="small")
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
    fig.colorbar(image, ax=axes[0, 0], shrink=0.9)
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
