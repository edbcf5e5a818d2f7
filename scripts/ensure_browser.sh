#!/usr/bin/env bash
# Browser tests drive Debian's chromium through Playwright (Playwright's own download does not work offline).
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  echo "chromium: installing Debian's package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq chromium >/dev/null
fi
echo "chromium: $(chromium --version 2>/dev/null | head -n1)"
