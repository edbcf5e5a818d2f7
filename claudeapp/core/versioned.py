"""The one per-process cache of admin-edited tables (prices, budgets, rate-limit policies, the model
map): a copy in each process, reloaded when a version counter in Redis moves.

Reads check the counter at most every `refresh` seconds; a save bumps it on commit, so every
process reloads within that time with no query on the hot path in between. While Redis is away the
copy is reloaded at every refresh instead (the database is the truth). The partner-key cache is not
one of these: a revoked key must stop at once in every process, so it checks its version on every
lookup (claudeapp/api/keycache.py).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from django.conf import settings

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

    def fresh(self) -> T | None:
        """The copy when it needs no check now, else None (lets async callers skip a thread hop)."""
        if self._value is not None and time.monotonic() - self._checked_at < self.refresh():
            return self._value
        return None

    def get(self) -> T:
        value = self.fresh()
        if value is not None:
            return value
        now = time.monotonic()
        try:
            version: bytes | None = client().get(version_key(self.name))
            unreachable = False
        except UNAVAILABLE:
            version, unreachable = b"unavailable", True
        with self._lock:
            if self._value is None or unreachable or version != self._version:
                self._value = self.loader()
                self._version = version
            self._checked_at = now
            return self._value

    def clear(self) -> None:
        """Drop this process's copy (tests; and after writes this process must see at once)."""
        self._value, self._checked_at = None, float("-inf")

    def bump(self) -> None:
        """Tell every process to reload (call it on commit of the edit)."""
        self.clear()
        with contextlib.suppress(*UNAVAILABLE):  # other processes reload within the refresh time anyway
            client().incr(version_key(self.name))
