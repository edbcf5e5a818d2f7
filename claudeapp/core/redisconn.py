"""The project's one Redis client module: every process's connections to REDIS_URL come from here.

Two clients share one configuration (settings, docs/deploy.md):

    client()   sync, for code on worker threads (admission, settlement, caches, lockout, Celery)
    aclient()  asyncio, one per running event loop (key cache, breaker on the async hot path)

Both draw from a *blocking* pool of REDIS_POOL_SIZE connections: under a burst a caller waits up to
REDIS_TIMEOUT_SECONDS for a free connection instead of opening one more (redis-py's default pool
refuses past its size; thousands of open streams must not each want a socket; the loop's pool also
tells its own lag from a full pool, see `_LoopPool`). Commands time out
after REDIS_TIMEOUT_SECONDS too: a slow Redis costs a request milliseconds, never seconds, and every
caller decides what "unavailable" means for it (limits and the breaker fail open, caches read
Postgres). Replies are bytes; callers decode what they read.

Django's cache (CACHES, count_tokens answers) keeps its own client: it is Django's.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings

__all__ = ["UNAVAILABLE", "aclient", "aclose", "client", "execute_overlapped", "reset", "subscriber"]

# Errors that mean "Redis is not there right now" (or no connection came free in time), as opposed
# to a bug in a script.
UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError, OSError)

log = logging.getLogger(__name__)
_lock = threading.Lock()
_clients: dict[str, redis.Redis] = {}
_async_clients: dict[asyncio.AbstractEventLoop, aioredis.Redis] = {}


def _options() -> dict[str, object]:
    timeout = settings.REDIS_TIMEOUT_SECONDS
    return {
        "max_connections": settings.REDIS_POOL_SIZE,
        "timeout": timeout,  # waiting for a free connection
        "socket_timeout": timeout,
        # Connecting happens only as the pool grows; a burst of connects on a busy host needs more
        # slack than a command does (a refused connection still fails at once).
        "socket_connect_timeout": max(timeout, 1.0),
        "health_check_interval": 30,
    }


def client() -> redis.Redis:
    url = settings.REDIS_URL
    found = _clients.get(url)
    if found is None:
        with _lock:
            found = _clients.get(url)
            if found is None:
                pool = redis.BlockingConnectionPool.from_url(url, **_options())
                found = _clients[url] = redis.Redis(connection_pool=pool)
    return found


def execute_overlapped(pipe: redis.client.Pipeline, meanwhile: Callable[[], None]) -> list[Any]:
    """`pipe.execute(raise_on_error=False)` (a pipeline without MULTI), with `meanwhile()` run once the
    commands are sent and before their replies are read: Redis works while `meanwhile` does (the budget
    hold in Postgres, calls/admission.py), and the round trip's wait hides behind it.

    `meanwhile` runs exactly once, also when Redis cannot be reached (UNAVAILABLE is raised after it); it
    must not raise (if it does, the connection is dropped with its replies unread). A send on a pooled connection
    Redis has closed is tried once more on a new one (nothing ran); a reply that fails to come is not (the
    commands may have run): redis-py's pipelines retry the same way, but would retry the whole."""
    stack = pipe.command_stack
    pool = pipe.connection_pool
    conn: Any = None
    ran = False
    try:
        conn = pool.get_connection()
        packed = conn.pack_commands([args for args, _ in stack])
        try:
            conn.send_packed_command(packed)
        except UNAVAILABLE:
            conn.disconnect()
            conn.send_packed_command(packed)  # connects again
        ran = True
        meanwhile()
        replies: list[Any] = []
        for args, options in stack:
            try:
                replies.append(pipe.parse_response(conn, args[0], **options))
            except redis.ResponseError as exc:
                replies.append(exc)
        return replies
    except BaseException:
        if conn is not None:
            conn.disconnect()  # replies may be left unread on it
        raise
    finally:
        try:
            if not ran:
                meanwhile()
        finally:
            if conn is not None:
                pool.release(conn)
            pipe.reset()


class _LoopPool(aioredis.BlockingConnectionPool):
    """The blocking pool, for a loop that may lag (thousands of open streams).

    A wait for a connection times out by the loop's clock, and on a loop busy with other callbacks the
    timeout can fire after a connection came free but before the waiter was woken to take it. Such a wait
    takes the free one: what it measured was the loop's lag, not Redis.

    A pool with every connection checked out is load, not a dead Redis: each of those connections is in
    the middle of a command, which ends within REDIS_TIMEOUT_SECONDS either way (a dead Redis fails it,
    and the connection comes back). So a wait that found it full waits once more (FULL_POOL_WAITS) before
    the caller is told Redis is unavailable: 2,000 streams' admissions at once filled it for longer than
    one wait, and the breaker's read then fell back to the process's own circuit."""

    FULL_POOL_WAITS = 2

    async def get_connection(self, *args: object, **kwargs: object) -> Any:
        for waits in range(1, self.FULL_POOL_WAITS + 1):
            try:
                return await super().get_connection()
            except redis.ConnectionError as exc:
                if not isinstance(exc.__cause__, asyncio.TimeoutError):
                    raise
                if self.can_get_connection():
                    break
                if waits == self.FULL_POOL_WAITS:
                    raise
                log.debug("redis pool: full for a whole wait (every connection mid-command); waiting once more")
        log.debug("redis pool: a wait outlived by the loop's lag took a connection that had come free")
        connection = self.get_available_connection()
        try:
            await self.ensure_connection(connection)
        except BaseException:
            await self.release(connection)
            raise
        return connection


def aclient() -> aioredis.Redis:
    """The running loop's client: asyncio connections belong to the loop that opened them."""
    loop = asyncio.get_running_loop()
    found = _async_clients.get(loop)
    if found is None:
        # A server runs one loop for its life; tests and async_to_sync start one per call: drop the
        # clients of loops that have ended (a client holds its loop, so weak keys alone never free them).
        for ended in [other for other in _async_clients if other.is_closed()]:
            _async_clients.pop(ended, None)
        pool = _LoopPool.from_url(settings.REDIS_URL, **_options())
        found = _async_clients[loop] = aioredis.Redis(connection_pool=pool)
    return found


def subscriber() -> redis.client.PubSub:
    """A Pub/Sub on a connection of its own (a subscription holds its connection for good: not one
    of the pool's). Reads use `get_message(timeout=...)`; a dead connection raises UNAVAILABLE."""
    timeout = settings.REDIS_TIMEOUT_SECONDS
    own = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=max(timeout, 5.0), socket_connect_timeout=max(timeout, 1.0)
    )
    return own.pubsub()


async def aclose() -> None:
    """Close the running loop's pool (before a loop ends: tests, ASGI shutdown)."""
    found = _async_clients.pop(asyncio.get_running_loop(), None)
    if found is not None:
        await found.aclose()


def reset() -> None:
    """Forget every client (tests that point REDIS_URL elsewhere)."""
    with _lock:
        _clients.clear()
    _async_clients.clear()
