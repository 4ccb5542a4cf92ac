#!/usr/bin/env python
"""The hostile sweep: hundreds of calls a new user might make, each with its expectation.

Every call against the public surface has its expectation written beside it:

    accept           the call returns, and the answer is right where that is cheap to see
                     (report.ok as it must be, the caller's arrays unchanged, a formula)
    reject NAME      a ValueError or TypeError whose message names the argument; never a
                     KeyError, AttributeError, IndexError, RuntimeError, an error raised
                     inside torch / NumPy / hypothesis, or nothing at all
    either           a design choice: a right answer, or a clear error naming the argument
    overflow         the problem leaves the float range: an error (NonFiniteError or another
                     ValueError / ArithmeticError), never zeros or NaN returned
    exit CODES       a `bptt` subcommand run in a subprocess: 0 ok, 1 FAIL, 2 bad input
                     (a message on stderr, no traceback), 3 a problem that cannot be answered
                     (overflow), 4 a missing extra, 130 after SIGINT with the work done so
                     far printed

Each outcome is a "right answer", a "clear error" or "BAD" with a one-line reason. The
sweep prints the counts by surface and the BAD calls; `--json FILE` writes every result.

    .venv/bin/python scripts/hostile_sweep.py                      # everything (a few minutes)
    .venv/bin/python scripts/hostile_sweep.py --quick              # without the slow CLI calls
    .venv/bin/python scripts/hostile_sweep.py --surface optim --surface kit --json out.json

It uses the public API only, so it runs unchanged against today's code and a fixed one.
Exit status: 0 when no call is BAD, 1 otherwise.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SURFACES = ("kit", "compare", "optim", "derivation", "params", "flags", "cli")
RIGHT, CLEAR, BAD = "right answer", "clear error", "BAD"
#: Seconds an in-process call may take (SIGALRM); every problem here is tiny.
PYTHON_TIMEOUT = 60
#: Seconds a subprocess may take, unless the call says otherwise.
CLI_TIMEOUT = 90
#: Address space of each subprocess: enough for torch, not enough to take the machine down.
CLI_MEMORY = 6 * 2**30
TRACEBACK = "Traceback (most recent call last)"
#: A pattern that never matches: interrupt after the time given, whatever was printed.
NEVER = r"(?!)"
#: Where an error raised inside a library (not by the project's own checks) comes from.
LIBRARY_DIRS = ("site-packages", "dist-packages")


# ---- expectations and results ---------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """What a Python call must do. `check(result)` returns None when the answer is right,
    else a sentence saying what is wrong."""

    accept: bool = False
    reject: tuple = ()
    overflow: bool = False
    check: Callable | None = None

    def describe(self) -> str:
        if self.overflow:
            return "overflow error"
        if self.accept and self.reject:
            return f"accept or reject {'/'.join(self.reject)}"
        if self.accept:
            return "accept" + (" (checked)" if self.check else "")
        return f"reject {'/'.join(self.reject)}"


def accept(check=None) -> Expect:
    return Expect(accept=True, check=check)


def reject(*names) -> Expect:
    return Expect(reject=names)


def either(*names, check=None) -> Expect:
    return Expect(accept=True, reject=names, check=check)


def overflow() -> Expect:
    return Expect(overflow=True)


@dataclass(frozen=True)
class CliExpect:
    """What a subprocess must do: exit with one of `codes`; `mentions`: words one of which
    a refusal's stderr must contain (case matters); `check(rc, out, err)` for a finished run."""

    codes: tuple
    mentions: tuple = ()
    check: Callable | None = None

    def describe(self) -> str:
        return "exit " + "/".join(map(str, self.codes))


def exits(*codes, mentions=(), check=None) -> CliExpect:
    return CliExpect(codes=codes, mentions=tuple(mentions), check=check)


@dataclass
class Call:
    surface: str
    label: str
    expect: Expect | CliExpect
    thunk: Callable | None = None                  # a Python call
    argv: list | None = None                       # a subprocess: argv after the `bptt` command
    command: str = "bptt"
    env: dict = field(default_factory=dict)
    timeout: float = CLI_TIMEOUT
    interrupt: tuple | None = None                 # (regex to wait for, seconds at most, delay after)
    slow: bool = False


@dataclass
class Result:
    surface: str
    label: str
    expected: str
    outcome: str
    reason: str
    detail: str
    seconds: float


class Timeout(BaseException):
    """Raised by SIGALRM inside a call that takes too long (a BaseException: a candidate's
    `except Exception` must not swallow it)."""


def _alarm(signum, frame):
    raise Timeout()


def one_line(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summary(value) -> str:
    """A few words on what a call returned."""
    if isinstance(value, np.ndarray):
        note = ""
        if value.dtype.kind in "fc":
            if value.size and not np.isfinite(value).all():
                note = ", not finite"
            elif value.size and not value.any():
                note = ", all zero"
        return f"ndarray {value.shape} {value.dtype}{note}"
    if isinstance(value, tuple):
        return "(" + ", ".join(summary(v) for v in value[:3]) + ")"
    arrays = [getattr(value, "matrix", None)] + [a for _, a in getattr(value, "items", lambda: [])()]
    arrays = [a for a in arrays if isinstance(a, np.ndarray) and a.dtype.kind in "fc"]
    if arrays:
        if not all(np.isfinite(a).all() for a in arrays):
            return f"{type(value).__name__}, not finite"
        if not any(a.any() for a in arrays):
            return f"{type(value).__name__}, all zero"
    text = repr(value)
    return type(value).__name__ + (f" {one_line(text, 80)}" if len(text) < 200 else "")


def names_in(message: str, names) -> bool:
    """Whether the message names one of `names` as a word (`U` in "params.U: ...")."""
    return any(re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", message) for name in names)


def raised_inside_library(error: BaseException) -> str | None:
    """The library whose code raised `error` (its innermost frame), or None for the project's own."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return None
    filename = frames[-1].filename
    if any(part in filename for part in LIBRARY_DIRS):
        after = re.split(r"(?:site|dist)-packages/", filename)[-1]
        return after.split("/")[0]
    return None


def unclear(error: BaseException, names) -> str | None:
    """Why `error` is not a clear refusal naming one of `names` (None when it is)."""
    kind = type(error).__name__
    message = one_line(str(error), 100)
    if type(error).__module__.split(".")[0] in ("hypothesis", "torch", "numpy"):
        return f"{type(error).__module__}.{kind} from library internals: {message}"
    if isinstance(error, (KeyError, IndexError, AttributeError)) or not isinstance(error, (ValueError, TypeError)):
        return f"wrong exception type {kind}: {message}"
    library = raised_inside_library(error)
    if library:
        return f"{kind} raised inside {library}, not by a check: {message}"
    if names and not names_in(str(error), names):
        return f"{kind} does not name {'/'.join(names)}: {message}"
    return None


def judge_python(expect: Expect, value, error: BaseException | None) -> tuple[str, str]:
    if isinstance(error, Timeout):
        return BAD, f"hang/timeout after {PYTHON_TIMEOUT} s"
    if error is None:
        if expect.overflow:
            return BAD, f"returned {summary(value)} on a problem that overflows (no error)"
        if not expect.accept:
            return BAD, f"accepted what must be refused: returned {summary(value)}"
        try:
            problem = expect.check(value) if expect.check else None
        except Exception as check_error:  # the answer is not even of the expected kind
            problem = f"answer not as expected ({type(check_error).__name__}: {one_line(str(check_error), 80)})"
        return (BAD, f"wrong answer: {problem}") if problem else (RIGHT, "right answer")
    if expect.overflow:
        if isinstance(error, (ValueError, ArithmeticError)) and not raised_inside_library(error):
            return CLEAR, f"{type(error).__name__}: {one_line(str(error), 100)}"
        return BAD, f"on overflow, {type(error).__name__}: {one_line(str(error), 100)}"
    if not expect.reject:
        return BAD, f"raised {type(error).__name__}: {one_line(str(error), 120)}"
    why = unclear(error, expect.reject)
    if why:
        return BAD, why
    return CLEAR, f"{type(error).__name__}: {one_line(str(error), 100)}"


def run_python(call: Call) -> Result:
    started = time.perf_counter()
    value, error = None, None
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, PYTHON_TIMEOUT)
    try:
        with np.errstate(all="ignore"), warnings_ignored():
            value = call.thunk()
    except KeyboardInterrupt:
        raise
    except BaseException as raised:  # SystemExit from a candidate is an outcome too
        error = raised
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    outcome, reason = judge_python(call.expect, value, error)
    detail = "" if error is None else f"{type(error).__name__}: {one_line(str(error), 300)}"
    return Result(call.surface, call.label, call.expect.describe(), outcome, reason, detail,
                  round(time.perf_counter() - started, 3))


@contextlib.contextmanager
def warnings_ignored():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# ---- subprocess calls -------------------------------------------------------------------


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (CLI_MEMORY, CLI_MEMORY))


def cli_env(extra: dict) -> dict:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONUNBUFFERED="1",
               MPLBACKEND="Agg", PYTHONWARNINGS="ignore")
    for key, value in extra.items():
        if key == "PYTHONPATH":
            value = os.pathsep.join(filter(None, [value, env.get("PYTHONPATH", "")]))
        env[key] = value
    return env


def run_cli(call: Call, binaries: dict, cwd: Path) -> Result:
    started = time.perf_counter()
    argv = [binaries[call.command], *call.argv]
    proc = subprocess.Popen(argv, cwd=cwd, env=cli_env(call.env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_limit_memory)
    out, err = [], []
    # Raw chunks, not lines: a progress bar rewrites one line with \r and no newline.
    readers = [threading.Thread(target=_drain, args=(stream, chunks), daemon=True)
               for stream, chunks in ((proc.stdout, out), (proc.stderr, err))]
    for reader in readers:
        reader.start()
    timed_out, interrupted, note = False, False, ""
    if call.interrupt:
        pattern, wait, delay = call.interrupt        # pattern NEVER: interrupt after `wait` seconds
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and proc.poll() is None:
            if re.search(pattern, _text(out) + _text(err)):
                time.sleep(delay)
                break
            time.sleep(0.1)
        else:
            quiet = proc.poll() is not None or pattern == NEVER
            note = "" if quiet else f" (no sign of work after {wait} s; interrupted anyway)"
        if proc.poll() is None:
            _signal_group(proc, signal.SIGINT)
            interrupted = True
        timeout = 30
    else:
        timeout = call.timeout
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _signal_group(proc, signal.SIGKILL)
        proc.wait()
    for reader in readers:
        reader.join(timeout=5)
    _signal_group(proc, signal.SIGKILL)                     # any worker left behind in its session
    rc, stdout, stderr = proc.returncode, _text(out), _text(err)
    outcome, reason = judge_cli(call.expect, rc, stdout, stderr, timed_out, interrupted, timeout)
    reason += note if outcome == BAD else ""
    last = [line for line in stderr.splitlines() if line.strip()]
    detail = f"rc {rc}; stderr: {one_line(last[-1], 200) if last else '(empty)'}; stdout: {one_line(stdout[-200:], 200)}"
    return Result(call.surface, call.label, call.expect.describe(), outcome, reason, detail,
                  round(time.perf_counter() - started, 3))


def _drain(stream, chunks: list) -> None:
    for chunk in iter(lambda: stream.read1(65536), b""):
        chunks.append(chunk)


def _text(chunks: list) -> str:
    return b"".join(list(chunks)).decode("utf-8", errors="replace")


def _signal_group(proc, sig) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def judge_cli(expect: CliExpect, rc, out, err, timed_out, interrupted, timeout) -> tuple[str, str]:
    if timed_out:
        what = "did not stop within 30 s of SIGINT" if interrupted else f"hang/timeout after {timeout:g} s"
        return BAD, what
    last = next((line for line in reversed(err.splitlines()) if line.strip()), "")
    if TRACEBACK in err or TRACEBACK in out:
        return BAD, f"traceback, exit {rc}: {one_line(last, 120)}"
    if rc not in expect.codes:
        if rc < 0:
            return BAD, f"killed by signal {-rc}, expected exit {'/'.join(map(str, expect.codes))}"
        return BAD, f"exit {rc}, expected {'/'.join(map(str, expect.codes))}: {one_line(last, 120)}"
    if rc in (2, 3, 4):
        if not last:
            return BAD, f"exit {rc} with nothing on stderr"
        if rc == 2 and expect.mentions and not any(m in err for m in expect.mentions):
            return BAD, f"exit 2, but the message does not name {'/'.join(expect.mentions)}: {one_line(last, 100)}"
        return CLEAR, f"exit {rc}: {one_line(last, 120)}"
    if rc == 130:
        if not out.strip():
            return BAD, "exit 130 with nothing of the work done printed"
        return RIGHT, "exit 130 after SIGINT, partial output printed"
    if expect.check:
        problem = expect.check(rc, out, err)
        if problem:
            return BAD, f"exit {rc}, wrong answer: {problem}"
    return RIGHT, f"exit {rc}"


# ---- problems, candidates and checks shared by the surfaces -------------------------------


def tiny_rnn(dtype="float64", **overrides):
    from manual_bptt.verification.problems import random_problem

    return random_problem(**{**dict(T=4, B=2, I=3, H=4, O=3, seed=1, dtype=dtype), **overrides})


def tiny_net(cell="lstm", dtype="float64", **overrides):
    from manual_bptt.verification.problems import random_network_problem

    defaults = dict(T=4, B=3, I=3, H=4, O=3, cell=cell, num_layers=1, bidirectional=False, seed=2, dtype=dtype)
    return random_network_problem(**{**defaults, **overrides})


def regrad(g, f):
    """Gradients like `g` with f(name, array) in place of every array."""
    from manual_bptt import NetworkGrads, RNNGrads

    if isinstance(g, RNNGrads):
        return RNNGrads(**{name: f(name, a) for name, a in g.items()})
    return NetworkGrads(params={k: f(k, a) for k, a in g.params.items()}, h0=f("h0", g.h0), x=f("x", g.x),
                        c0=None if g.c0 is None else f("c0", g.c0))


def cast64(value):
    if value is None:
        return None
    if isinstance(value, tuple):
        return tuple(cast64(v) for v in value)
    array = np.asarray(value)
    return array.astype(np.float64) if array.dtype.kind == "f" else array


def arrays_of(problem) -> dict:
    """Every array the caller holds for a problem, by name."""
    arrays = {f"params[{name}]": a for name, a in problem.params.items()}
    arrays.update(x=problem.x, y=problem.y)
    if isinstance(problem.h0, tuple):
        arrays.update({f"h0[{i}]": s for i, s in enumerate(problem.h0)})
    elif problem.h0 is not None:
        arrays["h0"] = problem.h0
    if problem.options.get("lengths") is not None:
        arrays["lengths"] = problem.options["lengths"]
    return arrays


@dataclass
class Compared:
    """A compare report, and the caller's arrays that the call changed."""

    report: object
    changed: list


def compared(make_problem, **overrides):
    """A thunk: build the problem, compare with the overrides, note any caller's array changed."""
    from torch_reference import compare

    def thunk():
        problem = make_problem()
        before = {name: np.array(a, copy=True) for name, a in arrays_of(problem).items()}
        report = problem.run(compare, **overrides)
        after = arrays_of(problem)
        changed = [name for name, a in before.items() if not np.array_equal(a, after[name], equal_nan=True)]
        return Compared(report, changed)

    return thunk


def report_ok(expected: bool):
    def check(answer: Compared):
        if answer.changed:
            return f"the caller's {', '.join(answer.changed)} changed"
        if answer.report.ok is not expected:
            failed = [row.name for row in answer.report.failures()]
            return f"report.ok is {answer.report.ok}, must be {expected}" + (f" (FAIL {failed})" if failed else "")
        return None

    return check


def grads_close(expected, rtol=1e-12):
    """A check: the result's (L, grads) equal `expected`'s, array by array."""

    def check(result):
        L, g = result
        L0, g0 = expected() if callable(expected) else expected
        if not np.isclose(L, L0, rtol=rtol, atol=0):
            return f"L = {L}, expected {L0}"
        for (name, a), (_, b) in zip(g.items(), g0.items()):
            if a.dtype != b.dtype or a.shape != b.shape or not np.allclose(a, b, rtol=rtol, atol=1e-300):
                return f"gradient {name} differs ({a.dtype} {a.shape} vs {b.dtype} {b.shape})"
        return None

    return check


def allclose_to(expected, rtol=1e-10, atol=1e-12):
    """A check: the result equals `expected` (or what `expected()` returns: references are
    computed when the check runs, so a surface's calls are built even where one fails)."""
    def check(result):
        result = np.asarray(result)
        expected_ = np.asarray(expected() if callable(expected) else expected)
        if result.shape != expected_.shape:
            return f"shape {result.shape}, expected {expected_.shape}"
        if not np.allclose(result, expected_, rtol=rtol, atol=atol):
            return f"max |Δ| = {np.max(np.abs(result - expected_)):.3e}"
        return None

    return check


def scaled_net_weights(problem, key_prefix: str, factor: float):
    """The problem with every parameter whose name starts with `key_prefix` multiplied by `factor`."""
    from manual_bptt import NetworkParams

    state = {k: (a * factor).astype(a.dtype) if k.startswith(key_prefix) else a
             for k, a in problem.params.state_dict().items()}
    return NetworkParams(problem.params.cell, state)


# ---- (1) the kit ---------------------------------------------------------------------------


def kit_calls() -> list[Call]:
    from hypothesis import strategies as st

    from manual_bptt import bptt
    from manual_bptt.tools.derivation import seed_formula_grads
    from manual_bptt.verification.problems import random_network_problem, random_problem
    from torch_reference import torch_bptt
    from torch_reference.kit import assert_bptt_correct, check_bptt

    calls = []

    def add(label, thunk, expect):
        calls.append(Call("kit", label, expect, thunk))

    def kit(fn, **kw):
        return lambda: check_bptt(fn, **{"max_examples": 4, **kw})

    def ok(result):
        return None if result.ok else f"ok False: {one_line(str(result), 120)}"

    def not_ok(result):
        if result.ok:
            return f"ok True for a wrong candidate: {one_line(str(result), 100)}"
        return None if result.problem is not None else "no failing problem reported"

    for bad in (None, 3, "bptt", [bptt], np.array(1.0)):
        add(f"check_bptt(fn={bad!r:.20})", kit(bad), reject("fn"))
    for bad in (True, False, 0, -1, "a", 2.5, float("nan"), [3]):
        add(f"check_bptt(bptt, max_examples={bad!r})", kit(bptt, max_examples=bad), reject("max_examples"))
    add("check_bptt(bptt, max_examples=None)", kit(bptt, max_examples=None), either("max_examples", check=ok))
    add("check_bptt(bptt, max_examples=np.int64(3))", kit(bptt, max_examples=np.int64(3)),
        either("max_examples", check=ok))
    add("check_bptt(bptt, max_examples=1)", kit(bptt, max_examples=1), accept(ok))

    # Pinned options: a typo is a refusal naming the option, a valid value draws only that.
    seen = []

    def recording(params, x, y, h0=None, **options):
        seen.append((bool(options.get("batch_first", False)), np.ndim(x), params.dtype.name,
                     options.get("nonlinearity"), options.get("loss"), options.get("reduction"), h0 is None))
        return bptt(params, x, y, h0, **options)

    def pinned_run(**pin):
        def thunk():
            seen.clear()
            return check_bptt(recording, max_examples=6, **pin), list(seen)
        return thunk

    def drew_only(index, want):
        def check(answer):
            result, drawn = answer
            if not result.ok:
                return f"ok False: {one_line(str(result), 100)}"
            wrong = [d for d in drawn if not want(d[index])]
            return f"{len(wrong)} of {len(drawn)} drawn problems outside the pinned value" if wrong or not drawn else None
        return check

    def none_or_reject(name, value):
        # None may mean "not pinned" (draw it) in a fixed kit: a design choice, either is sensible.
        if value is None:
            return either(name, check=lambda answer: None if answer[0].ok else "ok False")
        return reject(name)

    for bad in ("batchfirst", "time-major", "BATCH_FIRST", 3, None, True):
        add(f"check_bptt(layout={bad!r})", pinned_run(layout=bad), none_or_reject("layout", bad))
    add("check_bptt(layout='batch_first')", pinned_run(layout="batch_first"), accept(drew_only(0, lambda v: v)))
    add("check_bptt(layout='unbatched')", pinned_run(layout="unbatched"), accept(drew_only(1, lambda v: v == 2)))
    add("check_bptt(layout='time_major')", pinned_run(layout="time_major"),
        accept(drew_only(1, lambda v: v == 3)))
    for bad in ("float16", "int32", np.float16, 32):
        add(f"check_bptt(dtype={bad!r})", pinned_run(dtype=bad), reject("dtype"))
    for good in ("float32", "float64"):
        add(f"check_bptt(dtype={good!r})", pinned_run(dtype=good), accept(drew_only(2, lambda v, g=good: v == g)))
    add("check_bptt(dtype=np.float32)", pinned_run(dtype=np.float32),
        either("dtype", check=drew_only(2, lambda v: v == "float32")))
    for bad in ("sigmoid", "", "TANH", 1):
        add(f"check_bptt(nonlinearity={bad!r})", pinned_run(nonlinearity=bad), reject("nonlinearity"))
    for good in ("relu", "tanh"):
        add(f"check_bptt(nonlinearity={good!r})", pinned_run(nonlinearity=good),
            accept(drew_only(3, lambda v, g=good: v == g)))
    for bad in ("hinge", "MSE", None):
        add(f"check_bptt(loss={bad!r})", pinned_run(loss=bad), none_or_reject("loss", bad))
    for good in ("mse", "cross_entropy"):
        add(f"check_bptt(loss={good!r})", pinned_run(loss=good), accept(drew_only(4, lambda v, g=good: v == g)))
    for bad in ("max", "none", 0):
        add(f"check_bptt(reduction={bad!r})", pinned_run(reduction=bad), reject("reduction"))
    for good in ("mean", "sum"):
        add(f"check_bptt(reduction={good!r})", pinned_run(reduction=good),
            accept(drew_only(5, lambda v, g=good: v == g)))
    for bad in ("yes", 1, None):
        add(f"check_bptt(random_h0={bad!r})", pinned_run(random_h0=bad), none_or_reject("random_h0", bad))
    add("check_bptt(random_h0=False)", pinned_run(random_h0=False), accept(drew_only(6, lambda v: v)))
    add("check_bptt(random_h0=True)", pinned_run(random_h0=True), accept(drew_only(6, lambda v: not v)))
    add("check_bptt(random_h0=np.bool_(False))", pinned_run(random_h0=np.bool_(False)),
        either("random_h0", check=drew_only(6, lambda v: v)))
    for name in ("foo", "T", "batch_first", "seed"):
        add(f"check_bptt({name}=1)", kit(bptt, **{name: 1}), reject(name))
    for bad in ("yes", 1):
        add(f"check_bptt(ill_conditioned={bad!r})", kit(bptt, ill_conditioned=bad), reject("ill_conditioned"))
    add("check_bptt(ill_conditioned=None)", kit(bptt, ill_conditioned=None), either("ill_conditioned", check=ok))
    add("check_bptt(ill_conditioned=True)", kit(bptt, ill_conditioned=True, max_examples=3), accept(ok))
    add("check_bptt(derandomize='no')", kit(bptt, derandomize="no"), reject("derandomize"))
    add("check_bptt(derandomize=None)", kit(bptt, derandomize=None), either("derandomize", check=ok))
    add("check_bptt(derandomize=False)", kit(bptt, derandomize=False), accept(ok))

    # problems=: a strategy of RandomProblems, nothing else.
    for label, bad in (("st.just(3)", st.just(3)), ("st.integers()", st.integers()), ("3", 3),
                       ("'problems'", "problems"), ("[1]", [1]), ("st.just(None)", st.just(None))):
        add(f"check_bptt(problems={label})", kit(bptt, problems=bad), reject("problems"))
    add("check_bptt(problems=st.just(random_problem(T=3)))",
        kit(bptt, problems=st.just(random_problem(T=3, B=2, I=2, H=3, O=2))), accept(ok))
    add("check_bptt(problems=st.just(random_network_problem(...)))",
        kit(bptt, problems=st.just(random_network_problem(T=3, B=2, I=2, H=3, O=2, cell="gru"))), accept(ok))
    add("check_bptt(problems=..., dtype='float32')",
        kit(bptt, problems=st.just(random_problem(T=3)), dtype="float32"), reject("problems"))
    add("check_bptt(problems=..., ill_conditioned=True)",
        kit(bptt, problems=st.just(random_problem(T=3)), ill_conditioned=True), reject("problems"))

    # Candidates that return garbage: the kit reports them, ok False.
    def after_bptt(post):
        def candidate(params, x, y, h0=None, **options):
            L, g = bptt(params, x, y, h0, **options)
            return post(L, g)
        return candidate

    def raises(error):
        def candidate(*args, **options):
            raise error
        return candidate

    def writes_x_first(params, x, y, h0=None, **options):
        try:
            x[...] = 0
        except ValueError:              # a read-only copy: the candidate computes on zeros all the same
            x = np.zeros_like(x)
        return bptt(params, x, y, h0, **options)

    def ignores(name, value):
        def candidate(params, x, y, h0=None, **options):
            return bptt(params, x, y, h0, **{**options, name: value})
        return candidate

    def ignores_h0(params, x, y, h0=None, **options):
        return bptt(params, x, y, None, **options)

    garbage = {
        "returns None": (lambda *a, **k: None, {}),
        "returns 1.0": (lambda *a, **k: 1.0, {}),
        "returns (1.0, None)": (lambda *a, **k: (1.0, None), {}),
        "returns (g, L)": (after_bptt(lambda L, g: (g, L)), {}),
        "returns a 3-tuple": (after_bptt(lambda L, g: (L, g, None)), {}),
        "raises ValueError": (raises(ValueError("no")), {}),
        "raises KeyError": (raises(KeyError("no")), {}),
        "zero gradients": (after_bptt(lambda L, g: (L, regrad(g, lambda n, a: np.zeros_like(a)))), {}),
        "dW transposed": (after_bptt(lambda L, g: (L, regrad(g, lambda n, a: a.T.copy() if n == "W" else a))),
                          dict(layout="time_major")),
        "every gradient ×1.001": (after_bptt(lambda L, g: (L, regrad(g, lambda n, a: a * 1.001))), {}),
        "L + 1": (after_bptt(lambda L, g: (L + 1, g)), {}),
        "NaN in dV": (after_bptt(lambda L, g: (L, regrad(g, lambda n, a: a * np.nan if n == "V" else a))), {}),
        "complex gradients": (after_bptt(lambda L, g: (L, regrad(g, lambda n, a: a.astype(np.complex128)))), {}),
        "float32 gradients 1e-5 off (float64 problems)": (
            after_bptt(lambda L, g: (L, regrad(g, lambda n, a: (a * (1 + 1e-5)).astype(np.float32)))),
            dict(dtype="float64")),
        "writes x before computing": (writes_x_first, {}),
        "ignores h0": (ignores_h0, dict(random_h0=True)),
        "ignores batch_first": (ignores("batch_first", False), dict(layout="batch_first")),
        "ignores reduction": (ignores("reduction", "sum"), dict(reduction="mean")),
        "ignores nonlinearity": (ignores("nonlinearity", "tanh"), dict(nonlinearity="relu")),
        "ignores loss": (ignores("loss", "cross_entropy"), dict(loss="mse")),
    }
    for label, (candidate, pin) in garbage.items():
        add(f"check_bptt(candidate that {label})", kit(candidate, **pin), accept(not_ok))

    # Candidates that are right: ok True.
    class Callable_:
        def __call__(self, *args, **options):
            return bptt(*args, **options)

    def seed_formula(params, x, y, h0=None, **options):
        L, _ = bptt(params, x, y, h0, **options)
        return L, seed_formula_grads(params, x, y, h0, **options)

    def exact_float64(params, x, y, h0=None, **options):
        y64 = y if np.asarray(y).dtype.kind in "iu" else cast64(y)
        return bptt(params.astype(np.float64), cast64(x), y64, cast64(h0), **options)

    def writes_after(params, x, y, h0=None, **options):
        result = bptt(params, x, y, h0, **options)
        with contextlib.suppress(ValueError):                  # read-only copies are fine too
            x[...] = 0
        return result

    right = {
        "bptt": (bptt, {}),
        "a lambda around bptt": (lambda *a, **k: bptt(*a, **k), {}),
        "functools.partial(bptt)": (functools.partial(bptt), {}),
        "a callable object": (Callable_(), {}),
        "seed_formula_grads": (seed_formula, dict(max_examples=3)),
        "torch_bptt": (torch_bptt, {}),
        "writes x after computing": (writes_after, {}),
        "exact float64 gradients (float32 problems)": (exact_float64, dict(dtype="float32", max_examples=8)),
        "bptt, float32": (bptt, dict(dtype="float32")),
        "bptt, relu mse mean": (bptt, dict(nonlinearity="relu", loss="mse", reduction="mean")),
    }
    for label, (candidate, pin) in right.items():
        add(f"check_bptt({label})", kit(candidate, **pin), accept(ok))

    def assertion_text(fn, **kw):
        def thunk():
            try:
                assert_bptt_correct(fn, max_examples=3, **kw)
            except AssertionError as failed:
                return str(failed)
            return None
        return thunk

    add("assert_bptt_correct(bptt)", lambda: assert_bptt_correct(bptt, max_examples=3), accept(ok))
    add("assert_bptt_correct(zero gradients)",
        assertion_text(garbage["zero gradients"][0]),
        accept(lambda text: None if text and "FAIL" in text else f"no AssertionError with FAIL: {text!r:.80}"))
    add("assert_bptt_correct(None)", lambda: assert_bptt_correct(None), reject("fn"))
    add("assert_bptt_correct(bptt, layout='bad')", lambda: assert_bptt_correct(bptt, layout="bad", max_examples=2),
        reject("layout"))
    add("assert_bptt_correct(bptt, max_examples=0)", lambda: assert_bptt_correct(bptt, max_examples=0),
        reject("max_examples"))
    return calls


# ---- (2) compare(manual=) ------------------------------------------------------------------


def compare_calls() -> list[Call]:
    import torch

    from manual_bptt import NetworkGrads, RNNGrads, bptt
    from torch_reference import torch_bptt

    calls = []
    problems = {
        "rnn float64": lambda: tiny_rnn(),
        "rnn float32": lambda: tiny_rnn("float32"),
        "rnn batch_first": lambda: tiny_rnn(batch_first=True, seed=3),
        "rnn unbatched": lambda: tiny_rnn(B=1, batched=False, seed=4),
        "rnn relu mse mean": lambda: tiny_rnn(nonlinearity="relu", loss="mse", reduction="mean", seed=5),
        "lstm 2 layers bidirectional lengths": lambda: tiny_net("lstm", num_layers=2, bidirectional=True,
                                                                lengths="random", seed=6),
        "gru float32 target last": lambda: tiny_net("gru", "float32", target="last", seed=7),
        "rnn_relu truncate lengths": lambda: tiny_net("rnn_relu", truncate=2, lengths="random", seed=8),
    }

    def after_bptt(post):
        def candidate(params, x, y, h0=None, **options):
            L, g = bptt(params, x, y, h0, **options)
            return post(L, g)
        return candidate

    def write_all(params, x, y, h0, options):
        arrays = [a for _, a in params.items()] + [x, y] + (list(h0) if isinstance(h0, tuple) else [h0])
        for a in arrays:
            if a is not None:
                with contextlib.suppress(ValueError):      # a read-only copy is fine too
                    a[...] = 0
        if options.get("lengths") is not None:
            with contextlib.suppress(ValueError, TypeError):
                options["lengths"][...] = 1

    def writes_after(params, x, y, h0=None, **options):
        result = bptt(params, x, y, h0, **options)
        write_all(params, x, y, h0, options)
        return result

    def writes_x_first(params, x, y, h0=None, **options):
        try:
            x[...] = 0
        except ValueError:              # a read-only copy: the candidate computes on zeros all the same
            x = np.zeros_like(x)
        return bptt(params, x, y, h0, **options)

    def writes_lengths_first(params, x, y, h0=None, **options):
        T = x.shape[1] if options.get("batch_first") else x.shape[0]
        try:
            options["lengths"][...] = T                                  # every length T
        except (ValueError, TypeError):  # a read-only copy, or a tuple: computed on every length T all the same
            options = {**options, "lengths": np.full(len(options["lengths"]), T)}
        return bptt(params, x, y, h0, **options)

    def writes_lengths_after(params, x, y, h0=None, **options):
        result = bptt(params, x, y, h0, **options)
        options["lengths"][...] = 1
        return result

    def exact_float64(params, x, y, h0=None, **options):
        y64 = y if np.asarray(y).dtype.kind in "iu" else cast64(y)
        return bptt(params.astype(np.float64), cast64(x), y64, cast64(h0), **options)

    def drop_first_key(L, g):
        if isinstance(g, RNNGrads):
            return L, {name: a for name, a in g.items() if name != "U"}
        first = next(iter(g.params))
        return L, NetworkGrads(params={k: a for k, a in g.params.items() if k != first}, h0=g.h0, x=g.x, c0=g.c0)

    def extra_key(L, g):
        if isinstance(g, RNNGrads):
            return L, {**dict(g.items()), "d": g.U}
        return L, NetworkGrads(params={**g.params, "weight_xx_l0": g.h0}, h0=g.h0, x=g.x, c0=g.c0)

    def one_none(L, g):
        first = next(iter(dict(g.items())))
        return L, regrad(g, lambda n, a: None if n == first else a)

    def other_kind(L, g):
        if isinstance(g, RNNGrads):
            return L, NetworkGrads(params={"weight_ih_l0": g.U}, h0=g.h0, x=g.x)
        return L, RNNGrads(**{n: np.zeros((1, 1)) for n in ("U", "W", "V", "b", "c", "h0", "x")})

    def transposed_first(L, g):
        first = next(iter(dict(g.items())))
        return L, regrad(g, lambda n, a: a.T.copy() if n == first else a)

    for label, make in problems.items():
        probe = make()
        network = not hasattr(probe.params, "U")
        dtype = probe.params.dtype
        has_lengths = probe.options.get("lengths") is not None

        def add(what, manual, expect, make=make, label=label):
            calls.append(Call("compare", f"{label}: {what}", expect, compared(make, manual=manual)))

        add("returns None", lambda *a, **k: None, reject("manual"))
        add("returns 1.0", lambda *a, **k: 1.0, reject("manual"))
        add("returns (L, g, 3)", after_bptt(lambda L, g: (L, g, 3)), reject("manual"))
        add("returns (g, L)", after_bptt(lambda L, g: (g, L)), reject("manual"))
        add("returns ('L', g)", after_bptt(lambda L, g: (str(L), g)), reject("manual"))
        add("returns (L, dict of arrays)", after_bptt(lambda L, g: (L, dict(g.items()))), reject("manual"))
        add("returns (L, None)", after_bptt(lambda L, g: (L, None)), reject("manual"))
        add("returns [L, g]", after_bptt(lambda L, g: [L, g]), either("manual", check=report_ok(True)))
        add("returns a gradient None", after_bptt(one_none), reject("manual"))
        add("returns grads missing a key", after_bptt(drop_first_key), reject("manual"))
        add("returns grads with an extra key", after_bptt(extra_key), reject("manual"))
        add("returns the other kind of grads", after_bptt(other_kind), reject("manual"))
        add("returns a gradient transposed", after_bptt(transposed_first),
            either("manual", check=report_ok(False)))
        add("returns tensors that require grad",
            after_bptt(lambda L, g: (L, regrad(g, lambda n, a: torch.tensor(a, requires_grad=True)))),
            reject("manual"))
        add("returns tensors", after_bptt(lambda L, g: (L, regrad(g, lambda n, a: torch.tensor(a)))),
            either("manual", check=report_ok(True)))
        add("returns complex arrays", after_bptt(lambda L, g: (L, regrad(g, lambda n, a: a.astype(np.complex128)))),
            reject("manual"))
        add("returns float16 arrays", after_bptt(lambda L, g: (L, regrad(g, lambda n, a: a.astype(np.float16)))),
            either("manual", check=report_ok(False)))
        add("returns NaN in every gradient", after_bptt(lambda L, g: (L, regrad(g, lambda n, a: a * np.nan))),
            either("manual", check=report_ok(False)))
        add("returns L as NaN", after_bptt(lambda L, g: (float("nan"), g)), either("manual", check=report_ok(False)))
        add("returns L as a 0-d array", after_bptt(lambda L, g: (np.array(L), g)),
            either("manual", check=report_ok(True)))
        add("returns L + 1", after_bptt(lambda L, g: (L + 1, g)), accept(report_ok(False)))
        add("returns zero gradients", after_bptt(lambda L, g: (L, regrad(g, lambda n, a: np.zeros_like(a)))),
            accept(report_ok(False)))
        add("returns every gradient ×1.001", after_bptt(lambda L, g: (L, regrad(g, lambda n, a: a * 1.001))),
            accept(report_ok(False)))
        if dtype == np.float64:
            add("returns float32 gradients 1e-5 off",
                after_bptt(lambda L, g: (L, regrad(g, lambda n, a: (a * (1 + 1e-5)).astype(np.float32)))),
                accept(report_ok(False)))
            add("returns float32 gradients (float64 problem)",
                after_bptt(lambda L, g: (L, regrad(g, lambda n, a: a.astype(np.float32)))), accept(report_ok(False)))
        else:
            add("returns exact float64 gradients (float32 problem)", exact_float64, accept(report_ok(True)))
            add("returns float64 gradients 1e-3 off (float32 problem)",
                after_bptt(lambda L, g: (L, regrad(g, lambda n, a: a.astype(np.float64) * 1.001))),
                accept(report_ok(False)))
        add("is bptt", bptt, accept(report_ok(True)))
        add("is torch_bptt", torch_bptt, accept(report_ok(True)))
        add("writes into every input after computing", writes_after, accept(report_ok(True)))
        add("writes into x before computing", writes_x_first, accept(report_ok(False)))
        if has_lengths:
            add("writes lengths after computing", writes_lengths_after, accept(report_ok(True)))
            add("writes lengths (all T) before computing", writes_lengths_first, accept(report_ok(False)))
        if not network:
            add("manual=3", 3, reject("manual"))
            add("manual='bptt'", "bptt", reject("manual"))

    # The verdict judges the problem's precision, not the candidate's: on the built-in sizes,
    # exact float64 gradients pass a float32 problem, float32 ones 1e-5 off fail a float64 one.
    off32 = after_bptt(lambda L, g: (L, regrad(g, lambda n, a: (a * (1 + 1e-5)).astype(np.float32))))
    for seed in range(6):
        for kind, make in (("rnn", lambda dtype, s=seed: tiny_rnn(dtype, T=20, B=4, I=5, H=8, O=6, seed=s)),
                           ("lstm", lambda dtype, s=seed: tiny_net("lstm", dtype, T=12, B=4, I=5, H=8, O=6,
                                                                   num_layers=2, seed=s))):
            calls.append(Call("compare", f"{kind} float32 seed {seed}: returns exact float64 gradients",
                              accept(report_ok(True)), compared(functools.partial(make, "float32"),
                                                                manual=exact_float64)))
            calls.append(Call("compare", f"{kind} float64 seed {seed}: returns float32 gradients 1e-5 off",
                              accept(report_ok(False)), compared(functools.partial(make, "float64"), manual=off32)))
    return calls


# ---- (3) the optimisers ------------------------------------------------------------------


def optim_calls() -> list[Call]:
    from manual_bptt import NetworkParams, RNNParams, bptt
    from manual_bptt.tools.optim import SGD, Adam, clip_grad_norm, grad_norm

    calls = []

    def add(label, thunk, expect):
        calls.append(Call("optim", label, expect, thunk))

    p = RNNParams.random(input_size=3, hidden_size=4, output_size=2, rng=0)
    g = RNNParams.random(input_size=3, hidden_size=4, output_size=2, rng=1)
    originals = {name: a.copy() for name, a in list(p.items()) + [("g" + n, a) for n, a in g.items()]}

    def untouched():
        changed = [n for n, a in list(p.items()) + [("g" + n, a) for n, a in g.items()]
                   if not np.array_equal(a, originals[n])]
        return f"the caller's {', '.join(changed)} changed" if changed else None

    def adam_first_step(lr, eps=1e-8, params=p, grads=g, rtol=1e-9):
        # After one step m̂ = g and v̂ = g², so p − lr·g/(|g| + eps) up to rounding.
        def check(result):
            for name, a in params.items():
                want = a - lr * grads[name] / (np.abs(grads[name]) + eps) if isinstance(grads, NetworkParams) \
                    else a - lr * getattr(grads, name) / (np.abs(getattr(grads, name)) + eps)
                got = result[name] if isinstance(result, NetworkParams) else getattr(result, name)
                if got.shape != a.shape or got.dtype != a.dtype or not np.allclose(got, want, rtol=rtol, atol=0):
                    return f"{name} is not p − lr·g/(|g| + eps) after one step"
            return untouched()
        return check

    def sgd_first_step(lr, momentum=0.9, nesterov=False, params=p, grads=g):
        def check(result):
            for name, a in params.items():
                gradient = grads[name] if isinstance(grads, NetworkParams) else getattr(grads, name)
                direction = gradient + momentum * gradient if nesterov else gradient
                got = result[name] if isinstance(result, NetworkParams) else getattr(result, name)
                if got.shape != a.shape or not np.allclose(got, a - lr * direction, rtol=1e-12, atol=0):
                    return f"{name} is not p − lr·d after one step"
            return untouched()
        return check

    def adam(**kw):
        return lambda: Adam(**kw).step(p, g)

    def sgd(**kw):
        return lambda: SGD(**kw).step(p, g)

    for bad in (-1, -1e-3, float("nan"), float("inf"), float("-inf"), "0.1", None, True, [0.1], 1j):
        add(f"Adam(lr={bad!r}).step", adam(lr=bad), reject("lr"))
    add("Adam(lr=0).step", adam(lr=0), either("lr", check=adam_first_step(0)))
    add("Adam(lr=np.float32(0.01)).step", adam(lr=np.float32(0.01)),
        either("lr", check=adam_first_step(float(np.float32(0.01)), rtol=1e-6)))   # lr/(1 − β1) in float32, as torch
    add("Adam(lr=1).step", adam(lr=1), accept(adam_first_step(1)))
    add("Adam().step", adam(), accept(adam_first_step(1e-3)))
    for bad in ((1.0, 0.999), (0.9, 1.0), (-0.1, 0.999), (0.9, -0.5), (float("nan"), 0.999), (0.9, float("nan")),
                (float("inf"), 0.9), 0.9, (0.9,), (0.9, 0.99, 0.9), ("a", 0.9), None):
        add(f"Adam(betas={bad!r}).step", adam(betas=bad), reject("betas"))
    add("Adam(betas=(0.0, 0.0)).step", adam(betas=(0.0, 0.0)), accept(adam_first_step(1e-3)))
    add("Adam(betas=[0.9, 0.999]).step", adam(betas=[0.9, 0.999]), either("betas", check=adam_first_step(1e-3)))
    for bad in (-1e-8, float("nan"), float("-inf"), "1e-8", None):
        add(f"Adam(eps={bad!r}).step", adam(eps=bad), reject("eps"))
    add("Adam(eps=0).step", adam(eps=0), accept(adam_first_step(1e-3, eps=0)))
    for bad in (-1, float("nan"), float("inf"), "0.1", None, True):
        add(f"SGD(lr={bad!r}).step", sgd(lr=bad), reject("lr"))
    for bad in (-1, float("nan"), float("inf"), float("-inf"), "0.9", None, True):
        add(f"SGD(momentum={bad!r}).step", sgd(momentum=bad), reject("momentum"))
    add("SGD(momentum=0, nesterov=True).step", sgd(momentum=0, nesterov=True), reject("nesterov"))
    for bad in ("yes", 1, None):
        add(f"SGD(nesterov={bad!r}).step", sgd(nesterov=bad), reject("nesterov"))
    add("SGD(nesterov=np.bool_(True)).step", sgd(nesterov=np.bool_(True)),
        either("nesterov", check=sgd_first_step(1e-2, nesterov=True)))
    add("SGD().step", sgd(), accept(sgd_first_step(1e-2)))
    add("SGD(momentum=0).step", sgd(momentum=0), accept(sgd_first_step(1e-2, momentum=0)))
    add("SGD(lr=0.1, momentum=0.5, nesterov=True).step", sgd(lr=0.1, momentum=0.5, nesterov=True),
        accept(sgd_first_step(0.1, momentum=0.5, nesterov=True)))
    add("SGD(momentum=1.0).step", sgd(momentum=1.0), accept(sgd_first_step(1e-2, momentum=1.0)))

    # step(params, grads) with arguments that do not fit.
    small = RNNParams.random(input_size=1, hidden_size=1, output_size=1, rng=2)
    g32 = g.astype(np.float32)
    net = NetworkParams.random(cell="gru", input_size=3, hidden_size=4, output_size=2, rng=3)
    net_g = NetworkParams.random(cell="gru", input_size=3, hidden_size=4, output_size=2, rng=4)
    _, rnn_grads = bptt(p, np.ones((2, 1, 3)), np.zeros((2, 1), dtype=int))
    for name, make, check_of in (("Adam", lambda: Adam(lr=0.01), lambda **k: adam_first_step(0.01, **k)),
                                 ("SGD", lambda: SGD(lr=0.01, momentum=0.9), lambda **k: sgd_first_step(0.01, **k))):
        add(f"{name}.step(p, grads of (1, 1) shapes)", lambda make=make: make().step(p, small), reject("grads"))
        add(f"{name}.step(p float64, grads float32)", lambda make=make: make().step(p, g32), reject("grads"))
        add(f"{name}.step(p float32, grads float64)", lambda make=make: make().step(p.astype(np.float32), g),
            reject("grads", "params"))
        add(f"{name}.step(p, None)", lambda make=make: make().step(p, None), reject("grads"))
        add(f"{name}.step(p, [arrays])", lambda make=make: make().step(p, [a for _, a in g.items()]),
            reject("grads"))
        add(f"{name}.step(dict, grads)", lambda make=make: make().step(dict(p.items()), g), reject("params"))
        add(f"{name}.step(None, grads)", lambda make=make: make().step(None, g), reject("params"))
        add(f"{name}.step(p, dict of grads)", lambda make=make: make().step(p, dict(g.items())),
            either("grads", check=check_of()))
        add(f"{name}.step(p, RNNGrads from bptt)", lambda make=make: make().step(p, rnn_grads),
            either("grads", check=check_of(grads=rnn_grads.params())))
        add(f"{name}.step(NetworkParams, NetworkParams grads)", lambda make=make: make().step(net, net_g),
            either("params", check=check_of(params=net, grads=net_g)))
        add(f"{name}.step(RNNParams, NetworkParams grads)", lambda make=make: make().step(p, net_g),
            reject("grads"))
        add(f"{name}.step(NetworkParams, RNNParams grads)", lambda make=make: make().step(net, g),
            reject("grads", "params"))

        def second_step_other_shape(make=make):
            optimizer = make()
            optimizer.step(p, g)
            return optimizer.step(small, small.replace(U=small.U * 0 + 1))
        add(f"{name}: a second step with other shapes", second_step_other_shape, reject("params", "grads"))

    # clip_grad_norm(grads, max_norm)
    total = float(np.sqrt(sum(float(np.sum(a * a)) for _, a in g.items())))

    def clipped_to(max_norm, grads_of=lambda r: r.grads):
        def check(result):
            factor = min(1.0, max_norm / (total + 1e-6))
            clipped = grads_of(result)
            items = clipped.items() if hasattr(clipped, "items") else clipped
            for name, a in items:
                if not np.allclose(a, getattr(g, name) * factor, rtol=1e-12, atol=0):
                    return f"{name} is not g·min(1, max_norm/(‖g‖ + 1e-6))"
            if not np.isclose(result.total_norm, total, rtol=1e-12):
                return f"total_norm {result.total_norm}, expected {total}"
            return untouched()
        return check

    for label, max_norm in (("1", 1), ("0.5", 0.5), ("np.float32(1)", np.float32(1)), ("np.float64(1)", np.float64(1)),
                            ("np.int64(1)", np.int64(1)), ("100.0", 100.0)):
        add(f"clip_grad_norm(g, {label})", lambda m=max_norm: clip_grad_norm(g, m), accept(clipped_to(float(max_norm))))
    for bad in (float("nan"), -1, float("-inf"), "1", None, True, [1.0]):
        add(f"clip_grad_norm(g, {bad!r})", lambda m=bad: clip_grad_norm(g, m), reject("max_norm"))
    add("clip_grad_norm(g, 0)", lambda: clip_grad_norm(g, 0), either("max_norm", check=clipped_to(0.0)))
    add("clip_grad_norm(g, inf)", lambda: clip_grad_norm(g, float("inf")), either("max_norm", check=clipped_to(1e300)))
    add("clip_grad_norm(g, np.array(1.0))", lambda: clip_grad_norm(g, np.array(1.0)),
        either("max_norm", check=clipped_to(1.0)))
    add("clip_grad_norm(dict, 1)", lambda: clip_grad_norm(dict(g.items()), 1.0),
        either("grads", check=clipped_to(1.0, lambda r: dict(r.grads.items()) if hasattr(r.grads, "items")
                                         else r.grads)))
    add("clip_grad_norm(None, 1)", lambda: clip_grad_norm(None, 1.0), reject("grads"))
    add("clip_grad_norm([arrays], 1)", lambda: clip_grad_norm([a for _, a in g.items()], 1.0), reject("grads"))
    add("clip_grad_norm(NetworkParams, 1)", lambda: clip_grad_norm(net_g, 1.0),
        either("grads", check=lambda r: None if isinstance(r.grads, NetworkParams) else "not a NetworkParams"))
    add("clip_grad_norm(RNNGrads, 1)", lambda: clip_grad_norm(rnn_grads, 1.0),
        either("grads", check=lambda r: None if np.isfinite(r.total_norm) else "total_norm not finite"))
    add("grad_norm(g)", lambda: grad_norm(g), accept(lambda n: None if np.isclose(n, total, rtol=1e-12) else f"{n}"))
    add("grad_norm(dict)", lambda: grad_norm(dict(g.items())),
        either("grads", check=lambda n: None if np.isclose(n, total, rtol=1e-12) else f"{n}"))
    add("grad_norm(None)", lambda: grad_norm(None), reject("grads"))
    return calls


# ---- (4) the derivation helpers ---------------------------------------------------------


def derivation_calls() -> list[Call]:
    from manual_bptt import bptt
    from manual_bptt.tools.derivation import contribution_norms, contributions, hidden_jacobian, seed_formula_grads
    from manual_bptt.tools.lags import lag_profile, singular_values_by_lag
    from manual_bptt.tools.network_derivation import network_contributions, state_jacobian
    from torch_reference import torch_bptt
    from torch_reference.derivation import torch_contributions, torch_hidden_jacobian
    from torch_reference.network_derivation import torch_network_contributions, torch_state_jacobian

    calls = []

    def add(label, thunk, expect):
        calls.append(Call("derivation", label, expect, thunk))

    q = tiny_rnn()
    T = q.x.shape[0]
    L, g = q.run(bptt)

    # Right answers, cheap to see.
    for wrt in ("W", "U", "b"):
        add(f"contributions(wrt={wrt!r}) sums to bptt's ∂L/∂{wrt}", lambda w=wrt: q.run(contributions, wrt=w).sum((0, 1)),
            accept(allclose_to(getattr(g, wrt))))
        add(f"contribution_norms(wrt={wrt!r}) = ‖contributions‖",
            lambda w=wrt: q.run(contribution_norms, wrt=w),
            accept(allclose_to(lambda w=wrt: np.linalg.norm(q.run(contributions, wrt=w).reshape(T, T, -1), axis=-1))))
        add(f"torch_contributions(wrt={wrt!r}) = contributions", lambda w=wrt: q.run(torch_contributions, wrt=w),
            accept(allclose_to(lambda w=wrt: q.run(contributions, wrt=w))))
    for label, other in (("relu mse mean", tiny_rnn(nonlinearity="relu", loss="mse", reduction="mean", seed=9)),
                         ("batch_first", tiny_rnn(batch_first=True, seed=10)),
                         ("unbatched", tiny_rnn(B=1, batched=False, seed=11))):
        add(f"contributions ({label}) sums to ∂L/∂W", lambda o=other: o.run(contributions).sum((0, 1)),
            accept(allclose_to(lambda o=other: o.run(bptt)[1].W)))
        add(f"seed_formula_grads ({label}) = bptt", lambda o=other: o.run(seed_formula_grads),
            accept(lambda r, o=other: next((f"{n} differs" for n, a in r.items()
                                            if not np.allclose(a, getattr(o.run(bptt)[1], n), rtol=1e-10, atol=1e-12)),
                                           None)))
    hj = dict(nonlinearity="tanh", batch_first=False)
    add("hidden_jacobian(t=T, k=T) is I", lambda: hidden_jacobian(q.params, q.x, q.h0, t=T, k=T).matrix,
        accept(allclose_to(np.broadcast_to(np.eye(4), (2, 4, 4)))))
    add("hidden_jacobian(t=3, k=1) = torch_hidden_jacobian",
        lambda: np.asarray(hidden_jacobian(q.params, q.x, q.h0, t=3, k=1, **hj)),
        accept(allclose_to(lambda: torch_hidden_jacobian(q.params, q.x, q.h0, t=3, k=1, **hj))))
    add("hidden_jacobian(t=np.int64(2), k=np.int64(0))",
        lambda: np.asarray(hidden_jacobian(q.params, q.x, q.h0, t=np.int64(2), k=np.int64(0))),
        accept(allclose_to(lambda: torch_hidden_jacobian(q.params, q.x, q.h0, t=2, k=0))))
    add("singular_values_by_lag: row 0 all ones", lambda: singular_values_by_lag(q.params, q.x, q.h0),
        accept(lambda s: None if s.shape == (T + 1, 2, 4) and np.allclose(s[0], 1) else f"shape {s.shape}"))
    add("lag_profile(tril(ones(3)))", lambda: lag_profile(np.tril(np.ones((3, 3)))), accept(allclose_to([3, 2, 1])))
    add("lag_profile(list of lists)", lambda: lag_profile([[1.0, 0.0], [2.0, 3.0]]), accept(allclose_to([4, 2])))

    nets = {
        "lstm": tiny_net("lstm", num_layers=2, bidirectional=True, seed=12),
        "gru": tiny_net("gru", seed=13),
        "rnn_tanh": tiny_net("rnn_tanh", num_layers=2, seed=14),
    }
    for cell, problem in nets.items():
        S = 8 if cell == "lstm" else 4
        add(f"state_jacobian({cell}, t=k=2) is I",
            lambda pr=problem: state_jacobian(pr.params, pr.x, pr.h0, t=2, k=2).matrix,
            accept(allclose_to(np.broadcast_to(np.eye(S), (3, S, S)))))
        layer = problem.params.num_layers - 1
        direction = problem.params.num_directions - 1
        add(f"state_jacobian({cell}, layer {layer}, direction {direction}) = torch_state_jacobian",
            lambda pr=problem, l=layer, d=direction: state_jacobian(pr.params, pr.x, pr.h0, t=3, k=1, layer=l,
                                                                    direction=d).matrix,
            accept(allclose_to(lambda pr=problem, l=layer, d=direction: torch_state_jacobian(
                pr.params, pr.x, pr.h0, t=3, k=1, layer=l, direction=d))))
        wrt = {"lstm": "weight_hh_l1_reverse", "gru": "weight_ih_l0", "rnn_tanh": "bias_hh_l1"}[cell]
        options = {k: v for k, v in problem.options.items() if k not in ("lengths", "truncate")}
        add(f"network_contributions({cell}, wrt={wrt!r}) sums to bptt's",
            lambda pr=problem, w=wrt, o=options: network_contributions(pr.params, pr.x, pr.y, pr.h0, wrt=w, **o).sum((0, 1)),
            accept(allclose_to(lambda pr=problem, w=wrt: pr.run(bptt)[1].params[w])))
        add(f"torch_network_contributions({cell}, wrt={wrt!r}) = network_contributions",
            lambda pr=problem, w=wrt, o=options: torch_network_contributions(pr.params, pr.x, pr.y, pr.h0, wrt=w, **o),
            accept(allclose_to(lambda pr=problem, w=wrt, o=options: network_contributions(
                pr.params, pr.x, pr.y, pr.h0, wrt=w, **o))))
    lstm = nets["lstm"]
    add("state_jacobian(lstm).block('c', 'c')",
        lambda: state_jacobian(lstm.params, lstm.x, lstm.h0, t=3, k=1).block("c", "c").matrix,
        accept(lambda m: None if m.shape == (3, 4, 4) else f"shape {m.shape}"))
    add("state_jacobian(lstm).block('z', 'c')",
        lambda: state_jacobian(lstm.params, lstm.x, lstm.h0, t=3, k=1).block("z", "c"), reject("block", "of"))

    # Overflow: relu with W × 1e200 (float64) or × 1e30 (float32) leaves the float range at
    # step 2; every helper must raise, never return zeros or NaN.
    for dtype, factor in (("float64", 1e200), ("float32", 1e30)):
        base = tiny_rnn(dtype, nonlinearity="relu", seed=15)
        big = base.params.replace(W=(base.params.W * factor).astype(dtype))
        args = (big, base.x, base.y, base.h0)
        relu = dict(nonlinearity="relu")
        suffix = f" (relu, W × {factor:g}, {dtype})"
        add("bptt" + suffix, lambda a=args: bptt(*a, **relu), overflow())
        add("torch_bptt" + suffix, lambda a=args: torch_bptt(*a, **relu), overflow())
        add("hidden_jacobian(t=T, k=0)" + suffix, lambda a=args: hidden_jacobian(a[0], a[1], a[3], t=T, k=0, **relu),
            overflow())
        add("torch_hidden_jacobian(t=T, k=0)" + suffix,
            lambda a=args: torch_hidden_jacobian(a[0], a[1], a[3], t=T, k=0, **relu), overflow())
        add("singular_values_by_lag" + suffix, lambda a=args: singular_values_by_lag(a[0], a[1], a[3], **relu),
            overflow())
        for wrt in ("W", "U", "b"):
            add(f"contributions(wrt={wrt!r})" + suffix, lambda a=args, w=wrt: contributions(*a, wrt=w, **relu),
                overflow())
            add(f"contribution_norms(wrt={wrt!r})" + suffix,
                lambda a=args, w=wrt: contribution_norms(*a, wrt=w, **relu), overflow())
        add("torch_contributions" + suffix, lambda a=args: torch_contributions(*a, **relu), overflow())
        add("seed_formula_grads" + suffix, lambda a=args: seed_formula_grads(*a, **relu), overflow())
        net = tiny_net("rnn_relu", dtype, seed=16)
        big_net = scaled_net_weights(net, "weight_hh", factor)
        nargs = (big_net, net.x, net.y, net.h0)
        suffix = f" (rnn_relu network, weight_hh × {factor:g}, {dtype})"
        add("bptt" + suffix, lambda a=nargs: bptt(*a), overflow())
        add("torch_bptt" + suffix, lambda a=nargs: torch_bptt(*a), overflow())
        add("state_jacobian(t=T, k=0)" + suffix, lambda a=nargs: state_jacobian(a[0], a[1], a[3], t=T, k=0),
            overflow())
        add("torch_state_jacobian(t=T, k=0)" + suffix,
            lambda a=nargs: torch_state_jacobian(a[0], a[1], a[3], t=T, k=0), overflow())
        add("network_contributions" + suffix, lambda a=nargs: network_contributions(*a), overflow())
        add("torch_network_contributions" + suffix, lambda a=nargs: torch_network_contributions(*a), overflow())
        huge = tiny_rnn(dtype, loss="mse", seed=17)
        y_huge = np.full_like(huge.y, 1e200 if dtype == "float64" else 1e30)
        add(f"contributions (mse, targets {factor:g}, {dtype})",
            lambda h=huge, yh=y_huge: contributions(h.params, h.x, yh, h.h0, loss="mse"), overflow())

    # Bad arguments.
    P, X, H0, Y = q.params, q.x, q.h0, q.y
    for label, kw, names in (
        ("t=T+1", dict(t=T + 1, k=0), ("t",)), ("k=-1", dict(t=2, k=-1), ("k",)),
        ("k > t", dict(t=1, k=2), ("t", "k")), ("t=1.5", dict(t=1.5, k=0), ("t",)),
        ("t=True", dict(t=True, k=0), ("t",)), ("t='2'", dict(t="2", k=0), ("t",)),
        ("t missing", dict(k=0), ("t",)), ("nonlinearity='sigmoid'", dict(t=2, k=0, nonlinearity="sigmoid"),
                                            ("nonlinearity",)),
        ("batch_first='yes'", dict(t=2, k=0, batch_first="yes"), ("batch_first",)),
        ("foo=1", dict(t=2, k=0, foo=1), ("foo",)),
    ):
        add(f"hidden_jacobian({label})", lambda kw=kw: hidden_jacobian(P, X, H0, **kw), reject(*names))
    add("hidden_jacobian(batch_first=np.bool_(False))",
        lambda: np.asarray(hidden_jacobian(P, X, H0, t=2, k=0, batch_first=np.bool_(False))),
        either("batch_first", check=allclose_to(lambda: hidden_jacobian(P, X, H0, t=2, k=0).matrix)))
    for label, args, names in (
        ("params=dict", (dict(P.items()), X, H0), ("params",)),
        ("params=NetworkParams", (nets["gru"].params, X, H0), ("params",)),
        ("x with NaN", (P, np.where(np.ones_like(X, bool), np.nan, X), H0), ("x",)),
        ("x of ints", (P, X.astype(int), H0), ("x",)),
        ("x of the wrong size", (P, X[..., :2], H0), ("x",)),
        ("h0 of the wrong shape", (P, X, H0[:, :3]), ("h0",)),
        ("h0 with inf", (P, X, np.full_like(H0, np.inf)), ("h0",)),
    ):
        add(f"hidden_jacobian({label})", lambda a=args: hidden_jacobian(*a, t=2, k=0), reject(*names))
        add(f"torch_hidden_jacobian({label})", lambda a=args: torch_hidden_jacobian(*a, t=2, k=0), reject(*names))
    for label, kw, names in (("t=T+1", dict(t=T + 1, k=0), ("t",)), ("k > t", dict(t=1, k=3), ("t", "k")),
                             ("t=True", dict(t=True, k=0), ("t",)), ("k=-1", dict(t=2, k=-1), ("k",))):
        add(f"torch_hidden_jacobian({label})", lambda kw=kw: torch_hidden_jacobian(P, X, H0, **kw), reject(*names))
    for fn in (contributions, contribution_norms, torch_contributions):
        for label, kw, names in (("wrt='V'", dict(wrt="V"), ("wrt",)), ("wrt='w'", dict(wrt="w"), ("wrt",)),
                                 ("wrt=None", dict(wrt=None), ("wrt",)), ("wrt=3", dict(wrt=3), ("wrt",)),
                                 ("loss='hinge'", dict(loss="hinge"), ("loss",)),
                                 ("reduction='max'", dict(reduction="max"), ("reduction",)),
                                 ("lengths=[4, 4]", dict(lengths=[4, 4]), ("lengths",)),
                                 ("foo=1", dict(foo=1), ("foo",))):
            add(f"{fn.__name__}({label})", lambda f=fn, kw=kw: f(P, X, Y, H0, **kw), reject(*names))
        add(f"{fn.__name__}(y out of range)", lambda f=fn: f(P, X, Y + 3, H0), reject("y"))
        add(f"{fn.__name__}(y as floats)", lambda f=fn: f(P, X, Y.astype(float), H0), reject("y"))
    for label, args, kw, names in (
        ("truncate=2", (P, X, Y, H0), dict(truncate=2), ("truncate",)),
        ("y of the wrong shape", (P, X, Y[:2], H0), {}, ("y",)),
        ("h0 of another batch", (P, X, Y, H0[:1]), {}, ("h0",)),
        ("x None", (P, None, Y, H0), {}, ("x",)),
        ("target='last'", (P, X, Y, H0), dict(target="last"), ("target",)),
    ):
        add(f"seed_formula_grads({label})", lambda a=args, kw=kw: seed_formula_grads(*a, **kw), reject(*names))
    for label, kw, names in (("t=T+1", dict(t=T + 1), ("t",)), ("t=-1", dict(t=-1), ("t",)),
                             ("t='3'", dict(t="3"), ("t",)), ("nonlinearity='x'", dict(nonlinearity="x"),
                                                            ("nonlinearity",))):
        add(f"singular_values_by_lag({label})", lambda kw=kw: singular_values_by_lag(P, X, H0, **kw), reject(*names))
    for label, bad in (("(3, 4)", np.ones((3, 4))), ("3-d", np.ones((2, 2, 2))), ("None", None), ("'abc'", "abc"),
                       ("ragged", [[1.0, 2.0], [3.0]])):
        add(f"lag_profile({label})", lambda b=bad: lag_profile(b), reject("norms"))

    gru = nets["gru"]
    G = (gru.params, gru.x, gru.h0)
    for label, kw, names in (
        ("layer=1 of 1", dict(t=2, k=0, layer=1), ("layer",)), ("direction=1 of 1", dict(t=2, k=0, direction=1),
                                                                  ("direction",)),
        ("layer=True", dict(t=2, k=0, layer=True), ("layer",)), ("direction=-1", dict(t=2, k=0, direction=-1),
                                                                 ("direction",)),
        ("t=T+1", dict(t=T + 1, k=0), ("t",)), ("k=-1", dict(t=2, k=-1), ("k",)),
        ("batch_first='no'", dict(t=2, k=0, batch_first="no"), ("batch_first",)),
    ):
        add(f"state_jacobian({label})", lambda kw=kw: state_jacobian(*G, **kw), reject(*names))
    for label, kw, names in (("layer=3", dict(t=2, k=0, layer=3), ("layer",)), ("t=T+1", dict(t=T + 1, k=0), ("t",)),
                             ("direction=1 of 1", dict(t=2, k=0, direction=1), ("direction",)),
                             ("k > t", dict(t=1, k=2), ("t", "k"))):
        add(f"torch_state_jacobian({label})", lambda kw=kw: torch_state_jacobian(*G, **kw), reject(*names))
    add("state_jacobian(params=RNNParams)", lambda: state_jacobian(P, X, H0, t=2, k=0), reject("params"))
    add("state_jacobian(h0 of the wrong shape)", lambda: state_jacobian(gru.params, gru.x, gru.h0[:, :, :2], t=2, k=0),
        reject("h0"))
    add("state_jacobian(lstm, h0 not a pair)", lambda: state_jacobian(lstm.params, lstm.x, lstm.h0[0], t=2, k=0),
        reject("h0"))
    GY = (gru.params, gru.x, gru.y, gru.h0)
    for fn in (network_contributions, torch_network_contributions):
        for label, kw, names in (
            ("wrt='head.weight'", dict(wrt="head.weight"), ("wrt",)), ("wrt='weight_hh_l5'", dict(wrt="weight_hh_l5"),
                                                                       ("wrt",)),
            ("wrt=3", dict(wrt=3), ("wrt",)), ("target='last'", dict(target="last"), ("target", "y")),
            ("lengths=[4, 4, 4]", dict(lengths=np.array([4, 4, 4])), ("lengths",)),
            ("truncate=2", dict(truncate=2), ("truncate",)), ("nonlinearity='relu'", dict(nonlinearity="relu"),
                                                              ("nonlinearity",)),
            ("foo=1", dict(foo=1), ("foo",)),
        ):
            add(f"{fn.__name__}({label})", lambda f=fn, kw=kw: f(*GY, **kw), reject(*names))
    return calls


# ---- (5) the params constructors ---------------------------------------------------------


def params_calls() -> list[Call]:
    import torch
    from torch import nn

    from manual_bptt import NetworkParams, RNNParams
    from torch_reference import torch_bptt

    calls = []

    def add(label, thunk, expect):
        calls.append(Call("params", label, expect, thunk))

    base = dict(RNNParams.random(input_size=3, hidden_size=4, output_size=2, rng=0).items())

    def rnn_params(**changes):
        return lambda: RNNParams(**{**base, **changes})

    def is_params(result):
        return None if isinstance(result, RNNParams) and result.hidden_size == 4 else f"{summary(result)}"

    masked = np.ma.masked_array(base["U"], mask=np.zeros_like(base["U"], bool))
    masked.mask[0, 0] = True
    for label, changes, names in (
        ("U masked", dict(U=masked), ("U",)), ("W np.matrix", dict(W=np.matrix(base["W"])), ("W",)),
        ("U of shape (4,)", dict(U=base["U"][:, 0]), ("U",)), ("W of shape (4, 5)", dict(W=np.ones((4, 5))), ("W",)),
        ("V of shape (2, 5)", dict(V=np.ones((2, 5))), ("V",)), ("b of shape (5,)", dict(b=np.ones(5)), ("b",)),
        ("c of shape (3,)", dict(c=np.ones(3)), ("c",)), ("c 2-d", dict(c=np.ones((2, 1))), ("c",)),
        ("U of ints", dict(U=np.ones((4, 3), int)), ("U",)), ("U float16", dict(U=base["U"].astype(np.float16)), ("U",)),
        ("U complex", dict(U=base["U"].astype(complex)), ("U",)), ("U of objects", dict(U=base["U"].astype(object)),
                                                                    ("U",)),
        ("U of strings", dict(U=np.full((4, 3), "a")), ("U",)), ("U of bools", dict(U=np.ones((4, 3), bool)), ("U",)),
        ("W float32 (mixed dtypes)", dict(W=base["W"].astype(np.float32)), ("W", "params")),
        ("U None", dict(U=None), ("U",)), ("U ragged list", dict(U=[[1.0, 2.0, 3.0]] * 3 + [[1.0]]), ("U",)),
        ("U a tensor that requires grad", dict(U=torch.tensor(base["U"], requires_grad=True)), ("U",)),
        ("U of shape (4, 0)", dict(U=np.ones((4, 0))), ("U", "I")), ("U a scalar", dict(U=3.0), ("U",)),
        ("U big-endian", dict(U=base["U"].astype(">f8")), ("U",)),
    ):
        add(f"RNNParams({label})", rnn_params(**changes), reject(*names))
    add("RNNParams(V with NaN)", rnn_params(V=base["V"] * np.nan), either("V", check=is_params))
    add("RNNParams(b with inf)", rnn_params(b=base["b"] + np.inf), either("b", check=is_params))
    add("RNNParams(U as a list of lists)", rnn_params(U=base["U"].tolist()), accept(is_params))
    add("RNNParams(U a tensor)", rnn_params(U=torch.tensor(base["U"])), either("U", check=is_params))
    readonly = base["U"].copy()
    readonly.flags.writeable = False
    add("RNNParams(U read-only)", rnn_params(U=readonly), accept(is_params))
    add("RNNParams(U strided view)", rnn_params(U=np.ones((8, 6))[::2, ::2]), accept(is_params))
    add("RNNParams(c missing)", lambda: RNNParams(**{k: v for k, v in base.items() if k != "c"}), reject("c"))
    add("RNNParams(d=...)", rnn_params(d=base["c"]), reject("d"))

    sizes = dict(input_size=3, hidden_size=4, output_size=2)

    def random_rnn(**changes):
        return lambda: RNNParams.random(**{**sizes, "rng": 0, **changes})

    for name in ("input_size", "hidden_size", "output_size"):
        for bad in (True, "3", 3.0, 0, -1, None, np.bool_(True)):
            add(f"RNNParams.random({name}={bad!r})", random_rnn(**{name: bad}), reject(name))
    add("RNNParams.random(hidden_size=np.int64(4))", random_rnn(hidden_size=np.int64(4)), accept(is_params))
    add("RNNParams.random(output_size=2**40)", random_rnn(output_size=2**40), reject("output_size"))
    for bad in ("a", -1, 1.5, True):
        add(f"RNNParams.random(rng={bad!r})", random_rnn(rng=bad), reject("rng"))
    add("RNNParams.random(rng=Generator)", random_rnn(rng=np.random.default_rng(0)), accept(is_params))
    add("RNNParams.random(rng=np.int64(3))", random_rnn(rng=np.int64(3)), accept(is_params))
    for bad in ("float16", "int32", np.complex128, "floatx"):
        add(f"RNNParams.random(dtype={bad!r})", random_rnn(dtype=bad), reject("dtype"))
    add("RNNParams.random(dtype=np.float32)", random_rnn(dtype=np.float32),
        accept(lambda r: None if r.dtype == np.float32 else f"dtype {r.dtype}"))

    # NetworkParams.random
    net_sizes = dict(input_size=3, hidden_size=4, output_size=2, rng=0)

    def random_net(**changes):
        return lambda: NetworkParams.random(**{**net_sizes, **changes})

    def works_with_torch(**expected):
        def check(net):
            for name, value in expected.items():
                if getattr(net, name) != value:
                    return f"{name} = {getattr(net, name)}, expected {value}"
            x = np.random.default_rng(0).standard_normal((3, 2, 3))
            y = np.zeros((3, 2), dtype=int)
            torch_bptt(net, x, y)                        # must not crash in torch
            return None
        return check

    for bad in ("lstmx", 3, None, "rnn", "LSTM"):
        add(f"NetworkParams.random(cell={bad!r})", random_net(cell=bad), reject("cell"))
    for name, bads in (("input_size", (0, True, "3")), ("num_layers", (0, True, 2.0)),
                       ("bidirectional", ("yes", 1, None)), ("bias", ("no", 0, None)),
                       ("proj_size", (-1, True, 1.0))):
        for bad in bads:
            add(f"NetworkParams.random({name}={bad!r})", random_net(cell="lstm", **{name: bad}), reject(name))
    add("NetworkParams.random(bidirectional=np.bool_(True))", random_net(bidirectional=np.bool_(True)),
        either("bidirectional", check=works_with_torch(bidirectional=True)))
    add("NetworkParams.random(bias=np.bool_(False))", random_net(cell="gru", bias=np.bool_(False)),
        either("bias", check=works_with_torch(bias=False)))
    add("NetworkParams.random(cell='gru', proj_size=2)", random_net(cell="gru", proj_size=2), reject("proj_size"))
    add("NetworkParams.random(lstm, proj_size=H)", random_net(cell="lstm", proj_size=4), reject("proj_size"))
    add("NetworkParams.random(lstm, proj_size=np.int64(2))", random_net(cell="lstm", proj_size=np.int64(2)),
        accept(works_with_torch(proj_size=2)))
    add("NetworkParams.random(dtype='float16')", random_net(dtype="float16"), reject("dtype"))
    add("NetworkParams.random(rng='seed')", random_net(rng="seed"), reject("rng"))
    add("NetworkParams.random(hidden_size=2**30)", random_net(hidden_size=2**30), reject("hidden_size"))
    for cell in ("rnn_tanh", "rnn_relu", "lstm", "gru"):
        add(f"NetworkParams.random({cell}, 2 layers, bidirectional)",
            random_net(cell=cell, num_layers=2, bidirectional=True),
            accept(works_with_torch(cell=cell, num_layers=2, bidirectional=True)))

    # NetworkParams.from_state_dict
    state = NetworkParams.random(cell="lstm", input_size=3, hidden_size=4, output_size=2, num_layers=2,
                                 bidirectional=True, rng=0).state_dict()

    def from_state(changes=None, cell="lstm"):
        def thunk():
            s = {**state, **(changes or {})}
            return NetworkParams.from_state_dict({k: v for k, v in s.items() if v is not _DROP}, cell=cell)
        return thunk

    def same_as_state(net):
        if not isinstance(net, NetworkParams):
            return summary(net)
        for key, a in state.items():
            if not np.array_equal(np.asarray(net[key]), a):
                return f"{key} differs"
        return None

    masked_hh = np.ma.masked_array(state["weight_hh_l0"], mask=np.zeros_like(state["weight_hh_l0"], bool))
    masked_hh[0, 0] = 1e30
    masked_hh.mask[0, 0] = True
    key = "weight_hh_l0"
    for label, changes, names in (
        ("masked array (1e30 masked)", {key: masked_hh}, ("state", key)),
        ("np.matrix", {key: np.matrix(state[key])}, ("state", key)),
        ("missing bias_hh_l1", {"bias_hh_l1": _DROP}, ("state", "bias_hh_l1")),
        ("extra weight_xx_l0", {"weight_xx_l0": state[key]}, ("state", "weight_xx_l0")),
        ("extra weight_ih_l5", {"weight_ih_l5": state["weight_ih_l1"]}, ("state", "weight_ih_l5")),
        ("wrong shape", {key: state[key][:, :3]}, ("state", key)),
        ("ints", {key: state[key].astype(int)}, ("state", key)),
        ("float16", {key: state[key].astype(np.float16)}, ("state", key)),
        ("one float32 (mixed)", {key: state[key].astype(np.float32)}, ("state", key)),
        ("bools", {key: state[key] > 0}, ("state", key)),
        ("0-d array", {"head.bias": np.array(1.0)}, ("state", "head.bias")),
        ("big-endian", {key: state[key].astype(">f8")}, ("state", key)),
        ("an int key", {3: state[key]}, ("state",)),
        ("a meta tensor", {key: torch.empty(16, 4, device="meta", dtype=torch.float64)}, ("state", key)),
        ("a bfloat16 tensor", {key: torch.tensor(state[key]).bfloat16()}, ("state", key)),
        ("a sparse tensor", {key: torch.tensor(state[key]).to_sparse()}, ("state", key)),
        ("a ragged list", {key: [[1.0, 2.0], [3.0]]}, ("state", key)),
    ):
        add(f"from_state_dict({label})", from_state(changes), reject(*names))
    add("from_state_dict(NaN in a weight)", from_state({key: state[key] * np.nan}),
        either("state", key, check=lambda n: None if isinstance(n, NetworkParams) else summary(n)))
    add("from_state_dict(cell='gru' for LSTM shapes)", from_state(cell="gru"), reject("cell", "state", key))
    add("from_state_dict(cell='LSTM')", from_state(cell="LSTM"), reject("cell"))
    add("from_state_dict(cell=3)", from_state(cell=3), reject("cell"))
    add("from_state_dict(state=list)", lambda: NetworkParams.from_state_dict(list(state.items()), cell="lstm"),
        reject("state"))
    add("from_state_dict(state=None)", lambda: NetworkParams.from_state_dict(None, cell="lstm"), reject("state"))
    add("from_state_dict({})", lambda: NetworkParams.from_state_dict({}, cell="lstm"), reject("state"))
    add("from_state_dict(head only)", lambda: NetworkParams.from_state_dict(
        {k: v for k, v in state.items() if k.startswith("head")}, cell="lstm"), reject("state"))
    add("from_state_dict(no cell=)", lambda: NetworkParams.from_state_dict(state),
        either("cell", check=lambda n: None if n.cell == "lstm" else f"cell {n.cell}"))
    add("from_state_dict(tensors)", lambda: NetworkParams.from_state_dict(
        {k: torch.tensor(v) for k, v in state.items()}, cell="lstm"), accept(same_as_state))
    add("from_state_dict(tensors that require grad)", lambda: NetworkParams.from_state_dict(
        {k: torch.tensor(v, requires_grad=True) for k, v in state.items()}, cell="lstm"),
        either("state", check=same_as_state))
    add("from_state_dict(OrderedDict)", lambda: NetworkParams.from_state_dict(collections.OrderedDict(state),
                                                                              cell="lstm"), accept(same_as_state))
    add("from_state_dict(lists)", lambda: NetworkParams.from_state_dict(
        {k: v.tolist() for k, v in state.items()}, cell="lstm"), accept(same_as_state))

    # NetworkParams.from_torch
    def from_torch(make_rnn, make_head):
        return lambda: NetworkParams.from_torch(make_rnn(), make_head())

    def torch_net(cell, **expected):
        def check(net):
            if net.cell != cell:
                return f"cell {net.cell}, expected {cell}"
            return works_with_torch(**expected)(net)
        return check

    torch.manual_seed(0)
    add("from_torch(nn.LSTM, nn.Linear)", from_torch(lambda: nn.LSTM(3, 4).double(), lambda: nn.Linear(4, 2).double()),
        accept(torch_net("lstm")))
    add("from_torch(nn.GRU 2 layers bidirectional)",
        from_torch(lambda: nn.GRU(3, 4, num_layers=2, bidirectional=True).double(), lambda: nn.Linear(8, 2).double()),
        accept(torch_net("gru", num_layers=2, bidirectional=True)))
    add("from_torch(nn.RNN relu)", from_torch(lambda: nn.RNN(3, 4, nonlinearity="relu").double(),
                                              lambda: nn.Linear(4, 2).double()), accept(torch_net("rnn_relu")))
    add("from_torch(nn.LSTM proj_size=2)", from_torch(lambda: nn.LSTM(3, 4, proj_size=2).double(),
                                                      lambda: nn.Linear(2, 2).double()),
        accept(torch_net("lstm", proj_size=2)))
    add("from_torch(nn.RNN batch_first=True)", from_torch(lambda: nn.RNN(3, 4, batch_first=True).double(),
                                                          lambda: nn.Linear(4, 2).double()),
        accept(lambda n: None if n.cell == "rnn_tanh" else n.cell))
    for label, make_rnn, make_head, names in (
        ("rnn=nn.Linear", lambda: nn.Linear(3, 4), lambda: nn.Linear(4, 2), ("rnn",)),
        ("rnn=None", lambda: None, lambda: nn.Linear(4, 2), ("rnn",)),
        ("rnn='lstm'", lambda: "lstm", lambda: nn.Linear(4, 2), ("rnn",)),
        ("head=None", lambda: nn.LSTM(3, 4), lambda: None, ("head",)),
        ("head=nn.Identity()", lambda: nn.LSTM(3, 4), lambda: nn.Identity(), ("head",)),
        ("head of the wrong size", lambda: nn.LSTM(3, 4), lambda: nn.Linear(5, 2), ("head", "head.weight")),
        ("rnn and head swapped", lambda: nn.Linear(4, 2), lambda: nn.LSTM(3, 4), ("rnn", "head")),
        ("a meta-device LSTM", lambda: nn.LSTM(3, 4, device="meta"), lambda: nn.Linear(4, 2, device="meta"),
         ("rnn", "state", "weight_ih_l0")),
        ("a float16 LSTM", lambda: nn.LSTM(3, 4).half(), lambda: nn.Linear(4, 2).half(),
         ("rnn", "state", "weight_ih_l0")),
    ):
        add(f"from_torch({label})", from_torch(make_rnn, make_head), reject(*names))
    add("from_torch(head without bias)", from_torch(lambda: nn.LSTM(3, 4).double(),
                                                    lambda: nn.Linear(4, 2, bias=False).double()),
        either("head", check=lambda n: None if isinstance(n, NetworkParams) else summary(n)))
    add("from_torch(dropout=0.5)", from_torch(lambda: nn.LSTM(3, 4, num_layers=2, dropout=0.5).double(),
                                              lambda: nn.Linear(4, 2).double()),
        either("rnn", "dropout", check=lambda n: None if isinstance(n, NetworkParams) else summary(n)))
    return calls


_DROP = object()


# ---- (6) flags and the caller's global state ---------------------------------------------


@contextlib.contextmanager
def default_device(device):
    import torch

    previous = torch.get_default_device()
    torch.set_default_device(device)
    try:
        yield
    finally:
        torch.set_default_device(None if previous.type == "cpu" else previous)


@contextlib.contextmanager
def default_dtype(dtype):
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def flags_calls() -> list[Call]:
    import torch

    from manual_bptt import bptt
    from manual_bptt.tools.derivation import contributions
    from manual_bptt.verification.problems import random_network_problem, random_problem
    from torch_reference import compare, torch_bptt

    calls = []

    def add(label, thunk, expect):
        calls.append(Call("flags", label, expect, thunk))

    def global_state():
        return (torch.get_default_dtype(), str(torch.get_default_device()), torch.is_grad_enabled(),
                tuple(sorted(np.geterr().items())))

    def keeping_state(thunk, inside=contextlib.nullcontext):
        """Run thunk inside a context; the answer carries whether torch's and NumPy's state came back."""
        def run():
            before = global_state()
            with inside():
                value = thunk()
            return value, global_state() == before
        return run

    def same_as(reference):
        def check(answer):
            value, state_kept = answer
            if not state_kept:
                return "the caller's global state changed"
            if hasattr(value, "ok"):
                return None if value.ok else "report.ok False"
            return grads_close(reference, rtol=1e-12)(value)   # reference: a thunk
        return check

    # np.bool_ flags: the same answer as the Python bool.
    rnn_problems = {"time-major": tiny_rnn(seed=20), "batch_first": tiny_rnn(batch_first=True, seed=21)}
    net_problems = {f"{cell}, {layout}": tiny_net(cell, seed=22, batch_first=layout == "batch_first",
                                                  bidirectional=cell == "gru")
                    for cell in ("rnn_tanh", "rnn_relu", "lstm", "gru") for layout in ("time-major", "batch_first")}
    for label, problem in {**rnn_problems, **net_problems}.items():
        flag = np.bool_(problem.options["batch_first"])
        for fn in (bptt, torch_bptt, compare):
            reference = functools.partial(problem.run, fn)               # the same function, a Python bool
            add(f"{fn.__name__}({label}, batch_first=np.bool_({bool(flag)}))",
                keeping_state(lambda f=fn, p=problem, b=flag: p.run(f, batch_first=b)),
                accept(same_as(reference)))
    add("random_problem(batch_first=np.bool_(True))",
        lambda: random_problem(T=3, B=2, batch_first=np.bool_(True)).run(torch_bptt),
        either("batch_first", check=lambda r: None if np.isfinite(r[0]) else "L not finite"))
    add("random_network_problem(bidirectional=np.bool_(True))",
        lambda: random_network_problem(T=3, B=2, cell="gru", bidirectional=np.bool_(True)).run(compare),
        either("bidirectional", check=lambda r: None if r.ok else "report.ok False"))

    # np.errstate(all="raise") with large logits: an expected underflow in a softmax is no error.
    # Logits V h(t) + c spread by thousands (hundreds in float32): exp(o − max o) underflows to 0.
    LOGITS = {"float64": 3000.0, "float32": 300.0}

    def large_logits_rnn(dtype, **kw):
        problem = tiny_rnn(dtype, seed=23, **kw)
        return problem, problem.params.replace(V=(problem.params.V * LOGITS[dtype]).astype(dtype))

    raise_all = functools.partial(np.errstate, all="raise")
    for label, dtype, kw in (("rnn sum", "float64", {}), ("rnn mean", "float64", dict(reduction="mean")),
                             ("rnn relu", "float64", dict(nonlinearity="relu")), ("rnn sum", "float32", {}),
                             ("rnn batch_first", "float32", dict(batch_first=True))):
        problem, params = large_logits_rnn(dtype, **kw)
        args = (params, problem.x, problem.y, problem.h0)
        for fn in (bptt, torch_bptt, compare):
            reference = functools.partial(fn, *args, **problem.options)
            add(f"{fn.__name__}({label}, {dtype}, logits ×{LOGITS[dtype]:g}) under np.errstate(all='raise')",
                keeping_state(lambda f=fn, a=args, o=problem.options: f(*a, **o), raise_all),
                accept(same_as(reference)))
        add(f"contributions({label}, {dtype}, logits ×{LOGITS[dtype]:g}) under np.errstate(all='raise')",
            keeping_state(lambda a=args, o=problem.options: contributions(*a, **o), raise_all),
            accept(lambda answer, a=args, o=problem.options: None if answer[1] and np.allclose(
                answer[0], contributions(*a, **o), rtol=1e-12, atol=0) else "differs, or global state changed"))
    for cell in ("rnn_tanh", "lstm", "gru"):
        for target in ("each_step", "last"):
            problem = tiny_net(cell, seed=24, target=target, lengths="random")
            params = scaled_net_weights(problem, "head.weight", LOGITS["float64"])
            args = (params, problem.x, problem.y, problem.h0)
            for fn in (bptt, compare):
                reference = functools.partial(fn, *args, **problem.options)
                add(f"{fn.__name__}({cell}, target {target}, logits ×3000) under np.errstate(all='raise')",
                    keeping_state(lambda f=fn, a=args, o=problem.options: f(*a, **o), raise_all),
                    accept(same_as(reference)))

    # torch.set_default_device("meta") standing for "cuda": the twin is built on the CPU.
    meta = functools.partial(default_device, "meta")
    for cell in ("rnn_tanh", "lstm", "gru"):
        for label, kw in (("lengths", dict(lengths="random")), ("truncate=2", dict(truncate=2)),
                          ("target last, lengths", dict(target="last", lengths="random"))):
            problem = tiny_net(cell, seed=25, **kw)
            reference = functools.partial(problem.run, torch_bptt)
            add(f"torch_bptt({cell}, {label}) under set_default_device('meta')",
                keeping_state(lambda p=problem: p.run(torch_bptt), meta), accept(same_as(reference)))
            add(f"compare({cell}, {label}) under set_default_device('meta')",
                keeping_state(lambda p=problem: p.run(compare), meta), accept(same_as(None)))
    rnn = tiny_rnn(seed=26)
    for fn in (bptt, torch_bptt, compare):
        reference = functools.partial(rnn.run, fn)
        add(f"{fn.__name__}(rnn) under set_default_device('meta')", keeping_state(lambda f=fn: rnn.run(f), meta),
            accept(same_as(reference)))

    # Other global state of the caller's: default dtype float64, no_grad, inference_mode.
    f64 = functools.partial(default_dtype, torch.float64)
    for label, problem in (("rnn float32", tiny_rnn("float32", seed=27)), ("lstm float32", tiny_net("lstm", "float32",
                                                                                                   seed=28))):
        reference = functools.partial(problem.run, torch_bptt)
        add(f"torch_bptt({label}) under set_default_dtype(float64)", keeping_state(lambda p=problem: p.run(torch_bptt),
                                                                                    f64), accept(same_as(reference)))
        add(f"compare({label}) under set_default_dtype(float64)", keeping_state(lambda p=problem: p.run(compare), f64),
            accept(same_as(None)))
        add(f"compare({label}) under torch.no_grad()", keeping_state(lambda p=problem: p.run(compare), torch.no_grad),
            accept(same_as(None)))
        add(f"compare({label}) under torch.inference_mode()",
            keeping_state(lambda p=problem: p.run(compare), torch.inference_mode), accept(same_as(None)))

    # Options as NumPy scalars and sequences.
    net = tiny_net("gru", seed=29, lengths="random")
    lengths = net.options["lengths"]
    reference = functools.partial(net.run, bptt)
    for label, kw, expect in (
        ("lengths as a list", dict(lengths=[int(n) for n in lengths]), accept(same_as(reference))),
        ("lengths as int32", dict(lengths=lengths.astype(np.int32)), accept(same_as(reference))),
        ("lengths as bools", dict(lengths=lengths > 0), reject("lengths")),
        ("lengths as floats", dict(lengths=lengths.astype(float)), reject("lengths")),
        ("truncate=True", dict(truncate=True), reject("truncate")),
        ("truncate=2.0", dict(truncate=2.0), reject("truncate")),
        ("truncate=0", dict(truncate=0), reject("truncate")),
        ("reduction=np.str_('sum')", dict(reduction=np.str_("sum")), accept(same_as(reference))),
        ("batch_first='False'", dict(batch_first="False"), reject("batch_first")),
        ("batch_first=0", dict(batch_first=0), reject("batch_first")),
    ):
        for fn in (bptt, torch_bptt):
            add(f"{fn.__name__}(gru, {label})", keeping_state(lambda f=fn, kw=kw: net.run(f, **kw)), expect)
    add("torch_bptt(gru, truncate=np.int64(2))", keeping_state(lambda: net.run(torch_bptt, truncate=np.int64(2))),
        either("truncate", check=same_as(functools.partial(net.run, bptt, truncate=2))))
    add("bptt(gru, target=np.str_('each_step'))", keeping_state(lambda: net.run(bptt, target=np.str_("each_step"))),
        accept(same_as(reference)))
    return calls


# ---- (7) the `bptt` command ---------------------------------------------------------------


def write_fixtures(root: Path) -> dict:
    """Files the CLI calls read: weights, texts, candidate modules, shadowing packages."""
    import torch

    from manual_bptt import RNNParams
    from torch_reference import build_twin

    files = {}
    weights = root / "weights"
    weights.mkdir()
    p = RNNParams.random(input_size=3, hidden_size=4, output_size=3, rng=0)
    arrays = dict(p.items())
    twin_state = build_twin(p).state_dict()

    def npz(name, **arrays_):
        path = weights / name
        with open(path, "wb") as f:
            np.savez(f, **arrays_)
        files[name] = path

    def pt(name, payload):
        path = weights / name
        torch.save(payload, path)
        files[name] = path

    def raw(name, data: bytes):
        path = weights / name
        path.write_bytes(data)
        files[name] = path

    npz("good.npz", **arrays)
    npz("good32.npz", **{k: a.astype(np.float32) for k, a in arrays.items()})
    npz("half.npz", **{k: a.astype(np.float16) for k, a in arrays.items()})
    npz("ints.npz", **{k: np.ones(a.shape, int) for k, a in arrays.items()})
    npz("nan.npz", **{**arrays, "W": arrays["W"] * np.nan})
    npz("shapes.npz", **{**arrays, "W": np.ones((4, 5))})
    npz("mismatch.npz", **{**arrays, "V": np.ones((3, 6)), "c": np.ones(3)})
    npz("missing.npz", **{k: a for k, a in arrays.items() if k != "c"})
    npz("noarrays.npz")
    npz("objects.npz", **{**arrays, "W": np.array([object()] * 16, dtype=object).reshape(4, 4)})
    shutil.copy(files["good.npz"], weights / "good.NPZ")
    files["good.NPZ"] = weights / "good.NPZ"
    pt("good.pt", twin_state)
    pt("half.pt", {k: v.half() for k, v in twin_state.items()})
    pt("shapes.pt", {**twin_state, "rnn.weight_hh_l0": torch.ones(4, 5, dtype=torch.float64)})
    pt("missing.pt", {k: v for k, v in twin_state.items() if k != "out.bias"})
    pt("emptydict.pt", {})
    pt("tensor.pt", torch.zeros(3))
    pt("list.pt", [1, 2, 3])
    pt("int.pt", 7)
    pt("nontensor.pt", {k: 1 for k in twin_state})
    pt("lists.pt", {k: v.tolist() for k, v in twin_state.items()})
    pt("meta.pt", {k: torch.empty(v.shape, device="meta", dtype=v.dtype) for k, v in twin_state.items()})
    pt("pickle.pt", collections.Counter(a=1))          # a class weights_only refuses to load
    raw("empty.pt", b"")
    raw("empty.npz", b"")
    raw("text.pt", b"these are not weights\n")
    raw("text.npz", b"these are not weights\n")
    raw("text.txt", b"U W V b c\n")
    (weights / "dir.npz").mkdir()
    files["dir.npz"] = weights / "dir.npz"

    texts = root / "texts"
    texts.mkdir()
    prose = ("The derivation carries the gradient of each step back through time. The sum over k "
             "collects the terms, and the product of Jacobians says how each one shrinks or grows. ") * 4
    for name, data in (("small.txt", prose.encode()), ("empty.txt", b""), ("one.txt", b"a"), ("two.txt", b"ab"),
                       ("binary.bin", bytes(range(256)) * 8),
                       ("latin1.txt", ("The café naïve résumé " * 20).encode("latin-1")),
                       ("noprompt.txt", ("abcabcbca " * 60).encode()),
                       ("utf8.txt", ("The ∂L/∂W of naïve BPTT, Σ_t ∂L(t)/∂W. " * 12).encode())):
        (texts / name).write_bytes(data)
        files[name] = texts / name

    modules = root / "modules"
    modules.mkdir()
    for name, source in {
        "hs_good": "from manual_bptt import bptt as _b\ndef bptt(*a, **k):\n    return _b(*a, **k)\n",
        "hs_raises": "raise RuntimeError('this module cannot be imported')\n",
        "hs_syntax": "def bptt(:\n    pass\n",
        "hs_exit": "import sys\nsys.exit(7)\n",
        "hs_notcallable": "bptt = 3\n",
        "hs_zeros": ("import numpy as np\nfrom manual_bptt import bptt as _b\n"
                     "def bptt(*a, **k):\n    L, g = _b(*a, **k)\n"
                     "    for name, value in list(vars(g).items()):\n"
                     "        if isinstance(value, dict):\n"
                     "            setattr(g, name, {n: np.zeros_like(v) for n, v in value.items()})\n"
                     "        elif value is not None:\n            setattr(g, name, np.zeros_like(value))\n"
                     "    return L, g\n"),
        "hs_f32off": ("import numpy as np\nfrom manual_bptt import bptt as _b\n"
                      "def off(a):\n    return (a * (1 + 1e-5)).astype(np.float32)\n"
                      "def bptt(*a, **k):\n    L, g = _b(*a, **k)\n"
                      "    for name, value in list(vars(g).items()):\n"
                      "        if isinstance(value, dict):\n"
                      "            setattr(g, name, {n: off(v) for n, v in value.items()})\n"
                      "        elif value is not None:\n            setattr(g, name, off(value))\n"
                      "    return L, g\n"),
        "hs_none": "def bptt(*a, **k):\n    return None\n",
        "hs_crash": "def bptt(*a, **k):\n    raise ValueError('the candidate crashed')\n",
    }.items():
        (modules / f"{name}.py").write_text(source)
    files["modules"] = modules

    for package in ("matplotlib", "tqdm"):
        shadow = root / f"no_{package}" / package
        shadow.mkdir(parents=True)
        (shadow / "__init__.py").write_text(f"raise ImportError(\"No module named '{package}' (hidden by the sweep)\")\n")
        files[f"no_{package}"] = shadow.parent
    (root / "regular.txt").write_text("a regular file, not a directory\n")
    files["regular.txt"] = root / "regular.txt"
    (root / "outdir").mkdir()
    files["outdir"] = root / "outdir"
    return files


def wrote_file(rc, out, err):
    """A check of a run that writes a figure: the path it prints after "wrote" exists, non-empty."""
    match = re.search(r"^wrote (.+)$", out, re.MULTILINE)
    if not match:
        return "no 'wrote FILE' line"
    path = Path(match.group(1).strip())
    if not path.is_absolute():
        path = CLI_CWD[0] / path
    if not path.is_file() or path.stat().st_size == 0:
        return f"printed 'wrote {match.group(1).strip()}' but there is no such file"
    return None


def printed(pattern):
    def check(rc, out, err):
        return None if re.search(pattern, out) else f"stdout lacks {pattern!r}"
    return check


CLI_CWD: list = []


def cli_calls(files: dict) -> list[Call]:
    calls = []

    def add(label, argv, expect, command="bptt", env=None, timeout=CLI_TIMEOUT, slow=False, interrupt=None):
        calls.append(Call("cli", label, expect, argv=[str(a) for a in argv], command=command, env=env or {},
                          timeout=timeout, slow=slow, interrupt=interrupt))

    def f(name):
        return files[name]

    ok = exits(0)

    # check: valid runs
    small = ["-T", "3", "-B", "2", "-H", "3"]
    for label, argv in (
        ("check (the built-in problem)", ["check"]), ("bptt with no subcommand", ["-T", "3"]),
        ("check --dtype float32", ["check", *small, "--dtype", "float32"]),
        ("check --nonlinearity relu", ["check", *small, "--nonlinearity", "relu"]),
        ("check --loss mse --reduction mean", ["check", *small, "--loss", "mse", "--reduction", "mean"]),
        ("check --batch-first --zero-h0", ["check", *small, "--batch-first", "--zero-h0"]),
        ("check --cell lstm", ["check", *small, "--cell", "lstm"]),
        ("check --cell gru --bidirectional --num-layers 2", ["check", *small, "--cell", "gru", "--bidirectional",
                                                             "--num-layers", "2"]),
        ("check --lengths random --target last", ["check", *small, "--lengths", "random", "--target", "last"]),
        ("check --truncate 2", ["check", *small, "--truncate", "2"]),
        ("check --cell lstm --proj-size 2", ["check", "-T", "3", "-H", "4", "--cell", "lstm", "--proj-size", "2"]),
        ("check --no-bias --seed 5", ["check", *small, "--no-bias", "--seed", "5"]),
        ("check --weight-scale 4", ["check", *small, "--weight-scale", "4"]),
        ("check --version", ["check", "--version"]), ("check --help", ["check", "--help"]), ("--help", ["--help"]),
    ):
        add(label, argv, ok)
    add("bptt-check -T 3", ["-T", "3"], ok, command="bptt-check")
    # check: bad input
    for label, argv, mentions in (
        ("check -T 0", ["check", "-T", "0"], ("-T", "seq-len")), ("check -T -1", ["check", "-T", "-1"], ("-T",)),
        ("check -T abc", ["check", "-T", "abc"], ("-T",)), ("check -T 1e6", ["check", "-T", "1e6"], ("-T",)),
        ("check -H 1000000", ["check", "-H", "1000000"], ("H", "hidden")),
        ("check -B 1000000000", ["check", "-B", "1000000000"], ("B", "batch")),
        ("check --dtype float16", ["check", "--dtype", "float16"], ("dtype",)),
        ("check --nonlinearity sigmoid", ["check", "--nonlinearity", "sigmoid"], ("nonlinearity",)),
        ("check --loss hinge", ["check", "--loss", "hinge"], ("loss",)),
        ("check --reduction max", ["check", "--reduction", "max"], ("reduction",)),
        ("check --seed -1", ["check", "--seed", "-1"], ("seed",)),
        ("check --weight-scale 0", ["check", "--weight-scale", "0"], ("weight-scale",)),
        ("check --weight-scale nan", ["check", "--weight-scale", "nan"], ("weight-scale",)),
        ("check --weight-scale inf", ["check", "--weight-scale", "inf"], ("weight-scale",)),
        ("check --truncate 2 --bidirectional", ["check", "--truncate", "2", "--bidirectional"], ("truncate",)),
        ("check --proj-size 2 (rnn)", ["check", "--proj-size", "2"], ("proj-size",)),
        ("check --cell lstm --proj-size 8 -H 8", ["check", "--cell", "lstm", "--proj-size", "8", "-H", "8"],
         ("proj-size",)),
        ("check --cell xyz", ["check", "--cell", "xyz"], ("cell",)),
        ("check --lengths some", ["check", "--lengths", "some"], ("lengths",)),
        ("check --unknown-option", ["check", "--unknown-option"], ("unknown-option", "unrecognized")),
        ("bptt bogus", ["bogus"], ("bogus",)),
    ):
        add(label, argv, exits(2, mentions=mentions))
    add("check --weight-scale 1e300 --nonlinearity relu", ["check", *small, "--weight-scale", "1e300",
                                                           "--nonlinearity", "relu"], exits(3))
    add("check --weight-scale 1e300 --cell rnn --num-layers 2 --nonlinearity relu",
        ["check", *small, "--weight-scale", "1e300", "--num-layers", "2", "--nonlinearity", "relu"], exits(3))

    # explain: valid runs (small sizes)
    ex = ["explain", "-T", "4", "-B", "2", "-H", "4"]
    wrote = exits(0, check=wrote_file)
    for label, argv in (
        ("explain --out a.png", [*ex, "--out", "ex_a.png"]), ("explain --out b.svg", [*ex, "--out", "ex_b.svg"]),
        ("explain --out c.pdf", [*ex, "--out", "ex_c.pdf"]),
        ("explain --nonlinearity relu --weight-scale 0.5 --weight-scale 2",
         [*ex, "--nonlinearity", "relu", "--weight-scale", "0.5", "--weight-scale", "2", "--out", "ex_d.png"]),
        ("explain --cell lstm --cell gru", [*ex, "--cell", "lstm", "--cell", "gru", "--out", "ex_e.png"]),
        ("explain --weights good.npz", [*ex, "--weights", f("good.npz"), "--out", "ex_f.png"]),
        ("explain --weights good32.npz", [*ex, "--weights", f("good32.npz"), "--out", "ex_g.png"]),
        ("explain --weights good.pt", [*ex, "--weights", f("good.pt"), "--out", "ex_h.png"]),
        ("explain --dpi 50 --seed 3", [*ex, "--dpi", "50", "--seed", "3", "--out", "ex_i.png"]),
        ("explain --out into a new folder", [*ex, "--out", "new/folder/ex_j.png"]),
    ):
        add(label, argv, wrote)
    add("explain --weights good.NPZ (capitals)", [*ex, "--weights", f("good.NPZ"), "--out", "ex_k.png"],
        exits(0, 2, mentions=("weights", "NPZ", "npz"), check=wrote_file))
    # explain --weights: files that hold no usable weights
    for name in ("half.npz", "ints.npz", "nan.npz", "shapes.npz", "mismatch.npz", "missing.npz", "noarrays.npz",
                 "objects.npz", "half.pt", "shapes.pt", "missing.pt", "emptydict.pt", "tensor.pt", "list.pt",
                 "int.pt", "nontensor.pt", "lists.pt", "meta.pt", "pickle.pt", "empty.pt", "empty.npz", "text.pt",
                 "text.npz", "text.txt", "dir.npz"):
        add(f"explain --weights {name}", [*ex, "--weights", f(name), "--out", "ex_bad.png"],
            exits(2, mentions=("weights", name)))
    add("explain --weights missing-file.npz", [*ex, "--weights", "missing-file.npz", "--out", "ex_bad.png"],
        exits(2, mentions=("weights", "missing-file")))
    add("explain --weights (a directory)", [*ex, "--weights", f("outdir"), "--out", "ex_bad.png"],
        exits(2, mentions=("weights", "outdir")))
    # explain: sizes, scales, dpi, out
    for label, argv, mentions in (
        ("explain -H 1000000", ["explain", "-H", "1000000", "--out", "ex_bad.png"], ("H", "hidden")),
        ("explain -B 1000000000", ["explain", "-B", "1000000000", "--out", "ex_bad.png"], ("B", "batch")),
        ("explain -T 10000000", ["explain", "-T", "10000000", "--out", "ex_bad.png"], ("T", "seq-len")),
        ("explain -H 1e6", ["explain", "-H", "1e6", "--out", "ex_bad.png"], ("-H", "hidden")),
        ("explain -T 0", ["explain", "-T", "0", "--out", "ex_bad.png"], ("-T",)),
        ("explain --dpi 100000", [*ex, "--dpi", "100000", "--out", "ex_bad.png"], ("dpi",)),
        ("explain --dpi 0", [*ex, "--dpi", "0", "--out", "ex_bad.png"], ("dpi",)),
        ("explain --weight-scale nan", [*ex, "--weight-scale", "nan", "--out", "ex_bad.png"], ("weight-scale",)),
        ("explain --weight-scale inf", [*ex, "--weight-scale", "inf", "--out", "ex_bad.png"], ("weight-scale",)),
        ("explain --weight-scale 0", [*ex, "--weight-scale", "0", "--out", "ex_bad.png"], ("weight-scale",)),
        ("explain --weight-scale -1", [*ex, "--weight-scale", "-1", "--out", "ex_bad.png"], ("weight-scale",)),
        ("explain --out x.xyz (unknown suffix)", [*ex, "--out", "ex.xyz"], ("out", "xyz")),
        ("explain --out under a regular file", [*ex, "--out", f("regular.txt") / "ex.png"], ("out", "regular")),
        ("explain --out /proc (unwritable)", [*ex, "--out", "/proc/hostile_sweep_ex.png"], ("out", "proc")),
        ("explain --out '' (empty)", [*ex, "--out", ""], ("out",)),
        ("explain without --out", [*ex], ("out",)),
        ("explain --nonlinearity sigmoid", [*ex, "--nonlinearity", "sigmoid", "--out", "ex_bad.png"],
         ("nonlinearity",)),
        ("explain --cell rnn", [*ex, "--cell", "rnn", "--out", "ex_bad.png"], ("cell",)),
    ):
        add(label, argv, exits(2, mentions=mentions))
    add("explain --weight-scale 1e300 (relu overflows)", [*ex, "--weight-scale", "1e300", "--out", "ex_over.png"],
        exits(3))
    add("explain --weight-scale 1e300 --nonlinearity relu", [*ex, "--nonlinearity", "relu", "--weight-scale", "1e300",
                                                             "--out", "ex_over2.png"], exits(3))
    add("explain --out noext (no suffix)", [*ex, "--out", "ex_noext"], exits(0, 2, mentions=("out",),
                                                                              check=wrote_file))
    add("explain --out a directory", [*ex, "--out", f("outdir")], exits(0, 2, mentions=("out", "outdir"),
                                                                       check=wrote_file))
    add("explain without matplotlib", [*ex, "--out", "ex_nompl.png"], exits(4),
        env={"PYTHONPATH": str(f("no_matplotlib"))})

    # train: small valid runs
    tr = ["train", "--text", f("small.txt"), "--steps", "3", "-H", "8", "-T", "8", "-B", "2", "--no-progress"]
    for label, argv, expect in (
        ("train (small)", tr, exits(0, check=printed(r"sample from the manual model"))),
        ("train --optimizer sgd", [*tr, "--optimizer", "sgd"], ok),
        ("train --optimizer sgd --momentum 0", [*tr, "--optimizer", "sgd", "--momentum", "0"], ok),
        ("train --clip 0 (no clipping)", [*tr, "--clip", "0"], ok),
        ("train --dtype float32", [*tr, "--dtype", "float32"], ok),
        ("train --sample 0", [*tr, "--sample", "0"], ok),
        ("train --seed 3 --lr 0.01", [*tr, "--seed", "3", "--lr", "0.01"], ok),
        ("train --out t.png", [*tr, "--out", "tr_a.png"], wrote),
        ("train --out t.svg", [*tr, "--out", "tr_b.svg"], wrote),
        ("train --text utf8 with symbols", ["train", "--text", f("utf8.txt"), "--steps", "3", "-H", "8", "-T", "8",
                                            "-B", "2", "--no-progress"], ok),
        ("train with a progress bar", tr[:-1], ok),
    ):
        add(label, argv, expect)
    for label, argv, mentions in (
        ("train --text (missing file)", ["train", "--text", "no-such-file.txt", "--steps", "2"], ("text",)),
        ("train --text (empty)", [*tr, "--text", f("empty.txt")], ("text",)),
        ("train --text (one character)", [*tr, "--text", f("one.txt")], ("text",)),
        ("train --text (two characters)", [*tr, "--text", f("two.txt")], ("text", "T", "seq-len")),
        ("train --text (binary)", [*tr, "--text", f("binary.bin")], ("text",)),
        ("train --text (a directory)", [*tr, "--text", f("outdir")], ("text",)),
        ("train --lr inf", [*tr, "--lr", "inf"], ("lr",)), ("train --lr nan", [*tr, "--lr", "nan"], ("lr",)),
        ("train --lr -1", [*tr, "--lr", "-1"], ("lr",)), ("train --lr 0", [*tr, "--lr", "0"], ("lr",)),
        ("train --momentum nan", [*tr, "--optimizer", "sgd", "--momentum", "nan"], ("momentum",)),
        ("train --momentum inf", [*tr, "--optimizer", "sgd", "--momentum", "inf"], ("momentum",)),
        ("train --momentum -1", [*tr, "--optimizer", "sgd", "--momentum", "-1"], ("momentum",)),
        ("train --clip -1", [*tr, "--clip", "-1"], ("clip",)), ("train --clip nan", [*tr, "--clip", "nan"], ("clip",)),
        ("train --sample -5", [*tr, "--sample", "-5"], ("sample",)),
        ("train --steps 0", [*tr, "--steps", "0"], ("steps",)), ("train -H 0", [*tr, "-H", "0"], ("-H", "hidden")),
        ("train -H 1000000", [*tr, "-H", "1000000"], ("H", "hidden")),
        ("train -T 100000 (longer than the text)", [*tr, "-T", "100000"], ("T", "seq-len", "text")),
        ("train --optimizer rmsprop", [*tr, "--optimizer", "rmsprop"], ("optimizer",)),
        ("train --dtype float16", [*tr, "--dtype", "float16"], ("dtype",)),
        ("train --out x.xyz (unknown suffix)", [*tr, "--out", "tr.xyz"], ("out", "xyz")),
    ):
        add(label, argv, exits(2, mentions=mentions))
    add("train --text (latin-1)", [*tr, "--text", f("latin1.txt")], exits(0, 2, mentions=("text", "utf")))
    add("train --text lacking the prompt's characters", [*tr, "--text", f("noprompt.txt")],
        exits(0, 2, mentions=("text", "prompt")))
    add("train --clip inf", [*tr, "--clip", "inf"], exits(0, 2, mentions=("clip",)))
    add("train --out noext (no suffix)", [*tr, "--out", "tr_noext"], exits(0, 2, mentions=("out",), check=wrote_file))
    add("train --out without matplotlib", [*tr, "--out", "tr_nompl.png"], exits(4),
        env={"PYTHONPATH": str(f("no_matplotlib"))})
    add("train's progress bar without tqdm", tr[:-1], exits(4), env={"PYTHONPATH": str(f("no_tqdm"))})
    # a bad --out must be refused before the training, not after it
    long_train = ["train", "--text", f("small.txt"), "--steps", "100000", "-H", "8", "-T", "8", "-B", "2",
                  "--no-progress", "--sample", "0"]
    for label, out, mentions in (("unknown suffix", "tr_long.xyz", ("out", "xyz")),
                                 ("under a regular file", f("regular.txt") / "tr.png", ("out", "regular")),
                                 ("unwritable (/proc)", "/proc/hostile_sweep_tr.png", ("out", "proc"))):
        add(f"train --steps 100000 --out {label} (refused before training)", [*long_train, "--out", out],
            exits(2, mentions=mentions), timeout=40, slow=True)

    # sweep
    sw = ["sweep", "-n", "5", "--no-progress"]
    pythonpath = {"PYTHONPATH": str(f("modules"))}
    for label, argv, expect, env in (
        ("sweep -n 5", sw, exits(0, check=printed(r"5 problems")), {}),
        ("sweep -n 5 --networks", [*sw, "--networks"], ok, {}),
        ("sweep -n 3 with a progress bar", ["sweep", "-n", "3"], ok, {}),
        ("sweep -n 4 --jobs 2", ["sweep", "-n", "4", "--jobs", "2", "--no-progress"], ok, {}),
        ("sweep --manual hs_good:bptt", [*sw, "--manual", "hs_good:bptt"], ok, pythonpath),
        ("sweep --manual manual_bptt:bptt", [*sw, "--manual", "manual_bptt:bptt"], ok, {}),
        ("sweep --manual (zero gradients)", [*sw, "--manual", "hs_zeros:bptt"], exits(1), pythonpath),
        ("sweep --manual (float32 gradients 1e-5 off)", [*sw, "--manual", "hs_f32off:bptt"], exits(1), pythonpath),
        # 8 problems: seed 0's first five networks are all float32, where 1e-5 off is within the tolerance
        ("sweep --networks --manual (float32 gradients 1e-5 off)",
         ["sweep", "-n", "8", "--no-progress", "--networks", "--manual", "hs_f32off:bptt"],
         exits(1), pythonpath),
        ("sweep --manual (returns None)", [*sw, "--manual", "hs_none:bptt"], exits(1), pythonpath),
        ("sweep --manual (raises)", [*sw, "--manual", "hs_crash:bptt"], exits(1), pythonpath),
    ):
        add(label, argv, expect, env=env)
    for label, spec, mentions in (
        ("import raises", "hs_raises:bptt", ("manual", "hs_raises")),
        ("SyntaxError", "hs_syntax:bptt", ("manual", "hs_syntax")),
        ("relative", ".hs_good:bptt", ("manual",)),
        ("sys.exit(7) on import", "hs_exit:bptt", ("manual", "hs_exit")),
        ("not callable", "hs_notcallable:bptt", ("manual",)),
        ("no such module", "no_such_module_here:bptt", ("manual",)),
        ("no such function", "hs_good:nope", ("manual",)),
        ("no colon", "hs_good", ("manual",)), ("empty", "", ("manual",)), ("module only", "hs_good:", ("manual",)),
    ):
        add(f"sweep --manual ({label})", [*sw, "--manual", spec], exits(2, mentions=mentions), env=pythonpath)
    for label, argv, mentions in (("sweep -n 0", ["sweep", "-n", "0"], ("-n", "problems")),
                                  ("sweep -n abc", ["sweep", "-n", "abc"], ("-n", "problems")),
                                  ("sweep --jobs 0", ["sweep", "-n", "2", "--jobs", "0"], ("jobs",)),
                                  ("sweep --seed -1", ["sweep", "-n", "2", "--seed", "-1"], ("seed",))):
        add(label, argv, exits(2, mentions=mentions))
    add("sweep with a progress bar, without tqdm", ["sweep", "-n", "2"], exits(4), env={"PYTHONPATH": str(f("no_tqdm"))})

    # SIGINT: exit 130, what was done so far printed, no traceback.
    progress = r"\b[1-9]\d*/\d+ \["
    add("SIGINT during train", ["train", "--text", f("small.txt"), "--steps", "100000", "-H", "8", "-T", "8", "-B",
                                "2"], exits(130), slow=True, interrupt=(progress, 40, 1.0))
    add("SIGINT during sweep", ["sweep", "-n", "100000"], exits(130), slow=True, interrupt=(progress, 40, 1.0))
    add("SIGINT during sweep --networks", ["sweep", "-n", "100000", "--networks"], exits(130), slow=True,
        interrupt=(progress, 40, 1.0))
    add("SIGINT during sweep --jobs 2", ["sweep", "-n", "100000", "--jobs", "2"], exits(130), slow=True,
        interrupt=(progress, 60, 1.0))
    add("SIGINT during check", ["check", "-T", "1500", "-B", "16", "-H", "256", "--cell", "lstm", "--num-layers", "3",
                                "--bidirectional"], exits(130), slow=True, interrupt=(r"problem:", 40, 1.5))
    add("sweep -n 1000000000 (refused, or interrupted after 8 s)", ["sweep", "-n", "1000000000"], exits(2, 130),
        slow=True, interrupt=(NEVER, 8, 0))
    return calls


# ---- running and reporting ---------------------------------------------------------------


BUILDERS = {"kit": kit_calls, "compare": compare_calls, "optim": optim_calls, "derivation": derivation_calls,
            "params": params_calls, "flags": flags_calls}


def table(results: list[Result], surfaces) -> str:
    rows = [f"{'surface':<12}{'calls':>7}{'right':>8}{'clear':>8}{'BAD':>6}"]
    totals = collections.Counter()
    for surface in surfaces:
        mine = [r for r in results if r.surface == surface]
        if not mine:
            continue
        counts = collections.Counter(r.outcome for r in mine)
        totals.update(counts)
        totals["calls"] += len(mine)
        rows.append(f"{surface:<12}{len(mine):>7}{counts[RIGHT]:>8}{counts[CLEAR]:>8}{counts[BAD]:>6}")
    rows.append(f"{'total':<12}{totals['calls']:>7}{totals[RIGHT]:>8}{totals[CLEAR]:>8}{totals[BAD]:>6}")
    return "\n".join(rows)


def versions() -> dict:
    import torch

    info = {"python": sys.version.split()[0], "numpy": np.__version__, "torch": torch.__version__}
    with contextlib.suppress(Exception):
        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                        text=True, timeout=10).stdout.strip()
    return info


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--surface", action="append", choices=SURFACES, help="only these surfaces (repeatable)")
    parser.add_argument("--quick", action="store_true", help="leave out the slow CLI calls (SIGINT, long runs)")
    parser.add_argument("--jobs", type=int, default=2, help="subprocesses at once for the CLI calls (default 2)")
    parser.add_argument("--match", metavar="REGEX", help="only the calls whose label matches")
    parser.add_argument("--json", metavar="FILE", help="write every result here")
    parser.add_argument("--bin", default=str(REPO / ".venv" / "bin"),
                        help="the folder of the installed `bptt` and `bptt-check` (default .venv/bin)")
    args = parser.parse_args(argv)
    surfaces = tuple(args.surface or SURFACES)
    binaries = {name: str(Path(args.bin) / name) for name in ("bptt", "bptt-check")}

    import torch

    torch.set_num_threads(1)                         # two cores, shared: one thread each
    started = time.perf_counter()
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="hostile_sweep_") as tmp:
        root = Path(tmp)
        for surface in surfaces:
            if surface == "cli":
                continue
            try:
                with np.errstate(all="ignore"), warnings_ignored():
                    calls = BUILDERS[surface]()
            except Exception as error:  # an API that moved: one BAD row, the other surfaces still run
                results.append(Result(surface, "building the calls", "the calls built", BAD,
                                      f"{type(error).__name__}: {one_line(str(error), 120)}",
                                      traceback.format_exc(limit=-3), 0.0))
                continue
            calls = [c for c in calls if not args.match or re.search(args.match, c.label)]
            t0 = time.perf_counter()
            results += [run_python(call) for call in calls]
            print(f"{surface}: {len(calls)} calls in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
        if "cli" in surfaces:
            files = write_fixtures(root)
            cwd = root / "cwd"
            cwd.mkdir()
            CLI_CWD.append(cwd)
            calls = [c for c in cli_calls(files) if not (args.quick and c.slow)
                     and (not args.match or re.search(args.match, c.label))]
            t0 = time.perf_counter()
            with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
                results += list(pool.map(lambda c: run_cli(c, binaries, cwd), calls))
            print(f"cli: {len(calls)} calls in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)

    print(table(results, surfaces))
    bad = [r for r in results if r.outcome == BAD]
    if bad:
        print(f"\nBAD calls ({len(bad)}):")
        for r in bad:
            print(f"  [{r.surface}] {r.label}: {r.reason}")
    elapsed = time.perf_counter() - started
    print(f"\n{len(results)} calls in {elapsed:.0f} s")
    if args.json:
        document = {"versions": versions(), "seconds": round(elapsed, 1), "quick": args.quick,
                    "counts": {s: dict(collections.Counter(r.outcome for r in results if r.surface == s),
                                       calls=sum(r.surface == s for r in results)) for s in surfaces},
                    "results": [asdict(r) for r in results]}
        Path(args.json).write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
