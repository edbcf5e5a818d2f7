"""The HTTP hop to the Messages API on the async hot path: one pooled aiohttp session per event loop.

The gateway's async calls (`acomplete`, `astream`) need three things from a response: its status
and headers, the JSON body or the SSE events as (event, data) pairs, and errors as UpstreamError.
The SDK gives that through pydantic request options, httpx and tracing hooks, at several
milliseconds of CPU per call; this module sends the same request and reads the same bytes with a
fraction of that (docs/benchmarks.md, "Per-stage budget"). Retries stay the gateway's, as with the
SDK (its own are off). The sync path (Celery workers), count_tokens, Batches and the classifier
keep the SDK: none of them is on the per-request path of a web process.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp

from claudeapp.claude.client import http_session, messages_url, request_headers
from claudeapp.claude.errors import UpstreamError, UpstreamUnavailable, from_status

__all__ = ["Response", "post_messages"]


class Response:
    """A 2xx answer whose body has not been read yet."""

    def __init__(self, raw: aiohttp.ClientResponse, model: str) -> None:
        self._raw, self._model = raw, model
        self.status = raw.status
        self.headers: Mapping[str, str] = raw.headers
        self.request_id: str | None = raw.headers.get("request-id")

    async def json(self) -> Any:
        try:
            body = await self._raw.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _transport_error(exc, self._model) from exc
        try:
            return json.loads(body)
        except ValueError as exc:
            raise UpstreamUnavailable(
                "upstream sent a body that is not JSON", error_type="bad_response", retryable=True, model=self._model
            ) from exc

    async def sse(self) -> AsyncIterator[tuple[str | None, str]]:
        """The stream's events as (event name, data), in order. A cut connection raises UpstreamUnavailable.

        Lines are split here rather than by the reader's readline(), which refuses lines over 64 KiB
        (a content_block_start carrying server-tool results can be longer)."""
        event: str | None = None
        data: list[str] = []
        pending = b""
        try:
            async for chunk in self._raw.content.iter_any():
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    ended = self._line(line, data)
                    if ended is _BLANK:
                        if data:
                            yield event, "\n".join(data)
                        event, data = None, []
                    elif ended is not None:
                        event = ended
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _transport_error(exc, self._model) from exc
        if pending:
            ended = self._line(pending, data)
            if ended not in (None, _BLANK):
                event = ended
        if data:
            yield event, "\n".join(data)

    @staticmethod
    def _line(raw: bytes, data: list[str]) -> str | object | None:
        """Apply one line: a data line joins `data`; returns the event name of an event line, _BLANK for
        the blank line that ends an event, None otherwise (id:, retry:, comments carry nothing we use)."""
        text = raw.decode("utf-8").rstrip("\r")
        if not text:
            return _BLANK
        if text.startswith("data:"):
            data.append(text[6:] if text.startswith("data: ") else text[5:])
        elif text.startswith("event:"):
            return text[6:].strip()
        return None


_BLANK = object()


@contextlib.asynccontextmanager
async def post_messages(
    params: Mapping[str, Any],
    *,
    model: str,
    timeout: float | None = None,
    headers: Mapping[str, str] | None = None,
) -> AsyncIterator[Response]:
    """POST /v1/messages; yields the 2xx response to read, raises UpstreamError for anything else.

    The connection goes back to the pool when the block exits (read to the end) or is dropped
    (left early: a reader that went away, an error).
    """
    session = http_session()
    options: dict[str, Any] = {}
    if timeout is not None:  # passing timeout=None to aiohttp would mean no timeout at all, not the session's
        options["timeout"] = _timeout(timeout)
    try:
        raw = await session.post(
            messages_url(),
            data=json.dumps(params, ensure_ascii=False, separators=(",", ":")).encode(),
            headers={**request_headers(), **(headers or {})},
            **options,
        )
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise _transport_error(exc, model) from exc
    try:
        if raw.status >= 300:
            raise await _status_error(raw, model)
        yield Response(raw, model)
    finally:
        raw.release()


async def _status_error(raw: aiohttp.ClientResponse, model: str) -> UpstreamError:
    try:
        body = await raw.read()
    except (TimeoutError, aiohttp.ClientError):
        body = b""
    error_type, message = None, ""
    try:
        error = json.loads(body).get("error") or {}
        error_type, message = error.get("type"), str(error.get("message") or "")
    except (ValueError, AttributeError):
        message = body[:200].decode("utf-8", "replace")
    return from_status(
        raw.status,
        error_type=error_type,
        message=message or f"upstream answered {raw.status}",
        request_id=raw.headers.get("request-id"),
        headers=raw.headers,
        model=model,
    )


def _transport_error(exc: BaseException, model: str) -> UpstreamUnavailable:
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return UpstreamUnavailable("upstream timed out", error_type="timeout", retryable=True, model=model)
    return UpstreamUnavailable(
        f"connection failed: {exc.__class__.__name__}", error_type="connection_error", retryable=True, model=model
    )


def _timeout(seconds: float) -> aiohttp.ClientTimeout:
    """A caller's own timeout bounds each wait (connect, every read), like the SDK's per-call timeout."""
    return aiohttp.ClientTimeout(total=None, connect=seconds, sock_read=seconds)
