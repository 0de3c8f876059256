# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip --disable-pip-version-check

# Exact versions come from the lock files (`make lock` regenerates them from pyproject.toml);
# the package itself is installed on top with --no-deps. `pip check` fails when a lock file
# no longer satisfies pyproject.toml (run `make lock`). Each stamp depends on its lock file,
# so a changed lock reinstalls.
RUNTIME_LOCK := requirements/runtime.txt
DEV_LOCK := requirements/dev.txt
STAMP := $(VENV)/.installed-runtime
DEV_STAMP := $(VENV)/.installed-dev
PIP_TOOLS := pip-tools==7.6.2
LOCK_FLAGS ?=
PIP_COMPILE := CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --strip-extras \
	--no-emit-index-url --no-emit-find-links $(LOCK_FLAGS)

# The client generator of the contract test (tests/contract/) in a virtualenv of its own:
# openapi-python-client caps httpx below the version the service pins, so it cannot share
# .venv. Pinned by its own lock, compiled from requirements/codegen.in by `make lock`.
CODEGEN_VENV ?= .venv-codegen
CODEGEN_IN := requirements/codegen.in
CODEGEN_LOCK := requirements/codegen.txt
CODEGEN_STAMP := $(CODEGEN_VENV)/.installed-codegen

# The reference agent's client (examples/reference_agent/): generated from openapi.json with
# the contract test's generator and settings, never committed (.gitignore).
AGENT_CLIENT ?= examples/reference_agent/session_service_client

WEB := tests/web
WEB_STAMP := $(WEB)/node_modules/.installed

.PHONY: install run test lint format openapi bench clean packages lock coverage agent-client

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# `make run`: the runtime dependencies only.
$(STAMP): $(RUNTIME_LOCK) pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -r $(RUNTIME_LOCK)
	$(PIP) install --quiet --no-deps -e .
	$(PIP) check
	touch $@

# tests, linters, benchmark: runtime + the `dev` extra.
$(DEV_STAMP): $(DEV_LOCK) pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -r $(DEV_LOCK)
	$(PIP) install --quiet --no-deps -e .
	$(PIP) check
	touch $@

$(CODEGEN_VENV)/bin/python:
	$(PYTHON) -m venv $(CODEGEN_VENV)

$(CODEGEN_STAMP): $(CODEGEN_LOCK) | $(CODEGEN_VENV)/bin/python
	$(CODEGEN_VENV)/bin/pip --disable-pip-version-check install --quiet -r $(CODEGEN_LOCK)
	$(CODEGEN_VENV)/bin/pip --disable-pip-version-check check
	touch $@

install: $(DEV_STAMP) $(CODEGEN_STAMP)

# Regenerate the lock files from pyproject.toml, keeping every pin that still fits.
# Upgrade on purpose with: make lock LOCK_FLAGS=--upgrade (or LOCK_FLAGS='--upgrade-package X').
lock: | $(BIN)/python
	$(PIP) install --quiet '$(PIP_TOOLS)'
	$(PIP_COMPILE) --output-file $(RUNTIME_LOCK) pyproject.toml
	$(PIP_COMPILE) --extra dev --constraint $(RUNTIME_LOCK) --output-file $(DEV_LOCK) pyproject.toml
	$(PIP_COMPILE) --output-file $(CODEGEN_LOCK) $(CODEGEN_IN)

run: $(STAMP) ## serve on 127.0.0.1:8000 with SQLite and local storage under ./var
	$(BIN)/session-service serve

# TypeScript (for the module's declarations), the TypeScript client generator with its fetch
# client (for the contract test), React, esbuild and axe-core (for the browser tests) from the
# npm registry, pinned by the lock file. Without npm the tests that need them skip.
$(WEB_STAMP): $(WEB)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix $(WEB) --no-audit --no-fund --silent && touch $(WEB_STAMP); \
	else \
	  echo "npm not found: the browser module's unit, type and generated-client tests will skip" \
	    "(install Node.js 20+ with npm: apt-get install nodejs npm, or brew install node)"; \
	fi

# System packages the suite drives for real: Chromium (never a downloaded browser build),
# PgBouncer, HAProxy and Redis Sentinel. Installed when missing and running as root (as on the
# build machines, Debian or Ubuntu); otherwise named with the command that installs them, and
# the tests that need them skip (CI requires them: REQUIRE_BROWSER and friends).
DEBIAN_PACKAGES := chromium pgbouncer haproxy redis-sentinel
AS_ROOT ?= $(shell [ "$$(id -u)" = 0 ] && echo 1 || echo 0)

packages: ## Debian's chromium, pgbouncer, haproxy and redis-sentinel for the tests, when missing
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	missing=$$(echo $$missing); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$(AS_ROOT)" = 1 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else \
	  echo "not installed: $$missing; their tests will skip. Install them with:"; \
	  echo "  sudo apt-get install -y $$missing"; \
	  echo "  (macOS: brew install pgbouncer haproxy redis and brew install --cask chromium)"; \
	fi

test: $(DEV_STAMP) $(CODEGEN_STAMP) $(WEB_STAMP) packages ## the whole suite (PostgreSQL part skipped if unreachable unless REQUIRE_POSTGRES=1)
	$(BIN)/pytest

coverage: $(DEV_STAMP) $(CODEGEN_STAMP) $(WEB_STAMP) packages ## the whole suite with line coverage of src (slower than `make test`)
	$(BIN)/pytest --cov --cov-report=term-missing:skip-covered

lint: $(DEV_STAMP) ## ruff (lint + format check) and mypy --strict
	$(BIN)/ruff check src tests alembic bench examples
	$(BIN)/ruff format --check src tests alembic bench examples
	$(BIN)/mypy

format: $(DEV_STAMP)
	$(BIN)/ruff format src tests alembic bench examples
	$(BIN)/ruff check --fix src tests alembic bench examples

openapi: $(STAMP) ## regenerate the committed openapi.json
	$(BIN)/session-service openapi --output openapi.json

# Its post-generation hook runs ruff from the same virtualenv.
agent-client: $(CODEGEN_STAMP) ## generate the reference agent's client from openapi.json
	PATH="$(abspath $(CODEGEN_VENV))/bin:$$PATH" $(CODEGEN_VENV)/bin/openapi-python-client generate \
	  --path openapi.json --config tests/contract/openapi-python-client.yaml --meta none \
	  --overwrite --output-path $(AGENT_CLIENT)

bench: $(DEV_STAMP) ## wrk against one worker on PostgreSQL with 100,000 sessions
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(CODEGEN_VENV) var .pytest_cache .mypy_cache .ruff_cache $(WEB)/node_modules $(WEB)/artifacts \
	  $(AGENT_CLIENT)
