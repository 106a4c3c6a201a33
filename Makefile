# One command each: `make study` (set up, then run the default study) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export NM_DISABLE_ANALYTICS := 1

.PHONY: study smoke test test-fast dry-run setup

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

setup: $(VENV)/.installed

study: $(VENV)/.installed        ## the tiny study end to end (pass options with ARGS="...")
	$(PY) -m orchestrator.sweep $(ARGS)

smoke: $(VENV)/.installed        ## a minimal study in about two minutes
	$(PY) -m orchestrator.sweep --smoke-test $(ARGS)

dry-run: $(VENV)/.installed
	$(PY) -m orchestrator.sweep --study paper --dry-run

test: $(VENV)/.installed         ## every test, slow end-to-end ones included
	$(PY) -m pytest -q $(ARGS)

test-fast: $(VENV)/.installed    ## skip the tests that start Ray or run a sweep
	$(PY) -m pytest -q -m "not slow" $(ARGS)
