# stylex: `make run` stylizes the bundled samples with the main experiment; `make test` runs the tests.
# Both create the virtual environment (.venv) on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXPERIMENT ?= gallery_lcm
ARGS ?=

.PHONY: run test test-fast setup clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "torch==2.13.*"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

run: setup
	$(PY) -m stylex.run experiment=$(EXPERIMENT) $(ARGS)

test: setup
	$(PY) -m pytest -q -n 2 --dist loadfile $(ARGS)

test-fast: setup
	$(PY) -m pytest -q -m "not slow" $(ARGS)

clean:
	rm -rf outputs multirun .pytest_cache
