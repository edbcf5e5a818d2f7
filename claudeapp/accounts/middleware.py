"""A sign-in refused by the lockout (claudeapp/accounts/lockout.py) answers 429 with Retry-After and says why."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from claudeapp.accounts.lockout import LOCKED_ATTR, retry_after_header


def locked_out_response(request: HttpRequest, seconds: float) -> HttpResponse:
    minutes = max(1, math.ceil(seconds / 60))
    body = render_to_string("registration/locked_out.html", {"minutes": minutes}, request=request)
    response = HttpResponse(body, status=429)
    response["Retry-After"] = retry_after_header(seconds)
    return response


class LockoutMiddleware:
    """Plain callable in either mode (no thread hop under ASGI): one attribute check per response."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self._acall(request)
        return self._after(request, self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        return self._after(request, await self.get_response(request))

    def _after(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        seconds = getattr(request, LOCKED_ATTR, None)
        return locked_out_response(request, seconds) if seconds else response
