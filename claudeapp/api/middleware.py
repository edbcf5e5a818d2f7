"""Request ids for every response, and the API boundary: body-size cap and JSON errors.

Both are written as plain callables that run natively in either mode (no MiddlewareMixin),
so an async request never hops to a thread just to pass through them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from claudeapp.api import requestid
from claudeapp.api.errors import TYPE_BY_STATUS, ErrorInfo, error_response_for, response_for

API_PREFIXES = ("/api/", "/anthropic/")
GetResponse = Callable[[HttpRequest], Any]


class _DualMode:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self._acall(request)
        early = self.before(request)
        return early if early is not None else self.after(request, self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        early = self.before(request)
        return early if early is not None else self.after(request, await self.get_response(request))

    def before(self, request: HttpRequest) -> HttpResponse | None:
        return None

    def after(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        return response


class RequestIdMiddleware(_DualMode):
    """`x-request-id` on every response: the caller's when it is sane, else `req_<uuid hex>`."""

    def before(self, request: HttpRequest) -> None:
        request.request_id = requestid.from_caller(request.META.get("HTTP_X_REQUEST_ID"))  # type: ignore[attr-defined]
        requestid.bind(request.request_id, path=request.path)  # type: ignore[attr-defined]

    def after(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        rid = getattr(request, "request_id", None) or requestid.new_id()
        response[requestid.HEADER] = rid
        if request.path.startswith("/anthropic/"):
            response["request-id"] = rid  # the header name Anthropic's SDK reads
        return response


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIXES)


class ApiBoundaryMiddleware(_DualMode):
    """On /api and /anthropic: refuse oversized bodies before anyone reads them, and answer
    every error (unknown URL, wrong method, unhandled exception) in the API's JSON shape."""

    def before(self, request: HttpRequest) -> HttpResponse | None:
        if not _is_api(request):
            return None
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if not declared.isdigit():
            return response_for(request, ErrorInfo(400, "invalid_request_error", "Invalid Content-Length header."))
        limit = settings.API_MAX_BODY_BYTES
        if int(declared) > limit:
            message = f"Request body is too large: the limit is {limit} bytes."
            return response_for(request, ErrorInfo(413, "request_too_large", message))
        return None

    def after(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if not _is_api(request) or response.status_code < 400 or response.streaming:
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        return response_for(request, _plain_error(response.status_code))

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        # DRF views handle their own; this catches plain (async) views and anything before them.
        return error_response_for(request, exception) if _is_api(request) else None


def _plain_error(status: int) -> ErrorInfo:
    messages = {404: "Not found.", 405: "Method not allowed.", 413: "Request body is too large."}
    types = {405: "invalid_request_error", 413: "request_too_large"}
    error_type = (
        types.get(status) or TYPE_BY_STATUS.get(status) or ("api_error" if status >= 500 else "invalid_request_error")
    )
    return ErrorInfo(
        status, error_type, messages.get(status, "Request failed." if status < 500 else "Internal server error.")
    )
