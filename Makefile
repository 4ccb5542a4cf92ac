# Set-up is part of every target: the first run makes .venv and installs the
# project with the tested versions in constraints.txt; later runs reuse it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# A second venv without torch: manual_bptt and the tests that need no torch must pass there.
NUMPY_VENV := .venv-numpy
NUMPY_STAMP := $(NUMPY_VENV)/.installed

.PHONY: check test lint test-numpy test-thorough bench mutate figures clean

## check: the main job, a cross-check of the manual gradients against autograd
check: $(STAMP)
	$(BIN)/bptt-check

## test: the linter, the torch-free tests in a venv without torch, then the whole property suite (CI profile)
## on two pytest-xdist workers (measured on 2 cores: 71-77 s against 98 s in one process)
test: lint test-numpy
	$(BIN)/python -m pytest --hypothesis-profile=ci -n 2

## lint: ruff's pyflakes and pycodestyle rules (settings in pyproject.toml)
lint: $(STAMP)
	$(BIN)/ruff check .

## test-numpy: the suite in a venv that has NumPy, pytest and hypothesis but no torch; tests that need torch skip
test-numpy: $(NUMPY_STAMP)
	$(NUMPY_VENV)/bin/python -m pytest --hypothesis-profile=ci -q -p no:cacheprovider

## test-thorough: the same suite with thousands of examples per property
test-thorough: $(STAMP)
	$(BIN)/python -m pytest --hypothesis-profile=thorough

## bench: manual BPTT vs torch.autograd and JAX: the RNN sizes, then networks and cells (docs/performance.md)
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[bench]'
	$(BIN)/python benchmarks/bench_rnn.py
	$(BIN)/python benchmarks/bench_networks.py

## mutate: mutation testing of manual_bptt with mutmut (6 188 mutants: about two hours at the rate of the cells' run, 817 in 16 minutes; docs/testing.md)
mutate: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[mutation]'
	rm -rf mutants
	$(BIN)/mutmut run; status=$$?; $(BIN)/mutmut results; exit $$status

## figures: the README's gallery (docs/figures/) and the notebook's stored outputs, regenerated (25 s of CPU time)
figures: $(STAMP)
	$(BIN)/bptt explain --forget-bias 2 --out docs/figures/explain.png --dpi 64
	$(BIN)/bptt train --steps 2000 --out docs/figures/train.png --no-progress
	$(BIN)/python examples/execute.py

## notebook: open the tour (examples/tour.ipynb) in JupyterLab; Ctrl-C stops it
.PHONY: notebook
notebook: $(STAMP)
	$(BIN)/jupyter lab examples/tour.ipynb

## hostile: the hostile sweep: about a thousand hostile calls on every public surface, each with its expectation; counts by surface and every BAD call (a few minutes; scripts/hostile_sweep.py --help)
.PHONY: hostile
hostile: $(STAMP)
	$(BIN)/python scripts/hostile_sweep.py

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,lint,plot,progress,notebook]'
	touch $(STAMP)

$(NUMPY_STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(NUMPY_VENV)
	$(NUMPY_VENV)/bin/python -m pip install --quiet -c constraints.txt -e '.[test-numpy]'
	touch $(NUMPY_STAMP)

clean:
	rm -rf $(VENV) $(NUMPY_VENV) .hypothesis .pytest_cache *.egg-info mutants
