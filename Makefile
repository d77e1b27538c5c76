# make demo: set up, then the whole job end to end on the built-in synthetic corpus.
# make test: set up, then the test suite. Both are idempotent.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# torch is pinned first: 2.13.0 is the CPU build this machine ships (an unpinned torch would
# pull several GB of CUDA packages); the package's own requirement (torch>=2.2) is then met.
TORCH ?= torch==2.13.0
DEMO := demo-output

.PHONY: setup test demo bench-ingest bench-defences clean

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

test: setup
	$(PY) -m pytest -q

demo: setup
	$(PY) -m ocr_robust.demo --out $(DEMO)

bench-ingest: setup
	$(PY) benchmarks/bench_ingest.py

# the training modes compared; needs the demo's data and run (make demo first)
bench-defences: setup
	$(PY) benchmarks/bench_defences.py

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
