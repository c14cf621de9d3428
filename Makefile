# keyscope: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
export SOLCX_BINARY_PATH := $(CURDIR)/.cache/solcx
export APE_DATA_FOLDER := $(CURDIR)/.cache/ape
VENV := .venv/bin
# Python's bytecode caches stay on even where the environment turns them off: the suite starts about a hundred
# Python processes (the `ape run` scripts, workers, the command line), and each would compile keyscope again.
unexport PYTHONDONTWRITEBYTECODE
# `make test` runs the suite on JOBS processes (pytest-xdist), each test file whole on one of them, so that a
# file's chain, stack and databases are set up once; JOBS=0 runs it in this process. One process more than the
# machine has cores (at most 8): the end-to-end tests spend part of their time waiting for a node, a bundler, a
# lease or the clock, and the extra process runs other tests meanwhile.
JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); echo $$(( n < 8 ? n + 1 : 8 )))

.PHONY: setup demo test screenshots bench gas-snapshot lint slither clean

setup:
	@tools/setup.sh

demo: setup
	@$(VENV)/python -m keyscope.demo

test: setup
	@tools/ensure-postgres.sh
	@tools/ensure-chromium.sh
	@$(VENV)/ape test -n $(JOBS) --dist loadfile $(ARGS)

# the consent page and the dashboard as the browser test sees them, written to docs/images
screenshots: setup
	@tools/ensure-chromium.sh
	@KEYSCOPE_SCREENSHOTS=$(CURDIR)/docs/images $(VENV)/ape test tests/e2e/test_browser.py -q -k real_browser

# rewrite benchmarks/gas_snapshot.json after a deliberate gas change (tests/test_gas_snapshot.py checks it)
gas-snapshot: setup
	@KEYSCOPE_UPDATE_GAS_SNAPSHOT=1 $(VENV)/ape test tests/test_gas_snapshot.py -q

bench: setup
	@$(VENV)/python benchmarks/run.py $(ARGS)

lint: setup
	@$(VENV)/ruff check src tests scripts benchmarks
	@$(VENV)/ruff format --check src tests scripts benchmarks tools
	@$(VENV)/mypy

slither: setup
	@$(VENV)/python tools/slither.py

clean:
	rm -rf .build .cache contracts/.cache .pytest_cache .mypy_cache .hypothesis
