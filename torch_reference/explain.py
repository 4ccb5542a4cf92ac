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
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from manual_bptt import RNNParams
from manual_bptt.derivation import contribution_norms
from manual_bptt.extras import require
from manual_bptt.lags import lag_profile, singular_values_by_lag
from manual_bptt.network_derivation import network_contributions, state_jacobian
from manual_bptt.network_params import NetworkParams
from manual_bptt.plotting import draw_lag_profile, draw_singular_values, draw_term_sizes, new_figure, save_figure
from manual_bptt.problems import random_problem
from manual_bptt.validation import NONLINEARITIES

from .cli import _integer, _positive, size_arguments

#: W's scale below, at and above PyTorch's initialisation (spectral radius ≈ 0.58 at 1).
DEFAULT_SCALES = (0.5, 1.0, 4.0)


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


def load_weights(path: str | Path) -> RNNParams:
    """U, W, V, b, c from a file: .npz with arrays U W V b c, or a torch state dict (.pt)
    of the twin (keys rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0,
    out.weight, out.bias), as `torch.save(twin.state_dict(), path)` writes it."""
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path) as arrays:
            missing = [name for name in "UWVbc" if name not in arrays]
            if missing:
                raise ValueError(f"weights: {path} lacks the arrays {', '.join(missing)} (expected U W V b c)")
            return RNNParams(**{name: arrays[name] for name in "UWVbc"})
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    keys = ("rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0", "out.weight", "out.bias")
    missing = [key for key in keys if key not in state]
    if missing:
        raise ValueError(f"weights: the state dict in {path} lacks {', '.join(missing)}")
    numpy = {key: state[key].detach().cpu().numpy() for key in keys}
    return RNNParams(U=numpy["rnn.weight_ih_l0"], W=numpy["rnn.weight_hh_l0"],
                     b=numpy["rnn.bias_ih_l0"] + numpy["rnn.bias_hh_l0"],
                     V=numpy["out.weight"], c=numpy["out.bias"])


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bptt explain", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="the figure file: .png, .svg or .pdf")
    size_arguments(p.add_argument_group("sizes (ignored for I, H, O when --weights is given)"), T=40, H=16)
    p.add_argument("--nonlinearity", choices=NONLINEARITIES, action="append",
                   help="repeat for several (default: tanh and relu)")
    p.add_argument("--weight-scale", type=float, action="append", metavar="S",
                   help="multiply W by S; repeat for several (default: 0.5, 1 and 4)")
    p.add_argument("--cell", choices=tuple(GATED_CELLS), action="append",
                   help="add the panels of a one-layer LSTM or GRU network; repeat for both (default: none)")
    p.add_argument("--seed", type=_integer(0), default=0, help="seed of the problem (default 0)")
    p.add_argument("--weights", help="load U, W, V, b, c from a .npz or a twin's torch state dict (.pt)")
    p.add_argument("--dpi", type=_positive, default=72, help="resolution of a PNG (default 72)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    require("matplotlib.figure", purpose="bptt explain")          # say so before any computation
    scales = tuple(args.weight_scale or DEFAULT_SCALES)
    for scale in scales:
        if not np.isfinite(scale) or scale <= 0:
            parser().error(f"--weight-scale: expected a positive number, got {scale}")
    problem = random_problem(T=args.seq_len, B=args.batch, I=args.input_size, H=args.hidden_size,
                             O=args.output_size, seed=args.seed)
    params = problem.params
    if args.weights:
        params = load_weights(args.weights).astype(np.float64)
        refit = random_problem(T=args.seq_len, B=args.batch, I=params.input_size,
                               H=params.hidden_size, O=params.output_size, seed=args.seed)
        problem = refit
    panels = explain_panels(params, problem.x, problem.y, problem.h0,
                            nonlinearities=tuple(args.nonlinearity or NONLINEARITIES), scales=scales)
    if args.cell:
        panels += gated_panels(problem.x, problem.y, problem.h0, cells=tuple(args.cell), scales=scales,
                               hidden_size=params.hidden_size, output_size=params.output_size, seed=args.seed)
    fig = draw_explain(panels)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, out, dpi=args.dpi)
    print(f"problem: {problem!r}")
    for panel in panels:
        ratio = panel.by_lag[-1] / panel.by_lag[0] if panel.by_lag[0] > 0 else float("nan")
        s = panel.state
        print(f"{panel.nonlinearity:<5} W × {panel.scale:<4g} ‖∂{s}(T)/∂{s}(0)‖₂ = "
              f"{panel.singular_values[-1, 0]:.3e}   size at lag T-1 / lag 0 = {ratio:.3e}")
    print(f"wrote {out}")
    return 0
