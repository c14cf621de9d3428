#!/usr/bin/env bash
# Set up everything keyscope needs, from the package registries only, and compile the contracts.
#
#   - .venv/           Python virtual environment with keyscope and its pinned dependencies
#   - node_modules/    solcjs, anvil, the Alto bundler, OpenZeppelin, the EntryPoint v0.7 and v0.8 artefacts
#   - .cache/solcx/    a `solc-v0.8.28` command for py-solc-x / ape-solidity that runs solcjs
#   - .build/          compiled contracts (ape compile)
#
# Idempotent: each step is skipped when what it would install is already there and unchanged.
# Usage: tools/setup.sh [--quiet]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

SOLC_VERSION="0.8.28"
quiet="${1:-}"

say() { [ "$quiet" = "--quiet" ] || printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }
fail() { printf '\033[1;31m[setup] error:\033[0m %s\n' "$*" >&2; exit 1; }

hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -d' ' -f1; }

# --- tools the machine must already have -------------------------------------------------------
PYTHON="${PYTHON:-python3}"
# 3.11: the pinned dependencies of requirements.lock (SQLAlchemy 2.1, hypothesis...) need it; the keyscope package
# itself also runs on 3.10, with the versions pip picks there
command -v "$PYTHON" >/dev/null || fail "python3 not found: install Python 3.11 or newer (e.g. apt-get install python3 python3-venv)."
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || fail "Python 3.11 or newer is needed for the pinned dependencies (requirements.lock), found $("$PYTHON" --version 2>&1): install it and run PYTHON=python3.11 make demo (or make test)."
command -v node >/dev/null || fail "node not found: install Node.js 18 or newer (e.g. apt-get install nodejs npm)."
node -e 'process.exit(parseInt(process.versions.node) >= 18 ? 0 : 1)' \
  || fail "Node.js 18 or newer is needed, found $(node --version)."
command -v npm >/dev/null || fail "npm not found: install npm (e.g. apt-get install npm)."

# --- npm tools and Solidity dependencies, installed while pip works (neither needs the other) ------
npm_stamp="$(hash_of package.json package-lock.json)"
npm_pid=""
if [ "$(cat node_modules/.keyscope-stamp 2>/dev/null)" != "$npm_stamp" ]; then
  say "installing npm packages (pinned in package-lock.json)"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null &
  npm_pid=$!
  trap 'kill "$npm_pid" 2>/dev/null || true' EXIT # a failed step below stops npm too
fi

# --- Python virtual environment --------------------------------------------------------------------
py_stamp="$(hash_of pyproject.toml requirements.lock)"
if [ -x .venv/bin/python ] && ! .venv/bin/python -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  say "the virtual environment in .venv has $(.venv/bin/python --version 2>&1): making it again with $("$PYTHON" --version 2>&1)"
  rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
  say "creating the virtual environment in .venv"
  "$PYTHON" -m venv .venv || fail "could not create .venv: install the venv module (e.g. apt-get install python3-venv)."
fi
if [ "$(cat .venv/.keyscope-stamp 2>/dev/null)" != "$py_stamp" ]; then
  say "installing Python dependencies (pinned in requirements.lock)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e ".[dev]" \
    || fail "pip install failed: check that PyPI is reachable, then run tools/setup.sh again."
  echo "$py_stamp" > .venv/.keyscope-stamp
fi

if [ -n "$npm_pid" ]; then
  wait "$npm_pid" || fail "npm ci failed: check that the npm registry is reachable, then run tools/setup.sh again."
  trap - EXIT
  echo "$npm_stamp" > node_modules/.keyscope-stamp
fi

# --- solc command for py-solc-x, backed by solcjs -----------------------------------------------
solcx_dir="$root/.cache/solcx"
mkdir -p "$solcx_dir"
shim="$solcx_dir/solc-v$SOLC_VERSION"
shim_text="#!/bin/sh
exec node \"$root/tools/solc-shim.js\" \"\$@\""
if [ "$(cat "$shim" 2>/dev/null)" != "$shim_text" ]; then
  say "installing the solc $SOLC_VERSION command (solcjs) in .cache/solcx"
  printf '%s\n' "$shim_text" > "$shim"
  chmod +x "$shim"
fi

# Commands run through `make` get these from the Makefile; an activated .venv gets them from here.
if ! grep -q "keyscope-env" .venv/bin/activate; then
  cat >> .venv/bin/activate <<ACTIVATE
# keyscope-env: where ape finds the solcjs-backed compiler and keeps its packages
export SOLCX_BINARY_PATH="$solcx_dir"
export APE_DATA_FOLDER="$root/.cache/ape"
ACTIVATE
fi
export SOLCX_BINARY_PATH="$solcx_dir"
export APE_DATA_FOLDER="$root/.cache/ape"

# --- compile -------------------------------------------------------------------------------------
# ape recompiles only the files that changed, not the files importing them: when any source or setting
# changed, rebuild everything so that no contract embeds a stale copy of another.
src_stamp="$(find contracts -name '*.sol' -not -path '*/.cache/*' -print0 | sort -z | xargs -0 cat ape-config.yaml | sha256sum | cut -d' ' -f1)"
force=""
[ "$(cat .build/.keyscope-stamp 2>/dev/null)" = "$src_stamp" ] || force="--force"
say "compiling contracts"
.venv/bin/ape compile $force >.cache/compile.log 2>&1 || { grep -E "Error|error|-->|^ *[0-9]* \|" .cache/compile.log >&2; fail "ape compile failed (full log: .cache/compile.log)."; }
echo "$src_stamp" > .build/.keyscope-stamp
# ape copies the dependencies it compiled against into contracts/.cache; it lists a project's sources from
# the first 500 files under contracts/, so hundreds of copied OpenZeppelin files can hide our own contracts.
rm -rf contracts/.cache
.venv/bin/python tools/export_artifacts.py || fail "could not export the contract artefacts."

# --- third-party accounts (Kernel v3.1, Nexus 1.0, Safe7579) for the end-to-end tests ------------------
# Their creation bytecode comes from the npm package @rhinestone/modulekit (GPL-3.0): downloaded with
# `npm pack` into .cache/accounts and never committed. Skipped when already done.
.venv/bin/python tools/fetch_account_bytecode.py $quiet \
  || fail "could not fetch the Kernel/Nexus/Safe7579 bytecode (tools/fetch_account_bytecode.py): see the error above."
say "ready"
