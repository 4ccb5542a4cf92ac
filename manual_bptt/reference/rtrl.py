"""Real-time recurrent learning (RTRL): the one-layer model's gradients, computed forward in time.

The derivation's double sum, ∂L/∂W = Σ_t Σ_{k≤t} ∂L(t)/∂h(t) · (Π_{j=k+1..t} J(j)) · ∂h(k)/∂W with
J(j) = ∂h(j)/∂h(j-1) = diag(φ'(a(j))) W and ∂h(k)/∂W the immediate partial, can be bracketed two
ways. BPTT (rnn.py) sums over t first, from the end: one vector ∂L/∂h(k) carried backwards.
RTRL sums over k first, from the start: the sensitivity

    P(t) = ∂h(t)/∂θ = Σ_{k≤t} (Π_{j=k+1..t} J(j)) ∂h(k)/∂θ

obeys its own recursion, forwards,

    P(t) = diag(φ'(a(t))) (W P(t-1) + E(t))          P(0) = 0

where E(t) is the immediate partial of a(t): for W, E[i, p, q] = δ_ip h(t-1)_q; for U, δ_ip x(t)_q;
for b, δ_ip. Then ∂L/∂θ = Σ_t ∂L(t)/∂h(t) · P(t), a term that is ready as soon as step t is:
nothing of the past needs to be kept, but P(t) for W has H·H·H entries per batch element, and
W P(t-1) costs H⁴ multiplications per step (BPTT: H² a step, and every h(t) kept). See
docs/derivation.md, "The cost of the two orders".

The inputs are sensitivities of the same kind: ∂h(t)/∂h(0) (P(0) = I, then diag(φ') W P(t-1)),
and ∂h(t)/∂x(k) for every k ≤ t (born at step k as diag(φ'(a(k))) U). The latter are one per step
seen, so ∂L/∂x is the one result whose state grows with T, as forward mode must for a per-step input.

`rtrl(params, x, y, h0=None, **options)` takes `bptt`'s arguments for an RNNParams (nonlinearity,
loss, reduction, batch_first), validated by the same checks, and returns the same (L, RNNGrads):
tests/test_rtrl.py checks it equal to `bptt` (float64 within 1e-12 relative). Rows are batch
elements, as everywhere in the package; a sensitivity's first axis is the batch, its second the
unit i of h(t)_i, the rest the parameter's own axes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fast.rnn import check_finite_result
from ..inputs.options import NETWORK_ONLY, Options
from ..inputs.validation import Problem, check_problem
from ..model.params import RNNGrads, RNNParams
from ..model.readout import readout
from .elman import NONLINEARITIES


@dataclass
class Sensitivities:
    """P(t) = ∂h(t)/∂(…) at the current step t, per batch element.

    U:  (B, H, H, I)   ∂h(t)_i/∂U_pq
    W:  (B, H, H, H)   ∂h(t)_i/∂W_pq
    b:  (B, H, H)      ∂h(t)_i/∂b_p
    h0: (B, H, H)      ∂h(t)_i/∂h(0)_j
    x:  (t, B, H, I)   x[k-1] = ∂h(t)_i/∂x(k)_j, for every step k seen so far
    """

    U: np.ndarray
    W: np.ndarray
    b: np.ndarray
    h0: np.ndarray
    x: np.ndarray


def rtrl(params, x, y, h0=None, **options) -> tuple[float, RNNGrads]:
    """L and ∂L/∂ U, W, V, b, c, h0 and x by RTRL: `bptt`'s arguments and results for an RNNParams.

    params: RNNParams (U (H, I), W (H, H), V (O, H), b (H,), c (O,))
    x:      (T, B, I); (B, T, I) with batch_first; (T, I) unbatched
    y:      labels (T, B) or MSE targets (T, B, O), in x's layout
    h0:     (B, H), or (H,) unbatched; None: zeros
    options: nonlinearity, loss, reduction, batch_first, as for `bptt`

    A NetworkParams, and the network options (lengths, target, truncate), are refused: RTRL is
    written here for the derivation's one-layer model only.
    """
    if not isinstance(params, RNNParams):
        raise TypeError(
            f"params: rtrl computes the derivation's one-layer model and expected an RNNParams, got "
            f"{type(params).__name__}; for a network use manual_bptt.reference.bptt (or build the one-layer "
            "model with RNNParams(U=..., W=..., V=..., b=..., c=...))"
        )
    for name in NETWORK_ONLY:
        if name in options:
            raise ValueError(
                f"{name}: not an option of rtrl, which computes the one-layer model without padding, "
                f"per-sequence targets or truncation; got {name}={options[name]!r}"
            )
    options = Options.parse("rtrl", options, network=False)
    with np.errstate(under="ignore"):                  # underflow to 0 is rounding, not an error (as in bptt)
        return rtrl_of_problem(check_problem(params, x, y, h0, options))


def rtrl_of_problem(problem: Problem) -> tuple[float, RNNGrads]:
    """rtrl for a validated problem (time-major, batched)."""
    p = problem.params
    phi, phi_derivative = NONLINEARITIES[problem.nonlinearity]
    T, B, H, I = problem.T, problem.B, p.hidden_size, p.input_size
    dtype = p.dtype
    # "mean" over all T·B labels (T·B·O elements) is the mean over T of each step's own mean.
    per_step = 1.0 / T if problem.reduction == "mean" else 1.0
    eye = np.eye(H, dtype=dtype)

    h = np.zeros((B, H), dtype=dtype) if problem.h0 is None else problem.h0
    P = Sensitivities(
        U=np.zeros((B, H, H, I), dtype=dtype),
        W=np.zeros((B, H, H, H), dtype=dtype),
        b=np.zeros((B, H, H), dtype=dtype),
        h0=np.broadcast_to(eye, (B, H, H)),                            # ∂h(0)/∂h(0) = I
        x=np.zeros((0, B, H, I), dtype=dtype),
    )
    L = 0.0
    g = {name: np.zeros_like(array) for name, array in p.items()}      # ∂L/∂U, W, V, b, c, summed over t
    g["h0"] = np.zeros((B, H), dtype=dtype)                            # ∂L/∂h(0), one row per batch element
    dx = np.zeros((0, B, I), dtype=dtype)                              # ∂L/∂x(k) for the steps k seen so far

    for t in range(T):                                                 # Python's t is step t+1
        x_t, h_prev = problem.x[t], h
        a = x_t @ p.U.T + h_prev @ p.W.T + p.b                         # a(t) = U x(t) + W h(t-1) + b
        h = phi(a)                                                     # h(t) = φ(a(t))
        d = phi_derivative(a, h)[:, :, None]                           # diag(φ'(a(t))), one column per row i

        # P(t) = diag(φ'(a(t))) (W P(t-1) + E(t)), E(t) the immediate partial of a(t):
        P.W = d[..., None] * (np.einsum("ij,bjpq->bipq", p.W, P.W, optimize=True)
                              + np.einsum("ip,bq->bipq", eye, h_prev))       # E[i, p, q] = δ_ip h(t-1)_q
        P.U = d[..., None] * (np.einsum("ij,bjpq->bipq", p.W, P.U, optimize=True)
                              + np.einsum("ip,bq->bipq", eye, x_t))          # E[i, p, q] = δ_ip x(t)_q
        P.b = d * (np.einsum("ij,bjp->bip", p.W, P.b, optimize=True) + eye)  # E[i, p] = δ_ip
        P.h0 = d * np.einsum("ij,bjk->bik", p.W, P.h0, optimize=True)        # no immediate partial: h(0) is fixed
        P.x = d * np.einsum("ij,kbjq->kbiq", p.W, P.x, optimize=True)        # the past inputs, carried by J(t)
        P.x = np.concatenate([P.x, (d * p.U)[None]])                         # ∂h(t)/∂x(t) = diag(φ'(a(t))) U

        # Step t's own loss, and ∂L(t)/∂h(t) = Vᵀ ∂L(t)/∂o(t), ready now:
        y_t = problem.y[t][None]
        r = readout(p.V, p.c, h[None], y_t, loss=problem.loss, reduction=problem.reduction)
        L = L + per_step * r.L                                         # L = Σ_t L(t)
        dh = per_step * r.h_top[0]                                     # ∂L(t)/∂h(t), (B, H)
        g["V"] = g["V"] + per_step * r.V                               # + ∂L(t)/∂o(t) h(t)ᵀ
        g["c"] = g["c"] + per_step * r.c                               # + ∂L(t)/∂o(t)

        # ∂L/∂θ = Σ_t ∂L(t)/∂h(t) · P(t), summed over the batch where θ is shared:
        g["W"] = g["W"] + np.einsum("bi,bipq->pq", dh, P.W)
        g["U"] = g["U"] + np.einsum("bi,bipq->pq", dh, P.U)
        g["b"] = g["b"] + np.einsum("bi,bip->p", dh, P.b)
        g["h0"] = g["h0"] + np.einsum("bi,bij->bj", dh, P.h0)          # per batch element: h0 is one per row
        dx = np.concatenate([dx, np.zeros((1, B, I), dtype=dtype)])   # x(t) seen: its gradient starts at 0
        dx = dx + np.einsum("bi,kbij->kbj", dh, P.x)                   # every x(k), k ≤ t

    grads = RNNGrads(
        U=g["U"], W=g["W"], V=g["V"], b=g["b"], c=g["c"],
        h0=problem.h0_to_caller_layout(g["h0"]),
        x=problem.to_caller_layout(dx),
    )
    check_finite_result(problem, L, grads, computed_by="rtrl")
    return L, grads


__all__ = ["rtrl", "Sensitivities"]
