"""Verified-key cache: a per-process copy in front of a shared Redis copy in front of Postgres.

Revocation has to bite at once in every process, so each lookup reads one cheap Redis
key, the global revocation version. Every cached snapshot remembers the version it was
read under; revoking a key bumps the version, which makes every copy everywhere stale.
The version is read *before* the database, so a snapshot loaded just before a revoke
commits carries the old version and is never trusted afterwards.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from claudeapp.core.redisconn import UNAVAILABLE
from claudeapp.core.redisconn import aclient as _aclient
from claudeapp.core.redisconn import client as _client

Snapshot = dict[str, Any]
Loader = Callable[[str], Snapshot | None]

_SHARED_TTL_SECONDS = 300  # bounds staleness of owner group ids; revocation never waits for it
_TOUCH_INTERVAL_SECONDS = 60
_LOCAL_MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class _Entry:
    version: bytes
    fresh_until: float
    snapshot: Snapshot


_local: dict[str, _Entry] = {}
_touched: dict[str, float] = {}


def _rkey(*parts: object) -> str:
    return ":".join([settings.CACHES["default"].get("KEY_PREFIX", ""), "apikeys", *map(str, parts)])


def _local_hit(prefix: str) -> _Entry | None:
    entry = _local.get(prefix)
    if entry is not None and entry.fresh_until > time.monotonic():
        return entry
    return None


def _remember(prefix: str, version: bytes, snapshot: Snapshot) -> Snapshot:
    if len(_local) >= _LOCAL_MAX_ENTRIES:
        _local.clear()  # crude but bounded; a full reload costs one Redis read per key
    _local[prefix] = _Entry(version, time.monotonic() + settings.PARTNER_KEY_CACHE_SECONDS, snapshot)
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
        client, entry = _client(), _local_hit(prefix)
        if entry is not None and (client.get(_rkey("version")) or b"0") == entry.version:
            return entry.snapshot
        version_raw, raw = client.mget([_rkey("version"), _rkey("snap", prefix)])
        version = version_raw or b"0"
        snapshot = _shared(raw, version)
        if snapshot is None:
            snapshot = load(prefix)
            if snapshot is None:
                return None
            client.set(_rkey("snap", prefix), _encode(snapshot, version), ex=_SHARED_TTL_SECONDS)
        return _remember(prefix, version, snapshot)
    except UNAVAILABLE:
        _local.pop(prefix, None)
        return load(prefix)  # no cache while Redis is away: the database is the truth


async def alookup(prefix: str, load: Callable[[str], Awaitable[Snapshot | None]]) -> Snapshot | None:
    """`lookup` for async views; `load` runs only on a miss in both caches."""
    try:
        client, entry = _aclient(), _local_hit(prefix)
        if entry is not None and (await client.get(_rkey("version")) or b"0") == entry.version:
            return entry.snapshot
        version_raw, raw = await client.mget([_rkey("version"), _rkey("snap", prefix)])
        version = version_raw or b"0"
        snapshot = _shared(raw, version)
        if snapshot is None:
            snapshot = await load(prefix)
            if snapshot is None:
                return None
            await client.set(_rkey("snap", prefix), _encode(snapshot, version), ex=_SHARED_TTL_SECONDS)
        return _remember(prefix, version, snapshot)
    except UNAVAILABLE:
        _local.pop(prefix, None)
        return await load(prefix)


def invalidate(prefix: str | None = None) -> None:
    """Make every cached copy of every key stale, in every process, now."""
    if prefix is not None:
        _local.pop(prefix, None)
    try:
        client = _client()
        if prefix is not None:
            client.delete(_rkey("snap", prefix))
        client.incr(_rkey("version"))
    except UNAVAILABLE:
        _local.clear()  # other processes bypass their caches while Redis is down


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
