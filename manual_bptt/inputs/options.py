"""The keywords of every public function, in one place, validated once.

Every function that takes a problem, `bptt(params, x, y, h0=None, **options)` and its
relatives (`torch_bptt`, `compare`, the derivation's functions), takes the same
keywords. They are the fields of `Options`, with their defaults:

    nonlinearity  "tanh" | "relu"              the Elman RNN's φ (RNNParams only: a network's cell says it)
    loss          "cross_entropy" | "mse"      L(t) = -log softmax(o(t))[y(t)]  or  ½‖o(t) - y(t)‖²
    reduction     "sum" | "mean"               "mean" divides by the number of labels (elements for MSE)
    batch_first   False | True                 x and y as (B, T, ...); never h0 (default: the module's
                                               layout for NetworkParams.from_torch, else False)
    lengths       None | (B,) ints in [1, T]   padded batches (NetworkParams only)
    target        "each_step" | "last"         a label per step, or per sequence (NetworkParams only)
    truncate      None | k ≥ 1                 truncated BPTT in chunks of k steps (NetworkParams only)

`Options.parse` turns a function's keyword arguments into one frozen Options and
rejects a misspelt keyword, or one the kind of params cannot use, naming it; the
values themselves are checked with the arrays, in validation.py and
network_validation.py. `takes_options` gives such a function a signature that
lists every keyword, for help() and editors.

The allowed values of every option are the tuples below, and nowhere else: the
validation, the command line's choices, the sweep's and the strategies' draws and
the kit's pinned options read them. So do the values of a random problem's recipe
that are no keyword of bptt (CELLS, LAYOUTS, LENGTH_KINDS, DTYPES).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, fields, replace

from ..model.names import CELL_NAMES, ELMAN_CELLS
from ..model.network_params import NetworkParams
from ..model.params import RNNParams

#: φ of the one-layer Elman RNN: the nonlinearities of nn.RNN's cells (names.py).
NONLINEARITIES = tuple(ELMAN_CELLS)
LOSSES = ("cross_entropy", "mse")
REDUCTIONS = ("sum", "mean")
#: A label per step, or one per sequence read off the final state.
TARGETS = ("each_step", "last")
#: A network's cell: PyTorch's mode names (names.py).
CELLS = CELL_NAMES
#: How x and y are laid out: (T, B, ·), (B, T, ·) (batch_first=True), or (T, ·) without a batch.
LAYOUTS = ("time_major", "batch_first", "unbatched")
#: The lengths of a random network problem: none given, every length T, each drawn in [1, T], every length 1.
LENGTH_KINDS = ("none", "full", "random", "one")
#: The parameters' dtypes, by name.
DTYPES = ("float64", "float32")

#: The keywords only a NetworkParams can use, and the one only an RNNParams can.
NETWORK_ONLY = ("lengths", "target", "truncate")
RNN_ONLY = ("nonlinearity",)


@dataclass(frozen=True)
class Options:
    """The keywords of a problem (see the module docstring)."""

    nonlinearity: str = "tanh"
    loss: str = "cross_entropy"
    reduction: str = "sum"
    batch_first: bool = False
    lengths: object = None
    target: str = "each_step"
    truncate: int | None = None

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return _NAMES

    @classmethod
    def parse(cls, function: str, keywords: dict, *, network: bool) -> "Options":
        """Options from `function`'s keyword arguments, for a NetworkParams or an RNNParams."""
        names = cls.names()
        for name in keywords:
            if name not in names:
                raise TypeError(
                    f"{function}() got an unexpected keyword argument {name!r}; "
                    f"expected one of {', '.join(names)}"
                )
        for name in NETWORK_ONLY if not network else RNN_ONLY:
            if name in keywords:
                if network:
                    raise ValueError(
                        f"{name}: not an option for a NetworkParams, whose cell says it "
                        f"(cell={' or '.join(map(repr, ELMAN_CELLS.values()))}); got {name}={keywords[name]!r}"
                    )
                raise ValueError(
                    f"{name}: an option of networks; expected params to be a NetworkParams, got an RNNParams "
                    f"with {name}={keywords[name]!r} (NetworkParams.from_rnn_params(params, nonlinearity=...) converts it)"
                )
        return cls(**keywords)

    @classmethod
    def for_params(cls, function: str, params, keywords: dict) -> tuple[bool, "Options"]:
        """(is it a network?, the Options) for a function that takes either kind of params."""
        if not isinstance(params, (RNNParams, NetworkParams)):
            raise TypeError(
                f"params: expected an RNNParams or a NetworkParams, got {type(params).__name__}; build one with "
                "RNNParams.random(...) or NetworkParams.random(...) (or RNNParams(U=..., ...), "
                "NetworkParams.from_state_dict(state, cell=...))"
            )
        network = isinstance(params, NetworkParams)
        options = cls.parse(function, keywords, network=network)
        if network and params.batch_first is not None and "batch_first" not in keywords:
            # The layout of the module the params came from (NetworkParams.from_torch).
            options = replace(options, batch_first=params.batch_first)
        return network, options


#: The keywords, read once: every call of bptt parses its keywords against them.
_NAMES = tuple(f.name for f in fields(Options))


def takes_options(function):
    """Give `function(params, x, y, h0=None, **options)` a signature listing every option.

    Only what help(), editors and `inspect.signature` show changes; the function
    parses its `**options` itself with `Options.parse`.
    """
    signature = inspect.signature(function)
    kept = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    defaults = Options()
    listed = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=getattr(defaults, name))
        for name in Options.names()
    ]
    function.__signature__ = signature.replace(parameters=kept + listed)
    return function
