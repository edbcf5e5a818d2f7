"""The asyncio Redis pool (claudeapp/core/redisconn.py) on a lagging event loop: a wait for a connection
that the loop's lag outlived, with a connection free by then, takes it instead of failing the caller
(under 2,000 open streams that failure made the breaker fall back to its own circuit); a pool full for a
whole wait waits once more, and one with none free for every wait still refuses. Real Redis; the lag is
a blocking sleep on the loop, as a busy loop would be."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
from django.conf import settings

from claudeapp.core import redisconn


async def _wait_outlived_by_lag(pool) -> object:
    held = await pool.get_connection()
    waiter = asyncio.create_task(pool.get_connection())
    await asyncio.sleep(0.01)  # the waiter waits: the only connection is in use
    await pool.release(held)  # it comes free and the waiter is woken...
    async with pool._condition:  # ...but the pool's lock is held when it runs (as other callers' would be)
        time.sleep(0.1)  # by a loop lagging past the wait's 0.05 s
        await asyncio.sleep(0)
    return await waiter


def _pool(cls):
    return cls.from_url(settings.REDIS_URL, max_connections=1, timeout=0.05)


def test_redis_py_s_own_pool_fails_that_wait():
    """The premise: the stock blocking pool refuses with a connection free."""

    async def run():
        pool = _pool(redis.asyncio.BlockingConnectionPool)
        try:
            with pytest.raises(redis.ConnectionError, match="No connection available"):
                await _wait_outlived_by_lag(pool)
            assert pool.can_get_connection()
        finally:
            await pool.aclose()

    asyncio.run(run())


def test_a_wait_outlived_by_the_loop_s_lag_takes_the_connection_that_came_free():
    async def run():
        pool = _pool(redisconn._LoopPool)
        try:
            connection = await _wait_outlived_by_lag(pool)
            await connection.send_command("PING")
            assert await connection.read_response() == b"PONG"
            await pool.release(connection)
        finally:
            await pool.aclose()

    asyncio.run(run())


def test_a_pool_with_no_connection_free_for_every_wait_still_refuses():
    async def run():
        pool = _pool(redisconn._LoopPool)
        held = await pool.get_connection()
        try:
            with pytest.raises(redis.ConnectionError, match="No connection available"):
                await pool.get_connection()
        finally:
            await pool.release(held)
            await pool.aclose()

    asyncio.run(run())


def test_a_pool_full_for_one_wait_waits_once_more_for_the_connection_that_comes_back():
    """Every connection checked out is load (each is mid-command and comes back within the command's
    timeout): a caller that found the pool full for one whole wait gets the next one that comes back."""

    async def run():
        pool = _pool(redisconn._LoopPool)
        held = await pool.get_connection()

        async def give_back_late() -> None:
            await asyncio.sleep(0.07)  # past the first wait (0.05 s), within the second
            await pool.release(held)

        returning = asyncio.create_task(give_back_late())
        try:
            connection = await pool.get_connection()
            await connection.send_command("PING")
            assert await connection.read_response() == b"PONG"
            await pool.release(connection)
        finally:
            await returning
            await pool.aclose()

    asyncio.run(run())


def test_the_running_loop_s_client_uses_it():
    async def run():
        try:
            assert isinstance(redisconn.aclient().connection_pool, redisconn._LoopPool)
        finally:
            await redisconn.aclose()

    asyncio.run(run())
