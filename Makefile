# Tandem: `make run` sets up and runs the whole stack; `make test` sets up and runs the suite.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
SERVICES := $(wildcard services/*)
#: The runtime library, the CLI and the test support, beside the services.
PACKAGES := shared cli testing $(SERVICES)
STAMP := $(VENV)/.installed

.PHONY: install browser wrk oidc-provider run test apifuzz scaleout faults lint bench lock clean

$(STAMP): requirements.lock $(addsuffix /pyproject.toml,$(PACKAGES))
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps $(addprefix -e ,$(PACKAGES))
	touch $(STAMP)

install: $(STAMP)

# The dashboard's browser test drives Debian's Chromium; install it when it is missing.
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; fi; }

# The benchmarks' load generator is Debian's wrk (a Python client cannot outpace the bare
# endpoint); install it when it is missing.
wrk:
	@test -x /usr/bin/wrk || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; fi; }

# The tests' OIDC provider: npm's oidc-provider run by Node, pinned in its package-lock.json.
OIDC_PROVIDER := testing/oidc-provider
oidc-provider: $(OIDC_PROVIDER)/node_modules/.package-lock.json

$(OIDC_PROVIDER)/node_modules/.package-lock.json: $(OIDC_PROVIDER)/package-lock.json
	npm ci --prefix $(OIDC_PROVIDER) --no-audit --no-fund --loglevel=error

run: install
	$(BIN)/tandem dev

# Two workers (this machine has two cores); each test module stays on one worker with its
# module-scoped stacks, and each worker has its own embedded broker.
test: install browser oidc-provider
	$(BIN)/python -m pytest -n 2 --dist loadscope

# Schemathesis over every service's OpenAPI document: every check, all phases (stateful too).
apifuzz: install
	$(BIN)/python -m pytest tests/apifuzz -q -rA -n 2

# Two instances of each service on shared PostgreSQL: relay takeover, partition split, same end state.
scaleout: install
	$(BIN)/python -m pytest tests/scaleout -q -rA

# Fault drills over real processes: broker frozen, SIGKILLs, PostgreSQL restart, poison.
faults: install
	$(BIN)/python -m pytest tests/faults -q -rA

lint: install
	$(BIN)/ruff check shared cli testing services tests
	$(BIN)/lint-imports

bench: install wrk
	$(BIN)/python -m bench

lock:
	$(BIN)/uv pip compile requirements.in -o requirements.lock --python-version 3.11

clean:
	rm -rf $(VENV) var
