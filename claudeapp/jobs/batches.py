"""Jobs with mode=batch: grouped per model into Message Batches by a beat task, polled, fanned out.

A batch job waits in `queued` and is never published to Celery. Each tick:

1. claim: in one transaction, lock waiting batch jobs (`skip_locked`), group them per model and
   move every group that is due (JOBS_BATCH_MAX_REQUESTS reached, or its oldest job waited
   JOBS_BATCH_MAX_WAIT_SECONDS) to `running` in a new MessageBatch row (`submitting`). Two ticks
   at once never see the same job: the second skips the locked rows or finds them running.
2. submit: outside any transaction, take each job's tokens from its token-per-minute limits (no
   request slot: the batch is one call; no room = the job waits for a later batch, attempt refunded)
   and hold its worst case (batch price) on its budgets, then one create call; the row gets the
   upstream id (`in_progress`).
3. poll: retrieve open batches; once `ended`, apply each result to its job in its own short
   transaction, only if the job is still `running` in this batch (a canceled job, or a result
   applied by an earlier tick that died half way, is skipped). Billing is keyed `job:<id>`. Each
   result applied (a `canceled` one aside: it never ran) is one request log line, surface `batches`,
   written after its transaction commits (calls/observe.py `batch_item`).

A job that ends short of a result is logged the same way, by the step that moves it: `refused` (429 a
token limit, 402 a budget) when submit refuses it, `failed` when the model map refuses it at claim or
the create is refused (sent back or failed), `failed` when recover_stale buries it at its last attempt.
One sent back by recover_stale is not: no call ended, and its next batch logs it.

The job row still owns retries: attempts are counted at claim, as for queued jobs.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from claudeapp.claude import batches as api
from claudeapp.claude.errors import UpstreamError
from claudeapp.jobs import transitions, upstream
from claudeapp.jobs.errors import BatchNotCancelable
from claudeapp.jobs.models import Job, MessageBatch

logger = logging.getLogger(__name__)

# Upstream keeps a batch at most 24 h; the lease covers that plus time to notice the end.
LEASE = dt.timedelta(hours=25)
# A batch row still `submitting` after this died between claim and create: its jobs go back.
SUBMIT_GRACE = dt.timedelta(minutes=10)
# Error types of an `errored` result that may succeed in a later batch.
RETRYABLE_TYPES = frozenset({"overloaded_error", "api_error", "rate_limit_error", "timeout_error"})
REQUEST_INDEX = re.compile(r"requests\.(\d+)\.")
# Headroom under the API's 256 MB for the envelope around the requests.
BYTES_BUDGET = api.MAX_BYTES - 1024 * 1024


@dataclass(frozen=True)
class TickReport:
    recovered: int
    submitted: list[int]
    polled: int


def tick() -> TickReport:
    """The beat task: repair, submit what is due, poll what is open."""
    recovered = recover_stale()
    submitted = [batch.pk for batch in submit_due()]
    polled = poll_open()
    return TickReport(recovered=recovered, submitted=submitted, polled=polled)


# --- claim and submit


def submit_due(*, now: dt.datetime | None = None) -> list[MessageBatch]:
    """Claim every due group and submit it; returns the batches that reached upstream."""
    sent = []
    for batch, jobs in claim_due(now=now or timezone.now()):
        if submit(batch=batch, jobs=jobs):
            sent.append(batch)
    return sent


def claim_due(*, now: dt.datetime) -> list[tuple[MessageBatch, list[Job]]]:
    max_requests = min(settings.JOBS_BATCH_MAX_REQUESTS, api.MAX_REQUESTS)
    cutoff = now - dt.timedelta(seconds=settings.JOBS_BATCH_MAX_WAIT_SECONDS)
    claimed = []
    with transaction.atomic():
        if not _first_claimer():
            return []  # another submitter is claiming what is due right now, and takes all of it
        waiting = (
            Job.objects.select_for_update(skip_locked=True)
            .filter(mode=Job.Mode.BATCH, status=Job.Status.QUEUED)
            .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
            .order_by("enqueued_at", "pk")
        )
        for model_id, jobs in _by_model(waiting[: max_requests * 4]).items():
            for chunk in _chunks(jobs, model_id, max_requests):
                if len(chunk) >= max_requests or chunk[0][0].enqueued_at <= cutoff:
                    claimed.append(_claim(model_id, chunk, now))
    return claimed


_CLAIM_LOCK = 0x6A6F62732E62  # "jobs.b": one transaction-scoped advisory lock for claim_due


def _first_claimer() -> bool:
    """Only one submitter claims at a time: two at once each skip the rows the other has locked as it goes
    (SKIP LOCKED), and split one model's due jobs into two smaller batches (3 + 1 seen in a test run)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_CLAIM_LOCK])
        return bool(cursor.fetchone()[0])


def _by_model(jobs: Iterable[Job]) -> dict[str, list[Job]]:
    groups: dict[str, list[Job]] = defaultdict(list)
    resolved: dict[str, str] = {}
    for job in jobs:
        try:
            if job.routed_model not in resolved:
                resolved[job.routed_model] = upstream.model_chain(job.routed_model)[0]
        except Exception as exc:
            failure = upstream.classify(exc)
            if failure is None:
                raise
            _finish_failed(job, failure)  # the model map refuses it now; waiting would not help
            upstream.observe_batch_item(
                job=job, model_id=job.routed_model, upstream_batch_id="", result_type="unrouted"
            )
            continue
        groups[resolved[job.routed_model]].append(job)
    return groups


def _chunks(jobs: list[Job], model_id: str, max_requests: int) -> Iterable[list[tuple[Job, dict[str, Any]]]]:
    """Oldest first, cut at the request count or the byte limit, whichever comes first."""
    chunk: list[tuple[Job, dict[str, Any]]] = []
    size = 0
    for job in jobs:
        request = {"custom_id": str(job.pk), "params": {**job.payload, "model": model_id}}
        request_size = api.request_size(request)
        if chunk and (len(chunk) >= max_requests or size + request_size > BYTES_BUDGET):
            yield chunk
            chunk, size = [], 0
        chunk.append((job, request))
        size += request_size
    if chunk:
        yield chunk


def _claim(model_id: str, chunk: list[tuple[Job, dict[str, Any]]], now: dt.datetime) -> tuple[MessageBatch, list]:
    batch = MessageBatch.objects.create(
        model=model_id, request_count=len(chunk), size_bytes=sum(api.request_size(r) for _, r in chunk)
    )
    jobs = [job for job, _ in chunk]
    transitions.take_into_batch(jobs=jobs, batch=batch, now=now, lease=LEASE)
    for job, request in chunk:
        job.request = request  # type: ignore[attr-defined]
    return batch, jobs


def submit(*, batch: MessageBatch, jobs: list[Job]) -> bool:
    """Hold budgets and create the batch upstream. False when nothing reached upstream."""
    requests, held = [], []
    for job in jobs:
        try:
            upstream.acquire_batch_tokens(job=job, model_id=batch.model)
            upstream.reserve(
                job=job, model_id=batch.model, hold_for=LEASE + dt.timedelta(hours=1), note=partial(_note_hold, job)
            )
        except Exception as exc:
            _not_submitted(job, batch, exc)
            continue
        requests.append(job.request)  # type: ignore[attr-defined]
        held.append(job)
    if not requests:
        _mark(batch, status=MessageBatch.Status.FAILED, last_error="no request left after budget checks")
        return False
    try:
        status = api.submit(requests)
    except UpstreamError as exc:
        _submit_failed(batch, held, exc)
        return False
    _submitted(batch, status, count=len(requests))
    return True


def _note_hold(job: Job, reservation: Any) -> None:
    Job.objects.filter(pk=job.pk).update(reservation_id=reservation.pk)


def _not_submitted(job: Job, batch: MessageBatch, exc: Exception) -> None:
    """The token limits had no room (wait for a later batch, attempt refunded) or the budget refused (fail):
    logged as a refusal either way (429, 402), as a queued job's would be."""
    failure = upstream.classify(exc)
    if failure is None:
        raise exc
    if failure.limited:
        retry_at = timezone.now() + dt.timedelta(seconds=failure.retry_after or settings.JOBS_BATCH_POLL_SECONDS)
        action = partial(_back_to_waiting, failure=failure, refund=True, not_before=retry_at)
    else:
        action = partial(_finish_failed, failure=failure)
    refused_with = upstream.refusal_status(failure)
    observed = partial(_observed, action=action, batch=batch, result_type="not_submitted", refused_with=refused_with)
    _settle_one(job.pk, batch, observed)


def _submitted(batch: MessageBatch, status: api.BatchStatus, *, count: int) -> None:
    now = timezone.now()
    expires = status.expires_at or now + dt.timedelta(hours=24)
    MessageBatch.objects.filter(pk=batch.pk, status=MessageBatch.Status.SUBMITTING).update(
        upstream_id=status.id, status=MessageBatch.Status.IN_PROGRESS, submitted_at=now, expires_at=expires,
        request_count=count, processing_count=count,
    )  # fmt: skip
    # The lease now follows upstream's own expiry rather than our guess at claim time.
    Job.objects.filter(batch=batch, status=Job.Status.RUNNING).update(lease_expires_at=expires + dt.timedelta(hours=1))
    logger.info("message batch %s: %s requests for %s submitted as %s", batch.pk, count, batch.model, status.id)


def _submit_failed(batch: MessageBatch, jobs: list[Job], exc: UpstreamError) -> None:
    """A refused create: the named request fails, the rest go back (their attempt refunded);
    a retryable refusal sends all back; any other refusal fails them all."""
    _mark(batch, status=MessageBatch.Status.FAILED, last_error=exc.describe())
    failure = upstream.classify(exc)
    assert failure is not None
    match = REQUEST_INDEX.search(exc.message or "")
    culprit = jobs[int(match.group(1))].pk if match and int(match.group(1)) < len(jobs) else None
    for job in jobs:
        if failure.retryable or (culprit is not None and job.pk != culprit):
            retry_at = timezone.now() + dt.timedelta(seconds=settings.JOBS_BATCH_POLL_SECONDS)
            action = partial(_back_to_waiting, failure=failure, refund=True, not_before=retry_at)
        else:
            action = partial(_finish_failed, failure=failure)
        # Sent back or failed, each job's request was in the refused create: one `failed` line each.
        _settle_one(job.pk, batch, partial(_observed, action=action, batch=batch, result_type="create_refused"))
    logger.warning("message batch %s: create refused (%s)", batch.pk, exc.describe())


# --- poll and fan out


def poll_open(*, limit: int = 100) -> int:
    batches = MessageBatch.objects.filter(status__in=MessageBatch.OPEN).order_by(F("polled_at").asc(nulls_first=True))
    ids = list(batches.values_list("pk", flat=True)[:limit])
    for batch_id in ids:
        poll(batch_id=batch_id)
    return len(ids)


def poll(*, batch_id: int) -> MessageBatch:
    """Refresh one batch; once upstream says it ended, apply its results to the jobs."""
    batch = MessageBatch.objects.get(pk=batch_id)
    if batch.status in (MessageBatch.Status.IN_PROGRESS, MessageBatch.Status.CANCELING):
        try:
            status = api.retrieve(batch.upstream_id)
        except UpstreamError as exc:
            _mark(batch, last_error=exc.describe())  # polled again next tick; the lease bounds how long
            return batch
        _record_status(batch, status)
        if not status.ended:
            return batch
    if batch.status == MessageBatch.Status.ENDED:
        fan_out(batch)
    return batch


def _record_status(batch: MessageBatch, status: api.BatchStatus) -> None:
    batch.status = MessageBatch.Status.ENDED if status.ended else status.processing_status
    for key in api.COUNT_KEYS:
        setattr(batch, f"{key}_count", status.counts.get(key, 0))
    batch.ended_at, batch.polled_at, batch.last_error = status.ended_at, timezone.now(), ""
    batch.save(update_fields=["status", *(f"{k}_count" for k in api.COUNT_KEYS), "ended_at", "polled_at", "last_error"])


def fan_out(batch: MessageBatch) -> None:
    try:
        for custom_id, result in api.results(batch.upstream_id):
            apply_result(batch=batch, job_id=custom_id, result=result)
    except UpstreamError as exc:
        _mark(batch, last_error=f"results: {exc.describe()}")  # ENDED stays: the next tick reads them again
        return
    # A job upstream did not report (should not happen) is not left running for a day.
    missing = Job.objects.filter(batch=batch, status=Job.Status.RUNNING).values_list("pk", flat=True)
    lost = upstream.Failure(True, None, None, "batch_result_missing", "no result for this request", "")
    for job_id in list(missing):
        action = partial(_back_to_waiting, failure=lost, refund=False)
        _settle_one(job_id, batch, partial(_observed, action=action, batch=batch, result_type="missing"))
    _mark(batch, status=MessageBatch.Status.DONE)


def apply_result(*, batch: MessageBatch, job_id: UUID | str, result: dict[str, Any]) -> None:
    kind = result.get("type")
    if kind == "succeeded":
        action = partial(_succeed, message=result["message"], model_id=batch.model)
    elif kind == "errored":
        failure = _failure(result.get("error") or {})
        action = partial(_back_to_waiting, failure=failure, refund=False) if failure.retryable else None
        action = action or partial(_finish_failed, failure=failure)
    elif kind == "canceled":
        canceled = upstream.Failure(True, None, None, "batch_canceled", "the batch was canceled upstream", "")
        action = partial(_back_to_waiting, failure=canceled, refund=True)
    else:
        expired = upstream.Failure(True, None, None, "batch_expired", "the batch expired before this request ran", "")
        action = partial(_back_to_waiting, failure=expired, refund=False)
    applied = _settle_one(job_id, batch, partial(_observed, action=action, batch=batch, result_type=str(kind)))
    if not applied and kind == "succeeded":
        _bill_canceled(job_id, batch, result["message"])


def _observed(job: Job, *, action: Any, batch: MessageBatch, result_type: str, refused_with: int | None = None) -> None:
    """Apply a result (or a refusal at submit), then log the item (once this applied settlement commits).
    A `canceled` result never ran upstream and bills nothing: the job waits for the next batch, and no
    call is logged."""
    entry = action(job)
    if result_type != "canceled":
        upstream.observe_batch_item(
            job=job, model_id=batch.model, upstream_batch_id=batch.upstream_id, result_type=result_type,
            entry=entry, refused_with=refused_with,
        )  # fmt: skip


def _bill_canceled(job_id: UUID | str, batch: MessageBatch, message: dict[str, Any]) -> None:
    """A job canceled after its batch went upstream: upstream still ran it and charged it. The
    caller never sees the result, but the ledger (and the budgets) must hold what upstream billed,
    and the request log the call: once, though every later poll of the batch comes back here."""
    event_key = f"{upstream.ledger_event_key(job_id)}:canceled-in:{batch.pk}"
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id, batch=batch, status=Job.Status.CANCELED).first()
        if job is None or upstream.billed(event_key=event_key):  # the job's lock orders the pollers
            return
        entry = upstream.settle_message(
            job=job,
            reservation=upstream.held_reservation(job=job, model_id=batch.model),
            message=message,
            event_key=event_key,
        )
        upstream.observe_batch_item(
            job=job, model_id=batch.model, upstream_batch_id=batch.upstream_id, result_type="succeeded", entry=entry
        )


def _failure(error: dict[str, Any]) -> upstream.Failure:
    inner = error.get("error") or {}
    error_type = str(inner.get("type") or "api_error")
    return upstream.Failure(
        retryable=error_type in RETRYABLE_TYPES,
        retry_after=None,
        status=None,
        error_type=error_type,
        message=str(inner.get("message") or ""),
        request_id=str(error.get("request_id") or ""),
    )


# --- one job at a time, each in its own short transaction


def _settle_one(job_id: UUID | str, batch: MessageBatch, action: Any) -> bool:
    """Apply `action` to the job only while it is running in this batch; False when it is not."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id, batch=batch, status=Job.Status.RUNNING).first()
        if job is None:
            return False
        action(job)
        return True


def _succeed(job: Job, *, message: dict[str, Any], model_id: str) -> Any:
    """Bill the result and end the job; returns the ledger line."""
    reservation = upstream.held_reservation(job=job, model_id=model_id)
    entry = upstream.settle_message(job=job, reservation=reservation, message=message)
    transitions.succeed(
        job=job,
        cost_micros=int(entry.cost_micros),
        result=message,
        usage=message.get("usage") or {},
        model_used=message.get("model") or model_id,
        upstream_request_id=job.upstream_request_id,
        upstream_message_id=message.get("id") or "",
    )
    return entry


def _finish_failed(job: Job, failure: upstream.Failure) -> None:
    upstream.release_held(reservation_id=job.reservation_id)
    transitions.fail(job=job, failure=failure)


def _back_to_waiting(
    job: Job, *, failure: upstream.Failure, refund: bool, not_before: dt.datetime | None = None
) -> None:
    """Wait for a later batch; the attempt counts unless the job was not at fault (refund)."""
    upstream.release_held(reservation_id=job.reservation_id)
    if not refund and job.attempts >= job.max_attempts:
        transitions.bury(job=job, failure=failure)
    else:
        transitions.wait_for_batch(job=job, failure=failure, refund=refund, not_before=not_before)


def _mark(batch: MessageBatch, **fields: Any) -> None:
    MessageBatch.objects.filter(pk=batch.pk).update(polled_at=timezone.now(), **fields)
    for name, value in fields.items():
        setattr(batch, name, value)


# --- repair and cancel


def recover_stale(*, now: dt.datetime | None = None) -> int:
    """Jobs of a batch row that never got its upstream id, and batch jobs past their lease."""
    now = now or timezone.now()
    lost = upstream.Failure(True, None, None, "batch_lost", "the batch was not submitted or never ended", "")
    count = 0
    stale = MessageBatch.objects.filter(status=MessageBatch.Status.SUBMITTING, created_at__lt=now - SUBMIT_GRACE)
    for batch in stale:
        _mark(batch, status=MessageBatch.Status.FAILED, last_error="abandoned: the submitter died before the create")
    expired = Job.objects.filter(mode=Job.Mode.BATCH, status=Job.Status.RUNNING).filter(
        Q(lease_expires_at__lt=now) | Q(batch__status=MessageBatch.Status.FAILED) | Q(batch__isnull=True)
    )
    for job in expired.select_related("batch")[:1000]:
        with transaction.atomic():
            locked = Job.objects.select_for_update(skip_locked=True).filter(pk=job.pk, status=Job.Status.RUNNING)
            if (locked := locked.first()) is not None:
                _back_to_waiting(locked, failure=lost, refund=False)
                _observe_lost(locked, job.batch)
                count += 1
    return count


def _observe_lost(job: Job, batch: MessageBatch | None) -> None:
    """A job buried here (its last attempt's batch never ended, or never went up) ends with no result
    that would log it: one `failed` line. One sent back is not logged: a lease running out ends no call,
    and the batch it goes into next logs its ending."""
    if job.status == Job.Status.DEAD:
        model_id, upstream_id = (batch.model, batch.upstream_id) if batch else (job.routed_model, "")
        upstream.observe_batch_item(job=job, model_id=model_id, upstream_batch_id=upstream_id, result_type="lost")


def cancel_upstream(*, batch_id: int) -> MessageBatch:
    """Operator action: stop a whole batch. Unprocessed requests come back `canceled` and their
    jobs wait for the next batch; requests already processed keep their results."""
    batch = MessageBatch.objects.get(pk=batch_id)
    if batch.status not in (MessageBatch.Status.IN_PROGRESS, MessageBatch.Status.CANCELING) or not batch.upstream_id:
        raise BatchNotCancelable(batch_id=batch.pk, status=batch.status)
    status = api.cancel(batch.upstream_id)
    _mark(batch, status=MessageBatch.Status.CANCELING if not status.ended else MessageBatch.Status.ENDED,
          cancel_requested_at=timezone.now())  # fmt: skip
    return batch


def release_for_cancel(*, job: Job) -> None:
    """services.cancel on a job inside a submitted batch: give its hold back. Upstream may still
    run it: a succeeded result is then billed at fan-out (_bill_canceled), never shown."""
    upstream.release_held(reservation_id=job.reservation_id)
    job.reservation_id = None
