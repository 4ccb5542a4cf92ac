"""The docs' code cannot drift from the code it shows: every excerpt is checked against its function.

Three kinds of marker, HTML comments that do not show when the page is rendered:

    <!-- excerpt: manual_bptt/reference/lstm.py LSTMCell.step_backward -->
    ```python
    ...lines copied from that function...
    ```

The lines of the block must appear in the function's source, in the same order and one after
the other, each compared with its leading and trailing spaces stripped (blank lines ignored).
A line that is `...` alone skips ahead: each run between such lines is contiguous, the runs in
order. The function is found with `ast` in the file named, so nothing is imported.

    <!-- example -->
    ```python
    >>> ...
    ```

marks a session to run: its page is run by doctest in tests/test_docs.py (README.md, and every
docs page that has such a marker).

    `manual_bptt/reference/elman.py::ElmanCell.step_backward`

in inline code, anywhere in README.md or docs/, cites a function or class: it must exist.

Besides the markers, the pages that walk the code must not quote implementation code any
other way (an unmarked block, an indented block, an inline `np.dot(..., out=...)`), since
such a quote would not be checked.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]

#: The pages that walk the code formula by formula (the where-table among them). Every quote of
#: project code on them is a marked excerpt; elsewhere (testing.md's mutants, performance.md's
#: profiles) code-like text quotes mutated lines or measurements, not the code as it stands.
WALKING_PAGES = ("derivation.md", "lstm.md", "gru.md", "networks.md", "where.md")

EXCERPT = re.compile(r"^<!-- excerpt: (?P<path>\S+\.py) (?P<name>[\w.]+) -->$")
EXAMPLE = "<!-- example -->"
CITATION = re.compile(r"`(?P<path>[\w/]+\.py)::(?P<name>[\w.]+)`")
ELISION = "..."


@dataclass(frozen=True)
class Block:
    """A fenced code block of a page: its language, its lines, the marker line before it (or None)."""

    page: Path
    line: int                  # 1-based line of the opening fence
    language: str
    lines: tuple
    marker: str | None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def fenced_blocks(page: Path) -> list[Block]:
    """Every ``` block of a page, with the non-blank line just before its fence as its marker."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].startswith("```"):
            language, start = lines[i][3:].strip(), i
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
            assert end is not None, f"{page.relative_to(ROOT)}:{i + 1}: a ``` block is never closed"
            before = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
            marker = before.strip() if before.strip().startswith("<!--") else None
            blocks.append(Block(page, start + 1, language, tuple(lines[start + 1:end]), marker))
            i = end + 1
        else:
            i += 1
    return blocks


def all_blocks() -> list[Block]:
    return [block for page in PAGES for block in fenced_blocks(page)]


def excerpts() -> list[Block]:
    return [block for block in all_blocks() if block.marker and EXCERPT.match(block.marker)]


def definition(path: str, name: str) -> ast.AST | None:
    """The `def` or `class` called `name` (dotted: Class.method) at the top of the module `path`."""
    file = ROOT / path
    if not file.is_file():
        return None
    scope = ast.parse(file.read_text(encoding="utf-8")).body
    node = None
    for part in name.split("."):
        node = next((n for n in scope if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == part), None)
        if node is None:
            return None
        scope = node.body
    return node


def source_lines(path: str, name: str) -> list[str]:
    node = definition(path, name)
    assert node is not None, f"{path} has no function or class {name}"
    text = (ROOT / path).read_text(encoding="utf-8").splitlines()
    return text[node.lineno - 1:node.end_lineno]


def find_runs(excerpt: list[str], source: list[str]) -> str | None:
    """None if the excerpt's runs (split at `...`) appear in source, each contiguous, in order;
    else the first line of the excerpt that could not be placed."""
    source = [line.strip() for line in source if line.strip()]
    runs, run = [], []
    for line in (line.strip() for line in excerpt if line.strip()):
        if line == ELISION:
            runs.append(run)
            run = []
        else:
            run.append(line)
    runs.append(run)
    at = 0
    for run in (r for r in runs if r):
        start = next((i for i in range(at, len(source) - len(run) + 1) if source[i:i + len(run)] == run), None)
        if start is None:
            # Name the first line of the run that breaks it, for the failure message.
            for n in range(len(run), 0, -1):
                if any(source[i:i + n] == run[:n] for i in range(at, len(source) - n + 1)):
                    return run[n] if n < len(run) else run[0]
            return run[0]
        at = start + len(run)
    return None


@pytest.mark.parametrize("block", excerpts(), ids=lambda block: block.where)
def test_every_excerpt_matches_the_function_it_cites(block):
    marker = EXCERPT.match(block.marker)
    path, name = marker["path"], marker["name"]
    assert block.language == "python", f"{block.where}: an excerpt is a ```python block, got ```{block.language}"
    assert definition(path, name) is not None, (
        f"{block.where}: the excerpt cites {path} {name}, which does not exist (moved or renamed?)")
    stray = find_runs(block.lines, source_lines(path, name))
    assert stray is None, (
        f"{block.where}: the excerpt no longer matches {path} {name}; this line is not where the "
        f"excerpt puts it (in order, one after the other):\n    {stray}\n"
        f"copy the lines again from {name} in {path}")


def test_there_are_excerpts_on_every_walking_page():
    pages = {block.page.name for block in excerpts()}
    missing = [page for page in WALKING_PAGES if page != "where.md" and page not in pages]
    assert not missing, f"these pages walk the code but show no excerpt of it: {missing}"


def test_every_python_block_is_an_excerpt_or_an_example():
    unmarked = [block.where for block in all_blocks()
                if block.language == "python" and not (block.marker and (EXCERPT.match(block.marker)
                                                                         or block.marker == EXAMPLE))]
    assert not unmarked, (
        "these ```python blocks have neither <!-- excerpt: FILE FUNCTION --> nor <!-- example --> "
        f"on the line before them, so no test checks them: {unmarked}")


def test_every_example_is_a_doctest_that_runs():
    from .test_docs import DOCTESTED_PAGES

    for block in all_blocks():
        if block.marker != EXAMPLE:
            continue
        assert block.language == "python", f"{block.where}: an example is a ```python block"
        first = next(line for line in block.lines if line.strip())
        assert first.startswith(">>> "), f"{block.where}: an example is a doctest session; it starts with {first!r}"
        assert block.page.name in DOCTESTED_PAGES, (
            f"{block.where}: {block.page.name} has an example, but tests/test_docs.py does not run its doctests")


def test_every_cited_function_exists():
    cited = [(page, match["path"], match["name"]) for page in PAGES
             for match in CITATION.finditer(page.read_text(encoding="utf-8"))]
    assert len(cited) > 20
    missing = [f"{page.relative_to(ROOT)}: {path}::{name}" for page, path, name in cited
               if definition(path, name) is None]
    assert not missing, f"these citations name no function or class (moved or renamed?): {missing}"


#: What a line of implementation code looks like, and the docs' formulas (indented blocks) do not.
CODE = re.compile(r"\bnp\.\w+\(|\bout=|\w @ \w|\bself\.|\w\.T\b|^\s*(def|for|return|with) ")
#: What a quoted statement looks like in inline code: a NumPy call or an in-place write, an assignment,
#: statements joined by `;`. An expression (`da @ W`) or a call of the API (`bptt(p, x, y)`) is not one.
STATEMENT = re.compile(r"\bnp\.\w+\(|\bout=|\bself\.|^[\w\[\]:, .]+ [-+*/]?= |; ")
INLINE = re.compile(r"`([^`\n]+)`")


def unmarked_code(page: Path) -> list[str]:
    """Lines of a page that quote code outside a marked excerpt: in an unmarked or non-python
    fence, in an indented block, or in inline code."""
    found, text = [], page.read_text(encoding="utf-8").splitlines()
    marked = {n for block in fenced_blocks(page) if block.marker
              for n in range(block.line, block.line + len(block.lines) + 1)}
    in_fence = False
    for n, line in enumerate(text, start=1):
        if line.startswith("```"):
            in_fence = not in_fence
            continue
        if n in marked:
            continue
        indented = line.startswith("    ") and not line.lstrip().startswith(("-", "|", "*"))
        if in_fence or indented:
            code = CODE.search(line)
        else:
            code = any(STATEMENT.search(span) for span in INLINE.findall(line))
        if code:
            found.append(f"{page.name}:{n}: {line.strip()}")
    return found


@pytest.mark.parametrize("name", WALKING_PAGES)
def test_the_walking_pages_quote_code_only_in_excerpts(name):
    found = unmarked_code(ROOT / "docs" / name)
    assert not found, ("these lines quote code that no test checks; make them an excerpt "
                       "(<!-- excerpt: FILE FUNCTION --> and a ```python block) or a citation "
                       "(`path.py::function`):\n" + "\n".join(found))


def test_the_where_table_cites_every_formula_somewhere():
    """docs/where.md: each row of its tables cites at least one function (checked above to exist)."""
    rows = [line for line in (ROOT / "docs" / "where.md").read_text(encoding="utf-8").splitlines()
            if line.startswith("|") and not line.startswith(("|---", "| formula"))]
    assert len(rows) > 40
    bare = [row for row in rows if not CITATION.search(row)]
    assert not bare, "these rows of docs/where.md cite no function:\n" + "\n".join(bare)
