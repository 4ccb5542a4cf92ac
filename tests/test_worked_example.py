"""The three-step example of docs/derivation.md, recomputed and checked.

`render()` prints the example's numbers in the form the document shows them;
the test checks that the document holds exactly this text, that the terms agree
with autograd through per-step parameter copies, and that they add up to the
gradient of the recursion. Run with -s to see the numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from manual_bptt import RNNParams, bptt, rnn_forward
from manual_bptt.tools.derivation import contributions, hidden_jacobian

DOC = Path(__file__).resolve().parent.parent / "docs" / "derivation.md"

PARAMS = RNNParams(
    U=np.array([[0.5], [-0.3]]),
    W=np.array([[0.1, -0.4], [0.2, 0.3]]),
    V=np.array([[1.0, -1.0], [0.5, 0.2]]),
    b=np.array([0.0, 0.1]),
    c=np.array([0.0, 0.0]),
)
X = np.array([[1.0], [-0.5], [0.25]])      # (T, I) = (3, 1): one unbatched sequence
Y = np.array([0, 1, 1])                    # class labels, (T,)
H0 = np.array([0.2, -0.1])                 # h(0), (H,)


def fmt(array) -> str:
    return np.array2string(np.asarray(array), precision=4, suppress_small=True, floatmode="fixed",
                           separator=", ", max_line_width=200).replace("\n", "")


def render() -> str:
    cache = rnn_forward(PARAMS, X, H0)
    terms = contributions(PARAMS, X, Y, H0, wrt="W")
    _, g = bptt(PARAMS, X, Y, H0)
    lines = []
    for t in (1, 2, 3):
        lines.append(f"a({t}) = {fmt(cache.a[t - 1, 0])}   h({t}) = {fmt(cache.h[t, 0])}   "
                     f"o({t}) = {fmt(cache.o[t - 1, 0])}")
    for k in (3, 2, 1):
        lines.append(f"term k={k} of ∂L(3)/∂W = {fmt(terms[2, k - 1])}")
    lines.append(f"∂L(3)/∂W = sum of the three = {fmt(terms[2].sum(axis=0))}")
    for t in (1, 2):
        lines.append(f"∂L({t})/∂W = {fmt(terms[t - 1].sum(axis=0))}")
    lines.append(f"∂L/∂W = ∂L(1)/∂W + ∂L(2)/∂W + ∂L(3)/∂W = {fmt(terms.sum(axis=(0, 1)))}")
    lines.append(f"bptt's recursion gives ∂L/∂W = {fmt(g.W)}")
    J = hidden_jacobian(PARAMS, X, H0, t=3, k=1)
    lines.append(f"∂h(3)/∂h(1) = {fmt(J.matrix)}, singular values {fmt(J.singular_values)}")
    return "\n".join(lines)


def test_the_document_shows_these_numbers():
    text = render()
    print("\n" + text)
    assert text in DOC.read_text(encoding="utf-8"), (
        "docs/derivation.md no longer matches the example; its block should read:\n" + text
    )


def test_the_example_terms_agree_with_autograd():
    pytest.importorskip("torch")
    from torch_reference.derivation import torch_contributions

    manual = contributions(PARAMS, X, Y, H0, wrt="W")
    reference = torch_contributions(PARAMS, X, Y, H0, wrt="W")
    np.testing.assert_allclose(manual, reference, rtol=1e-12, atol=1e-15)
    _, g = bptt(PARAMS, X, Y, H0)
    np.testing.assert_allclose(manual.sum(axis=(0, 1)), g.W, rtol=1e-12, atol=1e-15)
