#!/usr/bin/env bash
# `make run`: install, prepare the database, seed, then run every process until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f .env ] && set -a && . ./.env && set +a

bash scripts/bootstrap.sh requirements.txt
.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py seed
.venv/bin/python manage.py collectstatic --noinput --verbosity 0
mkdir -p .run
# Prometheus multiprocess mode (docs/operations.md, Metrics): every web and worker process writes its
# counters here and /metrics sums them. Emptied now, before any process starts, so a restart starts at 0.
export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-$PWD/.run/prometheus}"
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
find "$PROMETHEUS_MULTIPROC_DIR" -maxdepth 1 -name '*.db' -delete

export HOST="${HOST:-127.0.0.1}" WEB_PORT="${PORT:-8000}" EMULATOR_PORT="${EMULATOR_PORT:-8765}"
processes="web worker beat"
if [ -z "${ANTHROPIC_API_KEY:-}" ]; then
  processes="emulator $processes"
  mode="offline: Claude answers come from the bundled emulator on 127.0.0.1:${EMULATOR_PORT}"
else
  mode="online: ANTHROPIC_API_KEY is set"
fi

cat <<BANNER

  Claude gateway starting ($mode)
    Chat:   http://${HOST}:${WEB_PORT}/
    Admin:  http://${HOST}:${WEB_PORT}/admin/
    Logins: admin / ${DEMO_ADMIN_PASSWORD:-admin} (operator)   demo / ${DEMO_USER_PASSWORD:-demo} (user)
  Ctrl-C stops every process.

BANNER
# honcho sets PORT per process; ours is read above into WEB_PORT.
exec .venv/bin/honcho start $processes
