#!/usr/bin/env bash
# The store tests start throwaway PostgreSQL servers (initdb + pg_ctl). Make sure the server binaries are
# there; install Debian's package when they are missing and we may (root, apt-get available).
set -euo pipefail

have_server() {
  command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1 && return 0
  [ -n "${KEYSCOPE_PG_BINDIR:-}" ] && [ -x "$KEYSCOPE_PG_BINDIR/pg_ctl" ] && return 0
  compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null && return 0
  return 1
}

have_server && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "[setup] installing the PostgreSQL server (apt-get install postgresql) for the store tests"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q postgresql >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q postgresql >/dev/null; }
  have_server && exit 0
fi
echo "[setup] error: the PostgreSQL server (initdb, pg_ctl) is needed by the store tests: install it" \
  "(Debian/Ubuntu: sudo apt-get install postgresql), or set KEYSCOPE_PG_BINDIR to the folder holding them." >&2
exit 1
