# One command each: `make study` (set up, then run the default study) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export NM_DISABLE_ANALYTICS := 1

# Every package with its version and hashes: made from pyproject.toml by `make lock`.
LOCK := requirements.lock
# How the lock is compiled (the nodes' platform: Linux x86_64, Python 3.11); `make lock`
# keeps the lock's pins where pyproject.toml allows them, ARGS=--upgrade takes the newest.
COMPILE = $(PY) -m uv pip compile pyproject.toml --all-extras --generate-hashes \
	--python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	--custom-compile-command "make lock" --quiet

.PHONY: study smoke test test-fast dry-run setup lock lock-check

# From the lock only (--require-hashes: a package without its pinned hash is refused), then
# this project itself without its dependencies (they are all in the lock). uv (the lock's
# own, installed first from its pinned hashes) installs the lock in parallel with bytecode
# compiled, about 40 s on 2 cores against pip's 95 s; pip installs it where uv cannot.
$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q pip==26.3
	sed -n '/^uv==/,/^[^ ]/{/^uv==/p;/^ /p}' $(LOCK) > $(VENV)/uv-requirement.txt
	$(PY) -m pip install -q --require-hashes --no-deps -r $(VENV)/uv-requirement.txt
	$(PY) -m uv pip install -q --python $(PY) --require-hashes --no-deps --compile-bytecode \
		-r $(LOCK) || $(PY) -m pip install -q --require-hashes --no-deps -r $(LOCK)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
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

lock: $(VENV)/.installed         ## rewrite requirements.lock from pyproject.toml
	$(COMPILE) -o $(LOCK) $(ARGS)

lock-check: $(VENV)/.installed   ## fail when requirements.lock does not agree with pyproject.toml
	@tmp=$$(mktemp -d) && cp $(LOCK) $$tmp/$(LOCK) && \
	$(COMPILE) -o $$tmp/$(LOCK) && \
	if diff -u $(LOCK) $$tmp/$(LOCK); then echo "$(LOCK) agrees with pyproject.toml"; \
	else echo "$(LOCK) does not agree with pyproject.toml: run make lock and commit it"; \
	rm -rf $$tmp; exit 1; fi; rm -rf $$tmp
