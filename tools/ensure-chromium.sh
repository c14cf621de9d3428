#!/usr/bin/env bash
# The browser tests (tests/e2e/test_browser.py) drive Debian's Chromium through playwright (pinned in
# requirements.lock; its own browser download is never used). Make sure Chromium is there: install Debian's
# packages when it is missing and we may (root, apt-get available). Elsewhere the browser tests skip and say why,
# except under CI (CI=true), where a missing browser is an error.
set -euo pipefail

have_browser() {
  [ -n "${KEYSCOPE_CHROMIUM:-}" ] && [ -x "$KEYSCOPE_CHROMIUM" ] && return 0
  command -v chromium >/dev/null 2>&1 && return 0
  return 1
}

have_browser && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "[setup] installing Chromium (apt-get install chromium chromium-driver) for the browser tests"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null; } \
    || true
  have_browser && exit 0
fi
message="Chromium is needed by the browser tests: install it (Debian/Ubuntu: sudo apt-get install chromium chromium-driver), or set KEYSCOPE_CHROMIUM to a Chromium binary."
if [ "${CI:-}" = "true" ]; then
  echo "[setup] error: $message" >&2
  exit 1
fi
echo "[setup] note: $message The browser tests skip until then." >&2
exit 0
