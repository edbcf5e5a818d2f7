"""Liveness and readiness probes for load balancers and orchestrators.

/readyz asks Postgres, Redis and the broker at once, each on its own: a dependency that hangs
costs its own timeout and its own verdict, never another's. The sync checks (Django's connection,
kombu) run in a small thread pool per dependency rather than the request's one sync thread, where a
hung broker connect would queue the Postgres check behind it and report Postgres as timed out (or
hide that it is down). A pool per dependency also caps the threads a dependency that hangs on
every probe can hold: its later probes wait in its own queue and time out as that dependency's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

import redis.asyncio as aioredis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from kombu import Connection

CHECK_TIMEOUT_SECONDS = 2.0

_EXECUTORS = {
    name: ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"readyz-{name}") for name in ("postgres", "broker")
}


async def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


async def readyz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, Callable[[], Awaitable[None]]] = {
        "postgres": _in_own_thread("postgres", _check_postgres),
        "redis": _check_redis,
        "broker": _in_own_thread("broker", _check_broker),
    }
    results = await asyncio.gather(*(_run_check(check) for check in checks.values()))
    report = dict(zip(checks, results, strict=True))
    failing = [name for name, error in report.items() if error]
    body: dict[str, object] = {
        "status": "unavailable" if failing else "ok",
        "checks": {name: error or "ok" for name, error in report.items()},
    }
    if failing:
        body["failing"] = failing
    return JsonResponse(body, status=503 if failing else 200)


async def _run_check(check: Callable[[], Awaitable[None]]) -> str | None:
    try:
        await asyncio.wait_for(check(), timeout=CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return f"TimeoutError: no answer within {CHECK_TIMEOUT_SECONDS:g} s"
    except Exception as exc:  # any failure means "not ready"; the message says which
        return f"{type(exc).__name__}: {exc}"[:300]
    return None


def _in_own_thread(name: str, check: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        await asyncio.get_running_loop().run_in_executor(_EXECUTORS[name], check)

    return run


def _check_postgres() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connection.close()  # this pool thread's connection: back to the pool (or closed) at once


async def _check_redis() -> None:
    client = aioredis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=CHECK_TIMEOUT_SECONDS, socket_timeout=CHECK_TIMEOUT_SECONDS
    )
    try:
        await client.ping()
    finally:
        await client.aclose()


def _check_broker() -> None:
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=CHECK_TIMEOUT_SECONDS) as conn:
        # One attempt: a retry sleeps first (2 s), which would report a refused broker as a timeout.
        conn.ensure_connection(max_retries=0, timeout=CHECK_TIMEOUT_SECONDS)
