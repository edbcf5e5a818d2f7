"""Billing's Redis helpers (pipelined script batches, namespaced keys) over the project's one client,
claudeapp.core.redisconn. Its per-process caches are claudeapp.core.versioned's."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

import redis
from django.conf import settings

from claudeapp.core.redisconn import UNAVAILABLE, client, execute_overlapped
from claudeapp.core.versioned import VersionedCache

T = TypeVar("T")

__all__ = ["UNAVAILABLE", "Batch", "batch", "cached", "client", "execute_overlapped", "key", "shared"]

log = logging.getLogger(__name__)


class Batch:
    """Lua script calls queued for one pipelined round trip (see `batch`)."""

    def __init__(self) -> None:
        self.pipe = client().pipeline(transaction=False)
        self.calls: list[tuple[object, list[str], list[object]]] = []
        self.what = ""  # what the calls queued next are for (named in a log line when one fails)
        self.whats: list[str] = []

    def script(self, script, *, keys: list[str], args: list[object]) -> None:  # type: ignore[no-untyped-def]
        # EVALSHA directly: handing the Script object to the pipeline would add a SCRIPT EXISTS round trip.
        self.pipe.evalsha(script.sha, len(keys), *keys, *args)
        self.calls.append((script, keys, args))
        self.whats.append(self.what)

    def execute(self, *, raise_errors: bool = True) -> None:
        """One round trip. A script's own error is raised (the first one), or with `raise_errors=False`
        logged naming what it was for, so one caller's failed write does not hide the others'."""
        if not self.calls:
            return
        results = self.pipe.execute(raise_on_error=False)
        for (script, keys, args), what, result in zip(self.calls, self.whats, results, strict=True):
            try:
                if isinstance(result, redis.exceptions.NoScriptError):  # Redis restarted or flushed: load, run
                    script(keys=keys, args=args)  # type: ignore[operator]
                elif isinstance(result, Exception):
                    raise result
            except UNAVAILABLE:
                raise
            except Exception:
                if raise_errors:
                    raise
                log.exception("billing: could not %s", what)


_thread = threading.local()  # .shared: the Batch that `batch` calls on this thread join (see `shared`)


@contextlib.contextmanager
def batch(what: str) -> Iterator[Batch]:
    """Queue script calls and send them in one round trip on exit (best effort: an unreachable
    Redis is logged, as each of the queued writes would have been on its own). Inside `shared`,
    the calls join that batch and go out with it instead."""
    outer: Batch | None = getattr(_thread, "shared", None)
    if outer is not None:
        outer.what = what
        yield outer
        return
    queued = Batch()
    queued.what = what
    yield queued
    try:
        queued.execute()
    except UNAVAILABLE as exc:
        log.warning("billing: could not %s (%s)", what, exc)


@contextlib.contextmanager
def shared() -> Iterator[None]:
    """Every `batch` opened on this thread meanwhile goes out in one round trip when this ends: a
    database thread settling several calls in a row (calls/yielding.py) sends their rate-limit
    releases and in-flight deletes together. The writes are the ones each `batch` would have sent,
    a few milliseconds later, after every statement of the block (each settlement's after its own
    bill, as before). Best effort as `batch` is: an unreachable Redis or a failed script is logged,
    never raised into the block's callers (their bills are already written)."""
    if getattr(_thread, "shared", None) is not None:  # already inside one: the outermost sends
        yield
        return
    queued = _thread.shared = Batch()
    try:
        yield
    finally:
        _thread.shared = None
        try:
            queued.execute(raise_errors=False)
        except UNAVAILABLE as exc:
            log.warning("billing: could not send %d queued writes (%s)", len(queued.calls), exc)


def key(*parts: object) -> str:
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
    return ":".join([prefix, "billing", *map(str, parts)])


def cached(name: str, loader: Callable[[], T]) -> VersionedCache[T]:
    """A per-process copy of a billing table, checked against Redis every BILLING_CACHE_SECONDS."""
    return VersionedCache(f"billing:{name}", loader, refresh=lambda: settings.BILLING_CACHE_SECONDS)
