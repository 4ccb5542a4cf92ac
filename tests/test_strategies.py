"""The strategies draw what the suite claims to cover."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis.errors import NoSuchExample
from hypothesis import strategies as st

from manual_bptt import bptt

from .strategies import (MAX_T, MAX_T_ILL_CONDITIONED, MAX_WEIGHT_SCALE, ill_conditioned_problems, network_problems,
                         label_sequences, rnn_problems)


@given(rnn_problems())
def test_every_drawn_problem_is_valid_input(problem):
    L, g = problem.run(bptt)  # raises on anything invalid
    assert np.isfinite(L)
    r = problem.recipe
    assert 1 <= r["T"] <= MAX_T and r["B"] >= 1 and min(r["I"], r["H"], r["O"]) >= 1
    if r["loss"] == "cross_entropy":
        assert problem.y.min() >= 0 and problem.y.max() < r["O"]
    if not r["batched"]:
        assert problem.x.ndim == 2 and r["B"] == 1


def reaches(condition) -> bool:
    return find(rnn_problems(), condition, settings=settings(max_examples=2000, database=None)) is not None


def test_every_option_and_edge_is_reachable():
    for key, value in [("dtype", "float32"), ("dtype", "float64"), ("nonlinearity", "relu"),
                       ("nonlinearity", "tanh"), ("loss", "mse"), ("loss", "cross_entropy"),
                       ("reduction", "mean"), ("reduction", "sum"), ("batch_first", True),
                       ("batched", False), ("random_h0", False), ("random_h0", True)]:
        assert reaches(lambda p, key=key, value=value: p.recipe[key] == value), (key, value)
    assert reaches(lambda p: p.recipe["T"] == MAX_T)
    assert reaches(lambda p: p.recipe["T"] == 1 and p.recipe["H"] == 1 and p.recipe["O"] == 1)


def test_random_h0_is_random_and_labels_are_not_constant():
    p = find(rnn_problems(random_h0=st.just(True), loss=st.just("cross_entropy")),
             lambda p: p.recipe["T"] >= 10 and p.recipe["O"] >= 3 and p.recipe["H"] >= 2 and p.recipe["batched"],
             settings=settings(max_examples=2000, database=None))
    assert np.ptp(p.h0) > 0
    assert len(np.unique(p.y)) > 1


@pytest.mark.parametrize("O", [2, 5])
def test_label_sequences_reach_every_class_and_no_other(O):
    search = settings(max_examples=100, database=None)
    for label in range(O):
        drawn = find(label_sequences(O, 3, 2), lambda y, label=label: label in y, settings=search)
        assert drawn.shape == (3, 2) and drawn.dtype == np.int64
    with pytest.raises(NoSuchExample):
        find(label_sequences(O, 3, 2), lambda y: y.min() < 0 or y.max() >= O, settings=search)


def test_ill_conditioned_problems_reach_their_edges_and_the_rest_stay_at_scale_1():
    # Derandomized in every profile: a random search for an edge case can miss it in 2 000
    # draws (it did, once, under the random "dev" profile), which says nothing about the strategy.
    def finds(condition) -> bool:
        return find(ill_conditioned_problems(), condition,
                    settings=settings(max_examples=2000, database=None, derandomize=True)) is not None

    assert finds(lambda p: p.recipe.get("weight_scale", 1) >= 0.9 * MAX_WEIGHT_SCALE and p.recipe["T"] >= 60)
    assert finds(lambda p: p.recipe["T"] == MAX_T_ILL_CONDITIONED and p.recipe["dtype"] == "float32")
    assert finds(lambda p: p.recipe["H"] >= 30)
    few = settings(max_examples=300, database=None)
    with pytest.raises(NoSuchExample):
        find(ill_conditioned_problems(), lambda p: p.recipe["nonlinearity"] == "relu"
             or not 1 <= p.recipe.get("weight_scale", 1) <= MAX_WEIGHT_SCALE, settings=few)
    with pytest.raises(NoSuchExample):
        find(rnn_problems(), lambda p: "weight_scale" in p.recipe, settings=few)



# ---- Plain values for every option (issue 20): a value pins it, as st.just(value) does ----

def drawn(strategy, n: int = 15) -> list:
    """n problems of `strategy`, the same on every run."""
    seen = []

    @settings(max_examples=n, derandomize=True, database=None, deadline=None)
    @given(strategy)
    def collect(problem):
        seen.append(problem)

    collect()
    return seen


#: Per family, an option, its plain value, and what every drawn recipe must then say.
RNN_PINS = {
    "dtype": ("float32", lambda r: r["dtype"] == "float32"),
    "nonlinearity": ("relu", lambda r: r["nonlinearity"] == "relu"),
    "loss": ("mse", lambda r: r["loss"] == "mse"),
    "reduction": ("mean", lambda r: r["reduction"] == "mean"),
    "layout": ("batch_first", lambda r: r["batch_first"] and r["batched"]),
    "random_h0": (False, lambda r: r["random_h0"] is False),
    "weight_scale": (3.0, lambda r: r["weight_scale"] == 3.0),
}
NETWORK_PINS = {
    "cell": ("lstm", lambda r: r["cell"] == "lstm"),
    "projected": (True, lambda r: r["proj_size"] > 0 or r["H"] == 1 or r["cell"] != "lstm"),
    "dtype": ("float32", lambda r: r["dtype"] == "float32"),
    "num_layers": (3, lambda r: r["num_layers"] == 3),
    "bidirectional": (True, lambda r: r["bidirectional"] is True),
    "bias": (False, lambda r: r["bias"] is False),
    "lengths": ("one", lambda r: r["lengths"] == "one" or not r["batched"]),
    "target": ("last", lambda r: r["target"] == "last"),
    "truncated": (True, lambda r: r["truncate"] is not None or r["bidirectional"]),
    "loss": ("mse", lambda r: r["loss"] == "mse"),
    "reduction": ("mean", lambda r: r["reduction"] == "mean"),
    "layout": ("unbatched", lambda r: not r["batched"] and r["B"] == 1),
    "random_h0": (True, lambda r: r["random_h0"] is True),
}


@pytest.mark.parametrize("family, pins", [(rnn_problems, RNN_PINS), (network_problems, NETWORK_PINS)],
                         ids=["rnn_problems", "network_problems"])
def test_every_option_takes_a_plain_value(family, pins):
    for name, (value, holds) in pins.items():
        problems = drawn(family(**{name: value}))
        assert all(holds(p.recipe) for p in problems), (name, value, [p for p in problems if not holds(p.recipe)])
        # The same draws as the strategy st.just(value): a plain value is nothing else.
        assert [repr(p) for p in problems] == [repr(p) for p in drawn(family(**{name: st.just(value)}))], name


def test_plain_values_combine_and_a_numpy_dtype_is_a_dtype():
    problems = drawn(network_problems(cell="lstm", projected=True, bidirectional=False, truncated=True,
                                      dtype=np.float32, num_layers=np.int64(2)))
    assert {(p.recipe["cell"], p.recipe["dtype"], p.recipe["num_layers"]) for p in problems} == {("lstm", "float32", 2)}
    assert all(p.recipe["truncate"] is not None for p in problems)
    assert all(p.recipe["nonlinearity"] == "tanh" for p in drawn(ill_conditioned_problems(dtype="float32")))


#: A bad plain value, the error it gets, and its message: the option named, the valid values listed.
BAD_VALUES = {
    "cell": (network_problems, "lstn", ValueError, r"cell: expected one of 'rnn_tanh', 'rnn_relu', 'lstm', 'gru', got 'lstn'"),
    "lengths": (network_problems, "some", ValueError, r"lengths: expected one of 'none', 'full', 'random', 'one', got 'some'"),
    "target": (network_problems, "first", ValueError, r"target: expected one of 'each_step', 'last', got 'first'"),
    "layout": (rnn_problems, "batchfirst", ValueError,
               r"layout: expected one of 'time_major', 'batch_first', 'unbatched', got 'batchfirst'"),
    "loss": (rnn_problems, "nll", ValueError, r"loss: expected one of 'cross_entropy', 'mse', got 'nll'"),
    "reduction": (network_problems, "avg", ValueError, r"reduction: expected one of 'sum', 'mean', got 'avg'"),
    "nonlinearity": (rnn_problems, "sigmoid", ValueError, r"nonlinearity: expected one of 'tanh', 'relu', got 'sigmoid'"),
    "dtype": (rnn_problems, "float16", ValueError, r"dtype: expected one of 'float64', 'float32', got 'float16'"),
    "num_layers": (network_problems, 0, ValueError, r"num_layers: expected an int >= 1, got 0"),
    "weight_scale": (rnn_problems, -1.0, ValueError, r"weight_scale: expected a positive finite number, got -1.0"),
    "bidirectional": (network_problems, "yes", TypeError, r"bidirectional: expected True or False, got 'yes'"),
    "random_h0": (rnn_problems, 1, TypeError, r"random_h0: expected True or False, got 1"),
    "max_T": (network_problems, 0, ValueError, r"max_T: expected an int >= 1, got 0"),
}


@pytest.mark.parametrize("name", list(BAD_VALUES))
def test_a_bad_plain_value_is_named_with_the_valid_values_before_anything_is_drawn(name):
    family, value, error, message = BAD_VALUES[name]
    with pytest.raises(error, match="^" + message + "$"):
        family(**{name: value})
