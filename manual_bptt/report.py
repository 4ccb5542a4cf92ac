"""A per-gradient comparison of two sets of gradients, printable as a table.

`compare_grads` measures each gradient on its largest element (see
tolerances.py); the report has one row per gradient, `report.ok`, and a
`str()` that is a table to read or paste. `torch_reference.compare` builds one
against torch.autograd; the tests build them against finite differences too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .params import GRAD_NAMES, RNNGrads
from .tolerances import Tolerance, tolerance_for


@dataclass(frozen=True)
class GradientRow:
    """One gradient: its name and shape, max |Δ|, max |reference| and the verdict."""

    name: str
    shape: tuple
    max_abs_diff: float
    max_abs_reference: float
    tolerance: Tolerance

    @property
    def allowed(self) -> float:
        return self.tolerance.allowed(self.max_abs_reference)

    @property
    def ratio(self) -> float:
        """max |Δ| / max |reference|: the error relative to the largest element."""
        if self.max_abs_reference == 0:
            return 0.0 if self.max_abs_diff == 0 else math.inf
        return self.max_abs_diff / self.max_abs_reference

    @property
    def ok(self) -> bool:
        # Written so that a NaN anywhere fails: every comparison with NaN is False.
        return bool(self.max_abs_diff <= self.allowed)


@dataclass(frozen=True)
class GradientReport:
    """Rows for L and each gradient; `ok` when every row is within its tolerance."""

    rows: tuple[GradientRow, ...]
    actual_name: str
    reference_name: str
    dtype: np.dtype

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.rows)

    def failures(self) -> tuple[GradientRow, ...]:
        return tuple(row for row in self.rows if not row.ok)

    def __getitem__(self, name: str) -> GradientRow:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f"no row named {name!r}; rows: {', '.join(r.name for r in self.rows)}")

    def __str__(self) -> str:
        header = ("name", "shape", "max|Δ|", "max|ref|", "ratio", "allowed", "")
        body = [
            (
                row.name,
                "x".join(str(n) for n in row.shape) or "scalar",
                f"{row.max_abs_diff:.3e}",
                f"{row.max_abs_reference:.3e}",
                f"{row.ratio:.3e}",
                f"{row.allowed:.3e}",
                "ok" if row.ok else "FAIL",
            )
            for row in self.rows
        ]
        widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
        lines = [f"{self.actual_name} vs {self.reference_name} ({self.dtype})"]
        for r in [header] + body:
            lines.append("  ".join(cell.ljust(w) if i < 2 else cell.rjust(w)
                                   for i, (cell, w) in enumerate(zip(r, widths))).rstrip())
        tol = self.rows[0].tolerance  # one tolerance per report; there is always a row
        rule = f"max|Δ| <= {tol.rtol:g}·max|ref| + {tol.atol:g}"
        bad = self.failures()
        verdict = "all agree" if not bad else f"{len(bad)} of {len(self.rows)} FAIL: " + ", ".join(
            row.name for row in bad
        )
        lines.append(f"{verdict} ({rule})")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """The same table as HTML, for Jupyter: a FAIL row is shaded and its verdict in bold red."""
        return report_html(self)


#: How a FAIL row and its verdict cell look in a notebook.
FAIL_ROW_STYLE = "background-color: #fde0dc"
FAIL_CELL_STYLE = "color: #b71c1c; font-weight: bold"


def report_html(report: GradientReport) -> str:
    """An HTML table of the report: one row per gradient, FAIL rows marked (see `_repr_html_`)."""
    from html import escape

    head = "".join(f"<th>{escape(h)}</th>" for h in ("name", "shape", "max|Δ|", "max|ref|", "ratio", "allowed", ""))
    body = []
    for row in report.rows:
        shape = "x".join(str(n) for n in row.shape) or "scalar"
        numbers = (row.max_abs_diff, row.max_abs_reference, row.ratio, row.allowed)
        cells = [f"<td>{escape(row.name)}</td>", f"<td>{shape}</td>"]
        cells += [f'<td style="text-align: right">{value:.3e}</td>' for value in numbers]
        if row.ok:
            cells.append('<td class="ok">ok</td>')
            body.append(f"<tr>{''.join(cells)}</tr>")
        else:
            cells.append(f'<td class="fail" style="{FAIL_CELL_STYLE}">FAIL</td>')
            body.append(f'<tr class="fail" style="{FAIL_ROW_STYLE}">{"".join(cells)}</tr>')
    verdict = escape(str(report).splitlines()[-1])
    caption = escape(f"{report.actual_name} vs {report.reference_name} ({report.dtype})")
    return (f"<table><caption>{caption}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table><p>{verdict}</p>")


def compare_grads(
    actual: RNNGrads,
    reference: RNNGrads,
    *,
    loss: float | None = None,
    reference_loss: float | None = None,
    tolerance: Tolerance | None = None,
    actual_name: str = "manual",
    reference_name: str = "reference",
) -> GradientReport:
    """Compare every gradient (and L, when both losses are given).

    The tolerance defaults to the table entry for the dtype of `actual.U`. A
    gradient whose shape differs from the reference's is a FAIL with max |Δ| = inf.
    """
    dtype = np.asarray(actual.U).dtype
    tolerance = tolerance if tolerance is not None else tolerance_for(dtype)
    pairs = [(name, np.asarray(getattr(actual, name)), np.asarray(getattr(reference, name)))
             for name in GRAD_NAMES]
    if loss is not None and reference_loss is not None:
        pairs.insert(0, ("L", np.asarray(loss), np.asarray(reference_loss)))
    rows = tuple(_row(name, got, want, tolerance) for name, got, want in pairs)
    return GradientReport(rows=rows, actual_name=actual_name, reference_name=reference_name, dtype=dtype)


def _row(name: str, got: np.ndarray, want: np.ndarray, tolerance: Tolerance) -> GradientRow:
    # Gradients are never empty (every size is at least 1), so max is defined.
    reference_size = float(np.max(np.abs(want)))
    if got.shape != want.shape:
        return GradientRow(name, got.shape, math.inf, reference_size, tolerance)
    # Differences in float64 so that the measure itself adds no float32 rounding.
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    # np.max propagates NaN, and a NaN max |Δ| fails every comparison (see GradientRow.ok).
    return GradientRow(name, got.shape, float(np.max(diff)), reference_size, tolerance)
