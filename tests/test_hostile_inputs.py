"""Inputs a new user may pass, swept by kind: each gets the right result or a clear error.

Kinds swept: every NumPy dtype kind for x and for labels, both byte orders,
array subclasses, torch tensors (plain, requiring grad, nn.Parameter), torch's
grad modes, negative and Fortran strides, read-only arrays, seeds and sizes of
the problem builders. "Right result" means equal to the result for the plain
ndarray of the same numbers (bit for bit: the same numbers take the same path),
and for the torch entry points within the dtype's tolerance of `bptt`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from manual_bptt import RNNParams, bptt, compare_grads
from manual_bptt.verification.problems import random_problem

from .helpers import assert_agree

torch = pytest.importorskip("torch")

from torch_reference import compare, torch_bptt  # noqa: E402
from torch_reference.derivation import torch_contributions, torch_hidden_jacobian  # noqa: E402

T, B, I, H, O = 4, 3, 2, 5, 3
PROBLEM = random_problem(T=T, B=B, I=I, H=H, O=O, seed=0)
MSE = random_problem(T=T, B=B, I=I, H=H, O=O, seed=0, loss="mse")


def run(fn, problem=PROBLEM, **changes):
    args = dict(params=problem.params, x=problem.x, y=problem.y, h0=problem.h0, **problem.options)
    args.update(changes)
    return fn(args.pop("params"), args.pop("x"), args.pop("y"), args.pop("h0"), **args)


def assert_identical(result, expected):
    (L, g), (L_ref, g_ref) = result, expected
    assert L == L_ref
    for (name, a), (_, b) in zip(g.items(), g_ref.items()):
        assert type(a) is np.ndarray, name
        np.testing.assert_array_equal(a, b, err_msg=name)


def assert_torch_agrees(**changes):
    """torch_bptt and compare on the changed arguments agree with bptt on them."""
    L, g = run(bptt, **changes)
    L_ref, g_ref = run(torch_bptt, **changes)
    assert_agree(compare_grads(g, g_ref, loss=L, reference_loss=L_ref), PROBLEM, f"changes {sorted(changes)}")
    assert run(compare, **changes).ok


# Labels: every integer dtype in both byte orders is the same labels.

INTEGER_DTYPES = [np.dtype(c) for c in "bhilqBHILQ"]
LABEL_DTYPES = [d.newbyteorder(order) for d in INTEGER_DTYPES for order in "<>"]


@pytest.mark.parametrize("dtype", LABEL_DTYPES, ids=str)
def test_labels_of_every_integer_dtype_and_byte_order_are_the_same_labels(dtype):
    y = PROBLEM.y.astype(dtype)
    expected = run(bptt)
    assert_identical(run(bptt, y=y), expected)
    assert_identical(run(torch_bptt, y=y), run(torch_bptt))


NOT_LABELS = ["?", "e", "f", "d", "g", "F", "D", "M8[s]", "m8[s]", "O", "S3", "U3", "V8"]


@pytest.mark.parametrize("dtype", NOT_LABELS)
def test_labels_of_any_other_dtype_kind_are_rejected(dtype):
    y = np.zeros((T, B), dtype=dtype)
    for fn in (bptt, torch_bptt):
        with pytest.raises(TypeError, match=r"^y: expected integer class labels"):
            run(fn, y=y)


# x: only the dtype of params is accepted; nothing is cast.

NOT_FLOAT64 = [d for d in NOT_LABELS if d != "d"] + [d.str for d in INTEGER_DTYPES] + [">f8"]


@pytest.mark.parametrize("dtype", NOT_FLOAT64)
def test_x_of_any_dtype_but_that_of_params_is_rejected(dtype):
    x = np.zeros((T, B, I), dtype=dtype)
    with pytest.raises(TypeError, match=r"^x: expected a float64 array .* got dtype"):
        run(bptt, x=x)


def test_a_non_native_byte_order_is_named_with_its_remedy():
    with pytest.raises(TypeError) as caught:
        run(bptt, x=PROBLEM.x.astype(">f8"))
    assert "non-native byte order" in str(caught.value) and ".astype(" in str(caught.value)
    with pytest.raises(TypeError, match=r"^params\.W: .*non-native byte order"):
        PROBLEM.params.replace(W=PROBLEM.params.W.astype(">f8"))


# Array subclasses: those that mean the same numbers work, the others are refused.

class Tagged(np.ndarray):
    """A subclass that adds nothing to the numbers, as many libraries' arrays do."""


def test_subclasses_that_mean_the_same_numbers_give_the_same_result(tmp_path):
    mapped = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=PROBLEM.x.dtype, shape=PROBLEM.x.shape)
    mapped[...] = PROBLEM.x
    expected = run(bptt)
    for x in (mapped, PROBLEM.x.view(Tagged)):
        assert_identical(run(bptt, x=x), expected)
        assert_identical(run(torch_bptt, x=x), run(torch_bptt))


# Torch tensors: plain ones are arrays; a graph would be cut silently, so it is refused.

def test_plain_cpu_tensors_are_arrays():
    as_tensors = dict(x=torch.from_numpy(PROBLEM.x), y=torch.from_numpy(PROBLEM.y),
                      h0=torch.from_numpy(PROBLEM.h0),
                      params=RNNParams(**{n: torch.from_numpy(a) for n, a in PROBLEM.params.items()}))
    assert_identical(run(bptt, **as_tensors), run(bptt))
    assert_identical(run(torch_bptt, **as_tensors), run(torch_bptt))


@pytest.mark.parametrize("argument", ["x", "h0"])
def test_tensors_that_require_grad_are_rejected(argument):
    tensor = torch.tensor(getattr(PROBLEM, argument), requires_grad=True)
    for fn in (bptt, torch_bptt, compare):
        with pytest.raises(TypeError, match=rf"^{argument}: .*requires grad; pass {argument}\.detach\(\)"):
            run(fn, **{argument: tensor})


@pytest.mark.parametrize("make", [
    lambda a: torch.tensor(a, requires_grad=True),
    lambda a: torch.nn.Parameter(torch.tensor(a)),
], ids=["requires_grad", "nn.Parameter"])
def test_params_that_require_grad_are_rejected_naming_the_field(make):
    arrays = dict(PROBLEM.params.items())
    with pytest.raises(TypeError, match=r"^params\.W: .*requires grad"):
        RNNParams(**{**arrays, "W": make(arrays["W"])})


def test_float32_tensor_for_float64_params_is_rejected_not_cast():
    with pytest.raises(TypeError, match=r"^x: expected a float64 array .* got dtype float32"):
        run(bptt, x=torch.from_numpy(PROBLEM.x.astype(np.float32)))


# Grad modes: the torch entry points record their own graph whatever the caller's mode.

GRAD_MODES = {
    "no_grad": torch.no_grad,
    "inference_mode": torch.inference_mode,
    "set_grad_enabled(False)": lambda: torch.set_grad_enabled(False),
}


@pytest.mark.parametrize("mode", GRAD_MODES)
def test_torch_entry_points_work_in_every_grad_mode_and_leave_it_as_it_was(mode):
    args = (PROBLEM.params, PROBLEM.x, PROBLEM.y, PROBLEM.h0)
    expected = run(torch_bptt)
    terms = torch_contributions(*args, wrt="W")
    jacobian = torch_hidden_jacobian(PROBLEM.params, PROBLEM.x, PROBLEM.h0, t=3, k=1)
    with GRAD_MODES[mode]():
        before = (torch.is_grad_enabled(), torch.is_inference_mode_enabled())
        inside = run(torch_bptt)
        report = run(compare)
        terms_inside = torch_contributions(*args, wrt="W")
        jacobian_inside = torch_hidden_jacobian(PROBLEM.params, PROBLEM.x, PROBLEM.h0, t=3, k=1)
        assert (torch.is_grad_enabled(), torch.is_inference_mode_enabled()) == before
    assert_identical(inside, expected)
    assert report.ok
    np.testing.assert_array_equal(terms_inside, terms)
    np.testing.assert_array_equal(jacobian_inside, jacobian)


# Strides and flags: any layout of the same numbers is the same problem.

FLIPPED = {
    "x[::-1]": dict(x=PROBLEM.x[::-1], y=PROBLEM.y[::-1]),
    "y[:, ::-1]": dict(y=PROBLEM.y[:, ::-1]),
    "h0[:, ::-1]": dict(h0=PROBLEM.h0[:, ::-1]),
    "W[::-1]": dict(params=PROBLEM.params.replace(W=PROBLEM.params.W[::-1])),
    "every parameter flipped": dict(params=RNNParams(**{n: a[::-1] for n, a in PROBLEM.params.items()})),
    "Fortran order": dict(x=np.asfortranarray(PROBLEM.x), h0=np.asfortranarray(PROBLEM.h0),
                          params=RNNParams(**{n: np.asfortranarray(a) for n, a in PROBLEM.params.items()})),
    "every other step": dict(x=np.repeat(PROBLEM.x, 2, axis=0)[::2], y=np.repeat(PROBLEM.y, 2, axis=0)[::2]),
}


@pytest.mark.parametrize("layout", FLIPPED)
def test_torch_entry_points_take_any_strides(layout):
    assert_torch_agrees(**FLIPPED[layout])


def test_mse_targets_with_negative_strides():
    L, g = run(bptt, MSE, y=MSE.y[::-1])
    L_ref, g_ref = run(torch_bptt, MSE, y=MSE.y[::-1])
    assert_agree(compare_grads(g, g_ref, loss=L, reference_loss=L_ref), MSE)


def test_derivation_witnesses_take_negative_strides():
    from manual_bptt.tools.derivation import contributions

    flipped = (PROBLEM.params.replace(W=PROBLEM.params.W[::-1]), PROBLEM.x[::-1], PROBLEM.y[::-1], PROBLEM.h0[::-1])
    np.testing.assert_allclose(torch_contributions(*flipped, wrt="W"), contributions(*flipped, wrt="W"),
                               rtol=1e-10, atol=1e-13)


def read_only(array):
    view = array.view()
    view.flags.writeable = False
    return view


def test_read_only_arrays_need_no_copy_and_raise_no_warning():
    frozen = dict(x=read_only(PROBLEM.x), y=read_only(PROBLEM.y), h0=read_only(PROBLEM.h0),
                  params=RNNParams(**{n: read_only(a) for n, a in PROBLEM.params.items()}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_identical(run(bptt, **frozen), run(bptt))
        assert_identical(run(torch_bptt, **frozen), run(torch_bptt))
        assert run(compare, **frozen).ok


# Ragged and unconvertible parameters.

@pytest.mark.parametrize("value, fragment", [
    ([[0.1, 0.2], [0.3]], "list that NumPy cannot convert"),
    (None, "got None"),
    ("W", "got dtype <U1"),
])
def test_unconvertible_params_are_rejected_naming_the_field(value, fragment):
    arrays = dict(PROBLEM.params.items())
    with pytest.raises(TypeError, match=r"^params\.W: expected") as caught:
        RNNParams(**{**arrays, "W": value})
    assert fragment in str(caught.value)


# Seeds and sizes of the builders: checked before anything is drawn or allocated.

SIZES = dict(input_size=2, hidden_size=3, output_size=2)


@pytest.mark.parametrize("rng, error", [
    (-1, ValueError), ("abc", TypeError), (1.5, TypeError), (True, TypeError), ([1, 2], TypeError),
])
def test_random_params_reject_bad_seeds(rng, error):
    with pytest.raises(error, match=r"^rng: expected a non-negative int seed"):
        RNNParams.random(**SIZES, rng=rng)


@pytest.mark.parametrize("rng", [0, np.int64(3), None, np.random.default_rng(1),
                                 np.random.SeedSequence(4), np.random.PCG64(5)],
                         ids=lambda rng: type(rng).__name__)      # no memory address: ids must repeat
def test_random_params_take_every_documented_seed(rng):
    assert RNNParams.random(**SIZES, rng=rng).W.shape == (3, 3)


def test_a_seed_means_the_same_as_for_numpy():
    drawn = RNNParams.random(**SIZES, rng=7).U
    bound = 1 / np.sqrt(SIZES["hidden_size"])
    np.testing.assert_array_equal(drawn, np.random.default_rng(7).uniform(-bound, bound, size=(3, 2)))


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(T=-1), ValueError, "T"), (dict(T=2.5), TypeError, "T"), (dict(T=True), TypeError, "T"),
    (dict(B=0), ValueError, "B"), (dict(I="3"), TypeError, "I"), (dict(O=np.float64(2)), TypeError, "O"),
    (dict(seed=-1), ValueError, "seed"), (dict(seed=1.5), TypeError, "seed"),
    (dict(seed=np.random.default_rng(0)), TypeError, "seed"),
    (dict(loss="bogus"), ValueError, "loss"), (dict(nonlinearity="gelu"), ValueError, "nonlinearity"),
    (dict(reduction="none"), ValueError, "reduction"), (dict(dtype="float16"), TypeError, "dtype"),
    (dict(batch_first="yes"), TypeError, "batch_first"), (dict(batched=1), TypeError, "batched"),
    (dict(random_h0=None), TypeError, "random_h0"),
    (dict(H=10**7), ValueError, "H"), (dict(T=10**9, B=10**6), ValueError, "T, B, I"),
    (dict(O=10**7, H=10**6), ValueError, "O, H"), (dict(batched=False, B=2), ValueError, "B"),
])
def test_random_problem_checks_every_argument_before_drawing(kwargs, error, name, monkeypatch):
    import manual_bptt.verification.problems

    def forbidden(*args, **kwargs):
        raise AssertionError("random_problem drew before checking its arguments")

    monkeypatch.setattr(manual_bptt.verification.problems.np.random, "default_rng", forbidden)
    monkeypatch.setattr(manual_bptt.verification.problems.RNNParams, "random", forbidden)
    with pytest.raises(error) as caught:
        random_problem(**{**dict(T=T, B=B, I=I, H=H, O=O), **kwargs})
    assert str(caught.value).startswith(f"{name}: expected"), str(caught.value)


@pytest.mark.parametrize("sizes, names", [
    (dict(hidden_size=10**7), "hidden_size"),
    (dict(input_size=10**13), "hidden_size, input_size"),
    (dict(output_size=10**13), "output_size, hidden_size"),
])
def test_random_params_too_large_for_memory_name_the_size(sizes, names, monkeypatch):
    import manual_bptt.model.params

    monkeypatch.setattr(manual_bptt.model.params.np.random, "default_rng", lambda *a: pytest.fail("drew"))
    with pytest.raises(ValueError, match=rf"^{names}: expected sizes that fit in memory \(.* here\), got"):
        RNNParams.random(**{**SIZES, **sizes})


def test_sizes_become_python_ints_in_the_recipe():
    problem = random_problem(T=np.int64(3), B=np.int32(2), seed=np.uint8(1))
    assert repr(problem).startswith("random_problem(T=3, B=2, I=5, H=8, O=6, seed=1,")


def test_the_memory_check_names_the_largest_buffer_and_allows_up_to_the_limit():
    from manual_bptt.inputs.checks import check_fits_in_memory, memory_limit_bytes

    needs = [("a", 60, "A"), ("b", 40, "B")]
    check_fits_in_memory(needs, limit=100)                      # exactly the limit fits
    with pytest.raises(ValueError) as caught:
        check_fits_in_memory(needs + [("c", 1, "C")], limit=100)
    assert str(caught.value) == (
        "a: expected sizes that fit in memory (100 bytes here), got sizes for which A alone needs "
        "60 bytes (101 bytes in all)"
    )
    assert memory_limit_bytes() > 2**20                         # this machine's memory is known and plausible
