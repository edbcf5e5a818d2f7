"""The job's public JSON: the API's response body and the webhook's payload."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.utils import timezone

from claudeapp.jobs.models import Job


def job_json(job: Job) -> dict[str, Any]:
    error = None
    if job.last_error_type:
        error = {
            "type": job.last_error_type,
            "message": job.last_error_message,
            "status": job.last_error_status,
            "upstream_request_id": job.last_error_request_id or None,
        }
    return {
        "id": str(job.id),
        "object": "job",
        "status": job.status,
        "mode": job.mode,
        "queue": job.queue,
        "model_requested": job.model_requested,
        "model_used": job.model_used or None,
        "route": {"model": job.payload.get("model"), "reason": job.routing_reason or None},
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "next_attempt_at": _iso(job.next_attempt_at),
        "eta": _iso(eta(job)),
        "error": error,
        "result": job.result,
        "usage": job.usage,
        "cost_micros": job.cost_micros,
        "upstream_request_id": job.upstream_request_id or None,
        "conversation_id": job.conversation_ref or None,
        "message_id": job.message_ref or None,
        "webhook_url": job.webhook_url or None,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
    }


def eta(job: Job) -> dt.datetime | None:
    """When a batch job's result should be in: a waiting job goes into a Message Batch once
    JOBS_BATCH_MAX_WAIT_SECONDS have passed since it was queued (or sooner, when a batch fills up),
    and a submitted batch is expected to end within JOBS_BATCH_EXPECTED_SECONDS (upstream: 24 h at most).
    None for queued-mode and finished jobs, which have no batch latency to wait for."""
    if job.mode != Job.Mode.BATCH or job.is_terminal:
        return None
    processing = dt.timedelta(seconds=settings.JOBS_BATCH_EXPECTED_SECONDS)
    batch = job.batch if job.batch_id else None
    if job.status == Job.Status.RUNNING and batch is not None and batch.submitted_at is not None:
        return batch.submitted_at + processing
    start = job.next_attempt_at or job.enqueued_at or job.created_at or timezone.now()
    submitted_by = max(start + dt.timedelta(seconds=settings.JOBS_BATCH_MAX_WAIT_SECONDS), timezone.now())
    return submitted_by + dt.timedelta(seconds=settings.JOBS_BATCH_POLL_SECONDS) + processing


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None
