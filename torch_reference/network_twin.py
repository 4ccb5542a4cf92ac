"""The network twin: nn.RNN / nn.LSTM / nn.GRU + nn.Linear from a NetworkParams, and autograd.

The twin uses PyTorch's own idioms for every option, so what is tested is PyTorch's
behaviour, not a copy of the manual code's:

- lengths: `pack_padded_sequence(..., enforce_sorted=False)` in, `pad_packed_sequence` out;
- target "last": `head(cat(h_n[-2], h_n[-1]))` (or `head(h_n[-1])` with one direction);
- truncate=k: the module runs chunk by chunk on `state.detach()`; a sequence that has
  ended keeps its final state (chunks after its end run without it).
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from manual_bptt import NetworkGrads, NetworkParams
from manual_bptt.model.names import CELL_FACTS, HEAD_SYMBOLS
from manual_bptt.fast.network import check_finite_network_result
from manual_bptt.inputs.network_validation import NetworkProblem, check_network_problem
from manual_bptt.inputs.options import Options

_MODULES = {"rnn_tanh": nn.RNN, "rnn_relu": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
_TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


def tensor_copy(array: np.ndarray) -> torch.Tensor:
    """A tensor that owns a C-contiguous copy of `array`: any strides (negative
    ones too) and read-only arrays are fine, and torch never shares the caller's memory."""
    return torch.from_numpy(np.array(array, order="C", copy=True))


def with_autograd() -> contextlib.ExitStack:
    """A context in which autograd records, whatever the caller's mode: it lifts
    torch.inference_mode() and torch.no_grad() inside it, and restores both on exit."""
    stack = contextlib.ExitStack()
    stack.enter_context(torch.inference_mode(False))
    stack.enter_context(torch.enable_grad())
    return stack


def torch_dtype(dtype) -> torch.dtype:
    return _TORCH_DTYPES[np.dtype(dtype)]


def build_network(params: NetworkParams, *, batch_first: bool = False) -> tuple[nn.Module, nn.Linear]:
    """(rnn, head) holding copies of params; built on the meta device, so no global RNG draw."""
    options = dict(
        input_size=params.input_size, hidden_size=params.hidden_size, num_layers=params.num_layers,
        bias=params.bias, batch_first=batch_first, bidirectional=params.bidirectional,
        dtype=torch_dtype(params.dtype), device="meta",
    )
    nonlinearity = CELL_FACTS[params.cell].nonlinearity                # an Elman cell's φ; None for a gated cell
    if nonlinearity is not None:
        options["nonlinearity"] = nonlinearity
    if params.proj_size:
        options["proj_size"] = params.proj_size
    rnn = _MODULES[params.cell](**options).to_empty(device="cpu")
    head = nn.Linear(params.num_directions * params.output_hidden_size, params.output_size,
                     dtype=torch_dtype(params.dtype), device="meta").to_empty(device="cpu")
    with torch.no_grad():
        for name, tensor in rnn.named_parameters():
            tensor.copy_(tensor_copy(params[name]))       # a copy: read-only arrays are fine
        head.weight.copy_(tensor_copy(params[HEAD_SYMBOLS["V"]]))
        head.bias.copy_(tensor_copy(params[HEAD_SYMBOLS["c"]]))
    return rnn, head


def network_torch_bptt(params, x, y, h0, options: Options) -> tuple[float, NetworkGrads]:
    """The network `bptt`'s result by torch.autograd on the twin (`torch_bptt` calls this)."""
    problem = check_network_problem(params, x, y, h0, options)
    with with_autograd(), warnings.catch_warnings():
        # PyTorch's notice that nn.LSTM(proj_size>0) runs on its default kernels: nothing to act on.
        warnings.filterwarnings("ignore", message="LSTM with projections is not supported with oneDNN")
        L, grads = network_autograd(problem)
    check_finite_network_result(problem, L, grads, computed_by="torch.autograd")
    return L, grads


def network_autograd(problem: NetworkProblem) -> tuple[float, NetworkGrads]:
    """L and every gradient by torch.autograd on the twin, from a checked problem, inside
    `with_autograd()`. The one autograd witness: the one-layer RNN's runs here too."""
    p = problem.params
    chunked = problem.truncate is not None
    rnn, head = build_network(p, batch_first=problem.batch_first and not chunked)
    x_t = tensor_copy(problem.to_caller_layout(problem.x)).requires_grad_()   # a copy, any strides
    states = _initial_states(problem)
    if chunked:
        out, h_n = _run_chunks(rnn, problem, x_t, states)
    else:
        out, h_n = _run_whole(rnn, problem, x_t, states)

    if problem.target == "each_step":
        o = head(out)
        L = _loss(problem, o, per_step=True)
    else:
        D = p.num_directions
        top = torch.cat([h_n[-D + d] for d in range(D)], dim=-1)          # head(cat(h_n[-2], h_n[-1]))
        L = _loss(problem, head(top), per_step=False)
    L.backward()

    def numpy(t: torch.Tensor | None, like: np.ndarray) -> np.ndarray:
        return np.zeros_like(like) if t is None else t.detach().numpy()

    grads = {name: numpy(t.grad, p[name]) for name, t in rnn.named_parameters()}
    grads[HEAD_SYMBOLS["V"]] = head.weight.grad.numpy()
    grads[HEAD_SYMBOLS["c"]] = head.bias.grad.numpy()
    return float(L.detach()), NetworkGrads(
        params={name: grads[name] for name in p.keys()},
        h0=states[0].grad.numpy(),
        c0=states[1].grad.numpy() if len(states) > 1 else None,
        x=x_t.grad.numpy(),
    )


def _initial_states(problem: NetworkProblem) -> tuple[torch.Tensor, ...]:
    """h0 (and c0) as leaf tensors in torch's layout (L·D, B, ·) / (L·D, ·); zeros when None."""
    p = problem.params
    size_of = {"h": p.output_hidden_size, "c": p.hidden_size}
    sizes = [size_of[state] for state in CELL_FACTS[p.cell].states]     # h0, and an LSTM's c0
    tensors = []
    for i in range(len(sizes)):
        stacked = np.stack([problem.initial_state(index)[i] for index in range(len(problem.state0))])
        tensors.append(tensor_copy(problem.state_to_caller_layout(stacked)).requires_grad_())
    return tuple(tensors)


def _module_state(states):
    return states if len(states) > 1 else states[0]


def _as_tuple(state) -> tuple:
    return tuple(state) if isinstance(state, tuple) else (state,)


def _run_whole(rnn, problem: NetworkProblem, x_t, states):
    """The caller's layout as it is; lengths through a packed sequence."""
    if problem.lengths is None:
        out, h_n = rnn(x_t, _module_state(states))
    else:
        packed = pack_padded_sequence(x_t, torch.from_numpy(problem.lengths), batch_first=problem.batch_first,
                                      enforce_sorted=False)
        out, h_n = rnn(packed, _module_state(states))
        out, _ = pad_packed_sequence(out, batch_first=problem.batch_first, total_length=problem.T)
    return out, _as_tuple(h_n)[0]


def _run_chunks(rnn, problem: NetworkProblem, x_t, states):
    """Truncated BPTT: chunks of k steps, each entered with the state detached.

    Time-major inside (the module is built with batch_first=False); the outputs are
    returned in the caller's layout. With lengths, a chunk runs only the sequences
    that reach it, packed with their lengths within the chunk.
    """
    k, T, B = problem.truncate, problem.T, problem.B
    x_tb = x_t if not problem.batched else (x_t.transpose(0, 1) if problem.batch_first else x_t)
    if not problem.batched:
        x_tb = x_tb.unsqueeze(1)
        states = tuple(s.unsqueeze(1) for s in states)
    # On the CPU by name, like every tensor here: torch.full and torch.as_tensor would follow
    # the caller's torch.set_default_device (the twin and its inputs live on the CPU).
    lengths = torch.full((B,), T, device="cpu") if problem.lengths is None else torch.from_numpy(problem.lengths)
    final = states
    outputs = []
    for start in range(0, T, k):
        stop = min(start + k, T)
        active = torch.nonzero(lengths > start).reshape(-1)
        entering = tuple((s if start == 0 else s.detach()).index_select(1, active) for s in final)
        chunk = x_tb[start:stop].index_select(1, active)
        within = (lengths.index_select(0, active) - start).clamp(max=stop - start)
        if bool((within == stop - start).all()):
            out, h_n = rnn(chunk, _module_state(entering))
        else:
            packed = pack_padded_sequence(chunk, within, enforce_sorted=False)
            out, h_n = rnn(packed, _module_state(entering))
            out, _ = pad_packed_sequence(out, total_length=stop - start)
        full = out.new_zeros((stop - start, B, out.shape[-1])).index_copy(1, active, out)
        outputs.append(full)
        final = tuple(f.index_copy(1, active, h) for f, h in zip(final, _as_tuple(h_n)))
    out = torch.cat(outputs, dim=0)
    h_n = final[0]
    if not problem.batched:
        return out[:, 0], h_n[:, 0]
    return (out.transpose(0, 1) if problem.batch_first else out), h_n


def _loss(problem: NetworkProblem, o: torch.Tensor, *, per_step: bool) -> torch.Tensor:
    """L with torch's reductions; with lengths, only the real steps are scored."""
    # The checked labels (native intp) or targets, back in the caller's layout.
    if per_step:
        y = problem.to_caller_layout(problem.y)
    else:
        y = problem.y if problem.batched else problem.y[0]
    target = tensor_copy(y).long() if problem.loss == "cross_entropy" else tensor_copy(y)
    if per_step:
        if problem.mask is not None:
            real = torch.from_numpy(problem.mask[..., 0])                  # (T, B), on the CPU
            real = real.T if problem.batch_first else real
            o, target = o[real], target[real]
        else:
            o = o.reshape(-1, o.shape[-1])
            target = target.reshape(-1) if problem.loss == "cross_entropy" else target.reshape(o.shape)
    if problem.loss == "cross_entropy":
        return F.cross_entropy(o, target, reduction=problem.reduction)
    return 0.5 * F.mse_loss(o, target, reduction=problem.reduction)
