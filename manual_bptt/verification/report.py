"""A per-gradient comparison of two sets of gradients, printable as a table.

`compare_grads` measures each gradient on its largest element (see
tolerances.py); the report has one row per gradient, `report.ok`, and a
`str()` that is a table to read or paste. `torch_reference.compare` builds one
against torch.autograd; the tests build them against finite differences too.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ..model.params import RNNGrads, as_float_dtype
from .tolerances import Tolerance, tolerance_for

# The verdicts of a row. Only FAIL says a gradient is wrong; UNDETERMINED says
# the problem leaves no digit to check (a report with one is not `ok` either).
OK = "ok"
OK_ILL_CONDITIONED = "ok (ill-conditioned)"
UNDETERMINED = "no meaningful digit"
FAIL = "FAIL"
#: Rounding that explains a tenth of the largest element leaves no digit to check.
NO_DIGIT = 0.1
#: The most digits a row claims (float64 has about 16).
_MAX_DIGITS = 16


@dataclass(frozen=True)
class GradientRow:
    """One gradient: its name and shape, max |Δ|, max |reference| and the verdict.

    A row compared entry by entry also keeps its worst entry: the index of the
    largest |Δ| and both values there. A row whose shape differs from the
    reference's (`expected_shape`) has no entries to compare: it FAILs, with max |Δ|
    = inf, and its label says "shape mismatch: got (5, 8), expected (8, 5)".
    """

    name: str
    shape: tuple
    max_abs_diff: float
    max_abs_reference: float
    tolerance: Tolerance
    #: The largest max |Δ| that rounding alone explains on this problem
    #: (conditioning.py), or None where it was not estimated: then the fixed
    #: tolerance alone decides, as on every well-conditioned problem.
    rounding: float | None = None
    #: The dtype of the gradient checked (None for L, a Python float): the report
    #: notes one that differs from the problem's; it never chooses the tolerance.
    actual_dtype: np.dtype | None = None
    #: The reference's shape where it differs from `shape` (the checked gradient's); else None.
    expected_shape: tuple | None = None
    #: Where |Δ| is largest (a NaN counts as largest), and the two values there; None when not compared.
    worst_index: tuple | None = None
    worst_actual: float | None = None
    worst_reference: float | None = None

    @property
    def shape_mismatch(self) -> bool:
        """The checked gradient has another shape than the reference's (a FAIL of its own kind)."""
        return self.expected_shape is not None

    @property
    def allowed(self) -> float:
        fixed = self.tolerance.allowed(self.max_abs_reference)
        return fixed if self.rounding is None else max(fixed, self.rounding)

    @property
    def digits(self) -> int | None:
        """About how many leading digits of this gradient rounding leaves meaningful
        (None where not estimated). Rounding explains max |Δ| up to 10^-digits · max |ref|."""
        if self.rounding is None:
            return None
        if self.rounding <= 0:
            return _MAX_DIGITS
        if self.max_abs_reference == 0 or not math.isfinite(self.rounding):
            return 0
        return max(0, min(_MAX_DIGITS, math.floor(-math.log10(self.rounding / self.max_abs_reference))))

    @property
    def verdict(self) -> str:
        """"ok", "ok (ill-conditioned)", "no meaningful digit" or "FAIL" (see `ok`)."""
        if self.shape_mismatch:
            return FAIL
        if self.max_abs_diff <= self.tolerance.allowed(self.max_abs_reference):
            return OK
        if self.rounding is None or not math.isfinite(self.max_abs_diff):
            return FAIL
        if self.rounding >= NO_DIGIT * self.max_abs_reference:
            # Rounding alone can move the gradient by a tenth of its largest
            # element: no candidate can be told right or wrong on this problem.
            return UNDETERMINED
        if self.max_abs_diff <= self.rounding:
            return OK_ILL_CONDITIONED
        return FAIL

    @property
    def label(self) -> str:
        """The verdict as the table prints it, with the digits where they were estimated,
        and the two shapes of a shape mismatch."""
        if self.shape_mismatch:
            return f"shape mismatch: got {tuple(self.shape)}, expected {tuple(self.expected_shape)}"
        if self.verdict == OK_ILL_CONDITIONED:
            digits = self.digits
            return f"ok (ill-conditioned: ~{digits} digit{'' if digits == 1 else 's'} meaningful)"
        return self.verdict

    @property
    def ratio(self) -> float:
        """max |Δ| / max |reference|: the error relative to the largest element."""
        if self.max_abs_reference == 0:
            return 0.0 if self.max_abs_diff == 0 else math.inf
        return self.max_abs_diff / self.max_abs_reference

    @property
    def ok(self) -> bool:
        """Within the fixed tolerance, or within what rounding explains on this problem.
        A NaN fails: every comparison with NaN is False."""
        return self.verdict in (OK, OK_ILL_CONDITIONED)

    def worst_entry(self, actual_name: str = "actual", reference_name: str = "reference", where: str = "") -> str:
        """The worst entry as a line, "W[1, 0]: manual 1.5e-01, torch.autograd -2.3e-01"; `where`
        (a time step, say) is put in brackets after the index."""
        index = ", ".join(str(i) for i in self.worst_index)
        at = (f"{self.name}[{index}]" if index else self.name) + (f" ({where})" if where else "")
        return f"{at}: {actual_name} {self.worst_actual:.6e}, {reference_name} {self.worst_reference:.6e}"

    def __repr__(self) -> str:
        # The dataclass repr would spell out the tolerance's reason; a row reads as its line of the table.
        return (f"<GradientRow {self.name} {_shape_text(self.shape)}: max|Δ| {self.max_abs_diff:.3e}, "
                f"max|ref| {self.max_abs_reference:.3e}, {self.label}>")


def _shape_text(shape: tuple) -> str:
    """A shape as the table prints it: 8x5, or "scalar"."""
    return "x".join(str(n) for n in shape) or "scalar"


#: The gradients of the initial state (an LSTM's c0 too; a reverse direction's enters at the last step).
INITIAL_STATES = ("h0", "c0")


@dataclass(frozen=True, repr=False)
class GradientReport:
    """Rows for L and each gradient; `ok` when every row is within its tolerance.

    `dtype` is the problem's: it chose every row's tolerance. Gradients the checked
    side returned in another dtype are listed by `other_dtypes()` and noted under
    the table (see compare_grads).
    """

    rows: tuple[GradientRow, ...]
    actual_name: str
    reference_name: str
    dtype: np.dtype
    #: Lines printed under the table about what was checked (compare adds one for a
    #: network with dropout, checked as its eval-mode function).
    notes: tuple[str, ...] = ()
    #: (name, axis) pairs: the axis of a gradient that counts time steps (x's is 0 time-major,
    #: 1 batch_first). The line under the table then gives the worst entry's time step too.
    time_axes: tuple[tuple[str, int], ...] = ()

    @property
    def ok(self) -> bool:
        """Every row ok: none FAIL and none without a meaningful digit."""
        return all(row.ok for row in self.rows)

    def failures(self) -> tuple[GradientRow, ...]:
        """The rows that FAIL: beyond the tolerance and beyond what rounding explains."""
        return tuple(row for row in self.rows if row.verdict == FAIL)

    def undetermined(self) -> tuple[GradientRow, ...]:
        """The rows this problem leaves no meaningful digit to check (neither ok nor FAIL)."""
        return tuple(row for row in self.rows if row.verdict == UNDETERMINED)

    def other_dtypes(self) -> tuple[GradientRow, ...]:
        """The rows whose checked gradient is not of the problem's dtype (judged at the problem's tolerance)."""
        return tuple(row for row in self.rows if row.actual_dtype is not None and row.actual_dtype != self.dtype)

    def dtype_note(self) -> str | None:
        """The line under the table that names gradients of another dtype; None when there are none."""
        by_dtype: dict = {}
        for row in self.other_dtypes():
            by_dtype.setdefault(row.actual_dtype, []).append(row.name)
        if not by_dtype:
            return None
        parts = "; ".join(f"{', '.join(names)} {'is' if len(names) == 1 else 'are'} {dtype}"
                          for dtype, names in by_dtype.items())
        return (f"note: {self.actual_name} returned {parts}; the problem is {self.dtype}, "
                f"so every row is judged at {self.dtype}'s tolerance")

    def __getitem__(self, name: str) -> GradientRow:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f"no row named {name!r}; rows: {', '.join(r.name for r in self.rows)}")

    def worst_entries(self) -> tuple[str, ...]:
        """A line per FAIL row compared entry by entry: where |Δ| is largest and both values there
        ("worst W[1, 0]: manual ..., torch.autograd ..."); x's time step where `time_axes` gives it."""
        axes = dict(self.time_axes)
        lines = []
        for row in self.failures():
            if row.worst_index is None:
                continue
            where = ""
            if row.name in axes:                                  # x[t - 1] is x(t): the derivation counts from 1
                where = f"time step t = {row.worst_index[axes[row.name]] + 1}"
            elif row.name in INITIAL_STATES:
                where = "the initial state"
            lines.append("worst " + row.worst_entry(self.actual_name, self.reference_name, where))
        return tuple(lines)

    def __str__(self) -> str:
        header = ("name", "shape", "max|Δ|", "max|ref|", "ratio", "allowed", "")
        body = [
            (
                row.name,
                _shape_text(row.shape),
                "-" if row.shape_mismatch else f"{row.max_abs_diff:.3e}",
                f"{row.max_abs_reference:.3e}",
                "-" if row.shape_mismatch else f"{row.ratio:.3e}",
                f"{row.allowed:.3e}",
                row.label,
            )
            for row in self.rows
        ]
        widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
        lines = [f"{self.actual_name} vs {self.reference_name} ({self.dtype})"]
        # Long verdicts (the rounding estimate's, a shape mismatch) read better left-aligned.
        long_labels = any(row.rounding is not None or row.shape_mismatch for row in self.rows)
        left = {0, 1, 6} if long_labels else {0, 1}
        for r in [header] + body:
            lines.append("  ".join(cell.ljust(w) if i in left else cell.rjust(w)
                                   for i, (cell, w) in enumerate(zip(r, widths))).rstrip())
        tol = self.rows[0].tolerance  # one tolerance per report; there is always a row
        rule = f"max|Δ| <= {tol.rtol:g}·max|ref| + {tol.atol:g}"
        bad = self.failures()
        verdict = "all agree" if not bad else f"{len(bad)} of {len(self.rows)} FAIL: " + ", ".join(
            row.name for row in bad
        )
        if any(row.rounding is not None for row in self.rows):
            verdict, rule = self._conditioned_summary(verdict, rule)
        lines.extend(self.worst_entries())
        note = self.dtype_note()
        if note is not None:
            lines.append(note)
        lines.extend(f"note: {line}" for line in self.notes)
        lines.append(f"{verdict} ({rule})")
        return "\n".join(lines)

    def __repr__(self) -> str:
        # At a prompt a report is its table (the dataclass repr repeats the tolerance's reason per row).
        return str(self)

    def _conditioned_summary(self, verdict: str, rule: str) -> tuple[str, str]:
        """The last line's verdict and rule where the rounding estimate was used."""
        undetermined = self.undetermined()
        if undetermined:
            names = ", ".join(row.name for row in undetermined)
            part = f"{len(undetermined)} without a meaningful digit on this problem: {names}"
            verdict = part if verdict == "all agree" else f"{verdict}; {part}"
        return verdict, f"{rule}, or within what rounding explains on this problem"

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
        numbers = (row.max_abs_diff, row.max_abs_reference, row.ratio, row.allowed)
        texts = [f"{value:.3e}" for value in numbers]
        if row.shape_mismatch:                                       # no entries compared: no max|Δ|, no ratio
            texts[0] = texts[2] = "-"
        cells = [f"<td>{escape(row.name)}</td>", f"<td>{_shape_text(row.shape)}</td>"]
        cells += [f'<td style="text-align: right">{text}</td>' for text in texts]
        if row.verdict != FAIL:                                      # ok, ok (ill-conditioned), no meaningful digit
            cells.append(f'<td class="{"ok" if row.ok else "undetermined"}">{escape(row.label)}</td>')
            body.append(f"<tr>{''.join(cells)}</tr>")
        else:
            cells.append(f'<td class="fail" style="{FAIL_CELL_STYLE}">{escape(row.label)}</td>')
            body.append(f'<tr class="fail" style="{FAIL_ROW_STYLE}">{"".join(cells)}</tr>')
    verdict = escape(str(report).splitlines()[-1])
    caption = escape(f"{report.actual_name} vs {report.reference_name} ({report.dtype})")
    note = report.dtype_note()
    note = "" if note is None else f"<p>{escape(note)}</p>"
    note = "".join(f"<p>{escape(line)}</p>" for line in report.worst_entries()) + note
    note += "".join(f"<p>note: {escape(line)}</p>" for line in report.notes)
    return (f"<table><caption>{caption}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>{note}<p>{verdict}</p>")


def compare_grads(
    actual: RNNGrads,
    reference: RNNGrads,
    *,
    dtype=None,
    loss: float | None = None,
    reference_loss: float | None = None,
    tolerance: Tolerance | None = None,
    actual_name: str = "manual",
    reference_name: str = "reference",
    rounding: dict | None = None,
    notes: tuple[str, ...] = (),
) -> GradientReport:
    """Compare every gradient (and L, when both losses are given).

    `actual` and `reference` are RNNGrads or NetworkGrads: one row per name of the
    reference's `items()`; a name the actual lacks is a ValueError, a gradient that
    is not an array of real floats (complex, integer, object) a TypeError. A
    gradient whose shape differs from the reference's is a FAIL with max |Δ| = inf,
    labelled "shape mismatch: got (5, 8), expected (8, 5)". Every other row keeps its
    worst entry (index and both values), printed under the table for a FAIL row.

    `dtype` is the problem's dtype, float32 or float64 (that of its parameters):
    the precision being judged. It chooses the tolerance (unless `tolerance` is
    given) and heads the report. Left None, it is the dtype of the reference's
    first gradient: the reference is computed at the problem's precision. The
    actual's dtype never chooses it: a candidate that returns float32 gradients
    for a float64 problem is judged at float64's tolerance (and a float32 problem's
    exact float64 gradients at float32's). A gradient of a dtype other than the
    problem's is compared by value all the same, and a line under the table names
    it ("note: ... returned U, W are float32; the problem is float64 ..."; rows
    in `report.other_dtypes()`).

    `rounding` maps row names to the max |Δ| that rounding alone explains on this
    problem (`conditioning.rounding_spread(...).allowances()`); a row beyond the
    tolerance but within it is "ok (ill-conditioned)", and a row where it reaches
    a tenth of the gradient has no meaningful digit (see GradientRow.verdict).

    `notes`: lines about what was checked, printed under the table after "note: ".
    """
    got = dict(actual.items())
    wanted = [(name, np.asarray(want)) for name, want in reference.items()]
    dtype = as_float_dtype(wanted[0][1].dtype if dtype is None else dtype)
    tolerance = tolerance if tolerance is not None else tolerance_for(dtype)
    missing = [name for name, _ in wanted if name not in got]
    if missing:
        raise ValueError(
            f"actual: expected a gradient for every name of the reference ({', '.join(n for n, _ in wanted)}), "
            f"got none for {', '.join(missing)}"
        )
    rows = [_row(name, _real_floats(name, got[name]), want, tolerance) for name, want in wanted]
    if loss is not None and reference_loss is not None:
        rows.insert(0, _row("L", np.asarray(loss, dtype=np.float64), np.asarray(reference_loss), tolerance))
        rows[0] = dataclasses.replace(rows[0], actual_dtype=None)   # L is a Python float by contract
    if rounding is not None:
        rows = [dataclasses.replace(row, rounding=rounding.get(row.name)) for row in rows]
    return GradientReport(rows=tuple(rows), actual_name=actual_name, reference_name=reference_name, dtype=dtype,
                          notes=tuple(notes))


def _real_floats(name: str, value) -> np.ndarray:
    """An actual gradient as an array of real floats (never cast: a complex part must not vanish)."""
    array = np.asarray(value)
    if array.dtype.kind != "f":
        raise TypeError(f"actual[{name!r}]: expected an array of real floats, got dtype {array.dtype}")
    return array


def _row(name: str, got: np.ndarray, want: np.ndarray, tolerance: Tolerance) -> GradientRow:
    # Gradients are never empty (every size is at least 1), so max is defined.
    reference_size = float(np.max(np.abs(want)))
    if got.shape != want.shape:
        return GradientRow(name, got.shape, math.inf, reference_size, tolerance, actual_dtype=got.dtype,
                           expected_shape=want.shape)
    # Differences in float64 so that the measure itself adds no float32 rounding.
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    # argmax finds the first NaN where there is one: the entry that fails.
    worst = np.unravel_index(int(np.argmax(diff)), diff.shape)
    # np.max propagates NaN, and a NaN max |Δ| fails every comparison (see GradientRow.ok).
    return GradientRow(name, got.shape, float(np.max(diff)), reference_size, tolerance, actual_dtype=got.dtype,
                       worst_index=tuple(int(i) for i in worst), worst_actual=float(got[worst]),
                       worst_reference=float(want[worst]))
