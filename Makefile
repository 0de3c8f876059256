# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

WEB := tests/web
WEB_STAMP := $(WEB)/node_modules/.installed

.PHONY: install run test lint format openapi bench clean browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP) ## serve on 127.0.0.1:8000 with SQLite and local storage under ./var
	$(BIN)/session-service serve

# TypeScript (for the module's declarations) from the npm registry, pinned by the lock file.
$(WEB_STAMP): $(WEB)/package-lock.json
	npm ci --prefix $(WEB) --no-audit --no-fund --silent
	touch $(WEB_STAMP)

browser: ## Debian's Chromium for the end-to-end test (never a downloaded browser build)
	@command -v chromium >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: $(STAMP) $(WEB_STAMP) browser ## the whole suite (PostgreSQL part skipped if unreachable unless REQUIRE_POSTGRES=1)
	$(BIN)/pytest

lint: $(STAMP) ## ruff (lint + format check) and mypy --strict
	$(BIN)/ruff check src tests alembic bench
	$(BIN)/ruff format --check src tests alembic bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests alembic bench
	$(BIN)/ruff check --fix src tests alembic bench

openapi: $(STAMP) ## regenerate the committed openapi.json
	$(BIN)/session-service openapi --output openapi.json

bench: $(STAMP) ## wrk against one worker on PostgreSQL with 100,000 sessions
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache $(WEB)/node_modules $(WEB)/artifacts
