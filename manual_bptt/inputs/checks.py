"""Reusable checks of single arguments: arrays, labels, counts, seeds, memory.

Each check takes the argument's name and raises a TypeError (wrong type or
dtype) or a ValueError (wrong value) whose message starts with that name, then
says what was expected and what was got, before anything is computed. The
checks never copy or modify a float array; labels come back as native-order
integer indices (a copy of T·B integers at most). This module needs NumPy alone.

    as_array          anything array-like, as a plain ndarray (view, no copy)
    as_float_array    the same, of one given float dtype (nothing is cast)
    as_labels         integer class labels in [0, classes), as native intp indices
    check_count       a positive (or non-negative) Python or NumPy int
    check_flag        True or False
    check_seed        a seed or generator that np.random.default_rng accepts
    check_fits_in_memory  the bytes a computation will allocate, against the machine's memory
"""

from __future__ import annotations

import math
import os

import numpy as np


def as_array(name: str, value) -> np.ndarray:
    """`value` as a plain ndarray: a view of an ndarray (or of a subclass that
    means the same numbers, such as np.memmap), np.asarray of anything else.

    Rejected with a TypeError: None; a torch tensor that requires grad (its
    graph would be cut silently); np.matrix (it changes what `*` and `@` mean)
    and masked arrays (their mask would be ignored); ragged or unconvertible
    sequences.
    """
    if value is None:
        raise TypeError(f"{name}: expected an array, got None")
    if getattr(value, "requires_grad", False) is True:
        kind = type(value).__name__
        raise TypeError(
            f"{name}: expected an array without an autograd graph, got a torch {kind} that "
            f"requires grad; pass {name.split('.')[-1]}.detach() (gradients are computed here, "
            "not through the tensor's graph)"
        )
    if isinstance(value, np.matrix):
        raise TypeError(
            f"{name}: expected a plain ndarray, got numpy.matrix (it redefines * and @ and is "
            "always 2-d); pass np.asarray(...)"
        )
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(
            f"{name}: expected a plain ndarray, got a masked array (its mask would be ignored); "
            "pass .filled(...) or .data"
        )
    if isinstance(value, np.ndarray):
        return value if type(value) is np.ndarray else value.view(np.ndarray)
    try:
        return np.asarray(value)
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(
            f"{name}: expected an array, got {type(value).__name__} that NumPy cannot convert ({error})"
        ) from None


def as_float_array(name: str, value, dtype) -> np.ndarray:
    """`as_array`, then a TypeError unless its dtype is exactly `dtype` (never cast)."""
    array = as_array(name, value)
    dtype = np.dtype(dtype)
    if array.dtype != dtype:
        raise TypeError(
            f"{name}: expected a {dtype} array (the dtype of params; nothing is cast), "
            f"got dtype {array.dtype}{_byte_order_note(array.dtype, dtype)}"
        )
    return array


def as_labels(name: str, value, classes: int) -> np.ndarray:
    """Integer class labels in [0, classes), as native-order np.intp indices.

    Any signed or unsigned integer dtype, in either byte order, is accepted;
    bool, float, timedelta64 and the rest are a TypeError, a label outside
    [0, classes) a ValueError. The result is `value` itself when it is already
    native intp, otherwise a converted copy (labels are small: one per step).
    """
    labels = as_array(name, value)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer class labels, got dtype {labels.dtype}")
    indices = labels.astype(np.intp, copy=False)
    # One pass for both bounds: seen as unsigned, a negative index is huge (and so
    # is a uint64 label beyond the intp range, which the cast above wrapped).
    if indices.size and indices.view(np.uintp).max() >= classes:
        raise ValueError(
            f"{name}: expected class labels in [0, O) = [0, {classes}), "
            f"got values from {labels.min()} to {labels.max()}"
        )
    return indices


def check_count(name: str, value, *, minimum: int = 1) -> int:
    """A Python or NumPy int (not a bool) of at least `minimum`, as a Python int."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value}")
    return int(value)


def check_flag(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


def check_seed(name: str, value):
    """None, a non-negative int, or a np.random Generator, BitGenerator or SeedSequence."""
    if value is None or isinstance(value, (np.random.Generator, np.random.BitGenerator,
                                           np.random.SeedSequence)):
        return value
    expected = "a non-negative int seed, a np.random.Generator or None"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected {expected}, got {value!r}")
    if value < 0:
        raise ValueError(f"{name}: expected {expected}, got {value}")
    return value


#: Below this, a request is taken to fit without asking the system (a process that
#: runs NumPy has that much): small problems skip the system calls.
ALWAYS_FITS = 64 * 2**20


def memory_limit_bytes() -> int | None:
    """What one process can hope to allocate: the machine's physical memory, or
    the process's address-space limit if lower; None where neither is known."""
    limits = []
    try:
        limits.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        pass
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            limits.append(soft)
    except (ImportError, AttributeError, ValueError, OSError):
        pass
    return min(limits) if limits else None


def check_fits_in_memory(needs: list[tuple[str, int, str]], *, limit: int | None = None) -> None:
    """A ValueError, before anything is allocated, if the buffers cannot fit.

    needs: (argument name, bytes, what those bytes hold: a string, or a function that
    words it, called only for the message) per buffer. When their
    sum exceeds `limit` (default: `memory_limit_bytes()`), the message names the
    argument behind the largest buffer. This catches what certainly cannot fit;
    a problem close to the limit can still meet a MemoryError.
    """
    total = sum(nbytes for _, nbytes, _ in needs)
    if limit is None and total <= ALWAYS_FITS:
        return                                                     # no need to ask the system
    limit = memory_limit_bytes() if limit is None else limit
    if limit is None or total <= limit:
        return
    name, nbytes, what = max(needs, key=lambda need: need[1])
    what = what() if callable(what) else what
    raise ValueError(
        f"{name}: expected sizes that fit in memory ({_bytes(limit)} here), got sizes for which "
        f"{what} alone needs {_bytes(nbytes)} ({_bytes(total)} in all)"
    )


def nbytes(shape: tuple[int, ...], dtype) -> int:
    """Bytes of an array of this shape and dtype, as an exact Python int (no overflow)."""
    return math.prod(int(n) for n in shape) * np.dtype(dtype).itemsize


def _bytes(n: int) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def _byte_order_note(got: np.dtype, expected: np.dtype) -> str:
    if got.kind == expected.kind and got.itemsize == expected.itemsize and not got.isnative:
        return " (non-native byte order; convert with .astype(np.dtype('=" + got.char + "')))"
    return ""
