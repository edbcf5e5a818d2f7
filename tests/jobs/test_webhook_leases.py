"""Webhook deliveries are as durable as the jobs they report: the job row says which attempt is owed
and when, a delivery in flight holds a lease its worker's heartbeat renews, and the sweeper publishes
again one whose worker died mid-POST (lease run out) or whose message was lost (due, never picked up)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
import redis

from claudeapp.jobs import services, sweeper, webhooks
from claudeapp.jobs.models import Job, WebhookDelivery
from tests.jobs.conftest import Worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

# The settings' defaults: a 30 s lease renewed every 10 s, beat sweeping every 10 s, a due message
# that nobody picked up published again after 40 s.
PRODUCTION = {"JOBS_LEASE_SECONDS": 30, "JOBS_QUEUED_STALE_SECONDS": 40, "JOBS_SWEEP_INTERVAL_SECONDS": 10.0}


@pytest.fixture
def receiver():
    """Records each POST and answers 204; the first one is held open for `hold` seconds first."""
    received: list[dict] = []
    first_arrived, release = threading.Event(), threading.Event()
    hold = {"seconds": 0.0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"attempt": self.headers.get("X-Gateway-Delivery-Attempt")})
            if len(received) == 1:
                first_arrived.set()
                release.wait(hold["seconds"])
            try:
                self.send_response(204)
                self.end_headers()
            except OSError:
                pass  # the sender died while this POST was held

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{server.server_port}/hook", received=received,
                          first_arrived=first_arrived, hold=hold)  # fmt: skip
    release.set()
    server.shutdown()


def _owed(job_id) -> dict:
    return Job.objects.filter(pk=job_id).values("webhook_attempt", "webhook_due_at", "webhook_lease_expires_at")[0]


def test_a_delivery_longer_than_its_lease_is_kept_by_the_heartbeat_and_posted_once(
    worker, settings, principal, payload_factory, receiver
):
    # The lease is 4 s (JOB_TIMINGS) and the receiver takes 7 s to answer (the POST timeout is 10 s):
    # without a heartbeat every sweep after the fourth second would send the delivery again.
    settings.JOBS_WEBHOOK_ALLOW_PRIVATE = True
    receiver.hold["seconds"] = 7.0
    job = services.create(principal=principal, payload=payload_factory(), webhook_url=receiver.url)
    assert receiver.first_arrived.wait(30), "the delivery never arrived"

    leases, republished = set(), 0
    deadline = time.monotonic() + 30
    while not WebhookDelivery.objects.filter(job_id=job.id).exists():
        assert time.monotonic() < deadline, _owed(job.id)
        republished += sweeper.sweep().webhooks  # beat, played far more often than in production
        leases.add(_owed(job.id)["webhook_lease_expires_at"])
        time.sleep(0.5)

    assert republished == 0 and len(leases - {None}) >= 3  # renewed while the POST was in flight
    assert [r["attempt"] for r in receiver.received] == ["1"]
    assert _owed(job.id)["webhook_due_at"] is None  # delivered: nothing owed any more


def test_a_delivery_cut_by_a_killed_worker_is_posted_again_within_a_minute(
    job_workers, seeded_models, principal, payload_factory, settings, receiver
):
    job_workers.stop()
    env = {**job_workers.env, **{name: str(value) for name, value in PRODUCTION.items()}}
    for name, value in PRODUCTION.items():
        setattr(settings, name, value)
    settings.JOBS_WEBHOOK_ALLOW_PRIVATE = True
    receiver.hold["seconds"] = 120.0  # the first POST is still open when its worker dies
    first = Worker(env, job_workers.log_dir)
    second = None
    try:
        job = services.create(principal=principal, payload=payload_factory(), webhook_url=receiver.url)
        assert receiver.first_arrived.wait(30), "the delivery never arrived"
        first.kill()  # SIGKILL mid-POST: its message stays unacked in Redis (invisible for over an hour)
        killed_at = time.monotonic()
        second = Worker(env, job_workers.log_dir)
        last_sweep = 0.0
        while len(receiver.received) < 2:
            assert time.monotonic() - killed_at < 60, _owed(job.id)
            if time.monotonic() - last_sweep >= settings.JOBS_SWEEP_INTERVAL_SECONDS:  # play beat
                sweeper.sweep()
                last_sweep = time.monotonic()
            time.sleep(0.2)
        wait_for(lambda: WebhookDelivery.objects.filter(job_id=job.id).exists(), what="the delivery recorded")
    finally:
        for process in (first, second):
            if process is not None:
                process.stop()

    # The cut attempt is made again (it never got an answer, so it is not counted as a failure).
    assert [r["attempt"] for r in receiver.received] == ["1", "1"]
    assert list(WebhookDelivery.objects.filter(job_id=job.id).values_list("attempt", "succeeded")) == [(1, True)]
    assert _owed(job.id)["webhook_due_at"] is None


def test_an_owed_delivery_whose_message_was_lost_is_published_again(
    no_worker, job_workers, settings, principal, payload_factory, receiver
):
    settings.JOBS_WEBHOOK_ALLOW_PRIVATE = True
    settings.JOBS_QUEUED_STALE_SECONDS = 1
    job = services.create(principal=principal, payload=payload_factory(), webhook_url=receiver.url)
    services.cancel(job_id=job.id)  # its end owes delivery 1, published with no worker to take it
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()  # our own db only: the message is gone
    assert _owed(job.id)["webhook_attempt"] == 1 and _owed(job.id)["webhook_due_at"] is not None

    job_workers.ensure()
    wait_for(lambda: sweeper.sweep().webhooks == 1, timeout=10, what="the sweeper to publish it again")
    wait_for(lambda: WebhookDelivery.objects.filter(job_id=job.id, succeeded=True).exists(), what="delivered")

    assert [r["attempt"] for r in receiver.received] == ["1"]
    assert sweeper.sweep().webhooks == 0 and _owed(job.id)["webhook_due_at"] is None


def test_a_second_copy_of_a_message_or_one_for_an_attempt_not_owed_posts_nothing(
    no_worker, settings, principal, payload_factory, receiver
):
    settings.JOBS_WEBHOOK_ALLOW_PRIVATE = True
    job = services.create(principal=principal, payload=payload_factory(), webhook_url=receiver.url)
    services.cancel(job_id=job.id)  # its end owes delivery 1 (no worker here: the test delivers)

    webhooks.deliver(job_id=job.id, attempt=1)
    webhooks.deliver(job_id=job.id, attempt=1)  # the broker's second copy (redelivery, sweeper)
    webhooks.deliver(job_id=job.id, attempt=2)  # an attempt nobody owes

    assert [r["attempt"] for r in receiver.received] == ["1"]
    assert WebhookDelivery.objects.filter(job_id=job.id).count() == 1


def test_a_message_published_before_the_row_kept_what_it_owes_is_delivered_once(
    no_worker, settings, principal, payload_factory, receiver
):
    settings.JOBS_WEBHOOK_ALLOW_PRIVATE = True
    job = services.create(principal=principal, payload=payload_factory(), webhook_url=receiver.url)
    services.cancel(job_id=job.id)
    Job.objects.filter(pk=job.id).update(webhook_attempt=0, webhook_due_at=None)  # as rows were before

    webhooks.deliver(job_id=job.id, attempt=3)  # a retry in the broker at the upgrade
    webhooks.deliver(job_id=job.id, attempt=3)

    assert [r["attempt"] for r in receiver.received] == ["3"]
    assert _owed(job.id)["webhook_due_at"] is None
