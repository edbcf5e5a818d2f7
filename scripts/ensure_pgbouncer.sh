#!/usr/bin/env bash
# tests/api/test_pgbouncer_live.py runs the gateway behind Debian's pgbouncer, a private process of its own
# (tests/fixtures/pgbouncer.py). Install the package, but never start (or enable) its system service.
set -euo pipefail
PATH="$PATH:/usr/sbin"
if ! command -v pgbouncer >/dev/null 2>&1; then
  echo "pgbouncer: installing Debian's package"
  export DEBIAN_FRONTEND=noninteractive
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    # The Debian way to keep a package's service from starting on install (exit 101: not allowed).
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq >/dev/null
  apt-get install -y -qq pgbouncer >/dev/null
  if command -v systemctl >/dev/null 2>&1; then
    systemctl disable --quiet pgbouncer >/dev/null 2>&1 || true
  fi
fi
echo "pgbouncer: $(pgbouncer --version 2>/dev/null | head -n1)"
