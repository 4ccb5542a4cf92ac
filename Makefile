# Set-up is part of every target: the first run makes .venv and installs the
# project with the tested versions in constraints.txt; later runs reuse it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: check test test-thorough bench mutate figures clean

## check: the main job, a cross-check of the manual gradients against autograd
check: $(STAMP)
	$(BIN)/bptt-check

## test: the property suite, in the derandomized CI profile
test: $(STAMP)
	$(BIN)/python -m pytest --hypothesis-profile=ci

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

## figures: the README's gallery, regenerated (docs/figures/; about a minute)
figures: $(STAMP)
	$(BIN)/bptt explain --out docs/figures/explain.png --dpi 64
	$(BIN)/bptt train --steps 2000 --out docs/figures/train.png --no-progress

## hostile: the hostile sweep of issue 18: about a thousand hostile calls on every public surface, each with its expectation; counts by surface and every BAD call (a few minutes; scripts/hostile_sweep.py --help)
.PHONY: hostile
hostile: $(STAMP)
	$(BIN)/python scripts/hostile_sweep.py

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,plot,progress,notebook]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .hypothesis .pytest_cache *.egg-info mutants
