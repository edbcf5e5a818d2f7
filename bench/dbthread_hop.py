"""CPU of one hop from the event loop to a database thread and back, in microseconds, against the
loop's own `run_in_executor` on a ThreadPoolExecutor of the same size (the baseline, run alternately in the
same process). The step itself does nothing, so only the hand-off is timed; 25 callers at once, uvloop.

    .venv/bin/python bench/dbthread_hop.py [--hops 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import functools
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "claudeapp.settings")

import django

django.setup()
import uvloop  # noqa: E402
from django.conf import settings  # noqa: E402

from claudeapp.core.dbthread import in_db_thread  # noqa: E402

CALLERS = 25


def _nothing() -> int:
    return 1


async def _cpu_per_hop(hop, hops: int) -> float:
    async def caller() -> None:
        for _ in range(hops // CALLERS):
            await hop()

    started = time.process_time()
    await asyncio.gather(*(caller() for _ in range(CALLERS)))
    return (time.process_time() - started) / hops * 1e6


async def main(hops: int, rounds: int) -> None:
    executor = ThreadPoolExecutor(max_workers=settings.DB_THREADS)

    async def baseline() -> int:
        call = functools.partial(contextvars.copy_context().run, _nothing)
        return await asyncio.get_running_loop().run_in_executor(executor, call)

    ours = in_db_thread(_nothing)
    await _cpu_per_hop(baseline, 1000), await _cpu_per_hop(ours, 1000)  # warm both
    for number in range(1, rounds + 1):
        before, after = await _cpu_per_hop(baseline, hops), await _cpu_per_hop(ours, hops)
        print(f"round {number}: run_in_executor {before:.1f} us/hop, in_db_thread {after:.1f} us/hop, "
              f"ratio {before / after:.2f}")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--hops", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    uvloop.run(main(options.hops, options.rounds))
