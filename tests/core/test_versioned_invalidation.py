"""The per-process copies of admin-edited tables (claudeapp/core/versioned.py) trust the invalidation
listener (claudeapp/core/invalidation.py): while it is heard, a copy checked since the last message is
read with no Redis round trip, however long ago; a bump anywhere drops it at once; without the listener
(or with a refresh of 0) reads check the version every `refresh` seconds, as before. Real Redis: the
"other process" is a second client publishing on the same channel, which is all another process does."""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from claudeapp.core import invalidation, redisconn
from claudeapp.core.versioned import VersionedCache, version_key

_names = itertools.count()


def _wait(condition, seconds: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


@pytest.fixture
def listening() -> Iterator[None]:
    _wait(invalidation.listening, what="the invalidation listener never subscribed")
    yield


class Counted:
    """A cache on a name of its own, counting its loads and its version reads."""

    def __init__(self, refresh: float) -> None:
        self.name = f"test:versioned:{next(_names)}:{time.time_ns()}"
        self.loads = 0
        self.refresh = refresh
        self.cache: VersionedCache[int] = VersionedCache(self.name, self._load, refresh=lambda: self.refresh)

    def _load(self) -> int:
        self.loads += 1
        return self.loads

    def moved_elsewhere(self) -> None:
        """Another process saved an edit without telling anyone (nothing in the product does that)."""
        redisconn.client().incr(version_key(self.name))

    def bumped_elsewhere(self) -> None:
        """Another process saved an edit: what `bump` sends, from another connection."""
        client = redisconn.client()
        client.incr(version_key(self.name))
        invalidation.publish(client, f"version:{self.name}")


def test_a_heard_copy_needs_no_check_however_old(listening):
    counted = Counted(refresh=0.05)
    assert counted.cache.get() == 1
    counted.moved_elsewhere()
    time.sleep(0.1)  # past the refresh: without the listener this read would check and reload
    assert counted.cache.fresh() == 1 and counted.cache.get() == 1 and counted.loads == 1


def test_a_bump_elsewhere_drops_the_copy_at_once(listening):
    counted = Counted(refresh=60.0)
    assert counted.cache.get() == 1
    counted.bumped_elsewhere()
    _wait(lambda: counted.cache.fresh() is None, what="the bump's message never reached this process")
    assert counted.cache.get() == 2


def test_a_bump_here_drops_this_copy_at_once_and_tells_the_others(listening):
    counted = Counted(refresh=60.0)
    counted.cache.get()
    pubsub = redisconn.subscriber()
    pubsub.subscribe(invalidation.channel())
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    counted.cache.bump()
    assert counted.cache.fresh() is None  # here: no wait for the message
    message = pubsub.get_message(timeout=5)
    pubsub.close()
    assert message["type"] == "message" and message["data"] == f"version:{counted.name}".encode()
    assert counted.cache.get() == 2


def test_without_the_listener_heard_reads_check_every_refresh(listening):
    counted = Counted(refresh=0.05)
    counted.cache.get()
    invalidation._state["heard"] = 0.0  # silence from Redis, as over a connection that died quietly
    assert not invalidation.listening()
    assert counted.cache.get() == 1  # within the refresh: the copy
    counted.moved_elsewhere()
    time.sleep(0.1)
    invalidation._state["heard"] = 0.0
    assert counted.cache.get() == 2  # past it: checked, and the moved version reloads


def test_a_refresh_of_zero_checks_every_read_even_when_heard(listening):
    counted = Counted(refresh=0.0)
    counted.cache.get()
    counted.moved_elsewhere()
    assert counted.cache.get() == 2


def test_a_message_during_a_load_leaves_the_copy_untrusted(listening):
    counted = Counted(refresh=60.0)
    original = counted._load

    topic = f"version:{counted.name}"

    def racing() -> int:
        loaded, before = original(), invalidation.heard(topic)
        counted.bumped_elsewhere()  # another process saves while this one reads the old rows
        _wait(lambda: invalidation.heard(topic) > before, what="the message never arrived")
        return loaded

    counted.cache.loader = racing
    assert counted.cache.get() == 1
    counted.cache.loader = original
    assert counted.cache.fresh() is None  # checked again, not trusted
    assert counted.cache.get() == 2


def test_a_copy_read_while_redis_is_away_is_never_trusted(listening, monkeypatch):
    counted = Counted(refresh=0.05)

    def away():
        raise redis.ConnectionError("Redis is away")

    monkeypatch.setattr("claudeapp.core.versioned.client", away)
    assert counted.cache.get() == 1
    time.sleep(0.1)
    assert counted.cache.fresh() is None and counted.cache.get() == 2  # reloaded at every refresh meanwhile


def test_a_subscription_and_an_unknown_topic_drop_every_copy(listening):
    keys, model_map = Counted(refresh=60.0), Counted(refresh=60.0)
    keys.cache.get()
    model_map.cache.get()
    invalidation.publish(redisconn.client(), "a-topic-no-code-here-knows")
    _wait(lambda: keys.cache.fresh() is None and model_map.cache.fresh() is None, what="not every copy dropped")
    keys.cache.get()
    invalidation._everything()  # what the listener does on (re)subscribing: a message may have been missed
    assert keys.cache.fresh() is None


def test_a_moved_cache_prefix_is_not_trusted_until_the_listener_hears_its_channel(listening, settings):
    """Tests give the cache a prefix of their own: a listener left on the old channel must not vouch for it."""
    counted = Counted(refresh=60.0)
    caches = {name: dict(conf) for name, conf in settings.CACHES.items()}
    caches["default"]["KEY_PREFIX"] = f"{caches['default'].get('KEY_PREFIX', '')}-moved-{time.time_ns()}"
    settings.CACHES = caches
    assert not invalidation.listening()
    _wait(invalidation.listening, what="the listener never moved to the new channel")
    assert redisconn.client().pubsub_numsub(invalidation.channel()) == [(invalidation.channel().encode(), 1)]
    counted.cache.get()
    counted.bumped_elsewhere()
    _wait(lambda: counted.cache.fresh() is None, what="a bump on the new channel never arrived")


def test_a_topic_is_counted_by_its_own_messages_and_every_topic_by_a_subscription_or_a_stranger(listening):
    """The one rule every copy follows (keys, breaker, these caches): its topic's count only grows, and
    moves for anything that may have changed what it copied."""
    mine, other = (invalidation.register(f"test:count:{n}:{time.time_ns()}") for n in range(2))
    before = invalidation.heard(mine), invalidation.heard(other)
    invalidation.publish(redisconn.client(), mine)
    _wait(lambda: invalidation.heard(mine) == before[0] + 1, what="the message was never counted")
    assert invalidation.heard(other) == before[1]
    invalidation.changed_here(other)  # this process's own change counts at once, before its message returns
    assert invalidation.heard(other) == before[1] + 1
    invalidation.publish(redisconn.client(), "a-topic-no-code-here-knows")
    _wait(lambda: invalidation.heard(mine) == before[0] + 2, what="a stranger's topic did not move every count")
    invalidation._everything()  # what the listener does on (re)subscribing
    assert invalidation.heard(mine) == before[0] + 3 and invalidation.heard(other) == before[1] + 3


def _in_a_forked_child() -> str:
    """What Celery's prefork pool does to a worker child: everything copied, but not the listener's thread."""
    counted = Counted(refresh=60.0)
    counted.cache.get()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        verdict = "ok"
        try:
            os.close(read)
            if invalidation.listening():
                verdict = "trusted the parent's listener"
            else:
                _wait(invalidation.listening, what="the child never listened")
                if "invalidations" not in {t.name for t in threading.enumerate()}:
                    verdict = "no listener thread of its own"
                elif counted.cache.fresh() is not None:
                    verdict = "a copy from before its subscription was trusted"
                else:
                    counted.cache.get()
                    counted.bumped_elsewhere()
                    _wait(lambda: counted.cache.fresh() is None, what="a bump never reached the child")
        except BaseException as exc:  # any failure is the verdict
            verdict = f"{type(exc).__name__}: {exc}"
        os.write(write, verdict.encode())
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        return pipe.read() if os.waitstatus_to_exitcode(status) == 0 else f"child status {status}"


def test_a_forked_child_starts_a_listener_of_its_own_and_trusts_nothing_from_before_it(listening):
    assert _in_a_forked_child() == "ok"
    assert invalidation.listening()  # and the parent's goes on
