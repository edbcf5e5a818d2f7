"""The request log's public write API (one row now, for callers off the hot path), its settings and its
retention. Calls on the hot path never come here: calls/observe.py hands them to buffer.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Q
from django.utils import timezone

from claudeapp.requestlog.models import RequestLog, RequestLogSettings

Status = RequestLog.Status
# A call "ran" unless it was refused before any upstream call (429/402). Of those that ran, these are
# errors; complete and disconnect (the reader left) are not.
ERROR_STATUSES = (Status.FAILED, Status.CUT, Status.ERROR, Status.INTERRUPTED)
OUTCOMES = {
    "ran": ("Ran (not refused)", ~Q(status=Status.REFUSED)),
    "ok": ("Ran without error", Q(status__in=(Status.COMPLETE, Status.DISCONNECT))),
    "errors": ("Errors (failed, cut, error, interrupted)", Q(status__in=ERROR_STATUSES)),
    "refused": ("Refused (429/402)", Q(status=Status.REFUSED)),
}


def record(
    *, fields: dict[str, Any], at: dt.datetime | None = None, request_id: str = "", surface: str = ""
) -> RequestLog:
    """Write one call's row now, outside the in-process buffer, and return it.

    For code off the hot path that learns of a call no process will report, such as the reaper of a call
    whose process was killed (kill -9) mid-call: it passes `fields={"status": "interrupted", ...}`.
    `fields` are the call line's fields as calls/observe.py builds them: `status` (a RequestLog.Status value,
    required), `principal_kind`, `principal_id`, `http_status`, `error_type`, `model_requested`,
    `model_used`, `route_reason`, `route_decision_id`, `input_tokens`, `output_tokens`,
    `cache_write_tokens`, `cache_read_tokens`, `cost_micros`, `upstream_request_id`, `duration_ms`;
    others are ignored, text is cut to the column's size. `at` is when the call ended (default now).

    Once per call: with a `request_id`, a second record of the same request id and status returns the
    row already written instead of adding another (a reaper may see the same call twice)."""
    if fields.get("status") not in RequestLog.Status.values:
        raise ValueError(f"status must be one of {', '.join(RequestLog.Status.values)}")
    if request_id:
        existing = RequestLog.objects.filter(request_id=request_id[:100], status=fields["status"]).first()
        if existing is not None:
            return existing
    row = build_row(fields=fields, at=at or timezone.now(), request_id=request_id, surface=surface)
    row.save(force_insert=True)
    return row


def build_row(
    *, fields: dict[str, Any], at: dt.datetime, request_id: str, surface: str, prompt: str = ""
) -> RequestLog:
    """An unsaved row from a call line's fields (`record` saves one)."""
    return RequestLog(**row_values(fields=fields, at=at, request_id=request_id, surface=surface, prompt=prompt))


def row_values(*, fields: dict[str, Any], at: dt.datetime, request_id: str, surface: str, prompt: str = "") -> dict:
    """A call line's fields as the request log's columns (the buffer COPYs these; build_row makes a model)."""
    f = fields
    http_status = f.get("http_status") or (None if f["status"] in ("failed", "interrupted") else 200)
    return {
        "created_at": at,
        "principal_kind": f.get("principal_kind") or "",
        "principal_id": f.get("principal_id") or 0,
        "surface": surface[:20],
        "status": f["status"],
        "http_status": http_status,
        "error_type": (f.get("error_type") or "")[:100],
        "model_requested": (f.get("model_requested") or "")[:100],
        "model_used": (f.get("model_used") or "")[:100],
        "route_reason": (f.get("route_reason") or "")[:300],
        "route_decision_id": f.get("route_decision_id"),
        "input_tokens": f.get("input_tokens") or 0,
        "output_tokens": f.get("output_tokens") or 0,
        "cache_write_tokens": f.get("cache_write_tokens") or 0,
        "cache_read_tokens": f.get("cache_read_tokens") or 0,
        "cost_micros": f.get("cost_micros") or 0,
        "request_id": request_id[:100],
        "upstream_request_id": (f.get("upstream_request_id") or "")[:100],
        "duration_ms": f.get("duration_ms"),
        "prompt_excerpt": prompt,
    }


def get_settings() -> RequestLogSettings:
    """The one settings row, created with the defaults on first read."""
    row = RequestLogSettings.objects.order_by("pk").first()
    return row or RequestLogSettings.objects.create()


def purge_expired(*, now: dt.datetime | None = None, chunk: int = 10_000) -> int:
    """Delete rows older than the retention, in chunks (a short lock each). Returns how many."""
    cutoff = (now or timezone.now()) - dt.timedelta(days=get_settings().retention_days)
    deleted = 0
    while True:
        ids = list(RequestLog.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[:chunk])
        if not ids:
            return deleted
        deleted += RequestLog.objects.filter(pk__in=ids).delete()[0]
