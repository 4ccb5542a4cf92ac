"""One compute thread for the long-running commands, restored afterwards.

The matrices of `bptt train` and `bptt sweep` are small (tens of rows): a
BLAS or OpenMP thread pool costs more in hand-offs than it saves, and on a
busy machine its threads wait for each other. Measured on 2 busy cores, 30
training steps took 9.3 s with the default pools and 0.31 s with one thread.
The commands run their work inside `one_thread()`; the library never sets it.
"""

from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def one_thread():
    """torch, NumPy's BLAS and OpenMP limited to one thread inside the block, as before after it."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:            # without it only torch's pool is limited: slower, still correct
            limits = contextlib.nullcontext()
        else:
            limits = threadpool_limits(1)
        with limits:
            yield
    finally:
        torch.set_num_threads(previous)
