"""A lean Django handler for the partner-key call endpoints (the hot path), mounted in claudeapp/asgi.py.

Django's stock middleware are `MiddlewareMixin` classes: under ASGI each of their hooks hops to a
thread-sensitive worker thread, and every request gets a fresh one of those threads (created, then
joined by yet another thread). For the three partner call endpoints that cost more CPU than the
rest of the request. They are key-authenticated async views (no cookies, CSRF-exempt, request.user
set from the key), so sessions, CSRF, auth and messages do nothing for them. This handler keeps the
middleware that shapes their responses, Security, Common and X-Frame-Options, running their
(pure-CPU) hooks inline on the event loop, plus the API's own request-id and boundary middleware:
the chain is settings.MIDDLEWARE minus the ones named in PARTNER_CALL_SKIPPED_MIDDLEWARE (settings).
Every other path, browser ones included, keeps the full `settings.MIDDLEWARE` chain.

The remaining thread-sensitive work (the request_started signal, response.close) goes to one
long-lived thread instead of a new thread per request.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, markcoroutinefunction
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin
from django.utils.module_loading import import_string

from claudeapp.api.bodycap import CappedBodyMixin

# Exact paths only: a path not listed here (even with a trailing slash) takes the full chain.
PARTNER_CALL_PATHS = frozenset({"/anthropic/v1/messages", "/anthropic/v1/messages/count_tokens", "/api/v1/messages"})
_thread_sensitive = ThreadPoolExecutor(max_workers=1, thread_name_prefix="partner-sync")


def is_partner_call(path: str) -> bool:
    return path in PARTNER_CALL_PATHS


class Inline:
    """A MiddlewareMixin middleware whose hooks do no I/O, called on the event loop (no thread hop)."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response: Any, middleware_class: type) -> None:
        self.get_response = get_response
        self.inner = middleware_class(get_response)
        self.process_request = getattr(self.inner, "process_request", None)
        self.process_response_hook = getattr(self.inner, "process_response", None)
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.process_request(request) if self.process_request else None
        if response is None:
            response = await self.get_response(request)
        if self.process_response_hook:
            response = self.process_response_hook(request, response)
        return response


def chain() -> list[str]:
    """settings.MIDDLEWARE minus PARTNER_CALL_SKIPPED_MIDDLEWARE, in order: a middleware added to
    settings runs on the partner call endpoints too unless it is named there."""
    skipped = set(settings.PARTNER_CALL_SKIPPED_MIDDLEWARE)
    return [path for path in settings.MIDDLEWARE if path not in skipped]


class PartnerCallHandler(CappedBodyMixin, ASGIHandler):
    """ASGIHandler with the lean chain above and the API body cap counted as the body arrives
    (claudeapp/api/bodycap.py); everything else (request parsing, URL resolution, exception
    handling, streaming, disconnect handling) is Django's own.

    Django's `MiddlewareMixin` middleware (Security, Common, X-Frame-Options) run their hooks inline on
    the event loop: they must do no I/O (one that does belongs in the skipped list, or should be
    written async). Every other middleware is built as Django builds it, and must be async-capable."""

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response_async)
        for path in reversed(chain()):
            middleware_class = import_string(path)
            if issubclass(middleware_class, MiddlewareMixin):
                middleware = Inline(handler, middleware_class)
            else:
                middleware = middleware_class(handler)
            if hasattr(middleware, "process_exception"):
                self._exception_middleware.append(middleware.process_exception)
            handler = convert_exception_to_response(middleware)
        self._middleware_chain = handler

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        async with ThreadSensitiveContext(executor=_thread_sensitive):
            await self.handle(scope, receive, send)
