"""`bptt explain`: one figure of the derivation's central claims, for several networks.

For each nonlinearity (tanh, relu) and each scale s of W (PyTorch's
initialisation times s; 1 is PyTorch's own), one row of three panels:

1. the heat map of ‖term (t, k) of ∂L(t)/∂W‖ (`contribution_norms`);
2. Σ_t ‖term (t, t−d)‖ against the lag d = t − k, log scale (`lag_profile`);
3. the singular values of ∂h(T)/∂h(T−d) against d, log scale, the first batch element
   (`singular_values_by_lag`).

A last row puts, for each scale, the RNN's ‖∂h(T)/∂h(T−d)‖₂ and a one-layer LSTM's
‖∂c(T)/∂c(T−d)‖₂ on one axis: the constant error carousel. PyTorch draws an LSTM's
biases small, so its forget gate f = σ(a_f) starts near ½ and ∂c(t)/∂c(t−1) ⊇ diag(f)
halves a signal per step; `--forget-bias B` adds B to the f block of bias_ih_l0
(B = 2: f ≈ 0.88), and the LSTM carries the gradient over the whole sequence where
the RNN's has vanished.

What the default figure shows: below s = 1 and at 1 every panel decays with the lag
(vanishing gradients). At s = 4, tanh's terms grow with the lag, as does
σ_1(∂h(T)/∂h(T−d)) (the classic exploding gradient) while its other singular values
collapse (saturation); relu's forward pass explodes (h(t) grows geometrically with t),
and its lag profile is flat: term (t, k) holds ∂h(t)/∂h(k), which grows with the lag,
times h(k−1), which shrinks with it by as much.

`--cell lstm --cell gru` adds the same three panels for one-layer LSTM and GRU networks
(W = weight_hh_l0, all four or three gate blocks; the LSTM's Jacobian is that of its
cell state, ∂c(T)/∂c(T−d)), from `network_contributions` and `state_jacobian`. The
LSTM and GRU are drawn at random as PyTorch initialises them (from --seed, at the sizes
of the RNN), also when --weights gives the RNN's: the command then says so.
Run `bptt explain --out FILE`; the figure format follows the file's extension
(.png, .svg, .pdf).

Everything is checked before anything is computed (the weights file, the sizes
against memory as `bptt check` checks them, the output file, the resolution):
a bad one exits 2 with one line naming the option. A scale at which the
computation leaves the float range exits 3, saying which panel overflowed.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from manual_bptt import RNNParams
from manual_bptt.inputs.checks import check_fits_in_memory, nbytes
from manual_bptt.tools.derivation import contribution_norms
from manual_bptt.tools.extras import require
from manual_bptt.tools.lags import lag_profile, singular_values_by_lag
from manual_bptt.tools.network_derivation import network_contributions, state_jacobian
from manual_bptt.model.network_params import NetworkParams, find_network
from manual_bptt.inputs.overflow import NonFiniteError
from manual_bptt.tools.plotting import (PANEL_SIZE, draw_lag_profile, draw_singular_values, draw_state_norms,
                                        draw_term_sizes, new_figure, save_figure)
from manual_bptt.verification.problems import random_problem
from manual_bptt.inputs.validation import NONLINEARITIES

from .cli import EXIT_CODES, Parser, _integer, _weight_scale, check_output_path, first_line, size_arguments
from .loading import float_array, read_state

#: W's scale below, at and above PyTorch's initialisation (spectral radius ≈ 0.58 at 1).
DEFAULT_SCALES = (0.5, 1.0, 4.0)
#: --dpi: below 10 a panel's labels are a few pixels; above 600 one row of panels is
#: a 100-megapixel image, more than any print needs.
DPI_RANGE = (10, 600)
#: The most pixels a PNG may have along a side (matplotlib's Agg renderer refuses 2¹⁶),
#: and in all (save_figure reads the PNG back with Pillow, which takes more as a
#: decompression bomb: its Image.MAX_IMAGE_PIXELS).
MAX_SIDE_PIXELS = 2**16 - 1
MAX_PIXELS = 89_478_485


@dataclass(frozen=True)
class ExplainPanel:
    """The numbers of one row of the figure: one nonlinearity (or cell), W scaled by `scale`.

    norms:           (T, T)    ‖term (t, k) of ∂L(t)/∂W‖, row t-1, column k-1
    by_lag:          (T,)      Σ_t ‖term (t, t−d)‖, entry d
    singular_values: (T+1, H)  σ_i(∂s(T)/∂s(T−d)) of the first batch element, row d
    """

    nonlinearity: str
    scale: float
    norms: np.ndarray
    by_lag: np.ndarray
    singular_values: np.ndarray
    state: str = "h"                        # whose Jacobian: h, or c for the LSTM
    forget_bias: float = 0.0                # added to an LSTM's forget gate (its f block of bias_ih_l0)

    @property
    def where(self) -> str:
        """The row's name in titles and messages: "tanh, W × 4", "lstm (forget bias +2), W × 1"."""
        bias = f" (forget bias {self.forget_bias:+g})" if self.nonlinearity == "lstm" and self.forget_bias else ""
        return f"{self.nonlinearity}{bias}, W × {self.scale:g}"


@dataclass(frozen=True)
class CarouselPanel:
    """The numbers of one panel of the last row: several networks' ‖∂s(T)/∂s(T − d)‖₂ at one scale of W.

    norms: {legend label: (T+1,) array}, entry d the largest singular value of the product of
    d steps' Jacobians, first batch element: h for the RNN and the GRU, c for the LSTM.
    """

    scale: float
    norms: dict


def scaled(params: RNNParams, scale: float) -> RNNParams:
    """The same network with W multiplied by `scale` (U, V, b, c unchanged)."""
    return params.replace(W=params.W * params.dtype.type(scale))


def explain_panels(params: RNNParams, x, y, h0=None, *, nonlinearities=NONLINEARITIES,
                   scales=DEFAULT_SCALES, loss: str = "cross_entropy",
                   reduction: str = "sum") -> tuple[ExplainPanel, ...]:
    """One ExplainPanel per (nonlinearity, scale), nonlinearities outermost.

    x: (T, B, I), y: labels (T, B) or targets (T, B, O), h0: (B, H) or None, time-major.
    """
    panels = []
    for nonlinearity in nonlinearities:
        for scale in scales:
            p = scaled(params, scale)
            norms = contribution_norms(p, x, y, h0, wrt="W", nonlinearity=nonlinearity,
                                       loss=loss, reduction=reduction)
            sigma = singular_values_by_lag(p, x, h0, nonlinearity=nonlinearity)
            panels.append(ExplainPanel(nonlinearity=nonlinearity, scale=float(scale), norms=norms,
                                       by_lag=lag_profile(norms), singular_values=sigma[:, 0]))
    return tuple(panels)


#: The cells `--cell` can add, and the state whose Jacobian their panel shows.
GATED_CELLS = {"lstm": "c", "gru": "h"}


def gated_network(cell: str, *, input_size: int, hidden_size: int, output_size: int, seed: int, scale: float,
                  forget_bias: float = 0.0) -> NetworkParams:
    """A one-layer network drawn as PyTorch draws it (from `seed`), with weight_hh_l0 × scale and,
    for the LSTM, `forget_bias` added to the f block (rows H … 2H−1) of bias_ih_l0."""
    weights = NetworkParams.random(cell=cell, input_size=input_size, hidden_size=hidden_size,
                                   output_size=output_size, rng=seed).state_dict()
    weights["weight_hh_l0"] = weights["weight_hh_l0"] * float(scale)
    if cell == "lstm":
        forget = np.zeros_like(weights["bias_ih_l0"])
        forget[hidden_size:2 * hidden_size] = forget_bias                 # gate order i, f, g, o
        weights["bias_ih_l0"] = weights["bias_ih_l0"] + forget
    return NetworkParams(cell, weights)


def _initial_state(cell: str, h0):
    """h0 (B, H) of the one layer as the network takes it: (1, B, H), an LSTM's with c0 = zeros."""
    if h0 is None:
        return None
    initial = h0[None]                                                 # (L·D = 1, B, H)
    return (initial, np.zeros_like(initial)) if cell == "lstm" else initial


def state_singular_values(p: NetworkParams, x, h0=None) -> np.ndarray:
    """(T+1, H): σ_i(∂s(T)/∂s(T − d)) of the first batch element, row d; s = c for the LSTM, else h.

    x: (T, B, I); h0: (B, H) or None, the initial h of the one layer (an LSTM's c0 is zeros).
    """
    T, state = x.shape[0], GATED_CELLS[p.cell]
    initial = _initial_state(p.cell, h0)
    return np.stack([state_jacobian(p, x, initial, t=T, k=T - d).block(state, state).singular_values[0]
                     for d in range(T + 1)])


def gated_panels(x, y, h0=None, *, cells, scales=DEFAULT_SCALES, hidden_size: int, output_size: int, seed: int = 0,
                 forget_bias: float = 0.0, loss: str = "cross_entropy",
                 reduction: str = "sum") -> tuple[ExplainPanel, ...]:
    """One ExplainPanel per (cell, scale) for one-layer LSTM/GRU networks drawn as PyTorch does.

    x: (T, B, I), y as for `bptt`; h0: (B, H) or None, the initial h of the one layer
    (an LSTM's c0 is zeros). `norms` are the Frobenius norms of
    `network_contributions(wrt="weight_hh_l0")`; the singular values are those of
    ∂c(T)/∂c(T−d) for the LSTM and ∂h(T)/∂h(T−d) for the GRU, first batch element.
    `forget_bias` is added to the LSTM's forget gate (`gated_network`).
    """
    panels = []
    for cell in cells:
        for scale in scales:
            p = gated_network(cell, input_size=x.shape[-1], hidden_size=hidden_size, output_size=output_size,
                              seed=seed, scale=scale, forget_bias=forget_bias)
            terms = network_contributions(p, x, y, _initial_state(cell, h0), wrt="weight_hh_l0", loss=loss,
                                          reduction=reduction)
            norms = np.sqrt((terms ** 2).sum(axis=(2, 3)))
            panels.append(ExplainPanel(nonlinearity=cell, scale=float(scale), norms=norms, by_lag=lag_profile(norms),
                                       singular_values=state_singular_values(p, x, h0), state=GATED_CELLS[cell],
                                       forget_bias=float(forget_bias) if cell == "lstm" else 0.0))
    return tuple(panels)


def carousel_label(panel_or_cell, forget_bias: float = 0.0) -> str:
    """The legend label of one network's line in the last row."""
    if isinstance(panel_or_cell, ExplainPanel):
        cell, forget_bias = panel_or_cell.nonlinearity, panel_or_cell.forget_bias
    else:
        cell = panel_or_cell
    if cell == "lstm":
        return f"LSTM (forget bias {forget_bias:+g}): ‖∂c(T)/∂c(T − d)‖₂"
    if cell == "gru":
        return "GRU: ‖∂h(T)/∂h(T − d)‖₂"
    return f"RNN {cell}: ‖∂h(T)/∂h(T − d)‖₂"


def carousel_panels(panels, x, h0=None, *, hidden_size: int, output_size: int, seed: int = 0,
                    forget_bias: float = 0.0) -> tuple[CarouselPanel, ...]:
    """One CarouselPanel per scale of `panels`: σ_1 of every panel at that scale, and an LSTM's
    ‖∂c(T)/∂c(T − d)‖₂ (drawn as `gated_panels` draws it) when no LSTM panel is among them."""
    scales = list(dict.fromkeys(panel.scale for panel in panels))
    carousels = []
    for scale in scales:
        norms = {carousel_label(panel): panel.singular_values[:, 0] for panel in panels if panel.scale == scale}
        if not any(panel.nonlinearity == "lstm" and panel.scale == scale for panel in panels):
            p = gated_network("lstm", input_size=x.shape[-1], hidden_size=hidden_size, output_size=output_size,
                              seed=seed, scale=scale, forget_bias=forget_bias)
            norms[carousel_label("lstm", forget_bias)] = state_singular_values(p, x, h0)[:, 0]
        carousels.append(CarouselPanel(scale=scale, norms=norms))
    return tuple(carousels)


def figure_rows(panels: int, carousels: int) -> int:
    """The rows of the figure: one per panel, and the carousel panels three to a row."""
    return panels + -(-carousels // 3)


def draw_explain(panels, carousels=(), *, title: str | None = None) -> "matplotlib.figure.Figure":  # noqa: F821
    """The figure: a row of three axes per panel, in the order given, then the carousel panels three to
    a row (unused axes hidden), and `title` above them all (see the module docstring)."""
    rows = figure_rows(len(panels), len(carousels))
    fig, axes = new_figure(rows, 3, purpose="bptt explain")
    for row, panel in zip(axes, panels):
        T = panel.norms.shape[0]
        draw_term_sizes(row[0], panel.norms, title=f"‖term (t, k) of ∂L(t)/∂W‖: {panel.where}")
        draw_lag_profile(row[1], panel.norms, title=f"Σ_t ‖term (t, t − d)‖: {panel.where}")
        s = panel.state
        draw_singular_values(row[2], panel.singular_values, t=T, state=s,
                             title=f"σ_i(∂{s}({T})/∂{s}({T} − d)): {panel.where}")
    spare = axes[len(panels):].ravel()
    for ax, carousel in zip(spare, carousels):
        draw_state_norms(ax, carousel.norms, title=f"RNN against LSTM: W × {carousel.scale:g}")
    for ax in spare[len(carousels):]:
        ax.remove()
    for ax in axes[:len(panels)].ravel().tolist() + spare[:len(carousels)].tolist():
        ax.title.set_fontsize("medium")                               # the row's name fits above its panel
    if title:
        fig.suptitle(title)
    return fig


def explain_title(*, T: int, B: int, H: int, seed: int, scales, forget_bias: float, weights: str | None) -> str:
    """The figure's title: the problem's sizes, its seed (or weights file), the scales and the forget bias."""
    source = f"weights {Path(weights).name}, x and y from seed {seed}" if weights else f"seed {seed}"
    return (f"bptt explain: T = {T}, B = {B}, H = {H}, {source}; W × {', '.join(f'{s:g}' for s in scales)} "
            f"(× 1: PyTorch's initialisation); LSTM forget bias {forget_bias:+g}")


#: The keys of a twin's state dict that `load_weights` reads (build_twin's names).
TWIN_KEYS = ("rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0", "out.weight", "out.bias")


def load_weights(path: str | Path, *, name: str = "weights") -> RNNParams:
    """U, W, V, b, c from a file, read by `torch_reference.loading.read_state`: an .npz with
    arrays U W V b c; a state dict (.pt, .npz or .safetensors) of the twin (keys
    rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0, out.weight,
    out.bias), as `torch.save(twin.state_dict(), path)` writes it; or any model's state
    dict whose recurrent module is a one-layer, one-direction nn.RNN and whose output
    layer one nn.Linear (found as `NetworkParams.from_state_dict` finds them). b = b_ih + b_hh.

    Every array must be float32 or float64, finite and of the twin's shapes. A file that
    is missing, unreadable or holds anything else is a ValueError (TypeError for a
    payload of the wrong type) whose message starts with `name` and the file.
    """
    path = Path(path)
    where = f"{name}: {str(path)!r}"
    state = read_state(path, option=name)
    if any(key in state for key in "UWVbc"):
        missing = [key for key in "UWVbc" if key not in state]
        if missing:
            raise ValueError(f"{where} lacks the arrays {', '.join(missing)} (expected U W V b c)")
        arrays = {key: float_array(where, key, state[key]) for key in "UWVbc"}
    elif all(key.startswith(("rnn.", "out.")) for key in state):
        arrays = _twin_arrays(state, where)
    else:
        arrays = _elman_arrays(state, where)
    for key, array in arrays.items():
        if not np.isfinite(array).all():
            raise ValueError(f"{where}: {key} holds NaN or infinity; expected finite weights")
    try:
        return RNNParams(**arrays)
    except (ValueError, TypeError) as error:                   # shapes, mixed dtypes, NaN: named by field
        raise type(error)(f"{where}: {error}") from None


def _twin_arrays(state: dict, where: str) -> dict:
    """U W V b c from a twin's state dict."""
    missing = [key for key in TWIN_KEYS if key not in state]
    if missing:
        raise ValueError(f"{where}: the state dict lacks {', '.join(missing)}")
    arrays = {key: float_array(where, key, state[key]) for key in TWIN_KEYS}
    if arrays["rnn.bias_ih_l0"].shape != arrays["rnn.bias_hh_l0"].shape:
        raise ValueError(f"{where}: rnn.bias_ih_l0 has shape {arrays['rnn.bias_ih_l0'].shape} and "
                         f"rnn.bias_hh_l0 {arrays['rnn.bias_hh_l0'].shape}; expected the same (H,)")
    return dict(U=arrays["rnn.weight_ih_l0"], W=arrays["rnn.weight_hh_l0"],
                b=arrays["rnn.bias_ih_l0"] + arrays["rnn.bias_hh_l0"],     # b = b_ih + b_hh
                V=arrays["out.weight"], c=arrays["out.bias"])


def _elman_arrays(state: dict, where: str) -> dict:
    """U W V b c from a model's state dict whose network is a one-layer, one-direction Elman RNN."""
    try:
        found = find_network(state)
        # The arrays are the same for tanh and relu: explain draws both.
        params = NetworkParams.from_state_dict(found.state, cell="rnn_tanh" if found.family == "elman" else found.cell())
    except (ValueError, TypeError) as error:
        raise type(error)(f"{where}: {error}") from None
    if params.cell not in ("rnn_tanh", "rnn_relu") or params.num_layers != 1 or params.bidirectional:
        raise ValueError(f"{where} holds a {params.num_layers}-layer {'bidirectional ' if params.bidirectional else ''}"
                         f"{params.cell.upper()} network ({found.prefix!r}); bptt explain draws the derivation's "
                         "one-layer Elman RNN (check the network with bptt check --weights)")
    b = params["bias_ih_l0"] + params["bias_hh_l0"] if params.bias else np.zeros(params.hidden_size, params.dtype)
    return dict(U=params["weight_ih_l0"], W=params["weight_hh_l0"], b=b, V=params["head.weight"],
                c=params["head.bias"])


def explain_needs(T: int, B: int, H: int, *, rows: int, cells=()) -> list[tuple[str, int, str]]:
    """The bytes explain allocates beyond the problem itself, for `check_fits_in_memory`:
    a (T, T) table per row of panels, the Jacobians' chain, and each gated cell's terms."""
    needs = [("T", rows * nbytes((T, T), np.float64), f"the {rows} tables of ‖term (t, k)‖, (T, T) each"),
             ("T, B, H", 3 * nbytes((T + 1, B, H), np.float64), "the forward caches and singular values (T, B, H)"),
             ("B, H", 2 * nbytes((B, H, H), np.float64), "the chain of ∂h(t)/∂h(k), (B, H, H)")]
    needs.append(("B, H", 2 * nbytes((B, 2 * H, 2 * H), np.float64),
                  "the chain of the LSTM's ∂(h, c)(t)/∂(h, c)(k) for the last row, (B, 2H, 2H)"))
    for cell in cells:
        gates = 4 if cell == "lstm" else 3
        needs.append(("T, H", 2 * nbytes((T, T, gates * H, H), np.float64),
                      f"the terms (t, k) of ∂L(t)/∂weight_hh_l0 of the {cell.upper()}, (T, T, {gates}H, H)"))
    return needs


def check_finite_panels(panels, carousels=()) -> None:
    """NonFiniteError naming the first panel (or carousel line) whose numbers left the float range.

    At a large scale of W the forward pass or the terms overflow; a NaN norm or
    an infinite singular value would be drawn and printed as if it were a size.
    """
    for panel in panels:
        where = panel.where
        for quantity, values in (("‖term (t, k)‖", panel.norms), ("Σ_t ‖term (t, t − d)‖", panel.by_lag),
                                 (f"σ(∂{panel.state}(T)/∂{panel.state}(T − d))", panel.singular_values)):
            if not np.isfinite(values).all():
                raise NonFiniteError(f"{where}: {quantity} is not finite (the computation left the float64 "
                                     "range); use a smaller --weight-scale", quantity=quantity, step=None)
    for carousel in carousels:
        for label, values in carousel.norms.items():
            if not np.isfinite(values).all():
                raise NonFiniteError(f"W × {carousel.scale:g}, {label} is not finite (the computation left the "
                                     "float64 range); use a smaller --weight-scale", quantity=label, step=None)


def check_png_size(out: Path, *, rows: int, dpi: int) -> None:
    """A ValueError naming --dpi when the PNG of `rows` rows of three panels would be too large."""
    if out.suffix.lower() != ".png":
        return
    width, height = (round(inches * dpi) for inches in (PANEL_SIZE[0] * 3, PANEL_SIZE[1] * rows))
    if max(width, height) > MAX_SIDE_PIXELS or width * height > MAX_PIXELS:
        raise ValueError(f"--dpi: {dpi} makes the figure of {rows} rows {width} × {height} pixels; expected at "
                         f"most {MAX_SIDE_PIXELS} a side and {MAX_PIXELS} in all (a lower --dpi, fewer "
                         "--weight-scale, or .svg/.pdf)")


def _finite(text: str) -> float:
    """An argparse type: any finite number."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _dpi(text: str) -> int:
    low, high = DPI_RANGE
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise argparse.ArgumentTypeError(f"expected an integer in [{low}, {high}], got {text!r}")
    return value


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="bptt explain", description=__doc__.split("\n\n")[0],
               epilog="exit status: 0 the figure is written; 2 usage error (a bad option, file or size); "
                      "3 the computation overflowed; 4 matplotlib is missing; 130 stopped by Ctrl-C")
    p.add_argument("--out", required=True, metavar="FILE", help="the figure file: .png, .svg or .pdf (required)")
    size_arguments(p.add_argument_group("sizes (ignored for I, H, O when --weights is given)"), T=40, H=16)
    p.add_argument("--nonlinearity", choices=NONLINEARITIES, action="append",
                   help="φ of the RNN's h(t) = φ(a(t)); repeat for several (default: tanh and relu)")
    p.add_argument("--weight-scale", type=_weight_scale, action="append", metavar="S",
                   help="multiply W by S; repeat for several (default: 0.5, 1 and 4)")
    p.add_argument("--cell", choices=tuple(GATED_CELLS), action="append",
                   help="add the panels of a one-layer LSTM or GRU network; repeat for both (default: none)")
    p.add_argument("--forget-bias", type=_finite, default=0.0, metavar="B",
                   help="add B to the LSTM's forget gate (the f block of bias_ih_l0) in the last row and the "
                        "--cell lstm panels; 0 is PyTorch's initialisation, 2 makes f ≈ 0.88 and shows the "
                        "constant error carousel (default %(default)s)")
    p.add_argument("--seed", type=_integer(0), default=0,
                   help="seed of x, y, h0 and of the random weights (default %(default)s)")
    p.add_argument("--weights", metavar="FILE",
                   help="load the RNN's U, W, V, b, c from a .npz, or from the state dict (.pt, .npz, .safetensors) "
                        "of the twin or of any model whose network is a one-layer nn.RNN with an nn.Linear head; "
                        "the LSTM and GRU stay random (the output says so); None: random weights from --seed "
                        "(default %(default)s)")
    p.add_argument("--dpi", type=_dpi, default=72,
                   help=f"resolution of a PNG, {DPI_RANGE[0]} to {DPI_RANGE[1]} (default 72)")
    return p


def main(argv: list[str] | None = None) -> int:
    cli = parser()
    args = cli.parse_args(argv)
    require("matplotlib.figure", purpose="bptt explain")          # say so before any computation
    scales = tuple(args.weight_scale or DEFAULT_SCALES)
    nonlinearities = tuple(args.nonlinearity or NONLINEARITIES)
    cells = tuple(args.cell or ())
    rows = figure_rows(len(scales) * (len(nonlinearities) + len(cells)), len(scales))
    try:
        out = check_output_path("--out", args.out)
        params = None if args.weights is None else load_weights(args.weights, name="--weights").astype(np.float64)
        sizes = dict(I=args.input_size, H=args.hidden_size, O=args.output_size)
        if params is not None:
            sizes = dict(I=params.input_size, H=params.hidden_size, O=params.output_size)
        # The sizes are checked against memory as `bptt check` checks them, then
        # against what the panels need on top of the problem.
        problem = random_problem(T=args.seq_len, B=args.batch, **sizes, seed=args.seed)
        check_fits_in_memory(explain_needs(args.seq_len, args.batch, sizes["H"], rows=rows, cells=cells))
        check_png_size(out, rows=rows, dpi=args.dpi)
    except (ValueError, TypeError) as error:
        cli.error(str(error))
    params = problem.params if params is None else params
    random_network = dict(hidden_size=params.hidden_size, output_size=params.output_size, seed=args.seed,
                          forget_bias=args.forget_bias)
    try:
        for scale in scales:
            if not math.isfinite(float(np.abs(params.W).max()) * scale):
                raise NonFiniteError(f"W × {scale:g} is not finite (max|W| = {np.abs(params.W).max():.3g}); "
                                     "use a smaller --weight-scale", quantity="W", step=None)
        # Overflow is judged by check_finite_panels, after the panels: NumPy's warnings would only repeat it.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            panels = explain_panels(params, problem.x, problem.y, problem.h0, nonlinearities=nonlinearities,
                                    scales=scales)
            if cells:
                panels += gated_panels(problem.x, problem.y, problem.h0, cells=cells, scales=scales, **random_network)
            carousels = carousel_panels(panels, problem.x, problem.h0, **random_network)
        check_finite_panels(panels, carousels)
    except NonFiniteError as error:
        print(f"{cli.prog}: overflow: {' '.join(str(error).split())}", file=sys.stderr)
        return EXIT_CODES["unchecked"]
    except np.linalg.LinAlgError as error:
        # np.linalg.svd refuses a matrix with inf or NaN in it: a Jacobian that overflowed.
        print(f"{cli.prog}: overflow: the singular values of a Jacobian could not be computed "
              f"({first_line(error)}), as when its entries leave the float64 range; use a smaller --weight-scale",
              file=sys.stderr)
        return EXIT_CODES["unchecked"]
    title = explain_title(T=args.seq_len, B=args.batch, H=params.hidden_size, seed=args.seed, scales=scales,
                          forget_bias=args.forget_bias, weights=args.weights)
    fig = draw_explain(panels, carousels, title=title)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, out, dpi=args.dpi)
    print(f"problem: {problem!r}")
    if args.weights is not None:
        drawn = ", ".join(dict.fromkeys(["the LSTM of the last row", *(f"the {cell.upper()} rows" for cell in cells)]))
        print(f"note: the RNN's panels use --weights {args.weights}; {drawn} use random weights "
              f"(PyTorch's initialisation from --seed {args.seed}, forget bias {args.forget_bias:+g})")
    for panel in panels:
        # Every term at lag 0 is zero when every unit is off (a dead relu): no ratio then.
        ratio = f"{panel.by_lag[-1] / panel.by_lag[0]:.3e}" if panel.by_lag[0] > 0 else "undefined (lag 0 is 0)"
        s = panel.state
        print(f"{panel.where:<24} ‖∂{s}(T)/∂{s}(0)‖₂ = {panel.singular_values[-1, 0]:.3e}   "
              f"size at lag T-1 / lag 0 = {ratio}")
    for carousel in carousels:
        lstm = next(values for label, values in carousel.norms.items() if label.startswith("LSTM"))
        print(f"W × {carousel.scale:<4g} LSTM (forget bias {args.forget_bias:+g}) ‖∂c(T)/∂c(0)‖₂ = {lstm[-1]:.3e}")
    print(f"wrote {out}")
    return 0
