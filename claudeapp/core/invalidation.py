"""One listener per process on one Redis channel, for the per-process copies that must drop what they
copied when another process changes it: verified partner keys (api/keycache.py) and the admin-edited
tables (core/versioned.py). A change publishes its topic on the channel; the listener, a thread of its
own, calls the topic's handler at once, so a copy may be trusted with no round trip per read.

Trust needs the listener to be subscribed and to have heard from Redis within HEARD_SECONDS (it pings
every PING_SECONDS): `listening()`. A subscription (the first, or one after a lost connection) calls
every handler, since a message may have been missed meanwhile; so does a message whose topic no handler
claims. A copy loaded while a message arrived must not be trusted afterwards: each handler bumps an epoch
of its cache's own that a load compares before and after.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings

from claudeapp.core.redisconn import UNAVAILABLE, subscriber

log = logging.getLogger(__name__)

PING_SECONDS = 1.0
# Silence past this is a connection lost without an error (the worst case: a change reaches a process
# on such a connection that much later).
HEARD_SECONDS = 3.0

_state: dict[str, Any] = {"pid": None, "subscribed": False, "heard": 0.0, "channel": None}
_start_lock = threading.Lock()
_handlers: dict[str, Callable[[], None]] = {}


def channel() -> str:
    return ":".join([settings.CACHES["default"].get("KEY_PREFIX", ""), "invalidate"])


def on(topic: str, handler: Callable[[], None]) -> None:
    """`handler()` runs on the listener's thread when `topic` is published, and on every (re)subscription."""
    _handlers[topic] = handler


def listening() -> bool:
    """This process's listener is subscribed and heard from Redis lately (starts it when needed)."""
    if _state["pid"] != os.getpid():
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
        if _state["pid"] == os.getpid():
            return
        _state.update(pid=os.getpid(), subscribed=False)
        threading.Thread(target=_listen_forever, args=(os.getpid(),), name="invalidations", daemon=True).start()


def _everything() -> None:
    for handler in list(_handlers.values()):
        handler()


def _apply(topic: bytes | str) -> None:
    name = topic.decode() if isinstance(topic, bytes) else topic
    handler = _handlers.get(name)
    if handler is None:
        _everything()  # unknown to this process's code: the safe reading is that anything may have changed
    else:
        handler()


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
