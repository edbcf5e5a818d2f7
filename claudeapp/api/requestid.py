"""Request ids: one per request, echoed to the caller, carried in logs and error bodies."""

from __future__ import annotations

import re
import uuid

from django.http import HttpRequest

from claudeapp.core import logcontext

HEADER = "x-request-id"
_SANE = re.compile(r"[A-Za-z0-9._-]{1,128}\Z", re.ASCII)


def new_id() -> str:
    return f"req_{uuid.uuid4().hex}"


def from_caller(value: str | None) -> str:
    """The caller's id when it is safe to echo into headers and logs, else a fresh one."""
    if value and _SANE.match(value):
        return value
    return new_id()


def bind(request_id: str, *, path: str = "") -> None:
    """Make `request_id` the current one for this request's context (logs, error bodies, published
    jobs), with the surface its path names (claudeapp/core/logcontext.py)."""
    logcontext.bind(request_id=request_id, surface=logcontext.surface_of(path))


def current() -> str | None:
    return logcontext.current().request_id


def of(request: HttpRequest | None) -> str:
    """The id of this request; requests that bypassed the middleware (tests, shell) get a fresh one."""
    found = getattr(request, "request_id", None) or logcontext.current().request_id
    return found or new_id()
