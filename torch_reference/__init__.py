"""The derivation's network on nn.RNN + nn.Linear, with gradients from torch.autograd.

    >>> import numpy as np
    >>> from manual_bptt import RNNParams
    >>> from torch_reference import compare
    >>> p = RNNParams.random(input_size=3, hidden_size=5, output_size=4, rng=0)
    >>> rng = np.random.default_rng(1)
    >>> x, y = rng.standard_normal((6, 2, 3)), rng.integers(0, 4, size=(6, 2))
    >>> compare(p, x, y).ok
    True
"""

from manual_bptt import __version__  # one distribution, one version

from .autograd import compare, torch_bptt
from .network_twin import build_network
from .twin import RNNTwin, build_twin, twin_to_params

__all__ = ["__version__", "RNNTwin", "build_network", "build_twin", "compare", "torch_bptt", "twin_to_params"]
