"""`bptt sweep`: check many random problems across every option, and summarise.

Each problem is drawn from the same space as the property suite's strategies
(tests/strategies.py): T in 1..40, B in 1..5, I, H, O in 1..10, both dtypes,
both nonlinearities, both losses, both reductions, three layouts, h0 random or
None. The recipes are drawn in the parent process from `--seed` alone, so a run
is repeatable whatever `--jobs` is; each is checked with `compare(manual=...)`
between the candidate (`bptt` unless `--manual module:function` names another) and
torch.autograd, so an ill-conditioned problem is judged by what rounding explains on
it. The summary counts the problems per option value, gives the worst ratio
max|Δ|/max|ref| per gradient and dtype, and prints every failure as the
`random_problem(...)` call that rebuilds it. Exit 1 on any FAIL. A candidate that
supports some options alone pins them (`--nonlinearity tanh --layout time_major`):
only the pinned values are drawn.

The recipes are drawn one at a time as the workers take them, so memory does not
grow with -n; the summary lists the MAX_LISTED smallest failures (by T, B, I, H, O) and
counts the rest. Ctrl-C stops the sweep and prints the summary of the problems
finished (exit 130); the workers ignore it and are ended by this process.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import multiprocessing
import os
import signal
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from manual_bptt import GRAD_NAMES, bptt
from manual_bptt.tools.extras import require
from manual_bptt.model.names import CELL_FACTS, ELMAN_CELLS, HEAD_SYMBOLS, LAYER_SYMBOLS, slot_of
from manual_bptt.verification.problems import random_network_problem, random_problem
from manual_bptt.inputs.options import (CELLS, DTYPES, LAYOUTS, LENGTH_KINDS, LOSSES, NONLINEARITIES, REDUCTIONS,
                                        TARGETS)

from .autograd import compare
from .cli import EXIT_CODES, Parser, _integer, _positive, first_line
from .threads import one_thread, one_thread_from_now_on

# The space of the property suite's strategies (tests/strategies.py).
MAX_T, MAX_B, MAX_SIZE = 40, 5, 10
#: The options a summary counts, in the order it prints them.
OPTIONS = ("dtype", "nonlinearity", "loss", "reduction", "layout", "h0")
ROW_NAMES = ("L",) + GRAD_NAMES
#: With --networks: the space of `network_problems` (manual_bptt.verification.strategies), and the rows
#: summarised per kind of parameter (every layer and direction of weight_hh is one row).
NETWORK_OPTIONS = ("dtype", "cell", "layers", "directions", "lengths", "target", "truncate", "loss",
                   "reduction", "layout", "h0")
NETWORK_ROW_NAMES = ("L",) + tuple(LAYER_SYMBOLS.values()) + tuple(HEAD_SYMBOLS.values()) + ("h0", "c0", "x")
MAX_NETWORK_T, MAX_NETWORK_B, MAX_NETWORK_SIZE = 12, 4, 6
#: The options a sweep can pin to some of their values (`--dtype float64 --layout time_major`),
#: each with options.py's table of every value it takes; with --networks, NETWORK_PINNABLE.
#: A pinned option is drawn from its pinned values alone, in the table's order.
PINNABLE = {"dtype": DTYPES, "nonlinearity": NONLINEARITIES, "loss": LOSSES, "reduction": REDUCTIONS,
            "layout": LAYOUTS}
NETWORK_PINNABLE = {"dtype": DTYPES, "cell": CELLS, "loss": LOSSES, "reduction": REDUCTIONS, "layout": LAYOUTS,
                    "lengths": LENGTH_KINDS, "target": TARGETS}
#: Problems handed to a worker at a time: enough to hide the inter-process cost.
CHUNK = 16
#: Failures the summary lists (the smallest: by T, then B, I, H, O); the rest are counted. A candidate
#: that fails every problem of a long sweep would otherwise hold them all in memory.
MAX_LISTED = 100


def check_pins(pins: dict | None, *, networks: bool = False) -> dict:
    """Every pinnable option's values: the pinned ones (in the table's order, once each), else
    the whole table. A ValueError names an option that cannot be pinned, a value it never
    takes, or an option pinned to no value."""
    tables = NETWORK_PINNABLE if networks else PINNABLE
    pins = {} if pins is None else pins
    for name, values in pins.items():
        if name not in tables:
            raise ValueError(f"{name}: not an option a sweep of {'networks' if networks else 'the one-layer RNN'} "
                             f"can pin; expected one of {', '.join(tables)}")
        if isinstance(values, str):
            raise TypeError(f"{name}: expected a sequence of values, got the string {values!r} (use ({values!r},))")
        unknown = [value for value in values if value not in tables[name]]
        if unknown or not values:
            raise ValueError(f"{name}: expected values among {', '.join(tables[name])}, got {list(values)!r}")
    return {name: tuple(v for v in table if v in pins.get(name, table)) for name, table in tables.items()}


def _draw(rng: np.random.Generator, values: tuple):
    """One of `values`, uniformly."""
    return values[rng.integers(len(values))]


def draw_recipe(rng: np.random.Generator, pins: dict | None = None) -> dict:
    """The keyword arguments of one `random_problem` call, every option drawn uniformly
    (a pinned option from its pinned values: see `check_pins`)."""
    values = check_pins(pins)
    layout = _draw(rng, values["layout"])
    return dict(
        T=int(rng.integers(1, MAX_T + 1)),
        B=1 if layout == "unbatched" else int(rng.integers(1, MAX_B + 1)),
        I=int(rng.integers(1, MAX_SIZE + 1)),
        H=int(rng.integers(1, MAX_SIZE + 1)),
        O=int(rng.integers(1, MAX_SIZE + 1)),
        seed=int(rng.integers(2**32)),
        dtype=_draw(rng, values["dtype"]),
        nonlinearity=_draw(rng, values["nonlinearity"]),
        loss=_draw(rng, values["loss"]),
        reduction=_draw(rng, values["reduction"]),
        batch_first=layout == "batch_first",
        batched=layout != "unbatched",
        random_h0=bool(rng.integers(2)),
    )


def draw_network_recipe(rng: np.random.Generator, pins: dict | None = None) -> dict:
    """The keyword arguments of one `random_network_problem` call, every option drawn uniformly
    (a pinned option from its pinned values: see `check_pins`). An unbatched problem has no
    lengths, whatever they are pinned to."""
    values = check_pins(pins, networks=True)
    layout = _draw(rng, values["layout"])
    T, H = int(rng.integers(1, MAX_NETWORK_T + 1)), int(rng.integers(1, MAX_NETWORK_SIZE + 1))
    cell = _draw(rng, values["cell"])
    bidirectional = bool(rng.integers(2))
    truncate = None if bidirectional or rng.integers(2) else int(rng.integers(1, T + 3))
    return dict(
        T=T, B=1 if layout == "unbatched" else int(rng.integers(1, MAX_NETWORK_B + 1)),
        I=int(rng.integers(1, MAX_NETWORK_SIZE + 1)), H=H, O=int(rng.integers(1, MAX_NETWORK_SIZE + 1)),
        cell=cell, num_layers=int(rng.integers(1, 4)), bidirectional=bidirectional, bias=bool(rng.integers(2)),
        proj_size=int(rng.integers(1, H)) if CELL_FACTS[cell].projects and H > 1 and rng.integers(2) else 0,
        lengths="none" if layout == "unbatched" else _draw(rng, values["lengths"]),
        target=_draw(rng, values["target"]), truncate=truncate, seed=int(rng.integers(2**32)),
        dtype=_draw(rng, values["dtype"]), loss=_draw(rng, values["loss"]),
        reduction=_draw(rng, values["reduction"]), batch_first=layout == "batch_first",
        batched=layout != "unbatched", random_h0=bool(rng.integers(2)),
    )


def is_network(recipe: dict) -> bool:
    return "cell" in recipe


def row_kind(name: str) -> str:
    """A report row's name, or for a network weight its kind (weight_hh_l1_reverse → weight_hh)."""
    slot = slot_of(name)
    return LAYER_SYMBOLS[slot.symbol] if slot is not None and slot.layer is not None else name


def option_values(recipe: dict) -> dict:
    """The value of each of OPTIONS (NETWORK_OPTIONS for a network) in a recipe."""
    layout = "unbatched" if not recipe["batched"] else "batch_first" if recipe["batch_first"] else "time_major"
    if is_network(recipe):
        return dict(dtype=recipe["dtype"], cell=recipe["cell"] + ("+proj" if recipe["proj_size"] else ""),
                    layers=str(recipe["num_layers"]), directions="2" if recipe["bidirectional"] else "1",
                    lengths=recipe["lengths"], target=recipe["target"],
                    truncate="none" if recipe["truncate"] is None else "k", loss=recipe["loss"],
                    reduction=recipe["reduction"], layout=layout, h0="random" if recipe["random_h0"] else "None")
    return dict(dtype=recipe["dtype"], nonlinearity=recipe["nonlinearity"], loss=recipe["loss"],
                reduction=recipe["reduction"], layout=layout,
                h0="random" if recipe["random_h0"] else "None")


@dataclass(frozen=True)
class Outcome:
    """One problem's verdict: ratio max|Δ|/max|ref| per row, the rows that FAIL, or an error."""

    recipe: dict
    ratios: dict
    failed: tuple[str, ...]
    error: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed and self.error is None

    def reproduction(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.recipe.items())
        return f"{'random_network_problem' if is_network(self.recipe) else 'random_problem'}({args})"


def load_manual(spec: str | None, *, option: str = "manual"):
    """The candidate: `bptt`, or the callable named "module:function" (same signature and result).

    The module is looked for in the current directory first, as `python -m` looks
    for it: a candidate beside the user needs no PYTHONPATH. sys.path is as before
    afterwards.

    A ValueError starting with `option` when the name is malformed or relative, when
    importing the module fails in any way (an exception, a SyntaxError, a sys.exit
    in its top level), or when the name is no callable.
    """
    if spec is None:
        return bptt
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise ValueError(f"{option}: expected 'module:function', got {spec!r}")
    if module_name.startswith("."):
        raise ValueError(f"{option}: expected an absolute module name (package.module:function), "
                         f"got the relative {spec!r}")
    try:
        with _current_directory_first():
            module = importlib.import_module(module_name)
    except SystemExit as exit_:                  # the module's own code ran sys.exit
        raise ValueError(f"{option}: importing {module_name!r} failed: it called sys.exit({exit_.code!r})") from None
    except Exception as error:                   # the module's own code ran: any exception
        raise ValueError(f"{option}: importing {module_name!r} failed: {first_line(error)}") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ValueError(f"{option}: {spec!r} is not a callable")
    return fn


@contextlib.contextmanager
def _current_directory_first():
    """The current directory first on sys.path inside the block (as `python -m` puts it), removed after."""
    here = os.getcwd()
    sys.path.insert(0, here)
    try:
        yield
    finally:
        sys.path.remove(here)                   # the first occurrence: the one inserted above


def check_one(recipe: dict, manual=bptt) -> Outcome:
    """Build the problem, run the candidate and autograd, and judge every row as `compare`
    does: the fixed tolerance, and on an ill-conditioned problem what rounding explains
    (a float32 gradient that is a small difference of large terms is no false alarm)."""
    problem = random_network_problem(**recipe) if is_network(recipe) else random_problem(**recipe)
    try:
        report = problem.run(compare, manual=manual)
    except (Exception, SystemExit) as error:  # a candidate that raises (or exits) is a failure, reported as such
        return Outcome(recipe, {}, ("error",), f"{type(error).__name__}: {error}")
    ratios = {}
    for row in report.rows:                                         # the worst row of each kind
        kind = row_kind(row.name)
        ratios[kind] = row.ratio if kind not in ratios or not row.ratio <= ratios[kind] else ratios[kind]
    return Outcome(recipe, ratios, tuple(row.name for row in report.failures()))


@dataclass(repr=False)
class SweepSummary:
    """Counts per option value, the worst ratio per (row, dtype), and every failing outcome.

    Its repr is its table, as a report's str is: what a prompt shows.
    """

    networks: bool = False
    pinned: dict = field(default_factory=dict)          # option -> the values drawn, for the pinned ones
    count: int = 0
    per_option: dict = field(default_factory=lambda: defaultdict(Counter))
    failed_per_option: dict = field(default_factory=lambda: defaultdict(Counter))
    worst: dict = field(default_factory=dict)          # (row, dtype) -> (ratio, Outcome)
    failures: list = field(default_factory=list)       # the MAX_LISTED smallest failing outcomes
    failed: int = 0                                    # every failing outcome, listed or not
    interrupted: bool = False                          # Ctrl-C ended the sweep before its last problem

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def add(self, outcome: Outcome) -> None:
        self.count += 1
        values = option_values(outcome.recipe)
        for name in values:
            self.per_option[name][values[name]] += 1
            if not outcome.ok:
                self.failed_per_option[name][values[name]] += 1
        for row, ratio in outcome.ratios.items():
            key = (row, values["dtype"])
            if key not in self.worst or not ratio <= self.worst[key][0]:   # NaN counts as worst
                self.worst[key] = (ratio, outcome)
        if not outcome.ok:
            self.failed += 1
            self.failures.append(outcome)
            if len(self.failures) > 2 * MAX_LISTED:                 # sorted now and then: memory stays bounded
                self.failures = sorted(self.failures, key=_listing_order)[:MAX_LISTED]

    def table(self) -> str:
        lines = [f"{self.count} problems, {self.failed} FAIL"]
        if self.pinned:
            lines.append("drawn only from " + "; ".join(f"{name} {', '.join(v)}" for name, v in self.pinned.items()))
        lines += ["", "problems per option (FAIL):"]
        for name in (NETWORK_OPTIONS if self.networks else OPTIONS):
            cells = [f"{value} {n} ({self.failed_per_option[name][value]})"
                     for value, n in sorted(self.per_option[name].items())]
            lines.append(f"  {name:<13}" + "   ".join(cells))
        width = 12 if self.networks else 5
        lines += ["", "worst ratio max|Δ|/max|ref| per gradient:",
                  f"  {'name':<{width}}{'float64':>12}{'float32':>12}"]
        for row in (NETWORK_ROW_NAMES if self.networks else ROW_NAMES):
            cells = [f"{self.worst[(row, d)][0]:12.3e}" if (row, d) in self.worst else f"{'-':>12}"
                     for d in DTYPES]
            lines.append(f"  {row:<{width}}" + "".join(cells))
        if self.failures:
            lines += ["", "failures (paste a line into Python to rebuild the problem):"]
            for outcome in sorted(self.failures, key=_listing_order)[:MAX_LISTED]:
                why = outcome.error or "FAIL " + ", ".join(outcome.failed)
                lines.append(f"  {outcome.reproduction()}  # {why}")
            if self.failed > MAX_LISTED:
                lines.append(f"  … and {self.failed - MAX_LISTED} more")
        return "\n".join(lines)

    __repr__ = __str__ = table


#: The sizes failures are listed by, smallest problem first: T, then B, then the rest.
SIZES = ("T", "B", "I", "H", "O")


def _listing_order(outcome: Outcome) -> tuple:
    """Failures are listed by size (T=2 before T=10), then by the rest of the recipe: the same
    list whatever order the workers finish in."""
    return tuple(outcome.recipe[name] for name in SIZES) + (repr(outcome.recipe),)


def _worker_context(start_method: str | None = None):
    """The multiprocessing context the workers start from: `start_method`, or where it is None,
    forked from a fresh server that has imported this module once (and torch with it); where
    there is none (Windows), spawned.

    Not forked from this process by default: torch's OpenMP pool may have run here,
    and a fork does not carry threads: a child that asks that pool for a second
    thread waits for ever (seen: a worker stuck in gomp_team_barrier_wait_end).
    `bptt sweep` forks on Linux (see `main`): its process has computed nothing
    when the workers start.
    """
    if start_method is not None:
        return multiprocessing.get_context(start_method)
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def _start_workers(jobs: int, manual: str | None, start_method: str | None = None):
    """A pool of `jobs` workers, each with one compute thread and the candidate loaded, started once
    for the whole sweep.

    Ctrl-C reaches every process of the terminal's group. Between a worker's
    start and its initializer it would end that worker with a traceback, so
    SIGINT waits (blocked) while the workers start, and each unblocks it once
    it ignores it.
    """
    masked = hasattr(signal, "pthread_sigmask")
    if masked:
        before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        return _worker_context(start_method).Pool(jobs, initializer=_init_worker, initargs=(manual,))
    finally:
        if masked:
            signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _init_worker(spec) -> None:
    # The parent stops the sweep on Ctrl-C and ends the pool; a worker that
    # raised too would print its traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    # Each worker is a process of its own, one per core: one thread each keeps
    # the workers from fighting over the cores (see threads.py).
    one_thread_from_now_on()
    global _WORKER_MANUAL
    _WORKER_MANUAL = load_manual(spec)


def _check_in_worker(recipe: dict) -> Outcome:
    return check_one(recipe, _WORKER_MANUAL)


def run_sweep(n: int, *, seed: int = 0, jobs: int = 1, manual: str | None = None,
              progress: bool = True, networks: bool = False, pins: dict | None = None,
              start_method: str | None = None) -> SweepSummary:
    """Check n problems drawn from `seed`, over `jobs` worker processes (1: in this process);
    whole networks (every cell and network option) when `networks` is True. `pins` maps an
    option of PINNABLE (NETWORK_PINNABLE) to the values a candidate supports, e.g.
    {"nonlinearity": ["tanh"], "layout": ["time_major"]}: only those are drawn.
    `start_method` is how the workers start (multiprocessing's names); None, the safe
    choice from any process, is a forkserver (see `_worker_context`).

    Ctrl-C (KeyboardInterrupt) ends the sweep early: the summary then holds the
    problems finished, and says `interrupted`.
    """
    values = check_pins(pins, networks=networks)    # a bad pin fails here, before any problem
    if start_method is not None and start_method not in multiprocessing.get_all_start_methods():
        raise ValueError(f"start_method: expected one of {', '.join(multiprocessing.get_all_start_methods())} "
                         f"or None, got {start_method!r}")
    rng = np.random.default_rng(seed)
    draw = draw_network_recipe if networks else draw_recipe
    recipes = (draw(rng, values) for _ in range(n))  # drawn as they are taken: no list of n recipes
    tqdm = require("tqdm", purpose="bptt sweep's progress bar").tqdm if progress else None
    summary = SweepSummary(networks=networks, pinned={name: v for name, v in values.items() if pins and name in pins})
    if jobs == 1:
        candidate = load_manual(manual)
        outcomes = (check_one(recipe, candidate) for recipe in recipes)
        pool = None
    else:
        load_manual(manual)                         # a bad name fails here, not in every worker
        pool = _start_workers(jobs, manual, start_method)
        outcomes = pool.imap_unordered(_check_in_worker, recipes, chunksize=CHUNK)
    bar = tqdm(outcomes, total=n, unit="problem", file=sys.stderr) if tqdm else outcomes
    try:
        for outcome in bar:
            summary.add(outcome)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        if tqdm:
            bar.close()
        if pool is not None:
            pool.terminate()
    return summary


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="bptt sweep", description=__doc__.split("\n\n")[0],
               epilog="exit status: 0 every problem agrees; 1 some problem FAILs; 2 usage error (a bad option "
                      "or --manual); 4 tqdm is missing; 130 stopped by Ctrl-C (the summary so far is printed)")
    p.add_argument("-n", "--problems", type=_positive, default=1000, help="how many problems (default 1000)")
    p.add_argument("--seed", type=_integer(0), default=0, help="seed of the whole sweep (default 0)")
    p.add_argument("--jobs", type=_positive, default=1, help="worker processes (default 1: none)")
    p.add_argument("--manual", metavar="MODULE:FUNCTION",
                   help="check this callable (bptt's signature and result) instead of manual_bptt.bptt")
    p.add_argument("--networks", action="store_true",
                   help="draw whole networks (nn.RNN/LSTM/GRU, layers, directions, lengths, target, truncation) "
                        "instead of the one-layer derivation's model")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    pins = p.add_argument_group(
        "pinning what a candidate supports",
        "draw only these values of an option (repeatable, or a comma-separated list; default: every value)")
    for name in {**PINNABLE, **NETWORK_PINNABLE}:
        table = NETWORK_PINNABLE.get(name) or PINNABLE[name]
        only = ("" if name in PINNABLE and name in NETWORK_PINNABLE
                else " (with --networks)" if name in NETWORK_PINNABLE else " (not with --networks: a cell says it)")
        pins.add_argument(f"--{name}", action="append", type=_values_of(table), metavar="VALUE[,VALUE]",
                          help=f"{', '.join(table)}{only}")
    return p


def _values_of(table: tuple):
    """An argparse type: one or more values of `table`, comma-separated."""

    def parse(text: str) -> list[str]:
        values = [value.strip() for value in text.split(",")]
        if not all(value in table for value in values):
            raise argparse.ArgumentTypeError(f"expected one or more of {', '.join(table)} (comma-separated), "
                                             f"got {text!r}")
        return values

    return parse


def _pins(args, cli) -> dict:
    """The pinned options of the command line, as run_sweep takes them; an option the sweep
    cannot pin (a network's cell without --networks, a nonlinearity with it) is a usage error."""
    tables = NETWORK_PINNABLE if args.networks else PINNABLE
    pins = {}
    for name in {**PINNABLE, **NETWORK_PINNABLE}:
        given = getattr(args, name)
        if given is None:
            continue
        if name not in tables:
            cli.error(f"--{name}: not an option of --networks, whose cell says it "
                      f"(--cell {' or '.join(ELMAN_CELLS.values())})" if args.networks
                      else f"--{name}: an option of --networks alone; add --networks")
        pins[name] = [value for values in given for value in values]
    return pins


def main(argv: list[str] | None = None) -> int:
    cli = parser()
    args = cli.parse_args(argv)
    pins = _pins(args, cli)
    try:
        load_manual(args.manual, option="--manual")
    except ValueError as bad:
        cli.error(str(bad))
    started = time.perf_counter()
    # On Linux the workers are forked from this process, which has imported torch and
    # the candidate and computed nothing yet: no OpenMP pool for a fork to break, and no
    # second import of torch (a forkserver's took 1.5 s before the first problem, which
    # at 2000 problems was the difference between 1.4 and 1.7 times one job's speed).
    fork = "fork" if sys.platform.startswith("linux") else None
    with one_thread():
        summary = run_sweep(args.problems, seed=args.seed, jobs=args.jobs, manual=args.manual,
                            progress=not args.no_progress, networks=args.networks, pins=pins, start_method=fork)
    print(summary.table())
    print(f"\n{summary.count} problems in {time.perf_counter() - started:.1f} s "
          f"({args.jobs} job{'s' if args.jobs > 1 else ''}, seed {args.seed})")
    if summary.interrupted:
        print(f"{cli.prog}: interrupted (Ctrl-C) after {summary.count} of {args.problems} problems; "
              "the summary above is theirs", file=sys.stderr)
        return EXIT_CODES["interrupted"]
    return EXIT_CODES["agree"] if summary.ok else EXIT_CODES["disagree"]
