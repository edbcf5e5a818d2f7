"""The one per-process cache of admin-edited tables (prices, budgets, rate-limit policies, the model
map): a copy in each process, reloaded when a version counter in Redis moves.

A save bumps the counter on commit and publishes the cache's topic on the invalidation channel
(core/invalidation.py): every process hearing it drops its copy at once. While this process's listener
is heard, a copy loaded since the last message is trusted with no round trip; otherwise reads check the
counter at most every `refresh` seconds, so every process reloads within that time (a `refresh` of 0:
every read checks, listener or not). While Redis is away the copy is reloaded at every refresh instead
(the database is the truth). The partner-key cache is not one of these: its copies are per key, with a
shared copy in Redis between (claudeapp/api/keycache.py); it hears the same channel.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from django.conf import settings

from claudeapp.core import invalidation
from claudeapp.core.redisconn import UNAVAILABLE, client

T = TypeVar("T")


def version_key(name: str) -> str:
    return ":".join([settings.CACHES["default"].get("KEY_PREFIX", ""), "version", name])


class VersionedCache(Generic[T]):
    def __init__(self, name: str, loader: Callable[[], T], *, refresh: Callable[[], float]) -> None:
        self.name, self.loader, self.refresh = name, loader, refresh
        self._value: T | None = None
        self._version: bytes | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()  # one reload at a time per process
        self._topic = invalidation.register(f"version:{name}")
        # The topic's count when the last check began; whether the listener may vouch for that check
        # (not when Redis was away during it).
        self._checked_heard = -1
        self._vouched = False

    def fresh(self) -> T | None:
        """The copy when it needs no check now, else None (lets async callers skip a thread hop)."""
        if self._value is None or self._checked_heard != invalidation.heard(self._topic):
            return None  # never checked, or a message since the check
        refresh = self.refresh()
        if refresh > 0 and self._vouched and invalidation.listening():
            return self._value  # no message since the check: nothing changed anywhere
        if time.monotonic() - self._checked_at < refresh:
            return self._value
        return None

    def get(self) -> T:
        value = self.fresh()
        if value is not None:
            return value
        now, heard = time.monotonic(), invalidation.heard(self._topic)
        try:
            version: bytes | None = client().get(version_key(self.name))
            unreachable = False
        except UNAVAILABLE:
            version, unreachable = b"unavailable", True
        with self._lock:
            if self._value is None or unreachable or version != self._version:
                self._value = self.loader()
                self._version = version
            # A message during this check moved the count past `heard`: the next read checks again.
            self._checked_at, self._checked_heard, self._vouched = now, heard, not unreachable
            return self._value

    def clear(self) -> None:
        """Drop this process's copy (tests; and after writes this process must see at once)."""
        self._value, self._checked_at, self._checked_heard = None, float("-inf"), -1

    def bump(self) -> None:
        """Tell every process to reload (call it on commit of the edit)."""
        self.clear()
        with contextlib.suppress(*UNAVAILABLE):  # other processes reload within the refresh time anyway
            redis = client()  # a rare admin-side write: two plain commands, in this order
            redis.incr(version_key(self.name))
            invalidation.publish(redis, self._topic)  # after the counter moved: a reader told checks it
