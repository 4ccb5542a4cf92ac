"""`bptt explain`: one figure of the derivation's central claims, for several networks.

For each nonlinearity (tanh, relu) and each scale s of W (PyTorch's
initialisation times s; 1 is PyTorch's own), one row of three panels:

1. the heat map of ‖term (t, k) of ∂L(t)/∂W‖ (`contribution_norms`);
2. Σ_t ‖term (t, t−d)‖ against the lag d = t − k, log scale (`lag_profile`);
3. the singular values of ∂h(T)/∂h(T−d) against d, log scale, batch element 1
   (`singular_values_by_lag`).

Below s = 1 every panel decays with the lag (vanishing gradients); above it,
relu's grow (exploding) while tanh's saturate. `--cell lstm --cell gru` adds the same
three panels for one-layer LSTM and GRU networks (W = weight_hh_l0, all four or three
gate blocks; the LSTM's Jacobian is that of its cell state, ∂c(T)/∂c(T−d)), from
`network_contributions` and `state_jacobian`. Run `bptt explain --out FILE`;
the figure format follows the file's extension (.png, .svg, .pdf).

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
from manual_bptt.tools.plotting import (PANEL_SIZE, draw_lag_profile, draw_singular_values, draw_term_sizes, new_figure,
                                  save_figure)
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
    """The numbers of one row of the figure: one nonlinearity, W scaled by `scale`.

    norms:           (T, T)    ‖term (t, k) of ∂L(t)/∂W‖, row t-1, column k-1
    by_lag:          (T,)      Σ_t ‖term (t, t−d)‖, entry d
    singular_values: (T+1, H)  σ_i(∂h(T)/∂h(T−d)) of batch element 1, row d
    """

    nonlinearity: str
    scale: float
    norms: np.ndarray
    by_lag: np.ndarray
    singular_values: np.ndarray
    state: str = "h"                        # whose Jacobian: h, or c for the LSTM


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


def gated_panels(x, y, h0=None, *, cells, scales=DEFAULT_SCALES, hidden_size: int, output_size: int, seed: int = 0,
                 loss: str = "cross_entropy", reduction: str = "sum") -> tuple[ExplainPanel, ...]:
    """One ExplainPanel per (cell, scale) for one-layer LSTM/GRU networks drawn as PyTorch does.

    x: (T, B, I), y as for `bptt`; h0: (B, H) or None, the initial h of the one layer
    (an LSTM's c0 is zeros). `norms` are the Frobenius norms of
    `network_contributions(wrt="weight_hh_l0")`; the singular values are those of
    ∂c(T)/∂c(T−d) for the LSTM and ∂h(T)/∂h(T−d) for the GRU, batch element 1.
    """
    panels = []
    T = x.shape[0]
    for cell in cells:
        base = NetworkParams.random(cell=cell, input_size=x.shape[-1], hidden_size=hidden_size,
                                    output_size=output_size, rng=seed)
        state = GATED_CELLS[cell]
        initial = None if h0 is None else h0[None]                         # (L·D = 1, B, H)
        if initial is not None and cell == "lstm":
            initial = (initial, np.zeros_like(initial))
        for scale in scales:
            weights = base.state_dict()
            weights["weight_hh_l0"] = weights["weight_hh_l0"] * float(scale)
            p = NetworkParams(cell, weights)
            terms = network_contributions(p, x, y, initial, wrt="weight_hh_l0", loss=loss, reduction=reduction)
            norms = np.sqrt((terms ** 2).sum(axis=(2, 3)))
            sigma = np.stack([
                state_jacobian(p, x, initial, t=T, k=T - d).block(state, state).singular_values[0] for d in range(T + 1)
            ])
            panels.append(ExplainPanel(nonlinearity=cell, scale=float(scale), norms=norms,
                                       by_lag=lag_profile(norms), singular_values=sigma, state=state))
    return tuple(panels)


def draw_explain(panels) -> "matplotlib.figure.Figure":  # noqa: F821
    """The figure: a row of three axes per panel, in the order given (see the module docstring)."""
    fig, axes = new_figure(len(panels), 3, purpose="bptt explain")
    for row, panel in zip(axes, panels):
        T = panel.norms.shape[0]
        where = f"{panel.nonlinearity}, W × {panel.scale:g}"
        draw_term_sizes(row[0], panel.norms, title=f"‖term (t, k) of ∂L(t)/∂W‖: {where}")
        draw_lag_profile(row[1], panel.norms, title=f"Σ_t ‖term (t, t − d)‖: {where}")
        s = panel.state
        draw_singular_values(row[2], panel.singular_values, t=T,
                             title=f"σ_i(∂{s}({T})/∂{s}({T} − d)): {where}")
    return fig


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
    for cell in cells:
        gates = 4 if cell == "lstm" else 3
        needs.append(("T, H", 2 * nbytes((T, T, gates * H, H), np.float64),
                      f"the terms (t, k) of ∂L(t)/∂weight_hh_l0 of the {cell.upper()}, (T, T, {gates}H, H)"))
    return needs


def check_finite_panels(panels) -> None:
    """NonFiniteError naming the first panel whose numbers left the float range.

    At a large scale of W the forward pass or the terms overflow; a NaN norm or
    an infinite singular value would be drawn and printed as if it were a size.
    """
    for panel in panels:
        where = f"{panel.nonlinearity}, W × {panel.scale:g}"
        for quantity, values in (("‖term (t, k)‖", panel.norms), ("Σ_t ‖term (t, t − d)‖", panel.by_lag),
                                 (f"σ(∂{panel.state}(T)/∂{panel.state}(T − d))", panel.singular_values)):
            if not np.isfinite(values).all():
                raise NonFiniteError(f"{where}: {quantity} is not finite (the computation left the float64 "
                                     "range); use a smaller --weight-scale", quantity=quantity, step=None)


def check_png_size(out: Path, *, rows: int, dpi: int) -> None:
    """A ValueError naming --dpi when the PNG of `rows` rows of three panels would be too large."""
    if out.suffix.lower() != ".png":
        return
    width, height = (round(inches * dpi) for inches in (PANEL_SIZE[0] * 3, PANEL_SIZE[1] * rows))
    if max(width, height) > MAX_SIDE_PIXELS or width * height > MAX_PIXELS:
        raise ValueError(f"--dpi: {dpi} makes the figure of {rows} rows {width} × {height} pixels; expected at "
                         f"most {MAX_SIDE_PIXELS} a side and {MAX_PIXELS} in all (a lower --dpi, fewer "
                         "--weight-scale, or .svg/.pdf)")


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
    p.add_argument("--out", required=True, help="the figure file: .png, .svg or .pdf")
    size_arguments(p.add_argument_group("sizes (ignored for I, H, O when --weights is given)"), T=40, H=16)
    p.add_argument("--nonlinearity", choices=NONLINEARITIES, action="append",
                   help="repeat for several (default: tanh and relu)")
    p.add_argument("--weight-scale", type=_weight_scale, action="append", metavar="S",
                   help="multiply W by S; repeat for several (default: 0.5, 1 and 4)")
    p.add_argument("--cell", choices=tuple(GATED_CELLS), action="append",
                   help="add the panels of a one-layer LSTM or GRU network; repeat for both (default: none)")
    p.add_argument("--seed", type=_integer(0), default=0, help="seed of the problem (default 0)")
    p.add_argument("--weights", help="load U, W, V, b, c from a .npz, or from the state dict (.pt, .npz, .safetensors) of "
                        "the twin or of any model whose network is a one-layer nn.RNN with an nn.Linear head")
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
    rows = len(scales) * (len(nonlinearities) + len(cells))
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
                panels += gated_panels(problem.x, problem.y, problem.h0, cells=cells, scales=scales,
                                       hidden_size=params.hidden_size, output_size=params.output_size,
                                       seed=args.seed)
        check_finite_panels(panels)
    except NonFiniteError as error:
        print(f"{cli.prog}: overflow: {' '.join(str(error).split())}", file=sys.stderr)
        return EXIT_CODES["unchecked"]
    except np.linalg.LinAlgError as error:
        # np.linalg.svd refuses a matrix with inf or NaN in it: a Jacobian that overflowed.
        print(f"{cli.prog}: overflow: the singular values of a Jacobian could not be computed "
              f"({first_line(error)}), as when its entries leave the float64 range; use a smaller --weight-scale",
              file=sys.stderr)
        return EXIT_CODES["unchecked"]
    fig = draw_explain(panels)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, out, dpi=args.dpi)
    print(f"problem: {problem!r}")
    for panel in panels:
        # Every term at lag 0 is zero when every unit is off (a dead relu): no ratio then.
        ratio = f"{panel.by_lag[-1] / panel.by_lag[0]:.3e}" if panel.by_lag[0] > 0 else "undefined (lag 0 is 0)"
        s = panel.state
        print(f"{panel.nonlinearity:<5} W × {panel.scale:<4g} ‖∂{s}(T)/∂{s}(0)‖₂ = "
              f"{panel.singular_values[-1, 0]:.3e}   size at lag T-1 / lag 0 = {ratio}")
    print(f"wrote {out}")
    return 0
