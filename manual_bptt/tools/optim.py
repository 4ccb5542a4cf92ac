"""Optimisers and gradient clipping in NumPy, step for step the same as torch's.

The loss function returns the true gradient; what is done with it afterwards
is a separate, named step, as in a PyTorch training loop:

    loss, g = bptt(params, x, y)
    clipped = clip_grad_norm(g.params(), max_norm)       # torch.nn.utils.clip_grad_norm_
    params = optimizer.step(params, clipped.grads)        # torch.optim.Adam / SGD .step()

Each formula is torch's own, operation for operation, in the order of its
CPU kernels (addcmul is `v + value·g·g`, addcdiv `p + value·m / denom`), so that a NumPy run and a torch run from
the same weights stay together to float64 rounding. An optimiser keeps its
state (moments, momentum buffers, the step count) per parameter name; it never
writes into the arrays it is given.

Parameters are an `RNNParams` or a `NetworkParams`. Their gradients come in the
same kind of container, holding the parameters' gradients alone: an `RNNParams`
(`g.params()`) for an RNNParams; a `NetworkParams` or a dict {name: array} with
the same keys (`g.state_dict()`) for a NetworkParams. Every gradient must have
its parameter's shape and dtype: nothing is broadcast or cast. The
hyperparameters are checked as torch.optim checks them, and NaN or infinity is
refused as well (it would turn every weight into NaN at the first step).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ..inputs.checks import as_array, check_count, check_flag
from ..model.network_params import NetworkGrads, NetworkParams
from ..model.params import SUPPORTED_DTYPES, RNNGrads, RNNParams

#: torch.nn.utils.clip_grad_norm_ divides max_norm by (total norm + 1e-6), so that
#: a zero gradient never divides by zero; the same constant gives the same factor.
CLIP_EPS = 1e-6


@dataclass(frozen=True)
class ClippedGrads:
    """The gradients after clipping, in the container they came in (an RNNParams, a
    NetworkParams or a dict), and their total 2-norm before (what torch returns)."""

    grads: RNNParams | NetworkParams | dict
    total_norm: float


def grad_norm(grads) -> float:
    """‖g‖, the 2-norm of all the gradients together, computed as torch does: the norm of their norms.

    grads: an RNNParams, a NetworkParams or a dict {name: array} of gradients.
    """
    arrays = _gradient_arrays(grads)
    norms = np.array([np.linalg.norm(g.ravel()) for g in arrays.values()])
    return np.linalg.norm(norms)                                       # ‖g‖ = ‖(‖g_U‖, ‖g_W‖, …)‖


def clip_grad_norm(grads, max_norm: float) -> ClippedGrads:
    """Scale every gradient by min(1, max_norm / (‖g‖ + 1e-6)), ‖g‖ the norm of all of them together.

    The same as torch.nn.utils.clip_grad_norm_(parameters, max_norm) with the
    default 2-norm: the total norm is the norm of the per-gradient norms, and
    the factor is applied even when it is 1 (a multiplication by 1.0 is exact).
    grads: an RNNParams, a NetworkParams or a dict {name: array}; the result holds
    the same kind. max_norm: any real number > 0 (a NumPy scalar too); infinity
    means no clipping, as in torch.
    """
    if not _is_real(max_norm):
        raise TypeError(f"max_norm: expected a positive number, got {max_norm!r}")
    if not max_norm > 0:                                               # NaN fails > 0 too
        raise ValueError(f"max_norm: expected a positive number, got {max_norm!r}")
    arrays = _gradient_arrays(grads)
    total_norm = grad_norm(grads)
    coef = min(float(max_norm) / (total_norm + CLIP_EPS), 1.0)          # clamp(max_norm/(‖g‖+ε), max=1)
    clipped = {name: g * g.dtype.type(coef) for name, g in arrays.items()}
    return ClippedGrads(grads=_same_container(grads, clipped), total_norm=float(total_norm))


@dataclass
class Adam:
    """torch.optim.Adam (no weight decay, no amsgrad), on RNNParams or NetworkParams.

    m ← m + (1 − β1)(g − m)            (torch's lerp)
    v ← β2 v + (1 − β2) g²
    p ← p − lr / (1 − β1^s) · m / (√v / √(1 − β2^s) + eps)     s = the step count

    lr and eps: finite, ≥ 0; betas: two numbers in [0, 1) (torch.optim.Adam's rules).
    """

    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    steps: int = 0
    m: dict = field(default_factory=dict)
    v: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lr = _check_hyperparameter("lr", self.lr)
        if isinstance(self.betas, (str, bytes)) or not hasattr(self.betas, "__len__") or len(self.betas) != 2:
            raise TypeError(f"betas: expected a pair (β1, β2) of numbers in [0, 1), got {self.betas!r}")
        self.betas = tuple(_check_hyperparameter(f"betas[{i}]", beta, below=1.0) for i, beta in enumerate(self.betas))
        self.eps = _check_hyperparameter("eps", self.eps)
        self.steps = check_count("steps", self.steps, minimum=0)
        _check_state_dicts(self, ("m", "v"))

    def step(self, params, grads):
        """The updated parameters (new arrays, the container of params); the moments and the count are kept here.

        grads: the parameters' gradients, named, shaped and typed like params (module docstring).
        """
        pairs = _paired(params, grads)
        for name, p, _ in pairs:
            for kind in ("m", "v"):
                _check_state(f"{kind}[{name!r}]", getattr(self, kind).get(name), p)
        beta1, beta2 = self.betas
        self.steps += 1
        bias_correction1 = 1 - beta1 ** self.steps
        bias_correction2_sqrt = (1 - beta2 ** self.steps) ** 0.5             # torch's ** 0.5, not math.sqrt
        step_size = self.lr / bias_correction1
        updated = {}
        for name, p, g in pairs:
            m = self.m.get(name, np.zeros_like(p))
            v = self.v.get(name, np.zeros_like(p))
            m = m + (1 - beta1) * (g - m)                               # m = lerp(m, g, 1 − β1)
            v = v * beta2 + (1 - beta2) * g * g                         # v = β2 v + (1 − β2) g²
            denom = np.sqrt(v) / bias_correction2_sqrt + self.eps      # √v̂ + eps, v̂ = v / (1 − β2^s)
            updated[name] = p + (-step_size) * m / denom                # p − lr m̂ / (√v̂ + eps)
            self.m[name], self.v[name] = m, v
        return _same_container(params, updated)


@dataclass
class SGD:
    """torch.optim.SGD with momentum and dampening (no weight decay), on RNNParams or NetworkParams.

    buf ← g at the first step, then buf ← μ buf + (1 − dampening) g
    p   ← p − lr · buf              (nesterov: p − lr (g + μ buf); μ = 0: p − lr g)

    lr, momentum: finite, ≥ 0; dampening: in [0, 1]; nesterov needs momentum > 0 and
    dampening 0 (torch.optim.SGD's rule).
    """

    lr: float = 1e-2
    momentum: float = 0.9
    nesterov: bool = False
    buffers: dict = field(default_factory=dict)
    dampening: float = 0.0

    def __post_init__(self) -> None:
        self.lr = _check_hyperparameter("lr", self.lr)
        self.momentum = _check_hyperparameter("momentum", self.momentum)
        self.dampening = _check_hyperparameter("dampening", self.dampening, at_most=1.0)
        self.nesterov = check_flag("nesterov", self.nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(f"nesterov: expected momentum > 0 and dampening = 0 with nesterov=True (Nesterov "
                             f"momentum needs both, as in torch), got momentum = {self.momentum}, "
                             f"dampening = {self.dampening}")
        _check_state_dicts(self, ("buffers",))

    def step(self, params, grads):
        """The updated parameters (new arrays, the container of params); the momentum buffers are kept here.

        grads: the parameters' gradients, named, shaped and typed like params (module docstring).
        """
        pairs = _paired(params, grads)
        for name, p, _ in pairs:
            _check_state(f"buffers[{name!r}]", self.buffers.get(name), p)
        updated = {}
        for name, p, g in pairs:
            direction = g
            if self.momentum != 0:                                     # torch keeps no buffer without momentum
                previous = self.buffers.get(name)
                if previous is None:
                    buf = g.copy()                                                 # buf = g, the first step
                else:
                    buf = previous * self.momentum + (1 - self.dampening) * g      # μ buf + (1 − dampening) g
                self.buffers[name] = buf
                direction = g + self.momentum * buf if self.nesterov else buf
            updated[name] = p - self.lr * direction                               # p − lr · d
        return _same_container(params, updated)


def _is_real(value) -> bool:
    """A Python or NumPy real number; not a bool (True is not a learning rate)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _check_hyperparameter(name: str, value, *, below: float | None = None, at_most: float | None = None) -> float:
    """A finite real number ≥ 0 (and < below, ≤ at_most when given), as a Python float."""
    bounds = "≥ 0" + (f" and < {below}" if below is not None else "") + (f" and ≤ {at_most}" if at_most is not None else "")
    if not _is_real(value):
        raise TypeError(f"{name}: expected a finite number {bounds}, got {value!r}")
    number = float(value)
    if (not math.isfinite(number) or number < 0 or (below is not None and not number < below)
            or (at_most is not None and number > at_most)):
        raise ValueError(f"{name}: expected a finite number {bounds}, got {value!r}")
    return number


def _check_state_dicts(optimizer, names: tuple) -> None:
    for name in names:
        if not isinstance(getattr(optimizer, name), dict):
            raise TypeError(f"{name}: expected a dict of arrays by parameter name, got {type(getattr(optimizer, name)).__name__}")


def _check_state(name: str, state, p: np.ndarray) -> None:
    """An optimiser's kept array for a parameter must still fit it (same shape and dtype)."""
    if state is not None and (np.shape(state) != p.shape or getattr(state, "dtype", None) != p.dtype):
        raise ValueError(
            f"params: the optimiser's state {name} is {getattr(state, 'dtype', type(state).__name__)} "
            f"{np.shape(state)}, the parameter is {p.dtype} {p.shape}: use one optimiser per set of parameters"
        )


def _paired(params, grads) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, parameter, gradient) for every parameter, once grads is checked to mirror params:
    the same container kind, the same names, shapes and dtypes."""
    if not isinstance(params, (RNNParams, NetworkParams)):
        raise TypeError(f"params: expected an RNNParams or a NetworkParams, got {type(params).__name__}")
    if isinstance(params, RNNParams) and not isinstance(grads, RNNParams):
        _refuse_grads_with_states(grads)
        raise TypeError(f"grads: expected an RNNParams of gradients (g.params()) for an RNNParams, "
                        f"got {type(grads).__name__}")
    if isinstance(params, NetworkParams) and not isinstance(grads, (NetworkParams, Mapping)):
        _refuse_grads_with_states(grads)
        raise TypeError(f"grads: expected a NetworkParams or a dict of gradients (g.state_dict()) for a "
                        f"NetworkParams, got {type(grads).__name__}")
    arrays = _gradient_arrays(grads)
    label = _labeller(grads)
    names = [name for name, _ in params.items()]
    missing = [name for name in names if name not in arrays]
    unknown = [name for name in arrays if name not in names]
    if missing or unknown:
        listed = "; ".join(f"{what} {found}" for what, found in (("missing", missing), ("unknown", unknown)) if found)
        raise ValueError(f"grads: expected a gradient for each parameter, named as params, got {listed}")
    pairs = []
    for name, p in params.items():
        g = arrays[name]
        if g.shape != p.shape:
            raise ValueError(f"{label(name)}: expected shape {p.shape} (the shape of the parameter; nothing is "
                             f"broadcast), got {g.shape}")
        if g.dtype != p.dtype:
            raise TypeError(f"{label(name)}: expected dtype {p.dtype} (the dtype of the parameters; nothing is "
                            f"cast), got {g.dtype}")
        pairs.append((name, p, g))
    return pairs


def _refuse_grads_with_states(grads) -> None:
    """RNNGrads and NetworkGrads hold ∂L/∂h0 and ∂L/∂x too: say which part to pass."""
    if isinstance(grads, RNNGrads):
        raise TypeError("grads: expected the parameters' gradients alone, g.params() (an RNNParams), got RNNGrads "
                        "(it holds ∂L/∂h0 and ∂L/∂x too, which are not parameters)")
    if isinstance(grads, NetworkGrads):
        raise TypeError("grads: expected the parameters' gradients alone, g.state_dict() (a dict), got NetworkGrads "
                        "(it holds ∂L/∂h0 and ∂L/∂x too, which are not parameters)")


def _gradient_arrays(grads) -> dict[str, np.ndarray]:
    """{name: array} of an RNNParams, a NetworkParams or a dict of gradients (float32/float64 arrays)."""
    if isinstance(grads, (RNNParams, NetworkParams)):
        return dict(grads.items())                                 # checked by their constructors
    _refuse_grads_with_states(grads)
    if not isinstance(grads, Mapping):
        raise TypeError(f"grads: expected an RNNParams, a NetworkParams or a dict of gradients, got {type(grads).__name__}")
    if not grads:
        raise ValueError("grads: expected at least one gradient, got an empty mapping")
    arrays = {}
    for name, value in grads.items():
        if not isinstance(name, str):
            raise TypeError(f"grads: expected parameter names as str, got key {name!r}")
        array = as_array(f"grads[{name!r}]", value)
        if array.dtype not in SUPPORTED_DTYPES:
            raise TypeError(f"grads[{name!r}]: expected a float32 or float64 array, got dtype {array.dtype}")
        arrays[name] = array
    return arrays


def _labeller(grads):
    """How an error names one gradient: grads.W for an RNNParams, grads['weight_hh_l0'] otherwise."""
    if isinstance(grads, RNNParams):
        return lambda name: f"grads.{name}"
    return lambda name: f"grads[{name!r}]"


def _same_container(like, arrays: dict):
    """`arrays` in the kind of container `like` is: an RNNParams, a NetworkParams (its cell, layout
    and dropout), or a dict."""
    if isinstance(like, RNNParams):
        return RNNParams(**arrays)
    if isinstance(like, NetworkParams):
        return like.with_arrays(arrays)
    return dict(arrays)
