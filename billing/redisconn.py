"""Billing's Redis helpers (pipelined script batches, namespaced keys, versioned caches) over the
project's one raw client, claudeapp.core.redisconn."""

from __future__ import annotations

import contextlib
import logging
import time

import redis
from django.conf import settings

from claudeapp.core.redisconn import UNAVAILABLE, client

__all__ = ["UNAVAILABLE", "Batch", "VersionedCache", "batch", "client", "key"]

log = logging.getLogger(__name__)


class Batch:
    """Lua script calls queued for one pipelined round trip (see `batch`)."""

    def __init__(self) -> None:
        self.pipe = client().pipeline(transaction=False)
        self.calls: list[tuple[object, list[str], list[object]]] = []

    def script(self, script, *, keys: list[str], args: list[object]) -> None:  # type: ignore[no-untyped-def]
        # EVALSHA directly: handing the Script object to the pipeline would add a SCRIPT EXISTS round trip.
        self.pipe.evalsha(script.sha, len(keys), *keys, *args)
        self.calls.append((script, keys, args))

    def execute(self) -> None:
        if not self.calls:
            return
        results = self.pipe.execute(raise_on_error=False)
        for (script, keys, args), result in zip(self.calls, results, strict=True):
            if isinstance(result, redis.exceptions.NoScriptError):  # Redis restarted or flushed: load and run
                script(keys=keys, args=args)  # type: ignore[operator]
            elif isinstance(result, Exception):
                raise result


@contextlib.contextmanager
def batch(what: str):  # type: ignore[no-untyped-def]
    """Queue script calls and send them in one round trip on exit (best effort: an unreachable
    Redis is logged, as each of the queued writes would have been on its own)."""
    queued = Batch()
    yield queued
    try:
        queued.execute()
    except UNAVAILABLE as exc:
        log.warning("billing: could not %s (%s)", what, exc)


def key(*parts: object) -> str:
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
    return ":".join([prefix, "billing", *map(str, parts)])


class VersionedCache:
    """A per-process cache that reloads when a Redis version key moves, checked at most every BILLING_CACHE_SECONDS.

    Many processes each hold a copy; an admin save bumps the key, so all of them reload within that time.
    When Redis is down the copy is simply reloaded as often.
    """

    def __init__(self, name: str, loader) -> None:  # type: ignore[no-untyped-def]
        self.name, self.loader = name, loader
        self._value: object = None
        self._version: bytes | None = None
        self._checked_at = float("-inf")

    def get(self):  # type: ignore[no-untyped-def]
        now = time.monotonic()
        if now - self._checked_at < settings.BILLING_CACHE_SECONDS and self._value is not None:
            return self._value
        try:
            version: bytes | None = client().get(key("version", self.name))
            unreachable = False
        except UNAVAILABLE:
            version, unreachable = b"unavailable", True
        if self._value is None or unreachable or version != self._version:
            self._value = self.loader()
            self._version = version
        self._checked_at = now
        return self._value

    def clear(self) -> None:
        """Drop this process's copy (tests; and after writes this process must see at once)."""
        self._value, self._checked_at = None, float("-inf")

    def bump(self) -> None:
        self._checked_at = float("-inf")
        with contextlib.suppress(*UNAVAILABLE):  # other processes reload within the cache time anyway
            client().incr(key("version", self.name))
