"""What the full gateway (keys, limits, budget, routing, ledger) adds to a non-streamed Anthropic call.

    DATABASE_URL=... REDIS_URL=... .venv/bin/python bench/api_overhead.py [--lone 200] [--clients 50] [--total 1000]

Loopback only. Starts the emulator and `uvicorn claudeapp.asgi:application` (one worker, DEBUG off)
as subprocesses, on the database in DATABASE_URL (migrated and seeded here; use a scratch one).
A partner key with a generous RateLimitPolicy and a large Budget calls `POST /anthropic/v1/messages`
through the gateway; the same body goes straight to the emulator's `/v1/messages`. Reports:

- lone requests, alternating gateway/direct: p50/p95 and the added p50;
- N concurrent clients: requests/s through the gateway vs direct, and the web process's CPU ms per
  request (utime+stime from /proc/<pid>/stat, so the load generator's own CPU is not counted).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# The web process and this one must agree on SECRET_KEY (the partner-key pepper derives from it).
BENCH_ENV = {
    "DJANGO_SETTINGS_MODULE": "claudeapp.settings",
    "DEBUG": "0",
    "SECRET_KEY": "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
    "SECURE_SSL_REDIRECT": "0",
    "ANTHROPIC_API_KEY": "",
    "SEED_DEMO_USERS": "0",
}
os.environ.update(BENCH_ENV)

MODEL = "claude-haiku-5-5"
BODY = {"model": MODEL, "max_tokens": 200, "messages": [{"role": "user", "content": "Give me a short answer."}]}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def prepare() -> str:
    """Migrate, seed, and make a partner key with a generous limit and a large budget; return the raw key."""
    import django

    django.setup()
    from io import StringIO

    from django.core.management import call_command

    from billing.models import Budget, RateLimitPolicy
    from claudeapp.accounts.models import User
    from claudeapp.api import keys

    call_command("migrate", verbosity=0)
    call_command("seed", stdout=StringIO())
    owner, _ = User.objects.get_or_create(username="bench-partner")
    key, raw = keys.create_key(owner=owner, name="bench", scopes=["messages"])
    RateLimitPolicy.objects.create(
        scope="partner_key",
        scope_id=key.pk,
        requests_per_minute=1_000_000,
        input_tokens_per_minute=100_000_000,
        output_tokens_per_minute=100_000_000,
    )
    Budget.objects.create(scope="partner_key", scope_id=key.pk, period="month", limit_micros=10**15)
    return raw


async def lone(http, gateway_url: str, direct_url: str, key: str, rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"gateway": [], "direct": []}
    targets = {
        "gateway": (f"{gateway_url}/anthropic/v1/messages", {"x-api-key": key}),
        "direct": (f"{direct_url}/v1/messages", {"x-api-key": "bench"}),
    }
    for _ in range(rounds):
        for name, (url, headers) in targets.items():
            started = time.perf_counter()
            response = await http.post(url, json=BODY, headers={**headers, "anthropic-version": "2023-06-01"})
            times[name].append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
    return times


async def load(http, url: str, headers: dict[str, str], clients: int, total: int) -> float:
    remaining = iter(range(total))
    failures = 0

    async def client() -> None:
        nonlocal failures
        for _ in remaining:
            response = await http.post(url, json=BODY, headers={**headers, "anthropic-version": "2023-06-01"})
            failures += response.status_code != 200

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    assert failures == 0, f"{failures} failed requests"
    return total / elapsed


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def run(args: argparse.Namespace, gateway_url: str, pid: int, direct_url: str, key: str) -> None:
    import httpx

    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        await lone(http, gateway_url, direct_url, key, 20)  # warm caches, pools, the model map
        times = await lone(http, gateway_url, direct_url, key, args.lone)
        g50, d50 = statistics.median(times["gateway"]), statistics.median(times["direct"])
        print(
            f"lone x{args.lone}: direct p50 {d50:.2f} ms p95 {pct(times['direct'], 95):.2f} ms | "
            f"gateway p50 {g50:.2f} ms p95 {pct(times['gateway'], 95):.2f} ms | added p50 {g50 - d50:+.2f} ms"
        )
        direct_rps = await load(http, f"{direct_url}/v1/messages", {"x-api-key": "bench"}, args.clients, args.total)
        cpu_before = cpu_seconds(pid)
        gateway_rps = await load(
            http, f"{gateway_url}/anthropic/v1/messages", {"x-api-key": key}, args.clients, args.total
        )
        cpu_ms = (cpu_seconds(pid) - cpu_before) * 1000 / args.total
        print(
            f"{args.clients} clients x{args.total}: direct {direct_rps:.1f} req/s | gateway {gateway_rps:.1f} req/s "
            f"(ratio {gateway_rps / direct_rps:.2f}) | web process CPU {cpu_ms:.2f} ms/request"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lone", type=int, default=200)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--total", type=int, default=1000)
    args = parser.parse_args()
    from emulator.testing import EmulatorProcess
    from tests.fixtures.live_web import WebServer

    key = prepare()
    from django.conf import settings

    with EmulatorProcess.start("--rpm", "100000000") as emulator:
        env = {
            **os.environ,
            **BENCH_ENV,
            "ANTHROPIC_BASE_URL": emulator.url,
            "DATABASE_URL": os.environ["DATABASE_URL"],
            "REDIS_URL": settings.REDIS_URL,
            "DB_POOL_MAX_SIZE": "20",
        }
        web = WebServer(env)
        try:
            asyncio.run(run(args, web.url, web.proc.pid, emulator.url, key))
        finally:
            web.stop()


if __name__ == "__main__":
    main()
