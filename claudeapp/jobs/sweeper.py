"""Beat-driven repair: the job table is the truth, the broker only a hint.

- queued too long without being picked up (Redis flushed, publish lost, ETA message lost
  with its worker): publish again;
- running past its lease (its worker stopped renewing it: died mid-call, see heartbeat.py): back
  to queued with its budget hold released, or dead when the attempts are used up, so a job that
  kills its worker cannot loop forever;
- a webhook delivery owed (Job.webhook_*) whose worker died mid-POST (its heartbeat-renewed lease ran
  out) or whose message was lost: publish the owed attempt again;
- finished long ago: purged after JOBS_RESULT_RETENTION_DAYS.

A second publish of a live job is harmless: the claim lets only one delivery run it.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from claudeapp.jobs import publish, runner, transitions
from claudeapp.jobs.models import Job

logger = logging.getLogger(__name__)

BATCH = 500


@dataclass(frozen=True)
class SweepReport:
    republished: int
    recovered: int
    buried: int
    webhooks: int = 0


def sweep() -> SweepReport:
    republished = republish_stale_queued()
    recovered, buried = recover_expired_leases()
    hooks = republish_owed_webhooks()
    if republished or recovered or buried or hooks:
        logger.info(
            "jobs sweep: republished=%s recovered=%s buried=%s webhooks=%s", republished, recovered, buried, hooks
        )
    return SweepReport(republished=republished, recovered=recovered, buried=buried, webhooks=hooks)


def republish_stale_queued() -> int:
    cutoff = timezone.now() - dt.timedelta(seconds=settings.JOBS_QUEUED_STALE_SECONDS)
    with transaction.atomic():
        stale = list(
            Job.objects.select_for_update(skip_locked=True)
            .filter(status=Job.Status.QUEUED, mode=Job.Mode.QUEUE, enqueued_at__lt=cutoff)
            .order_by("pk")
            .only("pk", "queue")[:BATCH]
        )
        Job.objects.filter(pk__in=[job.pk for job in stale]).update(enqueued_at=timezone.now(), next_attempt_at=None)
        for job in stale:
            transaction.on_commit(partial(publish.enqueue, job_id=job.pk, queue=job.queue))
    return len(stale)


def recover_expired_leases() -> tuple[int, int]:
    now = timezone.now()
    recovered = buried = 0
    with transaction.atomic():
        expired = Job.objects.select_for_update(skip_locked=True).filter(
            status=Job.Status.RUNNING, mode=Job.Mode.QUEUE, lease_expires_at__lt=now
        )  # batch jobs past their lease are batches.recover_stale()'s
        for job in expired.order_by("pk")[:BATCH]:
            if job.attempts >= job.max_attempts:
                runner.bury(job=job, error_type="worker_lost", message="lease expired on the last attempt")
                buried += 1
                continue
            runner.drop_hold(job=job)  # the dead attempt's budget hold, before the next attempt takes its own
            transitions.recover_lease(job=job, now=now)
            recovered += 1
    return recovered, buried


def republish_owed_webhooks() -> int:
    """Webhook deliveries whose worker died mid-POST (lease run out) or whose message was lost (due
    and not picked up for JOBS_QUEUED_STALE_SECONDS): publish the owed attempt again."""
    now = timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.JOBS_QUEUED_STALE_SECONDS)
    with transaction.atomic():
        owed = list(
            Job.objects.select_for_update(skip_locked=True)
            .filter(webhook_due_at__isnull=False)
            .filter(
                Q(webhook_lease_expires_at__lt=now)
                | Q(webhook_lease_expires_at__isnull=True, webhook_due_at__lt=cutoff)
            )
            .order_by("pk")
            .only("pk", "webhook_attempt")[:BATCH]
        )
        Job.objects.filter(pk__in=[job.pk for job in owed]).update(webhook_due_at=now, webhook_lease_expires_at=None)
        for job in owed:
            transaction.on_commit(partial(publish.webhook, job_id=job.pk, attempt=job.webhook_attempt))
    return len(owed)


def purge_finished() -> int:
    cutoff = timezone.now() - dt.timedelta(days=settings.JOBS_RESULT_RETENTION_DAYS)
    total = 0
    while True:
        ids = list(
            Job.objects.filter(status__in=Job.TERMINAL, finished_at__lt=cutoff).values_list("pk", flat=True)[:BATCH]
        )
        if not ids:
            return total
        Job.objects.filter(pk__in=ids).delete()
        total += len(ids)
