"""The NumPy optimisers and clipping equal torch.optim and clip_grad_norm_, step for step."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from manual_bptt import RNNParams  # noqa: E402
from manual_bptt.tools.optim import SGD, Adam, clip_grad_norm  # noqa: E402

# The two sides run the same operations in the same order, except that NumPy
# and torch sum the squares inside a norm in different orders: the clipping
# factor can differ in the last bit, and so every later step by a few ulps.
# 100 steps of that stay below 1e-14 of the largest entry.
STEP_RTOL = 1e-14
STEPS = 100

PARAMS = RNNParams.random(input_size=3, hidden_size=4, output_size=2, rng=1)


@pytest.fixture(autouse=True)
def _one_thread():
    from torch_reference.threads import one_thread

    with one_thread():
        yield


def random_grads(rng):
    """Gradients of every size from 1e-6 to 1e2, so that clipping sometimes acts and sometimes not."""
    return RNNParams(**{name: rng.standard_normal(a.shape) * 10 ** rng.uniform(-6, 2) for name, a in PARAMS.items()})


def torch_copies(params):
    return {name: torch.tensor(a.copy(), requires_grad=True) for name, a in params.items()}


def assert_close(params, tensors):
    for name, t in tensors.items():
        want = t.detach().numpy()
        assert np.max(np.abs(getattr(params, name) - want)) <= STEP_RTOL * np.max(np.abs(want)), name


@pytest.mark.parametrize("numpy_optimizer, torch_optimizer", [
    (lambda: Adam(lr=0.01), lambda ps: torch.optim.Adam(ps, lr=0.01)),
    (lambda: Adam(lr=0.1, betas=(0.8, 0.99), eps=1e-6), lambda ps: torch.optim.Adam(ps, lr=0.1, betas=(0.8, 0.99), eps=1e-6)),
    (lambda: SGD(lr=0.1, momentum=0.9), lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9)),
    (lambda: SGD(lr=0.1, momentum=0.5, nesterov=True), lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.5, nesterov=True)),
], ids=["adam", "adam-betas", "sgd-momentum", "sgd-nesterov"])
def test_optimizer_with_clipping_follows_torch(numpy_optimizer, torch_optimizer):
    rng = np.random.default_rng(0)
    optimizer, params = numpy_optimizer(), PARAMS
    tensors = torch_copies(PARAMS)
    reference = torch_optimizer(list(tensors.values()))
    clipped_some = unclipped_some = False
    for _ in range(STEPS):
        grads = random_grads(rng)
        clipped = clip_grad_norm(grads, 1.0)
        for name, t in tensors.items():
            t.grad = torch.tensor(getattr(grads, name).copy())
        total = torch.nn.utils.clip_grad_norm_(list(tensors.values()), 1.0)
        assert clipped.total_norm == pytest.approx(float(total), rel=1e-15)
        clipped_some |= clipped.total_norm > 1.0
        unclipped_some |= clipped.total_norm < 1.0
        params = optimizer.step(params, clipped.grads)
        reference.step()
        assert_close(params, tensors)
    assert clipped_some and unclipped_some


def test_clipping_equals_clip_grad_norm_and_leaves_the_input_alone():
    rng = np.random.default_rng(3)
    for max_norm in (0.5, 1e3):
        grads = random_grads(rng)
        before = {name: a.copy() for name, a in grads.items()}
        clipped = clip_grad_norm(grads, max_norm)
        tensors = {name: torch.zeros(a.shape, dtype=torch.float64, requires_grad=True) for name, a in grads.items()}
        for name, t in tensors.items():
            t.grad = torch.tensor(getattr(grads, name).copy())
        total = torch.nn.utils.clip_grad_norm_(list(tensors.values()), max_norm)
        assert clipped.total_norm == pytest.approx(float(total), rel=1e-15)
        for name, t in tensors.items():
            np.testing.assert_allclose(getattr(clipped.grads, name), t.grad.numpy(), rtol=1e-15, atol=0)
            np.testing.assert_array_equal(getattr(grads, name), before[name])
    with pytest.raises(ValueError, match=r"^max_norm: expected a positive number, got 0$"):
        clip_grad_norm(grads, 0)


def test_optimizers_never_write_into_the_parameters():
    grads = random_grads(np.random.default_rng(1))
    before = PARAMS.copy()
    for optimizer in (Adam(), SGD()):
        for _ in range(2):
            optimizer.step(PARAMS, grads)
        for name, a in PARAMS.items():
            np.testing.assert_array_equal(a, getattr(before, name))
