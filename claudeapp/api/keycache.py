"""Verified-key cache: a per-process copy in front of a shared Redis copy in front of Postgres.

Revocation has to bite at once in every process. Revoking (or any change to a key, its owner or
their groups) bumps a global version in Redis *and* publishes the "apikeys" topic on the process's
invalidation channel (claudeapp/core/invalidation.py, a listener thread per process): every snapshot
kept in this process holds the topic's count from when its load began, and one the listener has counted
a message past is never served again. While the listener is subscribed and has heard from Redis lately,
any other per-process hit is trusted as is: no Redis round trip per call. Otherwise
(not subscribed yet, connection lost, a silent Redis) each lookup reads the version, as before: every
cached snapshot remembers the version it was read under, and a bumped version makes it stale.
The version is read *before* the database, so a snapshot loaded just before a revoke commits carries
the old version and is never trusted afterwards; a snapshot whose load overlapped a message is used
for its request but not kept (the topic's count moved).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from claudeapp.core import invalidation
from claudeapp.core.redisconn import UNAVAILABLE
from claudeapp.core.redisconn import aclient as _aclient
from claudeapp.core.redisconn import client as _client
from claudeapp.core.singleflight import SingleFlight

Snapshot = dict[str, Any]
Loader = Callable[[str], Snapshot | None]

_SHARED_TTL_SECONDS = 300  # bounds staleness of owner group ids; revocation never waits for it
_TOUCH_INTERVAL_SECONDS = 60
_LOCAL_MAX_ENTRIES = 10_000
_TOPIC = invalidation.register("apikeys")


@dataclass(frozen=True)
class _Entry:
    version: bytes
    fresh_until: float
    snapshot: Snapshot
    heard: int  # the topic's count when its load began: a revocation counted since voids it


_local: dict[str, _Entry] = {}
_touched: dict[str, float] = {}
_listening = invalidation.listening


def _rkey(*parts: object) -> str:
    return ":".join([settings.CACHES["default"].get("KEY_PREFIX", ""), "apikeys", *map(str, parts)])


def _local_hit(prefix: str) -> _Entry | None:
    entry = _local.get(prefix)
    if entry is None:
        return None
    if entry.heard != invalidation.heard(_TOPIC):
        _local.pop(prefix, None)
        return None
    return entry if entry.fresh_until > time.monotonic() else None


def _remember(prefix: str, version: bytes, snapshot: Snapshot, heard: int) -> Snapshot:
    if heard != invalidation.heard(_TOPIC):
        return snapshot  # a revocation arrived while this was loading: use it once, keep nothing
    if len(_local) >= _LOCAL_MAX_ENTRIES:
        _local.clear()  # crude but bounded; a full reload costs one Redis read per key
    _local[prefix] = _Entry(version, time.monotonic() + settings.PARTNER_KEY_CACHE_SECONDS, snapshot, heard)
    return snapshot


def _shared(raw: bytes | None, version: bytes) -> Snapshot | None:
    if raw is None:
        return None
    snapshot: Snapshot = json.loads(raw)
    return snapshot if snapshot.get("_v") == version.decode() else None


def _encode(snapshot: Snapshot, version: bytes) -> str:
    return json.dumps({**snapshot, "_v": version.decode()})


def lookup(prefix: str, load: Loader) -> Snapshot | None:
    """The key's snapshot, from the fastest copy that is provably not stale."""
    try:
        client, heard, entry = _client(), invalidation.heard(_TOPIC), _local_hit(prefix)
        if entry is not None and (_listening() or (client.get(_rkey("version")) or b"0") == entry.version):
            return entry.snapshot
        version_raw, raw = client.mget([_rkey("version"), _rkey("snap", prefix)])
        version = version_raw or b"0"
        snapshot = _shared(raw, version)
        if snapshot is None:
            snapshot = load(prefix)
            if snapshot is None:
                return None
            client.set(_rkey("snap", prefix), _encode(snapshot, version), ex=_SHARED_TTL_SECONDS)
        return _remember(prefix, version, snapshot, heard)
    except UNAVAILABLE:
        _local.pop(prefix, None)
        return load(prefix)  # no cache while Redis is away: the database is the truth


async def alookup(prefix: str, load: Callable[[str], Awaitable[Snapshot | None]]) -> Snapshot | None:
    """`lookup` for async views; `load` runs only on a miss in both caches. A miss is read once for the
    callers of a moment (`_misses`)."""
    heard, entry = invalidation.heard(_TOPIC), _local_hit(prefix)
    if entry is not None and _listening():
        return entry.snapshot
    snapshot, _ = await _misses.run((prefix, heard), functools.partial(_aread, prefix, load, entry, heard))
    return snapshot


# A key no copy in this process vouches for, asked by many calls at once (a cold process, or every copy
# dropped by a revocation, under 2,000 streams opening together): one Redis read, and on a miss there one
# Postgres load, for all of them, where each would otherwise send its own, run the Redis pool dry and fall
# back to Postgres one by one. Keyed by the topic's count too: a caller after a revocation message never
# takes a read begun before it.
_misses: SingleFlight[Snapshot | None] = SingleFlight()


async def _aread(
    prefix: str, load: Callable[[str], Awaitable[Snapshot | None]], entry: _Entry | None, heard: int
) -> Snapshot | None:
    try:
        client = _aclient()
        if entry is not None and (await _version(client)) == entry.version:
            return entry.snapshot
        version_raw, raw = await client.mget([_rkey("version"), _rkey("snap", prefix)])
        version = version_raw or b"0"
        snapshot = _shared(raw, version)
        if snapshot is None:
            snapshot = await load(prefix)
            if snapshot is None:
                return None
            await client.set(_rkey("snap", prefix), _encode(snapshot, version), ex=_SHARED_TTL_SECONDS)
        return _remember(prefix, version, snapshot, heard)
    except UNAVAILABLE:
        _local.pop(prefix, None)
        return await load(prefix)


_version_reads: SingleFlight[bytes] = SingleFlight()


async def _version(client: Any) -> bytes:
    """The revocation version, read once for the callers of a moment (a lagging listener thread sends
    every warm lookup here at once)."""

    async def read() -> bytes:
        return await client.get(_rkey("version")) or b"0"

    version, _ = await _version_reads.run("version", read)
    return version


def invalidate(prefix: str | None = None) -> None:
    """Make every cached copy of every key stale, in every process, now: this process's at once,
    the others' by the version and the revocation message."""
    invalidation.changed_here(_TOPIC)
    _local.clear()
    try:
        client = _client()  # a rare admin-side write: three plain commands, in this order
        if prefix is not None:
            client.delete(_rkey("snap", prefix))
        client.incr(_rkey("version"))
        invalidation.publish(client, _TOPIC)
    except UNAVAILABLE:
        pass  # Redis is away from here: nothing can reach the others (their copies expire on their own)


def _touch_due_locally(prefix: str) -> bool:
    now = time.monotonic()
    if now - _touched.get(prefix, float("-inf")) < _TOUCH_INTERVAL_SECONDS:
        return False
    if len(_touched) >= _LOCAL_MAX_ENTRIES:
        _touched.clear()
    _touched[prefix] = now
    return True


def claim_touch(prefix: str) -> bool:
    """True for at most one caller per key per minute across all processes: that caller writes last_used_at."""
    if not _touch_due_locally(prefix):
        return False
    try:
        return bool(_client().set(_rkey("touched", prefix), 1, nx=True, ex=_TOUCH_INTERVAL_SECONDS))
    except UNAVAILABLE:
        return True


async def aclaim_touch(prefix: str) -> bool:
    if not _touch_due_locally(prefix):
        return False
    try:
        return bool(await _aclient().set(_rkey("touched", prefix), 1, nx=True, ex=_TOUCH_INTERVAL_SECONDS))
    except UNAVAILABLE:
        return True
