"""The kit's own arguments (issue 18): each is checked before anything is drawn, and a
bad one is an error naming it, never a search that runs on a typo or a failure blamed
on the candidate."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from hypothesis import strategies as st  # noqa: E402

from manual_bptt import bptt  # noqa: E402
from manual_bptt.verification.strategies import rnn_problems  # noqa: E402
from torch_reference.kit import assert_bptt_correct, check_bptt  # noqa: E402

#: What the kit is told, the error it must raise, and the start of that error's message.
BAD_ARGUMENTS = {
    "a layout typo": (dict(layout="batchfirst"), ValueError,
                      r"layout: expected one of 'time_major', 'batch_first', 'unbatched', got 'batchfirst'$"),
    "a layout of another type": (dict(layout=1), TypeError, r"layout: expected one of 'time_major', "),
    "max_examples True": (dict(max_examples=True), TypeError, r"max_examples: expected an int >= 1, got True$"),
    "max_examples 0": (dict(max_examples=0), ValueError, r"max_examples: expected an int >= 1, got 0$"),
    "max_examples -1": (dict(max_examples=-1), ValueError, r"max_examples: expected an int >= 1, got -1$"),
    "max_examples 'a'": (dict(max_examples="a"), TypeError, r"max_examples: expected an int >= 1, got 'a'$"),
    "max_examples 2.0": (dict(max_examples=2.0), TypeError, r"max_examples: expected an int >= 1, got 2\.0$"),
    "ill_conditioned 'yes'": (dict(ill_conditioned="yes"), TypeError,
                              r"ill_conditioned: expected True or False, got 'yes'$"),
    "derandomize 1": (dict(derandomize=1), TypeError, r"derandomize: expected True or False, got 1$"),
    "a dtype float16": (dict(dtype="float16"), TypeError, r"dtype: expected float32 or float64, got float16$"),
    "a dtype that is none": (dict(dtype="double-ish"), TypeError, r"dtype: expected float32 or float64, got 'double-ish'$"),
    "a nonlinearity typo": (dict(nonlinearity="sigmoid"), ValueError,
                            r"nonlinearity: expected one of 'tanh', 'relu', got 'sigmoid'$"),
    "a loss typo": (dict(loss="crossentropy"), ValueError,
                    r"loss: expected one of 'cross_entropy', 'mse', got 'crossentropy'$"),
    "a reduction typo": (dict(reduction="avg"), ValueError, r"reduction: expected one of 'sum', 'mean', got 'avg'$"),
    "random_h0 'no'": (dict(random_h0="no"), TypeError, r"random_h0: expected True or False, got 'no'$"),
    "relu on ill-conditioned problems": (dict(ill_conditioned=True, nonlinearity="relu"), ValueError,
                                         r"nonlinearity: expected 'tanh' with ill_conditioned=True .*got 'relu'$"),
    "problems not a strategy": (dict(problems=3), TypeError,
                                r"problems: expected a hypothesis strategy of RandomProblems .*got int$"),
    "problems a list of problems": (dict(problems=[1, 2]), TypeError, r"problems: expected a hypothesis strategy .*got list$"),
    "problems that draw ints": (dict(problems=st.just(3)), TypeError,
                                r"problems: expected a strategy that draws RandomProblems .*got one that drew int 3$"),
    "problems with pinned options": (dict(problems=rnn_problems(), loss="mse"), ValueError,
                                     r"problems: a strategy of its own excludes ill_conditioned and pinned options$"),
    "an unknown option": (dict(colour="red"), ValueError, r"colour: not an option the kit can pin; "),
}


def _never_called(params, x, y, h0=None, **options):
    raise AssertionError("the candidate ran although the kit's arguments were bad")


@pytest.mark.parametrize("what", list(BAD_ARGUMENTS))
@pytest.mark.parametrize("entry", [check_bptt, assert_bptt_correct], ids=lambda f: f.__name__)
def test_a_bad_kit_argument_is_named_before_any_problem_is_run(entry, what):
    arguments, error, message = BAD_ARGUMENTS[what]
    with pytest.raises(error, match="^" + message):
        entry(_never_called, **arguments)


def test_numpy_flags_and_dtypes_are_taken_as_python_ones():
    seen = set()

    def recording(params, x, y, h0=None, **options):
        seen.add((params.dtype.name, h0 is None, type(options["batch_first"])))
        return bptt(params, x, y, h0, **options)

    result = check_bptt(recording, max_examples=np.int64(4), dtype=np.float32, random_h0=np.bool_(False),
                        derandomize=np.bool_(True))
    assert result.ok and result.tried == 4
    assert seen == {("float32", True, bool)}
    assert "dtype='float32'" in repr(check_bptt(lambda *a, **k: None, max_examples=1, dtype=np.dtype("float32")).problem)


def test_tanh_may_be_pinned_on_the_ill_conditioned_problems():
    result = check_bptt(bptt, max_examples=3, ill_conditioned=True, nonlinearity="tanh")
    assert result.ok and result.tried == 3
