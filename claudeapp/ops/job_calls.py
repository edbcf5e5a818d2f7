"""One structured log line per job attempt, written by the worker like the web's line per call.

The jobs package owns its runner; this reads the outcome from the job row once the task is done
(a Celery `task_postrun` receiver, connected in claudeapp/celery.py): one query by primary key per
run_job task, on the worker only. The line carries the request id of the request that published the
job (a message header; claudeapp/core/logcontext.py) and the job id. The line goes out through
calls/observe.py's emitter, as a web call's does, so its sinks (the request log's in-process buffer: an
append, no query) get every job attempt too.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from django.utils import timezone

from claudeapp.calls.errors import BUDGET, LIMIT, REFUSAL_STATUS  # imports nothing: safe this early
from claudeapp.core import logcontext, metrics

log = logging.getLogger("claudeapp.calls")
RUN_JOB = "claudeapp.jobs.tasks.run_job"
FIELDS = ("status", "attempts", "principal_kind", "principal_id", "model_requested", "model_used",
          "routing_decision_id", "routing_reason", "usage", "cost_micros", "upstream_request_id",
          "last_error_type", "last_error_status", "last_error_request_id", "updated_at")  # fmt: skip


def log_attempt(task: Any = None, **_: Any) -> None:
    if getattr(task, "name", "") != RUN_JOB:
        return
    ctx = logcontext.current()
    try:
        _log_attempt(ctx)
    except Exception:  # a log line must never fail the task
        log.warning("jobs: could not observe job %s", ctx.job_id, exc_info=True)


def _log_attempt(ctx: logcontext.Context) -> None:
    from claudeapp.calls import observe  # imports models: claudeapp/celery.py imports this module early
    from claudeapp.jobs.models import Job

    if not ctx.job_id or not ctx.started:
        return
    elapsed = time.perf_counter() - ctx.started
    row = Job.objects.filter(pk=ctx.job_id).values(*FIELDS).first()
    if row is None or row["updated_at"] < timezone.now() - dt.timedelta(seconds=elapsed + 1):
        return  # this delivery ran nothing (redelivered, taken by another worker, not due yet)
    status, refusal = ending_of(row)
    model = row["model_used"] or row["model_requested"]
    if refusal:
        metrics.refused(surface="jobs", kind=refusal, model=model)
    else:
        metrics.call_ended(surface="jobs", status=status, model=model)
    fields = _fields(row, status, refusal, elapsed)
    observe.emit(fields)  # the sinks, then the same "call ..." line on the same logger


def _fields(row: dict[str, Any], status: str, refusal: str | None, elapsed: float) -> dict[str, Any]:
    """The job row as a call line's fields (the same names a web call's line carries)."""
    usage = row["usage"] or {}
    return {
        "event": "call",
        "status": status,
        "job_status": row["status"],
        "job_attempt": row["attempts"],
        "principal_kind": row["principal_kind"],
        "principal_id": row["principal_id"],
        "route_decision_id": row["routing_decision_id"],
        "route_reason": row["routing_reason"],
        "model_requested": row["model_requested"],
        "model_used": row["model_used"],
        "upstream_request_id": row["upstream_request_id"] or row["last_error_request_id"],
        "input_tokens": usage.get("input_tokens", 0),
        "output_tokens": usage.get("output_tokens", 0),
        "cache_write_tokens": usage.get("cache_creation_input_tokens", 0),
        "cache_read_tokens": usage.get("cache_read_input_tokens", 0),
        "cost_micros": row["cost_micros"] if row["status"] == "succeeded" else 0,
        "error_type": row["last_error_type"] if row["status"] != "succeeded" else None,
        "http_status": REFUSAL_STATUS[refusal] if refusal else (
            None if status == "complete" else row["last_error_status"]
        ),
        "duration_ms": round(elapsed * 1000, 1),
    }  # fmt: skip


def ending_of(row: dict[str, Any]) -> tuple[str, str | None]:
    """(ending, refusal kind or None) for the job row as this attempt left it."""
    status, error = row["status"], row["last_error_type"]
    if status == "succeeded":
        return "complete", None
    if status == "queued":  # back in the queue: our rate limit had no room, or a retry later
        return ("refused", LIMIT) if error == "rate_limited" else ("error", None)
    if status == "failed" and error == "budget_exceeded":
        return "refused", BUDGET
    return "failed", None
