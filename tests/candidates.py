"""Wrong backward passes, as a student or an engineer might write them, for
`compare(..., manual=fn)` and the test kit to catch."""

from __future__ import annotations

import numpy as np

from manual_bptt import RNNGrads, bptt
from manual_bptt.model import activations, losses
from manual_bptt.fast.rnn import _forward
from manual_bptt.inputs.validation import check_problem


def _changed(**changes):
    def candidate(*args, **options):
        L, g = bptt(*args, **options)
        return L, RNNGrads(**{**dict(g.items()), **{name: f(getattr(g, name)) for name, f in changes.items()}})
    return candidate


transposed_dW = _changed(W=lambda dW: dW.T.copy())
transposed_dW.__qualname__ = "transposed_dW"
dU_off_by_1_percent = _changed(U=lambda dU: dU * 1.01)
dU_off_by_1_percent.__qualname__ = "dU_off_by_1_percent"


def off_by(relative: float):
    """Every gradient (and L) off by this much relative: far below any visible bug."""
    def candidate(*args, **options):
        L, g = bptt(*args, **options)
        return L * (1 + relative), RNNGrads(**{name: a * (1 + relative) for name, a in g.items()})
    candidate.__qualname__ = f"off_by_{relative:g}"
    return candidate


def first_step_dropped(params, x, y, h0=None, **options):
    """The recursion stops at t = 2 (`for t in reversed(range(1, T))`): ∂L/∂a(1) is never
    formed, so step 1 adds nothing to ∂W, ∂U, ∂b, and ∂h0 and ∂x(1) stay zero."""
    problem = check_problem(params, x, y, h0, **options)
    p, cache = problem.params, _forward(problem.params, problem.x, problem.h0, problem.nonlinearity)
    T, B, _ = cache.x.shape
    L, do = losses.loss_and_grad(problem.loss, problem.reduction, cache.o, problem.y)
    dphi = activations.dphi(problem.nonlinearity, cache.a, cache.h[1:])
    da = np.zeros_like(cache.a)
    dh = np.zeros((B, p.hidden_size), dtype=p.dtype)
    for t in range(T, 1, -1):                              # the bug: t = 1 is missing
        da[t - 1] = (do[t - 1] @ p.V + dh) * dphi[t - 1]   # ∂L/∂a(t) = φ'(a(t)) ⊙ ∂L/∂h(t)
        dh = da[t - 1] @ p.W                               # ∂L/∂h(t-1) = Wᵀ ∂L/∂a(t)
    g = RNNGrads(
        U=np.einsum("tbh,tbi->hi", da, cache.x), W=np.einsum("tbh,tbk->hk", da, cache.h[:-1]),
        V=np.einsum("tbo,tbh->oh", do, cache.h[1:]), b=da.sum((0, 1)), c=do.sum((0, 1)),
        h0=problem.h0_to_caller_layout(np.zeros_like(dh)), x=problem.to_caller_layout(da @ p.U),
    )
    return L, g


def transposed_dU(params, x, y, h0=None, **options):
    """∂L/∂U returned as (I, H): the shape of Uᵀ, a shape mismatch wherever I ≠ H."""
    L, g = bptt(params, x, y, h0, **options)
    return L, RNNGrads(**{**dict(g.items()), "U": g.U.T.copy()})


def crashes_on_batches(params, x, y, h0=None, **options):
    """Raises two frames down on a batch of more than one sequence (the kit shows both frames)."""
    if np.ndim(x) == 3 and min(np.shape(x)[:2]) > 1:
        _unbatch(x)
    return bptt(params, x, y, h0, **options)


def _unbatch(x):
    raise IndexError(f"batch not supported: x has shape {np.shape(x)}")


def dx_after_step_1_dropped(params, x, y, h0=None, **options):
    """A network's ∂L/∂x(t) zeroed for t ≥ 2 (only the first step's survives): wrong from T = 2 on,
    with the worst entry at some step t ≥ 2, in whichever axis the layout puts time."""
    L, g = bptt(params, x, y, h0, **options)
    dx = g.x.copy()
    if options.get("batch_first") and dx.ndim == 3:
        dx[:, 1:] = 0                                     # (B, T, I): time is axis 1
    else:
        dx[1:] = 0                                        # (T, B, I) or (T, I): time is axis 0
    return L, type(g)(params=g.params, h0=g.h0, x=dx, c0=g.c0)
