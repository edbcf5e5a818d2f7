#!/usr/bin/env bash
# A change's effect on a lone call, measured A/B: one gateway process on the working tree and one on BASE (a
# revision, checked out into a worktree under /tmp), against one fake upstream, with calls alternating between
# them one at a time so the host's noise hits both alike; straight to the fake too. Prints, per body (non-stream
# and stream), the p50 of the whole call (to the body's last byte) and of the first byte, for each target.
#   BASE=HEAD~1 DELAY=0 N=200 PAUSE=0 bash bench/lone_ab.sh     ports 18081 (fake), 18101 (tree), 18102 (BASE)
set -euo pipefail
cd "$(dirname "$0")/.."
B=bench/side_by_side; DBN=${DBN:-claudeapp_prof}; DELAY=${DELAY:-0}; N=${N:-200}; PAUSE=${PAUSE:-0}
BASE=${BASE:?BASE=<revision> to compare the working tree with}; WT=/tmp/lone_ab_base
ENVV=(DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DBN REDIS_URL=redis://127.0.0.1:6379/${BENCH_REDIS_DB:-9}
  CELERY_BROKER_URL=redis://127.0.0.1:6379/${BENCH_REDIS_DB:-9} CACHE_KEY_PREFIX=prof DEBUG=0 SECURE_SSL_REDIRECT=0
  SECRET_KEY=prof-bench-secret-0123456789abcdefghijklmnopqrstuvwxyz-abcdef ANTHROPIC_API_KEY=
  ANTHROPIC_BASE_URL=http://127.0.0.1:18081 SEED_DEMO_USERS=0 LOG_LEVEL=WARNING)
git worktree remove --force $WT 2>/dev/null || rm -rf $WT
git worktree add -q --detach $WT "$BASE"
psql -h 127.0.0.1 -U postgres -tc "select 1 from pg_database where datname='$DBN'" | grep -q 1 || psql -h 127.0.0.1 -U postgres -qc "create database $DBN"
KEY=$(env "${ENVV[@]}" .venv/bin/python $B/gateway_prepare.py | tail -n1)
.venv/bin/python $B/fake_anthropic.py --host 127.0.0.1 --port 18081 --delay-ms "$DELAY" >/tmp/lone_ab_fake.log 2>&1 & FP=$!
serve() {  # dir port
  (cd "$1" && env "${ENVV[@]}" "$OLDPWD/.venv/bin/uvicorn" claudeapp.asgi:application --host 127.0.0.1 --port "$2" \
    --loop uvloop --http httptools --no-access-log >"/tmp/lone_ab_$2.log" 2>&1) &
}
serve . 18101; TP=$!; serve $WT 18102; BP=$!
trap 'kill $FP $TP $BP 2>/dev/null; pkill -f "port 1810[12]" 2>/dev/null; git worktree remove --force '$WT' || true' EXIT
for port in 18101 18102; do
  for i in $(seq 240); do curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$port/healthz 2>/dev/null | grep -q 200 && break; sleep 0.5; done
done
.venv/bin/python - "$KEY" "$N" "$PAUSE" <<'PY'
import http.client, statistics, sys, time
key, n, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
headers = {"x-api-key": key, "anthropic-version": "2023-06-01", "content-type": "application/json"}
targets = {"direct": (18081, "/v1/messages"), "tree": (18101, "/anthropic/v1/messages"),
           "base": (18102, "/anthropic/v1/messages")}
for name in ("body.json", "body_stream.json"):
    body = open(f"bench/side_by_side/{name}", "rb").read()
    conns = {t: http.client.HTTPConnection("127.0.0.1", port) for t, (port, _) in targets.items()}
    whole = {t: [] for t in targets}
    first = {t: [] for t in targets}
    for i in range(n + 5):
        # tree and base in mirrored places (first / last, after the other or after itself), direct between:
        # the order direct, tree, base and back put tree always second and gave base two calls in a row,
        # worth ~0.4 ms either way with the same code on both sides (docs/benchmarks.md, sixteenth pass).
        for t in (("tree", "direct", "base") if i % 2 else ("base", "direct", "tree")):
            port, path = targets[t]
            started = time.perf_counter()
            conns[t].request("POST", path, body, headers)
            reply = conns[t].getresponse()
            reply.read(1)
            got_first = time.perf_counter()
            reply.read()
            ended = time.perf_counter()
            assert reply.status == 200, (t, reply.status)
            if i >= 5:
                whole[t].append((ended - started) * 1000)
                first[t].append((got_first - started) * 1000)
            time.sleep(pause)
    print(f"== {name}: p50 ms (whole call / first byte), {n} calls each, alternating")
    for t in targets:
        added = statistics.median(whole[t]) - statistics.median(whole["direct"])
        print(f"{t:7} {statistics.median(whole[t]):8.2f} / {statistics.median(first[t]):8.2f}"
              + (f"   added {added:+.2f}" if t != "direct" else ""))
PY
