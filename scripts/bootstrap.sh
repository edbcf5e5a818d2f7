#!/usr/bin/env bash
# Shared first half of `make run` and `make test`: venv, packages, services, database.
# Usage: scripts/bootstrap.sh requirements.txt|requirements-dev.txt
set -euo pipefail
cd "$(dirname "$0")/.."
req="${1:-requirements.txt}"

if [ ! -x .venv/bin/python ]; then
  echo "venv: creating .venv"
  python3.11 -m venv .venv 2>/dev/null || python3 -m venv .venv
fi
stamp=".venv/.installed-$(basename "$req")"
if [ ! -f "$stamp" ] || [ "$req" -nt "$stamp" ] || [ requirements.txt -nt "$stamp" ]; then
  echo "venv: installing $req"
  # This machine's pip config names a local index folder that may be absent; hide that noise only.
  .venv/bin/pip install --quiet --disable-pip-version-check -r "$req" 2> >(grep -v "is ignored: it is neither" >&2)
  touch "$stamp"
fi

bash scripts/ensure_services.sh
.venv/bin/python scripts/ensure_db.py
