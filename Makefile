# Set-up is part of every target: `make test` / `make demo` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch/torchvision are pinned to the releases this project is tested with (they install from
# the local wheel cache on the dev machines).
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed

.PHONY: venv test demo bench clean

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip setuptools wheel
	$(PIP) install --quiet $(TORCH_PINS)
	$(PIP) install --quiet -e '.[test]'
	touch $(STAMP)

# two pytest workers of one torch thread each: 10.0 min for the suite on a 2-core AMD EPYC, where
# one process of two threads took 13.4 (most tests are Python-bound: building models, tracing)
test: $(STAMP)
	ZOO_TEST_THREADS=1 $(PY) -m pytest -q -n 2

demo: $(STAMP)
	$(VENV)/bin/zoo demo

bench: $(STAMP)
	$(PIP) install --quiet -e '.[bench]'

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
