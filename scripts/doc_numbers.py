"""Every number the docs quote about the derivation, computed: run this to see where each comes from.

    python scripts/doc_numbers.py              # every section
    python scripts/doc_numbers.py gallery      # one section (names below)

Each section prints one block of text, and the docs show that block verbatim in a ```text fence
marked `<!-- numbers: scripts/doc_numbers.py SECTION -->`; tests/test_docs_numbers.py recomputes
every block and fails when a page no longer shows what this script prints. The sections:

    norm_vs_radius   ‖W‖₂ and the spectral radius of W at PyTorch's initial scale, against the
                     measured ‖∂h(40)/∂h(0)‖₂ (derivation.md §7)
    gallery          the README's figure, `bptt explain`'s default problem, read in numbers
    recursion        the worked example's ∂L/∂h(k) for k = 3, 2, 1, and the sizes of the
                     k-terms of ∂L(3)/∂W as ‖∂L(3)/∂a(k)‖ · ‖h(k−1)‖ (derivation.md §9)
    carousel         the LSTM's ∂c(t)/∂c(t−40), with forget gates near 1 (lstm.md)
    saturation       σ(±60) as the project computes it and as 1/(1 + e^(−a)) does (lstm.md, gru.md)
    whole_batch_detach  truncated BPTT with target "last" and lengths: the project against a
                     loop that detaches the whole batch (README); needs torch

The worked example's own block (derivation.md §9) is tests/test_worked_example.py's.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from manual_bptt import NetworkParams, bptt, rnn_forward  # noqa: E402
from manual_bptt.model.losses import loss_and_grad  # noqa: E402
from manual_bptt.reference.lstm import LSTMCell  # noqa: E402
from manual_bptt.reference.sequence import sequence_forward  # noqa: E402
from manual_bptt.reference.step import sigmoid  # noqa: E402
from manual_bptt.tools.derivation import contribution_norms, contributions, hidden_jacobian  # noqa: E402
from manual_bptt.tools.lags import lag_profile  # noqa: E402
from manual_bptt.tools.network_derivation import state_jacobian  # noqa: E402
from manual_bptt.verification.problems import random_network_problem, random_problem  # noqa: E402


def g3(value: float) -> str:
    return f"{value:.2g}" if abs(value) < 1e-2 or abs(value) >= 1e3 else f"{value:.3g}"


def norm_vs_radius() -> str:
    """At PyTorch's scale ‖W‖₂ > 1, yet the 40-step Jacobian is tiny: the spectral radius predicts it."""
    lines = ["T = 40, tanh, B = 4, I = 5, O = 6, seed 0 (random_problem: W as PyTorch draws it)",
             " H   ‖W‖₂   ‖W‖₂^40   ρ(W)   ρ(W)^40   ‖∂h(40)/∂h(0)‖₂ (largest over the batch)"]
    for H in (8, 16, 32, 64):
        problem = random_problem(T=40, B=4, I=5, H=H, O=6, seed=0)
        W = problem.params.W
        norm = float(np.linalg.norm(W, 2))                                 # largest singular value
        radius = float(np.abs(np.linalg.eigvals(W)).max())                 # largest |eigenvalue|
        J = hidden_jacobian(problem.params, problem.x, problem.h0, t=40, k=0)
        lines.append(f"{H:2d}   {norm:.3f}  {norm**40:8.3g}   {radius:.3f}  {radius**40:8.2g}   "
                     f"{float(J.spectral_norm.max()):.2g}")
    return "\n".join(lines)


def gallery() -> str:
    """`bptt explain`'s default problem (T = 40, B = 4, I = 5, H = 16, O = 6, seed 0), W × 0.5, 1, 4."""
    problem = random_problem(T=40, B=4, I=5, H=16, O=6, seed=0)
    lines = ["bptt explain's problem: T = 40, B = 4, I = 5, H = 16, O = 6, seed 0",
             "φ     W ×   max‖h(40)‖   Σ_t‖term‖ at lag 0   at lag 39   ratio     σ_max(∂h(40)/∂h(0))"]
    for nonlinearity in ("tanh", "relu"):
        for scale in (0.5, 1.0, 4.0):
            p = problem.params.replace(W=problem.params.W * scale)
            with np.errstate(over="ignore"):
                h = rnn_forward(p, problem.x, problem.h0, nonlinearity=nonlinearity).h
                profile = lag_profile(contribution_norms(p, problem.x, problem.y, problem.h0,
                                                         nonlinearity=nonlinearity))
                J = hidden_jacobian(p, problem.x, problem.h0, t=40, k=0, nonlinearity=nonlinearity)
            lines.append(f"{nonlinearity:4s}  {scale:3g}   {g3(float(np.linalg.norm(h[40], axis=-1).max())):>10s}   "
                         f"{g3(float(profile[0])):>19s}   {g3(float(profile[39])):>9s}   "
                         f"{g3(float(profile[39] / profile[0])):>7s}   {g3(float(J.spectral_norm.max())):>8s}")
    return "\n".join(lines)


def recursion() -> str:
    """The worked example's backward recursion by hand, checked against bptt."""
    from tests.test_worked_example import H0, PARAMS, X, Y

    p = PARAMS
    cache = rnn_forward(p, X, H0)
    h = cache.h[:, 0]                                                      # h[t] = h(t)
    _, do = loss_and_grad("cross_entropy", "sum", cache.o[:, 0], Y)        # ∂L(t)/∂o(t), one row per t
    dphi = 1 - h[1:] ** 2                                                  # tanh'(a(t)) = 1 - h(t)²
    lines = ["∂L/∂h(k) = Vᵀ ∂L(k)/∂o(k) + Wᵀ ∂L/∂a(k+1),   ∂L/∂a(k) = tanh'(a(k)) ⊙ ∂L/∂h(k),   ∂L/∂a(4) = 0"]
    da_next, dW = np.zeros(2), np.zeros((2, 2))
    for k in (3, 2, 1):
        from_output = p.V.T @ do[k - 1]                                    # Vᵀ ∂L(k)/∂o(k)
        dh = from_output + p.W.T @ da_next                                 # ∂L/∂h(k)
        da_next = dphi[k - 1] * dh                                         # ∂L/∂a(k)
        dW += np.outer(da_next, h[k - 1])                                  # ∂L/∂a(k) h(k-1)ᵀ
        lines.append(f"k={k}: Vᵀ ∂L({k})/∂o({k}) = {fmt(from_output)}   ∂L/∂h({k}) = {fmt(dh)}   "
                     f"∂L/∂a({k}) = {fmt(da_next)}")
    _, g = bptt(p, X, Y, H0)
    assert np.allclose(dW, g.W, rtol=1e-12, atol=1e-15), "the hand recursion must give bptt's ∂L/∂W"
    assert np.allclose(p.W.T @ da_next, g.h0, rtol=1e-12, atol=1e-15), "and bptt's ∂L/∂h(0)"
    lines.append(f"Σ_k ∂L/∂a(k) h(k-1)ᵀ = {fmt(dW)} = bptt's ∂L/∂W;   ∂L/∂h(0) = Wᵀ ∂L/∂a(1) = {fmt(g.h0)}")
    lines.append("the k-terms of ∂L(3)/∂W, each the outer product ∂L(3)/∂a(k) h(k-1)ᵀ, so ‖term‖ = ‖∂L(3)/∂a(k)‖ ‖h(k-1)‖:")
    terms = contributions(p, X, Y, H0, wrt="W")[2]                         # [k-1]: the term of ∂L(3)/∂W through k
    for k in (3, 2, 1):
        size, state = float(np.linalg.norm(terms[k - 1])), float(np.linalg.norm(h[k - 1]))
        lines.append(f"k={k}: ‖term‖ = {size:.4f} = ‖∂L(3)/∂a({k})‖ {size / state:.4f} × ‖h({k - 1})‖ {state:.4f}")
    return "\n".join(lines)


def fmt(array) -> str:
    return np.array2string(np.asarray(array), precision=4, suppress_small=True, floatmode="fixed",
                           separator=", ", max_line_width=200).replace("\n", "")


def carousel() -> str:
    """tests/test_network_derivation.py's networks: an LSTM with the forget gate's bias at 5, and a tanh RNN."""
    H, I, T, B, lag = 16, 4, 41, 2, 40
    lines = [f"H = {H}, T = {T}, B = {B}, PyTorch's initial scale, forget-gate bias 5 (f ≈ σ(5) = {sigmoid(5.0):.3f}); "
             f"lag {lag}",
             "seed   σ of ∂c(41)/∂c(1), min … max   ‖∂c(41)/∂c(1)‖₂ over the batch   Π f, min … max   "
             "tanh RNN ‖∂h(41)/∂h(1)‖₂"]
    for seed in range(3):
        rng = np.random.default_rng(seed)                                  # drawn as the test draws them
        state = NetworkParams.random(cell="lstm", input_size=I, hidden_size=H, output_size=2, rng=rng).state_dict()
        state["bias_ih_l0"] = state["bias_ih_l0"].copy()
        state["bias_ih_l0"][H:2 * H] = 5.0                                 # the forget gate's block (i, f, g, o)
        lstm = NetworkParams.from_state_dict(state, cell="lstm")
        rnn = NetworkParams.random(cell="rnn_tanh", input_size=I, hidden_size=H, output_size=2, rng=rng)
        x = rng.standard_normal((T, B, I))
        cc = state_jacobian(lstm, x, t=T, k=T - lag).block("c", "c")
        sv = cc.singular_values
        forward = sequence_forward(LSTMCell(), lstm.layer(0, 0), x, {"h": np.zeros((B, H)), "c": np.zeros((B, H))},
                                   mask=None)
        direct = np.prod([step.f for step in forward.steps[T - lag:]], axis=0)   # Π_{j=k+1..t} f(j), per unit
        plain = state_jacobian(rnn, x, t=T, k=T - lag).spectral_norm
        lines.append(f"{seed}      {f'{sv.min():.2g} … {sv.max():.3g}':31s}  "
                     f"{f'{cc.spectral_norm.min():.3g} … {cc.spectral_norm.max():.3g}':32s}  "
                     f"{f'{direct.min():.2f} … {direct.max():.2f}':15s}  {plain.min():.1g} … {plain.max():.1g}")
    return "\n".join(lines)


def saturation() -> str:
    """σ(a) = ½ tanh(a/2) + ½ saturates to exact 0 and 1 in float64; 1/(1 + e^(−a)) does not reach 0."""
    lines = [f"½ tanh(a/2) + ½ in float64:  σ(-60) = {float(sigmoid(np.float64(-60.0)))!r}   "
             f"σ(60) = {float(sigmoid(np.float64(60.0)))!r}",
             f"1/(1 + e^(-a)) in float64:   σ(-60) = {1 / (1 + math.exp(60.0)):.2g}   σ(60) = {1 / (1 + math.exp(-60.0))!r}"]
    try:
        import torch
    except ImportError:
        lines.append("torch.sigmoid: (torch is not installed)")
    else:
        s = torch.sigmoid(torch.tensor([-60.0, 60.0], dtype=torch.float64))
        lines.append(f"torch.sigmoid in float64:    σ(-60) = {float(s[0]):.2g}   σ(60) = {float(s[1])!r}")
    return "\n".join(lines)


def whole_batch_detach() -> str:
    """Truncated BPTT, target "last", lengths: the project (and its twin) cut only the rows still running;
    a loop that detaches the whole batch cuts a finished sequence's held final state too."""
    try:
        import torch
    except ImportError:
        return "(needs torch)"
    problem = random_network_problem(T=8, B=3, I=3, H=4, O=3, cell="rnn_tanh", num_layers=1, bidirectional=False,
                                     lengths="random", target="last", truncate=3, seed=0)
    p, K = problem.params, problem.options["truncate"]
    lengths = problem.options["lengths"]
    _, g = problem.run(bptt)
    weights = {name: torch.tensor(a, requires_grad=True) for name, a in p.items()}
    x, h = torch.tensor(problem.x), torch.tensor(problem.h0[0])
    for t in range(problem.x.shape[0]):                                   # the loop people write
        new = torch.tanh(x[t] @ weights["weight_ih_l0"].T + weights["bias_ih_l0"]
                         + h @ weights["weight_hh_l0"].T + weights["bias_hh_l0"])
        running = torch.tensor(t < lengths)[:, None]
        h = torch.where(running, new, h)                                  # a finished sequence holds its state
        if (t + 1) % K == 0:
            h = h.detach()                                                # the whole batch, finished rows too
    o = h @ weights["head.weight"].T + weights["head.bias"]
    torch.nn.functional.cross_entropy(o, torch.tensor(problem.y), reduction="sum").backward()
    lines = [f"T = 8, B = 3, H = 4, tanh, lengths {list(map(int, lengths))}, truncate = {K}, target \"last\", seed 0",
             "weight          max|project − whole-batch detach|   max|project|"]
    for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "head.weight"):
        diff = float(np.abs(g[name] - weights[name].grad.numpy()).max())
        lines.append(f"{name:14s}  {diff:32.3g}   {float(np.abs(g[name]).max()):.3g}")
    return "\n".join(lines)


SECTIONS = {f.__name__: f for f in (norm_vs_radius, gallery, recursion, carousel, saturation, whole_batch_detach)}


def main(argv: list[str]) -> int:
    names = argv or list(SECTIONS)
    unknown = [name for name in names if name not in SECTIONS]
    if unknown:
        print(f"doc_numbers.py: unknown section {unknown[0]!r}; expected one of {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    for name in names:
        print(f"== {name}")
        print(SECTIONS[name]())
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
