"""The parameters of the recurrent network and the gradients of its loss.

Both are dataclasses with one named field per symbol of the derivation, so that
code and error messages can loop over fields and name them:

    a(t) = U x(t) + W h(t-1) + b        U: (H, I)   W: (H, H)   b: (H,)
    o(t) = V h(t) + c                   V: (O, H)   c: (O,)

T time steps, B batch, I input, H hidden, O output.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..inputs.checks import as_array, check_count, check_fits_in_memory, check_seed, nbytes

#: The parameters, in the derivation's order.
PARAM_NAMES = ("U", "W", "V", "b", "c")
#: Every gradient `bptt` returns: the parameters, then the initial state and the input.
GRAD_NAMES = PARAM_NAMES + ("h0", "x")
#: The dtypes supported end to end. Nothing is ever cast between them silently.
SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_float_dtype(dtype, *, name: str = "dtype") -> np.dtype:
    """`dtype` as a NumPy dtype, if it is float32 or float64; TypeError otherwise."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name}: expected float32 or float64, got {dtype!r}") from None
    if resolved not in SUPPORTED_DTYPES:
        raise TypeError(f"{name}: expected float32 or float64, got {resolved}")
    return resolved


@dataclass(frozen=True)
class RNNParams:
    """U, W, V, b, c of the network, all of one dtype (float32 or float64).

    Shapes: U (H, I), W (H, H), V (O, H), b (H,), c (O,). The constructor checks
    them against each other and raises ValueError/TypeError naming the field.
    Array-likes are converted with `np.asarray` (no copy for arrays); the arrays
    are held, not copied, and never written to by this package. Ragged lists,
    np.matrix, masked arrays and torch tensors that require grad are refused
    with a TypeError naming the field (manual_bptt.inputs.checks.as_array).
    """

    U: np.ndarray
    W: np.ndarray
    V: np.ndarray
    b: np.ndarray
    c: np.ndarray

    def __post_init__(self) -> None:
        arrays = {}
        for name in PARAM_NAMES:
            value = getattr(self, name)
            array = as_array(f"params.{name}", value)
            if array.dtype not in SUPPORTED_DTYPES:
                order = "" if array.dtype.isnative else " (non-native byte order; convert with .astype)"
                raise TypeError(
                    f"params.{name}: expected a float32 or float64 array, got dtype {array.dtype}{order}"
                )
            arrays[name] = array
            object.__setattr__(self, name, array)
        dtypes = {name: a.dtype for name, a in arrays.items()}
        if len(set(dtypes.values())) > 1:
            listed = ", ".join(f"{n} {d}" for n, d in dtypes.items())
            raise TypeError(f"params: expected one dtype for U, W, V, b, c, got {listed}")
        _check_param_shapes(arrays)

    # Sizes, read off the arrays so there is one source of truth.
    @property
    def input_size(self) -> int:
        """I, the size of x(t)."""
        return self.U.shape[1]

    @property
    def hidden_size(self) -> int:
        """H, the size of h(t)."""
        return self.W.shape[0]

    @property
    def output_size(self) -> int:
        """O, the size of o(t) (the number of classes for cross-entropy)."""
        return self.V.shape[0]

    @property
    def dtype(self) -> np.dtype:
        return self.U.dtype

    def items(self) -> Iterator[tuple[str, np.ndarray]]:
        """(name, array) for U, W, V, b, c in that order."""
        return ((name, getattr(self, name)) for name in PARAM_NAMES)

    def astype(self, dtype) -> "RNNParams":
        """A copy with every array cast to `dtype` (float32 or float64)."""
        dtype = as_float_dtype(dtype)
        return RNNParams(**{name: a.astype(dtype) for name, a in self.items()})

    def copy(self) -> "RNNParams":
        """A deep copy: the new arrays share no memory with these."""
        return RNNParams(**{name: a.copy() for name, a in self.items()})

    def replace(self, **arrays) -> "RNNParams":
        """A new RNNParams with the named arrays replaced (the rest shared)."""
        return dataclasses.replace(self, **arrays)

    @classmethod
    def random(
        cls,
        *,
        input_size: int,
        hidden_size: int,
        output_size: int,
        rng=None,
        dtype=np.float64,
    ) -> "RNNParams":
        """Parameters drawn as PyTorch initialises `nn.RNN` and `nn.Linear(H, O)`.

        Every entry is uniform on (-1/sqrt(H), 1/sqrt(H)): that is the default of
        `nn.RNN` for U, W and its biases, and of `nn.Linear` (fan-in H) for V and c.
        (PyTorch draws two RNN biases and adds them; here b is one draw.)

        `rng` is a non-negative int seed, a `np.random.Generator` (or BitGenerator,
        SeedSequence), or None for fresh entropy. The
        values are drawn in float64 and then cast, so one seed gives the same
        network in both dtypes, up to float32 rounding.
        """
        input_size = check_count("input_size", input_size)
        hidden_size = check_count("hidden_size", hidden_size)
        output_size = check_count("output_size", output_size)
        dtype = as_float_dtype(dtype)
        check_seed("rng", rng)
        shapes = {
            "U": (hidden_size, input_size),
            "W": (hidden_size, hidden_size),
            "V": (output_size, hidden_size),
            "b": (hidden_size,),
            "c": (output_size,),
        }
        check_fits_in_memory(random_params_need(shapes, dtype))
        generator = np.random.default_rng(rng)
        bound = 1.0 / np.sqrt(hidden_size)
        return cls(
            **{
                name: generator.uniform(-bound, bound, size=shape).astype(dtype)
                for name, shape in shapes.items()
            }
        )


def random_params_need(shapes: dict[str, tuple[int, ...]], dtype) -> list[tuple[str, int, str]]:
    """The bytes `RNNParams.random` allocates: each array drawn in float64, then cast."""
    size_names = {"U": "hidden_size, input_size", "W": "hidden_size", "V": "output_size, hidden_size",
                  "b": "hidden_size", "c": "output_size"}
    return [(size_names[name], nbytes(shape, np.float64) + nbytes(shape, dtype), f"params.{name} {shape}")
            for name, shape in shapes.items()]


def _check_param_shapes(arrays: dict[str, np.ndarray]) -> None:
    """Every shape must follow from H = W.shape[0], I = U.shape[1], O = V.shape[0]."""
    expected_ndim = {"U": 2, "W": 2, "V": 2, "b": 1, "c": 1}
    for name, ndim in expected_ndim.items():
        if arrays[name].ndim != ndim:
            raise ValueError(
                f"params.{name}: expected a {ndim}-d array, got shape {arrays[name].shape}"
            )
    H, I = arrays["U"].shape  # U defines H and I, V defines O; the rest must follow
    O = arrays["V"].shape[0]
    expected = {"W": (H, H), "V": (O, H), "b": (H,), "c": (O,)}
    meaning = {"W": "(H, H)", "V": "(O, H)", "b": "(H,)", "c": "(O,)"}
    for name, shape in expected.items():
        if arrays[name].shape != shape:
            raise ValueError(
                f"params.{name}: expected shape {meaning[name]} = {shape} "
                f"(H={H} and I={I} from U, O={O} from V), got {arrays[name].shape}"
            )
    for size_name, size in (("H", H), ("I", I), ("O", O)):
        if size < 1:
            raise ValueError(f"params: expected {size_name} >= 1, got {size_name} = {size}")


@dataclass
class RNNGrads:
    """∂L/∂U, ∂L/∂W, ∂L/∂V, ∂L/∂b, ∂L/∂c, ∂L/∂h0 and ∂L/∂x.

    Each array has the shape and dtype of what it is the gradient of: U, W, V, b, c
    as in `RNNParams`; h0 as given to `bptt` ((B, H), or (H,) unbatched, also
    when h0 was None and taken as zeros); x as given ((T, B, I), (B, T, I) with
    batch_first, or (T, I) unbatched).
    """

    U: np.ndarray
    W: np.ndarray
    V: np.ndarray
    b: np.ndarray
    c: np.ndarray
    h0: np.ndarray
    x: np.ndarray

    def items(self) -> Iterator[tuple[str, np.ndarray]]:
        """(name, array) for U, W, V, b, c, h0, x in that order."""
        return ((name, getattr(self, name)) for name in GRAD_NAMES)

    def params(self) -> RNNParams:
        """The parameter gradients alone, as an RNNParams (handy for an update step)."""
        return RNNParams(**{name: getattr(self, name) for name in PARAM_NAMES})
