"""The project's one raw Redis client (Lua scripts, version keys, counters), shared per process and URL.

It lives at the bottom so every layer may use it: billing's limits and caches, the sign-in lockout."""

from __future__ import annotations

import threading

import redis
from django.conf import settings

_lock = threading.Lock()
_clients: dict[str, redis.Redis] = {}

# Errors that mean "Redis is not there right now", as opposed to a bug in a script.
UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError, OSError)


def client() -> redis.Redis:
    url = settings.REDIS_URL
    found = _clients.get(url)
    if found is None:
        with _lock:
            found = _clients.setdefault(
                url, redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5, health_check_interval=30)
            )
    return found
