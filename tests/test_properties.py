"""Properties the gradient must have whatever the implementation: no torch needed.

- The batch gradient is the sum of the per-example gradients.
- "mean" is "sum" divided by the count torch divides by.
- T = 1 is a feed-forward layer, whose gradient has a closed form.
- batch_first and unbatched inputs give the time-major result, re-laid out.
- No input is modified.
"""

from __future__ import annotations

import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st

from manual_bptt import PARAM_NAMES, RNNGrads, bptt, rnn_forward, tolerance_for
from manual_bptt.verification.problems import random_problem

from .helpers import assert_grads_agree
from .strategies import dtypes, losses, nonlinearities, rnn_problems

time_major = st.just("time_major")


@example(random_problem(T=1, B=1, I=1, H=1, O=1, seed=0))
@example(random_problem(T=4, B=3, I=2, H=3, O=2, seed=0, dtype="float32", loss="mse"))
@given(rnn_problems(layout=time_major, reduction=st.just("sum")))
def test_batch_gradient_is_the_sum_of_per_example_gradients(problem):
    L, g = problem.run(bptt)
    B = problem.x.shape[1]
    per_example = []
    for n in range(B):
        h0 = None if problem.h0 is None else problem.h0[n:n + 1]
        per_example.append(bptt(problem.params, problem.x[:, n:n + 1], problem.y[:, n:n + 1], h0,
                                **problem.options))
    summed = {name: sum(getattr(g_n, name) for _, g_n in per_example) for name in PARAM_NAMES}
    summed["h0"] = np.concatenate([g_n.h0 for _, g_n in per_example], axis=0)
    summed["x"] = np.concatenate([g_n.x for _, g_n in per_example], axis=1)
    L_sum = sum(L_n for L_n, _ in per_example)
    assert_grads_agree(g, RNNGrads(**summed), problem, loss=L, reference_loss=L_sum,
                       actual_name="batch", reference_name="sum over examples")


@given(rnn_problems(reduction=st.just("sum")))
def test_mean_is_sum_divided_by_the_count(problem):
    L_sum, g_sum = problem.run(bptt)
    L_mean, g_mean = problem.run(bptt, reduction="mean")
    x = np.asarray(problem.x)
    T_times_B = x.shape[0] * (x.shape[1] if x.ndim == 3 else 1)
    count = T_times_B * (problem.params.output_size if problem.options["loss"] == "mse" else 1)
    scaled = RNNGrads(**{name: array / count for name, array in g_sum.items()})
    assert_grads_agree(g_mean, scaled, problem, loss=L_mean, reference_loss=L_sum / count,
                       actual_name="mean", reference_name=f"sum / {count}")


def feed_forward_grads(problem):
    """One step, by the chain rule on a single layer: a = U x + W h0 + b, h = φ(a), o = V h + c."""
    p = problem.params
    x, h0 = problem.x[0], problem.h0                      # (B, I), (B, H)
    a = x @ p.U.T + h0 @ p.W.T + p.b
    h = np.tanh(a) if problem.options["nonlinearity"] == "tanh" else np.maximum(a, 0)
    o = h @ p.V.T + p.c
    if problem.options["loss"] == "cross_entropy":
        probs = np.exp(o - o.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        do = probs - np.eye(p.output_size, dtype=o.dtype)[problem.y[0]]
    else:
        do = o - problem.y[0]
    dh = do @ p.V
    da = dh * ((1 - h**2) if problem.options["nonlinearity"] == "tanh" else (a > 0))
    return RNNGrads(U=da.T @ x, W=da.T @ h0, V=do.T @ h, b=da.sum(0), c=do.sum(0),
                    h0=da @ p.W, x=(da @ p.U)[None])


@given(rnn_problems(layout=time_major, reduction=st.just("sum"), random_h0=st.just(True), max_T=1))
def test_one_step_is_a_feed_forward_layer(problem):
    _, g = problem.run(bptt)
    assert_grads_agree(g, feed_forward_grads(problem), problem,
                       actual_name="bptt, T = 1", reference_name="feed-forward layer")


@given(st.integers(1, 12), st.integers(1, 4), dtypes, nonlinearities, losses, st.integers(0, 1000))
def test_layouts_give_the_same_gradients(T, B, dtype, nonlinearity, loss, seed):
    kwargs = dict(T=T, I=3, H=4, O=3, seed=seed, dtype=dtype, nonlinearity=nonlinearity, loss=loss)
    L, g = random_problem(B=B, **kwargs).run(bptt)
    L_bf, g_bf = random_problem(B=B, batch_first=True, **kwargs).run(bptt)
    relaid = RNNGrads(**{**dict(g_bf.items()), "x": g_bf.x.swapaxes(0, 1)})
    assert_grads_agree(relaid, g, loss=L_bf, reference_loss=L, what="batch_first vs time-major")
    if B == 1:
        L_u, g_u = random_problem(B=1, batched=False, **kwargs).run(bptt)
        relaid = RNNGrads(**{**dict(g_u.items()), "h0": g_u.h0[None], "x": g_u.x[:, None]})
        assert_grads_agree(relaid, g, loss=L_u, reference_loss=L, what="unbatched vs B = 1")


@given(rnn_problems())
def test_no_input_is_modified(problem):
    inputs = {"x": problem.x, "y": problem.y, "h0": problem.h0, **dict(problem.params.items())}
    inputs = {k: v for k, v in inputs.items() if v is not None}
    before = {k: v.copy() for k, v in inputs.items()}
    for array in inputs.values():  # any write now raises, wherever it happens
        array.flags.writeable = False
    try:
        problem.run(bptt)
        rnn_forward(problem.params, problem.x, problem.h0,
                    nonlinearity=problem.options["nonlinearity"], batch_first=problem.options["batch_first"])
    finally:
        for array in inputs.values():
            array.flags.writeable = True
    for name, array in inputs.items():
        np.testing.assert_array_equal(array, before[name], err_msg=f"{name} was modified")


def test_results_share_no_memory_with_the_inputs():
    problem = random_problem(T=3, B=2)
    _, g = problem.run(bptt)
    for name, grad in g.items():
        for input_name, array in [("x", problem.x), ("h0", problem.h0), *problem.params.items()]:
            assert not np.shares_memory(grad, array), f"g.{name} shares memory with {input_name}"


@given(rnn_problems(layout=time_major))
def test_forward_cache_follows_the_equations(problem):
    """h[0] = h0, a(t) = U x(t) + W h(t-1) + b, h(t) = φ(a(t)), o(t) = V h(t) + c, step by step."""
    p, opts = problem.params, problem.options
    cache = rnn_forward(p, problem.x, problem.h0, nonlinearity=opts["nonlinearity"])
    tol = tolerance_for(p.dtype)
    h0 = np.zeros_like(cache.h[0]) if problem.h0 is None else problem.h0
    np.testing.assert_array_equal(cache.h[0], h0)
    phi = np.tanh if opts["nonlinearity"] == "tanh" else (lambda v: np.maximum(v, 0))
    for t in range(1, problem.x.shape[0] + 1):
        a_t = problem.x[t - 1] @ p.U.T + cache.h[t - 1] @ p.W.T + p.b
        np.testing.assert_allclose(cache.a[t - 1], a_t, rtol=tol.rtol, atol=tol.atol * 10)
        np.testing.assert_allclose(cache.h[t], phi(cache.a[t - 1]), rtol=tol.rtol, atol=tol.atol)
        np.testing.assert_allclose(cache.o[t - 1], cache.h[t] @ p.V.T + p.c, rtol=tol.rtol, atol=tol.atol * 10)


def test_cross_entropy_is_stable_for_huge_logits():
    """Logits in the thousands, far apart between rows: exp would overflow or underflow
    without subtracting each row's own maximum. The result must stay finite and agree
    with the float64 reference loop, which uses the same identity row by row."""
    from .witnesses import reference_loss

    problem = random_problem(T=3, B=2, I=2, H=3, O=4, seed=5)
    params = problem.params.replace(V=problem.params.V * 4000.0, c=problem.params.c + 1000.0)
    L, g = bptt(params, problem.x, problem.y, problem.h0)
    assert np.isfinite(L) and all(np.isfinite(array).all() for _, array in g.items())
    L_ref = reference_loss(params, problem.x, problem.y, problem.h0, **problem.options)
    assert abs(L - L_ref) <= 1e-9 * abs(L_ref), (L, L_ref)


def test_loss_and_grad_leaves_o_alone_unless_told():
    from manual_bptt.model import losses

    problem = random_problem(T=3, B=2, loss="mse")
    o = rnn_forward(problem.params, problem.x, problem.h0).o
    before = o.copy()
    for name, y in (("mse", problem.y), ("cross_entropy", np.zeros((3, 2), dtype=np.int64))):
        _, do = losses.loss_and_grad(name, "sum", o, y)
        np.testing.assert_array_equal(o, before)
        assert do is not o
    _, do = losses.loss_and_grad("mse", "sum", o, problem.y, overwrite_o=True)
    assert do is o
