"""NetworkParams refuses what RNNParams refuses: np.matrix and masked arrays, named by their key.

A masked array's mask would be dropped (np.asarray keeps the data under it, so a masked
1e30 would become a weight); np.matrix redefines * and @. Every way in is checked: the
constructor, from_state_dict, and from_torch (which reads the modules' state dicts).
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from manual_bptt import NetworkParams, RNNParams

STATE = NetworkParams.random(cell="lstm", input_size=3, hidden_size=4, output_size=2, num_layers=2,
                             bidirectional=True, rng=0).state_dict()


def masked(array: np.ndarray) -> np.ma.MaskedArray:
    """The array with its first entry masked and set to 1e30 under the mask."""
    data = array.copy()
    data.flat[0] = 1e30
    mask = np.zeros(array.shape, dtype=bool)
    mask.flat[0] = True
    return np.ma.masked_array(data, mask=mask)


def as_matrix(array: np.ndarray):
    with warnings.catch_warnings():                             # np.matrix is discouraged: that is the point
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return np.asmatrix(array)


class _Module:
    """Enough of nn.LSTM / nn.Linear for from_torch: mode, dropout and a state dict of arrays."""

    def __init__(self, state: dict, mode: str | None = None):
        self._state, self.mode, self.dropout = state, mode, 0

    def state_dict(self) -> dict:
        return dict(self._state)


def built(how: str, state: dict) -> NetworkParams:
    if how == "constructor":
        return NetworkParams("lstm", state)
    if how == "from_state_dict":
        return NetworkParams.from_state_dict(state, cell="lstm")
    rnn = _Module({k: v for k, v in state.items() if not k.startswith("head.")}, mode="LSTM")
    head = _Module({k.split(".", 1)[1]: v for k, v in state.items() if k.startswith("head.")})
    return NetworkParams.from_torch(rnn, head)


WAYS = ["constructor", "from_state_dict", "from_torch"]
KEYS = ["weight_hh_l1_reverse", "bias_ih_l0", "head.weight"]


@pytest.mark.parametrize("how", WAYS)
@pytest.mark.parametrize("key", KEYS)
def test_a_masked_array_is_refused_with_its_key(how, key):
    state = {**STATE, key: masked(STATE[key])}
    with pytest.raises(TypeError, match=rf"^state\['{key}'\]: expected a plain ndarray, got a masked array"):
        built(how, state)


@pytest.mark.parametrize("how", WAYS)
@pytest.mark.parametrize("key", ["weight_ih_l0", "head.weight"])
def test_a_matrix_is_refused_with_its_key(how, key):
    state = {**STATE, key: as_matrix(STATE[key])}
    with pytest.raises(TypeError, match=rf"^state\['{re.escape(key)}'\]: expected a plain ndarray, got numpy.matrix"):
        built(how, state)


def test_the_same_message_as_rnn_params():
    p = RNNParams.random(input_size=3, hidden_size=4, output_size=2, rng=0)
    with pytest.raises(TypeError) as rnn_error:
        p.replace(W=masked(p.W))
    with pytest.raises(TypeError) as network_error:
        NetworkParams.from_state_dict({**STATE, "weight_hh_l0": masked(STATE["weight_hh_l0"])}, cell="lstm")
    assert str(rnn_error.value).split(": ", 1)[1] == str(network_error.value).split(": ", 1)[1]


@pytest.mark.parametrize("how", WAYS)
def test_plain_arrays_and_memmap_like_subclasses_are_still_held(how):
    class Tagged(np.ndarray):                                   # a subclass meaning the same numbers
        pass

    state = {**STATE, "weight_hh_l0": STATE["weight_hh_l0"].view(Tagged)}
    p = built(how, state)
    assert type(p["weight_hh_l0"]) is np.ndarray
    assert np.shares_memory(p["weight_hh_l0"], STATE["weight_hh_l0"])
    assert p["bias_ih_l0"] is STATE["bias_ih_l0"]
