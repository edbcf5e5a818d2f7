"""Webhook deliveries are as durable as the jobs they report: the job row says which attempt is owed
and when, a delivery in flight holds a lease its worker's heartbeat renews, and the sweeper publishes
again one whose worker died mid-POST (lease run out) or whose message was lost (due, never picked up)."""

from __future__ import annotations

import time

import pytest
import redis

from claudeapp.jobs import services, sweeper, webhooks
from claudeapp.jobs.models import Job, WebhookDelivery
from tests.jobs.conftest import wait_for, webhook_owed

pytestmark = pytest.mark.django_db(transaction=True)

# A delivery cut by a killed worker, at production timings, is posted again within a minute:
# tests/jobs/test_leases.py (one kill, with running jobs and a held retry, all three owed by the dead worker).


def test_a_delivery_longer_than_its_lease_is_kept_by_the_heartbeat_and_posted_once(
    worker, settings, principal, payload_factory, slow_receiver
):
    # The lease is 4 s (JOB_TIMINGS) and the receiver takes 7 s to answer (the POST timeout is 10 s):
    # without a heartbeat every sweep after the fourth second would send the delivery again.
    settings.JOBS_WEBHOOK_ALLOW_PRIVATE = True
    slow_receiver.hold["seconds"] = 7.0
    job = services.create(principal=principal, payload=payload_factory(), webhook_url=slow_receiver.url)
    assert slow_receiver.first_arrived.wait(30), "the delivery never arrived"

    leases, republished = set(), 0
    deadline = time.monotonic() + 30
    while not WebhookDelivery.objects.filter(job_id=job.id).exists():
        assert time.monotonic() < deadline, webhook_owed(job.id)
        republished += sweeper.sweep().webhooks  # beat, played far more often than in production
        leases.add(webhook_owed(job.id)["webhook_lease_expires_at"])
        time.sleep(0.5)

    assert republished == 0 and len(leases - {None}) >= 3  # renewed while the POST was in flight
    assert [r["attempt"] for r in slow_receiver.received] == ["1"]
    assert webhook_owed(job.id)["webhook_due_at"] is None  # delivered: nothing owed any more


def test_an_owed_delivery_whose_message_was_lost_is_published_again(
    no_worker, job_workers, settings, principal, payload_factory, slow_receiver
):
    settings.JOBS_WEBHOOK_ALLOW_PRIVATE = True
    settings.JOBS_QUEUED_STALE_SECONDS = 1
    job = services.create(principal=principal, payload=payload_factory(), webhook_url=slow_receiver.url)
    services.cancel(job_id=job.id)  # its end owes delivery 1, published with no worker to take it
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()  # our own db only: the message is gone
    assert webhook_owed(job.id)["webhook_attempt"] == 1 and webhook_owed(job.id)["webhook_due_at"] is not None

    job_workers.ensure()
    wait_for(lambda: sweeper.sweep().webhooks == 1, timeout=10, what="the sweeper to publish it again")
    wait_for(lambda: WebhookDelivery.objects.filter(job_id=job.id, succeeded=True).exists(), what="delivered")

    assert [r["attempt"] for r in slow_receiver.received] == ["1"]
    assert sweeper.sweep().webhooks == 0 and webhook_owed(job.id)["webhook_due_at"] is None


def test_a_second_copy_of_a_message_or_one_for_an_attempt_not_owed_posts_nothing(
    no_worker, settings, principal, payload_factory, slow_receiver
):
    settings.JOBS_WEBHOOK_ALLOW_PRIVATE = True
    job = services.create(principal=principal, payload=payload_factory(), webhook_url=slow_receiver.url)
    services.cancel(job_id=job.id)  # its end owes delivery 1 (no worker here: the test delivers)

    webhooks.deliver(job_id=job.id, attempt=1)
    webhooks.deliver(job_id=job.id, attempt=1)  # the broker's second copy (redelivery, sweeper)
    webhooks.deliver(job_id=job.id, attempt=2)  # an attempt nobody owes

    assert [r["attempt"] for r in slow_receiver.received] == ["1"]
    assert WebhookDelivery.objects.filter(job_id=job.id).count() == 1


def test_a_message_published_before_the_row_kept_what_it_owes_is_delivered_once(
    no_worker, settings, principal, payload_factory, slow_receiver
):
    settings.JOBS_WEBHOOK_ALLOW_PRIVATE = True
    job = services.create(principal=principal, payload=payload_factory(), webhook_url=slow_receiver.url)
    services.cancel(job_id=job.id)
    Job.objects.filter(pk=job.id).update(webhook_attempt=0, webhook_due_at=None)  # as rows were before

    webhooks.deliver(job_id=job.id, attempt=3)  # a retry in the broker at the upgrade
    webhooks.deliver(job_id=job.id, attempt=3)

    assert [r["attempt"] for r in slow_receiver.received] == ["3"]
    assert webhook_owed(job.id)["webhook_due_at"] is None
