"""Billing's Redis helpers (pipelined script batches, namespaced keys) over the project's one client,
claudeapp.core.redisconn. Its per-process caches are claudeapp.core.versioned's."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import TypeVar

import redis
from django.conf import settings

from claudeapp.core.redisconn import UNAVAILABLE, client
from claudeapp.core.versioned import VersionedCache

T = TypeVar("T")

__all__ = ["UNAVAILABLE", "Batch", "batch", "cached", "client", "key"]

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


def cached(name: str, loader: Callable[[], T]) -> VersionedCache[T]:
    """A per-process copy of a billing table, checked against Redis every BILLING_CACHE_SECONDS."""
    return VersionedCache(f"billing:{name}", loader, refresh=lambda: settings.BILLING_CACHE_SECONDS)
