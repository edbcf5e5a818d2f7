"""Run ORM work from async code: off the event loop, on a worker thread that hands its database
connection back to the pool afterwards, so an open stream holds no connection.

A pool of our own, sized by DB_THREADS, instead of asgiref's `sync_to_async(thread_sensitive=False)`:
that one runs on the loop's default executor (min(32, cores + 4) threads: 6 on two cores, shared with
everything else the process sends there) and re-homes every context variable and asgiref Local on the
way back, about 5% of a call's CPU (py-spy, bench/cpu_per_call.sh) for nothing a call needs: the work
runs in a copy of the caller's context (request id, surface), and Django's connections are per thread.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from django.conf import settings
from django.db import close_old_connections, connection

P = ParamSpec("P")
R = TypeVar("R")

_pool: dict[str, ThreadPoolExecutor | None] = {"executor": None}
_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    executor = _pool["executor"]
    if executor is None:
        with _lock:
            executor = _pool["executor"]
            if executor is None:
                executor = _pool["executor"] = ThreadPoolExecutor(
                    max_workers=settings.DB_THREADS, thread_name_prefix="db"
                )
    return executor


def in_db_thread(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        close_old_connections()
        try:
            return func(*args, **kwargs)
        finally:
            connection.close()

    async def hop(*args: P.args, **kwargs: P.kwargs) -> R:
        context = contextvars.copy_context()
        call = functools.partial(context.run, run, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(_executor(), call)

    return hop
