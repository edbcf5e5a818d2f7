"""One round trip to Redis (PING) and to Postgres (SELECT 1) from this project's own clients, back to back
against after an idle pause: on a shared host a process that waited ~200 ms (a call waiting on upstream)
pays several times a hot round trip for each of its next ones (docs/benchmarks.md, thirteenth pass).

    .venv/bin/python bench/cold_round_trip.py [--pause 0.2] [--n 40]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "claudeapp.settings")


def _p50_us(step: Callable[[], object], n: int, pause: float) -> float:
    samples = []
    for _ in range(n):
        if pause:
            time.sleep(pause)
        started = time.perf_counter()
        step()
        samples.append((time.perf_counter() - started) * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pause", type=float, default=0.2)
    parser.add_argument("--n", type=int, default=40)
    opts = parser.parse_args()
    import django

    django.setup()
    from django.db import connection

    from claudeapp.core.redisconn import client

    redis = client()

    def select_one() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")

    for name, step in (("Redis PING", redis.ping), ("Postgres SELECT 1", select_one)):
        hot = _p50_us(step, opts.n * 20, 0)
        cold = _p50_us(step, opts.n, opts.pause)
        print(f"{name:18s} back to back p50 {hot:6.0f} us; after {opts.pause * 1000:.0f} ms idle p50 {cold:6.0f} us")


if __name__ == "__main__":
    main()
