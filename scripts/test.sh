#!/usr/bin/env bash
# `make test`: install what tests need, make sure services are up, run every check and the suite.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh requirements-dev.txt
bash scripts/ensure_browser.sh
bash scripts/ensure_rabbitmq.sh  # tests/chaos/test_rabbitmq_broker.py (a vhost of its own)
bash scripts/ensure_pgbouncer.sh  # tests/api/test_pgbouncer_live.py (a pgbouncer process of its own)

echo "== lint"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== import contracts (.importlinter: the layering in DESIGN.md)"
.venv/bin/lint-imports --no-cache
echo "== django checks"
.venv/bin/python manage.py check --fail-level WARNING
.venv/bin/python manage.py makemigrations --check --dry-run
DEBUG=0 SECRET_KEY="ci-$(head -c 48 /dev/urandom | base64 | tr -d '/+=')" ALLOWED_HOSTS=gateway.example.com \
  .venv/bin/python manage.py check --deploy --fail-level WARNING
echo "== pytest"
# Tests get a Redis database of their own, emptied first: limiter buckets, breaker state and
# queued Celery messages from an earlier run (or from `make run` on db 0) must not leak in.
export REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}"
unset CELERY_BROKER_URL
redis-cli -u "$REDIS_URL" flushdb >/dev/null
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$status"
