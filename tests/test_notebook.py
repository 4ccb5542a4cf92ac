"""The example notebook runs from top to bottom, shows what it promises, and the outputs it
ships with are the ones it prints now (`make figures` writes them back)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")
pytest.importorskip("torch")

EXECUTE = Path(__file__).resolve().parent.parent / "examples" / "execute.py"
_spec = importlib.util.spec_from_file_location("tour_execute", EXECUTE)
tour = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tour)


@pytest.fixture(scope="module")
def stored():
    return nbformat.read(tour.NOTEBOOK, as_version=4)


@pytest.fixture(scope="module")
def executed():
    return tour.execute(tour.NOTEBOOK)


def code_cells(notebook) -> list:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def outputs_of(notebook, marker: str) -> list:
    """The outputs of the one code cell whose source contains marker."""
    cells = [cell for cell in code_cells(notebook) if marker in cell.source]
    assert len(cells) == 1, marker
    return cells[0].outputs


def printed(notebook, marker: str) -> str:
    return "".join(output.get("text", "") for output in outputs_of(notebook, marker))


def test_every_cell_runs_without_error(executed):
    for cell in code_cells(executed):
        assert all(output.output_type != "error" for output in cell.outputs), cell.source


def test_the_notebook_ships_with_its_outputs(stored, executed):
    showing = [bool(cell.outputs) for cell in code_cells(executed)]
    assert sum(showing) >= 8 and [bool(cell.outputs) for cell in code_cells(stored)] == showing, \
        "run `make figures` to store the notebook's outputs"


def test_the_stored_outputs_are_the_ones_it_prints_now(stored, executed):
    assert [cell.source for cell in code_cells(stored)] == [cell.source for cell in code_cells(executed)]
    for number, (old, new) in enumerate(zip(code_cells(stored), code_cells(executed)), start=1):
        old_texts, new_texts = tour.texts(old), tour.texts(new)
        stale = f"code cell {number} ({old.source.splitlines()[0]!r}): its stored outputs are stale; run `make figures`"
        assert len(old_texts) == len(new_texts), stale
        for old_text, new_text in zip(old_texts, new_texts):
            (old_frame, old_numbers), (new_frame, new_numbers) = tour.comparable(old_text), tour.comparable(new_text)
            assert old_frame == new_frame, f"{stale}\nstored:\n{old_text}\nnow:\n{new_text}"
            assert tour.same_numbers(old_numbers, new_numbers), f"{stale}\nstored:\n{old_text}\nnow:\n{new_text}"
        assert tour.images(old) == tour.images(new), stale


@pytest.mark.parametrize(("stored_text", "fresh_text", "same"), [
    ("max|Δ| 7.772e-16 ok", "max|Δ| 6.661e-16 ok", True),        # rounding: below ROUNDING
    ("L = 36.810755", "L = 36.810756", True),                    # a flipped last digit
    ("L = 36.810755", "L = 36.910755", False),                   # another loss
    ("rows that FAIL: U, b", "rows that FAIL: U, W", False),     # another verdict
    ("T=2, B=1", "T=3, B=1", False),                             # another shrunk problem
    ("at 0x7f6aca0549a0", "at 0x7f00aa001122", True),            # a memory address
])
def test_the_comparison_masks_only_what_legitimately_varies(stored_text, fresh_text, same):
    (old_frame, old_numbers), (new_frame, new_numbers) = tour.comparable(stored_text), tour.comparable(fresh_text)
    assert (old_frame == new_frame and tour.same_numbers(old_numbers, new_numbers)) == same


def test_the_check_prints_its_table_and_exits_0(executed):
    assert "all agree" in printed(executed, 'bptt_command(["check"')
    assert outputs_of(executed, 'bptt_command(["check"')[-1]["data"]["text/plain"] == "0"


def test_bptt_is_the_function_not_the_command(executed):
    source = "\n".join(cell.source for cell in code_cells(executed))
    assert "from manual_bptt import NetworkParams, RNNParams, bptt" in source
    assert "import main as bptt\n" not in source and "as bptt " not in source


def test_reports_render_as_html(executed):
    good = outputs_of(executed, "report = compare(p, x, y, h0)")[-1]["data"]["text/html"]
    assert "<table>" in good and "FAIL" not in good


def test_the_network_and_the_trained_model_agree(executed):
    assert "all agree" in printed(executed, "net = NetworkParams.random(")
    trained = printed(executed, "trained = NetworkParams.from_state_dict(state)")
    assert "all agree" in trained and "eval-mode" in trained
    ours, theirs = (float(line.split("=")[1]) for line in trained.splitlines() if line.startswith(("bptt's L", "the model")))
    assert ours == pytest.approx(theirs, rel=1e-12)            # the model's own loss in eval mode


def test_the_kit_shrinks_the_bug_to_two_steps(executed):
    text = printed(executed, "result = check_bptt(forgetful_bptt")
    assert "forgetful_bptt FAILs" in text and "random_problem(T=2, B=1, I=1, H=1" in text
    assert "rows that FAIL: U, b, h0, x" in text


@pytest.mark.parametrize("marker", ["plot_contributions(terms)", "plot_hidden_jacobian(J)", "draw_explain(panels)"])
def test_the_pictures_are_shown(executed, marker):
    assert any("image/png" in output.get("data", {}) for output in outputs_of(executed, marker))


def test_what_make_installs_opens_the_notebook(stored):
    nbformat.validate(stored)
    lab = Path(sys.executable).parent / "jupyter-lab"       # `make notebook` runs `jupyter lab`
    assert lab.exists(), "the notebook extra installs JupyterLab: pip install -c constraints.txt -e '.[notebook]'"
    version = subprocess.run([str(lab), "--version"], capture_output=True, text=True, timeout=120)
    assert version.returncode == 0 and version.stdout.startswith("4."), version.stdout + version.stderr
