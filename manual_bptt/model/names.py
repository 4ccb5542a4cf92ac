"""One table: the derivation's symbols ↔ PyTorch's parameter names, and what each cell is.

For layer l (0-based) and direction d (0 forward, 1 reverse), every recurrent
module of PyTorch names its parameters `{prefix}_l{l}` + ("_reverse" if d == 1):

    derivation   prefix       shape                 meaning
    U            weight_ih    (G·H, I_l)            input → pre-activations, gates stacked
    W            weight_hh    (G·H, H_out)          h(t-1) → pre-activations
    b_ih         bias_ih      (G·H,)                b = b_ih + b_hh for the Elman and LSTM cells
    b_hh         bias_hh      (G·H,)                (the GRU keeps b_hn apart: it sits inside r ⊙ (·))
    W_hr         weight_hr    (H_out, H)            LSTM projection h(t) = W_hr (o ⊙ tanh c(t)), proj_size > 0

G is the number of stacked gate blocks (1 Elman, 4 LSTM i f g o, 3 GRU r z n);
H_out = proj_size if proj_size > 0 else H; I_0 = I and I_l = D·H_out above the
first layer. The output layer is `head`:

    V            head.weight  (O, D·H_out)
    c            head.bias    (O,)

Every other module (the parameters, the twin, the report) names things through
this module, so the mapping lives here and nowhere else: `torch_name`, `layer_keys`,
`network_names` and `HEAD_SYMBOLS` write a name, `slot_of` reads one. `CELL_FACTS`
says, per cell, its gates, its states (only the LSTM has a c), whether it projects
(only the LSTM) and an Elman cell's φ, so that no module asks `cell == "lstm"`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class CellFacts:
    """What a cell is, for code that holds its mode name and not the cell object.

    gates:        its stacked gate blocks, in PyTorch's order (G = len(gates))
    states:       what it carries from step to step, in the order of h0's tuple: an LSTM's h and c
    projects:     whether h(t) may be projected, h(t) = W_hr m(t) (PyTorch's proj_size > 0)
    nonlinearity: nn.RNN's φ for an Elman cell, None for a gated one
    """

    gates: tuple[str, ...]
    states: tuple[str, ...]
    projects: bool = False
    nonlinearity: str | None = None


#: PyTorch's mode names for the cells, and what each is: one row a cell. The cells of
#: manual_bptt.fast.cells and manual_bptt.reference read their `state_names` here.
CELL_FACTS = {
    "rnn_tanh": CellFacts(gates=("a",), states=("h",), nonlinearity="tanh"),
    "rnn_relu": CellFacts(gates=("a",), states=("h",), nonlinearity="relu"),
    "lstm": CellFacts(gates=("i", "f", "g", "o"), states=("h", "c"), projects=True),
    "gru": CellFacts(gates=("r", "z", "n"), states=("h",)),
}
CELL_NAMES = tuple(CELL_FACTS)
#: Each cell's stacked gate blocks in PyTorch's order (a view of CELL_FACTS).
GATES = {cell: facts.gates for cell, facts in CELL_FACTS.items()}
#: The Elman cell of each φ: the one-layer RNN with nonlinearity φ is a network of this cell.
ELMAN_CELLS = {facts.nonlinearity: cell for cell, facts in CELL_FACTS.items() if facts.nonlinearity is not None}
#: PyTorch's `module.mode` → the cell's name here (nn.RNN's mode carries its nonlinearity).
MODE_CELLS = {"RNN_TANH": "rnn_tanh", "RNN_RELU": "rnn_relu", "LSTM": "lstm", "GRU": "gru"}

#: Derivation symbol → PyTorch's prefix, for one layer and direction.
LAYER_SYMBOLS = {"U": "weight_ih", "W": "weight_hh", "b_ih": "bias_ih", "b_hh": "bias_hh", "W_hr": "weight_hr"}
#: Derivation symbol → PyTorch's name, for the output layer.
HEAD_SYMBOLS = {"V": "head.weight", "c": "head.bias"}

_LAYER_NAME = re.compile(rf"^({'|'.join(LAYER_SYMBOLS.values())})_l(\d+)(_reverse)?$")
_SYMBOL_OF_PREFIX = {prefix: symbol for symbol, prefix in LAYER_SYMBOLS.items()}


@dataclass(frozen=True)
class Slot:
    """Where a PyTorch name sits: (layer, direction, symbol); layer is None for the head."""

    layer: int | None
    direction: int | None
    symbol: str


def torch_name(symbol: str, layer: int, direction: int) -> str:
    """'weight_hh_l1_reverse' for ('W', 1, 1)."""
    return f"{LAYER_SYMBOLS[symbol]}_l{layer}" + ("_reverse" if direction else "")


def slot_of(name: str) -> Slot | None:
    """The (layer, direction, symbol) of a PyTorch name, or None if it is not one of ours."""
    for symbol, head_name in HEAD_SYMBOLS.items():
        if name == head_name:
            return Slot(None, None, symbol)
    match = _LAYER_NAME.match(name)
    if match is None:
        return None
    prefix, layer, reverse = match.groups()
    return Slot(int(layer), 1 if reverse else 0, _SYMBOL_OF_PREFIX[prefix])


def layer_symbols(*, bias: bool, proj_size: int) -> tuple[str, ...]:
    """The symbols of one layer and direction, in PyTorch's order."""
    symbols = ("U", "W") + (("b_ih", "b_hh") if bias else ())
    return symbols + (("W_hr",) if proj_size > 0 else ())


def layer_keys(layer: int, direction: int, *, bias: bool, proj_size: int) -> tuple[str, ...]:
    """PyTorch's names of one layer and direction, in its order: ('weight_ih_l0', 'weight_hh_l0', ...)."""
    return tuple(torch_name(symbol, layer, direction) for symbol in layer_symbols(bias=bias, proj_size=proj_size))


def network_names(*, num_layers: int, bidirectional: bool, bias: bool, proj_size: int) -> tuple[str, ...]:
    """Every parameter name of a network, in the order of PyTorch's state_dict, then the head."""
    directions = 2 if bidirectional else 1
    names = [
        name
        for layer in range(num_layers)
        for direction in range(directions)
        for name in layer_keys(layer, direction, bias=bias, proj_size=proj_size)
    ]
    return tuple(names) + tuple(HEAD_SYMBOLS.values())
