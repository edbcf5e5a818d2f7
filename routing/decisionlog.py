"""Routing decisions written in bulk, off the call, for the calls whose decision nothing points at.

A decision row is an audit record: nothing reads it during the call that made it. Written with an
INSERT of its own it cost about 0.5 ms of the web process's CPU and 0.3 ms of Postgres's per
partner call (bench/cpu_per_call.sh, with and without: 4.3 -> 3.8 ms, 1.75 -> 1.45 ms), an eighth
of the call. So the stateless partner calls (/anthropic/v1/messages, /api/v1/messages) take an id
drawn ahead from the table's own sequence (a block per process at a time) and queue the row here;
the request log's flusher (claudeapp/requestlog/buffer.py) writes the queued rows with one COPY
before its own lines, every REQUEST_LOG_FLUSH_SECONDS and at shutdown. Conversation messages and
jobs hold their decision as a foreign key: theirs is stored at once (`routing.services.decide`).

With the request log off nothing takes the rows, and every decision is stored at once. A process
killed with -9 loses the decisions it still queued, as it loses its request log lines; the ids
stay unique (the sequence never hands one out twice), gaps are harmless.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import psycopg
from django.conf import settings
from django.db import IntegrityError
from django.db.models import JSONField
from django.utils import timezone

from claudeapp.core import rows
from claudeapp.core.idblocks import IdBlock

log = logging.getLogger(__name__)

ID_BLOCK = 64  # ids drawn per query: one extra round trip per this many queued decisions

_rows: deque[tuple[int, dt.datetime, dict[str, Any]]] = deque(maxlen=settings.REQUEST_LOG_MAX_BUFFERED)
_ids = IdBlock("routing.RoutingDecision", ID_BLOCK)
_lock = threading.Lock()
_state: dict[str, Any] = {"pid": os.getpid(), "nudge": None}


def take_with(nudge: Callable[[int], None] | None) -> None:
    """Register the writer that flushes queued decisions (the request log, at AppConfig.ready), or none:
    `nudge(pending)` is told each time a row is queued, so it can start its thread and wake it early."""
    _state["nudge"] = nudge


def taken() -> bool:
    return _state["nudge"] is not None


def queue(fields: dict[str, Any]) -> int:
    """Queue one decision (RoutingDecision's fields, as `routing.services` builds them); return its id."""
    _forked()
    pk = _ids.next()
    _rows.append((pk, timezone.now(), fields))
    nudge = _state["nudge"]
    if nudge is not None:
        nudge(len(_rows))
    return pk


def pending() -> int:
    return len(_rows)


def flush() -> int:
    """Write every queued decision now, with one COPY; returns how many. On a database error the rows
    stay queued for the next flush. A row naming a rule deleted since is written without the link
    (its rule name stays), as the foreign key's SET_NULL would have left it."""
    with _lock:
        batch = [_rows.popleft() for _ in range(len(_rows))]
    if not batch:
        return 0
    try:
        try:
            _copy(batch)
        except (IntegrityError, psycopg.errors.IntegrityError):
            unlinked = _unlinked_from_gone_rules(batch)
            if unlinked is None:  # not a deleted rule
                raise
            _copy(unlinked)
    except Exception:
        _rows.extendleft(reversed(batch))
        raise
    return len(batch)


def _forked() -> None:
    """A forked child (Celery prefork) starts empty: the parent's rows are the parent's (its ids too: IdBlock)."""
    if _state["pid"] != os.getpid():
        with _lock:
            _state["pid"] = os.getpid()
            _rows.clear()


@functools.cache
def _columns() -> tuple[tuple[str, str, bool], ...]:
    """(attribute, column, is JSON) of every stored field, the id and created_at included, in the COPY's order."""
    from routing.models import RoutingDecision

    return tuple((f.attname, f.column, isinstance(f, JSONField)) for f in RoutingDecision._meta.concrete_fields)


def _values(pk: int, at: dt.datetime, fields: dict[str, Any]) -> tuple[Any, ...]:
    row = {**fields, "id": pk, "created_at": at}
    return tuple(json.dumps(row[name]) if is_json else row[name] for name, _, is_json in _columns())


def _copy(batch: list[tuple[int, dt.datetime, dict[str, Any]]]) -> None:
    from routing.models import RoutingDecision

    rows.copy_in(RoutingDecision, [column for _, column, _ in _columns()], (_values(*item) for item in batch))


def _unlinked_from_gone_rules(
    batch: list[tuple[int, dt.datetime, dict[str, Any]]],
) -> list[tuple[int, dt.datetime, dict[str, Any]]] | None:
    from routing.models import RoutingRule

    named = {fields["rule_id"] for _, _, fields in batch if fields.get("rule_id") is not None}
    alive = set(RoutingRule.objects.filter(pk__in=named).values_list("pk", flat=True))
    if named <= alive:
        return None
    log.info("routing decisions: %d rules were deleted before their decisions were written", len(named - alive))
    return [(pk, at, {**f, "rule_id": f["rule_id"] if f.get("rule_id") in alive else None}) for pk, at, f in batch]
