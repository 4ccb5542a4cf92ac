"""The cost of the derivation's two bracketings, measured: RTRL against BPTT as T and H grow.

    python benchmarks/rtrl_cost.py            # the table of docs/derivation.md's cost section
    python benchmarks/rtrl_cost.py --quick    # smaller sizes, one round: a smoke test

Both are the readable reference (`manual_bptt.reference.bptt` and `manual_bptt.reference.rtrl`),
so that neither has tricks the other lacks; one-layer tanh model, B = 4, I = O = 4, float64,
cross-entropy. For each size it prints the median time of a whole call (forward, loss, every
gradient) over a few rounds, and the peak memory the call allocates (tracemalloc, which sees
NumPy's buffers), and checks first that the two agree.

What the theory says (docs/derivation.md, "The cost of the two orders"): BPTT is O(T·B·H²) time
and keeps every h(t), O(T·B·H) memory; RTRL is O(T·B·H⁴) time and keeps the sensitivities
∂h(t)/∂W, O(B·H³), whatever T, plus (for ∂L/∂x alone) one (B, H, I) sensitivity per input seen.
Needs NumPy alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from manual_bptt import reference  # noqa: E402
from manual_bptt.verification.problems import random_problem  # noqa: E402

B, I, O = 4, 4, 4
#: (T, H) pairs: T grows at H = 16, then H grows at T = 40.
SIZES = [(T, 16) for T in (10, 20, 40, 80, 160)] + [(40, H) for H in (4, 8, 32, 64)]
QUICK_SIZES = [(T, 8) for T in (5, 10, 20)] + [(10, H) for H in (4, 16)]


def peak_bytes(function, problem) -> int:
    """The most bytes allocated at once during one call, above what was allocated before it."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        problem.run(function)
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def median_seconds(function, problem, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        problem.run(function)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def agree(problem) -> float:
    """max over gradients of max|rtrl − bptt| / max|bptt|: must be rounding."""
    _, g = problem.run(reference.bptt)
    _, g_rtrl = problem.run(reference.rtrl)
    return max(float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-300)) for (_, a), (_, b) in zip(g.items(), g_rtrl.items()))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one round")
    args = parser.parse_args(argv)
    sizes, rounds = (QUICK_SIZES, 1) if args.quick else (SIZES, 3)
    print(f"machine: {platform.machine()}, {platform.processor() or 'processor unnamed'}, "
          f"{os.cpu_count()} logical CPUs; Python {platform.python_version()}, NumPy {np.__version__}")
    print(f"one-layer tanh model, B = {B}, I = O = {I}, float64; median of {rounds} call(s); "
          "memory: tracemalloc's peak during one call")
    print()
    print("|   T |  H | BPTT time | RTRL time | RTRL / BPTT | BPTT memory | RTRL memory | max rel. difference |")
    print("|----:|---:|----------:|----------:|------------:|------------:|------------:|--------------------:|")
    for T, H in sizes:
        problem = random_problem(T=T, B=B, I=I, H=H, O=O, seed=0)
        difference = agree(problem)
        bptt_s, rtrl_s = (median_seconds(f, problem, rounds) for f in (reference.bptt, reference.rtrl))
        bptt_b, rtrl_b = (peak_bytes(f, problem) for f in (reference.bptt, reference.rtrl))
        print(f"| {T:3d} | {H:2d} | {bptt_s * 1e3:6.1f} ms | {rtrl_s * 1e3:6.1f} ms | {rtrl_s / bptt_s:11.1f} "
              f"| {bptt_b / 1024:8.0f} KiB | {rtrl_b / 1024:8.0f} KiB | {difference:19.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
