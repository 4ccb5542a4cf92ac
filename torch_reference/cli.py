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

from manual_bptt.problems import random_network_problem, random_problem, weight_scale_is_valid
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
    _network_arguments(p)
    return p


def _weight_scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not weight_scale_is_valid(value):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return value


def _network_arguments(p: argparse.ArgumentParser) -> None:
    """Any of these makes the problem a network (NetworkParams, twin nn.RNN(...) + nn.Linear)."""
    net = p.add_argument_group(
        "networks", "any of these checks a network (nn.RNN with these options + nn.Linear head) "
        "instead of the one-layer derivation's model")
    net.add_argument("--cell", choices=("rnn", "lstm", "gru"), default="rnn",
                     help="rnn (nn.RNN with --nonlinearity), lstm (nn.LSTM) or gru (nn.GRU) (default rnn)")
    net.add_argument("--proj-size", type=_positive, default=None, metavar="P",
                     help="LSTM projection h = W_hr (o ⊙ tanh c), P < H (nn.LSTM(proj_size=P); default none)")
    net.add_argument("--num-layers", type=_positive, default=1, help="stacked layers L (default 1)")
    net.add_argument("--bidirectional", action="store_true", help="two directions, outputs concatenated")
    net.add_argument("--no-bias", action="store_true", help="no bias_ih, bias_hh (nn.RNN(bias=False))")
    net.add_argument("--lengths", choices=("none", "random", "one", "full"), default="none",
                     help="padded batch: random lengths in [1, T], all 1, or all T (default none: no lengths)")
    net.add_argument("--target", choices=("each_step", "last"), default="each_step",
                     help="a label per step, or one per sequence read off h_n (default each_step)")
    net.add_argument("--truncate", type=_positive, default=None, metavar="K",
                     help="truncated BPTT in chunks of K steps (one direction only; default none)")


def _is_network(args) -> bool:
    return (args.cell != "rnn" or args.num_layers != 1 or args.bidirectional or args.no_bias or args.lengths != "none"
            or args.target != "each_step" or args.truncate is not None)


def _network_problem(args):
    return random_network_problem(
        T=args.seq_len, B=args.batch, I=args.input_size, H=args.hidden_size, O=args.output_size,
        cell=f"rnn_{args.nonlinearity}" if args.cell == "rnn" else args.cell,
        proj_size=args.proj_size or 0, num_layers=args.num_layers, bidirectional=args.bidirectional,
        bias=not args.no_bias, lengths=args.lengths, target=args.target, truncate=args.truncate,
        seed=args.seed, dtype=args.dtype, loss=args.loss, reduction=args.reduction,
        batch_first=args.batch_first, random_h0=not args.zero_h0, weight_scale=args.weight_scale,
    )


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.truncate is not None and args.bidirectional:
        parser().error("--truncate: a bidirectional network has no chunks (the reverse direction runs backwards)")
    if args.proj_size is not None and (args.cell != "lstm" or args.proj_size >= args.hidden_size):
        parser().error(f"--proj-size: only for --cell lstm, and below the hidden size H = {args.hidden_size}")
    problem = _network_problem(args) if _is_network(args) else random_problem(
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
