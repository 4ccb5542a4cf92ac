"""The package as a wheel installs it, not as the source tree: `bptt train` must find its text.

The wheel is built from a copy of the sources (the build writes build/ and *.egg-info beside
them) and installed with --no-deps into a folder of its own, which is put first on the path
of this venv's Python (which has numpy and torch); the command runs from another folder, so
nothing of the source tree can be read by accident. scripts/check_wheel.sh does the same in a
fresh venv with the pinned dependencies.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parent.parent
# What a build reads: the packages, the project's metadata and its README, and the docs
# (the packaged corpus is docs/derivation.md).
SOURCES = ("manual_bptt", "torch_reference", "docs", "pyproject.toml", "README.md")
# Building and installing a wheel without build isolation takes a few seconds; a cold start of
# torch in the subprocess about two more.
TIMEOUT_S = 300


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(ROOT / name, source / name)
    wheels = tmp_path_factory.mktemp("wheels")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(wheels), str(source)], check=True, timeout=TIMEOUT_S)
    (built,) = wheels.glob("manual_bptt-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                    str(wheel)], check=True, timeout=TIMEOUT_S)
    return target


def test_the_wheel_holds_the_derivation_as_its_corpus(wheel):
    with zipfile.ZipFile(wheel) as archive:
        packaged = archive.read("manual_bptt/tools/derivation.md")
    assert packaged == (ROOT / "docs" / "derivation.md").read_bytes()


def test_bptt_train_runs_from_a_non_editable_install(installed, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(installed), "MPLBACKEND": "Agg"}
    where = subprocess.run([sys.executable, "-c", "import torch_reference, manual_bptt; "
                            "print(torch_reference.__file__); print(manual_bptt.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert all(Path(line).is_relative_to(installed) for line in where.stdout.split()), where.stdout + where.stderr
    run = subprocess.run([str(installed / "bin" / "bptt"), "train", "--steps", "2", "--no-progress"],  # the wheel's own script
                         cwd=elsewhere, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"text: {installed}" in run.stdout                   # the packaged text, not the source tree's
