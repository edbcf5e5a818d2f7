"""The key cache's revocation listener (claudeapp/api/keycache.py): while a process hears the
revocation channel, a warm key costs no Redis round trip, and a revocation published anywhere drops
its copy at once; when it does not hear it, every lookup asks the version, as before. Real Redis."""

from __future__ import annotations

import time

import pytest
from django.conf import settings

from claudeapp.api import keycache
from claudeapp.core import redisconn


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
    while prefix in keycache._local:
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
    redisconn.client().publish(keycache._channel(), "kcr-one")
    _wait_dropped("kcr-one")
    assert keycache.lookup("kcr-one", load)["n"] == 2


def test_without_a_listener_heard_lately_every_lookup_checks_the_version(loads):
    calls, load = loads
    _wait_listening()
    keycache.lookup("kcr-two", load)
    keycache._listener["heard"] = 0.0  # silence from Redis, as over a connection that died quietly
    assert not keycache._listening()
    keycache.lookup("kcr-two", load)
    assert calls == ["kcr-two"]  # same version: the copy stands
    redisconn.client().incr(keycache._rkey("version"))
    keycache._listener["heard"] = 0.0
    keycache.lookup("kcr-two", load)
    assert calls == ["kcr-two", "kcr-two"]  # the moved version made it stale


def test_invalidate_drops_this_process_copy_at_once_and_tells_the_others(loads):
    calls, load = loads
    _wait_listening()
    keycache.lookup("kcr-three", load)
    pubsub = redisconn.subscriber()
    pubsub.subscribe(keycache._channel())
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    keycache.invalidate("kcr-three")
    assert "kcr-three" not in keycache._local  # here: no wait for the message
    message = pubsub.get_message(timeout=5)
    pubsub.close()
    assert message["type"] == "message" and message["data"] == b"kcr-three"
    keycache.lookup("kcr-three", load)
    assert calls == ["kcr-three", "kcr-three"]


def test_a_load_that_overlapped_a_revocation_is_used_once_but_not_kept(loads):
    _, load = loads

    def racing_load(prefix: str) -> dict:
        keycache._drop_all()  # the listener applies a message while this load reads Postgres
        return load(prefix)

    keycache.lookup("kcr-four", racing_load)
    assert "kcr-four" not in keycache._local


def test_the_channel_is_scoped_by_the_cache_prefix():
    assert keycache._channel().startswith(settings.CACHES["default"].get("KEY_PREFIX", ""))
