"""The key cache's revocation listener (claudeapp/api/keycache.py): while a process hears the
revocation channel, a warm key costs no Redis round trip, and a revocation published anywhere drops
its copy at once; when it does not hear it, every lookup asks the version, as before. Real Redis."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
from django.conf import settings

from claudeapp.api import keycache
from claudeapp.core import invalidation, redisconn


@pytest.fixture
def loads():
    keycache._local.clear()
    calls: list[str] = []

    def load(prefix: str) -> dict:
        calls.append(prefix)
        return {"prefix": prefix, "n": len(calls)}

    yield calls, load
    keycache._local.clear()


def _wait_listening(seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not keycache._listening():
        assert time.monotonic() < deadline, "the revocation listener never subscribed"
        time.sleep(0.05)


def _wait_dropped(prefix: str, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while keycache._local_hit(prefix) is not None:  # the copy is no longer served
        assert time.monotonic() < deadline, "a published revocation did not reach this process"
        time.sleep(0.02)


def test_a_heard_revocation_drops_the_copy_and_a_warm_key_asks_redis_nothing_meanwhile(loads):
    calls, load = loads
    _wait_listening()
    assert keycache.lookup("kcr-one", load)["n"] == 1
    # The version moves without a message (nothing does that in the product): a process that trusts
    # its listener does not ask it, which is the round trip saved on every call.
    redisconn.client().incr(keycache._rkey("version"))
    assert keycache.lookup("kcr-one", load)["n"] == 1 and calls == ["kcr-one"]
    # Another process revokes: the message reaches this one's listener, which drops the copy.
    invalidation.publish(redisconn.client(), "apikeys")
    _wait_dropped("kcr-one")
    assert keycache.lookup("kcr-one", load)["n"] == 2


def test_without_a_listener_heard_lately_every_lookup_checks_the_version(loads):
    calls, load = loads
    _wait_listening()
    keycache.lookup("kcr-two", load)
    invalidation._state["heard"] = 0.0  # silence from Redis, as over a connection that died quietly
    assert not keycache._listening()
    keycache.lookup("kcr-two", load)
    assert calls == ["kcr-two"]  # same version: the copy stands
    redisconn.client().incr(keycache._rkey("version"))
    invalidation._state["heard"] = 0.0
    keycache.lookup("kcr-two", load)
    assert calls == ["kcr-two", "kcr-two"]  # the moved version made it stale


def test_invalidate_drops_this_process_copy_at_once_and_tells_the_others(loads):
    calls, load = loads
    _wait_listening()
    keycache.lookup("kcr-three", load)
    pubsub = redisconn.subscriber()
    pubsub.subscribe(invalidation.channel())
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    keycache.invalidate("kcr-three")
    assert "kcr-three" not in keycache._local  # here: no wait for the message
    message = pubsub.get_message(timeout=5)
    pubsub.close()
    assert message["type"] == "message" and message["data"] == b"apikeys"
    keycache.lookup("kcr-three", load)
    assert calls == ["kcr-three", "kcr-three"]


def test_a_load_that_overlapped_a_revocation_is_used_once_but_not_kept(loads):
    _, load = loads

    def racing_load(prefix: str) -> dict:
        invalidation._apply(b"apikeys")  # the listener applies a message while this load reads Postgres
        return load(prefix)

    keycache.lookup("kcr-four", racing_load)
    assert "kcr-four" not in keycache._local


def test_the_channel_is_scoped_by_the_cache_prefix():
    assert invalidation.channel().startswith(settings.CACHES["default"].get("KEY_PREFIX", ""))


def _cold_lookups(prefix: str, callers: int, load) -> list:
    """`callers` async lookups of a key no cache holds yet, all at once on one loop."""

    async def aload(p: str) -> dict:
        await asyncio.sleep(0.02)  # Postgres takes a while: everyone else arrives meanwhile
        return load(p)

    async def scenario() -> list:
        return await asyncio.gather(*(keycache.alookup(prefix, aload) for _ in range(callers)))

    return asyncio.run(scenario())


@pytest.mark.parametrize("redis_up", [True, False], ids=["redis", "redis-unavailable"])
def test_a_key_asked_by_many_calls_at_once_is_read_once_for_all(loads, redis_up, monkeypatch):
    """2,000 streams opening together on a cold process each sent their own reads, ran the Redis pool dry,
    and fell back to Postgres one by one (1,133 loads in one run)."""
    calls, load = loads
    redisconn.client().delete(keycache._rkey("snap", "kcr-herd"))
    if not redis_up:
        monkeypatch.setattr(keycache, "_aclient", _unavailable)
    snapshots = _cold_lookups("kcr-herd", 200, load)
    assert calls == ["kcr-herd"] and all(s == {"prefix": "kcr-herd", "n": 1} for s in snapshots)
    if redis_up:  # and the next caller is served from this process's copy
        assert asyncio.run(keycache.alookup("kcr-herd", _never)) == snapshots[0]


def test_a_caller_after_a_revocation_message_does_not_share_a_read_begun_before_it(loads):
    calls, load = loads
    redisconn.client().delete(keycache._rkey("snap", "kcr-late"))

    async def scenario() -> None:
        async def aload(p: str) -> dict:
            await asyncio.sleep(0.02)
            return load(p)

        first = asyncio.ensure_future(keycache.alookup("kcr-late", aload))
        await asyncio.sleep(0.005)  # its read is on its way
        invalidation._apply(b"apikeys")  # the listener applies a revocation message
        await asyncio.gather(first, keycache.alookup("kcr-late", aload))

    asyncio.run(scenario())
    assert calls == ["kcr-late", "kcr-late"]


def _unavailable():
    raise redis.ConnectionError("Redis is away")


async def _never(prefix: str) -> dict:
    raise AssertionError("loaded again")
