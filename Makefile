# Tandem: `make run` sets up and runs the whole stack; `make test` sets up and runs the suite.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
SERVICES := $(wildcard services/*)
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast lint bench lock clean

$(STAMP): requirements.lock shared/pyproject.toml $(wildcard services/*/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install -q --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e shared $(addprefix -e ,$(SERVICES))
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/tandem dev

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check shared services tests
	$(BIN)/lint-imports

bench: install
	$(BIN)/python -m bench

lock:
	$(BIN)/uv pip compile requirements.in -o requirements.lock --python-version 3.11

clean:
	rm -rf $(VENV) var
