"""One listener per process on one Redis channel, for the per-process copies that must drop what they
copied when another process changes it: verified partner keys (api/keycache.py) and the admin-edited
tables (core/versioned.py). A change publishes its topic on the channel; the listener, a thread of its
own, counts it at once, so a copy may be trusted with no round trip per read.

The one rule every copy follows: take `heard(topic)` before reading what it copies, keep it with the
copy, and trust the copy only while `heard(topic)` is still the same and `listening()` holds (the
listener subscribed and heard from Redis within HEARD_SECONDS; it pings every PING_SECONDS). A copy loaded
while a message arrived is then never trusted afterwards. A subscription (the first, or one after a lost
connection) moves every topic's count, since a message may have been missed meanwhile; so does a message
whose topic this process never registered (its code may be older than the sender's).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

from claudeapp.core.redisconn import UNAVAILABLE, subscriber

log = logging.getLogger(__name__)

PING_SECONDS = 1.0
# Silence past this is a connection lost without an error (the worst case: a change reaches a process
# on such a connection that much later).
HEARD_SECONDS = 3.0

_state: dict[str, Any] = {"pid": None, "subscribed": False, "heard": 0.0, "channel": None}
_start_lock = threading.Lock()
# The channel is read a few times a call (every `listening()`): worked out once, again when tests move
# the cache prefix.
_channel: dict[str, str | None] = {"name": None}
# Messages counted per registered topic, and the times every topic was moved at once ("*"). Written
# under the lock (the listener and a process's own changes both count), read without it.
_counts: dict[str, int] = {"*": 0}
_count_lock = threading.Lock()


def channel() -> str:
    name = _channel["name"]
    if name is None:
        name = _channel["name"] = ":".join([settings.CACHES["default"].get("KEY_PREFIX", ""), "invalidate"])
    return name


def _caches_changed(*, setting: str, **_: Any) -> None:
    if setting == "CACHES":
        _channel["name"] = None


setting_changed.connect(_caches_changed)


def register(topic: str) -> str:
    """Count `topic`'s messages in this process (a module or cache that copies it registers it once)."""
    _counts.setdefault(topic, 0)
    return topic


def heard(topic: str) -> int:
    """How often `topic` may have changed, as far as this process knows: it only grows."""
    return _counts[topic] + _counts["*"]


def changed_here(topic: str) -> None:
    """This process changed `topic` itself: its own copies drop it now, not when its message comes back."""
    _count(topic)


def listening() -> bool:
    """This process's listener is subscribed and heard from Redis lately (starts it when needed)."""
    if _state["pid"] is None:  # not started in this process (a forked child forgets its parent's)
        _start()
        return False
    return (
        _state["subscribed"]
        and time.monotonic() - _state["heard"] < HEARD_SECONDS
        and _state["channel"] == channel()  # the cache prefix moved (tests): not until it listens there
    )


def publish(client: Any, topic: str) -> None:
    """Tell every process that `topic` changed (`client`: a Redis client or a pipeline it is queued on)."""
    client.publish(channel(), topic)


def _start() -> None:
    with _start_lock:
        if _state["pid"] is not None:
            return
        _state.update(pid=os.getpid(), subscribed=False)
        threading.Thread(target=_listen_forever, args=(os.getpid(),), name="invalidations", daemon=True).start()


def _forget_parent() -> None:
    """In a forked child (Celery's prefork pool): the parent's listener thread did not come along, and a
    lock it held at the fork would never be released here."""
    global _start_lock, _count_lock
    _start_lock, _count_lock = threading.Lock(), threading.Lock()
    _state.update(pid=None, subscribed=False, channel=None)


os.register_at_fork(after_in_child=_forget_parent)


def _count(topic: str) -> None:
    with _count_lock:
        _counts[topic] += 1


def _everything() -> None:
    _count("*")


def _apply(topic: bytes | str) -> None:
    name = topic.decode() if isinstance(topic, bytes) else topic
    if name in _counts and name != "*":
        _count(name)
    else:
        _everything()  # unknown to this process's code: the safe reading is that anything may have changed


def _listen_forever(pid: int) -> None:
    while _state["pid"] == pid:
        try:
            _listen(pid)
        except UNAVAILABLE as exc:
            log.debug("invalidation listener lost Redis (%s); every cache checks its version meanwhile", exc)
        except Exception:  # the listener must not die for good: every read would check its version for ever
            log.exception("invalidation listener failed; restarting")
        _state.update(subscribed=False, channel=None)
        _everything()  # a message may have been missed while away
        time.sleep(1.0)


def _listen(pid: int) -> None:
    pubsub = subscriber()
    try:
        last_ping = 0.0
        while _state["pid"] == pid:
            wanted = channel()
            if wanted != _state["channel"]:  # the first subscription, or the cache prefix moved (tests do that)
                _state["subscribed"] = False
                if _state["channel"] is not None:
                    pubsub.unsubscribe(_state["channel"])
                _state["channel"] = wanted
                pubsub.subscribe(wanted)
            now = time.monotonic()
            if now - last_ping >= PING_SECONDS:
                pubsub.ping()
                last_ping = now
            message = pubsub.get_message(timeout=1.0)
            if message is None:
                continue
            _state["heard"] = time.monotonic()
            if message["type"] == "subscribe" and message["channel"] == _state["channel"].encode():
                _everything()  # what was copied before the subscription was never covered by it
                _state["subscribed"] = True
            elif message["type"] == "message":
                _apply(message["data"])
    finally:
        pubsub.close()
