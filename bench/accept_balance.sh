#!/usr/bin/env bash
# How evenly `uvicorn --workers 2` spreads a burst of keep-alive connections (wrk -c50) over its workers, with
# libuv's one-accept-per-wakeup on and off (UV_TCP_SINGLE_ACCEPT, claudeapp/asgi.py), alternating ROUNDS times.
# Prints req/s and each worker's CPU over the window (even split: both near the same share).
#   DELAY=200 MODE=stream SECS=10 ROUNDS=2 bash bench/accept_balance.sh    ports 18081 (fake), 18103 (gateway)
set -euo pipefail
cd "$(dirname "$0")/.."
B=bench/side_by_side; DBN=${DBN:-claudeapp_prof}; DELAY=${DELAY:-200}; MODE=${MODE:-stream}; SECS=${SECS:-10}
ROUNDS=${ROUNDS:-2}
ENVV=(DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DBN REDIS_URL=redis://127.0.0.1:6379/${BENCH_REDIS_DB:-9}
  CELERY_BROKER_URL=redis://127.0.0.1:6379/${BENCH_REDIS_DB:-9} CACHE_KEY_PREFIX=prof DEBUG=0 SECURE_SSL_REDIRECT=0
  SECRET_KEY=prof-bench-secret-0123456789abcdefghijklmnopqrstuvwxyz-abcdef ANTHROPIC_API_KEY=
  ANTHROPIC_BASE_URL=http://127.0.0.1:18081 SEED_DEMO_USERS=0 LOG_LEVEL=WARNING)
psql -h 127.0.0.1 -U postgres -tc "select 1 from pg_database where datname='$DBN'" | grep -q 1 || psql -h 127.0.0.1 -U postgres -qc "create database $DBN"
KEY=$(env "${ENVV[@]}" .venv/bin/python $B/gateway_prepare.py | tail -n1)
.venv/bin/python $B/fake_anthropic.py --host 127.0.0.1 --port 18081 --delay-ms "$DELAY" >/tmp/accept_fake.log 2>&1 & FP=$!
trap 'kill $FP 2>/dev/null; pkill -f "port 18103" 2>/dev/null || true' EXIT
body=$B/body.json; [ "$MODE" = stream ] && body=$B/body_stream.json
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for round in $(seq "$ROUNDS"); do
  for single in 0 1; do
    env "${ENVV[@]}" UV_TCP_SINGLE_ACCEPT=$single .venv/bin/uvicorn claudeapp.asgi:application --host 127.0.0.1 \
      --port 18103 --workers 2 --loop uvloop --http httptools --no-access-log >/tmp/accept_gw.log 2>&1 & GP=$!
    for i in $(seq 240); do curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:18103/healthz 2>/dev/null | grep -q 200 && break; sleep 0.5; done
    WRK_BODY_FILE=$body WRK_API_KEY=$KEY WRK_PATH=/anthropic/v1/messages wrk -t1 -c50 -d3s -s $B/wrk_post.lua \
      http://127.0.0.1:18103 >/dev/null 2>&1 || true  # warm-up, on connections of its own
    workers=$(pgrep -P $GP | sort -n | tr '\n' ' ')
    declare -A before=(); for w in $workers; do before[$w]=$(cpu "$w"); done
    out=$(WRK_BODY_FILE=$body WRK_API_KEY=$KEY WRK_PATH=/anthropic/v1/messages wrk -t1 -c50 -d"${SECS}s" --latency \
      -s $B/wrk_post.lua http://127.0.0.1:18103 2>&1 || true)
    shares=""; for w in $workers; do
      [ -e "/proc/$w/stat" ] || continue
      shares+=" $(( ($(cpu "$w") - ${before[$w]}) * 100 / (SECS * $(getconf CLK_TCK)) ))%"
    done
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
    echo "round $round UV_TCP_SINGLE_ACCEPT=$single: $rps req/s, p50 $p50, workers' CPU:$shares"
    kill $GP; wait $GP 2>/dev/null || true; unset before
  done
done
