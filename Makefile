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

.PHONY: setup test demo anchors bench-ingest bench-defences clean

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

# the benchmark's anchors: Tesseract 5 (Debian) and PP-OCRv4 recognition (rapidocr-onnxruntime, whose
# wheel ships the ONNX models). --no-deps: its opencv-python requirement would clash with the
# opencv-python-headless we use (both provide cv2); its other requirements are listed here.
anchors: setup
	command -v tesseract >/dev/null && tesseract --list-langs 2>/dev/null | grep -qx eng || \
	  { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); $$SUDO apt-get update -qq && \
	    $$SUDO apt-get install -y -qq tesseract-ocr tesseract-ocr-eng; }
	$(PY) -m pip install -q --no-deps "rapidocr-onnxruntime==1.4.4" pyclipper shapely six pillow

bench-ingest: setup
	$(PY) benchmarks/bench_ingest.py

# the training modes compared; needs the demo's data and run (make demo first)
bench-defences: setup
	$(PY) benchmarks/bench_defences.py

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
