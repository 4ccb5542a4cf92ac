"""GradientReport in a notebook: an HTML table with one row per gradient, FAIL rows marked."""

from __future__ import annotations

import re

from manual_bptt import bptt, compare_grads
from manual_bptt.verification.problems import random_problem

PROBLEM = random_problem(T=4, B=2, I=2, H=3, O=3, seed=9)


def rows_of(html: str) -> list[str]:
    return re.findall(r"<tr[^>]*>.*?</tr>", html.split("<tbody>")[1])


def test_every_row_is_a_table_row_and_only_failures_are_marked():
    L, g = PROBLEM.run(bptt)
    wrong = type(g)(**{**dict(g.items()), "W": g.W.T.copy(), "c": g.c * 2})
    report = compare_grads(wrong, g, loss=L, reference_loss=L)
    html = report._repr_html_()
    rows = rows_of(html)
    assert [re.search(r"<td>(.*?)</td>", row).group(1) for row in rows] == [r.name for r in report.rows]
    for row, report_row in zip(rows, report.rows):
        assert row.startswith('<tr class="fail"') == (not report_row.ok), report_row.name
        assert ('<td class="fail"' in row and ">FAIL</td>" in row) == (not report_row.ok), report_row.name
        assert f"{report_row.max_abs_diff:.3e}" in row and f"{report_row.allowed:.3e}" in row
    assert "2 of 8 FAIL: W, c" in html


def test_a_clean_report_has_no_mark_and_escapes_names():
    _, g = PROBLEM.run(bptt)
    report = compare_grads(g, g, actual_name="<mine>", reference_name="a & b")
    html = report._repr_html_()
    assert "FAIL" not in html and 'class="fail"' not in html
    assert "&lt;mine&gt; vs a &amp; b" in html and "<mine>" not in html


def test_a_shape_mismatch_and_the_worst_entry_show_in_the_html():
    L, g = PROBLEM.run(bptt)
    W = g.W.copy()
    W[2, 0] += 1.0
    wrong = type(g)(**{**dict(g.items()), "U": g.U.T.copy(), "W": W})
    html = compare_grads(wrong, g, loss=L, reference_loss=L)._repr_html_()
    u_row = next(row for row in rows_of(html) if row.startswith('<tr class="fail"') and "<td>U</td>" in row)
    assert ">shape mismatch: got (2, 3), expected (3, 2)</td>" in u_row and ">inf<" not in u_row
    assert f"<p>worst W[2, 0]: manual {W[2, 0]:.6e}, reference {g.W[2, 0]:.6e}</p>" in html
