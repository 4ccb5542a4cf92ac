"""Checks of a network problem's arguments, done before any computation.

The same rules as validation.py (messages start with the argument's name, say what
was expected and what was got; nothing is cast or broadcast; the caller's arrays
are never written), plus the network's own: h0 as (L·D, B, H_out), an LSTM's
(h0, c0) pair, lengths in [1, T], the target and truncation options.
`check_network_problem` returns the arrays time-major and batched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model.network_params import NetworkParams
from ..model.names import CELL_FACTS, torch_name
from .options import TARGETS, Options
from .validation import CallerLayout, Sizes, check_arrays, check_finite, check_options

__all__ = ["TARGETS", "NetworkProblem", "check_network_problem"]


@dataclass
class NetworkProblem(CallerLayout):
    """The validated inputs of one network pass, time-major and batched.

    x:       (T, B, I)
    y:       each_step: (T, B) labels or (T, B, O) targets; last: (B,) or (B, O); None for a forward pass
    state0:  per layer and direction, a tuple like the cell's state ((h0,) or (h0, c0)) of (B, ·)
             arrays, index l·D + d; None entries mean zeros
    lengths: (B,) int64 or None; mask: (T, B, 1) bool, True on real steps, or None
    """

    params: NetworkParams
    x: np.ndarray
    y: np.ndarray | None
    state0: list
    lengths: np.ndarray | None
    mask: np.ndarray | None
    target: str
    truncate: int | None
    loss: str
    reduction: str
    batched: bool
    batch_first: bool

    def initial_state(self, index: int) -> tuple:
        """The initial state of layer·D + direction `index`: (B, ·) arrays, zeros where h0 was None."""
        sizes = (self.params.output_hidden_size, self.params.hidden_size)
        return tuple(np.zeros((self.B, sizes[i]), dtype=self.params.dtype) if state is None else state
                     for i, state in enumerate(self.state0[index]))

    def state_to_caller_layout(self, stacked: np.ndarray) -> np.ndarray:
        """(L·D, B, ·) as the caller's h0: (L·D, ·) when unbatched."""
        return stacked if self.batched else stacked[:, 0]


def check_network_problem(params, x, y, h0, options: Options, *, need_y: bool = True) -> NetworkProblem:
    """Validate every argument of the network `bptt`; return them time-major and batched."""
    batch_first = check_options(options)
    if not isinstance(params, NetworkParams):
        raise TypeError(
            f"params: expected a NetworkParams, got {type(params).__name__}; build one with "
            "NetworkParams.random(...), NetworkParams.from_state_dict(state, cell=...) or NetworkParams.from_torch(rnn, head)"
        )
    _check_truncate(options.truncate, params)
    for name, array in params.items():
        check_finite(f"[{name!r}]", array, prefix="params")
    L, D = params.num_layers, params.num_directions
    sizes = Sizes(dtype=params.dtype, input_size=params.input_size, output_size=params.output_size, gates=params.gates,
                  hidden_size=params.hidden_size, states=_state_sizes(params), stacked=(L, D),
                  source=torch_name("U", 0, 0), cell=params.cell)
    x_tb, y_tb, states, lengths, mask, batched = check_arrays(sizes, x, y, h0, options, batch_first, need_y=need_y)
    names = [name for name, _ in sizes.states]
    state0 = ([tuple(None for _ in names)] * (L * D) if states is None
              else [tuple(states[name][i] for name in names) for i in range(L * D)])
    return NetworkProblem(
        params=params, x=x_tb, y=y_tb, state0=state0, lengths=lengths, mask=mask, target=options.target,
        truncate=options.truncate, loss=options.loss, reduction=options.reduction, batched=batched, batch_first=batch_first,
    )


def _state_sizes(params: NetworkParams) -> tuple:
    """The cell's initial states as arguments with their sizes: h0 (H_out), and c0 (H) where the cell has c."""
    sizes = {"h": params.output_hidden_size, "c": params.hidden_size}
    return tuple((f"{state}0", sizes[state]) for state in CELL_FACTS[params.cell].states)


def _check_truncate(truncate, params: NetworkParams) -> None:
    if truncate is None:
        return
    if isinstance(truncate, bool) or not isinstance(truncate, (int, np.integer)):
        raise TypeError(f"truncate: expected None or a positive int (steps per chunk), got {truncate!r}")
    if truncate < 1:
        raise ValueError(f"truncate: expected None or a positive int (steps per chunk), got {truncate}")
    if params.bidirectional:
        raise ValueError(
            f"truncate: expected None for a bidirectional network (the reverse direction has no chunks), got {truncate}"
        )
