"""The guarantees under failure: a killed worker or a flushed broker loses no job and bills none twice."""

from __future__ import annotations

import time

import pytest
import redis
from django.conf import settings

from billing.models import LedgerEntry
from claudeapp.jobs import services, sweeper, upstream
from claudeapp.jobs.models import Job
from tests.jobs.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _sweep_until_done(job_ids: list, *, timeout: float = 45.0) -> int:
    """Play the beat scheduler: sweep until every job succeeded. Returns jobs the sweeps touched."""
    touched = 0
    deadline = time.monotonic() + timeout
    while Job.objects.filter(pk__in=job_ids, status="succeeded").count() < len(job_ids):
        assert time.monotonic() < deadline, list(Job.objects.filter(pk__in=job_ids).values_list("status", flat=True))
        report = sweeper.sweep()
        touched += report.republished + report.recovered
        time.sleep(0.5)
    return touched


def _billed_once_each(jobs: list[Job]) -> bool:
    keys = [upstream.ledger_event_key(job.id) for job in jobs]
    return LedgerEntry.objects.filter(event_key__in=keys).count() == len(jobs)


def test_jobs_in_flight_on_a_killed_worker_all_succeed_once_on_another(job_workers, worker, principal, payload_factory):
    jobs = [services.create(principal=principal, payload=payload_factory("Slow [[latency:2500]]")) for _ in range(6)]
    ids = [job.id for job in jobs]
    wait_for(lambda: Job.objects.filter(pk__in=ids, status="running").count() == 6, what="all six in flight")

    worker.kill()  # SIGKILL: no ack, no cleanup, the calls die with it
    job_workers.ensure()  # another worker comes up
    assert _sweep_until_done(ids) >= 6  # each lease expired and the sweeper re-published it

    assert _billed_once_each(jobs)
    assert set(Job.objects.filter(pk__in=ids).values_list("attempts", flat=True)) == {2}


def test_a_redis_flush_mid_run_loses_no_job(worker, principal, payload_factory):
    # 8 worker threads take 8 jobs; the other 6 wait as messages in Redis and are wiped.
    jobs = [services.create(principal=principal, payload=payload_factory("[[latency:1200]]")) for _ in range(14)]
    ids = [job.id for job in jobs]
    wait_for(lambda: Job.objects.filter(pk__in=ids, status="running").count() >= 6, what="jobs in flight")

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()  # our own db only, never FLUSHALL

    assert _sweep_until_done(ids) >= 1  # the wiped ones were republished from the table
    assert _billed_once_each(jobs)
    assert Job.objects.filter(pk__in=ids, attempts=1).count() == len(ids)


def test_a_second_delivery_of_a_running_job_does_not_call_upstream_again(worker, principal, payload_factory):
    job = services.create(principal=principal, payload=payload_factory("[[latency:1500]]"))
    wait_for(lambda: Job.objects.filter(pk=job.id, status="running").exists(), what="job running")

    services.enqueue(job_id=job.id, queue=job.queue)  # what Redis does after a visibility timeout

    wait_for(lambda: Job.objects.filter(pk=job.id, status="succeeded").exists(), what="job done")
    time.sleep(0.5)
    job.refresh_from_db()
    assert job.attempts == 1 and _billed_once_each([job])
