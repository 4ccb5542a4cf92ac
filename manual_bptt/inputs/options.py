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
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, fields, replace

from ..model.network_params import NetworkParams
from ..model.params import RNNParams

#: The keywords only a NetworkParams can use, and the one only an RNNParams can.
NETWORK_ONLY = ("lengths", "target", "truncate")
RNN_ONLY = ("nonlinearity",)


@dataclass(frozen=True)
class Options:
    """The keywords of a problem (see the module docstring); `given` names those passed explicitly."""

    nonlinearity: str = "tanh"
    loss: str = "cross_entropy"
    reduction: str = "sum"
    batch_first: bool = False
    lengths: object = None
    target: str = "each_step"
    truncate: int | None = None
    given: frozenset = field(default=frozenset(), repr=False, compare=False)

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
                        f"(cell='rnn_tanh' or 'rnn_relu'); got {name}={keywords[name]!r}"
                    )
                raise ValueError(
                    f"{name}: an option of networks; expected params to be a NetworkParams, got an RNNParams "
                    f"with {name}={keywords[name]!r} (NetworkParams.from_rnn_params(params, nonlinearity=...) converts it)"
                )
        return cls(**keywords, given=frozenset(keywords))

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

    def rnn_keywords(self) -> dict:
        """The keywords of the single-layer Elman `bptt`."""
        return dict(nonlinearity=self.nonlinearity, loss=self.loss, reduction=self.reduction,
                    batch_first=self.batch_first)

    def network_keywords(self) -> dict:
        """The keywords of a network's `bptt`."""
        return dict(lengths=self.lengths, target=self.target, truncate=self.truncate, loss=self.loss,
                    reduction=self.reduction, batch_first=self.batch_first)


#: The keywords, read once: every call of bptt parses its keywords against them.
_NAMES = tuple(f.name for f in fields(Options) if f.name != "given")


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
