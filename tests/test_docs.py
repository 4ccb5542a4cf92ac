"""The examples in the README and the package docstrings run as written."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parent.parent

#: README.md, and every docs page with a session marked `<!-- example -->` (tests/test_docs_excerpts.py
#: checks that every example is on one of these pages).
DOCTESTED_PAGES = ("README.md",) + tuple(sorted(
    page.name for page in (ROOT / "docs").glob("*.md") if "<!-- example -->" in page.read_text(encoding="utf-8")))


def test_readme_examples():
    pytest.importorskip("torch")
    failures, tried = doctest.testfile(str(ROOT / "README.md"), module_relative=False,
                                       optionflags=doctest.NORMALIZE_WHITESPACE)
    assert tried > 5 and failures == 0


@pytest.mark.parametrize("module_name", ["manual_bptt", "torch_reference"])
def test_package_docstring_examples(module_name):
    if module_name == "torch_reference":
        pytest.importorskip("torch")
    module = __import__(module_name)
    failures, tried = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert tried > 3 and failures == 0


@pytest.mark.parametrize("page", DOCTESTED_PAGES[1:])
def test_docs_page_examples(page):
    pytest.importorskip("torch")
    failures, tried = doctest.testfile(str(ROOT / "docs" / page), module_relative=False,
                                       optionflags=doctest.NORMALIZE_WHITESPACE)
    assert tried > 5 and failures == 0
