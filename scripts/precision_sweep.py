"""The precision audit swept over T and over the weight scale, for the Elman, LSTM and GRU networks.

    .venv/bin/python scripts/precision_sweep.py                      # docs/figures/precision.png + tables
    .venv/bin/python scripts/precision_sweep.py --quick --out /tmp/p.png

For each cell (nn.RNN tanh, nn.LSTM, nn.GRU; one layer, B = 8, I = 16, H = 64, O = 10,
cross-entropy summed, as `random_network_problem` draws them), `torch_reference.audit` runs
every CPU path at T = 10 … 1000 (weights at PyTorch's initialisation) and at weight scales
0.5 … 8 (T = 100; the scale multiplies every weight_hh). A path's error is its worst
gradient's max|g − g64| / max|g64|; the prediction of its precision is the worst gradient's
too. The figure: a column per cell, the T sweep above, the scale sweep below, log-log, each
path a solid line and each precision's prediction a dashed line of the same colour. The
tables (markdown) are what docs/precision.md shows. Runs on one thread; it prints its time
(25–61 s on the 2 busy cores it was written on). A non-finite error (float16 overflowing) is
left out of the figure; the tables print it as inf.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from manual_bptt.tools.plotting import new_figure, save_figure
from manual_bptt.verification.problems import random_network_problem
from torch_reference.audit import PRECISIONS, audit, cpu_paths
from torch_reference.threads import one_thread

ROOT = Path(__file__).resolve().parent.parent
CELLS = {"rnn_tanh": "Elman (tanh)", "lstm": "LSTM", "gru": "GRU"}
SIZES = dict(B=8, I=16, H=64, O=10)
LENGTHS = (10, 30, 100, 300, 1000)
SCALES = (0.5, 1.0, 2.0, 4.0, 8.0)
SCALE_T = 100
#: A colour per path; its precision's prediction is drawn dashed in the colour of its first path.
COLOURS = {"torch float64": "0.35", "torch float32": "tab:blue", "torch float32 (oneDNN off)": "tab:cyan",
           "manual float32": "tab:purple", "torch bfloat16 autocast": "tab:red", "torch float16": "tab:orange"}


def worst(report) -> tuple[dict, dict]:
    """({path: its worst gradient's error}, {precision: its worst gradient's prediction})."""
    errors, predictions = {}, {}
    precision_of = {path.name: path.precision for path in cpu_paths()}
    for row in report.rows:
        if row.relative_error is not None:
            errors[row.path] = max(errors.get(row.path, 0.0), row.relative_error)
        precision = precision_of[row.path]
        predictions[precision] = max(predictions.get(precision, 0.0), row.predicted_error)
    return errors, predictions


def measure(cell: str, T: int, scale: float, seed: int) -> tuple[dict, dict]:
    problem = random_network_problem(T=T, **SIZES, cell=cell, num_layers=1, bidirectional=False, seed=seed,
                                     weight_scale=scale)
    return worst(problem.run(audit, paths=cpu_paths()))


def draw(ax, xs, results, *, xlabel: str, title: str) -> None:
    first_path = {}
    for path in cpu_paths():
        first_path.setdefault(path.precision, path.name)
        ys = [errors.get(path.name) for errors, _ in results]
        ax.loglog(xs, ys, "o-", color=COLOURS[path.name], label=path.name, markersize=3)
    for precision, path in first_path.items():
        ax.loglog(xs, [predictions[precision] for _, predictions in results], "--", color=COLOURS[path],
                  label=f"predicted, {precision}")
    ax.set_xticks(xs, [f"{x:g}" for x in xs], minor=False)
    ax.set_xticks([], minor=True)                                    # no minor labels between the points
    ax.set_xlabel(xlabel)
    ax.set_ylabel("max|g − g64| / max|g64|")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="major", alpha=0.3)


def table(rows: list[tuple[str, str, dict, dict]]) -> str:
    """Markdown: a row per problem, a column per path: 'error (predicted)'."""
    paths = [path for path in cpu_paths()]
    head = "| cell | problem | " + " | ".join(path.name for path in paths) + " |"
    lines = [head, "|" + "---|" * (len(paths) + 2)]
    for cell, problem, errors, predictions in rows:
        cells = [f"{errors[p.name]:.1e} ({predictions[p.precision]:.0e})" if p.name in errors else "—" for p in paths]
        lines.append(f"| {cell} | {problem} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "figures" / "precision.png"), help="the figure")
    parser.add_argument("--quick", action="store_true", help="T up to 100 and three scales: a smoke run")
    parser.add_argument("--seed", type=int, default=0, help="the problems' seed (default 0)")
    args = parser.parse_args()
    lengths = LENGTHS[:3] if args.quick else LENGTHS
    scales = SCALES[1:4] if args.quick else SCALES
    start = time.perf_counter()
    fig, axes = new_figure(2, len(CELLS), purpose="the precision sweep's figure")
    t_rows, scale_rows = [], []
    with one_thread():
        for column, (cell, name) in enumerate(CELLS.items()):
            by_T = [measure(cell, T, 1.0, args.seed) for T in lengths]
            by_scale = [measure(cell, SCALE_T, scale, args.seed) for scale in scales]
            draw(axes[0, column], lengths, by_T, xlabel="T (weights at PyTorch's initialisation)", title=f"{name}: against T")
            draw(axes[1, column], scales, by_scale, xlabel=f"weight scale of weight_hh (T = {SCALE_T})",
                 title=f"{name}: against the scale of weight_hh")
            t_rows += [(name, f"T = {T}", *result) for T, result in zip(lengths, by_T)]
            scale_rows += [(name, f"scale {scale:g}", *result) for scale, result in zip(scales, by_scale)]
            print(f"{name}: done after {time.perf_counter() - start:.0f} s", flush=True)
    axes[0, -1].legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle(f"precision of the gradients: one layer, B = {SIZES['B']}, I = {SIZES['I']}, H = {SIZES['H']}, "
                 f"O = {SIZES['O']}; u: " + ", ".join(f"{p.name} {p.unit_roundoff:.0e}" for p in PRECISIONS.values()),
                 fontsize=9)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, out)
    print("\nerror of the worst gradient (the prediction of its precision), weights at PyTorch's initialisation:\n")
    print(table(t_rows))
    print(f"\nthe same at T = {SCALE_T}, weight_hh scaled:\n")
    print(table(scale_rows))
    print(f"\nwrote {out} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
