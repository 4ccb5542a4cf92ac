"""`bptt-check`: cross-check the hand-written gradients against torch.autograd.

Builds one random problem (sizes, options and seed from the command line; the
defaults are the built-in problem), prints the per-gradient table, and exits
with one of EXIT_CODES: 0 when every gradient agrees within the dtype's
tolerance, 1 when any does not, 2 for a usage error (argparse's code: a bad
option, or a problem too large for memory), 3 when the computation overflowed
on the problem, so that no comparison was possible.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from manual_bptt import __version__
from manual_bptt.overflow import NonFiniteError
from manual_bptt.problems import random_problem
from manual_bptt.validation import LOSSES, NONLINEARITIES, REDUCTIONS, check_problem

from .autograd import compare

#: The exit status, by outcome. 2 is argparse's own code for a usage error.
EXIT_CODES = {"agree": 0, "disagree": 1, "usage": 2, "overflow": 3}


def _integer(minimum: int):
    """An argparse type: an int of at least `minimum`, with a message that names no function."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bptt-check",
        description="Compare hand-written BPTT gradients with torch.autograd on one random problem.",
        epilog="exit status: 0 every gradient agrees; 1 some gradient disagrees; 2 usage error "
               "(a bad option, or sizes too large for memory); 3 the computation overflowed, "
               "so nothing could be compared",
    )
    p.add_argument("--version", action="version",
                   version=f"%(prog)s {__version__} (numpy {np.__version__}, torch {torch.__version__})")
    positive = _integer(1)
    sizes = p.add_argument_group("sizes")
    sizes.add_argument("-T", "--seq-len", type=positive, default=20, help="time steps T (default %(default)s)")
    sizes.add_argument("-B", "--batch", type=positive, default=4, help="batch size B (default %(default)s)")
    sizes.add_argument("-I", "--input-size", type=positive, default=5, help="input size I (default %(default)s)")
    sizes.add_argument("-H", "--hidden-size", type=positive, default=8, help="hidden size H (default %(default)s)")
    sizes.add_argument("-O", "--output-size", type=positive, default=6, help="output size O (default %(default)s)")
    p.add_argument("--nonlinearity", choices=NONLINEARITIES, default="tanh",
                   help="φ of h(t) = φ(a(t)) (default %(default)s)")
    p.add_argument("--loss", choices=LOSSES, default="cross_entropy",
                   help="L(t): cross-entropy on class labels, or mse = ½‖o(t) - y(t)‖² (default %(default)s)")
    p.add_argument("--reduction", choices=REDUCTIONS, default="sum",
                   help="L = Σ_t L(t), or that divided as torch's reduction='mean' (default %(default)s)")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="dtype of every array; the tolerance follows it (default %(default)s)")
    p.add_argument("--seed", type=_integer(0), default=0, help="seed of the problem, >= 0 (default %(default)s)")
    p.add_argument("--batch-first", action="store_true", help="lay x and y out as (B, T, ...) (default: (T, B, ...))")
    p.add_argument("--zero-h0", action="store_true", help="pass h0=None (zeros) instead of a random h0")
    return p


def main(argv: list[str] | None = None) -> int:
    cli = parser()
    args = cli.parse_args(argv)
    try:
        # Everything is checked before anything is computed: a bad combination of
        # options, or sizes that cannot fit in memory, is a usage error.
        problem = random_problem(
            T=args.seq_len, B=args.batch, I=args.input_size, H=args.hidden_size, O=args.output_size,
            seed=args.seed, dtype=args.dtype, nonlinearity=args.nonlinearity, loss=args.loss,
            reduction=args.reduction, batch_first=args.batch_first, random_h0=not args.zero_h0,
        )
        problem.run(check_problem)
    except (ValueError, TypeError) as error:
        cli.error(str(error))                                     # exits with EXIT_CODES["usage"]
    print(f"problem: {problem!r}")
    try:
        report = problem.run(compare)
    except NonFiniteError as error:
        print(f"{cli.prog}: overflow: {error}", file=sys.stderr)
        return EXIT_CODES["overflow"]
    except MemoryError:
        cli.error("the problem passed the size check but did not fit in the memory free now; "
                  "use smaller sizes")
    print(report)
    return EXIT_CODES["agree"] if report.ok else EXIT_CODES["disagree"]


if __name__ == "__main__":
    sys.exit(main())
