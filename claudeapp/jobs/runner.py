"""Running one job: claim the row, call Claude outside any transaction, then settle and finish.

Celery on Redis delivers at least once, so `run` may be called twice for the same job, at
the same time or after a worker died. The claim (row lock + status check + attempt count +
lease) lets exactly one caller own an attempt; the finish only lands for the owner of the
current attempt, and billing is keyed by job id, so a job is billed once however often it ran.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from functools import partial
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from claudeapp.jobs import heartbeat, upstream
from claudeapp.jobs.models import Job

logger = logging.getLogger(__name__)

# An ETA message may fire a moment before next_attempt_at by the worker's clock.
EARLY_SLACK = dt.timedelta(seconds=1)
# A rate-limit wait longer than this is served in several waits; every countdown stays far below
# Celery's visibility timeout.
LIMIT_WAIT_MAX_SECONDS = 600.0


def run(*, job_id: UUID | str) -> None:
    claimed = claim(job_id=job_id)
    if claimed is None:
        return  # redelivered, taken by another worker, canceled or gone: never a second call
    with heartbeat.beating(job=claimed) as beat:
        ticket = reservation = None
        try:
            chain = upstream.model_chain(claimed.model_requested)
            ticket = upstream.acquire_limit(job=claimed, model_id=chain[0])  # the cheapest refusal first
            reservation = upstream.reserve(job=claimed, model_id=chain[0])
            beat.reservation_id = _note_hold(claimed, reservation)
            result = upstream.call(models=chain, payload=claimed.payload, upstream_user_id=upstream.user_id_of(claimed))
        except Exception as exc:
            upstream.settle_failed(job=claimed, reservation=reservation, exc=exc)
            upstream.finish_limit(ticket=ticket, result=None)
            _after_failure(job=claimed, exc=exc)
            return
        try:
            finish(job=claimed, result=result, reservation=reservation)
        finally:
            upstream.finish_limit(ticket=ticket, result=result)  # upstream used these tokens, billed or not


def _after_failure(*, job: Job, exc: Exception) -> None:
    failure = upstream.classify(exc)
    if failure is None:
        raise exc  # a bug: the lease expires and the sweeper runs the job again, counting the attempt
    if failure.limited:
        wait_for_room(job=job, failure=failure)
    else:
        record_failure(job=job, failure=failure)


def claim(*, job_id: UUID | str) -> Job | None:
    """Take the next attempt of a runnable job, or None. The attempt is counted before the call,
    so a job that kills its worker every time still runs out of attempts and ends dead."""
    now = timezone.now()
    with transaction.atomic():
        job = Job.objects.select_for_update(skip_locked=True).filter(pk=job_id).first()
        if job is None or job.mode == Job.Mode.BATCH or not _runnable(job, now):
            return None  # batch jobs are the Message Batches poller's (batches.py), never a worker's
        _drop_hold(job)  # taking over from a dead worker: its attempt's hold goes back before ours is taken
        if job.attempts >= job.max_attempts:
            _bury(job, error_type="worker_lost", message="attempts exhausted: the worker died during the call")
            return None
        job.status, job.attempts = Job.Status.RUNNING, job.attempts + 1
        job.lease_expires_at = now + dt.timedelta(seconds=settings.JOBS_LEASE_SECONDS)
        job.started_at, job.next_attempt_at = now, None
        job.save(update_fields=["status", "attempts", "lease_expires_at", "started_at", "next_attempt_at",
                                "reservation_id", "updated_at"])  # fmt: skip
    return job


def finish(*, job: Job, result: Any, reservation: Any) -> None:
    """Bill and complete the attempt in one transaction, if this worker still owns it."""
    with transaction.atomic():
        current = _owned(job)
        if current is None:
            logger.warning("job %s: attempt %s lost its lease; result dropped unbilled", job.id, job.attempts)
            upstream.release(reservation=reservation)
            return
        current.cost_micros = upstream.settle(job=current, reservation=reservation, result=result)
        current.result = upstream.message_json(result)
        current.usage, current.model_used = dict(result.usage), result.model_used
        current.upstream_request_id = result.request_id or ""
        current.upstream_message_id = result.message_id or ""
        current.status, current.finished_at = Job.Status.SUCCEEDED, timezone.now()
        current.lease_expires_at = current.reservation_id = None
        current.save()
        transaction.on_commit(partial(notify, job_id=current.id))


def record_failure(*, job: Job, failure: upstream.Failure) -> None:
    """Retry later, fail at once, or bury: the job row is the only retry counter."""
    with transaction.atomic():
        current = _owned(job)
        if current is None:
            return
        _set_error(current, failure)
        if not failure.retryable:
            _end(current, Job.Status.FAILED)
        elif current.attempts >= current.max_attempts:
            _end(current, Job.Status.DEAD)
        else:
            delay = backoff_seconds(attempt=current.attempts, retry_after=failure.retry_after)
            current.status, current.lease_expires_at, current.reservation_id = Job.Status.QUEUED, None, None
            current.next_attempt_at = current.enqueued_at = timezone.now() + dt.timedelta(seconds=delay)
            current.save()
            transaction.on_commit(partial(enqueue, job_id=current.id, queue=current.queue, countdown=delay))


def wait_for_room(*, job: Job, failure: upstream.Failure) -> None:
    """Our rate limit had no room for the attempt: back to queued until it has, the attempt given back,
    so a job can wait any number of times without running out of attempts."""
    with transaction.atomic():
        current = _owned(job)
        if current is None:
            return
        _set_error(current, failure)  # says why the job waits; kept (like a retried 529) once it succeeds
        # A little jitter so the jobs refused together do not all come back in the same instant.
        delay = round(min(failure.retry_after or 1.0, LIMIT_WAIT_MAX_SECONDS) * random.uniform(1.0, 1.1), 3)
        current.attempts = max(current.attempts - 1, 0)
        current.status, current.lease_expires_at, current.reservation_id = Job.Status.QUEUED, None, None
        current.next_attempt_at = current.enqueued_at = timezone.now() + dt.timedelta(seconds=delay)
        current.save()
        transaction.on_commit(partial(enqueue, job_id=current.id, queue=current.queue, countdown=delay))


def backoff_seconds(*, attempt: int, retry_after: float | None) -> float:
    """Exponential with full-ish jitter, never sooner than upstream's retry-after (capped)."""
    ceiling = min(settings.JOBS_RETRY_BASE_SECONDS * 2 ** max(attempt - 1, 0), settings.JOBS_RETRY_MAX_SECONDS)
    delay = ceiling * random.uniform(0.5, 1.0)
    if retry_after:
        delay = max(delay, min(retry_after, settings.JOBS_RETRY_MAX_SECONDS))
    return round(delay, 3)


def enqueue(*, job_id: UUID | str, queue: str, countdown: float | None = None) -> None:
    """Publish a job id. A lost publish is not fatal: the sweeper re-enqueues stale queued jobs."""
    from claudeapp.jobs import tasks

    try:
        tasks.run_job.apply_async(args=[str(job_id)], queue=queue, countdown=countdown)
    except Exception:
        logger.warning("job %s: publish failed; the sweeper will re-enqueue it", job_id, exc_info=True)


def notify(*, job_id: UUID | str) -> None:
    """Start webhook delivery for a job that reached a terminal state (no-op without a URL)."""
    from claudeapp.jobs import tasks

    if Job.objects.filter(pk=job_id).exclude(webhook_url="").exists():
        try:
            tasks.deliver_webhook.apply_async(args=[str(job_id), 1])
        except Exception:
            logger.warning("job %s: webhook publish failed", job_id, exc_info=True)


def bury(*, job: Job, error_type: str, message: str) -> None:
    """Mark a job (locked by the caller) dead; for the sweeper too."""
    _bury(job, error_type=error_type, message=message)


def drop_hold(*, job: Job) -> None:
    """Release the budget hold of the job's last attempt (locked by the caller), if any is left."""
    _drop_hold(job)


def _note_hold(job: Job, reservation: Any) -> int | None:
    """Remember the attempt's hold on the row, so whoever takes over from a dead worker releases it."""
    if reservation.pk is not None:
        Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING, attempts=job.attempts).update(
            reservation_id=reservation.pk
        )
    return reservation.pk


def _drop_hold(job: Job) -> None:
    if job.mode == Job.Mode.QUEUE and job.reservation_id:
        upstream.release_held(reservation_id=job.reservation_id)
        job.reservation_id = None


def _runnable(job: Job, now: dt.datetime) -> bool:
    if job.status == Job.Status.QUEUED:
        return job.next_attempt_at is None or job.next_attempt_at <= now + EARLY_SLACK
    # A running job whose lease ran out had its worker die: this delivery may take over.
    return job.status == Job.Status.RUNNING and job.lease_expires_at is not None and job.lease_expires_at < now


def _owned(job: Job) -> Job | None:
    current = Job.objects.select_for_update().filter(pk=job.pk).first()
    if current is None or current.status != Job.Status.RUNNING or current.attempts != job.attempts:
        return None
    return current


def _set_error(job: Job, failure: upstream.Failure) -> None:
    job.last_error_type, job.last_error_message = failure.error_type[:100], failure.message
    job.last_error_status, job.last_error_request_id = failure.status, failure.request_id[:200]


def _end(job: Job, status: str) -> None:
    _drop_hold(job)
    job.status, job.finished_at = status, timezone.now()
    job.lease_expires_at = job.next_attempt_at = None
    job.save()
    transaction.on_commit(partial(notify, job_id=job.id))


def _bury(job: Job, *, error_type: str, message: str) -> None:
    job.last_error_type, job.last_error_message, job.last_error_status = error_type, message, None
    _end(job, Job.Status.DEAD)
