"""The example notebook runs from top to bottom, and shows what it promises."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")
pytest.importorskip("torch")

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "tour.ipynb"
# Kernel start-up and the first imports of torch and matplotlib take a few seconds.
CELL_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def executed():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    return notebook


def outputs_of(notebook, marker: str) -> list:
    """The outputs of the one code cell whose source contains marker."""
    cells = [cell for cell in notebook.cells if cell.cell_type == "code" and marker in cell.source]
    assert len(cells) == 1, marker
    return cells[0].outputs


def test_every_cell_runs_without_error(executed):
    for cell in executed.cells:
        if cell.cell_type == "code":
            assert all(output.output_type != "error" for output in cell.outputs), cell.source


def test_the_check_prints_its_table(executed):
    text = "".join(o.get("text", "") for o in outputs_of(executed, 'bptt(["check"'))
    assert "all agree" in text


def test_reports_render_as_html_with_the_failure_marked(executed):
    good = outputs_of(executed, "report = compare(p, x, y, h0)")[-1]["data"]["text/html"]
    assert "<table>" in good and "FAIL" not in good
    bad = outputs_of(executed, "wrong_report = compare_grads")[-1]["data"]["text/html"]
    assert bad.count('class="fail"') == 2                    # the W row and its verdict cell


@pytest.mark.parametrize("marker", ["plot_contributions(terms)", "plot_hidden_jacobian(J)", "draw_explain(panels)"])
def test_the_pictures_are_shown(executed, marker):
    assert any("image/png" in output.get("data", {}) for output in outputs_of(executed, marker))
