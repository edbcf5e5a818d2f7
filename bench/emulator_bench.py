"""Throughput and CPU cost of the emulator, to show it is never a benchmark's bottleneck.

    .venv/bin/python bench/emulator_bench.py [--seconds 3] [--concurrency 32] [--max-requests 50000]

Starts the emulator as a subprocess on a free loopback port (rate limits off), drives concurrent
non-streamed then streamed /v1/messages calls with httpx for a bounded time and count, and reads the
emulator's CPU time from /proc/<pid>/stat. Prints requests/s, emulator CPU ms per request, and the
ratio of client CPU to emulator CPU (above 1 = the load generator, not the emulator, is the limit).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emulator.testing import EmulatorProcess

HEADERS = {"x-api-key": "bench-key", "anthropic-version": "2026-10-21"}
PROMPTS = [f"Benchmark prompt {i}: explain how caching improves latency in web services." for i in range(64)]
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    name: str
    requests: int
    errors: int
    wall_s: float
    server_cpu_s: float
    client_cpu_s: float

    def lines(self) -> list[str]:
        rps = self.requests / self.wall_s if self.wall_s else 0.0
        per_request = 1000 * self.server_cpu_s / max(1, self.requests)
        ratio = self.client_cpu_s / self.server_cpu_s if self.server_cpu_s else float("inf")
        return [
            f"{self.name:<11} {self.requests:>7} requests in {self.wall_s:5.2f} s = {rps:8.0f} req/s"
            f"  errors {self.errors}",
            f"{'':<11} emulator CPU {per_request:6.3f} ms/request ({100 * self.server_cpu_s / self.wall_s:5.1f}% "
            f"of one core)",
            f"{'':<11} ratio client CPU / emulator CPU = {ratio:4.2f}",
        ]


def process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _worker(
    client: httpx.AsyncClient, stream: bool, deadline: float, budget: list[int], tally: list[int]
) -> None:
    i = 0
    while time.monotonic() < deadline and budget[0] > 0:
        budget[0] -= 1
        body = {
            "model": "claude-sonnet-5-5",
            "max_tokens": 256,
            "stream": stream,
            "messages": [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}],
        }
        i += 1
        async with client.stream("POST", "/v1/messages", json=body) as response:
            await response.aread()
            tally[0 if response.status_code == 200 else 1] += 1


async def run_phase(url: str, pid: int, name: str, stream: bool, args: argparse.Namespace) -> Result:
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, limits=limits, timeout=30) as client:
        await client.post(
            "/v1/messages",
            json={"model": "claude-sonnet-5-5", "max_tokens": 8, "messages": [{"role": "user", "content": "warm up"}]},
        )
        budget, tally = [args.max_requests], [0, 0]
        cpu0, own0, t0 = process_cpu_seconds(pid), own_cpu_seconds(), time.monotonic()
        deadline = t0 + args.seconds
        await asyncio.gather(*(_worker(client, stream, deadline, budget, tally) for _ in range(args.concurrency)))
        wall = time.monotonic() - t0
        return Result(
            name, tally[0] + tally[1], tally[1], wall, process_cpu_seconds(pid) - cpu0, own_cpu_seconds() - own0
        )


async def main_async(args: argparse.Namespace) -> None:
    with EmulatorProcess.start(config={"ratelimit_enabled": False}) as emulator:
        print(
            f"emulator {emulator.url} pid {emulator.pid}; concurrency {args.concurrency}, "
            f"{args.seconds:g} s per phase, at most {args.max_requests} requests per phase"
        )
        results = [
            await run_phase(emulator.url, emulator.pid, "non-stream", False, args),
            await run_phase(emulator.url, emulator.pid, "stream", True, args),
        ]
    for result in results:
        print("\n".join(result.lines()))
    total_cpu = sum(r.server_cpu_s for r in results)
    total_client = sum(r.client_cpu_s for r in results)
    total_requests = sum(r.requests for r in results)
    print(
        f"ratio: client CPU / emulator CPU = {total_client / max(total_cpu, 1e-9):.2f} over {total_requests} "
        f"requests (>1 means the load generator, not the emulator, is the bottleneck)"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-requests", type=int, default=50_000)
    args = parser.parse_args()
    args.seconds = min(args.seconds, 60.0)
    return args


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main_async(parse_args()))
