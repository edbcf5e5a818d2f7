"""The request log's write path: cheap on the call, in bulk off it.

calls/observe.py hands every call's ending (refusals included) to `add()`, which appends one tuple to
an in-process deque: no I/O, no lock held, no query. A daemon thread per process wakes every
REQUEST_LOG_FLUSH_SECONDS, or at once when REQUEST_LOG_FLUSH_ROWS rows are waiting, and writes them
with one COPY on its own connection. A process stopped with SIGTERM flushes what is left:
- uvicorn: at ASGI lifespan shutdown (claudeapp/asgi.py), once the last request has ended. Not atexit:
  after a graceful shutdown uvicorn re-raises the signal with the default handler, which skips atexit;
  so run it with lifespan on or auto (the default), never `--lifespan off`;
- a Celery worker with the threads or solo pool: atexit (its warm shutdown exits normally);
- a prefork child: Celery's worker_process_shutdown signal (the child leaves through os._exit).
tests/requestlog/test_shutdown.py sends the real processes SIGTERM. A kill -9 loses the buffer. If
Postgres is away the rows wait (up to REQUEST_LOG_MAX_BUFFERED; the oldest are dropped beyond that)
and the log says how many were lost: the request log must never slow or fail a call.

The same flusher writes the routing decisions the stateless calls queued (routing/decisionlog.py), first:
a line's prompt excerpt is read from its decision.
"""

from __future__ import annotations

import atexit
import datetime as dt
import functools
import logging
import os
import threading
import time
from collections import deque
from typing import Any

from django.conf import settings
from django.db import connection

from claudeapp.core import logcontext, rows
from routing import decisionlog

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
    from celery import signals

    from claudeapp.calls import observe

    observe.add_sink(add)
    decisionlog.take_with(_nudge)
    # A prefork child exits through os._exit, past atexit: Celery tells it to stop first.
    signals.worker_process_shutdown.connect(_flush_at_exit, weak=False)


def _nudge(decisions: int) -> None:
    """A routing decision was queued: make sure this process's flusher runs, early when many wait."""
    if _state["pid"] != os.getpid():
        _start()
    if decisions >= settings.REQUEST_LOG_FLUSH_ROWS:
        _wake.set()


def pending() -> int:
    return len(_rows)


def flush() -> int:
    """Write every queued row now (the flusher thread, process exit, tests). Returns how many.

    One COPY of plain tuples, not bulk_create: the flusher shares the GIL with the calls this process
    serves, and bulk_create cost ~85 µs of CPU a row (per-value INSERT compilation), COPY ~10 µs."""
    with _flush_lock:
        _flush_decisions()
        batch = [_rows.popleft() for _ in range(len(_rows))]
        if not batch:
            return 0
        prompts = _prompt_excerpts(batch) if _store_prompts() else {}
        try:
            _copy([_values(item, prompts) for item in batch])
        except Exception:
            _rows.extendleft(reversed(batch))  # kept for the next try (the deque's bound still holds)
            raise
    if _state["dropped"]:
        log.warning("requestlog: %d rows dropped while the buffer was full", _state["dropped"])
        _state["dropped"] = 0
    return len(batch)


def _flush_decisions() -> None:
    """The queued routing decisions, before the lines that name them; a failure there (kept for the next
    flush) does not keep the lines back."""
    try:
        decisionlog.flush()
    except Exception:
        log.warning("requestlog: could not write %d routing decisions, kept", decisionlog.pending(), exc_info=True)


def _values(item: Row, prompts: dict[int, str]) -> tuple[Any, ...]:
    from claudeapp.requestlog import services

    at, request_id, surface, fields = item
    decision_id = fields.get("route_decision_id")
    values = services.row_values(
        fields=fields, at=dt.datetime.fromtimestamp(at, tz=dt.UTC), request_id=request_id, surface=surface,
        prompt=prompts.get(decision_id, "") if decision_id else "",
    )  # fmt: skip
    return tuple(values[name] for name, _ in _columns())


@functools.cache
def _columns() -> tuple[tuple[str, str], ...]:
    """(field name, column) of every stored field but the id, in the COPY's order."""
    from claudeapp.requestlog.models import RequestLog

    return tuple((f.name, f.column) for f in RequestLog._meta.concrete_fields if not f.primary_key)


def _copy(values: list[tuple[Any, ...]]) -> None:
    from claudeapp.requestlog.models import RequestLog

    rows.copy_in(RequestLog, [column for _, column in _columns()], values)


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


async def flush_at_shutdown() -> None:
    """The ASGI lifespan's shutdown step (claudeapp/asgi.py): write what is left, off the event loop."""
    from asgiref.sync import sync_to_async

    await sync_to_async(_flush_at_exit, thread_sensitive=False)()


@atexit.register
def _flush_at_exit(**_: Any) -> None:
    if _rows or decisionlog.pending():
        try:
            flush()
        except Exception:
            log.warning("requestlog: %d rows lost at exit", len(_rows), exc_info=True)
