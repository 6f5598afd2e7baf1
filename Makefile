# Every target creates .venv if it is missing and installs what it needs.
# Thread settings: BLAS and Numba run single-threaded in tests and benchmarks unless stated.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
CONSTRAINTS := requirements/constraints.txt
PIP    := $(PY) -m pip install --disable-pip-version-check -q -c $(CONSTRAINTS)
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
export MPLBACKEND ?= Agg
# scikit-learn's array-API estimator checks need SciPy's array-API mode at import time.
export SCIPY_ARRAY_API ?= 1
PYTEST_WORKERS ?= 2

.PHONY: help venv install demo test test-all lint format docs bench gpu clean

help:
	@echo "make demo      run the flagship example (creates .venv on first use)"
	@echo "make test      lint + the test suite (unit, oracles, doctests, estimator checks, examples)"
	@echo "make test-all  test + slow paper reproductions + wheel/sdist build check"
	@echo "make lint      ruff (lint + format check) and mypy"
	@echo "make docs      sphinx HTML with warnings as errors, gallery executed"
	@echo "make bench     every benchmarks/bench_*.py, markdown tables"
	@echo "make gpu       the GPU suite (skips cleanly without a CUDA device)"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q --upgrade "pip>=23"

# The stamp depends on the files that define the environment, so edits reinstall.
$(VENV)/.stamp-%: pyproject.toml $(CONSTRAINTS) | $(PY)
	$(PIP) -e ".[$*]"
	@touch $@

install: $(VENV)/.stamp-test,torch,examples

demo: $(VENV)/.stamp-test,torch,examples
	$(PY) examples/irs_mimo/plot_channel_estimation.py --demo

lint: $(VENV)/.stamp-test,torch,examples
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

format: $(VENV)/.stamp-test,torch,examples
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

test: lint
	$(PY) -m pytest -n $(PYTEST_WORKERS) -m "not slow and not gpu" --timeout=900 --durations=25

test-all: lint
	$(PY) -m pytest -n $(PYTEST_WORKERS) -m "not gpu" --timeout=7200
	$(PY) tools/check_build.py

docs: $(VENV)/.stamp-docs,torch,examples
	$(VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html

bench: $(VENV)/.stamp-bench,test,torch,examples
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

# On a machine whose own python already has CUDA torch and CuPy (and no network), skip the
# venv: `make gpu GPU_PYTHON=python3` (see gpu/README.md).
ifdef GPU_PYTHON
gpu:
	PYTHONPATH=$(CURDIR):$$PYTHONPATH $(GPU_PYTHON) gpu/run.py
else
gpu: $(VENV)/.stamp-test,torch,examples
	$(PY) gpu/run.py
endif

clean:
	rm -rf docs/_build docs/auto_examples docs/generated .pytest_cache build dist
