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

from claudeapp.jobs import heartbeat, transitions, upstream
from claudeapp.jobs.models import Job
from claudeapp.jobs.publish import enqueue

__all__ = ["backoff_seconds", "bury", "claim", "drop_hold", "enqueue", "finish", "record_failure", "run",
           "wait_for_room"]  # fmt: skip

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
            chain = upstream.model_chain(claimed.routed_model)
            ticket = upstream.acquire_limit(job=claimed, model_id=chain[0])  # the cheapest refusal first
            reservation = upstream.reserve(job=claimed, model_id=chain[0], note=partial(_note_hold, claimed))
            beat.reservation_id = reservation.pk
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
    # The common case, a due queued job, in one round trip; anything else under the row lock below.
    if job := transitions.start_queued_attempt(job_id=job_id, now=now, due_by=now + EARLY_SLACK):
        return job
    with transaction.atomic():
        job = Job.objects.select_for_update(skip_locked=True).filter(pk=job_id).first()
        if job is None or job.mode == Job.Mode.BATCH or not _runnable(job, now):
            return None  # batch jobs are the Message Batches poller's (batches.py), never a worker's
        _drop_hold(job)  # taking over from a dead worker: its attempt's hold goes back before ours is taken
        if job.attempts >= job.max_attempts:
            bury(job=job, error_type="worker_lost", message="attempts exhausted: the worker died during the call")
            return None
        transitions.start_attempt(job=job, now=now)
    return job


def finish(*, job: Job, result: Any, reservation: Any) -> None:
    """Bill and complete the attempt in one transaction, if this worker still owns it.

    The bill is the transaction's last statement: it updates the ledger's daily rollup row, which
    every call of the principal and model that day updates too, and its lock is held until the
    commit. Completing the job first (its row is ours: locked, no one waits on it) with the cost the
    bill will have keeps that lock for the commit alone; under one busy key the workers otherwise
    queued on it for a third of their time (py-spy, bench/queue_throughput.py)."""
    with transaction.atomic():
        current = transitions.owned_attempt(job=job)
        if current is None:
            # Another delivery took the job over, but upstream answered (and charged) this call too:
            # bill it under this attempt's own key; the job's result is the owner's.
            logger.warning("job %s: attempt %s lost its lease; its answer is billed, not used", job.id, job.attempts)
            upstream.settle(job=job, reservation=reservation, result=result, attempt=job.attempts)
            return
        cost = upstream.settle_cost(job=current, reservation=reservation, result=result)
        transitions.succeed(
            job=current,
            cost_micros=cost,
            result=upstream.message_json(result),
            usage=dict(result.usage),
            model_used=result.model_used,
            upstream_request_id=result.request_id or "",
            upstream_message_id=result.message_id or "",
        )
        billed = upstream.settle(job=current, reservation=reservation, result=result)
        if billed != cost:
            # The job's key was billed before (nothing in the queue's own flow does that): the job
            # shows what the ledger holds, as it did when the bill came first.
            logger.warning("job %s: billed %s before, not %s; the job shows the ledger's", job.id, billed, cost)
            Job.objects.filter(pk=current.pk).update(cost_micros=billed)
            current.cost_micros = billed


def record_failure(*, job: Job, failure: upstream.Failure) -> None:
    """Retry later, fail at once, or bury: the job row is the only retry counter."""
    with transaction.atomic():
        current = transitions.owned_attempt(job=job)
        if current is None:
            return
        if not failure.retryable:
            _drop_hold(current)
            transitions.fail(job=current, failure=failure)
        elif current.attempts >= current.max_attempts:
            _drop_hold(current)
            transitions.bury(job=current, failure=failure)
        else:
            delay = backoff_seconds(attempt=current.attempts, retry_after=failure.retry_after)
            transitions.retry_later(job=current, failure=failure, delay=delay)


def wait_for_room(*, job: Job, failure: upstream.Failure) -> None:
    """Our rate limit had no room for the attempt: back to queued until it has, the attempt given back,
    so a job can wait any number of times without running out of attempts."""
    with transaction.atomic():
        current = transitions.owned_attempt(job=job)
        if current is None:
            return
        # A little jitter so the jobs refused together do not all come back in the same instant.
        delay = round(min(failure.retry_after or 1.0, LIMIT_WAIT_MAX_SECONDS) * random.uniform(1.0, 1.1), 3)
        transitions.wait_for_room(job=current, failure=failure, delay=delay)


def backoff_seconds(*, attempt: int, retry_after: float | None) -> float:
    """Exponential with full-ish jitter, never sooner than upstream's retry-after (capped)."""
    ceiling = min(settings.JOBS_RETRY_BASE_SECONDS * 2 ** max(attempt - 1, 0), settings.JOBS_RETRY_MAX_SECONDS)
    delay = ceiling * random.uniform(0.5, 1.0)
    if retry_after:
        delay = max(delay, min(retry_after, settings.JOBS_RETRY_MAX_SECONDS))
    return round(delay, 3)


def bury(*, job: Job, error_type: str, message: str) -> None:
    """Mark a job (locked by the caller) dead after its worker was lost, its hold given back; for the sweeper too."""
    _drop_hold(job)
    transitions.bury(job=job, failure=upstream.Failure(False, None, None, error_type, message, ""))


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
