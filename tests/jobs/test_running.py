"""Jobs run by a real Celery worker against the emulator: success, rollback, retries, failure, dead."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from billing.models import LedgerEntry
from claudeapp.jobs import runner, services, upstream
from claudeapp.jobs.models import Job
from tests.jobs.conftest import wait_for_status

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_queued_job_runs_once_and_succeeds_with_usage_and_one_ledger_entry(worker, principal, payload_factory):
    job = services.create(principal=principal, payload=payload_factory())

    wait_for_status([job.id], {"succeeded"})

    job.refresh_from_db()
    assert job.attempts == 1 and job.model_used == "claude-haiku-5-5"
    assert job.usage["input_tokens"] > 0 and job.usage["output_tokens"] > 0
    assert job.result["content"][0]["type"] == "text" and job.result["id"] == job.upstream_message_id
    entry = LedgerEntry.objects.get(event_key=upstream.ledger_event_key(job.id))
    assert entry.cost_micros == job.cost_micros > 0 and entry.subject == str(job.id)


def test_a_job_created_in_a_rolled_back_transaction_is_never_published(worker, principal, payload_factory):
    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        doomed = services.create(principal=principal, payload=payload_factory())
        raise Rollback
    witness = services.create(principal=principal, payload=payload_factory())

    # The worker consumes in order; once the later job is done, the earlier publish would have run.
    wait_for_status([witness.id], {"succeeded"})
    assert not Job.objects.filter(pk=doomed.id).exists()
    assert not LedgerEntry.objects.filter(event_key=upstream.ledger_event_key(doomed.id)).exists()


def test_a_529_storm_is_retried_by_the_job_row_until_it_succeeds(worker, principal, payload_factory):
    job = services.create(principal=principal, payload=payload_factory("Busy? [[fault:529:2]]"))

    wait_for_status([job.id], {"succeeded"})

    job.refresh_from_db()
    assert job.attempts == 3  # the gateway tried once per attempt; the job row owned the two retries
    # The 529s were the job's `error` while it waited to retry; a succeeded job shows none (issue 14).
    assert (job.last_error_status, job.last_error_type, job.last_error_message) == (None, "", "")
    assert LedgerEntry.objects.filter(subject=str(job.id)).count() == 1


def test_a_permanent_400_fails_at_once_and_keeps_the_error(worker, principal, payload_factory):
    job = services.create(principal=principal, payload=payload_factory("Bad request [[fault:400]]"))

    wait_for_status([job.id], {"failed"})

    job.refresh_from_db()
    assert job.attempts == 1 and job.next_attempt_at is None
    assert job.last_error_status == 400 and job.last_error_type == "invalid_request_error"
    assert job.last_error_request_id
    assert not LedgerEntry.objects.filter(subject=str(job.id)).exists()


@pytest.mark.urls("tests.jobs.urls")
def test_a_job_out_of_attempts_is_dead_and_the_admin_requeue_runs_it_to_success(
    worker, principal, payload_factory, admin_client
):
    job = services.create(principal=principal, payload=payload_factory("Overloaded [[fault:529:3]]"))
    wait_for_status([job.id], {"dead"})
    job.refresh_from_db()
    assert job.attempts == job.max_attempts == 3 and job.last_error_status == 529

    dlq = admin_client.get("/admin/jobs/deadjob/")
    assert dlq.status_code == 200 and str(job.id) in dlq.content.decode()
    response = admin_client.post(
        "/admin/jobs/deadjob/", {"action": "requeue_jobs", "_selected_action": [str(job.id)]}, follow=True
    )
    assert response.status_code == 200

    wait_for_status([job.id], {"succeeded"})
    job.refresh_from_db()
    assert job.attempts == 1
    assert LedgerEntry.objects.filter(subject=str(job.id)).count() == 1


def test_a_canceled_job_is_not_run_even_when_its_message_arrives(worker, principal, payload_factory):
    slow = [services.create(principal=principal, payload=payload_factory("[[latency:800]]")) for _ in range(8)]
    job = services.create(principal=principal, payload=payload_factory())  # waits behind the slow ones
    services.cancel(job_id=job.id)
    wait_for_status([j.id for j in slow], {"succeeded"})
    time.sleep(0.5)

    job.refresh_from_db()
    assert job.status == "canceled" and job.attempts == 0


def test_a_claim_takes_a_due_queued_job_once_and_leaves_the_rest_to_the_locked_path(
    no_worker, principal, payload_factory, settings
):
    due, later, taken_over = (services.create(principal=principal, payload=payload_factory()) for _ in range(3))
    Job.objects.filter(pk=later.pk).update(next_attempt_at=timezone.now() + timedelta(minutes=5))

    claimed = runner.claim(job_id=due.pk)  # the one-statement path: the row as it is now, payload decoded
    assert (claimed.status, claimed.attempts, claimed.payload) == ("running", 1, due.payload)
    assert claimed.lease_expires_at > timezone.now() and claimed.started_at is not None
    assert runner.claim(job_id=due.pk) is None  # a second delivery: running with a live lease
    assert runner.claim(job_id=later.pk) is None and Job.objects.get(pk=later.pk).status == "queued"

    # A running job whose lease ran out is not the fast path's: the locked path takes it over.
    assert runner.claim(job_id=taken_over.pk).attempts == 1
    Job.objects.filter(pk=taken_over.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert runner.claim(job_id=taken_over.pk).attempts == 2
    # And a job out of attempts is buried there, as before.
    Job.objects.filter(pk=taken_over.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1), attempts=settings.JOBS_MAX_ATTEMPTS
    )
    assert runner.claim(job_id=taken_over.pk) is None and Job.objects.get(pk=taken_over.pk).status == "dead"
    Job.objects.filter(pk=due.pk).update(status="canceled")  # no worker runs its call: end it for the teardown
