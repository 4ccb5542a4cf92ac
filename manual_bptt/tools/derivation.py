"""The derivation of section 6.9, evaluated literally: the sum over k and its terms.

The source writes the gradient of one step's loss as a sum over the earlier
steps k through which W acts, each term a chain of Jacobians:

    ∂L(t)/∂W = Σ_{k=1..t} ∂L(t)/∂o(t) · ∂o(t)/∂h(t) · (Π_{j=k+1..t} ∂h(j)/∂h(j-1)) · ∂h(k)/∂W

and ∂L/∂W = Σ_t ∂L(t)/∂W; the same for U and b. Made exact (docs/derivation.md):

- t and k run over 1..T. The source starts k at 0, but h(0) = h0 does not
  depend on W, U or b, so that term is zero; it is the term of ∂L(t)/∂h0.
- ∂h(k)/∂W is the immediate partial, h(k-1) held fixed: through a(k) alone,
  ∂h(k)/∂W = diag(φ'(a(k))) · ∂a(k)/∂W with ∂a(k)/∂W_pq = e_p h(k-1)_q.
- ∂h(j)/∂h(j-1) = diag(φ'(a(j))) · W, an (H, H) matrix per batch element.
- Π_{j=k+1..t} is the product J(t) J(t-1) … J(k+1) in that order (the empty
  product, for k = t, is the identity).

`seed_formula_grads` evaluates exactly that, with explicit (B, H, H) Jacobian
products, in O(T²) of them; it exists to be compared with `bptt`, whose O(T)
recursion computes the same sums. `contributions` returns every term
[t-1, k-1] of that double sum separately, `contribution_norms` their sizes, and
`hidden_jacobian` the product ∂h(t)/∂h(k) itself, whose singular values show
gradients vanishing or exploding.

Each of them raises `NonFiniteError`, as `bptt` does, when its finite inputs make
the computation leave the float range, naming what overflowed and at which step:
an overflowed h(t) would otherwise come back as NaN terms, or as a Jacobian of
zeros (relu's φ' is 0 at NaN). The check looks at the results once, after the
computation, and replays it step by step only when something is not finite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..fast.rnn import RNNCache, _forward, check_finite_result, forward_overflow
from ..inputs.options import Options, takes_options
from ..inputs.overflow import NonFiniteError, all_finite, backward_overflow, message_head, product_overflow
from ..inputs.validation import Problem, check_option, check_problem
from ..model import activations, losses
from ..model.params import RNNGrads, RNNParams

WRT = ("U", "W", "b")


@takes_options
def seed_formula_grads(params: RNNParams, x, y, h0=None, **options) -> RNNGrads:
    """Every gradient by the source's formula, term by term (O(T²) Jacobian products).

    Same arguments and result as `bptt` (less the loss value): an RNNGrads
    shaped like the arguments. V and c come from their one-term formula
    ∂L/∂V = Σ_t ∂L(t)/∂o(t) h(t)ᵀ; h0 and x from the same chains as W, stopped
    at h(0) and continued through ∂a(k)/∂x(k) = U. NonFiniteError as for `bptt`.
    """
    problem = check_problem(params, x, y, h0, Options.parse("seed_formula_grads", options, network=False))
    p = problem.params
    cache, L, do = _forward_and_upstream(problem)
    T, B, _ = cache.x.shape
    dphi = activations.dphi(problem.nonlinearity, cache.a, cache.h[1:])
    J = dphi[:, :, :, None] * p.W                                  # J[j-1] = ∂h(j)/∂h(j-1) = diag(φ'(a(j))) W

    g = {name: np.zeros_like(array) for name, array in p.items()}
    g["h0"] = np.zeros_like(cache.h[0])
    g["x"] = np.zeros_like(cache.x)
    for t in range(1, T + 1):
        dL_do = do[t - 1]                                          # ∂L(t)/∂o(t), (B, O)
        g["V"] += dL_do.T @ cache.h[t]                             # ∂L(t)/∂o(t) · ∂o(t)/∂V
        g["c"] += dL_do.sum(axis=0)                                # ∂L(t)/∂o(t) · ∂o(t)/∂c
        dL_dh_t = dL_do @ p.V                                      # ∂L(t)/∂o(t) · ∂o(t)/∂h(t), (B, H)
        dL_dh_k = dL_dh_t                                          # k = t: the product over j is empty
        chain = None
        for k in range(t, 0, -1):
            dL_da_k = dL_dh_k * dphi[k - 1]                        # · ∂h(k)/∂a(k) = diag(φ'(a(k)))
            g["W"] += dL_da_k.T @ cache.h[k - 1]                   # · ∂a(k)/∂W, immediate: h(k-1)
            g["U"] += dL_da_k.T @ cache.x[k - 1]                   # · ∂a(k)/∂U: x(k)
            g["b"] += dL_da_k.sum(axis=0)                          # · ∂a(k)/∂b: 1
            g["x"][k - 1] += dL_da_k @ p.U                         # · ∂a(k)/∂x(k) = U
            # Π_{j=k..t} ∂h(j)/∂h(j-1), one more factor on the right, then ∂L(t)/∂h(k-1):
            chain = J[k - 1] if chain is None else chain @ J[k - 1]
            dL_dh_k = np.einsum("bi,bij->bj", dL_dh_t, chain)
        g["h0"] += dL_dh_k                                         # ∂L(t)/∂h(0): the chain down to j = 1
    grads = RNNGrads(
        U=g["U"], W=g["W"], V=g["V"], b=g["b"], c=g["c"],
        h0=problem.h0_to_caller_layout(g["h0"]),
        x=problem.to_caller_layout(g["x"]),
    )
    check_finite_result(problem, L, grads, computed_by="seed_formula_grads")   # bptt's report, once
    return grads


@takes_options
def contributions(params: RNNParams, x, y, h0=None, *, wrt: str = "W", **options) -> np.ndarray:
    """Every term of the double sum, separately: shape (T, T, *shape of wrt).

    Entry [t-1, k-1] is the term of ∂L(t)/∂wrt that flows through step k
    (summed over the batch); it is zero for k > t. Summed over both axes it is
    ∂L/∂wrt. `wrt` is "U", "W" or "b". Memory is T² times the parameter's size.
    NonFiniteError if a state, the loss or a term overflows.
    """
    problem, L, steps = _checked_steps(params, x, y, h0, wrt, Options.parse("contributions", options, network=False))
    T = problem.T
    terms = np.zeros((T, T) + getattr(problem.params, wrt).shape, dtype=problem.params.dtype)
    for k, dL_da_k, z_k in steps:
        # dL_da_k[i] = ∂L(t)/∂a(k) for t = k + i, times the immediate ∂a(k)/∂wrt: z(k)ᵀ, or 1 for b.
        if z_k is None:
            terms[k - 1:, k - 1] = dL_da_k.sum(axis=1)
        else:
            terms[k - 1:, k - 1] = np.einsum("tbi,bj->tij", dL_da_k, z_k)
    check_finite_terms(problem, L, terms, wrt=wrt, computed_by="contributions")
    return terms


@takes_options
def contribution_norms(params: RNNParams, x, y, h0=None, *, wrt: str = "W", **options) -> np.ndarray:
    """The Frobenius norm of each term of `contributions`, shape (T, T), without storing them.

    For W and U a term is Σ_n δ_n z_nᵀ over the batch (δ = ∂L(t)/∂a(k), z = h(k-1)
    or x(k)); its squared norm is Σ_{n,m} (δ_n·δ_m)(z_n·z_m), so only (B, B) Gram
    matrices are formed: O(T²·B²·H) work, fine for T in the hundreds. A squared norm
    that leaves the float range while the norm does not is redone on scaled factors;
    NonFiniteError if a state, the loss or a term itself overflows.
    """
    checked = Options.parse("contribution_norms", options, network=False)
    problem, L, steps = _checked_steps(params, x, y, h0, wrt, checked)
    with np.errstate(over="ignore", invalid="ignore"):             # a square that overflows is redone below
        norms = _norms_table(problem, steps, _term_norms)
    if not all_finite(norms):
        # Some ‖term‖² left the float range: again, on factors scaled to at most 1 (once, on failure only).
        problem, L, steps = _checked_steps(params, x, y, h0, wrt, checked)
        norms = _norms_table(problem, steps, _term_norms_scaled)
    check_finite_terms(problem, L, norms, wrt=wrt, computed_by="contribution_norms")
    return norms


def _norms_table(problem: Problem, steps, term_norms) -> np.ndarray:
    """(T, T): [t-1, k-1] = term_norms(δ, z(k)) for every source t ≥ k, 0 above the diagonal."""
    norms = np.zeros((problem.T, problem.T), dtype=problem.params.dtype)
    for k, dL_da_k, z_k in steps:
        norms[k - 1:, k - 1] = term_norms(dL_da_k, z_k)
    return norms


def _term_norms(dL_da_k: np.ndarray, z_k: np.ndarray | None) -> np.ndarray:
    """‖Σ_n δ_n z_nᵀ‖ for each source t, δ = dL_da_k (T-k+1, B, H), z = z_k (B, ·); None for b (Σ_n δ_n)."""
    if z_k is None:
        return np.linalg.norm(dL_da_k.sum(axis=1), axis=-1)
    delta_gram = np.einsum("tbi,tci->tbc", dL_da_k, dL_da_k)      # (δ_n·δ_m) for each t
    squared = np.einsum("tbc,bc->t", delta_gram, z_k @ z_k.T)      # Σ_{n,m} (δ_n·δ_m)(z_n·z_m)
    return np.sqrt(np.maximum(squared, 0))                         # ≥ 0 up to rounding


def _term_norms_scaled(dL_da_k: np.ndarray, z_k: np.ndarray | None) -> np.ndarray:
    """`_term_norms` of δ / max|δ| (per t) and z / max|z|, times both maxima: the squares stay in
    range whenever the norm does. NaN where δ itself is not finite."""
    with np.errstate(over="ignore", invalid="ignore"):
        scale_delta = np.abs(dL_da_k).max(axis=(1, 2))
        scale_delta[scale_delta == 0] = 1                          # a zero δ: its norm is 0 either way
        scale_z = 1 if z_k is None else max(np.abs(z_k).max(), np.finfo(z_k.dtype).tiny)
        scaled = _term_norms(dL_da_k / scale_delta[:, None, None], None if z_k is None else z_k / scale_z)
        return scaled * scale_delta * scale_z                       # ‖δ zᵀ‖ = max|δ| max|z| ‖δ' z'ᵀ‖


@dataclass(frozen=True)
class HiddenJacobian:
    """∂h(t)/∂h(k) = Π_{j=k+1..t} diag(φ'(a(j))) W, one (H, H) matrix per batch element.

    matrix: (B, H, H), or (H, H) for an unbatched x; entry [.., i, j] is
    ∂h(t)_i / ∂h(k)_j. `np.asarray(jacobian)` gives the matrix;
    `manual_bptt.tools.plotting.plot_hidden_jacobian(jacobian)` draws it (the maths never
    imports the plotting: the dependency points one way).
    """

    matrix: np.ndarray
    t: int
    k: int

    def __array__(self, dtype=None, copy=None):
        # NumPy 2 hands dtype and copy over and uses what comes back as it is:
        # np.array(J) (copy=True) must not return the matrix itself, and
        # copy=False forbids the copy a cast would need. np.asarray(J) is the matrix.
        same_dtype = dtype is None or np.dtype(dtype) == self.matrix.dtype
        if copy is False and not same_dtype:
            raise ValueError(f"copy: a cast of the Jacobian to {np.dtype(dtype)} needs a copy, got copy=False")
        if same_dtype:
            return self.matrix.copy() if copy else self.matrix
        return self.matrix.astype(dtype)

    @property
    def shape(self) -> tuple:
        return self.matrix.shape

    @property
    def singular_values(self) -> np.ndarray:
        """Per batch element, in decreasing order: (B, H), or (H,) unbatched."""
        return np.linalg.svd(self.matrix, compute_uv=False)

    @property
    def spectral_norm(self) -> np.ndarray:
        """The largest singular value ‖∂h(t)/∂h(k)‖₂: (B,), or a scalar unbatched."""
        return self.singular_values[..., 0]


def hidden_jacobian(
    params: RNNParams,
    x,
    h0=None,
    *,
    t: int,
    k: int,
    nonlinearity: str = "tanh",
    batch_first: bool = False,
) -> HiddenJacobian:
    """∂h(t)/∂h(k) for 0 ≤ k ≤ t ≤ T, as the product of the one-step Jacobians.

    Its singular values measure how much a signal at step t is shrunk or
    stretched on its way back to step k: the vanishing and exploding gradients.
    NonFiniteError if a state h(j), j ≤ t, or the product overflows.
    """
    options = Options(nonlinearity=nonlinearity, batch_first=batch_first)
    problem = check_problem(params, x, None, h0, options, need_y=False)
    check_steps(problem, t, k)
    return jacobian_of_problem(problem, t, k, computed_by="hidden_jacobian")


def check_steps(problem: Problem, t, k) -> None:
    """t and k: int step indices with 0 ≤ k ≤ t ≤ T."""
    for name, value in (("t", t), ("k", k)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name}: expected an int step index, got {value!r}")
    if not 0 <= k <= t <= problem.T:
        raise ValueError(f"t, k: expected 0 <= k <= t <= T = {problem.T}, got t = {t}, k = {k}")


def jacobian_of_problem(problem: Problem, t: int, k: int, *, computed_by: str) -> HiddenJacobian:
    """∂h(t)/∂h(k) on a checked problem and checked steps (`hidden_jacobian`, `singular_values_by_lag`)."""
    p = problem.params
    cache = _forward(p, problem.x, problem.h0, problem.nonlinearity)
    dphi = activations.dphi(problem.nonlinearity, cache.a, cache.h[1:])
    B, H = problem.B, p.hidden_size
    chain = np.broadcast_to(np.eye(H, dtype=p.dtype), (B, H, H))
    for j in range(t, k, -1):                                      # J(t) J(t-1) … J(k+1)
        chain = chain @ (dphi[j - 1][:, :, None] * p.W)
    matrix = np.array(chain)                                       # own the memory (not a broadcast view)
    # relu's φ' is 0 at a NaN a(j): an overflowed state can leave a finite (zero) product, so
    # the states it was evaluated at are checked too, not only the product.
    if not all_finite(cache.h[1:t + 1], matrix):
        raise hidden_jacobian_overflow(problem, t, k, computed_by=computed_by)
    return HiddenJacobian(matrix=matrix if problem.batched else matrix[0], t=t, k=k)


def hidden_jacobian_overflow(problem: Problem, t: int, k: int, *, computed_by: str) -> NonFiniteError:
    """Why ∂h(t)/∂h(k) is not finite: the first h(j), j ≤ t, that overflowed; else the factor of
    the product from which it did. Replays the forward pass and the product one step at a time
    (only once something is known not to be finite)."""
    error = forward_overflow(problem, None, computed_by=computed_by, last_step=t, readout=False)
    if error is not None:
        return error
    p = problem.params
    with np.errstate(all="ignore"):
        cache = _forward(p, problem.x, problem.h0, problem.nonlinearity)
        dphi = activations.dphi(problem.nonlinearity, cache.a, cache.h[1:])
        chain = np.eye(p.hidden_size, dtype=p.dtype)
        for j in range(t, k, -1):
            chain = chain @ (dphi[j - 1][:, :, None] * p.W)        # ∂h(t)/∂h(j-1) = J(t) … J(j)
            if not np.isfinite(chain).all():
                return product_overflow(problem, t=t, k=k, step=j - 1, computed_by=computed_by)
    return NonFiniteError(f"{message_head(problem, computed_by)}: ∂h(t)/∂h(k) for t = {t}, k = {k} is not finite, "
                          "although the states to step t and the product, replayed here, are",
                          quantity="∂h(t)/∂h(k)", step=None)


def check_finite_terms(problem: Problem, L: float, table: np.ndarray, *, wrt: str, computed_by: str) -> None:
    """NonFiniteError if L or an entry of a (T, T, ...) table of terms [t-1, k-1] is not finite,
    naming the first h(t), o(t) or L(t) that overflowed, else the step k (the backward pass
    meets k = T first) through which a non-finite term flows."""
    if math.isfinite(L) and all_finite(table):
        return
    error = forward_overflow(problem, L, computed_by=computed_by)
    if error is None:
        k = max(k for k in range(1, problem.T + 1) if not np.isfinite(table[:, k - 1]).all())
        error = backward_overflow(problem, k, computed_by=computed_by,
                                  seen_in=f"the terms of ∂L/∂{wrt} that flow through step t")
    raise error


def _forward_and_upstream(problem: Problem) -> tuple[RNNCache, float, np.ndarray]:
    """The forward cache, L and do[t-1] = ∂L(t)/∂o(t) (the reduction's factor included)."""
    cache = _forward(problem.params, problem.x, problem.h0, problem.nonlinearity)
    L, do = losses.loss_and_grad(problem.loss, problem.reduction, cache.o, problem.y)
    return cache, L, do


def _checked_steps(params, x, y, h0, wrt: str, options: Options):
    """Validate, run forward, and return (problem, L, steps) for contributions and their norms.

    steps yields (k, δ, z(k)) for k = T … 1: δ[t-k] = ∂L(t)/∂a(k) for t = k..T, and
    z(k) what a(k) multiplies `wrt` by, the immediate partial: h(k-1) for W, x(k)
    for U, None for b (a(k) holds b itself).
    """
    check_option("wrt", wrt, WRT)
    problem = check_problem(params, x, y, h0, options)
    cache, L, do = _forward_and_upstream(problem)
    z = {"W": cache.h[:-1], "U": cache.x, "b": None}[wrt]
    steps = (
        (k, dL_da_k, None if z is None else z[k - 1])
        for k, dL_da_k in _terms_by_step(problem.params, cache, do)
    )
    return problem, L, steps


def _terms_by_step(p: RNNParams, cache: RNNCache, do: np.ndarray):
    """For k = T down to 1, yield (k, δ) with δ[t-k] = ∂L(t)/∂a(k) for t = k..T: (T-k+1, B, H).

    Every source t is carried back at once: row t-1 of `dL_dh` holds ∂L(t)/∂h(k)
    for the current k, so each step is one product over all the sources still
    active, and the whole table costs T products instead of T².
    """
    T = cache.x.shape[0]
    dphi = activations.dphi(cache.nonlinearity, cache.a, cache.h[1:])
    local = do @ p.V                                               # ∂L(t)/∂o(t) · ∂o(t)/∂h(t) for every t
    dL_dh = np.empty_like(local)
    for k in range(T, 0, -1):
        dL_dh[k - 1] = local[k - 1]                                # source t = k enters at its own step
        dL_da = dL_dh[k - 1:] * dphi[k - 1]                        # ∂L(t)/∂a(k) = ∂L(t)/∂h(k) ⊙ φ'(a(k))
        yield k, dL_da
        dL_dh[k - 1:] = dL_da @ p.W                                # ∂L(t)/∂h(k-1) = Wᵀ ∂L(t)/∂a(k)
