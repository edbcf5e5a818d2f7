"""Server-sent events for the streaming endpoints."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from django.http import StreamingHttpResponse

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no proxy buffering of tokens


def frame(event: str, data: Any) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"event: {event}\ndata: {payload}\n\n".encode()


def response(events: AsyncIterator[bytes], headers: dict[str, str]) -> StreamingHttpResponse:
    resp = StreamingHttpResponse(events, content_type="text/event-stream; charset=utf-8")
    for name, value in {**SSE_HEADERS, **headers}.items():
        resp[name] = value
    return resp
