"""`bptt` at the edges: every bad input is one line and exit 2, before any computation;
a problem that cannot be answered exits 3; Ctrl-C exits 130 with the work done so far.

The exit codes (torch_reference.commands): 0 success, 1 a FAIL, 2 bad input, 3 no
answer (overflow), 4 a missing extra, 130 Ctrl-C. Most tests call `main` in this
process; the three that send a real SIGINT run the command as a subprocess and
wait for its first progress before they send it, so they do not depend on timing.
"""

from __future__ import annotations

import io
import os
import re
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")

import torch  # noqa: E402

import torch_reference.cli as cli  # noqa: E402
import torch_reference.commands as commands  # noqa: E402
import torch_reference.explain as explain  # noqa: E402
import torch_reference.sweep as sweep  # noqa: E402
import torch_reference.train as train  # noqa: E402
from manual_bptt.verification.problems import random_problem  # noqa: E402
from torch_reference.twin import build_twin  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PARAMS = random_problem(T=3, B=2, I=3, H=4, O=3, seed=2).params
TWIN_STATE = build_twin(PARAMS).state_dict()


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """`bptt ARGV` in this process: (exit code, stdout, stderr). A KeyboardInterrupt that
    escapes is a failure here, not the end of the pytest session."""
    try:
        code = commands.main(argv)
    except SystemExit as exited:
        code = exited.code
    except KeyboardInterrupt:
        pytest.fail(f"KeyboardInterrupt escaped `bptt {' '.join(argv)}`")
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line(err: str, starts: str) -> None:
    assert err.startswith(starts), err
    assert err.count("\n") == 1 and err.endswith("\n"), f"expected one line on stderr, got:\n{err}"
    assert "Traceback" not in err, err


def assert_usage_error(result, starts: str) -> None:
    code, _, err = result
    assert code == 2, (code, err)
    assert_one_line(err, starts)


@pytest.fixture
def no_computation(monkeypatch):
    """Bad input must be refused before any computation: each command's work fails the test."""
    def refuse(*args, **kwargs):
        pytest.fail("computed despite bad input")

    monkeypatch.setattr(explain, "explain_panels", refuse)
    monkeypatch.setattr(train, "train_both", refuse)
    monkeypatch.setattr(sweep, "run_sweep", refuse)


# ---- explain --weights: every bad file is named, one line, exit 2 ----------------------


def _write(path: Path, writer) -> Path:
    writer(path)
    return path


def _savez(path: Path, **arrays) -> None:
    with open(path, "wb") as file:                      # np.savez(name) would append .npz to any other suffix
        np.savez(file, **arrays)


def _state(**changes) -> dict:
    state = dict(TWIN_STATE)
    state.update(changes)
    return {key: value for key, value in state.items() if value is not None}


BAD_WEIGHTS = {
    # name: (file name, how to write it, what the one line must say after "--weights: '<path>'")
    "missing file": ("absent.pt", None, "no such file"),
    "directory": ("folder.pt", lambda p: p.mkdir(), "is a directory; expected a .npz or .pt file"),
    "empty .pt": ("empty.pt", lambda p: p.write_bytes(b""), "is not a readable torch state dict"),
    "empty .npz": ("empty.npz", lambda p: p.write_bytes(b""), "is not a readable .npz archive"),
    "text file": ("notes.pt", lambda p: p.write_text("U W V b c\n"), "is not a readable torch state dict"),
    "tensor payload": ("tensor.pt", lambda p: torch.save(torch.zeros(3), p),
                       "holds a value of type Tensor; expected a state dict"),
    "list payload": ("list.pt", lambda p: torch.save([1, 2], p), "holds a value of type list; expected a state dict"),
    "int payload": ("int.pt", lambda p: torch.save(3, p), "holds a value of type int; expected a state dict"),
    "non-tensor values": ("lists.pt", lambda p: torch.save({k: v.tolist() for k, v in TWIN_STATE.items()}, p),
                          "rnn.weight_ih_l0 is of type list; expected a tensor"),
    "missing keys": ("missing.pt", lambda p: torch.save(_state(**{"out.bias": None}), p),
                     "the state dict lacks out.bias"),
    "wrong shape": ("shape.pt", lambda p: torch.save(_state(**{"rnn.weight_hh_l0": torch.zeros(3, 4, dtype=torch.float64)}), p),
                    "params.W: expected shape (H, H) = (4, 4)"),
    "bias shapes differ": ("bias.pt", lambda p: torch.save(_state(**{"rnn.bias_hh_l0": torch.zeros(3, dtype=torch.float64)}), p),
                           "rnn.bias_ih_l0 has shape (4,) and rnn.bias_hh_l0 (3,)"),
    "half precision .pt": ("half.pt", lambda p: torch.save({k: v.half() for k, v in TWIN_STATE.items()}, p),
                           "rnn.weight_ih_l0 has dtype torch.float16; expected float32 or float64"),
    "half precision .npz": ("half.npz", lambda p: _savez(p, **{k: v.astype(np.float16) for k, v in PARAMS.items()}),
                            "U has dtype float16; expected float32 or float64"),
    "sparse tensors": ("sparse.pt", lambda p: torch.save({k: v.to_sparse() for k, v in TWIN_STATE.items()}, p),
                       "rnn.weight_ih_l0 is a torch.sparse_coo tensor"),
    "npz lacking arrays": ("partial.npz", lambda p: _savez(p, U=PARAMS.U), "lacks the arrays W, V, b, c"),
    "one .npy array named .npz": ("single.npz", lambda p: p.write_bytes(_npy_bytes(PARAMS.U)),
                                  "holds one array, not a .npz archive"),
    "object array": ("object.npz", lambda p: _savez(p, **{**dict(PARAMS.items()), "W": np.array([None], dtype=object)}),
                     "Object arrays cannot be loaded"),
    "NaN in W": ("nan.npz", lambda p: _savez(p, **{**dict(PARAMS.items()), "W": PARAMS.W * np.nan}),
                 "W holds NaN or infinity; expected finite weights"),
}


def _npy_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize("case", BAD_WEIGHTS, ids=list(BAD_WEIGHTS))
def test_explain_refuses_every_bad_weights_file_in_one_line(case, tmp_path, capsys, no_computation):
    name, writer, says = BAD_WEIGHTS[case]
    path = tmp_path / name
    if writer is not None:
        writer(path)
    result = run(["explain", "--out", str(tmp_path / "x.png"), "--weights", str(path)], capsys)
    if case == "missing file":
        assert_usage_error(result, f"bptt explain: error: --weights: no such file {str(path)!r}")
    else:
        assert_usage_error(result, f"bptt explain: error: --weights: {str(path)!r}")
    assert says in result[2], result[2]


def test_explain_reads_suffixes_in_capitals(tmp_path, capsys):
    """.NPZ is the same format as .npz (read case-insensitively, not as a torch file), and
    an --out of FIGURE.PNG passes the suffix check and is written under that name."""
    _savez(tmp_path / "W.NPZ", **dict(PARAMS.items()))
    out = tmp_path / "new" / "FIGURE.PNG"
    code, printed, err = run(["explain", "--out", str(out), "--weights", str(tmp_path / "W.NPZ"),
                              "-T", "3", "--nonlinearity", "tanh", "--weight-scale", "1"], capsys)
    assert code == 0, err
    assert "I=3, H=4, O=3" in printed and printed.endswith(f"wrote {out}\n")
    assert out.read_bytes().startswith(b"\x89PNG")


# ---- explain: sizes, resolution, output file ------------------------------------------


@pytest.mark.parametrize("argv, starts", [
    (["-H", "1000000"], "H: expected sizes that fit in memory"),
    (["-B", "1000000000"], "T, B, I: expected sizes that fit in memory"),
    # x is small here (T·B·I = 10⁶); the (T, T) tables of the panels are not (48 TB).
    (["-T", "1000000", "-B", "1", "-I", "1"], "T: expected sizes that fit in memory"),
    (["--dpi", "100000"], "argument --dpi: expected an integer in [10, 600], got '100000'"),
    (["--dpi", "0"], "argument --dpi: expected an integer in [10, 600], got '0'"),
    # Twenty rows of panels and four of the carousel at 600 dpi: 7560 × 43200 pixels, more than Pillow reads back.
    (["--dpi", "600"] + [arg for s in range(1, 11) for arg in ("--weight-scale", str(s))],
     "--dpi: 600 makes the figure of 24 rows 7560 × 43200 pixels"),
])
def test_explain_refuses_sizes_it_cannot_hold_before_computing(argv, starts, tmp_path, capsys, no_computation):
    assert_usage_error(run(["explain", "--out", str(tmp_path / "x.png")] + argv, capsys),
                       f"bptt explain: error: {starts}")


def _unwritable_place() -> str:
    if not Path("/proc/self").is_dir():
        pytest.skip("needs /proc, a place no process can create a file in, root included")
    return "/proc/bptt-no-such-folder/figure.png"


@pytest.mark.parametrize("command", ["explain", "train"])
@pytest.mark.parametrize("out, starts", [
    ("figure.txt", "--out: expected a file name ending in .png, .svg, .pdf, got '{out}'"),
    ("noext", "--out: expected a file name ending in .png, .svg, .pdf, got '{out}'"),
    ("a-file/figure.png", "--out: cannot write '{out}': '{tmp}/a-file' is a file, not a folder"),
    ("a-file/deeper/figure.png", "--out: cannot write '{out}': '{tmp}/a-file' is a file, not a folder"),
    ("a-folder.png", "--out: '{out}' is a directory; expected a file name"),
    ("UNWRITABLE", "--out: cannot write '{out}': cannot create a file in '/proc'"),
])
def test_out_is_checked_before_any_computation(command, out, starts, tmp_path, capsys, no_computation):
    (tmp_path / "a-file").write_text("a regular file\n")
    (tmp_path / "a-folder.png").mkdir()
    path = _unwritable_place() if out == "UNWRITABLE" else str(tmp_path / out)
    assert_usage_error(run([command, "--out", path, "--no-progress"] if command == "train" else
                           [command, "--out", path], capsys),
                       f"bptt {command}: error: " + starts.format(out=path, tmp=tmp_path))
    assert not Path(path).with_suffix(".png").is_file()


# ---- explain: overflow is no answer (exit 3), not a norm of 0 and a NaN ratio -----------


@pytest.mark.parametrize("argv", [
    ["-T", "6", "--nonlinearity", "relu", "--weight-scale", "1e300"],
    ["-T", "6", "--nonlinearity", "relu", "--weight-scale", "1e308"],
    # Here ∂h(3)/∂h(0) overflows to NaN first, which np.linalg.svd refuses (LinAlgError).
    ["-T", "3", "--nonlinearity", "relu", "--weight-scale", "1e300"],
], ids=["relu 1e300", "relu 1e308", "relu T=3 1e300"])
def test_explain_exits_3_when_the_computation_overflows(argv, tmp_path, capsys):
    out = tmp_path / "x.png"
    code, printed, err = run(["explain", "--out", str(out), "-H", "4"] + argv, capsys)
    assert code == 3, (code, printed, err)
    assert_one_line(err, "bptt explain: overflow: ")
    assert "nan" not in printed.lower() and not out.exists()


def test_a_panel_with_non_finite_numbers_is_named():
    from manual_bptt.inputs.overflow import NonFiniteError

    panels = explain.explain_panels(PARAMS, *_problem_arrays(), nonlinearities=("tanh",), scales=(1.0, 2.0))
    broken = panels[1].__class__(**{**panels[1].__dict__, "singular_values": panels[1].singular_values * np.inf})
    explain.check_finite_panels(panels)                                # finite: nothing to say
    with pytest.raises(NonFiniteError, match=r"^tanh, W × 2: σ\(∂h\(T\)/∂h\(T − d\)\) is not finite"):
        explain.check_finite_panels((panels[0], broken))


def _problem_arrays():
    problem = random_problem(T=4, B=2, I=3, H=4, O=3, seed=2)
    return problem.x, problem.y, problem.h0


# ---- train: the text, the prompt and the numbers, before the first step ----------------


@pytest.mark.parametrize("content, says", [
    (b"", "--text: expected at least T + 1 = 33 characters for -T/--seq-len 32, got a text of 0"),
    (b"a", "--text: expected at least T + 1 = 33 characters for -T/--seq-len 32, got a text of 1"),
    (b"ab", "--text: expected at least T + 1 = 33 characters for -T/--seq-len 32, got a text of 2"),
    (b"The text \x00\x01\x02 and more" * 4, "--text: '{path}' is binary (a NUL byte at offset 9)"),
    ("Thé café, a Latin-1 text long enough for a window".encode("latin-1"),
     "--text: '{path}' is not UTF-8 (byte 0xe9 at offset 2)"),
    (b"abc " * 40, "--prompt: expected a non-empty prompt over the text's characters, got 'The ' "
                   "(not in the text: 'Teh')"),
])
def test_train_checks_the_text_before_training(content, says, tmp_path, capsys, no_computation):
    path = tmp_path / "text.txt"
    path.write_bytes(content)
    assert_usage_error(run(["train", "--text", str(path), "--no-progress"], capsys),
                       "bptt train: error: " + says.format(path=path))


def test_a_prompt_over_the_text_and_no_sample_are_both_accepted(tmp_path, capsys):
    path = tmp_path / "abc.txt"
    path.write_text("abc " * 40)
    for extra in (["--prompt", "ca"], ["--sample", "0"]):
        code, out, err = run(["train", "--text", str(path), "--steps", "2", "-H", "3", "-T", "4", "-B", "2",
                              "--no-progress", "--sample", "5"] + extra, capsys)
        assert code == 0, err
        assert ("sample from the manual model:\nca" in out) == (extra[0] == "--prompt")


@pytest.mark.parametrize("argv, says", [
    (["--lr", "inf"], "argument --lr: expected a finite number in (0, ∞), got 'inf'"),
    (["--lr", "nan"], "argument --lr: expected a finite number in (0, ∞), got 'nan'"),
    (["--lr", "0"], "argument --lr: expected a finite number in (0, ∞), got '0'"),
    (["--momentum", "nan"], "argument --momentum: expected a finite number in [0, 1), got 'nan'"),
    (["--momentum", "inf"], "argument --momentum: expected a finite number in [0, 1), got 'inf'"),
    (["--momentum", "-1"], "argument --momentum: expected a finite number in [0, 1), got '-1'"),
    (["--clip", "-1"], "argument --clip: expected a finite number in [0, ∞), got '-1'"),
    (["--clip", "nan"], "argument --clip: expected a finite number in [0, ∞), got 'nan'"),
    (["--sample", "-5"], "argument --sample: expected an integer >= 0, got '-5'"),
    (["-H", "1000000"], "-H: expected sizes that fit in memory"),
])
def test_train_refuses_bad_numbers(argv, says, capsys, no_computation):
    assert_usage_error(run(["train", "--no-progress"] + argv, capsys), f"bptt train: error: {says}")


TINY_TRAIN = ["train", "-H", "4", "-T", "4", "-B", "2", "--sample", "3", "--no-progress"]


def test_training_that_overflows_exits_3_with_the_losses_so_far(capsys):
    # SGD at lr 1e307 with momentum sends the weights towards 1e308 within a few
    # steps, and then a loss overflows (L = Σ L(t) is inf).
    code, out, err = run(TINY_TRAIN + ["--steps", "10", "--optimizer", "sgd", "--lr", "1e307", "--clip", "0"],
                         capsys)
    assert code == 3, (code, out, err)
    done = int(re.search(r"largest parameter difference after (\d+) steps", out).group(1))
    assert 1 <= done < 10 and "loss, first step: manual" in out
    assert_one_line(err, "bptt train: overflow: ")
    assert err.endswith(f"; stopped after {done} of 10 steps, no figure or sample written\n"), err
    assert "sample from the manual model" not in out


def test_ctrl_c_during_training_prints_the_steps_done_and_exits_130(monkeypatch, capsys):
    calls = []
    real = train.bptt

    def interrupted_at_step_3(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "bptt", interrupted_at_step_3)
    code, out, err = run(TINY_TRAIN + ["--steps", "50"], capsys)
    assert code == 130, (code, err)
    assert "largest parameter difference after 2 steps" in out
    assert_one_line(err, "bptt train: interrupted (Ctrl-C); stopped after 2 of 50 steps")


# ---- sweep --manual: a module that cannot be imported is named, exit 2 -------------------


@pytest.mark.parametrize("source, says", [
    ("raise RuntimeError('broken on import')\n", "failed: RuntimeError: broken on import"),
    ("def bptt(:\n", "failed: SyntaxError: invalid syntax"),
    ("import sys\nsys.exit(7)\n", "failed: it called sys.exit(7)"),
])
def test_sweep_names_a_candidate_module_that_cannot_be_imported(source, says, tmp_path, monkeypatch, capsys,
                                                                no_computation):
    module = f"candidate_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert_usage_error(run(["sweep", "-n", "2", "--no-progress", "--manual", f"{module}:bptt"], capsys),
                       f"bptt sweep: error: --manual: importing {module!r} {says}")


@pytest.mark.parametrize("spec", [".wrong_bptt:raises", "..tests.wrong_bptt:raises"])
def test_sweep_refuses_a_relative_module(spec, capsys, no_computation):
    assert_usage_error(run(["sweep", "--manual", spec], capsys),
                       "bptt sweep: error: --manual: expected an absolute module name (package.module:function), "
                       f"got the relative {spec!r}")


def test_a_candidate_that_exits_when_called_is_a_failure_row(tmp_path, monkeypatch, capsys):
    module = f"exits_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text("import sys\n\ndef bptt(*args, **kwargs):\n    sys.exit(7)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out, _ = run(["sweep", "-n", "2", "--no-progress", "--manual", f"{module}:bptt"], capsys)
    assert code == 1
    assert out.startswith("2 problems, 2 FAIL") and "# SystemExit: 7" in out


def test_sweep_draws_its_recipes_as_it_checks_them(monkeypatch):
    """-n 10⁹ must not build 10⁹ recipes first: after 3 problems, a handful were drawn."""
    drawn = []
    real = sweep.draw_recipe

    def counted(rng, pins=None):
        drawn.append(1)
        assert len(drawn) <= 1000, "drew 1000 recipes before checking the first few"
        return real(rng, pins)

    checked = []

    def check_three(recipe, manual=None):
        checked.append(recipe)
        if len(checked) > 3:
            raise KeyboardInterrupt
        return sweep.Outcome(recipe, {"L": 0.0}, ())

    monkeypatch.setattr(sweep, "draw_recipe", counted)
    monkeypatch.setattr(sweep, "check_one", check_three)
    try:
        summary = sweep.run_sweep(10**9, progress=False)
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped run_sweep")
    assert summary.interrupted and summary.count == 3 and len(drawn) == 4


def test_the_summary_lists_the_first_failures_and_counts_the_rest(monkeypatch):
    """A candidate that fails every problem of a long sweep must not fill the memory with them."""
    monkeypatch.setattr(sweep, "MAX_LISTED", 3)
    summary = sweep.run_sweep(10, seed=4, manual="tests.wrong_bptt:raises", progress=False)
    assert summary.failed == 10 and not summary.ok
    assert len(summary.failures) <= 2 * 3
    table = summary.table()
    assert table.startswith("10 problems, 10 FAIL") and table.endswith("\n  … and 7 more")
    listed = [line.strip().split("  #")[0] for line in table.splitlines() if line.startswith("  random_problem(")]
    rng = np.random.default_rng(4)
    recipes = [sweep.draw_recipe(rng) for _ in range(10)]
    by_size = sorted(recipes, key=lambda r: (r["T"], r["B"], r["I"], r["H"], r["O"], repr(r)))
    assert listed == [sweep.Outcome(r, {}, ()).reproduction() for r in by_size[:3]]


def test_ctrl_c_during_a_sweep_prints_the_summary_so_far_and_exits_130(monkeypatch, capsys):
    real = sweep.check_one
    checked = []

    def interrupted_at_problem_4(recipe, manual=None):
        checked.append(recipe)
        if len(checked) == 4:
            raise KeyboardInterrupt
        return real(recipe, manual)

    monkeypatch.setattr(sweep, "check_one", interrupted_at_problem_4)
    code, out, err = run(["sweep", "-n", "1000", "--no-progress"], capsys)
    assert code == 130, (code, err)
    assert out.startswith("3 problems, 0 FAIL") and "worst ratio" in out
    assert_one_line(err, "bptt sweep: interrupted (Ctrl-C) after 3 of 1000 problems")


# ---- check, and the command itself ------------------------------------------------------


def test_ctrl_c_during_check_exits_130_without_a_table(monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "compare", interrupted)
    code, out, err = run(["check", "-T", "3"], capsys)
    assert code == 130
    assert out.startswith("problem: random_problem(T=3") and "agree" not in out
    assert_one_line(err, "bptt check: interrupted (Ctrl-C) before the comparison finished")


def test_ctrl_c_anywhere_else_in_a_subcommand_exits_130(monkeypatch, capsys):
    def interrupted(argv):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep, "main", interrupted)
    code, _, err = run(["sweep"], capsys)
    assert code == 130 == commands.EXIT_INTERRUPTED
    assert_one_line(err, "bptt sweep: interrupted (Ctrl-C)")


def test_an_unknown_subcommand_is_one_line(capsys):
    assert_usage_error(run(["explian", "--out", "x.png"], capsys),
                       "bptt: error: unknown subcommand 'explian'; expected one of check, explain, sweep, train")


def test_the_module_docstring_gives_every_exit_code():
    """commands.py once said 3 for a missing extra; it is 4, and 3 is a problem with no answer."""
    doc = " ".join(commands.__doc__.split())
    assert f"{commands.EXIT_MISSING_EXTRA} an optional dependency is missing" in doc
    assert "3 a problem that cannot be answered" in doc and "2 bad input" in doc and "1 a FAIL" in doc
    assert f"{commands.EXIT_INTERRUPTED} stopped by Ctrl-C" in doc
    assert "3 an optional dependency" not in doc


# ---- a real SIGINT, sent once the work has visibly started -------------------------------


def _start(argv: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def _read_until(proc: subprocess.Popen, stream, pattern: bytes, *, timeout: float = 120) -> bytes:
    """What `stream` printed up to the first match of `pattern` (a progress line)."""
    seen, deadline = b"", time.monotonic() + timeout
    while not re.search(pattern, seen):
        left = deadline - time.monotonic()
        ready, _, _ = select.select([stream], [], [], max(left, 0))
        chunk = os.read(stream.fileno(), 65536) if ready else b""
        if not chunk:
            proc.kill()
            pytest.fail(f"no {pattern!r} within {timeout} s; printed: {seen[-2000:]!r}")
        seen += chunk
    return seen


def _finish(proc: subprocess.Popen, before: bytes = b"", *, stream: str = "err") -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=120)
    if stream == "err":
        err = before + err
    else:
        out = before + out
    return proc.returncode, out.decode(), err.decode()


BPTT = [sys.executable, "-m", "torch_reference.commands"]


def test_sigint_during_train_prints_the_losses_so_far():
    proc = _start(BPTT + ["train", "--steps", "1000000", "-H", "4", "-T", "4", "-B", "2", "--sample", "0"])
    before = _read_until(proc, proc.stderr, rb"\| *[1-9]\d*/1000000")      # tqdm: a step is done
    proc.send_signal(signal.SIGINT)
    code, out, err = _finish(proc, before)
    assert code == 130, err
    assert "Traceback" not in err and re.search(r"largest parameter difference after [1-9]\d* steps", out), out
    assert re.search(r"bptt train: interrupted \(Ctrl-C\); stopped after [1-9]\d* of 1000000 steps", err), err


def test_sigint_to_a_sweep_with_workers_prints_the_summary_and_no_worker_traceback():
    # The signal goes to the whole process group, as Ctrl-C in a terminal does: the
    # workers get it too. -n 10⁹ also shows the recipes are drawn lazily (the first
    # result would never come if 10⁹ recipes were built first).
    proc = _start(BPTT + ["sweep", "-n", "1000000000", "--jobs", "2"], start_new_session=True)
    try:
        before = _read_until(proc, proc.stderr, rb"\| *[1-9]\d*/1000000000")
        os.killpg(proc.pid, signal.SIGINT)
        code, out, err = _finish(proc, before)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert code == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert re.match(r"[1-9]\d* problems, 0 FAIL", out), out
    assert re.search(r"bptt sweep: interrupted \(Ctrl-C\) after [1-9]\d* of 1000000000 problems", err), err


def test_sigint_during_check_says_nothing_was_compared():
    # The comparison is made to wait for the signal, so it always arrives during it.
    script = textwrap.dedent("""
        import sys, time
        import torch_reference.cli as cli

        def waits(*args, **kwargs):
            print("comparing", flush=True)
            time.sleep(600)

        cli.compare = waits
        sys.exit(cli.main(["-T", "3"]))
    """)
    proc = _start([sys.executable, "-c", script])
    before = _read_until(proc, proc.stdout, rb"comparing\n")
    proc.send_signal(signal.SIGINT)
    code, out, err = _finish(proc, before, stream="out")
    assert code == 130, err
    assert out.startswith("problem: random_problem(T=3") and "Traceback" not in err
    assert err == "bptt-check: interrupted (Ctrl-C) before the comparison finished; no gradient was compared\n"
