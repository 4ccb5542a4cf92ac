"""Time manual BPTT against torch.autograd on the same model, in one process.

    python benchmarks/bench_rnn.py            # or: make bench
    python benchmarks/bench_rnn.py --quick    # fewer rounds, for a smoke test

For each size and dtype it times forward + loss + backward of
  - manual:  `manual_bptt.bptt` (input validation on, as a user pays for it), and
  - torch:   nn.RNN(tanh) + nn.Linear + F.cross_entropy(reduction="sum"), h0
             requiring grad, torch's default threads,
alternating the two in rounds so that both see the same machine state, and
prints medians and the ratio torch / manual. For the large size it also
measures NumPy's matrix-product rate in the same run (one big square product)
and reports what fraction of it the manual pass reaches, counting the
floating-point operations of its matrix products; and the peak memory that the
manual pass allocates, against the size of the activations it must store.

The manual pass computes ∂L/∂x as well; the torch side is not asked for it, so
the comparison, if anything, favours torch.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from manual_bptt import bptt  # noqa: E402
from manual_bptt.problems import random_problem  # noqa: E402
from torch_reference.twin import build_twin  # noqa: E402

# (T, B, I, H, O)
SIZES = {
    "tiny": (10, 1, 4, 8, 4),
    "small": (50, 8, 16, 32, 16),
    "medium": (100, 32, 64, 128, 64),
    "large": (200, 64, 128, 256, 128),
    "long": (1000, 4, 16, 64, 16),
}
DTYPES = ("float32", "float64")


@dataclass
class Row:
    size: str
    dtype: str
    manual_s: float
    torch_s: float

    @property
    def ratio(self) -> float:
        return self.torch_s / self.manual_s


def manual_step(problem):
    p, x, y, h0 = problem.params, problem.x, problem.y, problem.h0
    return lambda: bptt(p, x, y, h0)


def torch_step(problem):
    twin = build_twin(problem.params)
    x = torch.from_numpy(problem.x)
    y = torch.from_numpy(problem.y.reshape(-1))
    h0 = torch.from_numpy(problem.h0).unsqueeze(0).requires_grad_()
    params = list(twin.parameters())

    def step():
        for q in params:
            q.grad = None
        h0.grad = None
        o = twin(x, h0)
        L = F.cross_entropy(o.reshape(-1, o.shape[-1]), y, reduction="sum")
        L.backward()
        return L

    return step


def calls_per_batch(fn, min_seconds: float) -> int:
    """How many calls make a batch of at least `min_seconds`, so the clock's resolution is no issue."""
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - start >= min_seconds:
            return n
        n *= 2


def time_pair(manual, reference, rounds: int, min_batch_s: float) -> tuple[float, float]:
    """Median seconds per call of each, timing batches in alternation after a warm-up."""
    for fn in (manual, reference):  # warm-up: first-call costs, caches, thread pools
        fn()
        fn()
    n_manual = calls_per_batch(manual, min_batch_s)
    n_reference = calls_per_batch(reference, min_batch_s)
    times = {"manual": [], "reference": []}
    for _ in range(rounds):
        for name, fn, n in (("manual", manual, n_manual), ("reference", reference, n_reference)):
            start = time.perf_counter()
            for _ in range(n):
                fn()
            times[name].append((time.perf_counter() - start) / n)
    return statistics.median(times["manual"]), statistics.median(times["reference"])


def matmul_flops(T, B, I, H, O) -> int:
    """Floating-point operations in the matrix products of one manual forward + backward."""
    rows = T * B
    forward = 2 * rows * (I * H + H * H + H * O)  # U x, W h (in the loop), V h
    backward = 2 * rows * (O * H + O * H + H * H + H * H + H * I + H * I)  # dV, Vᵀdo, Wᵀda (loop), dW, dU, dx
    return forward + backward


def matmul_rate(dtype: str, n: int = 1024, rounds: int = 7) -> float:
    """FLOP/s of one n×n by n×n NumPy product: the machine's matrix-product rate."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(dtype) for _ in range(2))
    out = np.empty((n, n), dtype=dtype)
    np.matmul(a, b, out=out)
    best = []
    for _ in range(rounds):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        best.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(best)


def peak_memory(fn) -> int:
    """Peak bytes that NumPy allocates during one call (tracemalloc sees NumPy's buffers)."""
    fn()
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def blas_description() -> str:
    """Which BLAS NumPy runs, and with which kernel (OpenBLAS picks one per CPU)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "BLAS: unknown (install threadpoolctl to see it)"
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    described = [f"{p['internal_api']} {p.get('version', '')} kernel {p.get('architecture', '?')}, "
                 f"{p['num_threads']} threads" for p in pools]
    forced = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    note = f" (forced by {', '.join(f'{k}={v}' for k, v in forced.items())})" if forced else ""
    return "NumPy BLAS: " + "; ".join(described) + note


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds instead of 15")
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    parser.add_argument("--dtypes", nargs="+", choices=DTYPES, default=list(DTYPES))
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else 15

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"NumPy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads)")
    print(blas_description())
    rows = []
    print("\n| size   | T, B, I, H, O          | dtype   | manual (ms) | torch (ms) | torch / manual |")
    print("|--------|------------------------|---------|-------------|------------|----------------|")
    for size in args.sizes:
        T, B, I, H, O = SIZES[size]
        for dtype in args.dtypes:
            problem = random_problem(T=T, B=B, I=I, H=H, O=O, seed=0, dtype=dtype)
            manual_s, torch_s = time_pair(manual_step(problem), torch_step(problem), rounds, 0.02)
            row = Row(size, dtype, manual_s, torch_s)
            rows.append(row)
            print(f"| {size:<6} | {str(SIZES[size])[1:-1]:<22} | {dtype:<7} | {manual_s * 1e3:11.3f} "
                  f"| {torch_s * 1e3:10.3f} | {row.ratio:13.2f}x |")

    if "large" in args.sizes:
        T, B, I, H, O = SIZES["large"]
        print()
        for dtype in args.dtypes:
            manual_s = next(r.manual_s for r in rows if r.size == "large" and r.dtype == dtype)
            achieved = matmul_flops(T, B, I, H, O) / manual_s
            peak = matmul_rate(dtype)
            print(f"large, {dtype}: manual reaches {achieved / 1e9:.1f} GFLOP/s in its matrix products, "
                  f"{achieved / peak:.0%} of NumPy's {peak / 1e9:.1f} GFLOP/s (1024x1024 product, same run)")
        for dtype in args.dtypes:
            problem = random_problem(T=T, B=B, I=I, H=H, O=O, seed=0, dtype=dtype)
            itemsize = np.dtype(dtype).itemsize
            activations = (T * B * H + (T + 1) * B * H + T * B * O) * itemsize  # a, h, o
            peak_bytes = peak_memory(manual_step(problem))
            print(f"large, {dtype}: peak allocation {peak_bytes / 2**20:.1f} MiB; the activations "
                  f"a, h, o alone are {activations / 2**20:.1f} MiB ({peak_bytes / activations:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
