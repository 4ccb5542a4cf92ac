"""The examples in the README and the package docstrings run as written."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parent.parent


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


@pytest.mark.parametrize("page", ["networks.md"])
def test_docs_page_examples(page):
    pytest.importorskip("torch")
    failures, tried = doctest.testfile(str(ROOT / "docs" / page), module_relative=False,
                                       optionflags=doctest.NORMALIZE_WHITESPACE)
    assert tried > 5 and failures == 0
