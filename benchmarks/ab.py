"""A/B of manual_bptt.bptt: a git revision against the working tree, in one process.

    python benchmarks/ab.py --base 900f23f                  # every row of bench_rnn.py and bench_networks.py
    python benchmarks/ab.py --base HEAD~3 --only networks --rounds 7 --runs 3

The base revision's manual_bptt is exported (git archive) into a temporary folder and
imported under another name, beside the working tree's; each row builds its problem with
each version's own random_problem / random_network_problem (same recipe, same seed, so
the same numbers) and times the two `bptt` calls in alternating batches (bench_rnn's
time_peers), `--runs` times over. It prints per row the median time of each and
new / base (below 1: the working tree is faster), with the range over the runs. No
torch is timed: this measures what a change to the manual code costs, nothing else.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_networks import NETWORKS  # noqa: E402
from bench_rnn import DTYPES, SIZES, blas_description, machine_description, time_peers  # noqa: E402

BASE_NAME = "manual_bptt_base"


def import_revision(revision: str, folder: Path):
    """The package manual_bptt as it is at `revision`, imported as manual_bptt_base."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "manual_bptt"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    package = folder / "manual_bptt"
    spec = importlib.util.spec_from_file_location(BASE_NAME, package / "__init__.py",
                                                  submodule_search_locations=[str(package)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[BASE_NAME] = module
    spec.loader.exec_module(module)
    return module


def problem_maker(package_name: str, function: str):
    """random_problem or random_network_problem of one version, wherever its layout keeps it
    (verification/problems.py, or problems.py before the package had folders)."""
    folder = Path(sys.modules[package_name].__file__).parent
    path = "verification.problems" if (folder / "verification" / "problems.py").exists() else "problems"
    return getattr(importlib.import_module(f"{package_name}.{path}"), function)


def rows(only: str | None):
    """(name, sizes, maker, options) for the rows of bench_rnn.py and bench_networks.py."""
    if only in (None, "rnn"):
        for size, sizes in SIZES.items():
            yield f"rnn {size}", sizes, "random_problem", {}
    if only in (None, "networks"):
        for name, (sizes, options) in NETWORKS.items():
            yield name, sizes, "random_network_problem", options
        for cell in ("lstm", "gru"):
            for size, sizes in SIZES.items():
                yield f"{cell}, {size}", sizes, "random_network_problem", dict(cell=cell, num_layers=1,
                                                                              bidirectional=False)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the git revision to compare the working tree against")
    parser.add_argument("--only", choices=("rnn", "networks"), default=None, help="only these rows")
    parser.add_argument("--match", default=None, help="only rows whose name contains this")
    parser.add_argument("--dtypes", nargs="+", choices=DTYPES, default=list(DTYPES))
    parser.add_argument("--rounds", type=int, default=5, help="alternating batches per run (default %(default)s)")
    parser.add_argument("--runs", type=int, default=3, help="runs per row; the table gives their median and range")
    args = parser.parse_args(argv)

    import manual_bptt

    with tempfile.TemporaryDirectory() as folder:
        base = import_revision(args.base, Path(folder))
        revision = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.base],
                                  check=True, capture_output=True, text=True).stdout.strip()
        print(machine_description())
        print(blas_description())
        print(f"base: manual_bptt at {revision}; new: the working tree. new / base < 1: the working tree is faster.")
        print(f"{args.runs} runs of {args.rounds} alternating batches per row.\n")
        print("| row                              | T, B, I, H, O         | dtype   | base (ms) | new (ms) "
              "| new / base (range)   |")
        print("|----------------------------------|-----------------------|---------|-----------|----------"
              "|----------------------|")
        for name, sizes, maker, options in rows(args.only):
            if args.match and args.match not in name:
                continue
            T, B, I, H, O = sizes
            for dtype in args.dtypes:
                recipe = dict(T=T, B=B, I=I, H=H, O=O, seed=0, dtype=dtype, **options)
                problems = {"base": problem_maker(BASE_NAME, maker)(**recipe),
                            "new": problem_maker("manual_bptt", maker)(**recipe)}
                steps = {"base": (lambda p=problems["base"]: p.run(base.bptt)),
                         "new": (lambda p=problems["new"]: p.run(manual_bptt.bptt))}
                runs = [time_peers(steps, args.rounds, 0.02) for _ in range(args.runs)]
                ratios = [run["new"] / run["base"] for run in runs]
                b = statistics.median(run["base"] for run in runs)
                n = statistics.median(run["new"] for run in runs)
                spread = f"{statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f})"
                print(f"| {name:<32} | {str(sizes)[1:-1]:<21} | {dtype:<7} | {b * 1e3:9.2f} | {n * 1e3:8.2f} "
                      f"| {spread:<20} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
