# Mailroom: `make run` for the demo, `make test` for the whole suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.12 2>/dev/null || echo python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
PORT ?= 8000

# `make test` runs against this machine's real PostgreSQL and Redis.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/mailroom
TEST_REDIS_URL ?= redis://127.0.0.1:6379/1
TEST_BROKER_URL ?= redis://127.0.0.1:6379/2
PYTEST_ARGS ?=
BENCH ?=

.PHONY: help setup run test lint format bench key services chromium clean

help:
	@echo "make run    set up, migrate, seed the demo and start web + worker + beat"
	@echo "make test   set up and run lint and the whole test suite"
	@echo "make lint   ruff and mypy only"
	@echo "make bench  run the benchmarks (BENCH=word to pick some)"
	@echo "make key    print a new encryption key for MAILROOM_ENCRYPTION_KEYS"

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

# Front-end packages (Chart.js) from npm, served from our own static files.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $(NODE_STAMP)

setup: $(STAMP) $(NODE_STAMP)

# The demo servers reach the built-in sandbox on the port the web process serves.
run: export SANDBOX_BASE_URL ?= http://localhost:$(PORT)/sandbox
run: $(STAMP) $(NODE_STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	@echo
	@echo "  Mailroom is starting at http://localhost:$(PORT)/  (Ctrl-C stops web, worker and beat)"
	@echo
	PORT=$(PORT) $(BIN)/honcho start -f Procfile

services:
	@scripts/ensure-services.sh

chromium:
	@scripts/ensure-chromium.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: $(STAMP) $(NODE_STAMP) services chromium lint
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) \
	  DEBUG=true $(BIN)/python manage.py check --fail-level WARNING
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) \
	  $(BIN)/pytest $(PYTEST_ARGS)

bench: $(STAMP) $(NODE_STAMP) services
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) \
	  $(BIN)/python bench/run.py $(BENCH)

key: $(STAMP)
	@$(BIN)/python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"

clean:
	rm -rf var/celery var/staticfiles .pytest_cache .mypy_cache .ruff_cache
