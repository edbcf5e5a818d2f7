"""A database that cannot be reached answers 503 with retry-after, never a 500.

Postgres down, restarting, or every pooled connection taken past DB_POOL_TIMEOUT: the request
may well succeed a few seconds later, so the caller is told to retry (the anthropic SDK retries
a 503 on its own). The API's error shapes come from claudeapp/api/errors.py, which maps
DATABASE_ERRORS; the middleware here gives the browser's pages a plain 503 page.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import psycopg_pool
from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django import db
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

# Django wraps the driver's errors in its own classes; raw-cursor code paths may raise psycopg's.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    db.OperationalError,
    db.InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    psycopg_pool.PoolTimeout,
)
RETRY_AFTER_SECONDS = 5
MESSAGE = "The database is unavailable right now; retry in a few seconds."
API_PREFIXES = ("/api/", "/anthropic/")  # answered in the API's JSON shapes by claudeapp.api

_PAGE = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>Service unavailable</title>"
    "<h1>Service unavailable</h1><p>The gateway cannot reach its database right now. "
    "Nothing was lost; try again in a few seconds.</p></html>"
)


def is_unavailable(exception: BaseException) -> bool:
    """Whether `exception` says the database cannot be reached now (a 503 with retry-after, never a 500)."""
    return isinstance(exception, DATABASE_ERRORS)


def page_status(exception: BaseException) -> int:
    """The status a browser page's unhandled `exception` is answered with (by the middleware below)."""
    return 503 if is_unavailable(exception) else 500


def page_response() -> HttpResponse:
    # No template: rendering one would run context processors that read the session (the database).
    response = HttpResponse(_PAGE, status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware:
    """A database error raised by a browser page's view (or its template) becomes the plain 503 page."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if is_unavailable(exception) and not request.path.startswith(API_PREFIXES):
            logger.warning("database unavailable on %s %s: %s", request.method, request.path, exception)
            return page_response()
        return None
