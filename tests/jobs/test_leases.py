"""Leases that prove life: a live worker's heartbeat keeps a call longer than the lease from being
run twice; a killed worker's jobs stop being renewed, and the sweeper runs them again within a
minute of the kill (production lease and sweep interval), each billed once; so do a retry and a
webhook delivery the killed worker held."""

from __future__ import annotations

import time

import pytest
import redis
from django.utils import timezone

from billing.models import Budget, LedgerEntry, Reservation
from claudeapp.jobs import services, sweeper, upstream
from claudeapp.jobs.models import Job, WebhookDelivery
from tests.jobs.conftest import Worker, wait_for, webhook_owed

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


def test_everything_a_killed_worker_owed_comes_back_within_a_minute_each_billed_or_posted_once(
    job_workers, seeded_models, principal, payload_factory, settings, slow_receiver, capsys
):
    # Production timings: a 30 s lease renewed every 10 s, beat sweeping every 10 s, a due message
    # nobody picked up published again after 40 s. Three kinds of work die with one kill -9, each
    # brought back by its own path, and each must come back within a minute:
    # - 8 calls in flight (of 30 jobs): their leases stop being renewed, the sweeper takes them back;
    # - a retry's countdown message the worker took at once and holds unacked until due: Redis keeps
    #   it invisible for its visibility timeout (over an hour), so only the job row knows it is owed;
    # - a webhook POST in flight: its delivery's lease runs out, the sweeper publishes it again.
    # One kill for the three (they used to be three tests of ~40 s each, the suite's slowest): the
    # waits are the production lease and stale age, so they run side by side instead of in a row.
    job_workers.stop()
    timings = {"JOBS_LEASE_SECONDS": 30, "JOBS_QUEUED_STALE_SECONDS": 40, "JOBS_SWEEP_INTERVAL_SECONDS": 10.0,
               "JOBS_RETRY_BASE_SECONDS": 20.0}  # fmt: skip  # a retry due 10-20 s on: time to hold it, then kill
    # 9 threads: the held POST takes one, so 8 calls are in flight as well.
    env = {**job_workers.env, **{name: str(value) for name, value in timings.items()}, "CELERY_WORKER_CONCURRENCY": "9"}
    for name, value in timings.items():
        setattr(settings, name, value)
    settings.JOBS_WEBHOOK_ALLOW_PRIVATE = True
    budget = Budget.objects.create(scope="user", scope_id=principal.user_id, limit_micros=10**9)
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    slow_receiver.hold["seconds"] = 120.0  # the first POST is still open when its worker dies
    first = Worker(env, job_workers.log_dir)
    second = None
    recovered = 0
    try:
        hooked = services.create(principal=principal, payload=payload_factory(), webhook_url=slow_receiver.url)
        assert slow_receiver.first_arrived.wait(30), "the delivery never arrived"
        retried = services.create(principal=principal, payload=payload_factory("Busy? [[fault:529:1]]"))
        wait_for(lambda: Job.objects.filter(pk=retried.id, status="queued", attempts=1).exists(), what="a retry")
        wait_for(lambda: any(str(retried.id).encode() in held for held in broker.hvals("unacked")),
                 what="the worker to hold the retry's countdown message")  # fmt: skip
        jobs = [services.create(principal=principal, payload=payload_factory("[[latency:2500]]")) for _ in range(30)]
        ids = [job.id for job in jobs]
        wait_for(lambda: Job.objects.filter(pk__in=ids, status="running").count() >= 8, what="8 calls in flight")

        first.kill()  # SIGKILL: its 8 calls die with it, the POST is cut, the retry's message is taken along
        killed_at = timezone.now()
        due = Job.objects.get(pk=retried.id).next_attempt_at
        assert due > killed_at and len(slow_receiver.received) == 1  # all three were still owed at the kill
        second = Worker(env, job_workers.log_dir)
        last_sweep = 0.0
        while not (
            Job.objects.filter(pk__in=ids, status="succeeded").count() == len(ids)
            and Job.objects.filter(pk=retried.id, status__in=Job.TERMINAL).exists()
            and len(slow_receiver.received) >= 2
        ):
            if Job.objects.filter(pk__in=ids, status="succeeded").count() < len(ids):
                assert (timezone.now() - killed_at).total_seconds() < 60, _statuses(ids)
            if not Job.objects.filter(pk=retried.id, status__in=Job.TERMINAL).exists():
                assert (timezone.now() - due).total_seconds() < 60, _statuses([retried.id])
            if len(slow_receiver.received) < 2:
                assert (timezone.now() - killed_at).total_seconds() < 60, webhook_owed(hooked.id)
            if time.monotonic() - last_sweep >= settings.JOBS_SWEEP_INTERVAL_SECONDS:  # play beat
                recovered += sweeper.sweep().recovered
                last_sweep = time.monotonic()
            time.sleep(0.2)
        wait_for(lambda: WebhookDelivery.objects.filter(job_id=hooked.id).exists(), what="the delivery recorded")
    finally:
        for process in (first, second):
            if process is not None:
                process.stop()

    last = max(Job.objects.filter(pk__in=ids).values_list("finished_at", flat=True))
    with capsys.disabled():
        print(f"\nkilled worker: last of 30 jobs finished {(last - killed_at).total_seconds():.1f} s after the kill")
    # The running jobs: each billed once, the killed calls ran again (taken back by their lease), nothing a
    # third time.
    assert _billed_once_each(jobs)
    attempts = sorted(Job.objects.filter(pk__in=ids).values_list("attempts", flat=True))
    assert attempts.count(2) >= 8 and set(attempts) <= {1, 2} and recovered >= 8
    # The held retry ran once more, on the other worker.
    retried.refresh_from_db()
    assert retried.status == "succeeded" and retried.attempts == 2 and _billed_once_each([retried])
    # The cut POST is made again (it never got an answer, so it is not counted as a failure).
    assert [r["attempt"] for r in slow_receiver.received] == ["1", "1"]
    assert list(WebhookDelivery.objects.filter(job_id=hooked.id).values_list("attempt", "succeeded")) == [(1, True)]
    assert webhook_owed(hooked.id)["webhook_due_at"] is None
    # The dead attempts' budget holds went back when the sweeper took their jobs (not minutes later).
    assert not Reservation.objects.exists() and Budget.objects.get(pk=budget.pk).reserved_micros == 0


def _statuses(ids: list) -> dict[str, int]:
    rows = Job.objects.filter(pk__in=ids).values_list("status", flat=True)
    return {status: list(rows).count(status) for status in set(rows)}
