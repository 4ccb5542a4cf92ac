"""Time manual network BPTT against torch.autograd on the same networks, in one process.

    python benchmarks/bench_networks.py            # or: make bench
    python benchmarks/bench_networks.py --quick    # fewer rounds, for a smoke test

Each row times forward + loss + backward of
  - manual: `manual_bptt.bptt` on a NetworkParams (input validation on), and
  - torch:  the same nn.RNN / nn.LSTM / nn.GRU (num_layers, bidirectional) + nn.Linear head, cross-entropy
            summed over every real step; for padded batches the idiomatic
            pack_padded_sequence(enforce_sorted=False) → RNN → pad_packed_sequence,
            and the loss over the real steps; h0 requiring grad; torch's default threads,
alternating the two in rounds (medians), as benchmarks/bench_rnn.py does.
The networks are the small and large sizes with 2 layers and two directions, 3 layers,
and a padded batch; then one-layer LSTM and GRU networks at the five sizes of
benchmarks/bench_rnn.py. The manual pass also computes ∂L/∂x; torch is not asked for it.
On CPU, torch's float32 nn.LSTM runs oneDNN's fused LSTM kernel (mkldnn_rnn) for unpacked input
without a projection, where oneDNN is built in and enabled, as in the pinned CPU build; the
header says which.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

from bench_rnn import DTYPES, SIZES, blas_description, machine_description, time_pair  # noqa: E402
from manual_bptt import bptt  # noqa: E402
from manual_bptt.verification.problems import random_network_problem  # noqa: E402
from torch_reference.network_twin import build_network  # noqa: E402

# name: (T, B, I, H, O), network options
NETWORKS = {
    "small, 2 layers, bidirectional": ((50, 8, 16, 32, 16), dict(num_layers=2, bidirectional=True)),
    "small, 3 layers": ((50, 8, 16, 32, 16), dict(num_layers=3, bidirectional=False)),
    "small, padded, 2 layers, bidir.": ((50, 8, 16, 32, 16), dict(num_layers=2, bidirectional=True, lengths="random")),
    "large, 2 layers, bidirectional": ((200, 64, 128, 256, 128), dict(num_layers=2, bidirectional=True)),
    "large, 3 layers": ((200, 64, 128, 256, 128), dict(num_layers=3, bidirectional=False)),
    "large, padded, 2 layers, bidir.": ((200, 64, 128, 256, 128), dict(num_layers=2, bidirectional=True, lengths="random")),
}


# The core's five sizes (bench_rnn.SIZES), one layer and direction, for the gated cells.
CELL_ROWS = [(cell, size) for cell in ("lstm", "gru") for size in SIZES]


def manual_step(problem):
    return lambda: problem.run(bptt)


def torch_step(problem):
    rnn, head = build_network(problem.params)
    x = torch.from_numpy(problem.x)
    y = torch.from_numpy(problem.y)
    if isinstance(problem.h0, tuple):                               # an LSTM's (h0, c0)
        h0 = tuple(torch.from_numpy(s).requires_grad_() for s in problem.h0)
    else:
        h0 = torch.from_numpy(problem.h0).requires_grad_()
    leaves = h0 if isinstance(h0, tuple) else (h0,)
    lengths = problem.options["lengths"]
    params = list(rnn.parameters()) + list(head.parameters())
    T = problem.x.shape[0]
    real = None if lengths is None else torch.from_numpy(np.arange(T)[:, None] < lengths[None, :])

    def step():
        for q in params + list(leaves):
            q.grad = None
        if lengths is None:
            out, _ = rnn(x, h0)
            o, labels = head(out).reshape(-1, head.out_features), y.reshape(-1)
        else:
            packed = pack_padded_sequence(x, torch.from_numpy(lengths), enforce_sorted=False)
            out, _ = rnn(packed, h0)
            out, _ = pad_packed_sequence(out, total_length=T)
            o, labels = head(out)[real], y[real]
        L = F.cross_entropy(o, labels, reduction="sum")
        L.backward()
        return L

    return step


def onednn_description() -> str:
    """Whether torch's float32 nn.LSTM runs oneDNN's fused LSTM here (its CPU default when available)."""
    used = torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled
    return ("torch float32 nn.LSTM: " + ("oneDNN's fused LSTM kernel for unpacked input without a projection "
            "(torch.backends.mkldnn enabled); packed input, proj_size, nn.GRU, nn.RNN and float64 run torch's "
            "per-step ops" if used else "torch's per-step ops (oneDNN off)"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds instead of 11")
    parser.add_argument("--only", choices=("small", "large", "cells"), default=None,
                        help="only the small or large networks, or only the LSTM and GRU rows")
    parser.add_argument("--dtypes", nargs="+", choices=DTYPES, default=list(DTYPES))
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else 11

    print(machine_description())
    print(blas_description())
    print(onednn_description())
    print("\n| network                          | T, B, I, H, O         | dtype   | manual (ms) | torch (ms) | torch / manual |")
    print("|----------------------------------|-----------------------|---------|-------------|------------|----------------|")
    rows = [(name, sizes, options) for name, (sizes, options) in NETWORKS.items()]
    rows += [(f"{cell}, {size}", SIZES[size], dict(cell=cell, num_layers=1, bidirectional=False))
             for cell, size in CELL_ROWS]
    for name, sizes, options in rows:
        wanted = {"cells": ("lstm", "gru"), "small": ("small",), "large": ("large",)}.get(args.only)
        if wanted and not name.startswith(wanted):
            continue
        T, B, I, H, O = sizes
        for dtype in args.dtypes:
            problem = random_network_problem(T=T, B=B, I=I, H=H, O=O, seed=0, dtype=dtype, **options)
            manual_s, torch_s = time_pair(manual_step(problem), torch_step(problem), rounds, 0.02)
            print(f"| {name:<32} | {str(sizes)[1:-1]:<21} | {dtype:<7} | {manual_s * 1e3:11.3f} "
                  f"| {torch_s * 1e3:10.3f} | {torch_s / manual_s:13.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
