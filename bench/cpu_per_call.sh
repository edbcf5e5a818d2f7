#!/usr/bin/env bash
# Web CPU per call and req/s of one gateway worker against the fake upstream (wrk, same body as the side-by-side
# bench), plus a lone-call p50. MODE=nonstream|stream CONC=20 SECS=15 DELAY=0 WORKERS=1; SPY=1 also records a py-spy
# profile (--gil, raw; SPYFLAGS replaces --gil, e.g. "--idle --threads": slows the process a lot) into /tmp/prof.raw
# (pip install py-spy into .venv first). Database DBN (default
# claudeapp_prof), Redis db BENCH_REDIS_DB (9); ports 18081 (fake) and 18101 (gateway). Also prints Postgres's and
# Redis's CPU per call, and how many of the window's answers were still unsettled at its end (their settlements'
# CPU falls outside the window). DB_PREPARED_STATEMENTS=0 runs the gateway without prepared statements (A/B).
set -euo pipefail
cd "$(dirname "$0")/.."
B=bench/side_by_side
MODE=${MODE:-nonstream}; SECS=${SECS:-10}; DELAY=${DELAY:-0}; SPY=${SPY:-0}; CONC=${CONC:-50}
ENVV=(DB_PREPARED_STATEMENTS=${DB_PREPARED_STATEMENTS:-1} DATABASE_URL=postgres://postgres@127.0.0.1:5432/${DBN:-claudeapp_prof} REDIS_URL=redis://127.0.0.1:6379/${BENCH_REDIS_DB:-9}
  CELERY_BROKER_URL=redis://127.0.0.1:6379/${BENCH_REDIS_DB:-9} CACHE_KEY_PREFIX=prof DEBUG=0 SECURE_SSL_REDIRECT=0
  SECRET_KEY=prof-bench-secret-0123456789abcdefghijklmnopqrstuvwxyz-abcdef ANTHROPIC_API_KEY=
  ANTHROPIC_BASE_URL=http://127.0.0.1:18081 SEED_DEMO_USERS=0 LOG_LEVEL=WARNING)
psql -h 127.0.0.1 -U postgres -tc "select 1 from pg_database where datname='${DBN:-claudeapp_prof}'" | grep -q 1 || psql -h 127.0.0.1 -U postgres -qc "create database ${DBN:-claudeapp_prof}"
# The fake upstream numbers its message ids from 1 each start and the ledger bills a message id once: start empty.
psql -h 127.0.0.1 -U postgres -d ${DBN:-claudeapp_prof} -qc "delete from billing_ledgerentry; delete from billing_reservation" 2>/dev/null || true
if [ ! -s ${KEYF:-/tmp/prof_key} ]; then env "${ENVV[@]}" .venv/bin/python $B/gateway_prepare.py | tail -n1 > ${KEYF:-/tmp/prof_key}; fi
KEY=$(cat ${KEYF:-/tmp/prof_key})
/tmp/benchvenv/bin/python $B/fake_anthropic.py --host 127.0.0.1 --port 18081 --delay-ms $DELAY >/tmp/prof_fake.log 2>&1 & FP=$!
env "${ENVV[@]}" .venv/bin/uvicorn ${APP:-claudeapp.asgi:application} --host 127.0.0.1 --port 18101 --workers ${WORKERS:-1} --loop uvloop --http httptools --no-access-log >/tmp/prof_gw.log 2>&1 & GP=$!
trap 'kill $FP $GP 2>/dev/null; sleep 0.5; pkill -f "port 18101" 2>/dev/null || true' EXIT
for i in $(seq 240); do curl -s -o /dev/null -w '%{http_code}' -X POST http://127.0.0.1:18101/anthropic/v1/messages -H "x-api-key: $KEY" -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' --data-binary @$B/body.json 2>/dev/null | grep -q 200 && break; sleep 0.5; done
BODY=$B/body.json; [ "$MODE" = stream ] && BODY=$B/body_stream.json
true  
UPID=$(pgrep -f "port 18101" | head -1)
GPIDS="$UPID $( (pgrep -P $UPID || true) | tr "\n" " ")"  # with WORKERS > 1, uvicorn's workers are its children
webticks() { for p in $GPIDS; do awk '{print $14+$15}' /proc/$p/stat; done | awk '{s+=$1} END {print s}'; }
others() {  # CPU ticks of Postgres (every backend) and Redis: their share of a call counts on a shared box
  for p in $( (pgrep -x postgres; pgrep -f "postgres: ") | sort -u); do awk '{print "pg", $14+$15}' /proc/$p/stat 2>/dev/null; done
  for p in $(pgrep -x redis-server); do awk '{print "redis", $14+$15}' /proc/$p/stat; done
}
ledger() { psql -h 127.0.0.1 -U postgres -d ${DBN:-claudeapp_prof} -tAc "select count(*) from billing_ledgerentry"; }
others > /tmp/prof_others0
L0=$(ledger)
C0=$(webticks)
[ "${STRACE:-0}" = 1 ] && (timeout $SECS strace -f -c -e trace=write,writev,sendto,sendmsg -p $UPID -o /tmp/prof_strace.txt &)
[ "$SPY" = 1 ] && (.venv/bin/py-spy record -p ${SPYPID:-$UPID} -d $SECS -r 250 ${SPYFLAGS:---gil} -f raw -o /tmp/prof.raw >/dev/null 2>&1 &)
WRK_BODY_FILE=$BODY WRK_API_KEY=$KEY WRK_PATH=/anthropic/v1/messages wrk -t1 -c$CONC -d${SECS}s --latency -s $B/wrk_post.lua http://127.0.0.1:18101 > /tmp/prof_wrk.txt 2>&1
C1=$(webticks)
L1=$(ledger)
others > /tmp/prof_others1
N=$(grep -oP '^\s*\K\d+(?= requests in)' /tmp/prof_wrk.txt)
grep -E "Requests/sec|Non-2xx|50%|99%" /tmp/prof_wrk.txt
# Settlements the window's answers left undone at its end: their CPU falls outside the window (tenth pass).
echo "billed in the window $((L1 - L0)) of $N answered: $((N - (L1 - L0))) left to settle at its end"
python3 -c "print('requests', $N, 'cpu ms/call', round(($C1-$C0)*10/$N, 2))"
python3 - $N <<'PY'  # backends that ended during the run are missed: an underestimate, never an overestimate
import sys
def read(path):
    total = {}
    for line in open(path):
        name, ticks = line.split()
        total[name] = total.get(name, 0) + int(ticks)
    return total
before, after, n = read("/tmp/prof_others0"), read("/tmp/prof_others1"), int(sys.argv[1])
print(" ".join(f"{k} cpu ms/call {round((after.get(k, 0) - before.get(k, 0)) * 10 / n, 2)}" for k in ("pg", "redis")))
PY
WRK_BODY_FILE=$B/body.json WRK_API_KEY=$KEY WRK_PATH=/anthropic/v1/messages wrk -t1 -c1 -d4s --latency -s $B/wrk_post.lua http://127.0.0.1:18101 | grep -E "50%|Requests/sec"
sleep 1
