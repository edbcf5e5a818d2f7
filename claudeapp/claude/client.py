"""SDK client factory. One client per process and event loop, configured from settings.

The SDK's own retries are off: the gateway owns retries (see gateway.py), so SDK
retries x gateway retries x Celery retries never multiply against an overloaded
upstream.
"""

from __future__ import annotations

from functools import lru_cache

import aiohttp
import anthropic
from django.conf import settings

from claudeapp.core.perloop import PerLoop

# The API version the gateway speaks upstream (the SDK's own default).
API_VERSION = "2023-06-01"


def _timeout() -> anthropic.Timeout:
    return anthropic.Timeout(settings.ANTHROPIC_TIMEOUT_SECONDS, connect=settings.ANTHROPIC_CONNECT_TIMEOUT_SECONDS)


def _api_key() -> str:
    # The emulator accepts any key; the SDK refuses to start without one.
    return settings.ANTHROPIC_API_KEY or "offline-emulator-key"


@lru_cache(maxsize=1)
def get_client() -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key=_api_key(), base_url=settings.ANTHROPIC_BASE_URL, timeout=_timeout(), max_retries=0
    )


def get_async_client() -> anthropic.AsyncAnthropic:
    """An AsyncAnthropic bound to the running event loop (its connection pool cannot cross loops)."""
    return _async_clients.get()


def _new_async_client() -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        api_key=_api_key(), base_url=settings.ANTHROPIC_BASE_URL, timeout=_timeout(), max_retries=0
    )


_async_clients = PerLoop(_new_async_client)


def http_session() -> aiohttp.ClientSession:
    """The running loop's pooled session for the hot path (claudeapp/claude/transport.py).

    Sized for thousands of open streams per process (ANTHROPIC_POOL_SIZE connections, kept alive);
    timeouts as the SDK client's: connect, then each read (a stream may run for minutes)."""
    return _sessions.get()


def _new_session() -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=settings.ANTHROPIC_POOL_SIZE,
        limit_per_host=0,
        keepalive_timeout=settings.ANTHROPIC_KEEPALIVE_SECONDS,
        ttl_dns_cache=300,
    )
    timeout = aiohttp.ClientTimeout(
        total=None, connect=settings.ANTHROPIC_CONNECT_TIMEOUT_SECONDS, sock_read=settings.ANTHROPIC_TIMEOUT_SECONDS
    )
    return aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=True)


_sessions = PerLoop(_new_session, usable=lambda session: not session.closed)


def messages_url() -> str:
    return settings.ANTHROPIC_BASE_URL.rstrip("/") + "/v1/messages"


def request_headers() -> dict[str, str]:
    return {
        "x-api-key": _api_key(),
        "anthropic-version": API_VERSION,
        "content-type": "application/json",
        "accept": "application/json",
        "user-agent": "claude-gateway",
    }


async def aclose_async_client() -> None:
    """Close this loop's clients. Call it before a loop ends (ASGI lifespan shutdown, the end of an
    `asyncio.run()`), else the SDK closes the pool later from whichever loop is running then."""
    client = _async_clients.pop()
    if client is not None:
        await client.close()
    session = _sessions.pop()
    if session is not None:
        await session.close()


def reset_clients() -> None:
    """Forget cached clients (tests that point settings at another emulator call this)."""
    get_client.cache_clear()
    _async_clients.clear()
    _sessions.clear()
