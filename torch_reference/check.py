"""`bptt check`: `bptt-check` run as a subcommand of `bptt`, under that name.

The same options, problem and exit codes as `torch_reference.cli`; only the program's
name differs, so that `bptt check --help` says "usage: bptt check" and an error reads
"bptt check: error: ...", as `bptt explain` and `bptt train` name themselves.
"""

from __future__ import annotations

from . import cli


def main(argv: list[str] | None = None) -> int:
    return cli.main(argv, prog="bptt check")
