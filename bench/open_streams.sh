#!/usr/bin/env bash
# Issue 11's stream cell: N concurrent streamed calls into ONE gateway web process against the emulator
# (chunks trickled every CHUNK_MS so every stream stays open for seconds), then the same N straight to the
# emulator, in one run: completed, errors, TTFB p50/p99 of each. Also greps the gateway's log for pool
# exhaustion and breaker fail-open lines (a breaker that cannot reach Redis under load is a bug).
#   bash bench/open_streams.sh            N=2000 CHUNK_MS=200 (ports 18091 emulator, 18111 gateway)
#   APP=bench.phase_timings:application   the same with the phase timers (SIGUSR1 writes them to PHASES_OUT)
#   SKIP_DIRECT=1                         the gateway only (an A/B of the gateway's own settings)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-2000}; CHUNK_MS=${CHUNK_MS:-200}; B=bench/side_by_side; DBN=${DBN:-claudeapp_streams}
ENVV=(DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DBN REDIS_URL=redis://127.0.0.1:6379/${BENCH_REDIS_DB:-9}
  CELERY_BROKER_URL=redis://127.0.0.1:6379/${BENCH_REDIS_DB:-9} CACHE_KEY_PREFIX=streams DEBUG=0 SECURE_SSL_REDIRECT=0
  SECRET_KEY=open-streams-bench-secret-0123456789abcdefghijklmnopqrstuvwxyz ANTHROPIC_API_KEY=
  ANTHROPIC_BASE_URL=http://127.0.0.1:18091 SEED_DEMO_USERS=0 LOG_LEVEL=${LOG_LEVEL:-WARNING})
ulimit -n 65536 2>/dev/null || true
psql -h 127.0.0.1 -U postgres -tc "select 1 from pg_database where datname='$DBN'" | grep -q 1 || psql -h 127.0.0.1 -U postgres -qc "create database $DBN"
KEY=$(env "${ENVV[@]}" .venv/bin/python $B/gateway_prepare.py | tail -n1)
.venv/bin/python -m emulator --port 18091 >/tmp/streams_emulator.log 2>&1 & EP=$!
env "${ENVV[@]}" .venv/bin/uvicorn "${APP:-claudeapp.asgi:application}" --host 127.0.0.1 --port 18111 --workers 1 --loop uvloop \
  --http httptools --no-access-log --backlog 4096 >/tmp/streams_gw.log 2>&1 & GP=$!
trap 'kill $EP $GP 2>/dev/null || true' EXIT
for i in $(seq 240); do curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:18111/healthz 2>/dev/null | grep -q 200 && break; sleep 0.5; done
STREAM_PATH=/anthropic/v1/messages .venv/bin/python $B/open_streams.py http://127.0.0.1:18111 "$KEY" 20 "$CHUNK_MS" >/dev/null  # warm up
# CPU seconds each process used while the gateway's streams ran (the host's cores are shared by all of them)
cpu_of() { for p in $(pgrep -f "$1"); do echo "$p $(awk '{print $14 + $15}' /proc/$p/stat 2>/dev/null || echo 0)"; done; }
snap() { { cpu_of "uvicorn.*port 18111" | sed 's/^/gateway /'; cpu_of "emulator --port 18091" | sed 's/^/emulator /'
  cpu_of "^postgres" | sed 's/^/postgres /'; cpu_of "redis-server" | sed 's/^/redis /'; } > "$1"; }
snap /tmp/streams_cpu_before
echo "gateway:  $(.venv/bin/python - .venv/bin/python $B/open_streams.py http://127.0.0.1:18111 "$KEY" "$N" "$CHUNK_MS" <<'PY'
import resource, subprocess, sys
out = subprocess.run(sys.argv[1:], capture_output=True, text=True).stdout.strip()
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{out} client_cpu={r.ru_utime + r.ru_stime:.1f}s")
PY
)"
snap /tmp/streams_cpu_after
echo "          CPU seconds meanwhile: $(awk 'NR == FNR { was[$2] = $3; next } { used[$1] += $3 - was[$2] }
  END { for (k in used) printf "%s %.1f  ", k, used[k] / 100 }' /tmp/streams_cpu_before /tmp/streams_cpu_after)on $(nproc) cores"
[ -z "${APP:-}" ] || { kill -USR1 $GP; sleep 1; }  # the phase timers' table, to PHASES_OUT
[ -n "${SKIP_DIRECT:-}" ] || echo "direct:   $(STREAM_PATH=/v1/messages .venv/bin/python $B/open_streams.py http://127.0.0.1:18091 emulator-key "$N" "$CHUNK_MS")"
echo "gateway log lines about pools / fail-open: $(grep -ciE 'no connection available|failing open|pool' /tmp/streams_gw.log || true)"
