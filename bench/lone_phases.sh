#!/usr/bin/env bash
# Lone calls (one at a time, one kept-alive connection) through one gateway process against the fake upstream,
# with each phase of the call timed (bench/phase_timings.py), back to back and with an idle PAUSE between calls,
# then the same calls straight to the fake, and a round trip to Redis and Postgres hot and after the pause
# (bench/cold_round_trip.py). DELAY=200 (upstream ms) N=40 PAUSE=0.2; ports 18081 (fake) and 18101 (gateway).
set -euo pipefail
cd "$(dirname "$0")/.."
B=bench/side_by_side; DBN=${DBN:-claudeapp_prof}; DELAY=${DELAY:-200}; N=${N:-40}; PAUSE=${PAUSE:-0.2}
ENVV=(DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DBN REDIS_URL=redis://127.0.0.1:6379/${BENCH_REDIS_DB:-9}
  CELERY_BROKER_URL=redis://127.0.0.1:6379/${BENCH_REDIS_DB:-9} CACHE_KEY_PREFIX=prof DEBUG=0 SECURE_SSL_REDIRECT=0
  SECRET_KEY=prof-bench-secret-0123456789abcdefghijklmnopqrstuvwxyz-abcdef ANTHROPIC_API_KEY=
  ANTHROPIC_BASE_URL=http://127.0.0.1:18081 SEED_DEMO_USERS=0 LOG_LEVEL=WARNING PHASES_OUT=/tmp/lone_phases.txt)
psql -h 127.0.0.1 -U postgres -tc "select 1 from pg_database where datname='$DBN'" | grep -q 1 || psql -h 127.0.0.1 -U postgres -qc "create database $DBN"
psql -h 127.0.0.1 -U postgres -d $DBN -qc "delete from billing_ledgerentry; delete from billing_reservation" 2>/dev/null || true
KEY=$(env "${ENVV[@]}" .venv/bin/python $B/gateway_prepare.py | tail -n1)
.venv/bin/python $B/fake_anthropic.py --host 127.0.0.1 --port 18081 --delay-ms "$DELAY" >/tmp/lone_fake.log 2>&1 & FP=$!
env "${ENVV[@]}" .venv/bin/uvicorn bench.phase_timings:application --host 127.0.0.1 --port 18101 --loop uvloop \
  --http httptools --no-access-log >/tmp/lone_gw.log 2>&1 & GP=$!
trap 'kill $FP $GP 2>/dev/null || true' EXIT
for i in $(seq 240); do curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:18101/healthz 2>/dev/null | grep -q 200 && break; sleep 0.5; done
lone() {  # port path key pause: N calls after 3 unmeasured ones; prints the p50
  .venv/bin/python - "$@" "$N" <<'PY'
import http.client, statistics, sys, time
port, path, key, pause, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
body = open("bench/side_by_side/body.json", "rb").read()
headers = {"x-api-key": key, "anthropic-version": "2023-06-01", "content-type": "application/json"}
conn, took = http.client.HTTPConnection("127.0.0.1", port), []
for i in range(n + 3):
    started = time.perf_counter()
    conn.request("POST", path, body, headers)
    reply = conn.getresponse()
    reply.read()
    assert reply.status == 200, reply.status
    if i >= 3:
        took.append((time.perf_counter() - started) * 1000)
    time.sleep(pause)
print(f"p50 {statistics.median(took):.2f} ms")
PY
}
for pause in 0 "$PAUSE"; do
  echo "== upstream ${DELAY} ms, pause between calls ${pause} s"
  echo "direct:  $(lone 18081 /v1/messages x "$pause")"
  echo "gateway: $(lone 18101 /anthropic/v1/messages "$KEY" "$pause")"
  sleep 1; kill -USR1 $GP; sleep 0.5; cat /tmp/lone_phases.txt
done
env "${ENVV[@]}" .venv/bin/python bench/cold_round_trip.py --pause "$PAUSE"
