"""`bptt`: the subcommands, `check` as the default, and the message when an extra is missing."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("torch")

from torch_reference.cli import main as bptt_check  # noqa: E402
from torch_reference.commands import EXIT_MISSING_EXTRA, SUBCOMMANDS, main  # noqa: E402


@pytest.mark.parametrize("argv", [["-T", "3", "--seed", "4"], ["check", "-T", "3", "--seed", "4"]])
def test_check_is_the_default_and_equals_bptt_check(argv, capsys):
    assert bptt_check(["-T", "3", "--seed", "4"]) == 0
    expected = capsys.readouterr().out
    assert main(argv) == 0
    assert capsys.readouterr().out == expected


def test_help_lists_every_subcommand(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert f"  {name}" in out


def test_unknown_subcommand_is_a_usage_error(capsys):
    assert main(["explian"]) == 2
    assert "unknown subcommand 'explian'" in capsys.readouterr().err


def test_a_missing_extra_names_the_extra_and_exits_3(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)          # `import tqdm` now raises ImportError
    assert main(["sweep", "-n", "1"]) == EXIT_MISSING_EXTRA
    err = capsys.readouterr().err
    assert "bptt sweep: bptt sweep's progress bar needs tqdm, which is not installed" in err
    assert "pip install -c constraints.txt -e '.[progress]'" in err
