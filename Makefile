# vhc-watch: the two commands a newcomer needs are `make up` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: up test lint typecheck unit integration deps native services-fetch compose-check clean help

help:
	@echo "make up      - run the whole system locally (Kafka, Redis, worker, API, simulated traffic)"
	@echo "make test    - lint, type-check and run the whole test suite (starts its own services)"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

deps: $(STAMP) native services-fetch

# The detectors and the batch body compiled with mypyc (README "Compiled"); a no-op when
# the build matches the sources.
native: $(STAMP)
	$(PY) -m deploy.compile

services-fetch: $(STAMP)
	$(PY) -m deploy.localsvc fetch >/dev/null

up: deps
	$(PY) -m deploy.up

lint: $(STAMP)
	$(VENV)/bin/ruff check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP) native
	$(PY) -m pytest -q tests/unit tests/streams

integration: deps
	$(PY) -m pytest -q tests/integration

test: deps lint typecheck
	$(PY) -m pytest -q -ra

compose-check:
	docker-compose -f docker-compose.yml config -q

clean:
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache
