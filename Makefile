# make demo: set up, then the whole job end to end on the built-in synthetic corpus.
# make test: set up, then the test suite. Both are idempotent.
# make lint: ruff (pycodestyle, pyflakes, isort, pyupgrade, docstrings) and mypy, as pyproject.toml says.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# torch is pinned first: 2.13.0 is the CPU build this machine ships (an unpinned torch would
# pull several GB of CUDA packages); the package's own requirement (torch>=2.2) is then met.
TORCH ?= torch==2.13.0
DEMO := demo-output

# Debian packages (apt, where this runs as root or with sudo; elsewhere a message says what is
# missing and the tests that need them skip): the font library, the typesetting engines
# (pdflatex, LibreOffice headless, WeasyPrint), Tesseract, and the documentation PDFs the
# real-document corpus is made from (benchmarks/corpus: training and test split by document).
FONT_PKGS := fonts-lmodern fonts-texgyre fonts-urw-base35 fonts-liberation fonts-liberation2 \
  fonts-crosextra-carlito fonts-crosextra-caladea fonts-noto-core fonts-noto-mono fonts-freefont-ttf \
  fonts-inconsolata fonts-hack fonts-firacode fonts-ebgaramond fonts-linuxlibertine fonts-cantarell \
  fonts-open-sans fonts-roboto-unhinted fonts-roboto-slab fonts-lato fonts-croscore fonts-dejavu \
  fonts-dejavu-extra fonts-go fonts-inter fonts-jetbrains-mono fonts-anonymous-pro fonts-courier-prime \
  fonts-mononoki fonts-sil-charis fonts-sil-gentiumplus fonts-sil-andika fonts-stix fonts-junicode \
  fonts-paratype fonts-oxygen fonts-b612 fonts-league-mono fonts-comfortaa fonts-quicksand fonts-gfs-didot \
  fonts-goudybookletter
ENGINE_PKGS := texlive-latex-base texlive-latex-recommended texlive-fonts-recommended lmodern \
  libreoffice-writer-nogui weasyprint poppler-utils
ANCHOR_PKGS := tesseract-ocr tesseract-ocr-eng
DOC_PKGS := texlive-latex-recommended-doc texlive-science-doc octave-doc gnuplot-doc
SYSTEM_PKGS := $(FONT_PKGS) $(ENGINE_PKGS) $(ANCHOR_PKGS) $(DOC_PKGS)
SYSTEM_STAMP := $(VENV)/.system-$(shell echo $(SYSTEM_PKGS) | cksum | cut -d' ' -f1)

.PHONY: setup system test lint demo anchors bench-ingest bench-defences bench-generative bench-ddp clean

setup: $(STAMP) system

system: $(SYSTEM_STAMP)

$(SYSTEM_STAMP): | $(STAMP)
	@if dpkg -s $(SYSTEM_PKGS) >/dev/null 2>&1; then touch $@; \
	elif [ "$$(id -u)" = 0 ] || sudo -n true 2>/dev/null; then \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	    $(SYSTEM_PKGS) >/dev/null && touch $@; \
	else echo "make: not root and no sudo: Debian packages not installed (fonts, texlive, LibreOffice," \
	  "WeasyPrint, Tesseract, documentation PDFs); install them with: apt-get install $(SYSTEM_PKGS)" >&2; fi

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

test: setup
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

demo: setup
	$(PY) -m ocr_robust.demo --out $(DEMO)

# the benchmark's anchors: Tesseract 5 (Debian, installed by `system`), PP-OCRv6 small recognition
# (rapidocr 3.10.0, PP-OCRv6_rec_small.onnx inside its wheel; it requires opencv-python-headless) and
# PP-OCRv4 (rapidocr-onnxruntime 1.4.4, whose wheel ships the ONNX models). --no-deps for the latter: its
# opencv-python requirement would clash with the opencv-python-headless we use (both provide cv2).
anchors: setup
	$(PY) -m pip install -q "rapidocr==3.10.0"
	$(PY) -m pip install -q --no-deps "rapidocr-onnxruntime==1.4.4" pyclipper shapely six pillow

bench-ingest: setup
	$(PY) benchmarks/bench_ingest.py

# the training modes compared on real documents; needs data/ft (benchmarks/train_latin_robust.sh builds it)
# and the real-document suite benchmarks/work/real-suite (RESULTS.md, "Real documents")
bench-defences: setup
	$(PY) benchmarks/bench_defences.py

# generative augmentation compared (issue 21): trains the patch GAN on data/ft and SAN on background
# crops of the training documents first, then the rows of benchmarks/bench_generative.py on the
# real-document suite (RESULTS.md, "Generative augmentation")
bench-generative: setup
	[ -f benchmarks/work/patchgan/generator.safetensors ] || $(PY) -m ocr_robust patchgan train \
	  --data data/ft/stores.txt --out benchmarks/work/patchgan --epochs 4 --steps-per-epoch 200 --time-limit 8
	[ -f benchmarks/work/backgrounds/ingest.json ] || $(PY) -m ocr_robust ingest @benchmarks/corpus/train.txt \
	  --out benchmarks/work/backgrounds --max-pages 1 --seed 24 --watermarks train --watermark-fraction 0.85 \
	  --backgrounds 12 --quiet
	[ -f benchmarks/work/san/san.safetensors ] || $(PY) -m ocr_robust san train \
	  --data benchmarks/work/backgrounds --out benchmarks/work/san --epochs 4 --steps-per-epoch 200 --time-limit 8
	$(PY) benchmarks/bench_generative.py --gen benchmarks/work/patchgan --san benchmarks/work/san

# data-parallel training (issue 22): 2 gloo processes against one with the same global batch, on the
# real training documents and the real-document suite that `make demo` writes (RESULTS.md, "Training on
# several processes")
bench-ddp: setup
	[ -d benchmarks/work/ddp/suite ] || [ -d $(DEMO)/suite ] || $(MAKE) demo
	$(PY) benchmarks/bench_ddp.py --seeds 0,1

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
