"""The Messages API call with retries, circuit breaker and fallback chain.

    complete(...)   sync, for Celery workers and scripts
    acomplete(...)  async, for ASGI views
    astream(...)    async generator of StreamStart / TextDelta / StreamEnd | StreamTruncated

The caller decides the chain (`models`: the model asked first, then its fallbacks); this module
decides how hard to try each one. It owns retries (the SDK's are off, see client.py).

One module per way of calling (sync_call, async_call, stream_call) over one request and retry
bookkeeping (attempts.py, applying policy.py); this module is their one import point.
"""

from __future__ import annotations

from claudeapp.claude.async_call import acomplete
from claudeapp.claude.results import (
    GatewayResult,
    RawEvent,
    StreamEnd,
    StreamEvent,
    StreamStart,
    StreamTruncated,
    TextDelta,
)
from claudeapp.claude.stream_call import astream
from claudeapp.claude.sync_call import complete

__all__ = [
    "GatewayResult",
    "RawEvent",
    "StreamEnd",
    "StreamEvent",
    "StreamStart",
    "StreamTruncated",
    "TextDelta",
    "acomplete",
    "astream",
    "complete",
]
