#!/usr/bin/env bash
# Install the project as a user who is not in a clone would have it, and run `bptt train`:
# a wheel built from this tree, in a fresh venv under /tmp with the pinned numpy and torch,
# the command run from another folder. tests/test_install.py checks the same with --no-deps
# in the suite; this is the whole route (about a minute, most of it installing torch).
#
#     bash scripts/check_wheel.sh        # exit 0 when `bptt train --steps 2` ran
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
WORK="$(mktemp -d /tmp/manual-bptt-wheel.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

# Build from a copy: a build writes build/ and *.egg-info beside the sources.
mkdir "$WORK/source"
cp -R "$ROOT/manual_bptt" "$ROOT/torch_reference" "$ROOT/docs" "$ROOT/pyproject.toml" "$ROOT/README.md" "$WORK/source/"
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$WORK/wheels" "$WORK/source"
WHEEL="$(ls "$WORK"/wheels/manual_bptt-*.whl)"

"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install --quiet -c "$ROOT/constraints.txt" "$WHEEL[torch]"

mkdir "$WORK/elsewhere"
cd "$WORK/elsewhere"
"$WORK/venv/bin/bptt" train --steps 2 --no-progress
echo "check_wheel: bptt train ran from $WHEEL, installed in a fresh venv"
