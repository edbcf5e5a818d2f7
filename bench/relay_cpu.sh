#!/usr/bin/env bash
# The gateway's CPU per relayed stream event: 100 streamed /anthropic calls back to back with ~7 events each,
# then 100 with ~140 ([[words:600]]), three rounds; CPU of the one web process from /proc. The difference
# over the extra events is the relay's cost an event; the short streams' figure is a stream's fixed cost.
#   bash bench/relay_cpu.sh            (ports 18091 emulator, 18111 gateway, database claudeapp_streams)
set -euo pipefail
cd "$(dirname "$0")/.."
DBN=${DBN:-claudeapp_streams}
psql -h 127.0.0.1 -U postgres -tc "select 1 from pg_database where datname='$DBN'" | grep -q 1 || psql -h 127.0.0.1 -U postgres -qc "create database $DBN"
ENVV=(DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DBN REDIS_URL=redis://127.0.0.1:6379/9
  CELERY_BROKER_URL=redis://127.0.0.1:6379/9 CACHE_KEY_PREFIX=streams DEBUG=0 SECURE_SSL_REDIRECT=0
  SECRET_KEY=open-streams-bench-secret-0123456789abcdefghijklmnopqrstuvwxyz ANTHROPIC_API_KEY=
  ANTHROPIC_BASE_URL=http://127.0.0.1:18091 SEED_DEMO_USERS=0 LOG_LEVEL=WARNING)
KEY=$(env "${ENVV[@]}" .venv/bin/python bench/side_by_side/gateway_prepare.py | tail -n1)
.venv/bin/python -m emulator --port 18091 >/tmp/relay_em.log 2>&1 & EP=$!
env "${ENVV[@]}" .venv/bin/uvicorn claudeapp.asgi:application --host 127.0.0.1 --port 18111 --workers 1 --loop uvloop \
  --http httptools --no-access-log >/tmp/relay_gw.log 2>&1 & GP=$!
trap 'kill $EP $GP 2>/dev/null || true' EXIT
for i in $(seq 240); do curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:18111/healthz 2>/dev/null | grep -q 200 && break; sleep 0.5; done
.venv/bin/python - "$GP" "$KEY" <<'PY'
import sys, time, httpx, os
pid, key = int(sys.argv[1]), sys.argv[2]
hz = os.sysconf("SC_CLK_TCK")
def cpu():
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / hz
def run(n, max_tokens):
    body = {"model": "claude-haiku-4-5", "max_tokens": max_tokens, "stream": True,
            "messages": [{"role": "user", "content": "Tell me a long story. [[words:" + str(max_tokens) + "]]"}]}
    events = 0
    with httpx.Client(timeout=60) as c:
        c0 = cpu()
        for _ in range(n):
            with c.stream("POST", "http://127.0.0.1:18111/anthropic/v1/messages", json=body,
                          headers={"x-api-key": key, "anthropic-version": "2023-06-01"}) as r:
                for line in r.iter_lines():
                    if line.startswith("event:"): events += 1
        return (cpu() - c0), events
run(20, 1000)
for rep in range(3):
    few_cpu, few_ev = run(100, 3)
    many_cpu, many_ev = run(100, 600)
    per_event = (many_cpu - few_cpu) / (many_ev - few_ev) * 1e6
    print(f"few: {few_cpu*10:.2f} ms/stream ({few_ev/100:.0f} events)  many: {many_cpu*10:.2f} ms/stream ({many_ev/100:.0f} events)  -> {per_event:.0f} us/event")
PY
