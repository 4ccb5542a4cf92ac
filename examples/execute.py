"""Run examples/tour.ipynb from top to bottom and write its outputs back into it.

    python examples/execute.py            # what `make figures` runs

The notebook ships with its outputs, so that it reads on a page that cannot run it;
tests/test_notebook.py runs it again with `execute` and fails when a code cell's text
differs from the stored one (beyond what `comparable` masks). Needs the `notebook` extra.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbclient
import nbformat

NOTEBOOK = Path(__file__).resolve().parent / "tour.ipynb"
# Kernel start-up and the first imports of torch and matplotlib take a few seconds; the
# kit's search, the slowest cell, about three.
CELL_TIMEOUT_S = 120

# A number as Python prints it: 12, -0.5, 3.428e+00, 1e-11, 0x7f... is not one (see ADDRESS).
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w.])")
ADDRESS = re.compile(r"0x[0-9a-fA-F]+")
# A difference between two correct gradients is rounding: its digits depend on the BLAS
# kernel and the number of threads. Every printed number below this size is one of them
# (the float64 tables' max|Δ| and ratio columns: 1e-18 to 1e-14); the gradients and losses
# printed are of order 1e-3 and more.
ROUNDING = 1e-9
# Numbers are printed to 4 significant digits or more: a last digit may flip when a value
# lies on a rounding boundary and the summation order changes, nothing more.
RELATIVE = 1e-3


def execute(path: Path = NOTEBOOK):
    """The notebook at path, run in a fresh kernel in its own folder (outputs replaced)."""
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                                     record_timing=False,
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = joined_streams(cell.outputs)
    return notebook


def joined_streams(outputs: list) -> list:
    """The outputs, each run of one stream's pieces joined: the kernel cuts a stream wherever
    it flushed, which differs from run to run."""
    joined = []
    for output in outputs:
        if output.output_type == "stream" and joined and joined[-1].output_type == "stream" \
                and joined[-1].name == output.name:
            joined[-1] = nbformat.NotebookNode({**joined[-1], "text": joined[-1].text + output.text})
        else:
            joined.append(output)
    return joined


def texts(cell) -> list[str]:
    """A code cell's text outputs in order: streams, text/plain and text/html, errors."""
    found = []
    for output in joined_streams(cell.get("outputs", [])):
        if output.output_type == "stream":
            found.append(f"{output.name}: {output.text}")
        elif output.output_type in ("execute_result", "display_data"):
            found += [f"{kind}: {output.data[kind]}" for kind in ("text/plain", "text/html") if kind in output.data]
        elif output.output_type == "error":
            found.append(f"error: {output.ename}: {output.evalue}")
    return found


def images(cell) -> int:
    """How many pictures a code cell shows (their bytes depend on matplotlib's version)."""
    return sum("image/png" in output.get("data", {}) for output in cell.get("outputs", []))


def comparable(text: str) -> tuple[str, list[float]]:
    """The text with every number and address replaced by a mark, and the numbers."""
    text = ADDRESS.sub("0x…", text)
    return NUMBER.sub("#", text), [float(n) for n in NUMBER.findall(text)]


def same_numbers(stored: list[float], fresh: list[float]) -> bool:
    """Equal, within a flipped last digit; below ROUNDING any two numbers are equal."""
    return len(stored) == len(fresh) and all(
        (abs(a) < ROUNDING and abs(b) < ROUNDING) or abs(a - b) <= RELATIVE * max(abs(a), abs(b))
        for a, b in zip(stored, fresh)
    )


def main() -> int:
    notebook = execute(NOTEBOOK)
    nbformat.write(notebook, NOTEBOOK)
    print(f"{NOTEBOOK}: {sum(cell.cell_type == 'code' for cell in notebook.cells)} code cells run, outputs written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
