"""The job's public JSON: the API's response body and the webhook's payload."""

from __future__ import annotations

from typing import Any

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


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None
