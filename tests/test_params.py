"""RNNParams.random follows PyTorch's default initialisation and is reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from manual_bptt import RNNParams


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shapes_dtype_and_bound(dtype):
    p = RNNParams.random(input_size=3, hidden_size=16, output_size=5, rng=0, dtype=dtype)
    assert (p.input_size, p.hidden_size, p.output_size) == (3, 16, 5)
    expected = {"U": (16, 3), "W": (16, 16), "V": (5, 16), "b": (16,), "c": (5,)}
    bound = 1 / np.sqrt(16)
    for name, array in p.items():
        assert array.shape == expected[name], name
        assert array.dtype == dtype, name
        assert np.abs(array).max() <= bound, name


def test_uniform_on_the_whole_interval():
    # With 64·64 draws of U(-1/8, 1/8), the extremes come within 1% of the bound
    # and the mean is near 0: a U(0, k) or a wrong bound would be visible.
    W = RNNParams.random(input_size=1, hidden_size=64, output_size=1, rng=3).W
    assert W.max() > 0.99 / 8 and W.min() < -0.99 / 8
    assert abs(W.mean()) < 0.01


def test_same_seed_same_network_and_generator_accepted():
    sizes = dict(input_size=2, hidden_size=3, output_size=4)
    a = RNNParams.random(**sizes, rng=7)
    b = RNNParams.random(**sizes, rng=np.random.default_rng(7))
    c = RNNParams.random(**sizes, rng=8)
    for (name, x), (_, y), (_, z) in zip(a.items(), b.items(), c.items()):
        np.testing.assert_array_equal(x, y, err_msg=name)
        assert not np.array_equal(x, z), name


def test_one_seed_gives_the_same_network_in_both_dtypes():
    sizes = dict(input_size=2, hidden_size=3, output_size=4)
    p64 = RNNParams.random(**sizes, rng=1, dtype="float64")
    p32 = RNNParams.random(**sizes, rng=1, dtype="float32")
    for (name, x), (_, y) in zip(p64.items(), p32.items()):
        np.testing.assert_array_equal(x.astype(np.float32), y, err_msg=name)


def test_construction_by_keyword_holds_the_arrays_without_copying():
    W = np.eye(2)
    p = RNNParams(U=np.ones((2, 3)), W=W, V=np.ones((1, 2)), b=np.zeros(2), c=np.zeros(1))
    assert p.W is W
    assert (p.input_size, p.hidden_size, p.output_size, p.dtype) == (3, 2, 1, np.float64)


def test_copy_astype_and_replace():
    p = RNNParams.random(input_size=2, hidden_size=3, output_size=4, rng=0)
    q = p.copy()
    assert all(not np.shares_memory(a, b) for (_, a), (_, b) in zip(p.items(), q.items()))
    assert p.astype(np.float32).dtype == np.float32
    r = p.replace(W=np.zeros((3, 3)))
    assert np.all(r.W == 0) and r.U is p.U
    with pytest.raises(ValueError, match="^params.W"):
        p.replace(W=np.zeros((3, 4)))
