"""Time manual BPTT against torch.autograd and JAX on the same model, in one process.

    python benchmarks/bench_rnn.py            # or: make bench
    python benchmarks/bench_rnn.py --quick    # fewer rounds, for a smoke test

For each size and dtype it times forward + loss + backward of
  - manual:  `manual_bptt.bptt` (input validation on, as a user pays for it);
  - torch:   nn.RNN(tanh) + nn.Linear + F.cross_entropy(reduction="sum"), h0
             requiring grad, torch's default threads;
  - jax:     `jax.jit(jax.value_and_grad(loss))` of a `lax.scan` RNN with the
             same loss, differentiated with respect to U, W, V, b, c, h0 and x
             (as manual is), compiled before timing; its loss and gradients are
             checked against manual's, with the suite's tolerances, first;
alternating them in rounds so that all see the same machine state, and prints
medians and the ratios torch / manual and jax / manual.

Before the table it says which BLAS, kernel and thread count each side runs,
and times the recurrence's own per-step product, (B, H)·(H, H) at the large
size, in each library, with the cores each keeps busy. For the large size it
also measures NumPy's matrix-product rate in the same run (one big square
product) and reports what fraction of it the manual pass reaches, counting the
floating-point operations of its matrix products (the roofline), and the peak
memory that the manual pass allocates, against the size of the activations it
must store.

The manual pass computes ∂L/∂x as well; the torch side is not asked for it, so
that comparison, if anything, favours torch. JAX comes with the `bench` extra;
without it, its column stays empty.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
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
from manual_bptt.verification.problems import random_problem  # noqa: E402
from manual_bptt.verification.tolerances import tolerance_for  # noqa: E402
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
    jax_s: float | None = None

    @property
    def ratio(self) -> float:
        return self.torch_s / self.manual_s

    @property
    def jax_ratio(self) -> float | None:
        return None if self.jax_s is None else self.jax_s / self.manual_s


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


def _jax():
    """The jax module with float64 enabled (JAX computes in float32 otherwise), or None without JAX."""
    try:
        import jax
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    return jax


def jax_loss(U, W, V, b, c, h0, x, y):
    """L of the same model in JAX: the recurrence is a lax.scan; U x(t) + b is one product for all steps."""
    jax = _jax()
    jnp = jax.numpy
    ux = x @ U.T + b                                           # U x(t) + b, (T, B, H)

    def step(h_prev, ux_t):
        h_t = jnp.tanh(ux_t + h_prev @ W.T)                    # h(t) = tanh(U x(t) + b + W h(t-1))
        return h_t, h_t

    _, h = jax.lax.scan(step, h0, ux)                          # h(1) … h(T), (T, B, H)
    o = h @ V.T + c                                            # o(t) = V h(t) + c
    log_softmax = jax.nn.log_softmax(o, axis=-1)
    return -jnp.take_along_axis(log_softmax, y[..., None], axis=-1).sum()


#: What JAX differentiates with respect to, in the order of jax_loss's arguments: what manual returns.
JAX_GRADS = ("U", "W", "V", "b", "c", "h0", "x")


def _jax_value_and_grad(problem):
    """The jitted value-and-gradient of jax_loss, and its arguments already on JAX's device."""
    jax = _jax()
    p = problem.params
    args = [jax.device_put(a) for a in (p.U, p.W, p.V, p.b, p.c, problem.h0, problem.x, problem.y)]
    return jax.jit(jax.value_and_grad(jax_loss, argnums=tuple(range(len(JAX_GRADS))))), args


def jax_step(problem):
    """One call of JAX's compiled pass, once its L and gradients are checked against manual's.

    Returns None without JAX. Raises AssertionError if L or a gradient differs
    from manual's by more than the suite's tolerance for the dtype (tolerances.py).
    """
    jax = _jax()
    if jax is None:
        return None
    value_and_grad, args = _jax_value_and_grad(problem)
    L, grads = jax.block_until_ready(value_and_grad(*args))   # the first call compiles
    L_manual, manual = bptt(problem.params, problem.x, problem.y, problem.h0)
    tolerance = tolerance_for(problem.params.dtype)
    if not abs(float(L) - L_manual) <= tolerance.allowed(abs(L_manual)):
        raise AssertionError(f"jax's L = {float(L)} differs from manual's {L_manual}")
    for name, grad in zip(JAX_GRADS, grads):
        reference = getattr(manual, name)
        error = float(np.max(np.abs(np.asarray(grad) - reference)))
        allowed = tolerance.allowed(float(np.max(np.abs(reference))))
        if not error <= allowed:
            raise AssertionError(f"jax's ∂L/∂{name} differs from manual's by {error:.3g} > {allowed:.3g}")
    # JAX returns before it has computed: wait for the result, or only the dispatch is timed.
    return lambda: jax.block_until_ready(value_and_grad(*args))


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


def time_peers(steps: dict, rounds: int, min_batch_s: float) -> dict:
    """Median seconds per call of each named function, timing batches in alternation after a warm-up."""
    for fn in steps.values():  # warm-up: first-call costs, caches, thread pools
        fn()
        fn()
    calls = {name: calls_per_batch(fn, min_batch_s) for name, fn in steps.items()}
    times = {name: [] for name in steps}
    for _ in range(rounds):
        for name, fn in steps.items():
            start = time.perf_counter()
            for _ in range(calls[name]):
                fn()
            times[name].append((time.perf_counter() - start) / calls[name])
    return {name: statistics.median(t) for name, t in times.items()}


def time_pair(manual, reference, rounds: int, min_batch_s: float) -> tuple[float, float]:
    """Median seconds per call of each, timing batches in alternation after a warm-up."""
    medians = time_peers({"manual": manual, "reference": reference}, rounds, min_batch_s)
    return medians["manual"], medians["reference"]


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


def threads_used(fn, seconds: float = 0.2) -> float:
    """Process CPU time over wall time while `fn` runs repeatedly: how many cores it keeps busy."""
    fn()
    wall, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall < seconds:
        fn()
    return (time.process_time() - cpu) / (time.perf_counter() - wall)


def per_step_products(B: int, H: int, dtype: str, rounds: int = 9) -> dict:
    """{library: (seconds, cores busy)} for the recurrence's product (B, H)·(H, H) in each library."""
    rng = np.random.default_rng(0)
    h, W = rng.standard_normal((B, H)).astype(dtype), rng.standard_normal((H, H)).astype(dtype)
    out = np.empty((B, H), dtype=dtype)
    th, tW, tout = torch.from_numpy(h), torch.from_numpy(W), torch.from_numpy(out)
    fns = {"NumPy": lambda: np.dot(h, W, out), "torch": lambda: torch.mm(th, tW, out=tout)}
    seconds = time_peers(fns, rounds, 0.01)
    jax = _jax()
    if jax is not None:
        # Timed apart: interleaved with XLA's calls, whose threads keep spinning a
        # while after each, torch's OpenMP threads lose their cores (10x slower here).
        jh, jW = jax.device_put(h), jax.device_put(W)
        product = jax.jit(lambda a, b: a @ b)
        fns["jax"] = lambda: product(jh, jW).block_until_ready()
        seconds |= time_peers({"jax": fns["jax"]}, rounds, 0.01)
    return {name: (seconds[name], threads_used(fn)) for name, fn in fns.items()}


def peak_memory(fn) -> int:
    """Peak bytes that NumPy allocates during one call (tracemalloc sees NumPy's buffers)."""
    fn()
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def machine_description() -> str:
    """One line: the machine, its cores and CPU, Python, NumPy, torch and torch's threads."""
    return (f"machine: {platform.machine()}, {os.cpu_count()} cores, {cpu_model()}, Python "
            f"{platform.python_version()}, NumPy {np.__version__}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads)")


def cpu_model() -> str:
    """The CPU's model name and its widest vector extension, from /proc/cpuinfo where there is one."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "CPU unknown"
    name = re.search(r"model name\s*: (.*)", info)
    flags = re.search(r"flags\s*: (.*)", info)
    flags = set(flags.group(1).split()) if flags else set()
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{name.group(1).strip() if name else 'CPU unknown'} ({vector})"


def blas_description() -> str:
    """Which BLAS NumPy and torch run, with which kernel and how many threads (one line each)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        numpy_line = "NumPy BLAS: unknown (install threadpoolctl to see it)"
    else:
        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        described = [f"{p['internal_api']} {p.get('version', '')} kernel {p.get('architecture', '?')}, "
                     f"{p['num_threads']} threads" for p in pools]
        forced = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
        note = f" (forced by {', '.join(f'{k}={v}' for k, v in forced.items())})" if forced else ""
        numpy_line = "NumPy BLAS: " + "; ".join(described) + note + "; element-wise ufuncs on 1 thread"
    config = torch.__config__.show()
    blas = re.search(r"BLAS_INFO=(\w+)", config)
    mkl = re.search(r"Math Kernel Library Version (\S+)", config)
    capability = re.search(r"CPU capability usage: (\w+)", config)
    backend = re.search(r"ATen parallel backend: (\w+)", torch.__config__.parallel_info())
    torch_line = (f"torch BLAS: {blas.group(1) if blas else '?'}{' ' + mkl.group(1) if mkl else ''}, "
                  f"{torch.get_num_threads()} threads ({backend.group(1) if backend else '?'}, also for "
                  f"element-wise kernels), CPU capability {capability.group(1) if capability else '?'}")
    return numpy_line + "\n" + torch_line


def jax_description(problem) -> str:
    """JAX's version and device, and what XLA compiles the products of the pass into."""
    jax = _jax()
    if jax is None:
        return "jax: not installed (pip install -c constraints.txt -e '.[bench]')"
    value_and_grad, args = _jax_value_and_grad(problem)
    text = value_and_grad.lower(*args).compile().as_text()
    dots = len(re.findall(r"\bdot\(", text))
    calls = sorted(set(re.findall(r'custom_call_target="([^"]+)"', text)))
    library = f"custom calls {', '.join(calls)}" if calls else "no library custom call (XLA's own dot kernels)"
    return (f"jax {jax.__version__}: XLA on {jax.devices()[0].platform} ({jax.device_count()} device), "
            f"{dots} dot ops in the compiled pass, {library}; XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds instead of 15")
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    parser.add_argument("--dtypes", nargs="+", choices=DTYPES, default=list(DTYPES))
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else 15

    print(machine_description())
    print(blas_description())
    T, B, I, H, O = SIZES["large"]
    print(jax_description(random_problem(T=T, B=B, I=I, H=H, O=O, seed=0, dtype="float32")))
    products = {dtype: per_step_products(B, H, dtype) for dtype in args.dtypes}
    for dtype in args.dtypes:
        print(f"the recurrence's product ({B}, {H})·({H}, {H}), {dtype}: " + "; ".join(
            f"{name} {seconds * 1e6:.1f} µs on {cores:.1f} cores" for name, (seconds, cores) in products[dtype].items()))

    rows = []
    print("\n| size   | T, B, I, H, O          | dtype   | manual (ms) | torch (ms) | jax (ms) | torch / manual | jax / manual |")
    print("|--------|------------------------|---------|-------------|------------|----------|----------------|--------------|")
    for size in args.sizes:
        T, B, I, H, O = SIZES[size]
        for dtype in args.dtypes:
            problem = random_problem(T=T, B=B, I=I, H=H, O=O, seed=0, dtype=dtype)
            steps = {"manual": manual_step(problem), "torch": torch_step(problem), "jax": jax_step(problem)}
            seconds = time_peers({k: fn for k, fn in steps.items() if fn is not None}, rounds, 0.02)
            row = Row(size, dtype, seconds["manual"], seconds["torch"], seconds.get("jax"))
            rows.append(row)
            jax_ms = "" if row.jax_s is None else f"{row.jax_s * 1e3:.3f}"
            jax_ratio = "" if row.jax_s is None else f"{row.jax_ratio:.2f}x"
            print(f"| {size:<6} | {str(SIZES[size])[1:-1]:<22} | {dtype:<7} | {row.manual_s * 1e3:11.3f} "
                  f"| {row.torch_s * 1e3:10.3f} | {jax_ms:>8} | {row.ratio:13.2f}x | {jax_ratio:>12} |", flush=True)

    if "large" in args.sizes:
        T, B, I, H, O = SIZES["large"]
        print()
        for dtype in args.dtypes:
            manual_s = next(r.manual_s for r in rows if r.size == "large" and r.dtype == dtype)
            achieved = matmul_flops(T, B, I, H, O) / manual_s
            peak = matmul_rate(dtype)
            step_s, _ = products[dtype]["NumPy"]                   # measured above, in this run
            step = 2 * B * H * H                                   # W h(t-1), and as much for Wᵀ ∂L/∂a(t)
            recurrence = 2 * T * step
            # The roofline: the 2T per-step products at their own measured rate, every
            # other product at the big product's rate, nothing else costing any time.
            ceiling = matmul_flops(T, B, I, H, O) / (recurrence / (step / step_s)
                                                      + (matmul_flops(T, B, I, H, O) - recurrence) / peak)
            print(f"large, {dtype}: manual reaches {achieved / 1e9:.1f} GFLOP/s in its matrix products, "
                  f"{achieved / peak:.0%} of NumPy's {peak / 1e9:.1f} GFLOP/s (1024x1024 product, same run); "
                  f"one step's W h(t-1) is {step / 1e6:.1f} MFLOP ({recurrence / matmul_flops(T, B, I, H, O):.0%} "
                  f"of the pass's FLOPs are in the 2T per-step products) and runs at {step / step_s / 1e9:.1f} "
                  f"GFLOP/s, {step / step_s / peak:.0%} of it; so even with free element-wise work the pass "
                  f"could reach at most {ceiling / peak:.0%}")
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
