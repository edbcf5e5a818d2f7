"""What the gateway adds over calling AsyncAnthropic directly, against the local emulator.

    .venv/bin/python bench/gateway_overhead.py [--sequential 200] [--concurrency 50] [--concurrent-total 1000]

Starts the emulator as a subprocess on a free loopback port, then in this one process runs the
same calls through `gateway.acomplete` (breaker check in Redis, retry loop, result building)
and straight through `AsyncAnthropic.messages.create`, alternating rounds so machine noise
hits both alike. Prints p50/p95 latency, the added milliseconds, the ratio, and CPU ms per
request of this process (the emulator's CPU is not counted: it is the same for both).
Needs Redis (REDIS_URL) for the breaker; no Postgres.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "claudeapp.settings")

MODEL = "claude-haiku-5-5"
MESSAGES = [{"role": "user", "content": "Give me a short answer about latency."}]
MAX_TOKENS = 200
Call = Callable[[], Awaitable[object]]


def main() -> None:
    args = parse_args()
    from emulator.testing import EmulatorProcess

    with EmulatorProcess.start("--rpm", "100000000") as emulator:
        os.environ["ANTHROPIC_BASE_URL"] = emulator.url
        from django.conf import settings

        settings.ANTHROPIC_BASE_URL = emulator.url
        asyncio.run(run(args))


async def run(args: argparse.Namespace) -> None:
    import anthropic

    from claudeapp.claude import breaker, client, gateway

    breaker.reset(MODEL)
    direct = anthropic.AsyncAnthropic(base_url=client.get_async_client().base_url, api_key="bench", max_retries=0)

    async def via_gateway() -> object:
        return await gateway.acomplete(models=[MODEL], messages=MESSAGES, max_tokens=MAX_TOKENS)

    async def straight() -> object:
        return await direct.messages.create(model=MODEL, messages=MESSAGES, max_tokens=MAX_TOKENS)  # type: ignore[arg-type]

    deadline = time.monotonic() + args.max_seconds
    for call in (via_gateway, straight):  # warm both connection pools and code paths
        await sequential(call, 20)
    print(f"emulator: {MODEL}, max_tokens={MAX_TOKENS}, loopback; this process only")
    seq = await compare(via_gateway, straight, rounds=4, each=lambda c: sequential(c, args.sequential // 4))
    report(f"sequential x{args.sequential}", *seq)
    if time.monotonic() < deadline:
        total = args.concurrent_total // 4
        conc = await compare(via_gateway, straight, rounds=4, each=lambda c: concurrent(c, total, args.concurrency))
        report(f"concurrent {args.concurrency} x{args.concurrent_total}", *conc)
    await direct.close()
    await client.aclose_async_client()
    await breaker.aclose_connections()


async def compare(gw: Call, direct: Call, *, rounds: int, each) -> tuple[list[float], float, list[float], float]:
    """Alternate gateway and direct rounds; return (latencies, cpu ms/request) for each side."""
    gw_lat: list[float] = []
    dr_lat: list[float] = []
    gw_cpu = dr_cpu = 0.0
    for _ in range(rounds):
        lat, cpu = await each(gw)
        gw_lat += lat
        gw_cpu += cpu
        lat, cpu = await each(direct)
        dr_lat += lat
        dr_cpu += cpu
    return gw_lat, gw_cpu / len(gw_lat), dr_lat, dr_cpu / len(dr_lat)


async def timed(call: Call) -> float:
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000


async def sequential(call: Call, n: int) -> tuple[list[float], float]:
    cpu = time.process_time()
    latencies = [await timed(call) for _ in range(n)]
    return latencies, (time.process_time() - cpu) * 1000


async def concurrent(call: Call, total: int, width: int) -> tuple[list[float], float]:
    queue = iter(range(total))
    latencies: list[float] = []

    async def worker() -> None:
        for _ in queue:
            latencies.append(await timed(call))

    cpu = time.process_time()
    await asyncio.gather(*(worker() for _ in range(width)))
    return latencies, (time.process_time() - cpu) * 1000


def report(label: str, gw: list[float], gw_cpu: float, direct: list[float], direct_cpu: float) -> None:
    def pct(values: list[float], q: int) -> float:
        return statistics.quantiles(values, n=100)[q - 1]

    gw50, dr50 = statistics.median(gw), statistics.median(direct)
    print(f"\n{label}")
    print(f"  direct   p50 {dr50:7.2f} ms  p95 {pct(direct, 95):7.2f} ms  cpu {direct_cpu:6.2f} ms/request")
    print(f"  gateway  p50 {gw50:7.2f} ms  p95 {pct(gw, 95):7.2f} ms  cpu {gw_cpu:6.2f} ms/request")
    print(f"  added    p50 {gw50 - dr50:+7.2f} ms  ratio {gw50 / dr50:.2f}x  cpu {gw_cpu - direct_cpu:+.2f} ms/request")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sequential", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--concurrent-total", type=int, default=1000)
    p.add_argument("--max-seconds", type=float, default=120.0, help="skip the concurrent part past this")
    args = p.parse_args()
    if min(args.sequential, args.concurrent_total) < 8 or args.concurrency < 1:
        p.error("--sequential and --concurrent-total must be >= 8, --concurrency >= 1")
    return args


if __name__ == "__main__":
    main()
