"""How many digits do the gradients you train with keep? The precision audit.

    report = audit(params, x, y, h0=None, **options)     # bptt's arguments and options
    print(report)                                        # a row per path and gradient
    report.worse()                                       # the rows worse than their rounding

The manual float64 gradients (`manual_bptt.bptt` on the float64 copy of the problem)
are the reference. Each precision path runs the whole model, recurrent module, head
and loss, as a user would in that precision, and each of its gradients gets two
numbers (named as `NetworkParams` names them: weight_ih_l0, …, head.weight, head.bias):

    relative_error   max|g − g64| / max|g64|         what the path got
    predicted_error  rms|g' − g| / max|g64|          what rounding alone predicts

The prediction is a small experiment in stochastic arithmetic, the one
manual_bptt/verification/conditioning.py runs in float64: the manual pass is run
again with every input (weights, x, h0, float targets) multiplied by 1 + δ, |δ| ≤ u,
u the unit roundoff of the path's precision, and rms|g' − g| is the root mean square
over `runs` such runs of the change max|g' − g| of the gradient. Rounding inside a computation perturbs its
intermediate values by about u too, and the same Jacobian products ∂h(t)/∂h(k)
amplify both; so the spread is the error any computation in that precision should
expect on this problem. float64 runs the manual pass in float64, perturbed by one
float64 ulp. float32 runs it twice over, the larger spread counting: in float32
(perturbations reshuffle the roundings of its own long sums, the error a float32
computation makes besides what the Jacobians amplify) and in float64 on the
float32-rounded problem (where a value insensitive to its inputs would absorb a
perturbation of one float32 ulp, and the float32 spread say 0). The lower precisions
are emulated in float32 (NumPy has no bfloat16): the pass runs on weights and inputs
rounded to that format (what autocast's casts do), perturbed by that format's u (2⁻⁸
for bfloat16, 2⁻¹¹ for float16 and TF32).

A path whose relative error exceeds FLAG_FACTOR times its prediction (and, in float32
and float64, FLAG_FACTOR times FLOOR_ULPS units of roundoff) is flagged "worse than its
rounding": it loses more than rounding the inputs to its format explains. (The floor
covers what a spread of one ulp cannot see: the rounding of a value no input
perturbation moves, in a gradient that cancels.)

Cost: per precision, 2 · `runs` manual passes (8 by default; 16 for float32, run twice),
plus one pass per path: about 40 manual passes and 5 torch passes for the CPU paths. Limits: the
spread of a few runs is a sample, not a bound; the emulation models a format's
rounding, not its range (float16 overflows above 65504 and flushes below 6e-8, which
is what loss scaling is for; a path that overflows gets an infinite error and is
flagged); it rounds the inputs of the whole computation, where a kernel may keep
some sums in float32 (so a path can do better than its prediction); and it cannot
see a formula that loses digits inside the pass: φ'(a) = 1 − h² from a rounded h near
±1 loses u / (1 − h²), in torch and the manual pass alike, and where a few saturated
units carry a whole gradient (one hidden unit, one step) every path, float64 too, is
flagged. Truncated BPTT is not audited: a chunk's precision is that of a shorter T.

An RNNParams (the derivation's one-layer model) is audited as its one-layer network,
`NetworkParams.from_rnn_params`: U, W, V, c are weight_ih_l0, weight_hh_l0,
head.weight, head.bias, and b is bias_ih_l0 with bias_hh_l0 = 0 beside it (both get
∂L/∂b).
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from manual_bptt import bptt
from manual_bptt.inputs.network_validation import NetworkProblem, check_network_problem
from manual_bptt.inputs.options import Options, takes_options
from manual_bptt.inputs.overflow import NonFiniteError
from manual_bptt.inputs.validation import check_problem
from manual_bptt.model.names import HEAD_SYMBOLS
from manual_bptt.model.network_params import NetworkParams
from manual_bptt.verification.conditioning import rounding_spread

from .loading import first_line
from .network_twin import build_network, torch_dtype, with_autograd

#: A path is "worse than its rounding" when its error exceeds this many times its prediction.
FLAG_FACTOR = 10.0
#: ... and this many units of roundoff times FLAG_FACTOR, in float32 and float64 (Precision.floor).
#: The spread misses the rounding of a
#: value that no input perturbation moves: ∂L/∂c of two classes is Σ (p − onehot), whose terms
#: cancel to 1% of their size, and one rounding of each p is then 100 u of the result. Over 550
#: random problems (T ≤ 60, every cell and option), where the prediction was below 4 u the
#: errors reached 19 u (manual float32), 14 u (torch float32) and 15 u (torch float64); a
#: float32 prediction from the float64 pass alone let one reach 91 u. 8 u · 10 = 80 u clears them.
#: The lower formats need none: their perturbations (2¹³ and 2¹⁶ float32 ulps) move every value,
#: and a floor of 8 u there would be 3% of a bfloat16 gradient, beyond which nothing is flagged.
FLOOR_ULPS = 8.0
#: Perturbed runs per precision (and dtype it is emulated in): the prediction is the root mean
#: square of their changes. Each run is two manual passes (rounding_spread's own and a perturbed one).
RUNS = 4


@dataclass(frozen=True)
class Precision:
    """A floating-point format as the prediction models it."""

    name: str
    unit_roundoff: float          # u: the largest relative error of one rounding to this format
    emulated_in: tuple            # the dtypes the manual pass runs in for the prediction (the largest spread counts)
    rounds_to: object = None      # the torch dtype the inputs are rounded to first (None: no rounding)
    floor_ulps: float = 0.0       # no flag below FLAG_FACTOR · floor_ulps · u (see FLOOR_ULPS)

    @property
    def floor(self) -> float:
        return self.floor_ulps * self.unit_roundoff


PRECISIONS = {
    "float64": Precision("float64", 2.0**-53, (np.float64,), floor_ulps=FLOOR_ULPS),
    # float32 twice: in float32, where the perturbations reshuffle the pass's own roundings (of its long
    # sums), and in float64, where a perturbation of one float32 ulp is never absorbed by them.
    "float32": Precision("float32", 2.0**-24, (np.float32, np.float64), torch.float32, floor_ulps=FLOOR_ULPS),
    "tfloat32": Precision("tfloat32", 2.0**-11, (np.float32,)),     # 10 stored mantissa bits, float32's range
    "bfloat16": Precision("bfloat16", 2.0**-8, (np.float32,), torch.bfloat16),
    "float16": Precision("float16", 2.0**-11, (np.float32,), torch.float16),
}


@dataclass(frozen=True)
class AuditProblem:
    """The validated problem, float64: the arguments of the network `bptt` in the caller's
    layout, and the same arrays checked into time-major form for the torch paths."""

    params: NetworkParams = field(repr=False)
    x: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    h0: object = field(repr=False)
    options: dict = field(repr=False)
    checked: NetworkProblem = field(repr=False)

    def cast(self, dtype) -> tuple:
        """(params, x, y, h0) in `dtype`: one rounding of each float64 value; labels stay integers."""
        y = self.y.astype(dtype) if self.options["loss"] == "mse" else self.y
        return self.params.astype(dtype), self.x.astype(dtype), y, _map_state(self.h0, lambda a: a.astype(dtype))


def _map_state(h0, fn):
    if h0 is None:
        return None
    if isinstance(h0, tuple):                                        # an LSTM's (h0, c0)
        return tuple(fn(state) for state in h0)
    return fn(h0)


# ---- the paths ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PrecisionPath:
    """One way of computing the gradients: `gradients(problem)` returns {name: array} for
    every parameter; `unavailable()` says why it cannot run here (None when it can)."""

    name: str
    precision: str                                                  # a key of PRECISIONS
    gradients: Callable[[AuditProblem], dict]
    unavailable: Callable[[], str | None] = lambda: None


@dataclass(frozen=True)
class TorchRecipe:
    """How a torch path runs the twin: its device, the dtype of its weights and inputs, an
    autocast dtype (None: no autocast), and the backend switches it runs under."""

    weights: torch.dtype
    device: str = "cpu"
    autocast: torch.dtype | None = None
    switches: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext

    @property
    def loss_dtype(self) -> torch.dtype:
        # The loss in float32 for every lower precision (autocast's own choice, and
        # the path then measures the network, not the range of a float16 sum).
        return torch.float64 if self.weights == torch.float64 else torch.float32


def manual_path(name: str, dtype) -> PrecisionPath:
    """manual_bptt.bptt on the problem cast to `dtype`."""
    precision = np.dtype(dtype).name

    def gradients(problem: AuditProblem) -> dict:
        _, g = bptt(*problem.cast(dtype), **problem.options)
        return g.state_dict()

    return PrecisionPath(name, precision, gradients)


def torch_path(name: str, precision: str, recipe: TorchRecipe) -> PrecisionPath:
    def unavailable() -> str | None:
        if recipe.device == "cuda" and not torch.cuda.is_available():
            return "skipped: no CUDA device"
        return None

    return PrecisionPath(name, precision, lambda problem: torch_gradients(problem, recipe), unavailable)


@contextlib.contextmanager
def _oneDNN_off():
    """torch's own CPU kernels instead of oneDNN's, as before after the block."""
    with warnings.catch_warnings():
        # flags() also sets oneDNN's TF32 switch, and a CPU build warns that it has no Intel GPU to use it on.
        warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")
        with torch.backends.mkldnn.flags(enabled=False):
            yield


@contextlib.contextmanager
def _cuda_tf32(allowed: bool):
    """cuDNN and CUDA matmuls with TF32 allowed or not, as before after the block."""
    matmul = torch.backends.cuda.matmul
    previous = matmul.allow_tf32
    matmul.allow_tf32 = allowed
    try:
        with torch.backends.cudnn.flags(enabled=True, allow_tf32=allowed):
            yield
    finally:
        matmul.allow_tf32 = previous


def default_paths() -> list[PrecisionPath]:
    """Every path the audit measures: the CPU's, then CUDA's (skipped without a device)."""
    return cpu_paths() + cuda_paths()


def cpu_paths() -> list[PrecisionPath]:
    return [
        torch_path("torch float64", "float64", TorchRecipe(torch.float64)),
        torch_path("torch float32", "float32", TorchRecipe(torch.float32)),
        torch_path("torch float32 (oneDNN off)", "float32", TorchRecipe(torch.float32, switches=_oneDNN_off)),
        manual_path("manual float32", np.float32),
        torch_path("torch bfloat16 autocast", "bfloat16", TorchRecipe(torch.float32, autocast=torch.bfloat16)),
        torch_path("torch float16", "float16", TorchRecipe(torch.float16)),
    ]


def cuda_paths() -> list[PrecisionPath]:
    return [
        torch_path("cuda float32 (cuDNN)", "float32",
                   TorchRecipe(torch.float32, device="cuda", switches=lambda: _cuda_tf32(False))),
        torch_path("cuda float32 (TF32 allowed)", "tfloat32",
                   TorchRecipe(torch.float32, device="cuda", switches=lambda: _cuda_tf32(True))),
        torch_path("cuda bfloat16 autocast", "bfloat16",
                   TorchRecipe(torch.float32, device="cuda", autocast=torch.bfloat16)),
        torch_path("cuda float16 autocast", "float16",
                   TorchRecipe(torch.float32, device="cuda", autocast=torch.float16)),
    ]


def torch_gradients(problem: AuditProblem, recipe: TorchRecipe) -> dict:
    """The twin (nn.RNN/LSTM/GRU + nn.Linear) run as the recipe says; ∂L/∂ every parameter, float64.

    Time-major inside (the layout changes no arithmetic); lengths through a packed
    sequence; target "last" reads head(cat(h_n[-2], h_n[-1])) as the twin does.
    """
    p = problem.checked
    rnn, head = build_network(problem.params)                       # float64 copies on the CPU
    rnn.to(device=recipe.device, dtype=recipe.weights)
    head.to(device=recipe.device, dtype=recipe.weights)

    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(device=recipe.device, dtype=recipe.weights)

    x = tensor(p.x)                                                  # (T, B, I)
    count = len(p.initial_state(0))                                  # (h,) or (h, c)
    states = tuple(tensor(np.stack([p.initial_state(i)[k] for i in range(len(p.state0))])) for k in range(count))
    state = states if count > 1 else states[0]
    autocast = (torch.autocast(recipe.device, dtype=recipe.autocast) if recipe.autocast is not None
                else contextlib.nullcontext())
    with with_autograd(), recipe.switches():
        with autocast:
            if p.lengths is None:
                out, h_n = rnn(x, state)
            else:
                packed = pack_padded_sequence(x, torch.from_numpy(p.lengths), enforce_sorted=False)
                out, h_n = rnn(packed, state)
                out, _ = pad_packed_sequence(out, total_length=p.T)
            if p.target == "each_step":
                o = head(out)
            else:
                h_n = h_n[0] if isinstance(h_n, tuple) else h_n
                D = problem.params.num_directions
                o = head(torch.cat([h_n[-D + d] for d in range(D)], dim=-1))   # head(cat(h_n[-2], h_n[-1]))
        L = _loss(p, o.to(recipe.loss_dtype))
        L.backward()
    grads = {name: t.grad for name, t in rnn.named_parameters()}
    grads[HEAD_SYMBOLS["V"]] = head.weight.grad
    grads[HEAD_SYMBOLS["c"]] = head.bias.grad
    return {name: grads[name].detach().to(device="cpu", dtype=torch.float64).numpy() for name in problem.params.keys()}


def _loss(p: NetworkProblem, o: torch.Tensor) -> torch.Tensor:
    """L with torch's reductions on the logits o; with lengths, only the real steps are scored."""
    y = torch.from_numpy(np.ascontiguousarray(p.y)).to(o.device)
    target = y.long() if p.loss == "cross_entropy" else y.to(o.dtype)
    if p.target == "each_step":
        if p.mask is not None:
            real = torch.from_numpy(p.mask[..., 0]).to(o.device)     # (T, B): True on real steps
            o, target = o[real], target[real]
        else:
            o = o.reshape(-1, o.shape[-1])
            target = target.reshape(-1) if p.loss == "cross_entropy" else target.reshape(o.shape)
    if p.loss == "cross_entropy":
        return F.cross_entropy(o, target, reduction=p.reduction)     # L(t) = -log softmax(o(t))[y(t)]
    return 0.5 * F.mse_loss(o, target, reduction=p.reduction)        # L(t) = ½‖o(t) - y(t)‖²


# ---- the report -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class AuditRow:
    """One gradient of one path. relative_error is None for a path that did not run (`skipped`
    says why); it is inf for a path whose gradient came out non-finite."""

    path: str
    gradient: str
    relative_error: float | None
    predicted_error: float
    unit_roundoff: float
    floor: float = 0.0                   # no flag below FLAG_FACTOR · floor (Precision.floor)
    skipped: str | None = None

    @property
    def worse(self) -> bool:
        """Worse than its rounding: error > FLAG_FACTOR · max(prediction, floor)."""
        if self.relative_error is None:
            return False
        return not self.relative_error <= FLAG_FACTOR * max(self.predicted_error, self.floor)

    def to_json(self) -> dict:
        row = dict(path=self.path, gradient=self.gradient, relative_error=_finite_or_none(self.relative_error),
                   predicted_error=_finite_or_none(self.predicted_error), unit_roundoff=self.unit_roundoff,
                   floor=self.floor, worse_than_rounding=self.worse)
        if self.relative_error is not None and not math.isfinite(self.relative_error):
            row["note"] = "non-finite gradient"
        if self.skipped is not None:
            row["skipped"] = self.skipped
        return row


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None       # JSON has no inf


@dataclass(frozen=True)
class AuditReport:
    """The rows of every path (in the order run), what each cost, and the problem."""

    rows: tuple[AuditRow, ...]
    seconds: dict                        # path or "prediction <precision>" -> seconds
    runs: int
    description: str = ""

    def worse(self) -> list[AuditRow]:
        """The rows whose error exceeds FLAG_FACTOR times what rounding predicts."""
        return [row for row in self.rows if row.worse]

    @property
    def ok(self) -> bool:
        return not self.worse()

    def paths(self) -> list[str]:
        return list(dict.fromkeys(row.path for row in self.rows))

    def row(self, path: str, gradient: str) -> AuditRow:
        return next(row for row in self.rows if row.path == path and row.gradient == gradient)

    def to_json(self) -> dict:
        return dict(problem=self.description, rows=[row.to_json() for row in self.rows],
                    flag_factor=FLAG_FACTOR, runs=self.runs, seconds=self.seconds)

    def __str__(self) -> str:
        header = f"{'path':<30} {'gradient':<20} {'rel. error':>10} {'predicted':>10} {'digits':>6}"
        lines = [header, "-" * len(header)]
        for path in self.paths():
            rows = [row for row in self.rows if row.path == path]
            if rows[0].skipped is not None:
                worst = max(row.predicted_error for row in rows)
                lines.append(f"{path:<30} {rows[0].skipped} (rounding predicts up to {worst:.1e})")
                continue
            for i, row in enumerate(rows):
                name = path if i == 0 else ""
                flag = "  worse than its rounding" if row.worse else ""
                lines.append(f"{name:<30} {row.gradient:<20} {row.relative_error:>10.1e} "
                             f"{row.predicted_error:>10.1e} {_digits(row.relative_error):>6}{flag}")
        worse = self.worse()
        lines.append("")
        lines.append(f"worse than its rounding (error > {FLAG_FACTOR:g}× prediction): "
                     + (", ".join(f"{row.path} {row.gradient}" for row in worse) if worse else "none"))
        lines.append("digits: -log10(rel. error), the decimal digits the largest entries keep")
        return "\n".join(lines)


def _digits(relative_error: float) -> str:
    if not math.isfinite(relative_error):
        return "none"
    return "all" if relative_error == 0 else f"{max(0.0, -math.log10(relative_error)):.1f}"


# ---- the audit ------------------------------------------------------------------------------------

@takes_options
def audit(params, x, y, h0=None, *, paths=None, runs: int = RUNS, rng=0, **options) -> AuditReport:
    """Every path's gradients against the manual float64 ones, beside what rounding predicts.

    Arguments and options as `bptt` (an RNNParams is audited as its one-layer network;
    see the module docstring); everything is checked before anything is computed.
    `paths`: the PrecisionPath list to run (default `default_paths()`); `runs`: perturbed
    runs per precision (and per dtype it is emulated in) for the prediction; `rng`: their
    seed (a seed or a np.random.Generator). The caller's arrays are
    not modified. Raises NonFiniteError when the float64 reference itself overflows.
    """
    problem = prepare(params, x, y, h0, options)
    paths = default_paths() if paths is None else _checked_paths(paths)
    if isinstance(runs, bool) or not isinstance(runs, (int, np.integer)) or runs < 1:
        raise ValueError(f"runs: expected a positive int, got {runs!r}")
    np.random.default_rng(rng)                                      # a bad seed fails here, not after the passes

    _, reference = bptt(problem.params, problem.x, problem.y, problem.h0, **problem.options)
    g64 = reference.state_dict()
    scale = {name: float(np.max(np.abs(g))) if g.size else 0.0 for name, g in g64.items()}
    seconds: dict = {}
    predictions: dict = {}

    def predicted(precision: str) -> dict:
        if precision not in predictions:
            start = time.perf_counter()
            predictions[precision] = predicted_errors(problem, PRECISIONS[precision], scale, runs=runs, rng=rng)
            seconds[f"prediction {precision}"] = time.perf_counter() - start
        return predictions[precision]

    rows = []
    for path in paths:
        start = time.perf_counter()
        reason = path.unavailable()
        grads = None
        if reason is None:
            try:
                grads = path.gradients(problem)
            except NonFiniteError:
                grads = {name: np.full_like(g, np.inf) for name, g in g64.items()}
            except (RuntimeError, NotImplementedError) as error:    # a kernel this build or CPU lacks
                reason = f"not supported here: {first_line(error)}"
        seconds[path.name] = time.perf_counter() - start
        precision = PRECISIONS[path.precision]
        expected = predicted(path.precision)
        for name in g64:
            error = None if grads is None else relative_error(grads[name], g64[name], scale[name])
            rows.append(AuditRow(path.name, name, error, expected[name], precision.unit_roundoff, precision.floor,
                                 skipped=reason))
    return AuditReport(rows=tuple(rows), seconds=seconds, runs=runs)


def relative_error(g: np.ndarray, g64: np.ndarray, scale: float) -> float:
    """max|g − g64| / max|g64| (inf for a non-finite g)."""
    if not np.all(np.isfinite(g)):
        return math.inf
    return relative_to(float(np.max(np.abs(g.astype(np.float64) - g64))) if g.size else 0.0, scale)


def relative_to(difference: float, scale: float) -> float:
    """difference / scale, with 0/0 = 0 (a gradient that is zero, and exactly so)."""
    if not math.isfinite(difference):
        return math.inf
    if scale == 0:
        return 0.0 if difference == 0 else math.inf
    return difference / scale


def predicted_errors(problem: AuditProblem, precision: Precision, scale: dict, *, runs: int = RUNS, rng=0) -> dict:
    """{gradient: the spread of the manual pass under perturbations of size u, / max|g64|}: the root
    mean square over `runs` runs of max|g' − g| (the size of one computation's error, where the
    largest of the runs is an allowance), the largest over the dtypes of precision.emulated_in."""
    generator = np.random.default_rng(rng)
    spreads = []
    for dtype in precision.emulated_in:
        changes = [_spread(problem, precision, dtype, rng=generator) for _ in range(runs)]
        # sqrt(mean(change²)) per gradient: inf stays inf, and a NaN (an overflow) with it.
        spreads.append({name: math.sqrt(sum(change[name] ** 2 for change in changes) / runs) for name in scale})
    return {name: relative_to(max(spread[name] for spread in spreads), scale[name]) for name in scale}


def _spread(problem: AuditProblem, precision: Precision, dtype, *, rng) -> dict:
    """{gradient: max|g' − g|} of one perturbed run: the pass in `dtype` on the inputs rounded to
    precision.rounds_to (when set); rounding_spread perturbs every input by |δ| ≤ ulps · eps/2 of
    `dtype`, so ulps = u / (eps/2) makes |δ| ≤ u."""
    params, x, y, h0 = problem.cast(dtype)
    everything = {name: math.inf for name in problem.params.keys()}
    if precision.rounds_to is not None:
        def rounded(array):
            return torch.from_numpy(array).to(precision.rounds_to).to(torch_dtype(dtype)).numpy()

        params = params.with_arrays({name: rounded(array) for name, array in params.items()})
        x, h0 = rounded(x), _map_state(h0, rounded)
        y = rounded(y) if problem.options["loss"] == "mse" else y
        states = [] if h0 is None else list(h0) if isinstance(h0, tuple) else [h0]
        if not all(np.all(np.isfinite(a)) for a in [x, *states, *(a for _, a in params.items())]):
            return everything                                       # outside the format's range
    ulps = precision.unit_roundoff / (float(np.finfo(dtype).eps) / 2)
    try:
        return rounding_spread(params, x, y, h0, runs=1, ulps=ulps, rng=rng, **problem.options).spread
    except NonFiniteError:
        return everything


def prepare(params, x, y, h0, options: dict) -> AuditProblem:
    """The problem checked as `bptt` checks it, as a float64 network problem (copies)."""
    network, checked = Options.for_params("audit", params, options)
    if checked.truncate is not None:
        raise ValueError(f"truncate: the audit measures whole-sequence gradients; got truncate={checked.truncate!r} "
                         "(a chunk of k steps keeps the digits of a sequence of T = k)")
    if not network:
        check_problem(params, x, y, h0, checked)
        params = NetworkParams.from_rnn_params(params, nonlinearity=checked.nonlinearity)
        h0 = None if h0 is None else np.asarray(h0)[None]           # (B, H) -> (L·D, B, H) with L·D = 1
    check_network_problem(params, x, y, h0, checked)
    net_options = dict(lengths=checked.lengths, target=checked.target, loss=checked.loss,
                       reduction=checked.reduction, batch_first=checked.batch_first)
    params64 = params.astype(np.float64)
    x64 = np.array(x, dtype=np.float64)
    y64 = np.array(y, dtype=np.float64) if checked.loss == "mse" else np.array(y)
    h064 = _map_state(h0 if not isinstance(h0, list) else tuple(h0), lambda a: np.array(a, dtype=np.float64))
    options64 = Options.parse("audit", net_options, network=True)
    return AuditProblem(params=params64, x=x64, y=y64, h0=h064, options=net_options,
                        checked=check_network_problem(params64, x64, y64, h064, options64))


def _checked_paths(paths) -> list[PrecisionPath]:
    paths = list(paths)
    if not paths:
        raise ValueError("paths: expected at least one PrecisionPath, got none")
    for path in paths:
        if not isinstance(path, PrecisionPath):
            raise TypeError(f"paths: expected PrecisionPath entries, got {type(path).__name__}")
        if path.precision not in PRECISIONS:
            raise ValueError(f"paths: {path.name!r} has precision {path.precision!r}; expected one of "
                             f"{', '.join(PRECISIONS)}")
    names = [path.name for path in paths]
    if len(set(names)) != len(names):
        raise ValueError(f"paths: expected distinct names, got {names}")
    return paths


# ---- `bptt audit` ---------------------------------------------------------------------------------

#: Exit status: 0 every path within FLAG_FACTOR of its rounding, 1 some path worse; the rest as `bptt check`.
EXIT_WORSE = 1


def parser():
    """`bptt check`'s options (a drawn problem, or --weights/--data), and --json, --runs."""
    from . import cli

    p = cli.parser()
    p.prog = "bptt audit"
    p.description = ("How many digits the gradients of each precision path keep: torch float64, float32 (with and "
                     "without oneDNN), the manual float32 pass, bfloat16 autocast, float16, and CUDA's paths where "
                     "a device is present, each against the manual float64 gradients and beside the error rounding "
                     "alone predicts at its precision.")
    p.epilog = ("exit status: 0 every path within 10x of what rounding predicts; 1 some path worse than its "
                "rounding; 2 usage error; 3 the float64 reference overflowed; 4 an optional extra is missing; "
                "130 stopped by Ctrl-C")
    p.add_argument("--json", metavar="FILE", help="also write the rows to FILE (.json): "
                   '{"rows": [{"path", "gradient", "relative_error", "predicted_error", ...}, ...]} '
                   "(default: none)")
    p.add_argument("--runs", type=cli._positive, default=RUNS,
                   help="perturbed manual passes per precision for the prediction (default %(default)s)")
    return p


def _given(argv: list[str]) -> set[str]:
    """The destinations of the options on the command line (every default suppressed)."""
    import argparse

    quiet = parser()
    for action in quiet._actions:
        action.default = argparse.SUPPRESS
    return set(vars(quiet.parse_args(argv)))


def _checked(params, x, y, h0, **options) -> AuditProblem:
    return prepare(params, x, y, h0, options)


def main(argv: list[str] | None = None) -> int:
    import json
    import sys

    from manual_bptt.tools.extras import MissingExtra

    from . import cli
    from .commands import EXIT_MISSING_EXTRA
    from .threads import one_thread

    command = parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = command.parse_args(argv)
    try:
        # Everything is checked before anything is computed, as `bptt check` does.
        given = _given(argv)
        if args.truncate is not None:
            raise ValueError(f"--truncate: the audit measures whole-sequence gradients; got {args.truncate} "
                             "(a chunk of k steps keeps the digits of a sequence of T = k)")
        if args.weights is not None:
            problem = cli._trained_problem(args, given)
        else:
            for dest in ("prefix", "head", "data"):
                if dest in given:
                    raise ValueError(f"--{dest}: only with --weights FILE (a trained model's state dict)")
            problem = cli._problem(args)
        out = None if args.json is None else cli.check_output_path("--json", args.json, suffixes=(".json",))
        problem.run(_checked)
    except (ValueError, TypeError) as error:
        command.error(str(error))                                   # one line, exit 2
    except MissingExtra as missing:
        print(f"{command.prog}: {missing}", file=sys.stderr)
        return EXIT_MISSING_EXTRA
    print(f"problem: {problem!r}", flush=True)
    try:
        with one_thread():
            report = problem.run(audit, runs=args.runs)
    except KeyboardInterrupt:
        print(f"{command.prog}: interrupted (Ctrl-C) before the audit finished; no path was reported",
              file=sys.stderr)
        return cli.EXIT_CODES["interrupted"]
    except NonFiniteError as error:
        print(f"{command.prog}: overflow in the float64 reference: {error}", file=sys.stderr)
        return cli.EXIT_CODES["unchecked"]
    print(report)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({**report.to_json(), "problem": repr(problem)}, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {out}")
    return EXIT_WORSE if report.worse() else 0
