"""Content-Security-Policy on every page Django renders (settings.CONTENT_SECURITY_POLICY), by django-csp.

Scripts come from our own origin only, never inline (no 'unsafe-inline'): the chat's and the admin's
code lives in static files, and the one inline script left (the API docs' Swagger UI start-up, a
drf-spectacular template overridden in templates/drf_spectacular/) carries the per-request nonce.
"""

from __future__ import annotations

from csp.middleware import CSPMiddleware as _CSPMiddleware
from django.http import HttpRequest, HttpResponseBase


class CSPMiddleware(_CSPMiddleware):
    """django-csp's middleware, with its two hooks (pure CPU: a lazy nonce, one header) run inline under
    ASGI instead of each hopping to a thread as MiddlewareMixin does."""

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:  # type: ignore[override]
        self.process_request(request)
        response = await self.get_response(request)
        return self.process_response(request, response)
