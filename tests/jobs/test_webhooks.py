"""Signed webhooks on terminal states, and the SSRF guard at delivery against a live receiver (each
non-public target form: tests/jobs/test_webhook_targets.py)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from claudeapp.jobs import services, webhooks
from claudeapp.jobs.models import WebhookDelivery
from tests.jobs.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def receiver():
    """A tiny HTTP receiver on loopback that records each POST; answers 500 to the first `fail_first`."""
    received: list[dict] = []
    state = {"fail_first": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"body": body, "headers": dict(self.headers)})
            self.send_response(500 if len(received) <= state["fail_first"] else 204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"url": f"http://127.0.0.1:{server.server_port}/hook", "received": received, "state": state}
    server.shutdown()


def test_a_finished_job_posts_a_signed_webhook_that_verifies(worker, settings, principal, payload_factory, receiver):
    settings.JOBS_WEBHOOK_ALLOW_PRIVATE = True  # the receiver is on loopback
    receiver["state"]["fail_first"] = 1  # the first attempt fails and is retried
    job = services.create(principal=principal, payload=payload_factory(), webhook_url=receiver["url"])

    wait_for(lambda: len(receiver["received"]) == 2, what="webhook delivered after one retry")
    wait_for(lambda: WebhookDelivery.objects.filter(job_id=job.id).count() == 2, what="deliveries recorded")

    delivered = receiver["received"][-1]
    secret = webhooks.secret_for(principal_kind=principal.kind, principal_id=principal.id)
    assert webhooks.verify(secret=secret, body=delivered["body"], header=delivered["headers"]["X-Gateway-Signature"])
    assert not webhooks.verify(
        secret=secret, body=delivered["body"] + b" ", header=delivered["headers"]["X-Gateway-Signature"]
    )
    payload = json.loads(delivered["body"])
    assert payload["type"] == "job.succeeded" and payload["job"]["id"] == str(job.id)
    attempts = list(WebhookDelivery.objects.filter(job_id=job.id).values_list("status_code", "succeeded"))
    assert attempts == [(500, False), (204, True)]


def test_another_principals_secret_does_not_verify(principal):
    body, header = b"{}", webhooks.sign(secret="a" * 64, body=b"{}", timestamp=1_700_000_000)
    assert not webhooks.verify(secret="b" * 64, body=body, header=header, now=1_700_000_000)
    assert not webhooks.verify(secret="a" * 64, body=body, header=header, now=1_700_000_000 + 3600)  # replayed late
    assert webhooks.secret_for(principal_kind="user", principal_id=1) != webhooks.secret_for(
        principal_kind="user", principal_id=2
    )


def test_a_delivery_is_refused_when_the_target_turned_private_since_creation(
    no_worker, settings, principal, payload_factory, receiver
):
    settings.JOBS_WEBHOOK_ALLOW_PRIVATE = True
    job = services.create(principal=principal, payload=payload_factory(), webhook_url=receiver["url"])
    settings.JOBS_WEBHOOK_ALLOW_PRIVATE = False  # as if the name now resolved inside (DNS rebinding)

    services.cancel(job_id=job.id)  # its end owes attempt 1 (no worker runs here: the test delivers it)
    webhooks.deliver(job_id=job.id, attempt=1)

    delivery = WebhookDelivery.objects.get(job_id=job.id)
    assert delivery.status_code is None and "non-public" in delivery.error
    assert receiver["received"] == []
