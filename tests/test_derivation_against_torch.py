"""Every term of the derivation against autograd, with one parameter copy per step."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

pytest.importorskip("torch")

from manual_bptt.tools.derivation import contributions, hidden_jacobian, seed_formula_grads  # noqa: E402
from manual_bptt.verification.problems import random_problem  # noqa: E402
from torch_reference import torch_bptt  # noqa: E402
from torch_reference.derivation import torch_contributions, torch_hidden_jacobian  # noqa: E402

from .helpers import assert_grads_agree  # noqa: E402
from .strategies import rnn_problems  # noqa: E402
from .test_derivation import assert_close  # noqa: E402

short_problems = rnn_problems(max_T=8, max_B=3, max_size=5)


@given(short_problems)
def test_seed_formula_equals_autograd(problem):
    L_ref, g_ref = problem.run(torch_bptt)
    assert_grads_agree(problem.run(seed_formula_grads), g_ref, problem,
                       actual_name="Σ_t Σ_k Jacobian products", reference_name="torch.autograd")


@example(random_problem(T=3, B=1, I=2, H=2, O=2, seed=0), "W")
@given(short_problems, st.sampled_from(["U", "W", "b"]))
def test_every_term_equals_autograd_through_that_steps_copy(problem, wrt):
    manual = problem.run(contributions, wrt=wrt)
    reference = problem.run(torch_contributions, wrt=wrt)
    T = manual.shape[0]
    for t in range(1, T + 1):
        for k in range(1, T + 1):
            assert_close(manual[t - 1, k - 1], reference[t - 1, k - 1], problem.params.dtype,
                         f"{problem!r}: term [t={t}, k={k}] of ∂L/∂{wrt}")


@given(short_problems, st.data())
def test_hidden_jacobian_equals_autograd(problem, data):
    T = problem.recipe["T"]
    t = data.draw(st.integers(0, T), label="t")
    k = data.draw(st.integers(0, t), label="k")
    options = dict(nonlinearity=problem.options["nonlinearity"], batch_first=problem.options["batch_first"])
    manual = np.asarray(hidden_jacobian(problem.params, problem.x, problem.h0, t=t, k=k, **options))
    reference = torch_hidden_jacobian(problem.params, problem.x, problem.h0, t=t, k=k, **options)
    assert manual.shape == reference.shape
    assert_close(manual, reference, problem.params.dtype, f"{problem!r}: ∂h({t})/∂h({k})")
