#!/usr/bin/env bash
# Browser tests drive Debian's Chromium through Playwright; never `playwright install`.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's chromium for the browser tests…"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "make test needs /usr/bin/chromium (apt-get install chromium) for the browser tests." >&2
  exit 1
fi
