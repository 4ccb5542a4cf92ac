"""Networks: NetworkParams' constructors and names, and every bad input rejected before computing.

Each bad-input case breaks one thing in a valid network problem and says which
exception, which argument the message must start with, and a fragment of what it
got. Computation is forbidden during these calls: the engine's forward pass and
the twin's construction raise if reached.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import manual_bptt.fast.network
from manual_bptt import NetworkParams, bptt
from manual_bptt.model.names import network_names, slot_of, torch_name
from manual_bptt.verification.problems import random_network_problem

torch = pytest.importorskip("torch")
import torch_reference.network_twin  # noqa: E402
from torch_reference import compare, torch_bptt  # noqa: E402

T, B, I, H, O = 5, 3, 2, 4, 3


def valid(**recipe):
    problem = random_network_problem(T=T, B=B, I=I, H=H, O=O, seed=0, **{"lengths": "random", **recipe})
    return dict(params=problem.params, x=problem.x, y=problem.y, h0=problem.h0, **problem.options)


V = valid()
P, X, H0 = V["params"], V["x"], V["h0"]
UNI = valid(bidirectional=False)
LAST = valid(target="last")


def state_with(**changes):
    state = P.state_dict()
    state.update(changes)
    return {k: v for k, v in state.items() if v is not None}


BAD = [
    ("params is RNNParams-like dict", V, dict(params=P.state_dict()), TypeError, "params", "dict"),
    ("lengths too long", V, dict(lengths=np.array([1, 2, T + 1])), ValueError, "lengths", f"to {T + 1}"),
    ("lengths zero", V, dict(lengths=np.array([0, 2, 3])), ValueError, "lengths", "from 0"),
    ("lengths wrong shape", V, dict(lengths=np.array([1, 2])), ValueError, "lengths", "(2,)"),
    ("lengths float", V, dict(lengths=np.array([1.0, 2.0, 3.0])), TypeError, "lengths", "float64"),
    ("lengths bool", V, dict(lengths=np.array([True, True, True])), TypeError, "lengths", "bool"),
    ("lengths with unbatched x", V, dict(x=X[:, 0], y=V["y"][:, 0], h0=None, lengths=np.array([2])),
     ValueError, "lengths", "unbatched"),
    ("h0 without the layers axis", V, dict(h0=H0[0]), ValueError, "h0", "(3, 4)"),
    ("h0 one layer short", V, dict(h0=H0[1:]), ValueError, "h0", "(3, 3, 4)"),
    ("h0 float32", V, dict(h0=H0.astype(np.float32)), TypeError, "h0", "float32"),
    ("h0 NaN", V, dict(h0=H0 * np.nan), ValueError, "h0", "nan"),
    ("h0 as a pair for an Elman cell", V, dict(h0=(H0, H0)), TypeError, "h0", "pair"),
    ("truncate zero", UNI, dict(truncate=0), ValueError, "truncate", "0"),
    ("truncate float", UNI, dict(truncate=2.0), TypeError, "truncate", "2.0"),
    ("truncate bool", UNI, dict(truncate=True), TypeError, "truncate", "True"),
    ("truncate with bidirectional", V, dict(truncate=2), ValueError, "truncate", "bidirectional"),
    ("target unknown", V, dict(target="first"), ValueError, "target", "'first'"),
    ("target last with per-step labels", V, dict(target="last"), ValueError, "y", "each_step"),
    ("target each_step with one label per sequence", LAST, dict(target="each_step"), ValueError, "y", "(3,)"),
    ("last label out of range", LAST, dict(y=np.array([0, O, 1])), ValueError, "y", f"to {O}"),
    ("last label negative", LAST, dict(y=np.array([0, -1, 1])), ValueError, "y", "from -1"),
    ("last labels float", LAST, dict(y=np.zeros(B)), TypeError, "y", "float64"),
    ("nonlinearity given for a network", V, dict(nonlinearity="relu"), ValueError, "nonlinearity", "relu"),
    ("misspelt option", V, dict(lenghts=None), TypeError, "bptt", "lenghts"),
    ("x NaN", V, dict(x=X * np.nan), ValueError, "x", "nan"),
    ("x wrong I", V, dict(x=np.zeros((T, B, I + 1))), ValueError, "x", "(5, 3, 3)"),
    ("params NaN", V, dict(params=NetworkParams("rnn_tanh", state_with(weight_hh_l1=P["weight_hh_l1"] * np.nan))),
     ValueError, "params['weight_hh_l1']", "nan"),
]


def no_computation(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("computation started before the input was checked")

    monkeypatch.setattr(manual_bptt.fast.network, "sequence_forward", forbidden)
    monkeypatch.setattr(torch_reference.network_twin, "build_network", forbidden)


@pytest.mark.parametrize("fn", [bptt, torch_bptt, compare], ids=["bptt", "torch_bptt", "compare"])
@pytest.mark.parametrize("case, base, changes, error, name, got", BAD, ids=[b[0] for b in BAD])
def test_bad_network_input_is_rejected_naming_the_argument(monkeypatch, fn, case, base, changes, error, name, got):
    no_computation(monkeypatch)
    args = {**base, **changes}
    if name == "bptt":
        name = fn.__name__
    with pytest.raises(error) as caught:
        fn(args.pop("params"), args.pop("x"), args.pop("y"), args.pop("h0"), **args)
    message = str(caught.value)
    assert message.startswith(name), message
    assert got in message, message


def test_the_valid_problems_above_pass(monkeypatch):
    for base in (V, UNI, LAST):
        args = dict(base)
        L, g = bptt(args.pop("params"), args.pop("x"), args.pop("y"), args.pop("h0"), **args)
        assert np.isfinite(L)


# --- NetworkParams --------------------------------------------------------------------------

BAD_STATES = [
    ("unknown key", state_with(**{"weight_hh_l9_sideways": P["weight_hh_l0"]}), ValueError, "weight_hh_l9_sideways"),
    ("missing key", state_with(bias_hh_l1_reverse=None), ValueError, "bias_hh_l1_reverse"),
    ("missing head", state_with(**{"head.bias": None}), ValueError, "head.bias"),
    ("wrong shape", state_with(weight_hh_l1=P["weight_hh_l1"][:, :2]), ValueError, "weight_hh_l1"),
    ("wrong layer-1 input", state_with(weight_ih_l1=P["weight_ih_l1"][:, :H]), ValueError, "weight_ih_l1"),
    ("mixed dtypes", state_with(bias_ih_l0=P["bias_ih_l0"].astype(np.float32)), TypeError, "float32"),
    ("integer weights", state_with(bias_ih_l0=np.zeros(H, dtype=np.int64)), TypeError, "bias_ih_l0"),
    ("3-d weight", state_with(weight_ih_l0=P["weight_ih_l0"][None]), ValueError, "weight_ih_l0"),
    ("a parsable but unexpected key", state_with(weight_ih_l00=P["weight_ih_l0"]), ValueError, "['weight_ih_l00']"),
    ("big-endian weight", state_with(bias_hh_l0=P["bias_hh_l0"].astype(">f8")), TypeError, "non-native byte order"),
    ("bfloat16 tensor", state_with(bias_hh_l0=torch.zeros(H, dtype=torch.bfloat16)), TypeError, "bfloat16"),
    ("mixed dtypes name the odd key", state_with(bias_ih_l1=P["bias_ih_l1"].astype(np.float32)), TypeError,
     "but bias_ih_l1 float32"),
]


@pytest.mark.parametrize("case, state, error, fragment", BAD_STATES, ids=[b[0] for b in BAD_STATES])
def test_bad_state_dicts_are_rejected_naming_the_key(case, state, error, fragment):
    with pytest.raises(error, match=re.escape(fragment)):
        NetworkParams.from_state_dict(state, cell="rnn_tanh")


def test_bad_layers_heads_and_sources():
    with pytest.raises(ValueError, match=r"^layer: expected an int in \[0, 2\), got 5"):
        P.layer(5, 0)
    with pytest.raises(ValueError, match=r"^direction: expected an int in \[0, 1\), got 1"):
        UNI["params"].layer(0, 1)
    with pytest.raises(TypeError, match="^head: expected an nn.Linear, got NoneType"):
        NetworkParams.from_torch(torch.nn.GRU(3, 5), None)
    with pytest.raises(TypeError, match="^params: expected an RNNParams, got NetworkParams"):
        NetworkParams.from_rnn_params(P)


def test_h0_as_nested_lists_is_one_array():
    """A nested list is an array, even when L·D = 2 makes it look like a pair."""
    problem = random_network_problem(T=4, B=3, cell="gru", num_layers=2, bidirectional=False, seed=1)
    L, g = problem.run(bptt)
    L_list, g_list = bptt(problem.params, problem.x, problem.y, problem.h0.tolist(), **problem.options)
    assert L_list == L
    np.testing.assert_array_equal(g_list.h0, g.h0)


def test_bad_cells_and_sizes():
    with pytest.raises(ValueError, match="^cell: .*'elman'"):
        NetworkParams.from_state_dict(P.state_dict(), cell="elman")
    with pytest.raises(ValueError, match="^num_layers: "):
        NetworkParams.random(input_size=2, hidden_size=3, output_size=2, num_layers=0)
    with pytest.raises(ValueError, match="^proj_size: "):
        NetworkParams.random(cell="rnn_tanh", input_size=2, hidden_size=3, output_size=2, proj_size=1)
    with pytest.raises(TypeError, match="^bidirectional: "):
        NetworkParams.random(input_size=2, hidden_size=3, output_size=2, bidirectional="yes")


def test_state_dict_keys_are_torchs_in_torchs_order_and_round_trip():
    rnn = torch.nn.RNN(I, H, num_layers=2, bidirectional=True, dtype=torch.float64)
    head = torch.nn.Linear(2 * H, O, dtype=torch.float64)
    from_module = NetworkParams.from_torch(rnn, head)
    assert from_module.keys() == tuple(rnn.state_dict()) + ("head.weight", "head.bias")
    assert from_module.keys() == network_names(num_layers=2, bidirectional=True, bias=True, proj_size=0)
    for name, array in from_module.items():
        module, key = (head, name[5:]) if name.startswith("head.") else (rnn, name)
        np.testing.assert_array_equal(array, module.state_dict()[key].numpy(), err_msg=name)
    shuffled = dict(reversed(list(from_module.state_dict().items())))
    again = NetworkParams.from_state_dict(shuffled, cell="rnn_tanh")
    assert again.keys() == from_module.keys()
    assert (again.num_layers, again.bidirectional, again.bias, again.proj_size) == (2, True, True, 0)
    with torch.no_grad():
        rnn.weight_hh_l0.add_(1.0)                                   # training on changes nothing here
    assert not np.array_equal(from_module["weight_hh_l0"], rnn.weight_hh_l0.detach().numpy())


def test_from_torch_keeps_dropout_and_reads_the_cell():
    """Dropout is checked as the eval-mode function (turn 3): kept on the params, not refused."""
    rnn = torch.nn.RNN(I, H, num_layers=2, nonlinearity="relu", bias=False, dropout=0.5)
    p = NetworkParams.from_torch(rnn, torch.nn.Linear(H, O))
    assert (p.cell, p.bias, p.num_layers, p.dtype, p.dropout) == ("rnn_relu", False, 2, np.float32, 0.5)
    with pytest.raises(TypeError, match="^rnn: "):
        NetworkParams.from_torch(torch.nn.Linear(2, 2), torch.nn.Linear(H, O))


def test_names_table_round_trips():
    for name in network_names(num_layers=3, bidirectional=True, bias=True, proj_size=2):
        slot = slot_of(name)
        if slot.layer is not None:
            assert torch_name(slot.symbol, slot.layer, slot.direction) == name
    assert slot_of("weight_hh_l12_reverse").layer == 12
    assert slot_of("weight_hh_l1_backward") is None


def test_grads_mirror_the_parameters_and_nothing_is_modified():
    problem = random_network_problem(lengths="random", target="last", seed=4)
    before = {name: a.copy() for name, a in problem.params.items()}
    x, y, h0, lengths = problem.x.copy(), problem.y.copy(), problem.h0.copy(), problem.options["lengths"].copy()
    L, g = problem.run(bptt)
    assert g.state_dict().keys() == problem.params.state_dict().keys()
    for name, array in problem.params.items():
        assert g[name].shape == array.shape and g[name].dtype == array.dtype, name
        np.testing.assert_array_equal(array, before[name])
    assert g.h0.shape == problem.h0.shape and g.x.shape == problem.x.shape and g.c0 is None
    for old, new in ((x, problem.x), (y, problem.y), (h0, problem.h0), (lengths, problem.options["lengths"])):
        np.testing.assert_array_equal(old, new)


def test_report_rows_are_named_by_the_keys():
    problem = random_network_problem(T=3, B=2, num_layers=1, bidirectional=True, seed=1)
    report = problem.run(compare)
    assert [row.name for row in report.rows] == ["L", *problem.params.keys(), "h0", "x"]
    assert report.ok, str(report)


def test_unbatched_network_shapes():
    problem = random_network_problem(T=4, B=1, batched=False, target="last", seed=2)
    L, g = problem.run(bptt)
    assert g.x.shape == problem.x.shape and g.h0.shape == problem.h0.shape
    assert problem.run(compare).ok


def test_build_network_is_the_way_back_to_a_torch_model():
    """NetworkParams → (rnn, head) → NetworkParams gives the same arrays, for a projected LSTM."""
    from torch_reference import build_network

    p = NetworkParams.random(cell="lstm", input_size=3, hidden_size=5, output_size=2, num_layers=2,
                             bidirectional=True, proj_size=2, rng=3)
    rnn, head = build_network(p)
    again = NetworkParams.from_torch(rnn, head)
    assert again.keys() == p.keys() and again.proj_size == 2
    for name, array in p.items():
        np.testing.assert_array_equal(again[name], array, err_msg=name)
