"""The request log's write path: cheap on the call, in bulk off it.

calls/observe.py hands every call's ending (refusals included) to `add()`, which appends one tuple to
an in-process deque: no I/O, no lock held, no query. A daemon thread per process wakes every
REQUEST_LOG_FLUSH_SECONDS, or at once when REQUEST_LOG_FLUSH_ROWS rows are waiting, and writes them
with one bulk INSERT on its own connection. A process that exits flushes what is left (atexit). If
Postgres is away the rows wait (up to REQUEST_LOG_MAX_BUFFERED; the oldest are dropped beyond that)
and the log says how many were lost: the request log must never slow or fail a call.
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import os
import threading
import time
from collections import deque
from typing import Any

from django.conf import settings
from django.db import connection

from claudeapp.core import logcontext

log = logging.getLogger(__name__)

# (unix time, request id, surface, the call line's fields)
Row = tuple[float, str, str, dict[str, Any]]

_rows: deque[Row] = deque(maxlen=settings.REQUEST_LOG_MAX_BUFFERED)
_wake = threading.Event()
_state: dict[str, Any] = {"pid": None, "thread": None, "dropped": 0, "prompts": (0.0, False)}
_start_lock = threading.Lock()
_flush_lock = threading.RLock()  # reentrant: a test may hold it to keep the flusher thread out
PROMPT_CHARS = 500
SETTINGS_SECONDS = 10.0


def add(fields: dict[str, Any]) -> None:
    """Queue one call's line. The hot path: an append, and a thread start once per process."""
    ctx = logcontext.current()
    if len(_rows) == _rows.maxlen:
        _state["dropped"] += 1
    _rows.append((time.time(), ctx.request_id or "", ctx.surface or "", fields))
    if _state["pid"] != os.getpid():
        _start()
    if len(_rows) >= settings.REQUEST_LOG_FLUSH_ROWS:
        _wake.set()


def connect() -> None:
    """Register `add` with the call pipeline's observer (AppConfig.ready)."""
    if not settings.REQUEST_LOG_ENABLED:
        return
    from claudeapp.calls import observe

    observe.add_sink(add)


def pending() -> int:
    return len(_rows)


def flush() -> int:
    """Write every queued row now (the flusher thread, process exit, tests). Returns how many."""
    from claudeapp.requestlog.models import RequestLog

    with _flush_lock:
        batch = [_rows.popleft() for _ in range(len(_rows))]
        if not batch:
            return 0
        prompts = _prompt_excerpts(batch) if _store_prompts() else {}
        try:
            RequestLog.objects.bulk_create([_row(item, prompts) for item in batch], batch_size=500)
        except Exception:
            _rows.extendleft(reversed(batch))  # kept for the next try (the deque's bound still holds)
            raise
    if _state["dropped"]:
        log.warning("requestlog: %d rows dropped while the buffer was full", _state["dropped"])
        _state["dropped"] = 0
    return len(batch)


def _row(item: Row, prompts: dict[int, str]) -> Any:
    from claudeapp.requestlog.models import RequestLog

    at, request_id, surface, f = item
    decision_id = f.get("route_decision_id")
    http_status = f.get("http_status") or (None if f["status"] == "failed" else 200)
    return RequestLog(
        created_at=dt.datetime.fromtimestamp(at, tz=dt.UTC),
        principal_kind=f.get("principal_kind") or "",
        principal_id=f.get("principal_id") or 0,
        surface=surface[:20],
        status=f["status"],
        http_status=http_status,
        error_type=(f.get("error_type") or "")[:100],
        model_requested=(f.get("model_requested") or "")[:100],
        model_used=(f.get("model_used") or "")[:100],
        route_reason=(f.get("route_reason") or "")[:300],
        route_decision_id=decision_id,
        input_tokens=f.get("input_tokens") or 0,
        output_tokens=f.get("output_tokens") or 0,
        cache_write_tokens=f.get("cache_write_tokens") or 0,
        cache_read_tokens=f.get("cache_read_tokens") or 0,
        cost_micros=f.get("cost_micros") or 0,
        request_id=request_id[:100],
        upstream_request_id=(f.get("upstream_request_id") or "")[:100],
        duration_ms=f.get("duration_ms"),
        prompt_excerpt=prompts.get(decision_id, "") if decision_id else "",
    )


def _store_prompts() -> bool:
    """The operator's switch, read at most every SETTINGS_SECONDS (by the flusher, never on a call)."""
    read_at, value = _state["prompts"]
    if time.monotonic() - read_at > SETTINGS_SECONDS:
        from claudeapp.requestlog import services

        value = services.get_settings().store_prompts
        _state["prompts"] = (time.monotonic(), value)
    return value


def _prompt_excerpts(batch: list[Row]) -> dict[int, str]:
    from routing.models import RoutingDecision

    ids = {f["route_decision_id"] for _, _, _, f in batch if f.get("route_decision_id")}
    rows = RoutingDecision.objects.filter(pk__in=ids).values_list("pk", "message_excerpt")
    return {pk: text[:PROMPT_CHARS] for pk, text in rows}


def forget_settings() -> None:
    _state["prompts"] = (0.0, False)


def _start() -> None:
    with _start_lock:
        if _state["pid"] == os.getpid():
            return
        _state["pid"] = os.getpid()  # a forked child (Celery prefork) starts a flusher of its own
        thread = threading.Thread(target=_run, name="requestlog-flusher", daemon=True)
        _state["thread"] = thread
        thread.start()


def _run() -> None:
    while True:
        _wake.wait(settings.REQUEST_LOG_FLUSH_SECONDS)
        _wake.clear()
        try:
            flush()
        except Exception:
            log.warning("requestlog: could not write %d rows; will retry", len(_rows), exc_info=True)
            time.sleep(1.0)
        finally:
            connection.close()  # back to the pool between flushes: a thread must not pin a connection


@atexit.register
def _flush_at_exit() -> None:
    if _rows:
        try:
            flush()
        except Exception:
            log.warning("requestlog: %d rows lost at exit", len(_rows))
