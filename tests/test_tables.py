"""One table per fact: every option's values live in inputs/options.py, what each cell is in
model/names.py's CELL_FACTS.

The validation, the parameters, the problem makers and the command lines read those
tables; these tests hold them to it through what a caller sees (the values accepted,
the values an error lists, the states a gradient has, the choices `--help` offers), so
that a copy of a table that drifts from it fails here.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from manual_bptt import NetworkParams, bptt
from manual_bptt.inputs.options import DTYPES, LAYOUTS, LENGTH_KINDS, LOSSES, NONLINEARITIES, REDUCTIONS, TARGETS
from manual_bptt.model.names import CELL_FACTS, CELL_NAMES
from manual_bptt.verification.problems import random_network_problem, random_problem

SMALL = dict(T=3, B=2, I=2, H=3, O=2)


def listed(values) -> str:
    """How an error lists the allowed values: 'a', 'b'."""
    return ", ".join(repr(value) for value in values)


@pytest.mark.parametrize("keyword, table", [("nonlinearity", NONLINEARITIES), ("loss", LOSSES),
                                            ("reduction", REDUCTIONS)])
def test_the_one_layer_problem_takes_each_value_of_its_table_and_no_other(keyword, table):
    for value in table:
        L, _ = random_problem(**SMALL, seed=1, **{keyword: value}).run(bptt)
        assert np.isfinite(L), f"{keyword}={value!r}: L = {L}"
    problem = random_problem(**SMALL, seed=1)
    refused = re.escape(f"{keyword}: expected one of {listed(table)}, got 'neither'")
    with pytest.raises(ValueError, match=f"^{refused}$"):
        bptt(problem.params, problem.x, problem.y, problem.h0, **{**problem.options, keyword: "neither"})


@pytest.mark.parametrize("keyword, table", [("target", TARGETS), ("loss", LOSSES), ("reduction", REDUCTIONS)])
def test_a_network_problem_takes_each_value_of_its_table_and_no_other(keyword, table):
    for value in table:
        L, _ = random_network_problem(**SMALL, seed=2, **{keyword: value}).run(bptt)
        assert np.isfinite(L), f"{keyword}={value!r}: L = {L}"
    problem = random_network_problem(**SMALL, seed=2)
    refused = re.escape(f"{keyword}: expected one of {listed(table)}, got 'neither'")
    with pytest.raises(ValueError, match=f"^{refused}$"):
        bptt(problem.params, problem.x, problem.y, problem.h0, **{**problem.options, keyword: "neither"})


def test_the_problem_makers_take_each_layout_length_kind_and_dtype():
    for layout in LAYOUTS:
        keywords = dict(batch_first=layout == "batch_first", batched=layout != "unbatched")
        sizes = {**SMALL, "B": 1} if layout == "unbatched" else SMALL
        assert np.isfinite(random_network_problem(**sizes, seed=3, **keywords).run(bptt)[0]), layout
    for kind in LENGTH_KINDS:
        assert np.isfinite(random_network_problem(**SMALL, seed=3, lengths=kind).run(bptt)[0]), kind
    for dtype in DTYPES:
        assert random_problem(**SMALL, seed=3, dtype=dtype).params.dtype == np.dtype(dtype)


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_each_cell_is_what_its_row_of_cell_facts_says(cell):
    facts = CELL_FACTS[cell]
    problem = random_network_problem(**SMALL, cell=cell, num_layers=1, bidirectional=False, seed=4,
                                     random_h0=True)
    _, grads = problem.run(bptt)
    assert (grads.c0 is not None) == ("c" in facts.states), f"{cell}: c0 = {grads.c0!r}, states {facts.states}"
    H = SMALL["H"]
    params = NetworkParams.random(cell=cell, input_size=2, hidden_size=H, output_size=2, rng=0)
    assert params.layer(0, 0).W.shape[0] == len(facts.gates) * H, f"{cell}: gates {facts.gates}"
    make = lambda: NetworkParams.random(cell=cell, input_size=2, hidden_size=H, output_size=2,  # noqa: E731
                                        proj_size=1, rng=0)
    if facts.projects:
        assert make().output_hidden_size == 1
    else:
        with pytest.raises(ValueError, match="proj_size"):
            make()


def test_the_command_lines_offer_the_tables_as_choices():
    pytest.importorskip("torch")
    from torch_reference import cli, train

    def choices(parser, option):
        (action,) = [a for a in parser._actions if option in a.option_strings]
        return tuple(action.choices)

    check = cli.parser()
    assert choices(check, "--nonlinearity") == NONLINEARITIES
    assert choices(check, "--loss") == LOSSES
    assert choices(check, "--reduction") == REDUCTIONS
    assert choices(check, "--target") == TARGETS
    assert set(choices(check, "--lengths")) == set(LENGTH_KINDS)
    assert choices(check, "--dtype") == DTYPES
    assert choices(train.parser(), "--dtype") == DTYPES


def test_the_sweep_draws_every_value_of_the_tables_and_no_other():
    pytest.importorskip("torch")
    from torch_reference.sweep import draw_network_recipe, draw_recipe

    rng = np.random.default_rng(0)
    one_layer = [draw_recipe(rng) for _ in range(200)]
    networks = [draw_network_recipe(rng) for _ in range(400)]
    for recipes, keyword, table in [(one_layer, "nonlinearity", NONLINEARITIES), (one_layer, "loss", LOSSES),
                                    (one_layer, "reduction", REDUCTIONS), (one_layer, "dtype", DTYPES),
                                    (networks, "cell", CELL_NAMES), (networks, "target", TARGETS),
                                    (networks, "lengths", LENGTH_KINDS)]:
        drawn = {recipe[keyword] for recipe in recipes}
        assert drawn == set(table), f"{keyword}: drew {sorted(drawn)}, the table holds {table}"
    projected = {recipe["cell"] for recipe in networks if recipe["proj_size"]}
    assert projected == {cell for cell in CELL_NAMES if CELL_FACTS[cell].projects}
