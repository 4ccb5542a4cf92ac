"""`bptt-check`: cross-check the hand-written gradients against torch.autograd.

Builds one random problem (sizes, options and seed from the command line; the
defaults are the built-in problem), prints the per-gradient table, and exits
with one of EXIT_CODES: 0 when every gradient agrees (within the dtype's
tolerance, or on an ill-conditioned problem within what rounding explains), 1
when any FAILs, 2 for a usage error (argparse's code: a bad option, or a problem
too large for memory), 3 when the problem could not be checked: the computation
overflowed, or some gradient has no meaningful digit on it; 130 when Ctrl-C
(SIGINT) stopped it. Every subcommand of `bptt` keeps the same codes (and 4 for
a missing optional extra), and a usage error is one line on stderr,
"PROG: error: OPTION: what it got, what was expected", never a traceback.

Any of the network options (--cell, --num-layers, --bidirectional, ...) makes the
problem a network (`random_network_problem`) instead of the derivation's one layer.

`--weights FILE` checks a trained model instead: FILE is a whole model's state dict
(.pt, read with weights_only=True; .npz; .safetensors with the "safetensors" extra),
whose recurrent module and output layer are found as `NetworkParams.from_state_dict`
finds them (--prefix and --head name them where there are several); the cell is read
off the shapes (--nonlinearity for an Elman RNN). x and y are drawn at the model's
sizes (-T, -B, --seed, ...), or read from `--data FILE.npz` (x, y, and optionally
lengths, h0, c0). The weights' dtype is checked unless --dtype is given.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from manual_bptt import __version__
from manual_bptt.inputs.network_validation import check_network_problem
from manual_bptt.inputs.options import Options
from manual_bptt.inputs.overflow import NonFiniteError
from manual_bptt.model.network_params import NetworkParams, find_network
from manual_bptt.tools.extras import MissingExtra
from manual_bptt.verification.problems import random_network_problem, random_problem, weight_scale_is_valid
from manual_bptt.inputs.validation import LOSSES, NONLINEARITIES, REDUCTIONS

from .autograd import compare
from .commands import EXIT_MISSING_EXTRA
from .loading import first_line, read_data, read_state  # noqa: F401  (first_line: the commands import it from here)

#: The exit status, by outcome. 2 is argparse's own code for a usage error; 130 is
#: the shell's for a program stopped by SIGINT (128 + 2). `bptt` adds 4, a missing extra.
EXIT_CODES = {"agree": 0, "disagree": 1, "usage": 2, "unchecked": 3, "interrupted": 130}


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line: "PROG: error: MESSAGE" (exit 2).

    The usage text of these commands runs to several lines and buries the one that
    says what was wrong; `--help` prints it whole.
    """

    def error(self, message: str):
        self.exit(EXIT_CODES["usage"], f"{self.prog}: error: {' '.join(message.split())}\n")


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


#: The argparse type of every size and count option (commands.py's subcommands use it too).
_positive = _integer(1)


def _number(*, minimum: float, maximum: float = math.inf, include_minimum: bool = True):
    """An argparse type: a finite float in [minimum, maximum) (or (minimum, maximum) when
    `include_minimum` is False), with a message that says which."""
    interval = f"{'[' if include_minimum else '('}{minimum:g}, {'∞' if maximum == math.inf else f'{maximum:g}'})"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        inside = (value >= minimum if include_minimum else value > minimum) and value < maximum
        if not (math.isfinite(value) and inside):                  # NaN compares False: refused too
            raise argparse.ArgumentTypeError(f"expected a finite number in {interval}, got {text!r}")
        return value

    return parse


#: The figure formats `save_figure` writes, by file-name suffix (any case).
FIGURE_SUFFIXES = (".png", ".svg", ".pdf")


def check_output_path(option: str, path: str, *, suffixes=FIGURE_SUFFIXES) -> Path:
    """The path of an output file, refused (ValueError naming `option`) before any computation
    when it cannot be written: an unknown suffix (none included), a directory, a parent that is
    a file, or a place where this process cannot create a file."""
    out = Path(path)
    if out.suffix.lower() not in suffixes:
        raise ValueError(f"{option}: expected a file name ending in {', '.join(suffixes)}, got {path!r}")
    if out.is_dir():
        raise ValueError(f"{option}: {path!r} is a directory; expected a file name")
    existing = out.parent
    while not existing.exists() and existing != existing.parent:  # the nearest folder that exists
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{option}: cannot write {path!r}: {str(existing)!r} is a file, not a folder")
    if out.exists():
        try:
            with open(out, "r+b"):                                 # writable, left unchanged
                pass
        except OSError as error:
            raise ValueError(f"{option}: cannot write {path!r}: {error.strerror or error}") from None
        return out
    try:
        # A file made and removed where the folders will be made: the only sure test
        # of a place (permissions say nothing to root, or of a read-only mount).
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ValueError(f"{option}: cannot write {path!r}: cannot create a file in {str(existing)!r} "
                         f"({error.strerror or error})") from None
    return out


def size_arguments(group, *, T: int = 20, B: int = 4, I: int = 5, H: int = 8, O: int = 6) -> None:
    """-T, -B, -I, -H, -O with these defaults (the built-in problem's unless given)."""
    for short, long, default, meaning in (("-T", "--seq-len", T, "time steps T"), ("-B", "--batch", B, "batch size B"),
                                          ("-I", "--input-size", I, "input size I"),
                                          ("-H", "--hidden-size", H, "hidden size H"),
                                          ("-O", "--output-size", O, "output size O")):
        group.add_argument(short, long, type=_positive, default=default, help=f"{meaning} (default %(default)s)")


def _weight_scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not weight_scale_is_valid(value):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return value


def parser(prog: str = "bptt-check") -> argparse.ArgumentParser:
    """The options of `bptt-check`; `prog` is the name its usage and messages give (`bptt check` as a subcommand)."""
    p = Parser(
        prog=prog,
        description="Compare hand-written BPTT gradients with torch.autograd on one random problem.",
        epilog="exit status: 0 every gradient agrees; 1 some gradient disagrees; 2 usage error "
               "(a bad option, or sizes too large for memory); 3 the problem could not be checked "
               "(the computation overflowed, or a gradient has no meaningful digit on it); "
               "4 an optional extra is missing (to read a .safetensors file); 130 stopped by Ctrl-C",
    )
    p.add_argument("--version", action="version",
                   version=f"%(prog)s {__version__} (numpy {np.__version__}, torch {torch.__version__})")
    positive = _positive
    size_arguments(p.add_argument_group("sizes"))
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
    p.add_argument("--weight-scale", type=_weight_scale, default=1.0, metavar="S",
                   help="multiply the recurrent matrix W (every weight_hh of a network) by S "
                        "(1 is PyTorch's initial scale; 4 to 12 makes the problem ill-conditioned, "
                        "as a trained network can be) (default %(default)s)")
    _network_arguments(p, positive)
    _trained_arguments(p)
    return p


def _trained_arguments(p: argparse.ArgumentParser) -> None:
    """--weights FILE checks a trained model; the others say where its parts and data are."""
    trained = p.add_argument_group(
        "a trained model", "--weights checks a model's own network and output layer; the sizes, --num-layers, "
        "--bidirectional, --no-bias, --proj-size and --weight-scale are the file's")
    trained.add_argument("--weights", metavar="FILE",
                         help="a model's state dict: .pt (torch.save(model.state_dict(), FILE), read with "
                              "weights_only=True), .npz, or .safetensors (the 'safetensors' extra); None: a random "
                              "problem (default %(default)s)")
    trained.add_argument("--prefix", metavar="P",
                         help="the recurrent module's name in the state dict, e.g. encoder.rnn "
                              "(None: the one nn.RNN/LSTM/GRU in it) (default %(default)s)")
    trained.add_argument("--head", metavar="N",
                         help="the output nn.Linear's name, e.g. decoder; None: the one nn.Linear that "
                              "takes the recurrent module's output (default %(default)s)")
    trained.add_argument("--data", metavar="FILE.npz",
                         help="the problem's arrays: x and y, optionally lengths, h0 and c0 (LSTM), in the layout "
                              "--batch-first says; None: x and y drawn at the model's sizes with -T, -B, --seed "
                              "(default %(default)s)")


#: What the weights file decides: each of these options is refused with --weights.
FILE_DECIDES = {"input_size": "-I", "hidden_size": "-H", "output_size": "-O", "num_layers": "--num-layers",
                "bidirectional": "--bidirectional", "no_bias": "--no-bias", "proj_size": "--proj-size",
                "weight_scale": "--weight-scale"}
#: What the data file decides: each of these options is refused with --data.
DATA_DECIDES = {"seq_len": "-T", "batch": "-B", "lengths": "--lengths", "zero_h0": "--zero-h0", "seed": "--seed"}


def given_options(argv: list[str]) -> set[str]:
    """The destinations of the options on the command line: argv parsed again with every
    default suppressed, so that only what was given remains (abbreviations included)."""
    quiet = parser()
    for action in quiet._actions:
        action.default = argparse.SUPPRESS
    return set(vars(quiet.parse_args(argv)))


@dataclass(frozen=True)
class TrainedProblem:
    """A trained model's network and a problem for it: `problem.run(compare)`."""

    params: NetworkParams = field(repr=False)
    x: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    h0: object = field(repr=False)
    options: dict = field(repr=False)
    description: str

    def __repr__(self) -> str:
        return self.description

    def run(self, fn, **overrides):
        return fn(self.params, self.x, self.y, self.h0, **{**self.options, **overrides})


def _trained_problem(args, given: set[str]) -> TrainedProblem:
    """The model of --weights and its problem (--data, or drawn), checked before anything is computed."""
    for dest, option in FILE_DECIDES.items():
        if dest in given:
            raise ValueError(f"{option}: read off the --weights file; not an option with --weights")
    if args.data is not None:
        for dest, option in DATA_DECIDES.items():
            if dest in given:
                raise ValueError(f"{option}: for drawn data; --data {args.data!r} gives the problem's arrays")
    state = read_state(args.weights, option="--weights")
    where = f"--weights: {args.weights!r}"
    try:
        found = find_network(state, prefix=args.prefix, head=args.head)
        cell = _cell(args, given, found)
        params = NetworkParams.from_state_dict(state, cell, prefix=found.prefix, head=found.head)
    except (ValueError, TypeError) as error:
        raise type(error)(f"{where}: {error}") from None
    if "dtype" in given:
        params = params.astype(args.dtype)
    model = f"{args.weights} ({found.prefix or 'its keys'!r} and head {found.head!r}): {params!r}"
    if args.data is None:
        drawn = random_network_problem(
            T=args.seq_len, B=args.batch, I=params.input_size, H=params.hidden_size, O=params.output_size,
            cell=params.cell, num_layers=params.num_layers, bidirectional=params.bidirectional, bias=params.bias,
            proj_size=params.proj_size, lengths=args.lengths, target=args.target, truncate=args.truncate,
            seed=args.seed, dtype=params.dtype.name, loss=args.loss, reduction=args.reduction,
            batch_first=args.batch_first, random_h0=not args.zero_h0)
        x, y, h0, options = drawn.x, drawn.y, drawn.h0, drawn.options
        data = f"x, y{'' if args.zero_h0 else ', h0'} drawn with seed {args.seed}, T={args.seq_len}, B={args.batch}"
        where = "the drawn problem"
    else:
        x, y, h0, options = _data(args, given, params)
        data = f"{args.data} (x {x.shape}, y {y.shape}{'' if options['lengths'] is None else ', lengths'}" \
               f"{'' if h0 is None else ', h0'})"
        where = f"--data: {args.data!r}"
    try:
        check_network_problem(params, x, y, h0, Options.parse("compare", options, network=True))
    except (ValueError, TypeError) as error:
        raise type(error)(f"{where}: {error}") from None
    return TrainedProblem(params, x, y, h0, options, description=f"model {model}; data {data}")


def _cell(args, given: set[str], found) -> str:
    """The cell: --cell (with --nonlinearity for rnn), else read off the shapes."""
    nonlinearity = args.nonlinearity if "nonlinearity" in given else None
    family = args.cell if "cell" in given else found.family
    if family in ("rnn", "elman"):
        if nonlinearity is None:
            raise ValueError("--nonlinearity: the file holds an Elman RNN (one gate block), whose tanh or relu a "
                             "state dict does not record; expected --nonlinearity tanh or relu")
        return f"rnn_{nonlinearity}"
    if nonlinearity is not None:
        raise ValueError(f"--nonlinearity: only for an Elman RNN (nn.RNN); the network is an {str(family).upper()}")
    return args.cell if "cell" in given else found.cell()


def _data(args, given: set[str], params: NetworkParams):
    """x, y, h0 and the options from --data, in the weights' dtype (or --dtype's)."""
    arrays = read_data(args.data, option="--data")
    where = f"--data: {args.data!r}"
    for key in ("x", "h0", "c0", "y"):
        array = arrays.get(key)
        if array is None or array.dtype.kind != "f" or (key == "y" and args.loss != "mse"):
            continue
        if "dtype" in given:
            arrays[key] = array.astype(params.dtype)             # asked for: every float array in that dtype
        elif array.dtype != params.dtype:
            raise TypeError(f"{where}: {key} is {array.dtype}, the weights {params.dtype}; expected one dtype "
                            f"(--dtype {array.dtype} checks both in {array.dtype})")
    h0 = arrays.get("h0")
    if params.cell == "lstm" and h0 is not None:
        if "c0" not in arrays:
            raise ValueError(f"{where} holds h0 but no c0; an LSTM's initial state is the pair (h0, c0)")
        h0 = (h0, arrays["c0"])
    elif "c0" in arrays:
        raise ValueError(f"{where} holds c0; only an LSTM has a cell state, the network is {params.cell!r}")
    options = dict(lengths=arrays.get("lengths"), target=args.target, truncate=args.truncate, loss=args.loss,
                   reduction=args.reduction, batch_first=args.batch_first)
    return arrays["x"], arrays["y"], h0, options


def _network_arguments(p: argparse.ArgumentParser, positive) -> None:
    """Any of these makes the problem a network (NetworkParams, twin nn.RNN/LSTM/GRU + nn.Linear)."""
    net = p.add_argument_group(
        "networks", "any of these checks a network (nn.RNN, nn.LSTM or nn.GRU with these options + an "
        "nn.Linear head) instead of the one-layer derivation's model")
    net.add_argument("--cell", choices=("rnn", "lstm", "gru"), default="rnn",
                     help="rnn (nn.RNN with --nonlinearity), lstm (nn.LSTM) or gru (nn.GRU) (default %(default)s)")
    net.add_argument("--proj-size", type=positive, default=None, metavar="P",
                     help="LSTM projection h = W_hr (o ⊙ tanh c), P < H, as nn.LSTM(proj_size=P); "
                          "None: no projection (default %(default)s)")
    net.add_argument("--num-layers", type=positive, default=1, help="stacked layers L (default %(default)s)")
    net.add_argument("--bidirectional", action="store_true", help="two directions, outputs concatenated")
    net.add_argument("--no-bias", action="store_true", help="no bias_ih, bias_hh (bias=False)")
    net.add_argument("--lengths", choices=("none", "random", "one", "full"), default="none",
                     help="padded batch: random lengths in [1, T], all 1, or all T; none passes no lengths "
                          "(default %(default)s)")
    net.add_argument("--target", choices=("each_step", "last"), default="each_step",
                     help="a label per step, or one per sequence read off h_n (default %(default)s)")
    net.add_argument("--truncate", type=positive, default=None, metavar="K",
                     help="truncated BPTT in chunks of K steps, one direction only; None: no truncation (default %(default)s)")


def _is_network(args) -> bool:
    return (args.cell != "rnn" or args.num_layers != 1 or args.bidirectional or args.no_bias
            or args.lengths != "none" or args.target != "each_step" or args.truncate is not None
            or args.proj_size is not None)


def _problem(args):
    common = dict(T=args.seq_len, B=args.batch, I=args.input_size, H=args.hidden_size, O=args.output_size,
                  seed=args.seed, dtype=args.dtype, loss=args.loss, reduction=args.reduction,
                  batch_first=args.batch_first, random_h0=not args.zero_h0, weight_scale=args.weight_scale)
    if not _is_network(args):
        return random_problem(**common, nonlinearity=args.nonlinearity)
    if args.truncate is not None and args.bidirectional:
        raise ValueError("--truncate: a bidirectional network has no chunks (the reverse direction runs backwards)")
    if args.proj_size is not None and (args.cell != "lstm" or args.proj_size >= args.hidden_size):
        raise ValueError(f"--proj-size: only for --cell lstm, and below the hidden size H = {args.hidden_size}")
    return random_network_problem(
        **common, cell=f"rnn_{args.nonlinearity}" if args.cell == "rnn" else args.cell,
        proj_size=args.proj_size or 0, num_layers=args.num_layers, bidirectional=args.bidirectional,
        bias=not args.no_bias, lengths=args.lengths, target=args.target, truncate=args.truncate,
    )


def main(argv: list[str] | None = None, *, prog: str = "bptt-check") -> int:
    cli = parser(prog)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = cli.parse_args(argv)
    try:
        # Everything is checked before anything is computed: a bad combination of
        # options, a bad file, or sizes that cannot fit in memory, is a usage error.
        given = given_options(argv)
        if args.weights is not None:
            problem = _trained_problem(args, given)
        else:
            for dest in ("prefix", "head", "data"):
                if dest in given:
                    raise ValueError(f"--{dest}: only with --weights FILE (a trained model's state dict)")
            problem = _problem(args)
    except (ValueError, TypeError) as error:
        cli.error(str(error))                                     # exits with EXIT_CODES["usage"]
    except MissingExtra as missing:
        print(f"{cli.prog}: {missing}", file=sys.stderr)
        return EXIT_MISSING_EXTRA
    print(f"problem: {problem!r}", flush=True)
    if isinstance(problem, TrainedProblem) and problem.params.num_layers > 1:
        print("note: a state dict does not record dropout; the network is checked as its eval-mode function "
              "(no dropout between layers)", flush=True)
    try:
        report = problem.run(compare)
    except KeyboardInterrupt:
        # The comparison is one call: until it returns, no row of the table exists.
        print(f"{cli.prog}: interrupted (Ctrl-C) before the comparison finished; no gradient was compared",
              file=sys.stderr)
        return EXIT_CODES["interrupted"]
    except NonFiniteError as error:
        print(f"{cli.prog}: overflow: {error}", file=sys.stderr)
        return EXIT_CODES["unchecked"]
    except MemoryError:
        cli.error("the problem passed the size check but did not fit in the memory free now; "
                  "use smaller sizes")
    print(report)
    return exit_code(report)


def exit_code(report) -> int:
    """0: every gradient agrees; 1: some gradient FAILs; 3: none FAILs, but on this
    problem some gradient has no meaningful digit, so it could not be checked."""
    if report.failures():
        return EXIT_CODES["disagree"]
    return EXIT_CODES["agree"] if report.ok else EXIT_CODES["unchecked"]


if __name__ == "__main__":
    sys.exit(main())
