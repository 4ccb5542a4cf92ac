"""The public functions' defaults, result types and small helpers, as documented."""

from __future__ import annotations

import numpy as np
import pytest

from manual_bptt import RNNGrads, RNNParams, bptt, compare_grads, rnn_forward
from manual_bptt.tools.derivation import contribution_norms, contributions, hidden_jacobian, seed_formula_grads
from manual_bptt.verification.problems import random_problem

DEFAULTS = dict(nonlinearity="tanh", loss="cross_entropy", reduction="sum", batch_first=False)
# A problem on which every default matters: a non-default value of any option
# (relu, mse, mean, batch_first) would change the result or be rejected.
PROBLEM = random_problem(T=5, B=3, I=2, H=4, O=3, seed=11)
ARGS = (PROBLEM.params, PROBLEM.x, PROBLEM.y, PROBLEM.h0)


def assert_same(a, b):
    if isinstance(a, tuple):
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, RNNGrads):
        for (name, x), (_, y) in zip(a.items(), b.items()):
            np.testing.assert_array_equal(x, y, err_msg=name)
    else:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("fn, extra", [
    (bptt, {}), (seed_formula_grads, {}), (contributions, {"wrt": "W"}), (contribution_norms, {"wrt": "W"}),
])
def test_defaults_are_the_documented_ones(fn, extra):
    assert_same(fn(*ARGS), fn(*ARGS, **DEFAULTS, **extra))


def test_forward_and_jacobian_defaults():
    p, x, _, h0 = ARGS
    explicit = rnn_forward(p, x, h0, nonlinearity="tanh", batch_first=False)
    implicit = rnn_forward(p, x, h0)
    for name in ("x", "a", "h", "o"):
        np.testing.assert_array_equal(getattr(implicit, name), getattr(explicit, name), err_msg=name)
    assert implicit.nonlinearity == "tanh"
    np.testing.assert_array_equal(
        np.asarray(hidden_jacobian(p, x, h0, t=4, k=1)),
        np.asarray(hidden_jacobian(p, x, h0, t=4, k=1, nonlinearity="tanh", batch_first=False)),
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_derivation_results_have_the_dtype_of_params(dtype):
    problem = random_problem(T=4, B=2, dtype=dtype)
    args = (problem.params, problem.x, problem.y, problem.h0)
    for wrt in ("U", "W", "b"):
        assert contributions(*args, wrt=wrt).dtype == dtype
        assert contribution_norms(*args, wrt=wrt).dtype == dtype
    for name, array in seed_formula_grads(*args).items():
        assert array.dtype == dtype, name
    J = hidden_jacobian(problem.params, problem.x, problem.h0, t=3, k=0)
    assert J.matrix.dtype == dtype and J.singular_values.dtype == dtype


def test_hidden_jacobian_as_an_array():
    J = hidden_jacobian(PROBLEM.params, PROBLEM.x, PROBLEM.h0, t=3, k=1)
    assert np.asarray(J) is J.matrix                      # asarray never copies what it need not
    assert np.array(J, copy=False) is J.matrix
    copied = np.array(J)                                  # np.array copies by default (copy=True)
    assert not np.shares_memory(copied, J.matrix)
    np.testing.assert_array_equal(copied, J.matrix)
    assert not np.shares_memory(np.array(J, copy=True, dtype=J.matrix.dtype), J.matrix)
    with pytest.raises(ValueError, match="^copy: a cast of the Jacobian to float32 needs a copy, got copy=False$"):
        np.array(J, dtype=np.float32, copy=False)
    as32 = np.asarray(J, dtype=np.float32)
    assert as32.dtype == np.float32 and as32.shape == J.shape == (3, 4, 4)
    np.testing.assert_array_equal(as32, J.matrix.astype(np.float32))
    np.testing.assert_array_equal(J.spectral_norm, np.linalg.norm(J.matrix, 2, axis=(1, 2)))
    assert (J.t, J.k) == (3, 1)


def test_unbatched_jacobian_is_one_matrix():
    problem = random_problem(T=4, B=1, batched=False)
    J = hidden_jacobian(problem.params, problem.x, problem.h0, t=4, k=2)
    assert J.shape == (8, 8) and J.singular_values.shape == (8,) and np.ndim(J.spectral_norm) == 0


def test_rnn_forward_returns_the_time_major_cache_for_every_layout():
    problem = random_problem(T=4, B=3, batch_first=True)
    cache = rnn_forward(problem.params, problem.x, problem.h0, batch_first=True)
    assert cache.a.shape == (4, 3, 8) and cache.h.shape == (5, 3, 8) and cache.o.shape == (4, 3, 6)
    np.testing.assert_array_equal(cache.x, problem.x.swapaxes(0, 1))
    np.testing.assert_array_equal(cache.h[0], problem.h0)


def test_grads_params_view_and_items_order():
    _, g = PROBLEM.run(bptt)
    assert [name for name, _ in g.items()] == ["U", "W", "V", "b", "c", "h0", "x"]
    as_params = g.params()
    assert isinstance(as_params, RNNParams)
    for name, array in as_params.items():
        assert array is getattr(g, name), name


def test_report_lookup_names_the_rows_it_has():
    _, g = PROBLEM.run(bptt)
    report = compare_grads(g, g)
    assert report["h0"].name == "h0"
    with pytest.raises(KeyError, match="no row named 'L'; rows: U, W, V, b, c, h0, x"):
        report["L"]


def test_random_problem_defaults_and_distributions():
    problem = random_problem()
    assert problem.recipe == dict(T=20, B=4, I=5, H=8, O=6, seed=0, dtype="float64", nonlinearity="tanh",
                                  loss="cross_entropy", reduction="sum", batch_first=False, batched=True,
                                  random_h0=True)
    big = random_problem(T=50, B=40, I=20, H=50, O=7, seed=1)
    assert abs(big.h0.std() - 0.5) < 0.02 and abs(big.x.std() - 1.0) < 0.02
    assert big.y.min() == 0 and big.y.max() == 6
    with pytest.raises(ValueError, match=r"^B: expected B = 1 for an unbatched problem, got B = 3$"):
        random_problem(B=3, batched=False)


def test_relu_derivative_at_zero_is_zero_as_in_torch():
    """a(t) = 0 exactly when x, h0 and b are zero: relu'(0) must be 0, torch's convention."""
    problem = random_problem(T=4, B=2, I=3, H=5, O=3, nonlinearity="relu", loss="mse", random_h0=False)
    params = problem.params.replace(b=np.zeros(5))
    x = np.zeros_like(problem.x)
    _, g = bptt(params, x, problem.y, None, **problem.options)
    # Every a(t) is 0, so nothing flows back into the recurrent part.
    for name in ("U", "W", "b", "h0", "x"):
        assert not getattr(g, name).any(), name
    assert compare_grads(seed_formula_grads(params, x, problem.y, None, **problem.options), g).ok
    J = hidden_jacobian(params, x, None, t=2, k=1, nonlinearity="relu")
    assert not np.asarray(J).any()


def test_weight_scale_scales_W_alone():
    base = random_problem(T=3, B=2, seed=4)
    for dtype in ("float64", "float32"):
        scaled = random_problem(T=3, B=2, seed=4, weight_scale=8.5, dtype=dtype)
        np.testing.assert_array_equal(scaled.params.W, (base.params.W * 8.5).astype(dtype))
        for name in ("U", "V", "b", "c"):
            np.testing.assert_array_equal(getattr(scaled.params, name), getattr(base.params, name).astype(dtype))
        np.testing.assert_array_equal(scaled.x, base.x.astype(dtype))
        np.testing.assert_array_equal(scaled.h0, base.h0.astype(dtype))
        assert repr(scaled).endswith(f"dtype='{dtype}', nonlinearity='tanh', loss='cross_entropy', reduction='sum', "
                                     "batch_first=False, batched=True, random_h0=True, weight_scale=8.5)")
    assert "weight_scale" not in repr(random_problem(weight_scale=1))
    for bad in (0, -2.0, float("inf"), float("nan"), True, "4"):
        with pytest.raises(ValueError, match=r"^weight_scale: expected a positive finite number, got "):
            random_problem(weight_scale=bad)

