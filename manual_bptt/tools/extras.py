"""Optional dependencies, imported only by the function that needs them.

`manual_bptt` itself needs NumPy alone; figures need matplotlib (the "plot"
extra) and progress bars tqdm (the "progress" extra). `require` imports one
and, when it is missing, raises an ImportError that says how to install it.
"""

from __future__ import annotations

import importlib

#: module -> the extra of this project that installs it
EXTRAS = {"matplotlib": "plot", "tqdm": "progress", "nbclient": "notebook", "nbformat": "notebook",
          "torch": "torch"}


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message says how to install it."""


def install_hint(module: str) -> str:
    extra = EXTRAS.get(module.split(".")[0], "plot")
    return (f"install the project's '{extra}' extra: "
            f"pip install -c constraints.txt -e '.[{extra}]' (or run `make`, which installs every extra)")


def require(module: str, *, purpose: str):
    """Import `module` (e.g. "matplotlib.pyplot") or raise MissingExtra naming `purpose`."""
    try:
        return importlib.import_module(module)
    except ImportError as missing:
        raise MissingExtra(f"{purpose} needs {module}, which is not installed; {install_hint(module)}") from missing
