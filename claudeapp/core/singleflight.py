"""Concurrent awaits of the same read on one event loop share one run of it.

Thousands of calls arriving together (2,000 streams opened at once) would otherwise each send the
same Redis read at the same moment, hold a pool connection apiece while a busy loop reads the replies
late, and run the pool dry. The first caller runs the read; callers arriving while it is on its way
await its result (or its exception) instead of sending their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._running: dict[tuple[asyncio.AbstractEventLoop, Hashable], asyncio.Future[T]] = {}

    async def run(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """(the read's result, whether it was another caller's run)."""
        loop = asyncio.get_running_loop()
        slot = (loop, key)
        running = self._running.get(slot)
        if running is not None:
            return await asyncio.shield(running), True
        running = self._running[slot] = loop.create_future()
        try:
            result = await read()
        except BaseException as exc:
            running.set_exception(exc)
            running.exception()  # retrieved: a run nobody else awaited must not warn
            raise
        else:
            running.set_result(result)
            return result, False
        finally:
            del self._running[slot]
