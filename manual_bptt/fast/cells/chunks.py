"""Whole-sequence element-wise passes, done a few steps at a time.

A cell's begin_backward forms every step's local derivatives before the loop: one
pass over (T, B, H) arrays instead of several NumPy calls per step, which is what
keeps small problems fast. Done in one go at large sizes, each product allocates a
fresh (T, B, H) temporary (tens of MB, page-faulted on first touch) and streams it
through memory several times. Cutting the time axis into chunks of about
CHUNK_ELEMENTS per (n, B, H) block keeps the temporaries small, reused and in
cache, and costs nothing at small sizes, where the whole sequence is one chunk.
"""

from __future__ import annotations

#: Elements of one (n, B, H) block of a chunk: 128 KiB in float64, so that the half
#: dozen blocks a pass touches stay within a core's L2 cache. Measured on the LSTM at the
#: large size (T = 200, B = 64, H = 256, float64), begin_backward took 57–65 ms with chunks
#: of 4 096 or 16 384 elements, 90 ms with 65 536, 150 ms as one chunk, and 302 ms as it was
#: before, in one go with (T, B, 4H) temporaries.
CHUNK_ELEMENTS = 16384


def time_chunks(T: int, row: int) -> list[slice]:
    """Slices of range(T) covering it in order, each of CHUNK_ELEMENTS // row steps (at least 1),
    the last one possibly shorter.

    T: the number of steps, ≥ 1; row: the elements of one step's block (B·H, ≥ 1): the engine's
    callers validate both.
    """
    n = max(1, CHUNK_ELEMENTS // row)
    return [slice(start, min(start + n, T)) for start in range(0, T, n)]
