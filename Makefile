# keyscope: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
export SOLCX_BINARY_PATH := $(CURDIR)/.cache/solcx
export APE_DATA_FOLDER := $(CURDIR)/.cache/ape
VENV := .venv/bin

.PHONY: setup demo test bench lint slither clean

setup:
	@tools/setup.sh

demo: setup
	@$(VENV)/python -m keyscope.demo

test: setup
	@tools/ensure-postgres.sh
	@$(VENV)/ape test $(ARGS)

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
