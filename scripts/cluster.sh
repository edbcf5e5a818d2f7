#!/usr/bin/env bash
# `make cluster`: the multi-node layout of docs/deploy.md on this one machine. Two web processes
# (ports 8001 and 8002), two Celery workers and exactly one beat, all on RabbitMQ as the broker (a
# vhost of our own), the development Postgres and Redis, and the emulator when no ANTHROPIC_API_KEY.
# Then scripts/cluster_demo.py shows a call through each web process, a job run by a worker and a
# budget shared by all of them. Runs until Ctrl-C (CLUSTER_DEMO_ONLY=1: stop after the demo).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f .env ] && set -a && . ./.env && set +a

bash scripts/bootstrap.sh requirements.txt
bash scripts/ensure_rabbitmq.sh
.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py seed
.venv/bin/python manage.py collectstatic --noinput --verbosity 0

VHOST="${CLUSTER_VHOST:-claudeapp_cluster}"
if ! rabbitmqctl -q list_vhosts | grep -qx "$VHOST"; then
  rabbitmqctl -q add_vhost "$VHOST"
fi
rabbitmqctl -q set_permissions -p "$VHOST" guest '.*' '.*' '.*'
export CELERY_BROKER_URL="${CLUSTER_BROKER_URL:-amqp://guest:guest@127.0.0.1:5672/$VHOST}"

RUN_DIR="$PWD/.run/cluster"
mkdir -p "$RUN_DIR"
export PROMETHEUS_MULTIPROC_DIR="$RUN_DIR/prometheus"
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
find "$PROMETHEUS_MULTIPROC_DIR" -maxdepth 1 -name '*.db' -delete
export LOG_FORMAT="${LOG_FORMAT:-json}"  # the demo finds the job's worker by its JSON call line
read -r -a WEB_PORTS <<<"${CLUSTER_WEB_PORTS:-8001 8002}"
EMULATOR_PORT="${EMULATOR_PORT:-8765}"

pids=()
stop_all() {
  trap - EXIT INT TERM
  echo "cluster: stopping ${#pids[@]} processes"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_all EXIT INT TERM

start() {  # start NAME COMMAND...: one background process, its output in .run/cluster/NAME.log
  local name="$1"
  shift
  "$@" >"$RUN_DIR/$name.log" 2>&1 &
  pids+=("$!")
  echo "cluster: $name (pid $!) -> .run/cluster/$name.log"
}

if [ -z "${ANTHROPIC_API_KEY:-}" ]; then
  export ANTHROPIC_BASE_URL="http://127.0.0.1:$EMULATOR_PORT"
  start emulator .venv/bin/python -m emulator --host 127.0.0.1 --port "$EMULATOR_PORT"
fi
for i in "${!WEB_PORTS[@]}"; do
  start "web$((i + 1))" .venv/bin/uvicorn claudeapp.asgi:application --host 127.0.0.1 --port "${WEB_PORTS[$i]}" \
    --no-access-log --timeout-graceful-shutdown 5
done
for n in 1 2; do
  start "worker$n" .venv/bin/celery -A claudeapp worker --queues interactive,bulk --hostname "worker$n@%h" \
    --loglevel INFO
done
start beat .venv/bin/celery -A claudeapp beat --loglevel INFO --schedule "$RUN_DIR/celerybeat-schedule"

urls=()
for port in "${WEB_PORTS[@]}"; do urls+=("http://127.0.0.1:$port"); done
.venv/bin/python scripts/cluster_demo.py --logs "$RUN_DIR" "${urls[@]}"

if [ "${CLUSTER_DEMO_ONLY:-0}" = "1" ]; then
  exit 0
fi
echo "cluster: running (web on ${urls[*]}, broker $CELERY_BROKER_URL); Ctrl-C stops every process"
wait -n "${pids[@]}" || true
echo "cluster: a process exited; see .run/cluster/*.log" >&2
exit 1
