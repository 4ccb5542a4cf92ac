"""`bptt-check`: cross-check the hand-written gradients against torch.autograd.

Builds one random problem (sizes, options and seed from the command line; the
defaults are the built-in problem), prints the per-gradient table, and exits
0 when every gradient agrees (within the dtype's tolerance, or on an
ill-conditioned problem within what rounding explains), 1 when any FAILs, and 3
when none FAILs but some gradient has no meaningful digit on this problem.
"""

from __future__ import annotations

import argparse
import sys

from manual_bptt.problems import random_problem, weight_scale_is_valid
from manual_bptt.validation import LOSSES, NONLINEARITIES, REDUCTIONS

from .autograd import compare


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bptt-check",
        description="Compare hand-written BPTT gradients with torch.autograd on one random problem.",
    )
    sizes = p.add_argument_group("sizes")
    sizes.add_argument("-T", "--seq-len", type=_positive, default=20, help="time steps T (default 20)")
    sizes.add_argument("-B", "--batch", type=_positive, default=4, help="batch size B (default 4)")
    sizes.add_argument("-I", "--input-size", type=_positive, default=5, help="input size I (default 5)")
    sizes.add_argument("-H", "--hidden-size", type=_positive, default=8, help="hidden size H (default 8)")
    sizes.add_argument("-O", "--output-size", type=_positive, default=6, help="output size O (default 6)")
    p.add_argument("--nonlinearity", choices=NONLINEARITIES, default="tanh")
    p.add_argument("--loss", choices=LOSSES, default="cross_entropy")
    p.add_argument("--reduction", choices=REDUCTIONS, default="sum")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    p.add_argument("--seed", type=int, default=0, help="seed of the problem (default 0)")
    p.add_argument("--batch-first", action="store_true", help="lay x and y out as (B, T, ...)")
    p.add_argument("--zero-h0", action="store_true", help="pass h0=None (zeros) instead of a random h0")
    p.add_argument("--weight-scale", type=_weight_scale, default=1.0, metavar="S",
                   help="multiply the recurrent matrix W by S (default 1: PyTorch's initial scale); "
                        "4 to 12 makes the problem ill-conditioned, as a trained network can be")
    return p


def _weight_scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not weight_scale_is_valid(value):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    problem = random_problem(
        T=args.seq_len, B=args.batch, I=args.input_size, H=args.hidden_size, O=args.output_size,
        seed=args.seed, dtype=args.dtype, nonlinearity=args.nonlinearity, loss=args.loss,
        reduction=args.reduction, batch_first=args.batch_first, random_h0=not args.zero_h0,
        weight_scale=args.weight_scale,
    )
    report = problem.run(compare)
    print(f"problem: {problem!r}")
    print(report)
    return exit_code(report)


def exit_code(report) -> int:
    """0: every gradient agrees; 1: some gradient FAILs; 3: none FAILs, but on this
    problem some gradient has no meaningful digit, so it could not be checked."""
    if report.failures():
        return 1
    return 0 if report.ok else 3


if __name__ == "__main__":
    sys.exit(main())
