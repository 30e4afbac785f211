# Set-up is part of every target: `make test` / `make demo` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch/torchvision are pinned to the releases this project is tested with (they install from
# the local wheel cache on the dev machines).
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
# MMAction2's own model code for the parity tests (tests/test_mmaction2.py), without its
# dependencies (decord, an mmcv pin that today's torch breaks): the pure-Python parts it imports.
MMACTION2 := mmaction2==1.2.0 mmengine==0.10.7 mmcv-lite==2.1.0 opencv-contrib-python-headless addict==2.4.0 \
	yapf==0.43.0 platformdirs rich markdown-it-py mdurl importlib_metadata zipp lazy_importer==0.1.0 einops
STAMP := $(VENV)/.installed

.PHONY: venv test demo docs bench clean

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip setuptools wheel
	$(PIP) install --quiet $(TORCH_PINS)
	$(PIP) install --quiet -e '.[test,deploy,tensorboard,score,ray,docs]'
	$(PIP) install --quiet --no-deps $(MMACTION2)
	touch $(STAMP)

# two pytest workers of one torch thread each: 10.0 min for the suite on a 2-core AMD EPYC, where
# one process of two threads took 13.4 (most tests are Python-bound: building models, tracing)
test: $(STAMP)
	ZOO_TEST_THREADS=1 $(PY) -m pytest -q -n 2

demo: $(STAMP)
	$(VENV)/bin/zoo demo

# the documentation site into site/ (--strict: a broken link, a missing page or a docstring warning fails)
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

bench: $(STAMP)
	$(PIP) install --quiet -e '.[bench]'

clean:
	rm -rf $(VENV) build site *.egg-info .pytest_cache
