"""manual_bptt imports and works with torch absent."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest

import manual_bptt


def test_manual_bptt_does_not_import_torch_and_runs_without_it():
    script = textwrap.dedent(
        """
        import sys

        class NoTorch:
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is blocked in this test")

        sys.meta_path.insert(0, NoTorch())
        import numpy as np
        import manual_bptt
        from manual_bptt.verification.problems import random_problem
        L, g = random_problem(T=5, B=2).run(manual_bptt.bptt)
        assert np.isfinite(L) and g.W.shape == (8, 8)
        assert "torch" not in sys.modules
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_public_names():
    """A star import gives exactly `__all__`, which holds the documented API and the version."""
    namespace: dict = {}
    exec("from manual_bptt import *", namespace)  # noqa: S102
    namespace.pop("__builtins__")
    assert set(namespace) == set(manual_bptt.__all__)
    documented = {"RNNParams", "RNNGrads", "bptt", "rnn_forward", "compare_grads", "TOLERANCES", "__version__"}
    assert documented <= set(manual_bptt.__all__), documented - set(manual_bptt.__all__)


def test_one_version_for_both_packages():
    import importlib.metadata

    assert manual_bptt.__version__ == importlib.metadata.version("manual-bptt")
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", manual_bptt.__version__)
    torch_reference = pytest.importorskip("torch_reference")
    assert torch_reference.__version__ == manual_bptt.__version__
