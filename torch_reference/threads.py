"""One compute thread for the long-running commands.

The matrices of `bptt train` and `bptt sweep` are small (tens of rows): a
BLAS or OpenMP thread pool costs more in hand-offs than it saves, and on a
busy machine its threads wait for each other. Measured on 2 busy cores, 30
training steps took 9.3 s with the default pools and 0.31 s with one thread.
The commands run their work inside `one_thread()`, restored afterwards; a
sweep's worker processes call `one_thread_from_now_on()` first. The library
never sets either.
"""

from __future__ import annotations

import contextlib

import torch


def _blas_limits(threads: int):
    """NumPy's BLAS and OpenMP limited to `threads` until the result's restore (threadpoolctl),
    or None without threadpoolctl: then only torch's pool is limited, slower, still correct."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(threads)


@contextlib.contextmanager
def one_thread():
    """torch, NumPy's BLAS and OpenMP limited to one thread inside the block, as before after it."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    limits = None
    try:
        limits = _blas_limits(1)
        yield
    finally:
        if limits is not None:
            limits.restore_original_limits()
        torch.set_num_threads(previous)


def one_thread_from_now_on() -> None:
    """torch, NumPy's BLAS and OpenMP limited to one thread for the rest of this process.

    For a worker process that ends with its work (nothing to restore). Not
    `one_thread().__enter__()`: the context manager, dropped, is closed by the
    garbage collector and undoes the limit at once. That was how the sweep's
    workers ran with every pool at full size: two workers on 2 cores ran 600
    problems in 14.6 s against 2.8 s in one process.
    """
    torch.set_num_threads(1)
    _blas_limits(1)
