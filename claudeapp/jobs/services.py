"""Writes on jobs: create, cancel, requeue, discard. Running a job lives in runner.py.

Every state change is a short transaction on the Job row; side effects (publishing to
the broker, webhooks) are registered with `transaction.on_commit` so nothing runs for a
row that was rolled back.
"""

from __future__ import annotations

import hashlib
import json
import logging
from functools import partial
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from claudeapp.accounts.principals import Principal
from claudeapp.jobs import batches, ssrf, transitions, upstream
from claudeapp.jobs.errors import IdempotencyConflict, InvalidPayload, JobNotFound
from claudeapp.jobs.models import Job
from claudeapp.jobs.publish import enqueue
from claudeapp.jobs.runner import run

__all__ = [
    "cancel",
    "cancel_pending_for",
    "create",
    "discard",
    "enqueue",
    "get_for_principal",
    "request_hash",
    "requeue",
    "run",
]

logger = logging.getLogger(__name__)


def create(
    *,
    principal: Principal,
    payload: dict[str, Any],
    webhook_url: str | None = None,
    idempotency_key: str | None = None,
    mode: str | None = None,
    queue: str = Job.Queue.INTERACTIVE,
    conversation_ref: str = "",
    message_ref: str = "",
    previous_model: str | None = None,
) -> Job:
    """Route, store the job and publish it after commit. `mode=None` lets the routing rules choose
    between the queue and a Message Batch. A replayed Idempotency-Key returns the original job with
    `job.replayed = True`; the same key with another body raises IdempotencyConflict."""
    _validate(payload=payload, mode=mode or Job.Mode.QUEUE, queue=queue)
    if webhook_url:
        ssrf.check_url(webhook_url)
    digest = request_hash(payload=payload, webhook_url=webhook_url, mode=mode or "", queue=queue)
    if idempotency_key and (original := _by_key(principal, idempotency_key)):
        return _replay(original, digest)
    decision = upstream.route(principal=principal, payload=payload, requested_mode=mode, previous_model=previous_model)
    mode = mode or (Job.Mode.BATCH if decision.mode == Job.Mode.BATCH else Job.Mode.QUEUE)
    requested_model, payload = payload["model"], {**payload, "model": decision.model_id}
    models = upstream.model_chain(decision.model_id)
    job = Job(
        principal_kind=principal.kind,
        principal_id=principal.id,
        user_id=principal.user_id,
        payload=payload,
        mode=mode,
        queue=queue,
        model_requested=requested_model,
        routing_decision_id=decision.decision_id,
        routing_reason=decision.reason[:300],
        max_attempts=settings.JOBS_MAX_ATTEMPTS,
        idempotency_key=idempotency_key or "",
        request_hash=digest,
        webhook_url=webhook_url or "",
        conversation_ref=conversation_ref,
        message_ref=message_ref,
        enqueued_at=timezone.now(),
    )
    try:
        with transaction.atomic():
            upstream.check_budget(principal=principal, model_id=models[0], payload=payload, batch=job.mode == "batch")
            job.save(force_insert=True)
            _publish_on_commit(job)
    except IntegrityError:
        # A concurrent request with the same key won the insert: answer as its replay.
        original = _by_key(principal, idempotency_key) if idempotency_key else None
        if original is None:
            raise
        return _replay(original, digest)
    job.replayed = False  # type: ignore[attr-defined]
    return job


def cancel(*, job_id: UUID | str, principal: Principal | None = None) -> Job:
    """Cancel a job that has not started, or a batch job waiting in a submitted Message Batch.
    A running queued call cannot be taken back, so it is refused."""
    with transaction.atomic():
        job = _locked(job_id, principal)
        transitions.check(job=job, action="cancel")  # refused before anything is given back
        if job.mode == Job.Mode.BATCH and job.status == Job.Status.RUNNING:
            # Upstream may still run it; a succeeded result is billed at fan-out but never applied.
            batches.release_for_cancel(job=job)
        transitions.cancel(job=job)
    return job


KEY_REVOKED = upstream.Failure(
    retryable=False,
    retry_after=None,
    status=None,
    error_type="key_revoked",
    message="Canceled: the API key that submitted this job was revoked before it ran.",
    request_id="",
)


def cancel_pending_for(*, principal_kind: str, principal_id: int) -> int:
    """Cancel every job of a principal that has not started: queued ones, and batch jobs waiting in a
    submitted Message Batch (their holds go back). A queued call already running cannot be taken back
    and finishes. Returns how many were canceled. For a revoked key, so nothing it queued runs later."""
    canceled = 0
    with transaction.atomic():
        pending = (
            Job.objects.select_for_update()
            .filter(principal_kind=principal_kind, principal_id=principal_id)
            .filter(Q(status=Job.Status.QUEUED) | Q(status=Job.Status.RUNNING, mode=Job.Mode.BATCH))
            .order_by("pk")  # locks in pk order, as every other multi-row lock here
        )
        for job in pending:
            if job.status == Job.Status.RUNNING:
                batches.release_for_cancel(job=job)
            transitions.cancel(job=job, failure=KEY_REVOKED)
            canceled += 1
    if canceled:
        logger.info("canceled %d pending job(s) of %s %s", canceled, principal_kind, principal_id)
    return canceled


def requeue(*, job_id: UUID | str, principal: Principal | None = None) -> Job:
    """Give a dead, failed or canceled job a fresh set of attempts (the DLQ's Requeue)."""
    with transaction.atomic():
        job = _locked(job_id, principal)
        transitions.check(job=job, action="requeue")  # before the budget check: a 409 says more than a 402
        model_id = upstream.model_chain(job.routed_model)[0]
        upstream.check_budget(
            principal=upstream.principal_of(job), model_id=model_id, payload=job.payload, batch=job.mode == "batch"
        )
        transitions.requeue(job=job)
    return job


def discard(*, job_id: UUID | str, principal: Principal | None = None) -> None:
    """Drop a finished job from the dead-letter queue for good (the ledger keeps any bill)."""
    with transaction.atomic():
        transitions.discard(job=_locked(job_id, principal))


def get_for_principal(*, job_id: UUID | str, principal: Principal) -> Job:
    """A principal's own job; anyone else's is reported missing, never forbidden (no id probing)."""
    job = _scoped(Job.objects.all(), principal).filter(pk=_uuid(job_id)).first()
    if job is None:
        raise JobNotFound(job_id)
    return job


def request_hash(*, payload: dict[str, Any], webhook_url: str | None, mode: str, queue: str) -> str:
    body = {"payload": payload, "webhook_url": webhook_url or "", "mode": mode, "queue": queue}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _validate(*, payload: dict[str, Any], mode: str, queue: str) -> None:
    if not isinstance(payload.get("model"), str) or not payload["model"]:
        raise InvalidPayload(field="model", reason="a model id or alias is required")
    if not isinstance(payload.get("messages"), list) or not payload["messages"]:
        raise InvalidPayload(field="messages", reason="at least one message is required")
    max_tokens = payload.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise InvalidPayload(field="max_tokens", reason="a positive integer is required")
    if mode not in Job.Mode.values:
        raise InvalidPayload(field="mode", reason=f"one of {', '.join(Job.Mode.values)}")
    if queue not in Job.Queue.values:
        raise InvalidPayload(field="queue", reason=f"one of {', '.join(Job.Queue.values)}")


def _publish_on_commit(job: Job) -> None:
    if job.mode == Job.Mode.QUEUE:
        transaction.on_commit(partial(enqueue, job_id=job.id, queue=job.queue))


def _by_key(principal: Principal, key: str) -> Job | None:
    return Job.objects.filter(principal_kind=principal.kind, principal_id=principal.id, idempotency_key=key).first()


def _replay(original: Job, digest: str) -> Job:
    if original.request_hash != digest:
        raise IdempotencyConflict(key=original.idempotency_key or "", job_id=original.id)
    original.replayed = True  # type: ignore[attr-defined]
    return original


def _locked(job_id: UUID | str, principal: Principal | None) -> Job:
    qs = Job.objects.select_for_update()
    job = (_scoped(qs, principal) if principal else qs).filter(pk=_uuid(job_id)).first()
    if job is None:
        raise JobNotFound(job_id)
    return job


def _scoped(qs: Any, principal: Principal) -> Any:
    return qs.filter(principal_kind=principal.kind, principal_id=principal.id)


def _uuid(job_id: UUID | str) -> UUID | None:
    try:
        return job_id if isinstance(job_id, UUID) else UUID(str(job_id))
    except ValueError:
        return None
