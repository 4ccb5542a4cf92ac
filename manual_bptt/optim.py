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
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .params import RNNParams

#: torch.nn.utils.clip_grad_norm_ divides max_norm by (total norm + 1e-6), so that
#: a zero gradient never divides by zero; the same constant gives the same factor.
CLIP_EPS = 1e-6


@dataclass(frozen=True)
class ClippedGrads:
    """The gradients after clipping, and their total 2-norm before (what torch returns)."""

    grads: RNNParams
    total_norm: float


def grad_norm(grads: RNNParams) -> float:
    """‖g‖, the 2-norm of all the gradients together, computed as torch does: the norm of their norms."""
    norms = np.array([np.linalg.norm(g.ravel()) for _, g in grads.items()])
    return np.linalg.norm(norms)                                       # ‖g‖ = ‖(‖g_U‖, ‖g_W‖, …)‖


def clip_grad_norm(grads: RNNParams, max_norm: float) -> ClippedGrads:
    """Scale every gradient by min(1, max_norm / (‖g‖ + 1e-6)), ‖g‖ the norm of all of them together.

    The same as torch.nn.utils.clip_grad_norm_(parameters, max_norm) with the
    default 2-norm: the total norm is the norm of the per-gradient norms, and
    the factor is applied even when it is 1 (a multiplication by 1.0 is exact).
    """
    if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float)) or not max_norm > 0:
        raise ValueError(f"max_norm: expected a positive number, got {max_norm!r}")
    total_norm = grad_norm(grads)
    coef = grads.dtype.type(min(max_norm / (total_norm + CLIP_EPS), 1.0))  # clamp(max_norm/(‖g‖+ε), max=1)
    return ClippedGrads(grads=RNNParams(**{name: g * coef for name, g in grads.items()}),
                        total_norm=float(total_norm))


@dataclass
class Adam:
    """torch.optim.Adam (no weight decay, no amsgrad), on RNNParams.

    m ← m + (1 − β1)(g − m)            (torch's lerp)
    v ← β2 v + (1 − β2) g²
    p ← p − lr / (1 − β1^s) · m / (√v / √(1 − β2^s) + eps)     s = the step count
    """

    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    steps: int = 0
    m: dict = field(default_factory=dict)
    v: dict = field(default_factory=dict)

    def step(self, params: RNNParams, grads: RNNParams) -> RNNParams:
        """The updated parameters (new arrays); the moments and the count are kept here."""
        beta1, beta2 = self.betas
        self.steps += 1
        bias_correction1 = 1 - beta1 ** self.steps
        bias_correction2_sqrt = (1 - beta2 ** self.steps) ** 0.5             # torch's ** 0.5, not math.sqrt
        step_size = self.lr / bias_correction1
        updated = {}
        for name, p in params.items():
            g = getattr(grads, name)
            m = self.m.get(name, np.zeros_like(p))
            v = self.v.get(name, np.zeros_like(p))
            m = m + (1 - beta1) * (g - m)                               # m = lerp(m, g, 1 − β1)
            v = v * beta2 + (1 - beta2) * g * g                         # v = β2 v + (1 − β2) g²
            denom = np.sqrt(v) / bias_correction2_sqrt + self.eps      # √v̂ + eps, v̂ = v / (1 − β2^s)
            updated[name] = p + (-step_size) * m / denom                # p − lr m̂ / (√v̂ + eps)
            self.m[name], self.v[name] = m, v
        return RNNParams(**updated)


@dataclass
class SGD:
    """torch.optim.SGD with momentum (no dampening, no weight decay), on RNNParams.

    buf ← g at the first step, then buf ← μ buf + g
    p   ← p − lr · buf              (nesterov: p − lr (g + μ buf))
    """

    lr: float = 1e-2
    momentum: float = 0.9
    nesterov: bool = False
    buffers: dict = field(default_factory=dict)

    def step(self, params: RNNParams, grads: RNNParams) -> RNNParams:
        """The updated parameters (new arrays); the momentum buffers are kept here."""
        updated = {}
        for name, p in params.items():
            g = getattr(grads, name)
            previous = self.buffers.get(name)
            buf = g.copy() if previous is None else previous * self.momentum + g    # μ buf + g
            self.buffers[name] = buf
            direction = g + self.momentum * buf if self.nesterov else buf
            updated[name] = p - self.lr * direction                               # p − lr · d
        return RNNParams(**updated)
