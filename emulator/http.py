"""Thin raw-ASGI plumbing: parse the request, send responses, drop or watch the connection."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from emulator.errors import ApiError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
HeaderList = list[tuple[bytes, bytes]]

JSON_TYPE = b"application/json"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    scheme: str
    receive: Receive
    body: bytes = b""
    api_key: str | None = None
    _json: Any = field(default=None, repr=False)

    @classmethod
    def from_scope(cls, scope: Scope, receive: Receive) -> Request:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        return cls(scope["method"], scope["path"], query, headers, scope.get("scheme", "http"), receive)

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.headers.get('host', 'localhost')}"

    async def read_body(self, limit: int) -> bytes:
        declared = self.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise ApiError(413)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise ApiError(413)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        self.body = b"".join(chunks)
        return self.body

    def json(self) -> Any:
        if self._json is None:
            try:
                self._json = json.loads(self.body)
            except (ValueError, UnicodeDecodeError) as exc:
                raise ApiError(400, f"There was an issue with the formatting of your request: {exc}") from exc
        return self._json


class Responder:
    """Sends one response; adds the common headers (request-id, rate limits) to whatever goes out."""

    def __init__(self, send: Send, common: Callable[[], HeaderList]) -> None:
        self.send = send
        self.common = common
        self.status: int | None = None
        self.extra: dict[str, str] = {}  # added to every response of this request (e.g. x-should-retry)

    async def start(
        self, status: int, content_type: bytes, extra: dict[str, str] | None = None, length: int | None = None
    ) -> None:
        headers = [(b"content-type", content_type), *self.common()]
        for more in (self.extra, extra or {}):
            headers.extend((k.encode(), v.encode()) for k, v in more.items())
        if length is not None:
            headers.append((b"content-length", str(length).encode()))
        self.status = status
        await self.send({"type": "http.response.start", "status": status, "headers": headers})

    async def body(self, data: bytes, more: bool = False) -> None:
        await self.send({"type": "http.response.body", "body": data, "more_body": more})

    async def json(self, status: int, obj: Any, extra: dict[str, str] | None = None) -> None:
        await self.raw(status, JSON_TYPE, json.dumps(obj).encode(), extra)

    async def raw(self, status: int, content_type: bytes, data: bytes, extra: dict[str, str] | None = None) -> None:
        await self.start(status, content_type, extra, length=len(data))
        await self.body(data)

    async def abort(self) -> None:
        """Drop the TCP connection without finishing the response (fault injection)."""
        transport = getattr(getattr(self.send, "__self__", None), "transport", None)
        if transport is not None:
            transport.abort()
        if self.status is None:
            self.status = 0  # recorded in stats as "no response"
        # Let the server's connection_lost run so it doesn't log a "returned without response".
        await asyncio.sleep(0)
        await asyncio.sleep(0)


async def wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
