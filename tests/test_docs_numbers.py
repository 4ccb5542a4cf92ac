"""The numbers the docs quote cannot drift: each block is recomputed by scripts/doc_numbers.py.

A page shows a block of numbers as

    <!-- numbers: scripts/doc_numbers.py SECTION -->
    ```text
    ...exactly what `python scripts/doc_numbers.py SECTION` prints...
    ```

and this module recomputes every such block and compares it line for line. The worked example's
own block is checked by tests/test_worked_example.py. Below them, the claims of derivation.md's
section on vanishing and exploding gradients that no other test states.
"""

from __future__ import annotations

import importlib.util
import re
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from manual_bptt.tools.derivation import hidden_jacobian

from .strategies import rnn_problems
from .test_docs_excerpts import PAGES, ROOT, fenced_blocks

NUMBERS = re.compile(r"^<!-- numbers: scripts/doc_numbers\.py (?P<section>\w+) -->$")
#: The sections that call torch (they print its values); skipped where torch is absent.
NEEDS_TORCH = ("saturation", "whole_batch_detach")


def doc_numbers():
    spec = importlib.util.spec_from_file_location("doc_numbers", ROOT / "scripts" / "doc_numbers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("doc_numbers", module)
    spec.loader.exec_module(module)
    return module


def number_blocks():
    return [(block, NUMBERS.match(block.marker)["section"]) for page in PAGES for block in fenced_blocks(page)
            if block.marker and NUMBERS.match(block.marker)]


@pytest.mark.parametrize("block, section", number_blocks(), ids=lambda value: getattr(value, "where", value))
def test_every_block_of_numbers_is_what_the_script_prints(block, section):
    sections = doc_numbers().SECTIONS
    assert section in sections, f"{block.where}: scripts/doc_numbers.py has no section {section!r}"
    if section in NEEDS_TORCH:
        pytest.importorskip("torch")
    assert block.language == "text", f"{block.where}: a block of numbers is a ```text block"
    printed = sections[section]().splitlines()
    shown = list(block.lines)
    assert shown == printed, (
        f"{block.where}: the numbers no longer match `python scripts/doc_numbers.py {section}`; it prints:\n"
        + "\n".join(printed))


def test_every_section_of_the_script_is_shown_somewhere():
    shown = {section for _, section in number_blocks()}
    missing = [name for name in doc_numbers().SECTIONS if name not in shown]
    assert not missing, f"scripts/doc_numbers.py prints sections no page shows: {missing}"


@given(rnn_problems(dtype=st.just("float64"), nonlinearity=st.just("relu"), max_T=12, max_B=3, max_size=6),
       st.data())
def test_relu_jacobian_norm_is_bounded_by_the_product_of_norms_of_W(problem, data):
    """derivation.md §7: relu obeys tanh's bound, ‖∂h(t)/∂h(k)‖₂ ≤ ‖W‖₂^(t−k), since relu' ∈ {0, 1}."""
    T = problem.x.shape[1] if problem.options.get("batch_first") else problem.x.shape[0]
    t = data.draw(st.integers(1, T), label="t")
    k = data.draw(st.integers(0, t), label="k")
    J = hidden_jacobian(problem.params, problem.x, problem.h0, t=t, k=k, **{
        name: problem.options[name] for name in ("nonlinearity", "batch_first") if name in problem.options})
    bound = float(np.linalg.norm(problem.params.W, 2)) ** (t - k)
    slack = 1 + 1e-12 * (t - k + 1)                   # rounding of the products and of the two SVDs
    assert np.all(J.spectral_norm <= bound * slack + 1e-300), (
        f"{problem!r}: ‖∂h({t})/∂h({k})‖₂ = {J.spectral_norm} > ‖W‖₂^{t - k} = {bound}")


def test_explosion_needs_a_norm_of_W_above_one():
    """The bound's other reading: with ‖W‖₂ ≤ 1 no product of Jacobians exceeds 1, however long,
    for tanh and relu; shown on a W scaled to ‖W‖₂ = 1 exactly, over 60 steps."""
    from manual_bptt.verification.problems import random_problem

    for nonlinearity in ("tanh", "relu"):
        problem = random_problem(T=60, B=3, I=4, H=8, O=3, seed=4, nonlinearity=nonlinearity)
        W = problem.params.W / np.linalg.norm(problem.params.W, 2)
        p = problem.params.replace(W=W)
        J = hidden_jacobian(p, problem.x, problem.h0, t=60, k=0, nonlinearity=nonlinearity)
        assert np.all(J.spectral_norm <= 1 + 1e-12), f"{nonlinearity}: {J.spectral_norm}"
