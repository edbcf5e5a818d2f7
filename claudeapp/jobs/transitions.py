"""Every change of a Job's status, one guarded function each. No other module assigns Job.status.

The caller holds the row lock (select_for_update) inside its transaction, decides which transition
applies (a retry policy, a batch result, an operator's action) and does any billing first: a hold
belongs to the running attempt, so every transition out of `running` clears `reservation_id`, after
the caller settled or released it. The function refuses a from-state the table below does not allow
(InvalidTransition), sets the fields, saves them with update_fields, and schedules the side effects:

- publishing to the broker and webhooks, after commit (a rolled-back change publishes nothing); the
  webhook a job's end owes is recorded on the row too, so the sweeper re-publishes a lost one;
- the terminal hooks (settings.JOBS_TERMINAL_HOOKS, e.g. the chat answer a job was queued for), in
  the same transaction, so the job and what its end writes commit or roll back together. The hooks
  are dotted paths because the layers point the other way: conversations import jobs, not back.

"Lost the race" (another worker owns the attempt now, the job was canceled) is not an error for the
runner and the batch poller: they re-check with `owned_attempt` and drop their result quietly.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.module_loading import import_string

from claudeapp.core import metrics
from claudeapp.jobs import publish, webhooks
from claudeapp.jobs.errors import InvalidTransition
from claudeapp.jobs.models import Job, MessageBatch
from claudeapp.jobs.upstream import Failure

S = Job.Status
ERROR_FIELDS = ("last_error_type", "last_error_message", "last_error_status", "last_error_request_id")


@dataclass(frozen=True)
class Transition:
    sources: frozenset[str]
    target: str | None  # None: the row is deleted


TRANSITIONS: dict[str, Transition] = {
    # A queued job's next attempt; `running` is a takeover from a worker whose lease ran out.
    "start_attempt": Transition(frozenset({S.QUEUED, S.RUNNING}), S.RUNNING),
    "take_into_batch": Transition(frozenset({S.QUEUED}), S.RUNNING),
    "succeed": Transition(frozenset({S.RUNNING}), S.SUCCEEDED),
    "retry_later": Transition(frozenset({S.RUNNING}), S.QUEUED),  # the attempt counts
    "wait_for_room": Transition(frozenset({S.RUNNING}), S.QUEUED),  # our rate limit: the attempt is given back
    "recover_lease": Transition(frozenset({S.RUNNING}), S.QUEUED),  # its worker died (sweeper)
    "wait_for_batch": Transition(frozenset({S.RUNNING}), S.QUEUED),  # a later Message Batch takes it
    # `queued`: refused before it ran (the model map no longer serves its model).
    "fail": Transition(frozenset({S.QUEUED, S.RUNNING}), S.FAILED),
    "bury": Transition(frozenset({S.QUEUED, S.RUNNING}), S.DEAD),
    # `running` only while waiting in a submitted Message Batch: a queued call cannot be taken back.
    "cancel": Transition(frozenset({S.QUEUED, S.RUNNING}), S.CANCELED),
    "requeue": Transition(frozenset({S.FAILED, S.DEAD, S.CANCELED}), S.QUEUED),
    "discard": Transition(frozenset({S.SUCCEEDED, S.FAILED, S.DEAD, S.CANCELED}), None),
}


def check(*, job: Job, action: str) -> None:
    """Raise InvalidTransition unless `action` may start from the job's status (and its extra guard)."""
    allowed = job.status in TRANSITIONS[action].sources
    if action == "cancel" and job.status == S.RUNNING:
        allowed = job.mode == Job.Mode.BATCH
    if not allowed:
        raise InvalidTransition(job_id=job.pk, status=job.status, action=action.replace("_", " "))


def owned_attempt(*, job: Job) -> Job | None:
    """Lock the row again; None when the attempt `job` was is no longer the running one."""
    current = Job.objects.select_for_update().filter(pk=job.pk).first()
    if current is None or current.status != S.RUNNING or current.attempts != job.attempts:
        return None
    return current


# --- into running


def start_attempt(*, job: Job, now: dt.datetime) -> Job:
    """Count the attempt before the call, so a job that kills its worker still runs out of attempts."""
    check(job=job, action="start_attempt")
    job.status, job.attempts = S.RUNNING, job.attempts + 1
    job.lease_expires_at = now + dt.timedelta(seconds=settings.JOBS_LEASE_SECONDS)
    job.started_at, job.next_attempt_at = now, None
    job.save(update_fields=["status", "attempts", "lease_expires_at", "started_at", "next_attempt_at",
                            "reservation_id", "updated_at"])  # fmt: skip
    return job


def start_queued_attempt(*, job_id: object, now: dt.datetime, due_by: dt.datetime) -> Job | None:
    """`start_attempt` for the common claim, in one statement and no transaction: a queue-mode job
    that is queued, due by `due_by`, holds no budget and has attempts left becomes running with a
    fresh lease. None for a row in any other state: the caller takes the locked path, which handles
    takeovers, buries and refusals. A concurrent claim of the same row waits for the first to commit,
    then finds it running and matches nothing, so one claim wins, as with the row lock."""
    pk = Job._meta.pk.get_db_prep_value(Job._meta.pk.to_python(job_id), connection)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in Job._meta.concrete_fields)
    sql = (
        f"UPDATE {Job._meta.db_table} SET status = %s, attempts = attempts + 1, lease_expires_at = %s, "  # noqa: S608  (names from model meta)
        "started_at = %s, next_attempt_at = NULL, updated_at = %s "
        "WHERE id = %s AND status = %s AND mode = %s AND (next_attempt_at IS NULL OR next_attempt_at <= %s) "
        f"AND attempts < max_attempts AND reservation_id IS NULL RETURNING {columns}"
    )
    lease = now + dt.timedelta(seconds=settings.JOBS_LEASE_SECONDS)
    params = [S.RUNNING, lease, now, now, pk, S.QUEUED, Job.Mode.QUEUE, due_by]
    return next(iter(Job.objects.raw(sql, params)), None)


def take_into_batch(*, jobs: Sequence[Job], batch: MessageBatch, now: dt.datetime, lease: dt.timedelta) -> None:
    """Queued batch jobs (locked) into a new MessageBatch row, in one UPDATE."""
    for job in jobs:
        check(job=job, action="take_into_batch")
    ids = [job.pk for job in jobs]
    updated = Job.objects.filter(pk__in=ids, status=S.QUEUED, mode=Job.Mode.BATCH).update(
        status=S.RUNNING, batch=batch, attempts=F("attempts") + 1, lease_expires_at=now + lease,
        started_at=now, next_attempt_at=None, updated_at=now,
    )  # fmt: skip
    assert updated == len(ids), "claimed rows are locked by this transaction"
    for job in jobs:
        job.status, job.batch, job.attempts = S.RUNNING, batch, job.attempts + 1
        job.lease_expires_at, job.started_at, job.next_attempt_at = now + lease, now, None


# --- back to queued


def retry_later(*, job: Job, failure: Failure, delay: float) -> None:
    """A retryable failure: queued again with a countdown; the attempt counts."""
    check(job=job, action="retry_later")
    _set_error(job, failure)
    _requeue_in(job, delay)


def wait_for_room(*, job: Job, failure: Failure, delay: float) -> None:
    """Our rate limit had no room: queued again until it has, the attempt given back, so a job can wait
    any number of times without running out of attempts."""
    check(job=job, action="wait_for_room")
    _set_error(job, failure)  # says why the job waits; cleared once it succeeds
    job.attempts = max(job.attempts - 1, 0)
    _requeue_in(job, delay)


def recover_lease(*, job: Job, now: dt.datetime) -> None:
    """The sweeper found the attempt's lease expired: its worker died or hung. Run it again."""
    check(job=job, action="recover_lease")
    job.status, job.lease_expires_at, job.enqueued_at, job.reservation_id = S.QUEUED, None, now, None
    job.last_error_type, job.last_error_message = "worker_lost", "lease expired: the worker died or hung"
    job.save(update_fields=["status", "lease_expires_at", "enqueued_at", "last_error_type", "last_error_message",
                            "reservation_id", "updated_at"])  # fmt: skip
    transaction.on_commit(partial(publish.enqueue, job_id=job.pk, queue=job.queue))


def wait_for_batch(*, job: Job, failure: Failure, refund: bool, not_before: dt.datetime | None = None) -> None:
    """A batch job goes back to wait for a later batch; the attempt counts unless it was not at fault."""
    check(job=job, action="wait_for_batch")
    _set_error(job, failure)
    if refund:
        job.attempts = max(job.attempts - 1, 0)
    else:
        job.enqueued_at = timezone.now()  # waits for the next batch like a new job
    job.status, job.lease_expires_at, job.next_attempt_at, job.reservation_id = S.QUEUED, None, not_before, None
    job.save(update_fields=[*ERROR_FIELDS, "attempts", "enqueued_at", "status", "lease_expires_at",
                            "next_attempt_at", "reservation_id", "updated_at"])  # fmt: skip


def requeue(*, job: Job) -> None:
    """A finished job gets a fresh set of attempts (the dead-letter queue's Requeue)."""
    check(job=job, action="requeue")
    job.status, job.attempts, job.max_attempts = S.QUEUED, 0, settings.JOBS_MAX_ATTEMPTS
    job.next_attempt_at = job.lease_expires_at = job.finished_at = job.started_at = None
    job.enqueued_at = timezone.now()
    job.save(update_fields=["status", "attempts", "max_attempts", "next_attempt_at", "lease_expires_at",
                            "finished_at", "started_at", "enqueued_at", "updated_at"])  # fmt: skip
    if job.mode == Job.Mode.QUEUE:  # batch jobs wait for the batch poller, never a worker
        transaction.on_commit(partial(publish.enqueue, job_id=job.pk, queue=job.queue))


# --- terminal


def succeed(
    *,
    job: Job,
    result: dict[str, object],
    usage: dict[str, object],
    model_used: str,
    cost_micros: int,
    upstream_request_id: str = "",
    upstream_message_id: str = "",
) -> None:
    check(job=job, action="succeed")
    job.result, job.usage, job.model_used, job.cost_micros = result, usage, model_used, cost_micros
    job.upstream_request_id, job.upstream_message_id = upstream_request_id, upstream_message_id
    # An earlier attempt's error (a retried 529, a wait for rate-limit room) is history once the job
    # succeeded; a partner reading `error` on a succeeded job would take it for a problem.
    job.last_error_type = job.last_error_message = job.last_error_request_id = ""
    job.last_error_status = None
    _end(job, S.SUCCEEDED, "result", "usage", "model_used", "cost_micros", "upstream_request_id",
         "upstream_message_id", *ERROR_FIELDS)  # fmt: skip


def fail(*, job: Job, failure: Failure) -> None:
    """A failure no retry would fix (a 400, a budget refusal, a model the map no longer serves)."""
    check(job=job, action="fail")
    _set_error(job, failure)
    _end(job, S.FAILED, *ERROR_FIELDS)


def bury(*, job: Job, failure: Failure) -> None:
    """Attempts used up: the job joins the dead-letter queue."""
    check(job=job, action="bury")
    _set_error(job, failure)
    _end(job, S.DEAD, *ERROR_FIELDS)


def cancel(*, job: Job, failure: Failure | None = None) -> None:
    """`failure` says why when the partner did not ask for it (e.g. its key was revoked)."""
    check(job=job, action="cancel")
    if failure is None:
        _end(job, S.CANCELED)
        return
    _set_error(job, failure)
    _end(job, S.CANCELED, *ERROR_FIELDS)


def discard(*, job: Job) -> None:
    """Drop a finished job for good (the ledger keeps any bill)."""
    check(job=job, action="discard")
    job.delete()


# --- helpers


def _set_error(job: Job, failure: Failure) -> None:
    job.last_error_type, job.last_error_message = failure.error_type[:100], failure.message
    job.last_error_status, job.last_error_request_id = failure.status, failure.request_id[:200]


def _requeue_in(job: Job, delay: float) -> None:
    job.status, job.lease_expires_at, job.reservation_id = S.QUEUED, None, None
    job.next_attempt_at = job.enqueued_at = timezone.now() + dt.timedelta(seconds=delay)
    job.save(update_fields=[*ERROR_FIELDS, "attempts", "status", "lease_expires_at", "reservation_id",
                            "next_attempt_at", "enqueued_at", "updated_at"])  # fmt: skip
    transaction.on_commit(partial(publish.enqueue, job_id=job.pk, queue=job.queue, countdown=delay))


def _end(job: Job, status: str, *fields: str) -> None:
    job.status, job.finished_at = status, timezone.now()
    job.lease_expires_at = job.next_attempt_at = job.reservation_id = None
    owed = webhooks.owe(job=job) if job.webhook_url else []  # recorded on the row, published after commit
    job.save(update_fields=[*fields, *owed, "status", "finished_at", "lease_expires_at", "next_attempt_at",
                            "reservation_id", "updated_at"])  # fmt: skip
    for hook in terminal_hooks():
        hook(job=job)
    transaction.on_commit(partial(metrics.job_ended, mode=job.mode, queue=job.queue, outcome=status))


def terminal_hooks() -> list[Callable[..., None]]:
    return _load_hooks(tuple(settings.JOBS_TERMINAL_HOOKS))


@functools.cache
def _load_hooks(paths: tuple[str, ...]) -> list[Callable[..., None]]:
    # Once per process (per distinct setting, so a test's override is honoured too).
    return [import_string(path) for path in paths]
