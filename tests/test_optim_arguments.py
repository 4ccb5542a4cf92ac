"""manual_bptt.tools.optim checks its arguments as torch.optim does, and takes NetworkParams as well as RNNParams.

Hyperparameters: torch.optim's rules (lr ≥ 0, betas in [0, 1), eps ≥ 0, momentum ≥ 0,
Nesterov only with momentum and no dampening), and NaN, infinity and bools refused.
Gradients must mirror the parameters: the same container, names, shapes and dtypes.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from manual_bptt import NetworkParams, RNNParams, bptt
from manual_bptt.tools.optim import SGD, Adam, clip_grad_norm, grad_norm
from manual_bptt.verification.problems import random_network_problem, random_problem

PARAMS = RNNParams.random(input_size=3, hidden_size=4, output_size=2, rng=1)


def grads_like(params, rng, dtype=None):
    """Random gradients in the container of params, every size from 1e-3 to 1e1."""
    arrays = {name: (rng.standard_normal(a.shape) * 10 ** rng.uniform(-3, 1)).astype(dtype or a.dtype)
              for name, a in params.items()}
    return RNNParams(**arrays) if isinstance(params, RNNParams) else arrays


BAD_HYPERPARAMETERS = [
    (Adam, dict(lr=-1.0), ValueError, "lr", True),
    (Adam, dict(lr=float("nan")), ValueError, "lr", False),
    (Adam, dict(lr=float("inf")), ValueError, "lr", False),
    (Adam, dict(lr=True), TypeError, "lr", False),
    (Adam, dict(lr="0.1"), TypeError, "lr", False),
    (Adam, dict(betas=(1.0, 0.999)), ValueError, "betas[0]", True),
    (Adam, dict(betas=(0.9, -0.1)), ValueError, "betas[1]", True),
    (Adam, dict(betas=(0.9, float("nan"))), ValueError, "betas[1]", False),
    (Adam, dict(betas=0.9), TypeError, "betas", False),
    (Adam, dict(betas=(0.9,)), TypeError, "betas", False),
    (Adam, dict(eps=-1e-8), ValueError, "eps", True),
    (Adam, dict(eps=float("nan")), ValueError, "eps", False),
    (Adam, dict(eps=float("inf")), ValueError, "eps", False),
    (SGD, dict(lr=-0.1), ValueError, "lr", True),
    (SGD, dict(lr=float("nan")), ValueError, "lr", False),
    (SGD, dict(momentum=-1.0), ValueError, "momentum", True),
    (SGD, dict(momentum=float("nan")), ValueError, "momentum", False),
    (SGD, dict(momentum=float("inf")), ValueError, "momentum", False),
    (SGD, dict(momentum=np.bool_(True)), TypeError, "momentum", False),
    (SGD, dict(dampening=-0.1), ValueError, "dampening", False),
    (SGD, dict(dampening=1.5), ValueError, "dampening", False),
    (SGD, dict(momentum=0.0, nesterov=True), ValueError, "nesterov", True),
    (SGD, dict(momentum=0.9, dampening=0.5, nesterov=True), ValueError, "nesterov", True),
    (SGD, dict(nesterov="yes"), TypeError, "nesterov", False),
]


@pytest.mark.parametrize("optimizer, kwargs, error, name, torch_refuses", BAD_HYPERPARAMETERS,
                         ids=[f"{o.__name__}-{k}" for o, k, *_ in BAD_HYPERPARAMETERS])
def test_bad_hyperparameters_are_refused_by_name(optimizer, kwargs, error, name, torch_refuses):
    with pytest.raises(error, match=rf"^{re.escape(name)}: expected "):
        optimizer(**kwargs)


@pytest.mark.parametrize("optimizer, kwargs, error, name, torch_refuses",
                         [case for case in BAD_HYPERPARAMETERS if case[-1]])
def test_torch_optim_refuses_the_same(optimizer, kwargs, error, name, torch_refuses):
    torch = pytest.importorskip("torch")
    reference = {Adam: torch.optim.Adam, SGD: torch.optim.SGD}[optimizer]
    with pytest.raises(ValueError):
        reference([torch.zeros(2, requires_grad=True)], **{"lr": 0.01, **kwargs})


@pytest.mark.parametrize("make", [
    lambda: Adam(lr=np.float32(0.01), betas=[0, np.float64(0.5)], eps=0),
    lambda: Adam(lr=0),
    lambda: SGD(lr=np.int64(1), momentum=0),
    lambda: SGD(momentum=np.float32(0.5), nesterov=np.bool_(True)),
    lambda: SGD(momentum=0.9, dampening=1),
], ids=["adam-numpy-scalars", "adam-lr-0", "sgd-int-lr-no-momentum", "sgd-nesterov-numpy", "sgd-dampening-1"])
def test_numbers_torch_accepts_are_accepted_as_python_floats(make):
    optimizer = make()
    values = [optimizer.lr, *getattr(optimizer, "betas", ()), getattr(optimizer, "momentum", 0.0)]
    assert all(type(v) is float for v in values)
    optimizer.step(PARAMS, grads_like(PARAMS, np.random.default_rng(0)))


@pytest.mark.parametrize("optimizer", [Adam, SGD])
def test_gradients_of_another_shape_are_not_broadcast(optimizer):
    small = RNNParams.random(input_size=1, hidden_size=1, output_size=1, rng=0)
    with pytest.raises(ValueError, match=r"^grads\.U: expected shape \(4, 3\) .* got \(1, 1\)"):
        optimizer().step(PARAMS, small)
    network = NetworkParams.random(input_size=5, hidden_size=8, output_size=2, rng=0)
    grads = {**network.state_dict(), "weight_ih_l0": np.ones((1, 1))}
    with pytest.raises(ValueError, match=r"^grads\['weight_ih_l0'\]: expected shape \(8, 5\) .* got \(1, 1\)"):
        optimizer().step(network, grads)


@pytest.mark.parametrize("optimizer", [Adam, SGD])
def test_gradients_of_another_dtype_are_not_cast(optimizer):
    grads = grads_like(PARAMS, np.random.default_rng(0), dtype=np.float32)
    with pytest.raises(TypeError, match=r"^grads\.U: expected dtype float64 .* got float32"):
        optimizer().step(PARAMS, grads)
    network = NetworkParams.random(input_size=3, hidden_size=4, output_size=2, rng=0)
    grads = {name: a.astype(np.float32) for name, a in network.items()}
    with pytest.raises(TypeError, match=r"^grads\['weight_ih_l0'\]: expected dtype float64 .* got float32"):
        optimizer().step(network, grads)


def test_grads_must_be_the_parameters_gradients_in_their_container():
    p = random_problem(T=3, B=2, I=3, H=4, O=2, seed=0)
    _, g = p.run(bptt)
    with pytest.raises(TypeError, match=r"^grads: .*g\.params\(\).* got RNNGrads"):
        Adam().step(p.params, g)
    with pytest.raises(TypeError, match=r"^grads: expected an RNNParams of gradients .* got dict"):
        SGD().step(p.params, dict(g.params().items()))
    with pytest.raises(TypeError, match=r"^params: expected an RNNParams or a NetworkParams, got dict"):
        SGD().step(dict(p.params.items()), g.params())
    with pytest.raises(TypeError, match=r"^grads: .*g\.params\(\).* got RNNGrads"):
        clip_grad_norm(g, 1.0)
    problem = random_network_problem(T=3, B=2, seed=0)
    _, ng = bptt(problem.params, problem.x, problem.y, problem.h0)
    with pytest.raises(TypeError, match=r"^grads: .*g\.state_dict\(\).* got NetworkGrads"):
        Adam().step(problem.params, ng)
    grads = ng.state_dict()
    del grads["weight_hh_l0"]
    grads["weight_hh_l9"] = np.zeros(1)
    with pytest.raises(ValueError, match=r"^grads: .*missing \['weight_hh_l0'\]; unknown \['weight_hh_l9'\]"):
        SGD().step(problem.params, grads)


def test_an_optimizer_refuses_parameters_its_state_does_not_fit():
    adam = Adam()
    adam.step(PARAMS, grads_like(PARAMS, np.random.default_rng(0)))
    other = RNNParams.random(input_size=3, hidden_size=5, output_size=2, rng=0)
    with pytest.raises(ValueError, match=r"^params: the optimiser's state m\['U'\] is float64 \(4, 3\)"):
        adam.step(other, grads_like(other, np.random.default_rng(1)))
    assert adam.steps == 1                                       # nothing moved


@pytest.mark.parametrize("max_norm", [np.float32(1), np.float64(1), np.int64(1), 1])
def test_clipping_takes_any_positive_real_number(max_norm):
    grads = grads_like(PARAMS, np.random.default_rng(0))
    clipped = clip_grad_norm(grads, max_norm)
    expected = clip_grad_norm(grads, 1.0)
    assert clipped.total_norm == expected.total_norm > 1
    for (name, a), (_, b) in zip(clipped.grads.items(), expected.grads.items()):
        np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.parametrize("max_norm, error", [(0, ValueError), (-1.0, ValueError), (float("nan"), ValueError),
                                             (np.float32("nan"), ValueError), (True, TypeError), ("1", TypeError),
                                             (None, TypeError)])
def test_clipping_refuses_what_is_not_a_positive_number(max_norm, error):
    with pytest.raises(error, match=r"^max_norm: expected a positive number"):
        clip_grad_norm(grads_like(PARAMS, np.random.default_rng(0)), max_norm)


def test_an_infinite_max_norm_clips_nothing_as_in_torch():
    grads = grads_like(PARAMS, np.random.default_rng(0))
    clipped = clip_grad_norm(grads, float("inf"))
    for (name, a), (_, b) in zip(clipped.grads.items(), grads.items()):
        np.testing.assert_array_equal(a, b, err_msg=name)


#: As tests/test_optim.py: the two sides differ only in the order of the sums inside a norm.
STEP_RTOL = 1e-14


@pytest.mark.parametrize("make, make_torch", [
    (lambda: Adam(lr=0.01), lambda torch, ps: torch.optim.Adam(ps, lr=0.01)),
    (lambda: SGD(lr=0.1, momentum=0.9, dampening=0.3), lambda torch, ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9,
                                                                                          dampening=0.3)),
    (lambda: SGD(lr=0.1, momentum=0), lambda torch, ps: torch.optim.SGD(ps, lr=0.1, momentum=0)),
], ids=["adam", "sgd-dampening", "sgd-no-momentum"])
@pytest.mark.parametrize("container", ["NetworkParams", "dict"])
def test_network_params_step_as_torch_optim_with_clipping(make, make_torch, container):
    torch = pytest.importorskip("torch")
    params = NetworkParams.random(cell="lstm", input_size=3, hidden_size=4, output_size=2, num_layers=2,
                                  bidirectional=True, proj_size=2, rng=0)
    tensors = {name: torch.tensor(a.copy(), requires_grad=True) for name, a in params.items()}
    optimizer, reference = make(), make_torch(torch, list(tensors.values()))
    rng = np.random.default_rng(0)
    for _ in range(20):
        grads = grads_like(params, rng)
        if container == "NetworkParams":
            grads = NetworkParams(params.cell, grads)
        clipped = clip_grad_norm(grads, 1.0)
        assert type(clipped.grads) is type(grads)
        for name, t in tensors.items():
            t.grad = torch.tensor(grads[name].copy())
        total = torch.nn.utils.clip_grad_norm_(list(tensors.values()), 1.0)
        assert clipped.total_norm == pytest.approx(float(total), rel=1e-15)
        assert grad_norm(grads) == pytest.approx(float(total), rel=1e-15)
        params = optimizer.step(params, clipped.grads)
        reference.step()
        assert isinstance(params, NetworkParams) and params.cell == "lstm"
        for name, t in tensors.items():
            want = t.detach().numpy()
            assert np.max(np.abs(params[name] - want)) <= STEP_RTOL * np.max(np.abs(want)), name
