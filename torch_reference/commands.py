"""`bptt`: one command, four jobs.

    bptt check    manual BPTT vs torch.autograd on one problem (what `bptt-check` does)
    bptt explain  a figure of the derivation: terms over (t, k), size against the lag,
                  singular values of ∂h(t)/∂h(k), for tanh and relu at several scales of W
    bptt sweep    N random problems over every option, a summary table, exit 1 on a FAIL
    bptt train    a character-level language model trained twice, manual and autograd
    bptt audit    how many digits torch's float32, oneDNN, bfloat16 and float16 gradients keep

With no subcommand (or options only), `bptt` is `bptt check`, so `bptt -T 40`
and `bptt-check -T 40` are the same run. Exit codes, the same for every subcommand:
0 success (every gradient agrees); 1 a FAIL (for train: the float64 runs part);
2 bad input, one line on stderr naming the option, what it got and what was
expected; 3 a problem that cannot be answered (the computation overflowed, or a
gradient has no meaningful digit on it); 4 an optional dependency is missing (the
message says which extra installs it); 130 stopped by Ctrl-C (SIGINT), after
printing what was done so far.
"""

from __future__ import annotations

import importlib
import sys

from manual_bptt.tools.extras import MissingExtra

#: subcommand -> (module, one-line help); each module has main(argv) -> exit code
SUBCOMMANDS = {
    "check": ("torch_reference.check", "compare manual BPTT with torch.autograd on one problem"),
    "explain": ("torch_reference.explain", "draw the derivation: terms over (t, k), lags, singular values"),
    "sweep": ("torch_reference.sweep", "check N random problems across every option"),
    "train": ("torch_reference.train", "train a character-level model twice: manual and autograd"),
    "audit": ("torch_reference.audit", "each precision path's gradient errors beside what rounding predicts"),
}
EXIT_MISSING_EXTRA = 4
#: 128 + SIGINT, as a shell reports a program that Ctrl-C stopped.
EXIT_INTERRUPTED = 130


def usage() -> str:
    lines = [f"usage: bptt [{'|'.join(SUBCOMMANDS)}] [options]   (no subcommand: check)", ""]
    lines += [f"  {name:<8} {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    lines += ["", "`bptt SUBCOMMAND --help` lists the options of each."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(usage())
        return 0
    name = args.pop(0) if args and args[0] in SUBCOMMANDS else "check"
    if args and not args[0].startswith("-") and name == "check" and args[0] not in SUBCOMMANDS:
        print(f"bptt: error: unknown subcommand {args[0]!r}; expected one of {', '.join(SUBCOMMANDS)} "
              "(bptt --help describes them)", file=sys.stderr)
        return 2
    module_name, _ = SUBCOMMANDS[name]
    try:
        return importlib.import_module(module_name).main(args)
    except MissingExtra as missing:
        print(f"bptt {name}: {missing}", file=sys.stderr)
        return EXIT_MISSING_EXTRA
    except KeyboardInterrupt:
        # Each subcommand reports its own work when Ctrl-C stops it; this is for an
        # interruption outside that work (while torch is being imported, say).
        print(f"bptt {name}: interrupted (Ctrl-C)", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
