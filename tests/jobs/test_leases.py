"""Leases that prove life: a live worker's heartbeat keeps a call longer than the lease from being
run twice; a killed worker's jobs stop being renewed, and the sweeper runs them again within a
minute of the kill (production lease and sweep interval), each billed once."""

from __future__ import annotations

import time

import pytest
import redis
from django.utils import timezone

from billing.models import Budget, LedgerEntry, Reservation
from claudeapp.jobs import services, sweeper, upstream
from claudeapp.jobs.models import Job
from tests.jobs.conftest import Worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _generations_since(emulator, since: float) -> int:
    return sum(1 for r in emulator.stats()["recent"] if r["path"] == "/v1/messages" and r["time"] >= since)


def _billed_once_each(jobs: list[Job]) -> bool:
    keys = [upstream.ledger_event_key(job.id) for job in jobs]
    return LedgerEntry.objects.filter(event_key__in=keys).count() == len(jobs)


def test_a_call_longer_than_the_lease_on_a_live_worker_is_kept_by_its_heartbeat(
    worker, principal, payload_factory, emulator
):
    # The lease is 4 s (JOB_TIMINGS) and the call takes 10 s: without a heartbeat every sweep after
    # the fourth second would hand the job to another delivery and upstream would be called twice.
    since = time.time()
    job = services.create(principal=principal, payload=payload_factory("Long answer [[latency:10000]]"))
    wait_for(lambda: Job.objects.filter(pk=job.id, status="running").exists(), what="job running")

    leases, recovered = set(), 0
    deadline = time.monotonic() + 60
    while not Job.objects.filter(pk=job.id, status__in=Job.TERMINAL).exists():
        assert time.monotonic() < deadline, Job.objects.filter(pk=job.id).values_list("status", flat=True)[0]
        recovered += sweeper.sweep().recovered  # beat, played far more often than in production
        leases.update(Job.objects.filter(pk=job.id, status="running").values_list("lease_expires_at", flat=True))
        time.sleep(0.5)

    job.refresh_from_db()
    assert recovered == 0 and job.status == "succeeded" and job.attempts == 1 and job.last_error_type == ""
    assert len(leases) >= 3  # renewed while the call was in flight, not set once at the claim
    assert _generations_since(emulator, since) == 1 and _billed_once_each([job])


def test_every_job_of_a_killed_worker_succeeds_within_a_minute_billed_once(
    job_workers, seeded_models, principal, payload_factory, settings, capsys
):
    # Production timings: a 30 s lease renewed every 10 s, beat sweeping every 10 s, queued jobs
    # republished only after 5 minutes (so only the lease can bring the killed worker's jobs back).
    job_workers.stop()
    env = {**job_workers.env, "JOBS_LEASE_SECONDS": "30", "JOBS_QUEUED_STALE_SECONDS": "300"}
    settings.JOBS_LEASE_SECONDS, settings.JOBS_QUEUED_STALE_SECONDS = 30, 300
    budget = Budget.objects.create(scope="user", scope_id=principal.user_id, limit_micros=10**9)
    first = Worker(env, job_workers.log_dir)
    second = None
    try:
        jobs = [services.create(principal=principal, payload=payload_factory("[[latency:2500]]")) for _ in range(30)]
        ids = [job.id for job in jobs]
        wait_for(lambda: Job.objects.filter(pk__in=ids, status="running").count() >= 8, what="8 calls in flight")

        first.kill()  # SIGKILL: its 8 calls die with it, their leases stop being renewed
        killed_at = timezone.now()
        second = Worker(env, job_workers.log_dir)
        last_sweep = 0.0
        while Job.objects.filter(pk__in=ids, status="succeeded").count() < len(ids):
            assert (timezone.now() - killed_at).total_seconds() < 60, _statuses(ids)
            if time.monotonic() - last_sweep >= settings.JOBS_SWEEP_INTERVAL_SECONDS:  # play beat
                sweeper.sweep()
                last_sweep = time.monotonic()
            time.sleep(0.2)
    finally:
        for process in (first, second):
            if process is not None:
                process.stop()

    last = max(Job.objects.filter(pk__in=ids).values_list("finished_at", flat=True))
    with capsys.disabled():
        print(f"\nkilled worker: last of 30 jobs finished {(last - killed_at).total_seconds():.1f} s after the kill")
    assert _billed_once_each(jobs)
    attempts = sorted(Job.objects.filter(pk__in=ids).values_list("attempts", flat=True))
    assert attempts.count(2) >= 8 and set(attempts) <= {1, 2}  # the killed calls ran again, nothing a third time
    # The dead attempts' budget holds went back when the sweeper took their jobs (not minutes later).
    assert not Reservation.objects.exists() and Budget.objects.get(pk=budget.pk).reserved_micros == 0


def _statuses(ids: list) -> dict[str, int]:
    rows = Job.objects.filter(pk__in=ids).values_list("status", flat=True)
    return {status: list(rows).count(status) for status in set(rows)}


def test_a_retry_a_killed_worker_held_runs_within_a_minute_of_its_due_time(
    job_workers, seeded_models, principal, payload_factory, settings
):
    # The first call gets a 529; its retry is a countdown message the worker takes at once and holds
    # unacked until due. Killed, the worker takes it along: Redis keeps it invisible for its visibility
    # timeout (over an hour), so only the job row knows the retry is owed. Production timings.
    job_workers.stop()
    timings = {"JOBS_LEASE_SECONDS": 30, "JOBS_QUEUED_STALE_SECONDS": 40, "JOBS_RETRY_BASE_SECONDS": 10.0}
    env = {**job_workers.env, **{name: str(value) for name, value in timings.items()}}
    for name, value in timings.items():
        setattr(settings, name, value)
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    first = Worker(env, job_workers.log_dir)
    second = None
    try:
        job = services.create(principal=principal, payload=payload_factory("Busy? [[fault:529:1]]"))
        wait_for(lambda: Job.objects.filter(pk=job.id, status="queued", attempts=1).exists(), what="a retry")
        wait_for(lambda: any(str(job.id).encode() in held for held in broker.hvals("unacked")),
                 what="the worker to hold the retry's countdown message")  # fmt: skip
        first.kill()
        due = Job.objects.get(pk=job.id).next_attempt_at
        second = Worker(env, job_workers.log_dir)
        last_sweep = 0.0
        while not Job.objects.filter(pk=job.id, status__in=Job.TERMINAL).exists():
            assert (timezone.now() - due).total_seconds() < 60, _statuses([job.id])
            if time.monotonic() - last_sweep >= settings.JOBS_SWEEP_INTERVAL_SECONDS:  # play beat
                sweeper.sweep()
                last_sweep = time.monotonic()
            time.sleep(0.2)
    finally:
        for process in (first, second):
            if process is not None:
                process.stop()

    job.refresh_from_db()
    assert job.status == "succeeded" and job.attempts == 2 and _billed_once_each([job])
