"""The API's body-size cap at the ASGI edge, for the full Django handler and the partner fast path.

Django's ASGIHandler reads the whole body (spooling it to disk) before any middleware runs, and a
chunked body carries no Content-Length for ApiBoundaryMiddleware to check: a 12 MB chunked body
used to pass the 10 MB cap. On /api and /anthropic the body is counted as it arrives and refused
with 413 in the path's error shape the moment it passes API_MAX_BODY_BYTES (a declared
Content-Length above the cap is refused before a byte is read). The rest is never buffered.

A chunked body that fits gets its length set as CONTENT_LENGTH, so DRF views (which read no body
without one) see it like any other.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.http import JsonResponse

from claudeapp.api import requestid
from claudeapp.api.errors import ErrorInfo, anthropic_error_body, api_error_body, is_anthropic_path

API_PREFIXES = ("/api/", "/anthropic/")


class BodyTooLarge(Exception):
    pass


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _counting(receive: Any, limit: int) -> Any:
    received = 0

    async def receive_capped() -> dict[str, Any]:
        nonlocal received
        message = await receive()
        if message.get("type") == "http.request":
            received += len(message.get("body") or b"")
            if received > limit:
                raise BodyTooLarge
        return message

    return receive_capped


def too_large_response(scope: dict[str, Any]) -> JsonResponse:
    limit = settings.API_MAX_BODY_BYTES
    info = ErrorInfo(413, "request_too_large", f"Request body is too large: the limit is {limit} bytes.")
    rid = requestid.from_caller(_header(scope, b"x-request-id"))
    path = scope.get("path", "")
    body = anthropic_error_body(info, rid) if is_anthropic_path(path) else api_error_body(info, rid)
    response = JsonResponse(body, status=413)
    response[requestid.HEADER] = rid
    if is_anthropic_path(path):
        response["request-id"] = rid
    response["Connection"] = "close"  # the rest of the body is never read
    return response


class CappedBodyMixin:
    """For ASGIHandler subclasses: the cap above on API paths; every other path is Django's own."""

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if not scope.get("path", "").startswith(API_PREFIXES):
            await super().handle(scope, receive, send)  # type: ignore[misc]
            return
        limit = settings.API_MAX_BODY_BYTES
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self.send_response(too_large_response(scope), send)  # type: ignore[attr-defined]
            return
        try:
            await super().handle(scope, _counting(receive, limit), send)  # type: ignore[misc]
        except BodyTooLarge:  # raised while Django read the body: nothing has been sent yet
            await self.send_response(too_large_response(scope), send)  # type: ignore[attr-defined]

    def create_request(self, scope: dict[str, Any], body_file: Any) -> Any:
        request, error = super().create_request(scope, body_file)  # type: ignore[misc]
        if request is not None and "CONTENT_LENGTH" not in request.META and scope["path"].startswith(API_PREFIXES):
            body_file.seek(0, 2)
            request.META["CONTENT_LENGTH"] = str(body_file.tell())
            body_file.seek(0)
        return request, error


class CappedASGIHandler(CappedBodyMixin, ASGIHandler):
    """Django's ASGIHandler with the API body cap: the application for every non-fast-path request."""
