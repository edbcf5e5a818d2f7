"""Concurrent awaits of the same read on one event loop share one run of it.

Thousands of calls arriving together (2,000 streams opened at once) would otherwise each send the
same Redis read at the same moment, hold a pool connection apiece while a busy loop reads the replies
late, and run the pool dry. The first caller runs the read; callers arriving while it is on its way
await its result (or its exception) instead of sending their own.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._running: dict[tuple[asyncio.AbstractEventLoop, Hashable], asyncio.Task[T]] = {}

    async def run(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """(the read's result, whether it was another caller's run). The read runs as a task of its own:
        the caller that started it leaving (its client gone, its timeout) does not fail the others."""
        loop = asyncio.get_running_loop()
        slot = (loop, key)
        running = self._running.get(slot)
        if running is not None:
            return await asyncio.shield(running), True
        running = self._running[slot] = loop.create_task(_awaited(read))
        running.add_done_callback(functools.partial(self._ended, slot))
        return await asyncio.shield(running), False

    def _ended(self, slot: tuple[asyncio.AbstractEventLoop, Hashable], task: asyncio.Task[T]) -> None:
        if self._running.get(slot) is task:
            del self._running[slot]
        if not task.cancelled():
            task.exception()  # retrieved: a run whose callers all left must not warn


async def _awaited(read: Callable[[], Awaitable[T]]) -> T:
    return await read()
