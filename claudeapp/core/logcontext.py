"""Who a log line is about: the request id, the surface and (on a worker) the job, for every line.

The web binds it once per request (claudeapp/api/middleware.py); a Celery worker binds it per task
from the message's `request_id` header, which the web process adds when it publishes (so a job's
worker lines carry the id of the request that created or re-queued it). A logging filter copies it
onto every record, so the JSON formatter writes it as fields and the text one shows it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

# Celery task names whose first argument is a job id (by name: core sits below jobs in the layers).
JOB_TASKS = frozenset({"claudeapp.jobs.tasks.run_job", "claudeapp.jobs.tasks.deliver_webhook"})
HEADER = "request_id"


@dataclass(frozen=True, slots=True)
class Context:
    request_id: str | None = None
    surface: str = ""  # chat, api, anthropic, jobs, batches; "" outside a request or task
    started: float = 0.0  # time.perf_counter() when the request or task began
    job_id: str | None = None


_EMPTY = Context()
_current: ContextVar[Context] = ContextVar("claudeapp_log_context", default=_EMPTY)


def bind(*, request_id: str | None, surface: str, job_id: str | None = None) -> None:
    _current.set(Context(request_id, surface, time.perf_counter(), job_id))


@contextmanager
def bound(*, request_id: str | None, surface: str, job_id: str | None = None) -> Iterator[None]:
    """The context for a few lines about something other than the request or task at hand (a batch item
    settled while a request reads its batch), then the context as it was."""
    token = _current.set(Context(request_id, surface, time.perf_counter(), job_id))
    try:
        yield
    finally:
        _current.reset(token)


def current() -> Context:
    return _current.get()


def clear() -> None:
    _current.set(_EMPTY)


def surface_of(path: str) -> str:
    if path.startswith("/anthropic/"):
        return "anthropic"
    if path.startswith("/api/"):
        return "api"
    return "chat"


class ContextFilter(logging.Filter):
    """Adds request_id, surface and job_id to every record (attach it to the handlers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = _current.get()
        record.request_id = ctx.request_id or "-"
        record.surface = ctx.surface or "-"
        record.job_id = ctx.job_id or "-"
        return True


# --- Celery: carry the request id from the publishing request to the worker --------------------


def add_request_header(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """`before_task_publish`: the publishing request's id rides along as a message header."""
    request_id = _current.get().request_id
    if request_id and headers is not None and HEADER not in headers:
        headers[HEADER] = request_id


def bind_task(task: Any = None, args: Any = None, **_: Any) -> None:
    """`task_prerun`: the worker's lines for this task carry its request id and job id."""
    request = getattr(task, "request", None)
    request_id = getattr(request, HEADER, None) or (getattr(request, "headers", None) or {}).get(HEADER)
    job_id = str(args[0]) if getattr(task, "name", "") in JOB_TASKS and args else None
    bind(request_id=request_id, surface="jobs", job_id=job_id)  # replaces the pool thread's previous task's
