"""The parameters of a whole recurrent network, named as PyTorch names them, and their gradients.

A network is what `nn.RNN` / `nn.LSTM` / `nn.GRU` build with num_layers, bidirectional,
bias and proj_size, followed by an output layer `head` (`nn.Linear(D·H_out, O)`).
`NetworkParams` holds one array per PyTorch parameter name (the table is in
names.py); `NetworkGrads` mirrors it key by key and adds ∂L/∂h0, ∂L/∂c0 (LSTM) and ∂L/∂x.

Sizes: I input, H hidden, H_out = proj_size or H, O output, L layers, D = 2 if
bidirectional else 1, G gate blocks (1 Elman, 4 LSTM, 3 GRU).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Mapping

import numpy as np

from ..inputs.checks import as_array, check_count, check_fits_in_memory, check_flag, check_seed
from .names import (CELL_FACTS, CELL_NAMES, ELMAN_CELLS, GATES, HEAD_SYMBOLS, LAYER_SYMBOLS, MODE_CELLS, network_names,
                    slot_of, torch_name)
from .params import SUPPORTED_DTYPES, as_float_dtype

# The names that say a network's structure (names.py writes them): the first layer's, its
# reverse direction's input weights, and the head's weight.
_U0, _W0, _B_IH0, _W_HR0 = (torch_name(symbol, 0, 0) for symbol in ("U", "W", "b_ih", "W_hr"))
_U0_REVERSE = torch_name("U", 0, 1)
_V = HEAD_SYMBOLS["V"]


@dataclass(frozen=True)
class LayerWeights:
    """The weights of one layer and direction, in the derivation's letters (None where absent)."""

    U: np.ndarray                    # weight_ih  (G·H, I_l)
    W: np.ndarray                    # weight_hh  (G·H, H_out)
    b_ih: np.ndarray | None          # bias_ih    (G·H,)
    b_hh: np.ndarray | None          # bias_hh    (G·H,)
    W_hr: np.ndarray | None = None   # weight_hr  (H_out, H), LSTM with proj_size only


@dataclass(frozen=True, eq=False)
class NetworkParams:
    """Every parameter of a network, keyed by PyTorch's names plus `head.weight` / `head.bias`.

    cell:   "rnn_tanh", "rnn_relu", "lstm" or "gru" (PyTorch's mode names)
    arrays: {name: array}, exactly the keys `names.network_names(...)` gives for the
            network's num_layers, bidirectional, bias and proj_size (read off the keys)

    Build one with `NetworkParams.random(...)`, `from_state_dict(state, cell=...)` or
    `from_torch(rnn, head)`. The constructor checks every key, shape and dtype and
    raises ValueError/TypeError naming the key; np.matrix, masked arrays and ragged
    lists are refused as by `RNNParams` (manual_bptt.inputs.checks.as_array). Arrays are held, not copied (tensors
    are copied to NumPy), and never written to by this package.
    """

    cell: str
    arrays: Mapping[str, np.ndarray] = field(repr=False)
    #: The layout of the data the module was built for, carried from `from_torch`: True for
    #: (B, T, ...), False for (T, B, ...), None when unknown (time-major). `bptt`, `torch_bptt`
    #: and `compare` use it unless `batch_first` is passed to them.
    batch_first: bool | None = None
    #: The module's dropout between layers (`from_torch`). It is not part of the function
    #: checked (its mask is random): the network is checked as its eval-mode function, and
    #: `compare`'s report says so.
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.cell, str) or self.cell not in CELL_NAMES:
            listed = ", ".join(repr(c) for c in CELL_NAMES)
            raise ValueError(f"cell: expected one of {listed}, got {self.cell!r}")
        if self.batch_first is not None:
            check_flag("batch_first", self.batch_first)
        _check_dropout(self.dropout)
        if not isinstance(self.arrays, Mapping):
            raise TypeError(f"state: expected a mapping of parameter names to arrays, got {type(self.arrays).__name__}")
        arrays = {name: _as_param_array(name, value) for name, value in self.arrays.items()}
        order = _check_keys(arrays)
        arrays = {name: arrays[name] for name in order}              # PyTorch's state-dict order
        object.__setattr__(self, "arrays", arrays)
        _check_dtypes(arrays)
        # The structure, read off the keys once (they are checked and never change).
        layers = 1 + max(slot.layer for slot in map(slot_of, arrays) if slot.layer is not None)
        object.__setattr__(self, "_num_layers", layers)
        _check_shapes(self)

    @property
    def num_layers(self) -> int:
        return self._num_layers

    @property
    def bidirectional(self) -> bool:
        return _U0_REVERSE in self.arrays

    @property
    def num_directions(self) -> int:
        """D: 2 for a bidirectional network, else 1."""
        return 2 if self.bidirectional else 1

    @property
    def bias(self) -> bool:
        return _B_IH0 in self.arrays

    @property
    def proj_size(self) -> int:
        W_hr = self.arrays.get(_W_HR0)
        return 0 if W_hr is None else W_hr.shape[0]

    @property
    def gates(self) -> int:
        """G: the number of stacked gate blocks of the cell."""
        return len(GATES[self.cell])

    @property
    def input_size(self) -> int:
        return self.arrays[_U0].shape[1]

    @property
    def hidden_size(self) -> int:
        return self.arrays[_W0].shape[0] // self.gates

    @property
    def output_hidden_size(self) -> int:
        """H_out: proj_size when the LSTM projects, else H (the size of h(t))."""
        return self.proj_size or self.hidden_size

    @property
    def output_size(self) -> int:
        return self.arrays[_V].shape[0]

    @property
    def dtype(self) -> np.dtype:
        return self.arrays[_V].dtype

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def keys(self) -> tuple[str, ...]:
        return tuple(self.arrays)

    def items(self) -> Iterator[tuple[str, np.ndarray]]:
        """(name, array) in the order of PyTorch's state_dict, then the head."""
        return iter(self.arrays.items())

    def state_dict(self) -> dict[str, np.ndarray]:
        """{name: array} with PyTorch's keys (and head.weight, head.bias); the arrays as held."""
        return dict(self.arrays)

    def layer(self, layer: int, direction: int) -> LayerWeights:
        """The weights of one layer (0-based) and direction (0 forward, 1 reverse)."""
        for name, value, limit in (("layer", layer, self.num_layers), ("direction", direction, self.num_directions)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < limit:
                raise ValueError(f"{name}: expected an int in [0, {limit}), got {value!r}")
        get = self.arrays.get
        return LayerWeights(**{symbol: get(torch_name(symbol, layer, direction)) for symbol in LAYER_SYMBOLS})

    def with_arrays(self, arrays: Mapping) -> "NetworkParams":
        """The same network (cell, layout, dropout) with other arrays under the same keys."""
        return NetworkParams(self.cell, arrays, batch_first=self.batch_first, dropout=self.dropout)

    def astype(self, dtype) -> "NetworkParams":
        dtype = as_float_dtype(dtype)
        return self.with_arrays({name: a.astype(dtype) for name, a in self.items()})

    def copy(self) -> "NetworkParams":
        return self.with_arrays({name: a.copy() for name, a in self.items()})

    def __repr__(self) -> str:
        module = "" if self.batch_first is None else f", batch_first={self.batch_first}"
        module += f", dropout={self.dropout:g}" if self.dropout else ""
        return (
            f"NetworkParams(cell={self.cell!r}, input_size={self.input_size}, hidden_size={self.hidden_size}, "
            f"output_size={self.output_size}, num_layers={self.num_layers}, bidirectional={self.bidirectional}, "
            f"bias={self.bias}, proj_size={self.proj_size}, dtype={self.dtype}{module})"
        )

    @classmethod
    def from_state_dict(cls, state: Mapping, cell: str | None = None, *, prefix: str | None = None,
                        head: str | None = None) -> "NetworkParams":
        """From {name: array or tensor}: PyTorch's bare names plus head.weight, head.bias, or a
        whole model's state dict (`model.state_dict()`).

        prefix: the recurrent module's name in the model ("lstm", "encoder.rnn"; "" for bare
                keys); head: the nn.Linear's ("fc"). Each is found by itself when exactly one
                candidate exists (see `find_network`), else a ValueError lists the candidates.
                Keys of other modules (an embedding) are ignored; an unknown key inside the
                recurrent module is an error.
        cell:   None reads it off the shapes (gate rows ÷ H: 4 lstm, 3 gru, 1 Elman); an
                Elman RNN's tanh or relu is not in a state dict, so there it must be given.
        num_layers, bidirectional, bias and proj_size are read off the keys. The result is
        time-major (batch_first None): a state dict does not record the layout.
        """
        if cell is not None and cell not in CELL_NAMES:
            listed = ", ".join(repr(c) for c in CELL_NAMES)
            raise ValueError(f"cell: expected one of {listed} or None (read off the shapes), got {cell!r}")
        found = find_network(state, prefix=prefix, head=head)
        cell = found.cell() if cell is None else cell
        try:
            return cls(cell, found.state)
        except (ValueError, TypeError) as error:
            if found.bare:
                raise
            raise type(error)(f"{error} (the keys of {found.where()}, without the module's name)") from None

    @classmethod
    def from_torch(cls, rnn, head=None) -> "NetworkParams":
        """From a PyTorch recurrent module (nn.RNN, nn.LSTM, nn.GRU) and its nn.Linear head,
        or from a whole model: `from_torch(model)` finds the one recurrent module in it and the
        one nn.Linear that takes its D·H_out features, or raises a ValueError naming the candidates.

        Needs no import of torch: it reads `rnn.mode`, `rnn.batch_first`, `rnn.dropout` and the
        state dicts. The values are copied (to the CPU), so training on afterwards changes
        nothing here. The module's `batch_first` travels with the params: `bptt`, `torch_bptt`
        and `compare` take x and y in its layout unless `batch_first` is passed to them. A
        module with dropout > 0 is checked as its eval-mode function (dropout not applied):
        the params keep `dropout`, and `compare`'s report says so.
        """
        if head is None:
            if getattr(rnn, "mode", None) in MODE_CELLS:
                raise TypeError("head: expected an nn.Linear, got NoneType; pass the output layer, "
                                "from_torch(rnn, head), or the whole model, from_torch(model)")
            rnn, head = _modules_of(rnn)
        mode = getattr(rnn, "mode", None)
        cell = MODE_CELLS.get(mode)
        if cell is None:
            raise TypeError(f"rnn: expected an nn.RNN, nn.LSTM or nn.GRU, got {type(rnn).__name__}")
        if not callable(getattr(head, "state_dict", None)):
            raise TypeError(f"head: expected an nn.Linear, got {type(head).__name__}")
        state = {name: _on_cpu(value, f"rnn.{name}") for name, value in rnn.state_dict().items()}
        head_state = head.state_dict()
        for symbol, name in HEAD_SYMBOLS.items():
            key = name.split(".", 1)[1]
            if key not in head_state:
                raise ValueError(f"head: expected an nn.Linear with a {key} (the derivation's {symbol}), "
                                 f"got keys {sorted(head_state)}")
            state[name] = _on_cpu(head_state[key], f"head.{key}")
        return cls(cell, state, batch_first=bool(getattr(rnn, "batch_first", False)),
                   dropout=float(getattr(rnn, "dropout", 0.0)))

    @classmethod
    def from_rnn_params(cls, params, *, nonlinearity: str = "tanh") -> "NetworkParams":
        """The derivation's one-layer network as a NetworkParams: U, W, b, V, c become
        weight_ih_l0, weight_hh_l0, bias_ih_l0 (bias_hh_l0 = 0), head.weight, head.bias."""
        from .params import RNNParams

        if not isinstance(params, RNNParams):
            raise TypeError(f"params: expected an RNNParams, got {type(params).__name__}")
        if nonlinearity not in ELMAN_CELLS:
            listed = " or ".join(repr(phi) for phi in ELMAN_CELLS)
            raise ValueError(f"nonlinearity: expected {listed}, got {nonlinearity!r}")
        layer = {"U": params.U, "W": params.W, "b_ih": params.b, "b_hh": np.zeros_like(params.b)}
        head = {"V": params.V, "c": params.c}
        return cls(ELMAN_CELLS[nonlinearity], {**{torch_name(symbol, 0, 0): array for symbol, array in layer.items()},
                                               **{HEAD_SYMBOLS[symbol]: array for symbol, array in head.items()}})

    @classmethod
    def random(
        cls,
        *,
        cell: str = "rnn_tanh",
        input_size: int,
        hidden_size: int,
        output_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        bias: bool = True,
        proj_size: int = 0,
        rng=None,
        dtype=np.float64,
    ) -> "NetworkParams":
        """Parameters drawn as PyTorch initialises them: uniform on (-1/√H, 1/√H) for the
        recurrent layers, on (-1/√(D·H_out), 1/√(D·H_out)) for the head (nn.Linear's default).

        `rng` is a seed, a `np.random.Generator` or None. Values are drawn in float64
        in state-dict order and then cast, so one seed gives one network in both dtypes.
        """
        sizes = {"input_size": input_size, "hidden_size": hidden_size, "output_size": output_size,
                 "num_layers": num_layers}
        for name, size in sizes.items():
            check_count(name, size, minimum=1)
        check_count("proj_size", proj_size, minimum=0)
        for name, flag in (("bidirectional", bidirectional), ("bias", bias)):
            check_flag(name, flag)
        check_seed("rng", rng)
        if cell not in CELL_NAMES:
            listed = ", ".join(repr(c) for c in CELL_NAMES)
            raise ValueError(f"cell: expected one of {listed}, got {cell!r}")
        if proj_size and not CELL_FACTS[cell].projects:
            raise ValueError(f"proj_size: expected 0 for cell {cell!r} (only the LSTM projects), got {proj_size}")
        if proj_size >= hidden_size:
            raise ValueError(f"proj_size: expected 0 or less than hidden_size = {hidden_size}, got {proj_size}")
        dtype = as_float_dtype(dtype)
        G, H = len(GATES[cell]), hidden_size
        H_out = proj_size or H
        D = 2 if bidirectional else 1
        # An upper bound on the parameters (every layer charged for both input widths and a
        # projection), enough to refuse sizes that cannot fit before anything is drawn.
        per_layer = G * H * (input_size + D * H_out + H_out + 2) + H_out * H
        elements = num_layers * D * per_layer + output_size * (D * H_out + 1)
        check_fits_in_memory([("hidden_size", elements * 8 + elements * dtype.itemsize,
                               f"at most {elements} parameters (the network's sizes), drawn in float64")])
        generator = np.random.default_rng(rng)
        sizes_ = dict(G=G, H=H, H_out=H_out, I=input_size, D=D, O=output_size)
        state = {}
        for name in network_names(num_layers=num_layers, bidirectional=bidirectional, bias=bias, proj_size=proj_size):
            slot = slot_of(name)
            bound = 1.0 / np.sqrt(D * H_out if slot.layer is None else H)   # nn.Linear's fan-in, or 1/√H
            shape = _expected_shape(slot, **sizes_)
            state[name] = generator.uniform(-bound, bound, size=shape).astype(dtype)
        return cls(cell, state)


@dataclass
class NetworkGrads:
    """∂L/∂ every parameter (keyed like `NetworkParams`), ∂L/∂h0, ∂L/∂c0 (LSTM) and ∂L/∂x.

    params: {name: array}, each shaped like the parameter and of its dtype
    h0:     (L·D, B, H_out), or (L·D, H_out) unbatched (also when h0 was None: zeros)
    c0:     (L·D, B, H) for the LSTM, None for the other cells
    x:      shaped like x as given
    """

    params: dict[str, np.ndarray]
    h0: np.ndarray
    x: np.ndarray
    c0: np.ndarray | None = None

    def state_dict(self) -> dict[str, np.ndarray]:
        """{name: ∂L/∂parameter}, the keys of the parameters' state_dict."""
        return dict(self.params)

    def __getitem__(self, name: str) -> np.ndarray:
        return dict(self.items())[name]

    def items(self) -> Iterator[tuple[str, np.ndarray]]:
        """Every parameter's gradient in state-dict order, then h0, c0 (LSTM) and x."""
        yield from self.params.items()
        yield "h0", self.h0
        if self.c0 is not None:
            yield "c0", self.c0
        yield "x", self.x


def _as_param_array(name, value) -> np.ndarray:
    if not isinstance(name, str):
        raise TypeError(f"state: expected parameter names as str, got key {name!r}")
    if hasattr(value, "detach") and hasattr(value, "numpy"):       # a torch tensor or nn.Parameter
        if getattr(value, "requires_grad", False) is True:
            as_array(f"state[{name!r}]", value)    # RNNParams' own refusal: the graph would be cut silently
        device = getattr(value, "device", None)
        if getattr(device, "type", "cpu") != "cpu":
            raise TypeError(
                f"state[{name!r}]: expected a tensor on the CPU, got one on {device}; pass "
                "{name: value.cpu() for name, value in state.items()} (from_torch(model) moves them itself)"
            )
        try:
            value = value.detach().numpy().copy()
        except (TypeError, RuntimeError, NotImplementedError) as error:
            raise TypeError(
                f"state[{name!r}]: expected a float32 or float64 tensor with values on a device, got "
                f"{getattr(value, 'dtype', '?')} on {getattr(value, 'device', '?')} ({error})"
            ) from None
    # RNNParams' own check: np.matrix and masked arrays refused (a mask would be dropped), subclasses
    # that mean the same numbers (np.memmap) viewed as plain arrays, the rest through np.asarray.
    array = as_array(f"state[{name!r}]", value)
    if array.dtype not in SUPPORTED_DTYPES:
        note = ""
        if array.dtype.kind == "f" and array.dtype.newbyteorder("=") in SUPPORTED_DTYPES:
            note = " (non-native byte order: convert with array.astype(array.dtype.newbyteorder('=')))"
        raise TypeError(f"state[{name!r}]: expected a float32 or float64 array, got dtype {array.dtype}{note}")
    return array


def _check_keys(arrays: dict) -> tuple[str, ...]:
    """Every key known and none missing; returns the keys in PyTorch's order."""
    unknown = [name for name in arrays if slot_of(name) is None]
    if unknown:
        raise ValueError(
            f"state: unknown parameter names {unknown}; expected PyTorch's names "
            "(weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, ..._reverse, weight_hr_l0) "
            "and head.weight, head.bias"
        )
    if _U0 not in arrays or _V not in arrays:
        missing = [n for n in (_U0, _V) if n not in arrays]
        raise ValueError(f"state: missing parameters {missing}")
    slots = [slot_of(name) for name in arrays]
    layers = [s.layer for s in slots if s.layer is not None]
    expected = network_names(
        num_layers=1 + max(layers),
        bidirectional=any(s.direction == 1 for s in slots),
        bias=any(s.symbol in ("b_ih", "b_hh") for s in slots),
        proj_size=1 if any(s.symbol == "W_hr" for s in slots) else 0,
    )
    unexpected = [name for name in arrays if name not in expected]
    if unexpected:
        raise ValueError(f"state: unknown parameter names {unexpected}; the other keys imply {len(expected)} "
                         f"parameters with PyTorch's names, such as {expected[0]!r}")
    missing = [name for name in expected if name not in arrays]
    if missing:
        raise ValueError(f"state: missing parameters {missing} (the keys given imply {len(expected)} parameters)")
    return expected


def _check_dtypes(arrays: dict) -> None:
    dtypes = {a.dtype for a in arrays.values()}
    if len(dtypes) > 1:
        first = next(iter(arrays.values())).dtype
        odd = [f"{name} {a.dtype}" for name, a in arrays.items() if a.dtype != first]
        listed = f"{first} for {len(arrays) - len(odd)} of them, but " + ", ".join(odd)
        raise TypeError(f"state: expected one dtype for every parameter, got {listed}")


def _expected_shape(slot, *, G: int, H: int, H_out: int, I: int, D: int, O: int) -> tuple:
    """The shape of the parameter at `slot` (names.py's table)."""
    return {
        "U": (G * H, I if slot.layer == 0 else D * H_out),
        "W": (G * H, H_out),
        "b_ih": (G * H,),
        "b_hh": (G * H,),
        "W_hr": (H_out, H),
        "V": (O, D * H_out),
        "c": (O,),
    }[slot.symbol]


def _check_shapes(p: NetworkParams) -> None:
    """Every shape must follow from I (weight_ih_l0), G·H and H_out (weight_hh_l0), O (head.weight)."""
    for name, array in p.items():
        ndim = 2 if slot_of(name).symbol in ("U", "W", "W_hr", "V") else 1
        if array.ndim != ndim:
            raise ValueError(f"state[{name!r}]: expected a {ndim}-d array, got shape {array.shape}")
    W0 = p.arrays[_W0]
    G = p.gates
    if W0.shape[0] % G or W0.shape[0] == 0:
        raise ValueError(
            f"state['weight_hh_l0']: expected {G}·H rows for cell {p.cell!r} (gates {', '.join(GATES[p.cell])}), "
            f"got shape {W0.shape}"
        )
    I, H, H_out, D, O = p.input_size, p.hidden_size, W0.shape[1], p.num_directions, p.output_size
    if p.proj_size and not CELL_FACTS[p.cell].projects:
        raise ValueError(f"state: weight_hr_l* (proj_size) exists only for cell 'lstm', got cell {p.cell!r}")
    if p.proj_size and not p.proj_size < H:
        raise ValueError(f"state['weight_hr_l0']: expected proj_size < hidden_size = {H}, got proj_size {p.proj_size}")
    if (p.proj_size or H) != H_out:
        raise ValueError(
            f"state['weight_hh_l0']: expected {G * H} x {p.proj_size or H} (G·H x H_out), got shape {W0.shape}"
        )
    for name, array in p.items():
        expected = _expected_shape(slot_of(name), G=G, H=H, H_out=H_out, I=I, D=D, O=O)
        if array.shape != expected:
            raise ValueError(
                f"state[{name!r}]: expected shape {expected} (I={I}, H={H}, H_out={H_out}, D={D}, O={O}, "
                f"G={G} for cell {p.cell!r}), got {array.shape}"
            )
        if array.size == 0:
            raise ValueError(f"state[{name!r}]: expected a non-empty array, got shape {array.shape}")


def _check_dropout(dropout) -> None:
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float, np.integer, np.floating)) \
            or not 0 <= dropout <= 1:
        raise ValueError(f"dropout: expected a number in [0, 1] (the module's dropout between layers), got {dropout!r}")


def _on_cpu(value, name: str):
    """A module's tensor moved to the CPU (a copy is made later); anything else as it is. A
    tensor with no data to copy (the "meta" device) is a TypeError naming it."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        if getattr(getattr(value, "device", None), "type", None) == "meta":
            raise TypeError(f"{name}: expected a tensor with data, got one on the meta device "
                            "(move the module to a real device first)")
        return value.detach().cpu()
    return value


# ---- Finding the network in a whole model ------------------------------------------------

#: The family a cell's gate rows ÷ hidden size say (an Elman RNN's φ is not in its shapes).
FAMILY_OF_GATES = {4: "lstm", 3: "gru", 1: "elman"}


@dataclass(frozen=True)
class FoundNetwork:
    """Where a network sits in a model's state dict, and what its shapes say.

    prefix: the recurrent module's name ("" when the keys are PyTorch's bare names)
    head:   the output nn.Linear's name
    state:  {bare name or head.weight / head.bias: the value as given}, ready for NetworkParams
    family: "lstm", "gru" or "elman", read off the shapes (None when they say none of these)
    """

    prefix: str
    head: str
    state: dict = field(repr=False)
    family: str | None

    @property
    def bare(self) -> bool:
        """Whether the state dict already had NetworkParams' own keys (nothing renamed)."""
        return self.prefix == "" and self.head == "head"

    def where(self) -> str:
        return f"the recurrent module {self.prefix!r} and the head {self.head!r}"

    def cell(self) -> str:
        """The cell the shapes say, or a ValueError where they cannot say it."""
        if self.family == "elman":
            shape = _shape(self.state[_W0])
            raise ValueError(
                f"cell: the state dict holds an Elman RNN (weight_hh_l0 of shape {shape}: one gate block), "
                "whose tanh or relu a state dict does not record; expected cell='rnn_tanh' or cell='rnn_relu'"
            )
        if self.family is None:
            shape = _shape(self.state.get(_W0))
            raise ValueError(
                f"cell: cannot be read off the shapes: weight_hh_l0 of {self.prefix!r} has shape {shape}, "
                "expected 4·H rows (lstm), 3·H (gru) or H (an Elman RNN); pass cell="
            )
        return self.family


def find_network(state: Mapping, *, prefix: str | None = None, head: str | None = None) -> FoundNetwork:
    """The recurrent module and the output layer in a (whole model's) state dict.

    Recurrent modules: those with a key `weight_ih_l0`. Heads: modules with exactly the keys
    weight (2-d) and bias (1-d, one per row) whose weight takes the recurrent module's
    D·H_out features. `prefix` / `head` name them; None finds each when exactly one
    candidate exists, else a ValueError lists the candidates. Nothing is converted here.
    """
    if not isinstance(state, Mapping):
        raise TypeError(f"state: expected a mapping of parameter names to arrays, got {type(state).__name__}")
    for key in state:
        if not isinstance(key, str):
            raise TypeError(f"state: expected parameter names as str, got key {key!r}")
    modules = _recurrent_modules(state)
    prefix = _chosen("prefix", prefix, modules, what="recurrent module (nn.RNN, nn.LSTM or nn.GRU)",
                     key=_U0, state=state)
    inside = {key[len(prefix) + 1:] if prefix else key: value for key, value in state.items()
              if (key.startswith(prefix + ".") if prefix else "." not in key)}
    features = _recurrent_features(inside)
    head = _head(state, prefix, head, features)
    bare = dict(inside)
    for name in HEAD_SYMBOLS.values():
        key = f"{head}.{name.split('.', 1)[1]}"
        if key in state:
            bare[name] = state[key]
    return FoundNetwork(prefix=prefix, head=head, state=bare, family=_family(inside))


def _shape(value) -> tuple | None:
    if value is None:                                               # a key that is absent
        return None
    try:
        return tuple(np.shape(value))
    except (TypeError, ValueError):
        return None


def _names(names) -> str:
    return ", ".join(repr(n) for n in names) if names else "none"


def _recurrent_modules(state: Mapping) -> list[str]:
    """The names of the modules with a weight_ih_l0 ("" for bare keys), in the state dict's order."""
    return [key.rpartition(".")[0] for key in state if key.rpartition(".")[2] == _U0]


def _chosen(argument: str, given, candidates: list[str], *, what: str, key: str, state: Mapping) -> str:
    """`given` checked against the candidates, or the one candidate; a ValueError otherwise."""
    if given is not None:
        if not isinstance(given, str):
            raise TypeError(f"{argument}: expected a module name as str, got {type(given).__name__}")
        name = given[:-1] if given.endswith(".") else given
        if name not in candidates:
            raise ValueError(f"{argument}: no {what} named {given!r} in the state dict (no key "
                             f"{(name + '.') if name else ''}{key}); the candidates: {_names(candidates)}")
        return name
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise ValueError(f"state: no {what} in the state dict: expected keys such as 'weight_ih_l0' or "
                         f"'lstm.weight_ih_l0' (PyTorch's names), got keys {list(state)[:8]}")
    raise ValueError(f"{argument}: {len(candidates)} candidates in the state dict, each a {what}: "
                     f"{_names(candidates)}; expected one, or {argument}= naming the one to check")


def _recurrent_features(inside: dict) -> int | None:
    """D·H_out, the width of the recurrent module's output (None when its shapes do not say)."""
    W = _shape(inside.get(_W0))
    if W is None or len(W) != 2:
        return None
    return (2 if _U0_REVERSE in inside else 1) * W[1]


def _family(inside: dict) -> str | None:
    """lstm, gru or elman from the gate rows ÷ H of weight_hh_l0 (H from weight_hr_l0 when it projects)."""
    W, W_hr = _shape(inside.get(_W0)), _shape(inside.get(_W_HR0))
    if W is None or len(W) != 2:
        return None
    H = W_hr[1] if W_hr is not None and len(W_hr) == 2 else W[1]
    if H == 0 or W[0] % H:
        return None
    family = FAMILY_OF_GATES.get(W[0] // H)
    return family if W_hr is None or family == "lstm" else None


def _linear_layers(state: Mapping, prefix: str) -> dict[str, tuple]:
    """{name: weight shape} of the modules outside the recurrent one that hold exactly an
    nn.Linear's weight (2-d) and bias (1-d, one per row)."""
    by_module: dict[str, dict] = {}
    for key, value in state.items():
        module, _, leaf = key.rpartition(".")
        inside = module == prefix or (prefix and module.startswith(prefix + "."))
        if module and not inside:
            by_module.setdefault(module, {})[leaf] = _shape(value)
    return {module: leaves["weight"] for module, leaves in by_module.items()
            if set(leaves) == {"weight", "bias"} and leaves["weight"] is not None and len(leaves["weight"]) == 2
            and leaves["bias"] == leaves["weight"][:1]}


def _head(state: Mapping, prefix: str, head, features: int | None) -> str:
    """The name of the output layer: `head` checked, or the one nn.Linear taking `features`."""
    if head is not None:
        if not isinstance(head, str):
            raise TypeError(f"head: expected a module name as str, got {type(head).__name__}")
        name = head[:-1] if head.endswith(".") else head
        if f"{name}.weight" not in state:
            layers = _linear_layers(state, prefix)
            raise ValueError(f"head: no key {name}.weight in the state dict; the modules shaped like an "
                             f"nn.Linear: {_names(layers)}")
        if f"{name}.bias" not in state:
            raise ValueError(f"head: {name!r} has a weight but no bias; expected an nn.Linear with bias=True "
                             "(the derivation's c), as head.weight and head.bias")
        return name
    layers = _linear_layers(state, prefix)
    fitting = [name for name, shape in layers.items() if features is None or shape[1] == features]
    if len(fitting) == 1:
        return fitting[0]
    width = "its" if features is None else f"its D·H_out = {features}"
    if not fitting:
        seen = "; ".join(f"{name!r} takes {shape[1]}" for name, shape in layers.items()) or "none"
        raise ValueError(f"head: no output layer in the state dict: expected the weight and bias of an nn.Linear "
                         f"taking {width} features from {prefix or 'the recurrent module'!r} (such as head.weight "
                         f"and head.bias); the nn.Linear layers found: {seen}")
    raise ValueError(f"head: {len(fitting)} nn.Linear layers take {width} features: {_names(fitting)}; "
                     "expected one, or head= naming the output layer")


def _modules_of(model) -> tuple:
    """The one recurrent module of `model` and the one nn.Linear taking its output, by their names."""
    if not callable(getattr(model, "named_modules", None)):
        raise TypeError(f"model: expected an nn.Module holding an nn.RNN, nn.LSTM or nn.GRU and an nn.Linear "
                        f"(or from_torch(rnn, head)), got {type(model).__name__}")
    named = list(model.named_modules())
    recurrent = [(name, m) for name, m in named if getattr(m, "mode", None) in MODE_CELLS]
    if len(recurrent) != 1:
        found = _names([name for name, _ in recurrent])
        raise ValueError(f"model: expected one nn.RNN, nn.LSTM or nn.GRU in {type(model).__name__}, found "
                         f"{len(recurrent)}: {found}; pass from_torch(rnn, head) with the one to check")
    name, rnn = recurrent[0]
    features = (2 if getattr(rnn, "bidirectional", False) else 1) * (getattr(rnn, "proj_size", 0)
                                                                        or getattr(rnn, "hidden_size", 0))
    linear = [(n, m) for n, m in named if hasattr(m, "in_features") and hasattr(m, "out_features")]
    fitting = [(n, m) for n, m in linear if m.in_features == features]
    if len(fitting) != 1:
        seen = _names([n for n, _ in fitting]) if fitting else \
            ("; ".join(f"{n!r} takes {m.in_features}" for n, m in linear) or "none")
        raise ValueError(f"model: expected one nn.Linear taking the {features} features of {name!r}, found "
                         f"{len(fitting)}: {seen}; pass from_torch(model.{name}, head) with the output layer")
    return rnn, fitting[0][1]
