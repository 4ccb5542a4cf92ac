"""A test kit: check anyone's bptt against torch.autograd, on the project's problems.

The gradient check of a course, with property-based search and shrinking: the
project's hypothesis strategies (manual_bptt.verification.strategies) draw problems, each
is run through `compare(..., manual=fn)`, and the first problem with a FAIL is
shrunk to the smallest one that still fails (T, B, I, H, O towards 1, options
towards their defaults, the seed towards 0).

    >>> from manual_bptt import bptt
    >>> from torch_reference.kit import check_bptt
    >>> check_bptt(bptt, max_examples=5).ok
    True

`print(result)` shows what was found: the smallest failing problem as a
`random_problem(...)` (or `random_network_problem(...)`) call, which rows failed,
the table of that problem with each FAIL row's worst entry, or the candidate's
exception with the traceback of its own frames, and a line that reproduces it,
its imports included. At a prompt `result` shows the same text, in a notebook
an HTML table. In a pytest suite, `assert_bptt_correct(fn)` fails the test with
the same text. Needs hypothesis (`pip install 'manual-bptt[kit]'`).
"""

from __future__ import annotations

import dataclasses
import sys
import traceback
from dataclasses import dataclass
from html import escape
from pathlib import Path

from manual_bptt import GradientReport
from manual_bptt.inputs.checks import check_count, check_flag
from manual_bptt.model.params import as_float_dtype
from manual_bptt.verification import problems as problem_makers
from manual_bptt.verification.problems import RandomProblem
from manual_bptt.verification.report import report_html
from manual_bptt.verification import strategies  # raises a clear ImportError when hypothesis is missing
from manual_bptt.inputs.options import LAYOUTS, LOSSES, NONLINEARITIES, REDUCTIONS
from manual_bptt.inputs.validation import check_option

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st

from . import autograd
from .autograd import compare

#: Problems drawn per search, unless told otherwise. A wrong transpose or index
#: shows on almost every problem; 100 draws also reach the rarer options.
MAX_EXAMPLES = 100
#: The options `check_bptt` can pin, and the strategy argument each one sets.
PINNABLE = ("dtype", "nonlinearity", "loss", "reduction", "layout", "random_h0")


@dataclass(frozen=True, repr=False)
class KitResult:
    """What a search found. `ok`: no drawn problem had a FAIL row and the
    candidate never raised. Otherwise `problem` is the smallest failing problem,
    `report` its comparison (None when the candidate raised; then `error` says what
    and `traceback` shows the candidate's own frames, the kit's left out).

    `call_name` is the name the reproduce line calls the candidate by, and
    `import_from` the module it imports it from (None where it cannot be imported:
    a function defined in a session or inside another function)."""

    candidate: str
    tried: int
    undetermined: int
    problem: RandomProblem | None = None
    report: GradientReport | None = None
    error: str | None = None
    traceback: str | None = None
    call_name: str | None = None
    import_from: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def failed_rows(self) -> tuple[str, ...]:
        """Names of the rows that FAIL on the smallest failing problem."""
        return () if self.report is None else tuple(row.name for row in self.report.failures())

    @property
    def reproduce(self) -> str | None:
        """One line of Python that rebuilds the smallest failing problem and prints its comparison
        (or raises the candidate's error): the imports of the candidate, of the problem's maker and of
        compare, then the call. None when nothing failed."""
        if self.ok:
            return None
        name = self.call_name or self.candidate
        maker = self.problem.maker                           # random_problem or random_network_problem
        imports = [] if self.import_from is None else [f"from {self.import_from} import {name}"]
        imports += [f"from {type(self.problem).__module__} import {maker}", "from torch_reference import compare"]
        return "; ".join(imports) + f"; print({self.problem!r}.run(compare, manual={name}))"

    def __str__(self) -> str:
        if self.ok:
            return self._summary()
        lines = [f"{self.candidate} FAILs; the smallest failing problem found:", f"    {self.problem!r}"]
        if self.report is None:
            lines.append(f"{self.candidate} raised {self.error}")
            if self.traceback is not None:
                lines.append(self.traceback.rstrip("\n"))
        else:
            lines += [f"rows that FAIL: {', '.join(self.failed_rows)}", str(self.report)]
        lines.append(f"reproduce: {self.reproduce}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        # At a prompt a result reads as what it found, not as a dataclass holding a report.
        return str(self)

    def _summary(self) -> str:
        note = (f"; on {self.undetermined} of them some gradient had no meaningful digit"
                if self.undetermined else "")
        return f"{self.candidate} agrees with torch.autograd on {self.tried} problems{note}"

    def _repr_html_(self) -> str:
        """The same as HTML, for Jupyter: the report's table (FAIL rows marked), the traceback and
        the reproduce line as code."""
        if self.ok:
            return f"<p>{escape(self._summary())}</p>"
        parts = [f"<p><b>{escape(self.candidate)}</b> FAILs; the smallest failing problem found:</p>",
                 f"<pre>{escape(repr(self.problem))}</pre>"]
        if self.report is None:
            parts.append(f"<p>{escape(self.candidate)} raised <code>{escape(str(self.error))}</code></p>")
            if self.traceback is not None:
                parts.append(f"<pre>{escape(self.traceback)}</pre>")
        else:
            parts += [f"<p>rows that FAIL: {escape(', '.join(self.failed_rows))}</p>", report_html(self.report)]
        parts.append(f"<p>reproduce:</p><pre>{escape(self.reproduce)}</pre>")
        return "<div>" + "".join(parts) + "</div>"


#: The files of the kit's own machinery between the search and the candidate: a traceback
#: shows the candidate's frames, from its own call on, not these.
_MACHINERY = {str(Path(module.__file__).resolve()) for module in (sys.modules[__name__], problem_makers, autograd)}


def _candidate_traceback(error: BaseException) -> str | None:
    """The traceback of `error` from the candidate's own call on (None when it rose in the kit's
    machinery: compare checking what the candidate returned, say), with the error's line last."""
    frames = traceback.extract_tb(error.__traceback__)
    first = 0
    while first < len(frames) and str(Path(frames[first].filename).resolve()) in _MACHINERY:
        first += 1
    if first == len(frames):
        return None
    return ("Traceback (most recent call last), the candidate's frames:\n"
            + "".join(traceback.format_list(frames[first:]))
            + "".join(traceback.format_exception_only(type(error), error)))


def _call_name(fn) -> tuple[str, str | None]:
    """The name a reproduce line calls fn by, and the module to import it from (None: no import).

    A module-level function is imported from its module; one defined at a prompt (__main__) or
    inside another function is called by its own name (`fn` for a lambda), to be defined first."""
    qualname = getattr(fn, "__qualname__", None)
    module = getattr(fn, "__module__", None)
    if (isinstance(qualname, str) and qualname.isidentifier() and module not in (None, "__main__")
            and getattr(sys.modules.get(module), qualname, None) is fn):
        return qualname, module
    name = getattr(fn, "__name__", None)
    return (name if isinstance(name, str) and name.isidentifier() else "fn"), None


def _with_time_axes(report: GradientReport | None, problem: RandomProblem) -> GradientReport | None:
    """The report told which axis of x counts time steps (1 batch_first, else 0), for its worst-entry lines."""
    if report is None:
        return None
    recipe = problem.recipe
    axis = 1 if recipe["batch_first"] and recipe["batched"] else 0
    return dataclasses.replace(report, time_axes=(("x", axis),))


class _Found(Exception):
    """Raised inside the search on a failing problem; hypothesis shrinks it."""

    def __init__(self, problem: RandomProblem, report: GradientReport | None, error: str | None,
                 trace: str | None = None):
        super().__init__(repr(problem))
        self.problem, self.report, self.error, self.trace = problem, report, error, trace


def check_bptt(
    fn,
    *,
    max_examples: int = MAX_EXAMPLES,
    ill_conditioned: bool = False,
    problems=None,
    derandomize: bool = True,
    **pinned,
) -> KitResult:
    """Search for a problem on which `fn` disagrees with torch.autograd; shrink it.

    fn:              a callable with bptt's signature and result, (L, RNNGrads)
    max_examples:    problems drawn (shrinking a failure adds more runs)
    ill_conditioned: draw from `ill_conditioned_problems` (W up to ×10, T up to
                     80) instead of `rnn_problems`; a row there is judged against
                     what rounding explains (see compare), never by guesswork
    problems:        any strategy of RandomProblems, instead of both: network problems with
                     `strategies.network_problems(cell="lstm", ...)` (plain values or strategies)
    derandomize:     the same draws on every run (the default), or fresh ones
    pinned:          fix an option instead of drawing it, for an implementation
                     that handles only some: dtype, nonlinearity, loss, reduction,
                     layout ("time_major", "batch_first", "unbatched"), random_h0

    Returns a KitResult; `print(result)` explains it. Every argument of the kit's
    own is checked before anything is drawn: a TypeError for a wrong type (fn not
    callable, max_examples not an int, problems not a hypothesis strategy, a flag
    not a bool), a ValueError for a wrong value (max_examples < 1, an unknown or
    unknown-valued pinned option, a layout not in LAYOUTS). A drawn element of
    `problems` that is not a RandomProblem is a TypeError naming `problems`: the
    fault is the strategy's, not the candidate's.
    """
    if not callable(fn):
        raise TypeError(f"fn: expected a callable with bptt's signature, got {type(fn).__name__}")
    max_examples = check_count("max_examples", max_examples)
    ill_conditioned = check_flag("ill_conditioned", ill_conditioned)
    derandomize = check_flag("derandomize", derandomize)
    pinned = _checked_pins(pinned, ill_conditioned)
    if problems is not None and not isinstance(problems, st.SearchStrategy):
        raise TypeError(
            f"problems: expected a hypothesis strategy of RandomProblems (e.g. manual_bptt.verification.strategies."
            f"rnn_problems(...)), got {type(problems).__name__}"
        )
    if problems is not None and (pinned or ill_conditioned):
        raise ValueError("problems: a strategy of its own excludes ill_conditioned and pinned options")
    if problems is None:
        make = strategies.ill_conditioned_problems if ill_conditioned else strategies.rnn_problems
        problems = make(**pinned)                                  # plain values: the strategies pin them
    name = getattr(fn, "__qualname__", None) or repr(fn)
    call_name, import_from = _call_name(fn)
    seen = {"tried": 0, "undetermined": 0}

    # Every setting the answer depends on is pinned here: a hypothesis profile the caller has
    # loaded (one without the shrink phase, say) must not change which problem is reported.
    @settings(max_examples=max_examples, derandomize=derandomize, database=None, deadline=None,
              phases=(Phase.explicit, Phase.generate, Phase.shrink),
              report_multiple_bugs=False, verbosity=Verbosity.quiet,
              suppress_health_check=list(HealthCheck))
    @given(problems)
    def search(problem: RandomProblem) -> None:
        if not isinstance(problem, RandomProblem):                # the strategy's fault: not shrunk, not blamed on fn
            raise _NotAProblem(
                f"problems: expected a strategy that draws RandomProblems (random_problem(...) or "
                f"random_network_problem(...)), got one that drew {type(problem).__name__} {problem!r:.80}"
            )
        seen["tried"] += 1
        try:
            report = problem.run(compare, manual=fn)
        except Exception as error:  # the candidate crashed or returned the wrong thing
            raise _Found(problem, None, f"{type(error).__name__}: {error}", _candidate_traceback(error)) from error
        if report.failures():
            raise _Found(problem, report, None)
        seen["undetermined"] += bool(report.undetermined())

    try:
        search()
    except _Found as found:
        return KitResult(name, seen["tried"], seen["undetermined"], found.problem,
                         _with_time_axes(found.report, found.problem), found.error, found.trace,
                         call_name=call_name, import_from=import_from)
    except _NotAProblem as wrong:
        raise TypeError(str(wrong)) from None
    return KitResult(name, seen["tried"], seen["undetermined"])


class _NotAProblem(Exception):
    """Raised inside the search when `problems` draws something that is not a RandomProblem."""


def _checked_pins(pinned: dict, ill_conditioned: bool) -> dict:
    """The pinned options, each a known name with a valid value, as `rnn_problems` takes them.

    ill_conditioned problems are tanh alone: nonlinearity "tanh" is accepted there (and
    left to the strategy, which pins it itself), "relu" is a ValueError.
    """
    unknown = sorted(set(pinned) - set(PINNABLE))
    if unknown:
        raise ValueError(f"{unknown[0]}: not an option the kit can pin; expected one of {', '.join(PINNABLE)}")
    checked = {}
    for name, value in pinned.items():
        if name == "dtype":
            value = as_float_dtype(value, name="dtype").name     # "float32" / "float64", as the recipe prints it
        elif name == "random_h0":
            value = check_flag("random_h0", value)
        else:
            allowed = {"nonlinearity": NONLINEARITIES, "loss": LOSSES, "reduction": REDUCTIONS,
                       "layout": LAYOUTS}[name]
            value = check_option(name, value, allowed)
        checked[name] = value
    if ill_conditioned and "nonlinearity" in checked:
        if checked.pop("nonlinearity") != "tanh":
            raise ValueError(
                "nonlinearity: expected 'tanh' with ill_conditioned=True (the ill-conditioned problems are "
                f"tanh alone: relu with a large W overflows), got {pinned['nonlinearity']!r}"
            )
    return checked


def assert_bptt_correct(fn, **options) -> KitResult:
    """For a pytest suite: `check_bptt(fn, **options)`, failing with its text when not ok."""
    result = check_bptt(fn, **options)
    if not result.ok:
        raise AssertionError(str(result))
    return result
