"""Request ids: one per request, echoed to the caller, carried in logs and error bodies."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

from django.http import HttpRequest

HEADER = "x-request-id"
_SANE = re.compile(r"[A-Za-z0-9._-]{1,128}\Z", re.ASCII)
_current: ContextVar[str | None] = ContextVar("request_id", default=None)


def new_id() -> str:
    return f"req_{uuid.uuid4().hex}"


def from_caller(value: str | None) -> str:
    """The caller's id when it is safe to echo into headers and logs, else a fresh one."""
    if value and _SANE.match(value):
        return value
    return new_id()


def bind(request_id: str) -> None:
    """Make `request_id` the current one for this request's context (logs, error bodies)."""
    _current.set(request_id)


def current() -> str | None:
    return _current.get()


def of(request: HttpRequest | None) -> str:
    """The id of this request; requests that bypassed the middleware (tests, shell) get a fresh one."""
    found = getattr(request, "request_id", None) or _current.get()
    return found or new_id()
