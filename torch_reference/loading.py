"""Reading weights and data files for `bptt check --weights` and `bptt explain --weights`.

One reader for every command that takes a file of weights:

    .npz           np.load without pickles: {name: array}
    .safetensors   through the optional extra "safetensors": {name: tensor}
    anything else  a torch state dict, torch.load(..., weights_only=True) (no code runs):
                   {name: tensor}, as torch.save(model.state_dict(), path) writes it

`read_state` checks what every use needs (the file exists and is readable, it holds a
mapping of names to dense tensors or arrays) and converts nothing: which keys matter
is for the caller to say (NetworkParams.from_state_dict ignores other modules' keys,
whatever their dtype). `read_data` reads the arrays of a problem (x, y, lengths, h0,
c0) from an .npz. Every bad file is a ValueError (TypeError for a payload of the wrong
type) whose message starts with the option and the file; the commands print it as
one line and exit 2. A missing extra is `MissingExtra` (exit 4).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from manual_bptt.tools.extras import MissingExtra

#: The formats read, for messages.
FORMATS = "a .npz or .pt file, or .safetensors"
#: The arrays a data file may hold: x and y, and optionally lengths, h0 and c0 (LSTM).
DATA_KEYS = ("x", "y", "lengths", "h0", "c0")


def first_line(error: BaseException) -> str:
    """'TypeName: the first line of its message', for a one-line report of an error from
    code the project does not control (a file reader, an imported module)."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _existing_file(path: str | Path, option: str, expected: str) -> tuple[Path, str]:
    """The path, and how messages name it; a ValueError if there is no file there."""
    path = Path(path)
    where = f"{option}: {str(path)!r}"
    if not path.exists():
        raise ValueError(f"{option}: no such file {str(path)!r}")
    if path.is_dir():
        raise ValueError(f"{where} is a directory; expected {expected}")
    return path, where


def read_state(path: str | Path, *, option: str = "--weights") -> dict:
    """{name: tensor or array} from a weights file (see the module docstring)."""
    path, where = _existing_file(path, option, FORMATS)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return read_npz(path, where)
    if suffix == ".safetensors":
        return _read_safetensors(path, where)
    return _read_torch(path, where)


def read_npz(path: Path, where: str) -> dict:
    """Every array of an .npz archive, loaded without pickles."""
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as error:   # np.load's error for a non-archive depends on its bytes (EOFError, ValueError, …)
        raise ValueError(f"{where} is not a readable .npz archive ({first_line(error)})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{where} holds one array, not a .npz archive of named arrays")
    with archive:
        try:
            return {key: archive[key] for key in archive.files}
        except ValueError as error:                             # an object array: it would need a pickle
            raise ValueError(f"{where}: {first_line(error)}") from None


def _read_torch(path: Path, where: str) -> dict:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:   # torch.load's error for a non-checkpoint depends on its bytes
        raise ValueError(f"{where} is not a readable torch state dict ({first_line(error)}); "
                         "expected a .pt file written by torch.save(model.state_dict(), path), or a .npz") from None
    if not isinstance(state, Mapping):
        raise TypeError(f"{where} holds a value of type {type(state).__name__}; expected a state dict "
                        "(a dict of tensors, as torch.save(model.state_dict(), path) writes it)")
    return _checked_tensors(state, where)


def _read_safetensors(path: Path, where: str) -> dict:
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise MissingExtra(f"reading {str(path)!r} (a .safetensors file) needs safetensors, which is not installed; "
                           "install the project's 'safetensors' extra: pip install -c constraints.txt -e "
                           "'.[safetensors]'") from None
    try:
        state = load_file(path, device="cpu")
    except Exception as error:   # safetensors' error for a bad header depends on its bytes
        raise ValueError(f"{where} is not a readable .safetensors file ({first_line(error)})") from None
    return _checked_tensors(state, where)


def _checked_tensors(state: Mapping, where: str) -> dict:
    """The state dict, every key a str and every value a dense tensor with values."""
    import torch

    for key, value in state.items():
        if not isinstance(key, str):
            raise TypeError(f"{where}: the state dict has a key {key!r} of type {type(key).__name__}; "
                            "expected parameter names as str")
        if not isinstance(value, torch.Tensor):
            hint = ""
            if isinstance(value, Mapping):
                hint = " (a checkpoint of several things? save model.state_dict() alone)"
            raise TypeError(f"{where}: {key} is of type {type(value).__name__}; expected a tensor{hint}")
        if value.layout != torch.strided or value.is_meta:
            raise ValueError(f"{where}: {key} is a {'meta' if value.is_meta else str(value.layout)} tensor; "
                             "expected a dense tensor with values")
    return dict(state)


def float_array(where: str, key: str, value) -> np.ndarray:
    """One tensor or array of a file as a float32 or float64 NumPy array (a tensor is copied)."""
    dtype = getattr(value, "dtype", None)
    if hasattr(value, "detach"):                                    # a tensor: its own dtype names
        import torch

        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"{where}: {key} has dtype {dtype}; expected float32 or float64")
        return value.detach().numpy().copy()
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"{where}: {key} has dtype {dtype}; expected float32 or float64")
    return value


def read_data(path: str | Path, *, option: str = "--data") -> dict:
    """{name: array} of a problem from an .npz: x and y, optionally lengths, h0 and c0."""
    path, where = _existing_file(path, option, "a .npz file of x, y (and lengths, h0, c0)")
    if path.suffix.lower() != ".npz":
        raise ValueError(f"{where}: expected a .npz file of x, y (and lengths, h0, c0), as "
                         "np.savez(path, x=x, y=y) writes it; got the suffix "
                         f"{path.suffix or '(none)'!r}")
    arrays = read_npz(path, where)
    unknown = [key for key in arrays if key not in DATA_KEYS]
    missing = [key for key in ("x", "y") if key not in arrays]
    if unknown or missing:
        got = ", ".join(arrays) or "no arrays"
        raise ValueError(f"{where}: expected the arrays x, y and optionally lengths, h0, c0; got {got}")
    if "c0" in arrays and "h0" not in arrays:
        raise ValueError(f"{where} holds c0 but no h0; an LSTM's initial state is the pair (h0, c0)")
    return arrays
