"""SDK client factory. One client per process and event loop, configured from settings.

The SDK's own retries are off: the gateway owns retries (see gateway.py), so SDK
retries x gateway retries x Celery retries never multiply against an overloaded
upstream.
"""

from __future__ import annotations

import asyncio
import weakref
from functools import lru_cache

import anthropic
from django.conf import settings


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


# Keyed by the loop object, weakly: a loop's id() can be reused by a later loop once the
# first is gone, and a client whose pool belongs to a dead loop fails on first use.
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anthropic.AsyncAnthropic] = (
    weakref.WeakKeyDictionary()
)


def get_async_client() -> anthropic.AsyncAnthropic:
    """An AsyncAnthropic bound to the running event loop (its connection pool cannot cross loops)."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        client = anthropic.AsyncAnthropic(
            api_key=_api_key(), base_url=settings.ANTHROPIC_BASE_URL, timeout=_timeout(), max_retries=0
        )
        _async_clients[loop] = client
    return client


async def aclose_async_client() -> None:
    """Close this loop's client. Call it before a loop ends (ASGI lifespan shutdown, the end of an
    `asyncio.run()`), else the SDK closes the pool later from whichever loop is running then."""
    client = _async_clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.close()


def reset_clients() -> None:
    """Forget cached clients (tests that point settings at another emulator call this)."""
    get_client.cache_clear()
    _async_clients.clear()
