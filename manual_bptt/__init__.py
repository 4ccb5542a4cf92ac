"""Back-propagation through time for a recurrent network, written by hand in NumPy.

The notation is that of the derivation (section 6.9 of the source text):

    a(t) = U x(t) + W h(t-1) + b,   h(t) = φ(a(t)),   o(t) = V h(t) + c,   L = Σ_t L(t)

    >>> import numpy as np
    >>> from manual_bptt import RNNParams, bptt
    >>> p = RNNParams.random(input_size=3, hidden_size=5, output_size=4, rng=0)
    >>> rng = np.random.default_rng(1)
    >>> x = rng.standard_normal((6, 2, 3))          # (T, B, I)
    >>> y = rng.integers(0, 4, size=(6, 2))         # (T, B) class labels
    >>> L, g = bptt(p, x, y)
    >>> g.W.shape, g.h0.shape, g.x.shape
    ((5, 5), (2, 5), (6, 2, 3))

This package needs NumPy alone; `torch_reference` holds the PyTorch twin.
"""

from importlib.metadata import PackageNotFoundError, version

from .fast.rnn import RNNCache, bptt, rnn_forward
from .model.network_params import NetworkGrads, NetworkParams
from .model.params import GRAD_NAMES, PARAM_NAMES, RNNGrads, RNNParams
from .verification.report import GradientReport, GradientRow, compare_grads
from .verification.tolerances import TOLERANCES, Tolerance, tolerance_for

try:
    # One source for the version: pyproject.toml, as installed (both packages ship in it).
    __version__ = version("manual-bptt")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "GRAD_NAMES",
    "PARAM_NAMES",
    "GradientReport",
    "GradientRow",
    "NetworkGrads",
    "NetworkParams",
    "RNNCache",
    "RNNGrads",
    "RNNParams",
    "TOLERANCES",
    "__version__",
    "Tolerance",
    "bptt",
    "compare_grads",
    "rnn_forward",
    "tolerance_for",
]
